"""FleetHub: the front door through which spokes send a hub their logs, events and metrics.

One DNS name, served by the cluster's ingress controller with a certificate the hub issues
(its CA is a stack output every spoke trusts), routes two paths to Loki's gateway: pushes of
logs and Falco's events, and Prometheus remote writes. The gateway checks each spoke's own
credentials (basic auth, one user per admitted spoke) and decides for it what it may write:
its logs go to the Loki tenant named after it (the gateway sets ``X-Scope-OrgID`` from the
authenticated user, whatever the request says), its metrics to a receiver of its own that
labels every series ``cluster=<spoke>``, whatever the series say. A spoke therefore cannot
write under another's name, and removing it from ``fleet.spokes`` deletes its credentials on
the next `pulumi up` without touching the others'.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_random as random
import pulumi_tls as tls

from components import manifests
from components.charts import ALLOY, helm_chart
from components.fleet_config import HubIngress
from components.fleet_sizing import HubShape, hub_load, hub_shape
from components.logging_stack import RELEASE as LOKI_RELEASE
from components.logging_stack import LokiTenancy, alloy_values
from components.namespaces import Namespace
from components.pki import KEY_PARAMETERS
from components.pki_config import PkiConfig
from components.sizing import CONTAINERS

# The loki chart's gateway (nginx): its Service "<fullname>-gateway" on port 80.
GATEWAY_SERVICE = f"{LOKI_RELEASE}-gateway"
GATEWAY_SERVICE_PORT = 80
GATEWAY_PODS = {"app.kubernetes.io/name": "loki", "app.kubernetes.io/component": "gateway"}
GATEWAY_PORT = 8080  # the container's (gateway.containerPort)
HTPASSWD_SECRET = "fleet-gateway-htpasswd"
INGRESS = "fleet-gateway"
INGRESS_TLS_SECRET = "fleet-gateway-tls"
LOGS_PATH = "/loki/api/v1/push"
METRICS_PATH = "/api/v1/write"
RECEIVER_RELEASE = "fleet-receiver"
RECEIVER_PODS = {"app.kubernetes.io/name": "alloy", "app.kubernetes.io/instance": RECEIVER_RELEASE}
RECEIVER_WRITE_PATH = "/api/v1/metrics/write"  # prometheus.receive_http's endpoint
GUARD = "fleet-spokes"


@dataclass(frozen=True)
class FleetHubArgs:
    cluster: str  # the hub's own name: its own telemetry's tenant and `cluster` label
    spokes: tuple[str, ...]
    receiver_ports: Mapping[str, int]
    ingress: HubIngress
    namespace: Namespace  # the logging namespace: the gateway, the Ingress and the receivers
    prometheus_write_url: str  # the hub Prometheus's remote-write receiver
    shape: HubShape
    pki: PkiConfig


class FleetHub(pulumi.ComponentResource):
    """Deploys the hub's front door: per-spoke credentials (random passwords, their bcrypt
    hashes in the gateway's htpasswd Secret), the Ingress with a certificate from a CA of the
    hub's, and a metrics receiver per spoke (Grafana Alloy) that labels every series with the
    spoke's name before writing it to the hub's Prometheus. While spokes are admitted, a
    protected ConfigMap naming them makes `pulumi destroy` of the hub stop and say so.
    """

    def __init__(self, name: str, args: FleetHubArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:fleet:FleetHub", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = args.namespace

        passwords = {
            spoke: random.RandomPassword(f"{name}-{spoke}", length=32, special=False, opts=child)
            for spoke in args.spokes
        }
        # Every spoke's password, keyed by its name: a secret output, read by each spoke's stack.
        self.credentials: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            pulumi.Output.all(**{spoke: password.result for spoke, password in passwords.items()})
        )
        htpasswd = pulumi.Output.all(*[passwords[s].bcrypt_hash for s in args.spokes]).apply(
            lambda hashes: "".join(f"{spoke}:{hashed}\n" for spoke, hashed in zip(args.spokes, hashes, strict=True))
        )
        credentials_secret = manifests.apply(
            f"{name}-htpasswd", [manifests.secret(HTPASSWD_SECRET, ns.ref, {".htpasswd": htpasswd})], child
        )

        self.ca_cert_pem, tls_secret = self._certificate(name, args, child)
        host = args.ingress.host
        self.endpoints = {"logs": f"https://{host}{LOGS_PATH}", "metrics": f"https://{host}{METRICS_PATH}"}
        manifests.apply(
            f"{name}-ingress",
            [self._ingress(args)],
            pulumi.ResourceOptions(parent=self, depends_on=[tls_secret]),
        )
        self.receiver = helm_chart(
            f"{name}-receiver",
            ALLOY,
            release=RECEIVER_RELEASE,
            namespace=ns.ref,
            values=self._receiver_values(args),
            opts=child,
        )
        self.tenancy = LokiTenancy(
            own_tenant=args.cluster,
            htpasswd_secret=HTPASSWD_SECRET,
            http_snippet=receiver_map(args.receiver_ports),
            server_snippet=metrics_route(ns.name),
            ingestion_rate_mb=args.shape.loki_tenant_ingestion_rate_mb,
            max_streams=args.shape.loki_tenant_max_streams,
            ready=credentials_secret,
        )
        # `pulumi destroy` of a hub cuts off every spoke it admits: refused while there are any.
        manifests.apply(
            f"{name}-guard",
            [
                manifests.config_map(
                    GUARD,
                    ns.ref,
                    {
                        "spokes": "\n".join(args.spokes),
                        "note": "While fleet.spokes lists spokes, this object is protected and `pulumi destroy` "
                        "stops on it: destroying the hub would leave them sending to nothing. Remove them from "
                        "fleet.spokes and `pulumi up` (which revokes their credentials) first.",
                    },
                )
            ],
            # A transform reaches the object the ConfigGroup's provider creates (as retain_on_delete does).
            pulumi.ResourceOptions(parent=self, transforms=[protected] if args.spokes else []),
        )
        self.register_outputs({"endpoints": self.endpoints, "caCertPem": self.ca_cert_pem})

    @staticmethod
    def _certificate(
        name: str, args: FleetHubArgs, child: pulumi.ResourceOptions
    ) -> tuple[pulumi.Output[str], pulumi.Resource]:
        """A CA of the hub's and the certificate the Ingress serves for ``fleet.ingress.host``."""
        key = KEY_PARAMETERS[args.pki.key_algorithm]
        key_usages = ["digital_signature"] + (["key_encipherment"] if key["algorithm"] == "RSA" else [])
        ca_key = tls.PrivateKey(f"{name}-ca", **key, opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(
                common_name=f"{args.cluster} fleet CA", organization="runtime-defense"
            ),
            is_ca_certificate=True,
            set_subject_key_id=True,
            allowed_uses=["cert_signing", "crl_signing"],
            validity_period_hours=args.pki.ca_validity_hours,
            early_renewal_hours=args.pki.early_renewal_hours,
            opts=child,
        )
        server_key = tls.PrivateKey(f"{name}-ingress", **key, opts=child)
        request = tls.CertRequest(
            f"{name}-ingress",
            private_key_pem=server_key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=args.ingress.host, organization="runtime-defense"),
            dns_names=[args.ingress.host],
            opts=child,
        )
        server = tls.LocallySignedCert(
            f"{name}-ingress",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca.cert_pem,
            allowed_uses=[*key_usages, "server_auth"],
            validity_period_hours=args.pki.validity_hours,
            early_renewal_hours=args.pki.early_renewal_hours,
            set_subject_key_id=True,
            opts=child,
        )
        secret = manifests.apply(
            f"{name}-ingress-tls",
            [
                manifests.secret(
                    INGRESS_TLS_SECRET,
                    args.namespace.ref,
                    # The chain a client needs: the server's certificate, then the CA's.
                    {
                        "tls.crt": pulumi.Output.concat(server.cert_pem, ca.cert_pem),
                        "tls.key": server_key.private_key_pem,
                    },
                    type_="kubernetes.io/tls",
                )
            ],
            child,
        )
        return ca.cert_pem, secret

    @staticmethod
    def _ingress(args: FleetHubArgs) -> dict[str, Any]:
        """Only the two push paths reach the gateway from outside; its query paths do not."""
        backend = {"service": {"name": GATEWAY_SERVICE, "port": {"number": GATEWAY_SERVICE_PORT}}}
        spec: dict[str, Any] = {
            "tls": [{"hosts": [args.ingress.host], "secretName": INGRESS_TLS_SECRET}],
            "rules": [
                {
                    "host": args.ingress.host,
                    "http": {
                        "paths": [
                            {"path": path, "pathType": "Exact", "backend": backend}
                            for path in (LOGS_PATH, METRICS_PATH)
                        ]
                    },
                }
            ],
        }
        if args.ingress.class_name:
            spec["ingressClassName"] = args.ingress.class_name
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": manifests.metadata(INGRESS, args.namespace.ref),
            "spec": spec,
        }

    @staticmethod
    def _receiver_values(args: FleetHubArgs) -> dict[str, Any]:
        shape = args.shape
        return {
            # The Service is named after the release, as the gateway's route to it (metrics_route) says;
            # the chart would otherwise name it "<release>-alloy" (templates/_helpers.tpl alloy.fullname).
            "fullnameOverride": RECEIVER_RELEASE,
            **alloy_values(
                {
                    "configMap": {"content": receiver_pipeline(args.receiver_ports, args.prometheus_write_url)},
                    # Read by alloy 1.11.1 templates/containers/_agent.yaml (ports) and service.yaml.
                    "extraPorts": [
                        {"name": f"spoke-{index}", "port": port, "targetPort": port, "protocol": "TCP"}
                        for index, port in enumerate(args.receiver_ports.values())
                    ],
                    "resources": {
                        "requests": {"cpu": CONTAINERS["alloy"].cpu, "memory": shape.receiver_memory_request},
                        "limits": {"memory": shape.receiver_memory_limit},
                    },
                },
                {"type": "deployment", "replicas": shape.receiver_replicas},
            ),
            # The receivers read nothing of the cluster's: no ClusterRole for pod discovery.
            "rbac": {"create": False},
        }


