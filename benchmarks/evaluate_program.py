"""Evaluates __main__.py once under Pulumi's mocks in preview mode, as `pulumi preview` would.

Usage: python benchmarks/evaluate_program.py <profile>
"""

import json
import runpy
import sys
from pathlib import Path

import pulumi
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parents[1]


class EchoMocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args):
        return {}


def main(profile: str) -> None:
    sys.path.insert(0, str(ROOT))
    set_all_config(
        {
            "runtime-defense:profile": profile,
            "runtime-defense:grafana": json.dumps({"url": "http://192.168.49.2:30300"}),
        }
    )
    pulumi.runtime.set_mocks(EchoMocks(), project="runtime-defense", stack="bench", preview=True)

    def program() -> None:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    _sync_await(run_pulumi_func(program))


if __name__ == "__main__":
    main(sys.argv[1])
