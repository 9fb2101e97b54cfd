"""A spoke trusts the certificate its hub's Ingress serves, for real.

The hub runs under mocks with ``TlsEmulator`` issuing real keys and certificates from its
pulumi-tls inputs; the spoke reads that hub's real exports. A TLS server (Python's ssl) then
serves the hub's Ingress Secret (`tls.crt`, the chain; `tls.key`) on loopback, and a client
trusting only the `ca.crt` of the spoke's `fleet-hub` Secret dials it by the name the spoke
sends to: the handshake must succeed; by another name, or trusting another CA, it must fail.
"""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from fleet import HUB_STACK, hub_config, secret_data
from harness import ProgramRun, environment_config, run_program, stack_reference
from rendering import Obj
from tls_emulator import TlsEmulator

from components.fleet_hub import INGRESS, INGRESS_TLS_SECRET
from components.fleet_spoke import FLEET_OUTPUT, SECRET

SPOKE = "spoke-a"


@pytest.fixture(scope="module")
def issued() -> tuple[ProgramRun, ProgramRun]:
    """The committed hub with real PKI, and spoke-a reading it."""
    hub = run_program(hub_config(), stack="hub", emulators=[TlsEmulator()])
    spoke = run_program(environment_config(SPOKE), stack=SPOKE, reads=stack_reference(hub, HUB_STACK))
    return hub, spoke


@pytest.fixture(scope="module")
def served(issued, tmp_path_factory) -> Path:
    """The hub's Ingress Secret as files, as the ingress controller loads it."""
    hub, _ = issued
    secret = secret_data(Obj("program", hub.manifest("Secret", INGRESS_TLS_SECRET)))
    where = tmp_path_factory.mktemp("hub-tls")
    (where / "tls.crt").write_text(secret["tls.crt"])
    (where / "tls.key").write_text(secret["tls.key"])
    return where


def ca_of(spoke: ProgramRun) -> str:
    secrets = [m for m in spoke.manifests() if m["kind"] == "Secret" and m["metadata"]["name"] == SECRET]
    assert secrets, f"spoke has no {SECRET} Secret"
    cas = {secret_data(Obj("program", m))["ca.crt"] for m in secrets}
    assert len(cas) == 1, "the spoke's namespaces trust different CAs"
    return cas.pop()


def handshake(served: Path, trusted_ca: str, server_hostname: str) -> str:
    """A TLS handshake from a client trusting only ``trusted_ca`` and checking the name
    ``server_hostname``, to a server with the hub's certificate: "ok", or why it failed."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(served / "tls.crt", served / "tls.key")
    client_context = ssl.create_default_context(cadata=trusted_ca)  # verifies the chain and the name
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        try:
            with server_context.wrap_socket(connection, server_side=True) as tls:
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError):
            pass  # the client refused the certificate

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_context.wrap_socket(raw, server_hostname=server_hostname) as tls,
        ):
            return tls.recv(2).decode()
    except ssl.SSLCertVerificationError as error:
        return error.verify_message
    finally:
        server.join(timeout=10)
        listener.close()


def ingress_host(hub: ProgramRun) -> str:
    (rule,) = hub.manifest("Ingress", INGRESS)["spec"]["rules"]
    return rule["host"]


def test_the_spoke_trusts_the_ca_the_hub_exports(issued):
    hub, spoke = issued
    exported = hub.exports[FLEET_OUTPUT].value["caCertPem"]
    assert ca_of(spoke) == exported
    ca = x509.load_pem_x509_certificate(exported.encode())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_spoke_dials_the_name_the_ingress_serves(issued):
    hub, spoke = issued
    host = ingress_host(hub)
    (tls,) = hub.manifest("Ingress", INGRESS)["spec"]["tls"]
    assert tls["hosts"] == [host] and tls["secretName"] == INGRESS_TLS_SECRET
    for url in spoke.exports[FLEET_OUTPUT].value["endpoints"].values():
        assert urlsplit(url).hostname == host


def test_a_client_trusting_the_spokes_ca_completes_the_handshake_with_the_ingress_host(issued, served):
    hub, spoke = issued
    assert handshake(served, ca_of(spoke), ingress_host(hub)) == "ok"


def test_by_another_name_the_handshake_fails(issued, served):
    hub, spoke = issued
    refused = handshake(served, ca_of(spoke), f"other.{ingress_host(hub)}")
    assert refused.startswith("Hostname mismatch"), refused


def test_trusting_another_ca_the_handshake_fails(issued, served):
    """The hub's other CA (Falco's mTLS one, a real CA of the same stack) is not the one that
    signed the Ingress certificate."""
    hub, _ = issued
    other = hub.exports["mtlsCaCertPem"].value
    assert "BEGIN CERTIFICATE" in other
    refused = handshake(served, other, ingress_host(hub))
    assert refused == "self-signed certificate in certificate chain", refused
