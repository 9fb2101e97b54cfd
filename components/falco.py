"""FalcoAgent: Falco on every node, watching system calls through its kernel driver."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from components.charts import FALCO, FALCO_WITH_GRPC, helm_chart
from components.falco_host import LEAST_PRIVILEGED_DRIVER, host_values, only_what_falco_uses
from components.namespaces import Namespace
from components.pki import TlsMount
from components.scraping import NODE_RELABELING, Scraping, scrape_annotations
from components.sizing import CONTAINERS, INIT_CONTAINERS

RELEASE = "falco"
# The chart names its gRPC Service "<release>-grpc" and its metrics port 8765.
GRPC_SERVICE = f"{RELEASE}-grpc"
METRICS_PORT = 8765
SELECTOR = {"app.kubernetes.io/name": "falco", "app.kubernetes.io/instance": RELEASE}
DASHBOARD_FOLDER = "Falco"
# The uid inside the dashboard falco chart 9.1.0 provisions (dashboards/falco-dashboard.json).
DASHBOARD_UID = "ddwe2ug4nfi0wb"
FALCO_IMAGE = "docker.io/falcosecurity/falco"
# Where the charts mount `certs.existingSecret` and `certs.existingClientSecret`.
SERVER_CERTS = "/etc/falco/certs"
CLIENT_CERTS = "/etc/falco/certs/client"


@dataclass(frozen=True)
class HttpsEventOutput:
    """current: Falco posts every event as JSON to this URL, authenticating with the client certificate."""

    url: str
    tls: TlsMount


@dataclass(frozen=True)
class GrpcEventServer:
    """tutorial: Falco serves its events over gRPC on TCP, requiring a client certificate."""

    port: int
    tls: TlsMount


@dataclass(frozen=True)
class FalcoAgentArgs:
    namespace: Namespace
    driver: str
    capabilities: str  # falco.capabilities: least, or sysAdmin (modern_ebpf)
    container_runtimes: tuple[str, ...]  # falco.containerRuntime
    custom_rules: Mapping[str, str]
    events: HttpsEventOutput | GrpcEventServer
    scraping: Scraping
    dashboards: bool  # a Grafana dashboard sidecar will load the chart's dashboard


class FalcoAgent(pulumi.ComponentResource):
    """Deploys Falco as a DaemonSet that tolerates every taint, so no node goes unwatched.

    With an HTTPS event output this is falco chart 9.1.0 (Falco 0.44), exporting its own
    Prometheus metrics; with a gRPC event server it is chart 8.0.5 (Falco 0.43.1), the last
    with gRPC. Either way the TLS material comes from a Kubernetes Secret the chart mounts,
    never from chart values, and the pods restart when it rotates.
    """

    def __init__(self, name: str, args: FalcoAgentArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:falco:FalcoAgent", name, None, opts)
        grpc = isinstance(args.events, GrpcEventServer)
        chart = FALCO_WITH_GRPC if grpc else FALCO
        self.chart = helm_chart(
            name,
            chart,
            release=RELEASE,
            namespace=args.namespace.ref,
            values=self._values(args, chart.image(FALCO_IMAGE)),
            # The chart's default 1000m CPU limit throttles the sensor under load, and a
            # throttled sensor drops events: requests only (components/sizing.py).
            remove_defaults=("resources.limits.cpu",),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[args.events.tls.ready, *args.scraping.after_crds()],
                transforms=[
                    args.events.tls.restart_on_rotation("DaemonSet", RELEASE),
                    only_what_falco_uses(RELEASE),
                ],
            ),
        )
        self.grpc_host = f"{GRPC_SERVICE}.{args.namespace.name}.svc.cluster.local" if grpc else None
        # Dashboards the chart provisions through Grafana's sidecar: title -> uid.
        self.dashboards = {"Falco": DASHBOARD_UID} if args.dashboards and not grpc else {}
        self.register_outputs({})

    @staticmethod
    def _values(args: FalcoAgentArgs, image: str) -> dict:
        events = args.events
        values: dict = {
            # Capabilities, the runtime's socket directory, the preflight (components/falco_host.py).
            **host_values(args.driver, args.capabilities, args.container_runtimes, image),
            "driver": {
                "kind": args.driver,
                "loader": {"initContainer": {"resources": INIT_CONTAINERS["falco-driver-loader"].values()}},
                # Both charts then run Falco on capabilities, not privileged, with AppArmor
                # unconfined (templates/pod-template.tpl); which capabilities is set through
                # containerSecurityContext. kmod, auto and the legacy ebpf probe stay privileged.
                "modernEbpf": {"leastPrivileged": args.driver == LEAST_PRIVILEGED_DRIVER},
            },
            # Every taint, control plane included: a node Falco does not run on is unwatched.
            "tolerations": [{"operator": "Exists"}],
            "resources": CONTAINERS["falco"].values(),
            "customRules": dict(args.custom_rules),
            "falcoctl": {
                "artifact": {
                    "install": {"resources": INIT_CONTAINERS["falcoctl-artifact-install"].values()},
                    # Rules change only when this program changes, not weekly behind its back.
                    "follow": {"enabled": False},
                }
            },
        }
        if isinstance(events, GrpcEventServer):
            values["certs"] = {"existingSecret": events.tls.secret}
            values["falco"] = {
                "json_output": True,
                "grpc": {
                    "enabled": True,
                    "bind_address": f"0.0.0.0:{events.port}",
                    "threadiness": 0,
                    # Read by templates/configmap.yaml, which writes .Values.falco as falco.yaml.
                    "private_key": f"{SERVER_CERTS}/server.key",
                    "cert_chain": f"{SERVER_CERTS}/server.crt",
                    "root_certs": f"{SERVER_CERTS}/ca.crt",
                },
                "grpc_output": {"enabled": True},
            }
            return values

        values["certs"] = {"existingClientSecret": events.tls.secret}
        values["falco"] = {
            "json_output": True,
            "http_output": {
                "enabled": True,
                "url": events.url,
                "mtls": True,
                "client_cert": f"{CLIENT_CERTS}/client.crt",
                "client_key": f"{CLIENT_CERTS}/client.key",
                "ca_cert": f"{CLIENT_CERTS}/ca.crt",
                "insecure": False,
            },
        }
        values["metrics"] = {"enabled": True}
        if args.scraping.service_monitors:
            values["serviceMonitor"] = {
                "create": True,
                "labels": dict(args.scraping.labels),
                # Written under the endpoint by templates/serviceMonitor.yaml.
                "relabelings": [NODE_RELABELING],
            }
            if args.scraping.interval is not None:
                values["serviceMonitor"]["interval"] = args.scraping.interval  # the chart's default: 15s
        else:
            values["metrics"]["service"] = {"annotations": scrape_annotations(METRICS_PORT)}
        if args.dashboards:
            values["grafana"] = {"dashboards": {"enabled": True, "configMaps": {"falco": {"folder": DASHBOARD_FOLDER}}}}
        return values
