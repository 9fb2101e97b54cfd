"""Does the suite fail when a user would be hurt? A small mutation run.

Each mutant is one realistic mistake in the program (a renamed label, a dropped
toleration, a wrong port...). For each, the script copies the repository into a temporary
directory, applies the mistake there (the working tree is never touched), runs the test
suite and records whether it failed ("killed") and on which test. Usage:

    venv/bin/python scripts/mutation_test.py            # every mutant, two at a time
    venv/bin/python scripts/mutation_test.py M07 M12    # only these

It prints one line per mutant and the score. A surviving mutant is either a gap in the
suite or a mistake users cannot notice; the closing notes explain each. A few mutants are
mistakes in the machine rather than the code (a tool missing under CI=true): they change
the run's environment instead of a file.
"""

from __future__ import annotations

import os
import shutil
import stat
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
    path: str  # "" for a mistake in the machine (env, hidden), not in a file
    old: str
    new: str
    harm: str  # what a user would suffer
    env: tuple[tuple[str, str], ...] = ()  # set for the run
    hidden: tuple[str, ...] = ()  # commands taken off PATH for the run


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
        'env: list[dict[str, Any]] = [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]',  # noqa: E501
        "env: list[dict[str, Any]] = []",
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
        "Falco on modern_ebpf loses its unconfined AppArmor profile: AppArmor denies the /proc reads its events need",
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
        '"endpoints": [{"port": port, "path": path, "interval": "30s", "relabelings": [NODE_RELABELING]}],',
        '"endpoints": [{"port": "http", "path": path, "interval": "30s", "relabelings": [NODE_RELABELING]}],',
        "Prometheus scrapes a port the Service does not have: the exporters' metrics vanish",
    ),
    # -- teardown, links, fences, alert scope, tools ------------------------------------------------
    Mutant(
        "M26",
        "components/monitoring.py",
        'CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"',
        'CRD = "kubernetes:apiextensions.k8s.io/v1beta1:CustomResourceDefinition"',
        "`pulumi destroy` deletes the operator's CRDs, and with them every team's ServiceMonitors and rules",
    ),
    Mutant(
        "M27",
        "components/namespaces.py",
        "transforms=[retain_on_delete], providers=[adopting]",
        "transforms=[lambda args: None], providers=[adopting]",
        "prod: `pulumi destroy` deletes the logging namespace, and Loki's volumes with it",
    ),
    Mutant(
        "M28",
        "components/event_export.py",
        'SIDEKICK_LOKI_DASHBOARD_UID = "de6ixj4nl1kowc"',
        'SIDEKICK_LOKI_DASHBOARD_UID = "falco-logs"',
        "the exported 'Falco logs' link opens Grafana's 'Dashboard not found'",
    ),
    Mutant(
        "M29",
        "components/fences.py",
        'Fence("loki-cache-metrics", caches, [logging_stack.MEMCACHED_EXPORTER_PORT], [args.prometheus]),',
        'Fence("loki-cache-metrics", caches, [logging_stack.MEMCACHED_EXPORTER_PORT], [Peer("anyone")]),',
        "any pod (or anyone reaching the pod network) reads Loki's cache metrics",
    ),
    Mutant(
        "M30",
        "components/alerts.py",
        'kube_pod_info{{namespace="{namespace}", created_by_kind="DaemonSet"',
        'kube_pod_info{{created_by_kind="DaemonSet"',
        "another team's Falco on a node hides that ours is not running there: no alert",
    ),
    Mutant(
        "M31",
        "",
        "",
        "",
        "CI without promtool goes green by skipping the alert rule tests",
        env=(("CI", "true"),),
        hidden=("promtool",),
    ),
    Mutant(
        "M32",
        "tests/support/tools.py",
        "    if in_ci():\n",
        "    if False:\n",
        "under CI=true a missing tool only skips its tests: a CI that lost Helm passes",
    ),
    # -- the fleet ------------------------------------------------------------------------------
    Mutant(
        "M33",
        "components/logging_stack.py",
        '"locationSnippet": "proxy_set_header X-Scope-OrgID $remote_user;",',
        '"locationSnippet": "",',
        "a spoke's logs land in whatever tenant its request names: one spoke writes as another",
    ),
    Mutant(
        "M34",
        "components/fleet_hub.py",
        '    target_label = "cluster"',
        '    target_label = "cluster_checked"',
        "the hub keeps the cluster label a spoke claims: one spoke's series pass for another's",
    ),
    Mutant(
        "M35",
        "components/falco_metrics.py",
        'FLEET_METRICS = "up|kube_node_info',
        'FLEET_METRICS = "kube_node_info',
        "spokes ship no `up`: the hub cannot tell a spoke that stopped sending, nor a scrape target down",
    ),
    Mutant(
        "M36",
        "components/fleet_hub.py",
        "transforms=[protected] if args.spokes else []",
        "transforms=[]",
        "`pulumi destroy` of a hub cuts off its spokes without a word",
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


def path_without(hidden: tuple[str, ...], into: Path) -> str:
    """A PATH of one directory linking every command of this PATH but ``hidden``."""
    into.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or not Path(directory).is_dir():
            continue
        for entry in Path(directory).iterdir():
            link = into / entry.name
            if entry.name in hidden or link.exists() or link.is_symlink():
                continue
            if entry.is_file() and os.stat(entry).st_mode & stat.S_IXUSR:
                link.symlink_to(entry.resolve())
    return str(into)


def run(mutant: Mutant) -> tuple[Mutant, bool, str, float]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.id}-") as tmp:
        copy = Path(tmp) / "repository"
        copy_repository(copy)
        environment = {**os.environ, **dict(mutant.env)}
        if mutant.path:
            target = copy / mutant.path
            text = target.read_text()
            if text.count(mutant.old) != 1:
                return mutant, False, f"NOT APPLIED: the snippet occurs {text.count(mutant.old)} times", 0.0
            target.write_text(text.replace(mutant.old, mutant.new))
        if mutant.hidden:
            environment["PATH"] = path_without(mutant.hidden, Path(tmp) / "bin")
            if "helm" in mutant.hidden:
                (copy / ".tools").unlink(missing_ok=True)
                environment.pop("RUNTIME_DEFENSE_HELM", None)
        # In file order (pytest-randomly off): a mutant's first failure is the same every run.
        pytest = ["-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "tests"]
        result = subprocess.run(
            [str(copy / "venv" / "bin" / "python"), *pytest], cwd=copy, env=environment, capture_output=True, text=True
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
