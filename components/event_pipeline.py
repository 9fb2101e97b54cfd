"""FalcoEventPipeline: Falco, the mutual-TLS link its events travel, and their exporter."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import event_export, falco
from components.event_export import FalcoEventExport, FalcoEventExportArgs, PullOverGrpc, ReceiveOverHttps
from components.falco import FalcoAgent, FalcoAgentArgs, GrpcEventServer, HttpsEventOutput
from components.falco_config import FalcoConfig
from components.loki_destination import LokiDestination
from components.namespaces import Namespace
from components.network_policy import MutualTlsNetworkPolicy, MutualTlsNetworkPolicyArgs
from components.pki import ClientIdentity, MutualTlsPki, MutualTlsPkiArgs, ServerIdentity
from components.pki_config import PkiConfig
from components.profile import Profile
from components.scraping import Scraping

GRPC_PORT = 5060


@dataclass(frozen=True)
class FalcoEventPipelineArgs:
    profile: Profile
    namespace: Namespace
    falco: FalcoConfig
    pki: PkiConfig
    sidekick_replicas: int
    loki: LokiDestination  # where Falcosidekick pushes the events (current)
    scraping: Scraping
    dashboards: bool
    alert_webhook_url: pulumi.Output[str] | None = None  # current: Falcosidekick posts Critical events here


class FalcoEventPipeline(pulumi.ComponentResource):
    """Wires who serves and who dials the mTLS link, per profile.

    ``current``: Falco (client) posts to Falcosidekick (server) over HTTPS.
    ``tutorial``: falco-exporter (client) dials Falco's gRPC server (server), the
    walk-through's design with the certificates actually in use.
    """

    def __init__(self, name: str, args: FalcoEventPipelineArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:events:FalcoEventPipeline", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = args.namespace

        def pki(server: ServerIdentity, client: ClientIdentity) -> MutualTlsPki:
            return MutualTlsPki(
                f"{name}-mtls",
                MutualTlsPkiArgs(
                    server=server,
                    client=client,
                    key_algorithm=args.pki.key_algorithm,
                    validity_hours=args.pki.validity_hours,
                    early_renewal_hours=args.pki.early_renewal_hours,
                    ca_validity_hours=args.pki.ca_validity_hours,
                ),
                child,
            )

        def agent(events: HttpsEventOutput | GrpcEventServer) -> FalcoAgent:
            return FalcoAgent(
                f"{name}-agent",
                FalcoAgentArgs(
                    namespace=ns,
                    driver=args.falco.driver,
                    capabilities=args.falco.capabilities,
                    container_runtimes=args.falco.container_runtimes,
                    custom_rules=args.falco.custom_rules,
                    events=events,
                    scraping=args.scraping,
                    dashboards=args.dashboards,
                ),
                child,
            )

        def export(transport: ReceiveOverHttps | PullOverGrpc) -> FalcoEventExport:
            return FalcoEventExport(
                f"{name}-events",
                FalcoEventExportArgs(
                    namespace=ns, transport=transport, scraping=args.scraping, dashboards=args.dashboards
                ),
                child,
            )

        if args.profile == "current":
            link = pki(
                ServerIdentity(service=event_export.SIDEKICK_RELEASE, namespace=ns, secret="falcosidekick-tls"),
                ClientIdentity(common_name="falco", namespace=ns, secret="falco-client-tls"),
            )
            exporter = export(
                ReceiveOverHttps(
                    tls=link.server,
                    loki=args.loki,
                    replicas=args.sidekick_replicas,
                    alert_webhook_url=args.alert_webhook_url,
                )
            )
            sensor = agent(HttpsEventOutput(url=exporter.endpoint, tls=link.client))
            policy = MutualTlsNetworkPolicyArgs(
                namespace=ns,
                server=event_export.SIDEKICK_SELECTOR,
                port=event_export.SIDEKICK_PORT,
                client=falco.SELECTOR,
                client_namespace=ns.name,
                scraped_ports=[event_export.SIDEKICK_PLAIN_PORT],
                scrapers=args.scraping.prometheus,
            )
        else:
            link = pki(
                ServerIdentity(
                    service=falco.GRPC_SERVICE, namespace=ns, secret="falco-grpc-tls", bundle_key="falco.pem"
                ),
                ClientIdentity(common_name="falco-exporter", namespace=ns, secret=event_export.EXPORTER_CLIENT_SECRET),
            )
            sensor = agent(GrpcEventServer(port=GRPC_PORT, tls=link.server))
            assert sensor.grpc_host is not None
            exporter = export(PullOverGrpc(host=sensor.grpc_host, port=GRPC_PORT, tls=link.client))
            policy = MutualTlsNetworkPolicyArgs(
                namespace=ns,
                server=falco.SELECTOR,
                port=GRPC_PORT,
                client=event_export.EXPORTER_SELECTOR,
                client_namespace=ns.name,
                scraped_ports=[falco.METRICS_PORT],
                scrapers=args.scraping.prometheus,
            )
        MutualTlsNetworkPolicy(f"{name}-mtls-clients-only", policy, child)

        self.upstream_dashboards = {**sensor.dashboards, **exporter.dashboards}
        self.endpoint: str = exporter.endpoint
        self.ca_cert_pem: pulumi.Output[str] = link.ca_cert_pem
        self.client_secret: str = link.client.secret
        self.certificate_expiry: dict[str, pulumi.Output[str]] = link.valid_until
        self.register_outputs({"endpoint": self.endpoint, "caCertPem": self.ca_cert_pem})
