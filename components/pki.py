"""MutualTlsPki: a private CA and the server and client certificates of one mTLS link."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_tls as tls

from components import manifests
from components.namespaces import Namespace
from components.pki_config import KeyAlgorithm
from components.restarts import restart_when_changed, sha256_of

KEY_PARAMETERS: dict[KeyAlgorithm, dict] = {
    "ECDSA-P256": {"algorithm": "ECDSA", "ecdsa_curve": "P256"},
    "RSA-2048": {"algorithm": "RSA", "rsa_bits": 2048},
    "RSA-4096": {"algorithm": "RSA", "rsa_bits": 4096},
}


def service_dns_names(service: str, namespace: str) -> list[str]:
    """Every name a client in the cluster may dial a Service by."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


@dataclass(frozen=True)
class ServerIdentity:
    service: str  # the Service clients dial; its DNS names go in the certificate
    namespace: Namespace
    secret: str  # Secret holding server.key, server.crt, ca.crt
    bundle_key: str | None = None  # also key + certificate as one PEM under this key (falco.pem)


@dataclass(frozen=True)
class ClientIdentity:
    common_name: str
    namespace: Namespace
    secret: str  # Secret holding client.key, client.crt, ca.crt


@dataclass(frozen=True)
class MutualTlsPkiArgs:
    server: ServerIdentity
    client: ClientIdentity
    key_algorithm: KeyAlgorithm
    validity_hours: int
    early_renewal_hours: int
    ca_validity_hours: int


# On the pod template of every workload that mounts the material.
CHECKSUM_ANNOTATION = "checksum/mtls"


@dataclass(frozen=True)
class TlsMount:
    """What a chart needs to mount one side of the link."""

    secret: str
    # Changes whenever any certificate of the link changes (see ``restart_on_rotation``).
    checksum: pulumi.Output[str]
    ready: pulumi.Resource  # the Secret's ConfigGroup: mount only after it exists

    def restart_on_rotation(self, kind: str, name: str) -> pulumi.ResourceTransform:
        """A transform for the Chart that renders the workload ``kind``/``name`` (apps/v1):
        the certificates' checksum on its pod template, so that its pods restart when a
        certificate is renewed instead of serving the old one (components/restarts.py)."""
        return restart_when_changed(kind, name, CHECKSUM_ANNOTATION, self.checksum)


class MutualTlsPki(pulumi.ComponentResource):
    """Issues a CA, a server certificate for exactly the names clients dial (server_auth only)
    and a client certificate (client_auth only), and stores them only as Kubernetes Secrets
    in the layouts the charts mount. Private keys are Pulumi secrets throughout.
    """

    def __init__(self, name: str, args: MutualTlsPkiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:pki:MutualTlsPki", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key = KEY_PARAMETERS[args.key_algorithm]
        # ECDSA keys sign; only RSA keys also encipher (RSA key exchange).
        key_usages = ["digital_signature"] + (["key_encipherment"] if key["algorithm"] == "RSA" else [])

        ca_key = tls.PrivateKey(f"{name}-ca", **key, opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(common_name=f"{name} CA", organization="runtime-defense"),
            is_ca_certificate=True,
            set_subject_key_id=True,
            allowed_uses=["cert_signing", "crl_signing"],
            validity_period_hours=args.ca_validity_hours,
            early_renewal_hours=args.early_renewal_hours,
            opts=child,
        )

        def issue(role: str, common_name: str, dns_names: list[str] | None, usage: str):
            private_key = tls.PrivateKey(f"{name}-{role}", **key, opts=child)
            request = tls.CertRequest(
                f"{name}-{role}",
                private_key_pem=private_key.private_key_pem,
                subject=tls.CertRequestSubjectArgs(common_name=common_name, organization="runtime-defense"),
                dns_names=dns_names,
                opts=child,
            )
            cert = tls.LocallySignedCert(
                f"{name}-{role}",
                cert_request_pem=request.cert_request_pem,
                ca_private_key_pem=ca_key.private_key_pem,
                ca_cert_pem=ca.cert_pem,
                allowed_uses=[*key_usages, usage],
                validity_period_hours=args.validity_hours,
                early_renewal_hours=args.early_renewal_hours,
                set_subject_key_id=True,
                opts=child,
            )
            key_pem: pulumi.Output[str] = pulumi.Output.secret(private_key.private_key_pem)
            return key_pem, cert

        server, client = args.server, args.client
        self.server_dns_names = service_dns_names(server.service, server.namespace.name)
        server_key, server_issued = issue("server", self.server_dns_names[-1], self.server_dns_names, "server_auth")
        client_key, client_issued = issue("client", client.common_name, None, "client_auth")
        server_cert, client_cert = server_issued.cert_pem, client_issued.cert_pem
        self.ca_cert_pem: pulumi.Output[str] = ca.cert_pem
        # When each certificate stops being valid (RFC 3339), for the expiry alert.
        self.valid_until: dict[str, pulumi.Output[str]] = {
            "CA": ca.validity_end_time,
            "server": server_issued.validity_end_time,
            "client": client_issued.validity_end_time,
        }

        server_data: dict[str, pulumi.Input[str]] = {
            "server.key": server_key,
            "server.crt": server_cert,
            "ca.crt": ca.cert_pem,
        }
        if server.bundle_key:
            server_data[server.bundle_key] = pulumi.Output.concat(server_key, server_cert)
        secrets = manifests.apply(
            f"{name}-secrets",
            [
                manifests.secret(server.secret, server.namespace.ref, server_data),
                manifests.secret(
                    client.secret,
                    client.namespace.ref,
                    {"client.key": client_key, "client.crt": client_cert, "ca.crt": ca.cert_pem},
                ),
            ],
            child,
        )
        checksum = sha256_of(ca.cert_pem, server_cert, client_cert)
        self.server = TlsMount(secret=server.secret, checksum=checksum, ready=secrets)
        self.client = TlsMount(secret=client.secret, checksum=checksum, ready=secrets)
        self.register_outputs(
            {"caCertPem": self.ca_cert_pem, "serverDnsNames": self.server_dns_names, "checksum": checksum}
        )
