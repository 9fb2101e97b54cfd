"""Real mutual TLS with the material the program puts in its Kubernetes Secrets.

The program runs under mocks with ``TlsEmulator`` issuing real keys and certificates from
its pulumi-tls inputs. The PEMs are then taken from the Secrets exactly as the pods mount
them, a real gRPC server (Falco's side in ``tutorial``) and a real HTTPS server
(Falcosidekick's side in ``current``) are started on loopback with client certificates
required, and real clients dial the name the program configures the client to dial.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from harness import run_program
from tls_emulator import TlsEmulator

REFUSED = "refused"


@dataclass(frozen=True)
class Side:
    key: str
    cert: str
    ca: str


@dataclass(frozen=True)
class Link:
    server: Side
    client: Side
    dialled_host: str  # the name the program tells the client to dial


def link_from(run, profile: str) -> Link:
    if profile == "current":
        server = run.manifest("Secret", "falcosidekick-tls")["stringData"]
        client = run.manifest("Secret", "falco-client-tls")["stringData"]
        url = run.chart_values("falco")["falco"]["http_output"]["url"]
        host = urlsplit(url).hostname
    else:
        server = run.manifest("Secret", "falco-grpc-tls")["stringData"]
        client = run.manifest("Secret", "falco-exporter-certs")["stringData"]
        host = run.chart_values("falco-exporter")["falco"]["grpcHostname"]
    return Link(
        server=Side(server["server.key"], server["server.crt"], server["ca.crt"]),
        client=Side(client["client.key"], client["client.crt"], client["ca.crt"]),
        dialled_host=host,
    )


def issue(profile: str, pki: dict | None = None, backdate: dict | None = None) -> Link:
    config = {"profile": profile, **({"pki": pki} if pki else {})}
    return link_from(run_program(config, emulators=[TlsEmulator(backdate)]), profile)


@pytest.fixture(scope="module")
def tutorial() -> Link:
    return issue("tutorial")


@pytest.fixture(scope="module")
def current() -> Link:
    return issue("current")


@pytest.fixture(scope="module")
def other_ca() -> Link:
    """A second, unrelated PKI: its client certificate must not be accepted."""
    return issue("current")


def expired_client(profile: str) -> Link:
    """Server and CA current, the client's certificate expired an hour ago."""
    return issue(
        profile,
        pki={"validityHours": 1, "earlyRenewalHours": 0},
        backdate={"falco-mtls-client": datetime.timedelta(hours=2)},
    )


# -- gRPC: falco-exporter dialling Falco's gRPC server (tutorial) ---------------------------

METHOD = "/falco.outputs.service/get"


@pytest.fixture
def grpc_server(request):
    servers = []

    def start(side: Side) -> int:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler = grpc.method_handlers_generic_handler(
            "falco.outputs.service", {"get": grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"event")}
        )
        server.add_generic_rpc_handlers((handler,))
        credentials = grpc.ssl_server_credentials(
            [(side.key.encode(), side.cert.encode())], root_certificates=side.ca.encode(), require_client_auth=True
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
        server.start()
        servers.append(server)
        return port

    yield start
    for server in servers:
        server.stop(None)


def grpc_call(port: int, host: str, ca: str, client: Side | None) -> str:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.encode(),
        private_key=client.key.encode() if client else None,
        certificate_chain=client.cert.encode() if client else None,
    )
    options = [("grpc.ssl_target_name_override", host), ("grpc.default_authority", host)]
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        try:
            return channel.unary_unary(METHOD)(b"", timeout=5).decode()
        except grpc.RpcError as error:
            assert error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), error
            return REFUSED


def test_grpc_client_with_its_certificate_gets_events(grpc_server, tutorial):
    port = grpc_server(tutorial.server)
    assert grpc_call(port, tutorial.dialled_host, tutorial.client.ca, tutorial.client) == "event"


def test_grpc_refuses_a_client_without_certificate(grpc_server, tutorial):
    port = grpc_server(tutorial.server)
    assert grpc_call(port, tutorial.dialled_host, tutorial.client.ca, None) == REFUSED


def test_grpc_refuses_a_certificate_from_another_ca(grpc_server, tutorial, other_ca):
    port = grpc_server(tutorial.server)
    assert grpc_call(port, tutorial.dialled_host, tutorial.client.ca, other_ca.client) == REFUSED


def test_grpc_client_refuses_a_name_not_in_the_server_certificate(grpc_server, tutorial):
    port = grpc_server(tutorial.server)
    assert grpc_call(port, "falco.falco.svc.cluster.local", tutorial.client.ca, tutorial.client) == REFUSED


def test_grpc_refuses_an_expired_client_certificate(grpc_server):
    link = expired_client("tutorial")
    port = grpc_server(link.server)
    assert grpc_call(port, link.dialled_host, link.client.ca, link.client) == REFUSED


