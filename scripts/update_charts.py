"""Replaces the vendored chart archives with the published ones, and their digests in the pin table.

Online only (it runs `helm pull`). For each chart in components/charts.py, or only those
named on the command line (e.g. `falco-9.1.0`):

    python scripts/update_charts.py [chart-version ...]

pulls REPO/CHART at the pinned version into charts/, and rewrites that chart's sha256 in
components/charts.py. To move a chart to a new version, change its version in the table
first, run this, then run scripts/test.sh: the rendered-manifest tests show what the new
version changes (images to re-pin, keys that moved). falco-exporter 0.12.2 was deleted from
the charts repository's sources in July 2025; if its index drops it too, keep the vendored
archive (it was built from the release commit, see charts/SOURCES.md).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.charts import PINNED_CHARTS, PinnedChart  # noqa: E402

TABLE = ROOT / "components" / "charts.py"


def pull(chart: PinnedChart, destination: Path) -> Path:
    command = ["helm", "pull", chart.name, "--repo", chart.repo, "--version", chart.version]
    subprocess.run([*command, "--destination", str(destination)], check=True)
    return destination / chart.archive.name


def main(argv: list[str]) -> int:
    wanted = set(argv[1:])
    unknown = wanted - {chart.label for chart in PINNED_CHARTS}
    if unknown:
        print(f"update_charts: not in the pin table: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    table = TABLE.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        for chart in PINNED_CHARTS:
            if wanted and chart.label not in wanted:
                continue
            pulled = pull(chart, Path(tmp))
            digest = hashlib.sha256(pulled.read_bytes()).hexdigest()
            (ROOT / chart.archive).write_bytes(pulled.read_bytes())
            if digest != chart.sha256:
                table, count = re.subn(rf'"{chart.sha256}"', f'"{digest}"', table)
                assert count == 1, f"{chart.label}: its digest is not in {TABLE} exactly once"
            print(f"{chart.label}: {digest}")
    TABLE.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
