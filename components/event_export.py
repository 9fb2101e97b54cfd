"""FalcoEventExport: where Falco's events go over mutual TLS, and become metrics."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi

from components import manifests
from components.charts import FALCO_EXPORTER, FALCOSIDEKICK, helm_chart
from components.falco import DASHBOARD_FOLDER
from components.loki_destination import CA_FILE, MOUNT, PASSWORD_KEY, LokiDestination, rendered
from components.namespaces import RESTRICTED_CONTAINER, Namespace
from components.pki import TlsMount
from components.restarts import restart_when_changed, sha256_of
from components.scraping import Scraping, scrape_annotations, service_monitor
from components.sizing import CONTAINERS

SIDEKICK_RELEASE = "falcosidekick"
SIDEKICK_IMAGE = "docker.io/falcosecurity/falcosidekick"
SIDEKICK_PORT = 2801  # TLS, client certificate required
SIDEKICK_PLAIN_PORT = 2810  # health checks and metrics only
SIDEKICK_PLAIN_PATHS = "/ping,/healthz,/metrics"
SIDEKICK_SELECTOR = {"app.kubernetes.io/name": "falcosidekick", "app.kubernetes.io/instance": SIDEKICK_RELEASE}
# The uid inside the Loki dashboard falcosidekick 0.14.0 provisions (dashboards/falcosidekick-loki-dashboard.json).
SIDEKICK_LOKI_DASHBOARD_UID = "de6ixj4nl1kowc"
# Holds WEBHOOK_ADDRESS, the alert webhook's URL, which Falcosidekick reads from its environment.
SIDEKICK_WEBHOOK_SECRET = "falcosidekick-alert-webhook"
# Falco's lowest priority that Falcosidekick posts to the webhook (and every one above it).
WEBHOOK_MINIMUM_PRIORITY = "critical"
WEBHOOK_CHECKSUM_ANNOTATION = "checksum/alert-webhook"
NODE_TOPOLOGY_KEY = "kubernetes.io/hostname"  # the well-known label naming each node

EXPORTER_RELEASE = "falco-exporter"
EXPORTER_IMAGE = "docker.io/falcosecurity/falco-exporter"
# The exporter's DaemonSet always mounts the Secret "<fullname>-certs" (the chart has no
# existingSecret option), so the name is fixed and the program creates that Secret itself.
EXPORTER_CLIENT_SECRET = f"{EXPORTER_RELEASE}-certs"
EXPORTER_SELECTOR = {"app.kubernetes.io/name": "falco-exporter", "app.kubernetes.io/instance": EXPORTER_RELEASE}
# The uid of grafana.com dashboard 11914, which falco-exporter 0.12.2 provisions (templates/grafana-dashboard.yaml).
EXPORTER_DASHBOARD_UID = "FvUFlfuZz"


@dataclass(frozen=True)
class ReceiveOverHttps:
    """current: Falcosidekick serves HTTPS with mutual TLS; Falco posts to it; events go on to Loki."""

    tls: TlsMount
    loki: LokiDestination  # where Falcosidekick pushes every event
    replicas: int
    # Falcosidekick posts every event of priority Critical or above here (secret).
    alert_webhook_url: pulumi.Output[str] | None = None


@dataclass(frozen=True)
class PullOverGrpc:
    """tutorial: falco-exporter dials Falco's gRPC server with its client certificate."""

    host: str
    port: int
    tls: TlsMount


@dataclass(frozen=True)
class FalcoEventExportArgs:
    namespace: Namespace
    transport: ReceiveOverHttps | PullOverGrpc
    scraping: Scraping
    dashboards: bool  # a Grafana dashboard sidecar will load the chart's dashboard


