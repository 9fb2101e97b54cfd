"""Does the suite fail when a user would be hurt? A small mutation run.

Each mutant is one realistic mistake in the program (a renamed label, a dropped
toleration, a wrong port...). For each, the script copies the repository into a temporary
directory, applies the mistake there (the working tree is never touched), runs the test
suite and records whether it failed ("killed") and on which test. Usage:

    venv/bin/python scripts/mutation_test.py            # every mutant, two at a time
    venv/bin/python scripts/mutation_test.py M07 M12    # only these

It prints one line per mutant and the score. A surviving mutant is either a gap in the
suite or a mistake users cannot notice; the closing notes explain each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Shared, read-only, and large: linked into each copy instead of copied.
LINKED = ("venv", ".tools", "tests/support/logql/node_modules")


@dataclass(frozen=True)
class Mutant:
    id: str
    path: str
    old: str
    new: str
    harm: str  # what a user would suffer


MUTANTS = [
    # -- logs ------------------------------------------------------------------------------
    Mutant(
        "M01",
        "components/pod-logs.alloy",
        'target_label  = "container"',
        'target_label  = "container_name"',
        'the walk-through\'s {container="etcd"} finds nothing',
    ),
    Mutant(
        "M02",
        "components/logging_stack.py",
        '"extraEnv": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],',
        '"extraEnv": [],',
        "the collector's field selector matches no pod: no log shipped",
    ),
    Mutant(
        "M03",
        "components/logging_stack.py",
        '{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}',
        '{"key": "node-role.kubernetes.io/etcd", "operator": "Exists", "effect": "NoSchedule"}',
        "etcd's logs vanish where the control plane is tainted",
    ),
    Mutant(
        "M04",
        "components/logging_stack.py",
        '"compactor": {"retention_enabled": True, "delete_request_store": store},',
        '"compactor": {"retention_enabled": False, "delete_request_store": store},',
        "Loki keeps logs forever: the volume fills and Loki stops ingesting",
    ),
    Mutant(
        "M05",
        "components/logging_stack.py",
        """{"match": {"selector": r'{namespace=~".+"} |~ `^\\{"log":`', "stages": [{"docker": {}}]}},""",
        "",
        "tutorial on minikube's docker runtime: every line arrives as raw Docker JSON",
    ),
    Mutant(
        "M06",
        "components/logging_stack.py",
        'values[target]["extraEnvFrom"] = [{"secretRef": {"name": OBJECT_STORAGE_SECRET}}]',
        'values["global"] = {"extraEnvFrom": [{"secretRef": {"name": OBJECT_STORAGE_SECRET}}]}',
        "the bucket's credentials reach the memcached pods too",
    ),
    # -- Prometheus and Grafana ---------------------------------------------------------------
    Mutant(
        "M07",
        "components/monitoring.py",
        'return {"service": {"type": "NodePort", "nodePort": args.grafana_node_port}}',
        'return {"service": {"type": "ClusterIP", "nodePort": args.grafana_node_port}}',
        "Grafana unreachable at the URL the provider uses: a half-deployed stack",
    ),
    Mutant(
        "M08",
        "components/monitoring.py",
        '"serviceMonitorSelectorNilUsesHelmValues": False',
        '"serviceMonitorSelectorNilUsesHelmValues": True',
        "Prometheus ignores the stack's ServiceMonitors: no Falco metric, the alert never fires",
    ),
    Mutant(
        "M09",
        "components/grafana_wiring.py",
        'uids: ClassVar[DataSourceUids] = DataSourceUids(prometheus="prometheus", loki="loki")',
        'uids: ClassVar[DataSourceUids] = DataSourceUids(prometheus="prometheus", loki="runtime-defense-loki")',
        "Falcosidekick's Loki dashboard: 'data source not found'",
    ),
    # -- alerts ---------------------------------------------------------------------------------
    Mutant(
        "M10",
        "components/falco_metrics.py",
        """CRITICAL_AND_ABOVE_NUMBERS = 'priority=~"0|1|2"'""",
        """CRITICAL_AND_ABOVE_NUMBERS = 'priority=~"0|1"'""",
        "Critical events no longer alert",
    ),
    Mutant(
        "M11",
        "components/falco_metrics.py",
        'f" or (last_over_time({selector}[{recent}]) unless {continuing})"',
        'f" or (last_over_time({selector}[{recent}]) and {continuing})"',
        "a rule's first event, or one on a restarted pod, does not alert",
    ),
    Mutant(
        "M12",
        "components/event_export.py",
        'WEBHOOK_MINIMUM_PRIORITY = "critical"',
        'WEBHOOK_MINIMUM_PRIORITY = "emergency"',
        "the fast path to the webhook skips Critical and Alert events",
    ),
    Mutant(
        "M13",
        "components/alerts.py",
        "CRITICAL_INTERVAL_SECONDS = 10",
        "CRITICAL_INTERVAL_SECONDS = 60",
        "the Grafana path to an alert takes a minute longer than the README says",
    ),
    # -- Falco and the mTLS link ------------------------------------------------------------------
    Mutant(
        "M14",
        "components/pki.py",
        ', f"{service}.{namespace}.svc.cluster.local"]',
        "]",
        "Falco dials falcosidekick.falco.svc.cluster.local: the certificate does not name it, TLS fails",
    ),
    Mutant(
        "M15",
        "components/pki.py",
        'client_key, client_issued = issue("client", client.common_name, None, "client_auth")',
        'client_key, client_issued = issue("client", client.common_name, None, "server_auth")',
        "the client certificate is refused by the server: no event gets through",
    ),
    Mutant(
        "M16",
        "components/falco.py",
        '                "mtls": True,\n',
        '                "mtls": False,\n',
        "Falco posts its events without its client certificate: Falcosidekick refuses them",
    ),
    Mutant(
        "M17",
        "components/event_export.py",
        '"mutualtls": True,',
        '"mutualtls": False,',
        "any pod can post forged events to Falcosidekick",
    ),
    Mutant(
        "M18",
        "components/falco.py",
        '"modernEbpf": {"leastPrivileged": args.driver == LEAST_PRIVILEGED_DRIVER},',
        '"modernEbpf": {"leastPrivileged": False},',
        "Falco runs fully privileged on modern_ebpf",
    ),
    Mutant(
        "M19",
        "components/falco.py",
        'remove_defaults=("resources.limits.cpu",),',
        "remove_defaults=(),",
        "Falco throttled at 1 CPU under load drops events",
    ),
    Mutant(
        "M20",
        "components/falco.py",
        '"tolerations": [{"operator": "Exists"}],',
        '"tolerations": [],',
        "no Falco on tainted nodes (the control plane): those nodes go unwatched",
    ),
    Mutant(
        "M21",
        "components/event_export.py",
        '"grpcHostname": transport.host,',
        '"grpcHostname": "falco-grpc.default.svc.cluster.local",',
        "tutorial: falco-exporter dials a Service that does not exist (the walk-through's name)",
    ),
    # -- configuration and ownership ---------------------------------------------------------------
    Mutant(
        "M22",
        "components/config_reader.py",
        """return '"<secret>"' if self.is_secret(key) else show(value)""",
        "return show(value)",
        "a config error prints a secret into a terminal and CI logs",
    ),
    Mutant(
        "M23",
        "components/config_reader.py",
        'RESERVED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})',
        'RESERVED_NAMESPACES = frozenset({"default"})',
        "namespaces.falco = kube-system: `pulumi destroy` deletes kube-system",
    ),
    Mutant(
        "M24",
        "components/charts.py",
        '"docker.io/falcosecurity/falcosidekick:2.32.0"',
        '"docker.io/falcosecurity/falcosidekick:2.31.1"',
        "Falcosidekick runs another version than the one whose metrics the dashboards read",
    ),
    Mutant(
        "M25",
        "components/scraping.py",
        '"endpoints": [{"port": port, "path": path, "interval": "30s"}],',
        '"endpoints": [{"port": "http", "path": path, "interval": "30s"}],',
        "Prometheus scrapes a port the Service does not have: the exporters' metrics vanish",
    ),
]


def copy_repository(into: Path) -> None:
    # The working tree as it is: tracked files and new ones not yet committed, ignored ones aside.
    listed = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    tracked = subprocess.run(listed, cwd=ROOT, capture_output=True, check=True).stdout
    for name in tracked.decode().split("\0"):
        if not name or any(name == link or name.startswith(link + "/") for link in LINKED):
            continue
        source, target = ROOT / name, into / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for link in LINKED:
        if (ROOT / link).exists():
            (into / link).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(ROOT / link, into / link)


def run(mutant: Mutant) -> tuple[Mutant, bool, str, float]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.id}-") as tmp:
        copy = Path(tmp)
        copy_repository(copy)
        target = copy / mutant.path
        text = target.read_text()
        if text.count(mutant.old) != 1:
            return mutant, False, f"NOT APPLIED: the snippet occurs {text.count(mutant.old)} times", 0.0
        target.write_text(text.replace(mutant.old, mutant.new))
        result = subprocess.run(
            [str(copy / "venv" / "bin" / "python"), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "tests"],
            cwd=copy,
            capture_output=True,
            text=True,
        )
    failed = [line.split(" ", 1)[1] for line in result.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    killed = result.returncode != 0
    return mutant, killed, (failed[0] if failed else result.stdout.strip().splitlines()[-1]), time.monotonic() - started


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTANTS if not argv[1:] or m.id in argv[1:]]
    killed = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        for mutant, dead, detail, seconds in pool.map(run, chosen):
            killed += dead
            verdict = "killed  " if dead else "SURVIVED"
            print(f"{mutant.id} {verdict} {seconds:5.1f}s  {mutant.harm}\n      {detail}", flush=True)
    print(f"\n{killed} of {len(chosen)} mutants killed ({100 * killed / max(len(chosen), 1):.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
