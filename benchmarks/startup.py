"""Start-up cost of the program: whole-program evaluation under mocks, per profile, against
a bare import of the five Pulumi SDKs it uses. Each is a fresh interpreter, as under
`pulumi preview`; the figure is the median wall time of several runs.

Usage: python benchmarks/startup.py [runs]
"""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASELINE = "import pulumi, pulumi_kubernetes, pulumi_tls, pulumiverse_grafana, pulumi_random"
# The same, plus loading the SDK modules of the resource types the program registers (the
# SDKs load them lazily, on first use): what any program using these types pays before
# doing anything itself.
SDK_MODULES = (
    BASELINE
    + "; import pulumi_kubernetes.helm.v4, pulumi_kubernetes.yaml.v2, grafana_foundation_sdk.builders.dashboard"
    + "; pulumiverse_grafana.oss.Dashboard, pulumiverse_grafana.alerting.RuleGroup"
)
TARGET_RATIO = 1.5
# Like `pulumi up` on a workstation, let Python cache the program's bytecode (some CI and
# sandbox images turn that off, which would time the compiler instead of the program).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall_seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=ENV)
    return time.perf_counter() - start


def main(runs: int) -> int:
    python = sys.executable
    commands = {"baseline": [python, "-c", BASELINE], "sdk modules": [python, "-c", SDK_MODULES]}
    for profile in ("current", "tutorial"):
        commands[profile] = [python, str(HERE / "evaluate_program.py"), profile]
    for command in commands.values():
        wall_seconds(command)  # warm the bytecode cache
    # Interleaved, so that drift in the machine's load hits every command alike.
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(wall_seconds(command))
    medians = {name: statistics.median(times) for name, times in samples.items()}

    baseline = medians.pop("baseline")
    modules = medians.pop("sdk modules")
    print(f"bare import of the five SDKs: {baseline * 1000:7.1f} ms (median of {runs})")
    print(f"  + the SDK modules used:     {modules * 1000:7.1f} ms  ratio {modules / baseline:.2f}x")
    worst = 0.0
    for profile, seconds in medians.items():
        ratio = seconds / baseline
        worst = max(worst, ratio)
        print(f"program, profile {profile:8}: {seconds * 1000:7.1f} ms  ratio {ratio:.2f}x")
    print(f"target <= {TARGET_RATIO}x: {'met' if worst <= TARGET_RATIO else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 15))