def test_grpc_refuses_the_server_certificate_used_as_a_client_certificate(grpc_server, tutorial):
    port = grpc_server(tutorial.server)
    assert grpc_call(port, tutorial.dialled_host, tutorial.client.ca, tutorial.server) == REFUSED


def test_grpc_works_with_rsa_keys(grpc_server):
    link = issue("tutorial", pki={"keyAlgorithm": "RSA-2048"})
    port = grpc_server(link.server)
    assert grpc_call(port, link.dialled_host, link.client.ca, link.client) == "event"


# -- HTTPS: Falco posting to Falcosidekick's TLS server (current) ----------------------------


class _EventHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def write_pair(directory: Path, name: str, side: Side) -> tuple[str, str]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_text(side.cert)
    key.write_text(side.key)
    return str(cert), str(key)


@pytest.fixture
def https_server(tmp_path):
    servers = []

    def start(side: Side) -> int:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*write_pair(tmp_path, "server", side))
        context.load_verify_locations(cadata=side.ca)
        context.verify_mode = ssl.CERT_REQUIRED  # as Falcosidekick's RequireAndVerifyClientCert
        server = ThreadingHTTPServer(("127.0.0.1", 0), _EventHandler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def post_event(tmp_path: Path, port: int, host: str, ca: str, client: Side | None) -> str:
    context = ssl.create_default_context(cadata=ca)
    if client is not None:
        context.load_cert_chain(*write_pair(tmp_path, "client", client))
    request = (
        f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    ).encode()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            tls.sendall(request)
            response = tls.recv(4096)
    except (ssl.SSLError, ConnectionError):
        return REFUSED
    return response.split(b" ", 2)[1].decode() if response else REFUSED


def test_https_client_with_its_certificate_is_accepted(https_server, current, tmp_path):
    port = https_server(current.server)
    assert post_event(tmp_path, port, current.dialled_host, current.client.ca, current.client) == "200"


def test_https_refuses_a_client_without_certificate(https_server, current, tmp_path):
    port = https_server(current.server)
    assert post_event(tmp_path, port, current.dialled_host, current.client.ca, None) == REFUSED


def test_https_refuses_a_certificate_from_another_ca(https_server, current, other_ca, tmp_path):
    port = https_server(current.server)
    assert post_event(tmp_path, port, current.dialled_host, current.client.ca, other_ca.client) == REFUSED


def test_https_client_refuses_a_name_not_in_the_server_certificate(https_server, current, tmp_path):
    port = https_server(current.server)
    wrong = "falcosidekick.default.svc.cluster.local"
    assert post_event(tmp_path, port, wrong, current.client.ca, current.client) == REFUSED


def test_https_refuses_an_expired_client_certificate(https_server, tmp_path):
    link = expired_client("current")
    port = https_server(link.server)
    assert post_event(tmp_path, port, link.dialled_host, link.client.ca, link.client) == REFUSED


def test_https_refuses_the_server_certificate_used_as_a_client_certificate(https_server, current, tmp_path):
    port = https_server(current.server)
    assert post_event(tmp_path, port, current.dialled_host, current.client.ca, current.server) == REFUSED


# -- the certificates themselves ------------------------------------------------------------


@pytest.mark.parametrize("profile", ["current", "tutorial"])
def test_certificates_carry_only_their_own_purpose(profile, current, tutorial):
    link = current if profile == "current" else tutorial
    ca = x509.load_pem_x509_certificate(link.server.ca.encode())
    server = x509.load_pem_x509_certificate(link.server.cert.encode())
    client = x509.load_pem_x509_certificate(link.client.cert.encode())

    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert constraints.ca and usage.key_cert_sign and usage.crl_sign and not usage.digital_signature

    def extended(cert):
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)

    assert extended(server) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert extended(client) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    for leaf in (server, client):
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert leaf.issuer == ca.subject

    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert link.dialled_host in names.get_values_for_type(x509.DNSName)


def test_validity_comes_from_config():
    link = issue("current", pki={"validityHours": 48, "earlyRenewalHours": 12, "caValidityHours": 96})
    for pem, hours in ((link.client.cert, 48), (link.server.cert, 48), (link.server.ca, 96)):
        cert = x509.load_pem_x509_certificate(pem.encode())
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(hours=hours)


@pytest.mark.parametrize(
    ("algorithm", "key_type", "size"),
    [
        ("ECDSA-P256", ec.EllipticCurvePublicKey, 256),
        ("RSA-2048", rsa.RSAPublicKey, 2048),
        ("RSA-4096", rsa.RSAPublicKey, 4096),
    ],
)
def test_key_algorithm_comes_from_config(algorithm, key_type, size):
    link = issue("current", pki={"keyAlgorithm": algorithm})
    for pem in (link.client.cert, link.server.cert, link.server.ca):
        key = x509.load_pem_x509_certificate(pem.encode()).public_key()
        assert isinstance(key, key_type) and key.key_size == size