class FalcoEventExport(pulumi.ComponentResource):
    """Deploys what receives Falco's events and counts them for Prometheus.

    ``current``: Falcosidekick 0.14.0 as a TLS server that requires a client certificate,
    forwarding every event to Loki (labelled with priority, rule, source, namespace and pod)
    and exposing event counters. Only /ping, /healthz and /metrics are served without TLS.
    With an alert webhook, Falcosidekick also posts each event of priority Critical or above
    to it the moment it arrives.
    ``tutorial``: falco-exporter 0.12.2 (deprecated) pulling events from Falco's gRPC server.
    """

    def __init__(self, name: str, args: FalcoEventExportArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:events:FalcoEventExport", name, None, opts)
        ns = args.namespace
        transport = args.transport
        mounted: list[pulumi.Resource] = [transport.tls.ready]
        transforms: list[pulumi.ResourceTransform] = []
        if isinstance(transport, ReceiveOverHttps):
            chart, release, selector, port = FALCOSIDEKICK, SIDEKICK_RELEASE, SIDEKICK_SELECTOR, "http-notls"
            workload = "Deployment"
            values = self._sidekick_values(transport, args.dashboards)
            if transport.alert_webhook_url is not None:
                mounted.append(self._add_webhook_output(name, values, transport.alert_webhook_url, ns))
                # A new URL restarts Falcosidekick, which reads its environment only at start.
                transforms.append(
                    restart_when_changed(
                        workload, release, WEBHOOK_CHECKSUM_ANNOTATION, sha256_of(transport.alert_webhook_url)
                    )
                )
            if transport.replicas > 1:
                self._add_disruption_budget(name, ns)
            self.endpoint = f"https://{SIDEKICK_RELEASE}.{ns.name}.svc.cluster.local:{SIDEKICK_PORT}/"
            dashboard = ("Falco logs", SIDEKICK_LOKI_DASHBOARD_UID)
        else:
            if transport.tls.secret != EXPORTER_CLIENT_SECRET:
                raise ValueError(f"falco-exporter only mounts the Secret {EXPORTER_CLIENT_SECRET}")
            chart, release, selector, port = FALCO_EXPORTER, EXPORTER_RELEASE, EXPORTER_SELECTOR, "metrics"
            workload = "DaemonSet"
            values = self._exporter_values(transport, ns, args.dashboards)
            self.endpoint = f"{transport.host}:{transport.port}"
            dashboard = ("Falco Events (11914)", EXPORTER_DASHBOARD_UID)
        # Dashboards the chart provisions through Grafana's sidecar: title -> uid.
        self.dashboards = dict([dashboard]) if args.dashboards else {}

        self.chart = helm_chart(
            name,
            chart,
            release=release,
            namespace=ns.ref,
            values=values,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=mounted,
                # Both charts name their workload after the release (fullname).
                transforms=[transport.tls.restart_on_rotation(workload, release), *transforms],
            ),
        )
        if args.scraping.service_monitors:
            # The charts' own ServiceMonitors are no use here: Falcosidekick's scrapes the mTLS
            # port, and falco-exporter's renders only if the CRD already exists when the chart is
            # rendered, so a fresh cluster would get it on the second `pulumi up`, not the first.
            manifests.apply(
                f"{name}-servicemonitor",
                [service_monitor(release, ns.ref, selector, port, args.scraping.labels)],
                pulumi.ResourceOptions(parent=self, depends_on=[self.chart, *args.scraping.after_crds()]),
            )
        self.register_outputs({"endpoint": self.endpoint})

    @staticmethod
    def _sidekick_values(transport: ReceiveOverHttps, dashboards: bool) -> dict:
        values = {
            "image": {"tag": FALCOSIDEKICK.tag(SIDEKICK_IMAGE)},
            "replicaCount": transport.replicas,
            # The one network-facing server in Falco's privileged namespace runs as the
            # restricted level asks anyway (the chart already runs it as user 1234).
            "podSecurityContext": {"runAsNonRoot": True},
            "securityContext": {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True},
            "resources": CONTAINERS["falcosidekick"].values(),
            "config": {
                "tlsserver": {
                    "deploy": True,
                    "mutualtls": True,
                    "existingSecret": transport.tls.secret,
                    "notlsport": SIDEKICK_PLAIN_PORT,
                    "notlspaths": SIDEKICK_PLAIN_PATHS,
                },
                "loki": {
                    "hostport": rendered(
                        transport.loki.push_url, lambda url: f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
                    ),
                    "endpoint": rendered(transport.loki.push_url, lambda url: urlsplit(url).path),
                    "format": "json",  # the whole event, so LogQL `| json` reaches every field
                    "grafanaDashboard": {"enabled": dashboards, "configMap": {"folder": DASHBOARD_FOLDER}},
                },
            },
            # Replaces the chart's bare `prometheus.io/scrape`, which would scrape the mTLS port.
            "service": {"annotations": scrape_annotations(SIDEKICK_PLAIN_PORT)},
            **({"affinity": FalcoEventExport._spread_over_nodes()} if transport.replicas > 1 else {}),
        }
        FalcoEventExport._add_fleet_labels(values, transport.loki)
        return values

    @staticmethod
    def _add_fleet_labels(values: dict, loki: LokiDestination) -> None:
        """In a fleet: the `cluster` label on every event, the hub's tenant for a hub's own
        events, and for a spoke its credentials at the hub and the hub's CA."""
        config = values["config"]
        if loki.cluster is not None:
            # Every event carries the field (config.customfields), and Loki the label.
            config["customfields"] = f"cluster:{loki.cluster}"
            config["loki"]["extralabels"] = "cluster"
        if loki.tenant is not None:
            config["loki"]["tenant"] = loki.tenant
        credentials = loki.credentials
        if credentials is None:
            return
        config["loki"]["user"] = credentials.username
        # LOKI_APIKEY, the basic-auth password, from the spoke's Secret: an `env` entry wins over
        # the chart Secret's empty LOKI_APIKEY in envFrom (templates/deployment.yaml).
        config["extraEnv"] = [
            *config.get("extraEnv", []),
            {"name": "LOKI_APIKEY", "valueFrom": {"secretKeyRef": {"name": credentials.secret, "key": PASSWORD_KEY}}},
        ]
        # Outputs trust the hub's CA (TLSCLIENT_CACERTFILE, templates/deployment.yaml).
        config["tlsclient"] = {"cacertfile": CA_FILE}
        values["extraVolumes"] = [{"name": "fleet-hub", "secret": {"secretName": credentials.secret}}]
        values["extraVolumeMounts"] = [{"name": "fleet-hub", "mountPath": MOUNT, "readOnly": True}]

    @staticmethod
    def _spread_over_nodes() -> dict:
        """Replicas on different nodes where the cluster has them (templates/deployment.yaml
        reads `affinity`; the chart has no topologySpreadConstraints). Preferred, not required:
        a rolling update surges one pod more than there may be nodes, and must not wait forever."""
        term = {"labelSelector": {"matchLabels": SIDEKICK_SELECTOR}, "topologyKey": NODE_TOPOLOGY_KEY}
        return {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]
            }
        }

    def _add_disruption_budget(self, name: str, ns: Namespace) -> None:
        """At most one Falcosidekick pod evicted at a time: a node drain leaves the others
        serving. Only with several replicas: a lone pod cannot keep serving through its own
        eviction, and a budget that tried would block the drain for good."""
        budget = {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": manifests.metadata(SIDEKICK_RELEASE, ns.ref),
            "spec": {
                "maxUnavailable": 1,
                "selector": {"matchLabels": SIDEKICK_SELECTOR},
                # A pod that is not ready serves nothing: it may always go, so it never blocks a drain.
                "unhealthyPodEvictionPolicy": "AlwaysAllow",
            },
        }
        manifests.apply(f"{name}-disruption-budget", [budget], pulumi.ResourceOptions(parent=self))

    def _add_webhook_output(self, name: str, values: dict, url: pulumi.Output[str], ns: Namespace) -> pulumi.Resource:
        """Falcosidekick's webhook output, for events of priority Critical and above: the URL
        only through a Secret of the program's, the rest through chart values."""
        secret = manifests.apply(
            f"{name}-alert-webhook",
            [manifests.secret(SIDEKICK_WEBHOOK_SECRET, ns.ref, {"WEBHOOK_ADDRESS": url})],
            pulumi.ResourceOptions(parent=self),
        )
        config = values["config"]
        # Rendered into the chart's own Secret (templates/secrets.yaml) as WEBHOOK_MINIMUMPRIORITY,
        # next to an empty WEBHOOK_ADDRESS; templates/deployment.yaml lists `existingSecret` after
        # that Secret in envFrom, and of keys in several envFrom sources the last one wins.
        config["webhook"] = {"minimumpriority": WEBHOOK_MINIMUM_PRIORITY}
        config["existingSecret"] = SIDEKICK_WEBHOOK_SECRET
        # 0: no limit (Falcosidekick 2.32.0 allows one request at a time per output by
        # default, config.go), so an event never waits behind a slow delivery of another.
        config["extraEnv"] = [{"name": "WEBHOOK_MAXCONCURRENTREQUESTS", "value": "0"}, *config.get("extraEnv", [])]
        return secret

    @staticmethod
    def _exporter_values(transport: PullOverGrpc, ns: Namespace, dashboards: bool) -> dict:
        return {
            "image": {"tag": FALCO_EXPORTER.tag(EXPORTER_IMAGE)},
            "fullnameOverride": EXPORTER_RELEASE,
            "falco": {
                "grpcUnixSocketPath": "",  # empty: dial host:port over TCP with mTLS
                # Both read by templates/daemonset.yaml (--client-hostname, --client-port).
                "grpcHostname": transport.host,
                "grpcPort": transport.port,
            },
            "resources": CONTAINERS["falco-exporter"].values(),
            "tolerations": [{"operator": "Exists"}],
            "grafanaDashboard": {"enabled": dashboards, "namespace": ns.name, "folder": DASHBOARD_FOLDER},
        }