def protected(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult:
    """`pulumi destroy` refuses to delete the resource (and so stops) until it is unprotected."""
    return pulumi.ResourceTransformResult(
        props=args.props, opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(protect=True))
    )


def fleet_shape(spokes: int, nodes_per_cluster: int, retention: str) -> HubShape:
    """The hub's shape for its spokes and itself, each of ``nodes_per_cluster`` nodes, keeping
    logs for ``retention`` (a duration such as 30d or 720h)."""
    return hub_shape(hub_load(spokes + 1, nodes_per_cluster, retention_days=max(1, round(_hours(retention) / 24))))


def _hours(duration: str) -> float:
    units = {"ms": 1 / 3_600_000, "s": 1 / 3600, "m": 1 / 60, "h": 1, "d": 24, "w": 168, "y": 8760}
    return sum(float(number) * units[unit] for number, unit in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", duration))


def receiver_pipeline(ports: Mapping[str, int], prometheus_write_url: str) -> str:
    """Grafana Alloy: one remote-write receiver per spoke, each on its port, overwriting
    ``cluster`` with that spoke's name on every series before the hub's Prometheus."""
    blocks = []
    for spoke, port in ports.items():
        label = spoke.replace("-", "_")
        blocks.append(
            f"""prometheus.receive_http "{label}" {{
  http {{
    listen_address = "0.0.0.0"
    listen_port    = {port}
  }}
  forward_to = [prometheus.relabel.{label}.receiver]
}}

prometheus.relabel "{label}" {{
  rule {{
    target_label = "cluster"
    replacement  = "{spoke}"
  }}
  forward_to = [prometheus.remote_write.hub.receiver]
}}
"""
        )
    blocks.append(
        f"""prometheus.remote_write "hub" {{
  endpoint {{
    url = "{prometheus_write_url}"
  }}
}}
"""
    )
    header = (
        "// Each spoke's metrics, as the hub's gateway routes them after checking the spoke's\n"
        "// credentials: the receiver on the spoke's port labels every series with its name.\n\n"
    )
    return header + "\n".join(blocks)


def receiver_map(ports: Mapping[str, int]) -> str:
    """nginx (the gateway's http block): the authenticated spoke -> its receiver's port."""
    lines = [f"  {spoke} {port};" for spoke, port in ports.items()]
    return "\n".join(["map $remote_user $fleet_receiver_port {", '  default "";', *lines, "}"])


def metrics_route(namespace: str) -> str:
    """nginx (the gateway's server block): a spoke's remote write, to its own receiver only.

    No `if` refuses a user without a port: nginx would run it before basic auth, answering
    a request without valid credentials 403 instead of 401 and telling spoke names from
    others. Every user basic auth admits has a port (both come from fleet.spokes)."""
    receiver = f"{RECEIVER_RELEASE}.{namespace}.svc.cluster.local"
    return "\n".join(
        [
            f"location = {METRICS_PATH} {{",
            f"  proxy_pass http://{receiver}:$fleet_receiver_port{RECEIVER_WRITE_PATH};",
            "}",
        ]
    )
