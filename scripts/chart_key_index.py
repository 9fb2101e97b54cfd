"""Write the key index of a Helm chart's values.

Usage:
    python scripts/chart_key_index.py path/to/values.yaml > chart-keys/<chart>-<version>.keys
    helm show values <repo>/<chart> --version <v> | python scripts/chart_key_index.py - > ...

Each output line is ``<dotted.key.path><TAB><kind>``; dots inside a key are escaped as
``\\.``. ``kind`` is ``map`` for a map with keys, ``{}`` for an empty map (free-form: any
key below it is accepted), ``list``, ``null`` (free-form too), or the scalar's YAML type.
The checker in ``components/chart_keys.py`` reads these files.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import yaml


def escape(key: object) -> str:
    return str(key).replace(".", "\\.")


def kind_of(value: object) -> str:
    if isinstance(value, dict):
        return "map" if value else "{}"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def index_lines(values: dict, prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        path = f"{prefix}{escape(key)}"
        yield f"{path}\t{kind_of(value)}"
        if isinstance(value, dict):
            yield from index_lines(value, path + ".")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    text = sys.stdin.read() if argv[1] == "-" else Path(argv[1]).read_text()
    values = yaml.safe_load(text) or {}
    if not isinstance(values, dict):
        print(f"{argv[1]}: values must be a YAML map", file=sys.stderr)
        return 1
    sys.stdout.write("".join(line + "\n" for line in sorted(index_lines(values))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
