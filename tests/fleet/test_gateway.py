"""Each spoke's credentials admit that spoke only, as the hub's gateway (nginx) enforces them.

The hub's rendered gateway configuration (the loki chart's nginx.conf, with the program's
location snippet, map and metrics route) runs in a real nginx with the rendered htpasswd
Secret (bcrypt hashes of the hub's passwords). Only what must change to run it here is
changed: the listen address, the pid, temp and htpasswd paths, the resolver (dropped), and
the in-cluster Services it proxies to, each replaced by a stub server on a loopback address
that records what reaches it; the auth, the location snippet, the map and the metrics route
are kept as rendered. Each spoke then pushes with the password from its own rendered
`fleet-hub` Secret.

Without nginx, the receivers the map names are checked in the hub's rendered objects: the
Alloy on each port labels every series with the spoke the map sends there.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import random
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fleet import (
    SPOKES,
    UPSTREAM,
    block,
    container,
    endpoints,
    exact_location,
    gateway_conf,
    gateway_pod,
    labelled_by_port,
    mounted_file,
    receiver_pod,
    receiver_ports,
    receiver_routes,
    secret_data,
    spoke,
    upstreams,
)
from references import selects
from tools import require_nginx

from components.fleet_hub import (
    HTPASSWD_SECRET,
    LOGS_PATH,
    METRICS_PATH,
    RECEIVER_WRITE_PATH,
)
from components.fleet_spoke import SECRET

needs_nginx = pytest.mark.usefixtures("needs_nginx")
PUSH = b'{"streams": [{"stream": {"job": "test"}, "values": [["1700000000000000000", "a line"]]}]}'
REMOTE_WRITE = b"\x0a\x03snappy-compressed protobuf, as far as the gateway cares"


def password(name: str) -> str:
    """A spoke's password as its senders read it: from its rendered `fleet-hub` Secret."""
    secrets = [o for o in spoke(name).of_kind("Secret") if o.name == SECRET]
    assert secrets
    (found,) = {secret_data(s)["password"] for s in secrets}
    return found


# -- the receivers, without nginx -----------------------------------------------------------------


def test_every_series_from_a_receiver_port_is_labelled_with_the_spoke_the_map_sends_there(hub_stack):
    mapped = receiver_ports(gateway_conf(hub_stack))
    assert set(mapped) == set(SPOKES)
    assert labelled_by_port(hub_stack) == {port: s for s, port in mapped.items()}


def test_the_receivers_write_to_the_hubs_prometheus(hub_stack):
    urls = {url for _, url in receiver_routes(hub_stack).values()}
    assert urls
    for url in urls:
        (target,) = list(UPSTREAM.finditer(url))
        assert target["path"] == "/api/v1/write"
        service, namespace = target["host"].split(".")[:2]
        prometheus = [e.pod.owner for e in endpoints(hub_stack, service, namespace, int(target["port"]))]
        assert prometheus and {p.kind for p in prometheus} == {"Prometheus"}, [str(p) for p in prometheus]
        # The endpoint /api/v1/write exists only with the receiver on.
        assert all(p.body["spec"]["enableRemoteWriteReceiver"] is True for p in prometheus)


def test_the_receivers_service_and_pods_expose_exactly_the_mapped_ports(hub_stack):
    mapped = set(receiver_ports(gateway_conf(hub_stack)).values())
    pod = receiver_pod(hub_stack)
    alloy_http = 12345  # Alloy's own HTTP server (its metrics), --server.http.listen-addr
    assert f"--server.http.listen-addr=0.0.0.0:{alloy_http}" in container(pod, "alloy")["args"]
    declared = {int(p["containerPort"]) for p in container(pod, "alloy").get("ports") or []}
    assert declared - {alloy_http} == mapped
    (service,) = [
        o
        for o in hub_stack.of_kind("Service")
        if o.namespace == pod.owner.namespace and selects(o.body["spec"].get("selector"), pod.labels)
    ]
    assert {int(p["port"]) for p in service.body["spec"]["ports"]} - {alloy_http} == mapped
    for port in mapped:
        behind = endpoints(hub_stack, service.name, service.namespace, port)
        assert [(e.pod.owner.key, e.port) for e in behind] == [(pod.owner.key, port)]


def user_file(conf: str) -> str:
    """The file of users and password hashes the gateway's server checks every request against."""
    found = re.findall(r"auth_basic_user_file\s+(\S+);", block(conf, "server"))
    assert len(found) == 1, f"the gateway checks credentials against {found or 'no file'}"
    return found[0]


def test_the_gateway_checks_the_htpasswd_secret_the_hub_renders(hub_stack):
    conf = gateway_conf(hub_stack)
    path = user_file(conf)
    pod = gateway_pod(hub_stack)
    mounted = mounted_file(hub_stack, pod, pod.containers(init=False)[0]["name"], path)
    assert mounted == secret_data(hub_stack.get("Secret", HTPASSWD_SECRET))[".htpasswd"]
    users = [line.split(":", 1) for line in mounted.splitlines()]
    assert [user for user, _ in users] == list(SPOKES)
    # Every user basic auth admits has a receiver to write to.
    assert set(receiver_ports(conf)) == {user for user, _ in users}
    assert all(re.fullmatch(r"\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}", hashed) for _, hashed in users)


# -- nginx ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


@dataclass
class Stub:
    """An HTTP server standing for an in-cluster Service: it records each request, answers 204."""

    name: str
    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)

    @classmethod
    def start(cls, name: str, address: str, port: int = 0) -> Stub:
        stub: Stub

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub.received.append(Received(self.command, self.path, list(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            do_GET = do_PUT = do_POST

            def log_message(self, *args) -> None:
                pass

        stub = cls(name, ThreadingHTTPServer((address, port), Handler))
        threading.Thread(target=stub.server.serve_forever, args=(0.05,), daemon=True).start()
        return stub

    @property
    def port(self) -> int:
        return self.server.server_address[1]


@dataclass
class Gateway:
    address: str
    port: int
    stubs: dict[str, Stub]  # by what they stand for: "<service>:<port>"
    log: Path

    def received(self) -> dict[str, list[Received]]:
        return {name: stub.received for name, stub in self.stubs.items() if stub.received}

    def post(self, path: str, user: str | None = None, secret: str | None = None, **headers: str) -> int:
        connection = http.client.HTTPConnection(self.address, self.port, timeout=10)
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        if user is not None:
            sent["Authorization"] = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
        try:
            connection.request("POST", path, body=PUSH if path == LOGS_PATH else REMOTE_WRITE, headers=sent)
            return connection.getresponse().status
        finally:
            connection.close()


def loopback_address() -> str:
    """An address of its own on the loopback network, so that the stubs can take the receiver
    ports the map names whatever else listens on 127.0.0.1."""
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
    try:
        socket.create_server((address, 0)).close()
    except OSError:
        return "127.0.0.1"  # a system without the whole 127/8 on its loopback
    return address


def free_port(address: str) -> int:
    with socket.create_server((address, 0)) as probe:
        return probe.getsockname()[1]


def local_conf(conf: str, address: str, port: int, prefix: Path, htpasswd: Path, stubs: dict[str, Stub]) -> str:
    """The rendered nginx.conf with only what running here needs changed; every change must
    find what it changes, so a chart whose configuration moved fails here instead of running
    something else."""

    def sub(pattern: str, replacement, text: str, count: int | None = None) -> str:
        changed, made = re.subn(pattern, replacement, text, flags=re.M)
        assert made and (count is None or made == count), f"{pattern!r}: {made} changes"
        return changed

    conf = sub(r"^pid\s+\S+;", f"pid {prefix}/nginx.pid;", conf, 1)
    conf = sub(
        r"^(\s*)(client_body|proxy|fastcgi|uwsgi|scgi)_temp_path\s+\S+;",
        lambda m: f"{m[1]}{m[2]}_temp_path {prefix}/{m[2]}_temp;",
        conf,
        5,
    )
    conf = sub(r"^\s*resolver\s+[^;]*;\n", "", conf, 1)  # upstreams are addresses here
    listens = iter([f"    listen {address}:{port};\n"])
    conf = sub(r"^\s*listen\s+[^;]+;\n", lambda _: next(listens, ""), conf, 2)
    conf = sub(r"(auth_basic_user_file\s+)\S+;", lambda m: f"{m[1]}{htpasswd};", conf, 1)

    def to_stub(match: re.Match[str]) -> str:
        service = match["host"].split(".")[0]
        if match["port"].startswith("$"):  # the receiver the map picks: its stubs take those ports
            return f"http://{address}:{match['port']}{match['path'] or ''}"
        stub = stubs[f"{service}:{match['port']}"]
        return f"http://{address}:{stub.port}{match['path'] or ''}"

    conf = sub(UPSTREAM.pattern, to_stub, conf)
    assert "svc.cluster.local" not in conf and "/etc/nginx" not in conf and "/tmp/" not in conf.replace(str(prefix), "")
    return conf


def start_nginx(nginx: str, prefix: Path, address: str, port: int, cleanup: contextlib.ExitStack) -> Path:
    """nginx on ``prefix``/nginx.conf, in the foreground, until ``cleanup`` stops it; its log."""
    log = prefix / "nginx.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    cleanup.callback(stop)
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            pytest.fail(f"nginx exited ({process.returncode}):\n{log.read_text()}")
        try:
            socket.create_connection((address, port), timeout=1).close()
            return log
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"nginx did not listen on {address}:{port}:\n{log.read_text()}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def gateway(hub_stack) -> Iterator[Gateway]:
    """The hub's gateway, running: one nginx for the module."""
    nginx = require_nginx()
    conf = gateway_conf(hub_stack)
    address = loopback_address()
    stubs: dict[str, Stub] = {}
    with contextlib.ExitStack() as cleanup:

        def stub(key: str, port: int = 0) -> Stub:
            started = Stub.start(key, address, port)
            cleanup.callback(started.server.server_close)
            cleanup.callback(started.server.shutdown)
            return started

        for upstream in upstreams(block(conf, "server")):
            key = f"{upstream.service}:{upstream.port}"
            if not upstream.port.startswith("$") and key not in stubs:
                stubs[key] = stub(key)
        for user, port in receiver_ports(conf).items():
            stubs[f"receiver of {user}:{port}"] = stub(f"receiver of {user}", port)
        # World-readable: nginx's workers run as an unprivileged user when the master is root.
        prefix = Path(tempfile.mkdtemp(prefix="fleet-gateway-", dir="/tmp"))
        cleanup.callback(shutil.rmtree, prefix, ignore_errors=True)
        prefix.chmod(0o755)
        pod = gateway_pod(hub_stack)
        htpasswd = prefix / "htpasswd"
        htpasswd.write_text(mounted_file(hub_stack, pod, pod.containers(init=False)[0]["name"], user_file(conf)))
        htpasswd.chmod(0o644)
        port = free_port(address)
        (prefix / "nginx.conf").write_text(local_conf(conf, address, port, prefix, htpasswd, stubs))
        yield Gateway(address, port, stubs, start_nginx(nginx, prefix, address, port, cleanup))


@pytest.fixture
def fresh(gateway) -> Gateway:
    for stub in gateway.stubs.values():
        stub.received.clear()
    return gateway


def other(name: str) -> str:
    return next(s for s in SPOKES if s != name)


@needs_nginx
@pytest.mark.parametrize("name", SPOKES)
@pytest.mark.parametrize("claimed", [None, "other spoke", "hub"])
def test_a_spokes_push_lands_in_its_own_tenant_whatever_it_claims(fresh, hub_stack, name, claimed):
    headers = {} if claimed is None else {"X_Scope_OrgID": other(name) if claimed == "other spoke" else "hub"}
    assert fresh.post(LOGS_PATH, name, password(name), **headers) == 204, fresh.log.read_text()[-2000:]
    (write,) = {u for u in upstreams(exact_location(gateway_conf(hub_stack), LOGS_PATH))}
    received = fresh.received()
    assert list(received) == [f"{write.service}:{write.port}"], received
    (request,) = received[f"{write.service}:{write.port}"]
    assert (request.method, request.path, request.body) == ("POST", LOGS_PATH, PUSH)
    assert request.header("X-Scope-OrgID") == [name]


@needs_nginx
@pytest.mark.parametrize("name", SPOKES)
def test_a_spokes_remote_write_reaches_its_own_receiver_only(fresh, hub_stack, name):
    port = receiver_ports(gateway_conf(hub_stack))[name]
    assert fresh.post(METRICS_PATH, name, password(name), X_Scope_OrgID=other(name)) == 204
    received = fresh.received()
    assert list(received) == [f"receiver of {name}:{port}"], received
    (request,) = received[f"receiver of {name}:{port}"]
    assert (request.method, request.path, request.body) == ("POST", RECEIVER_WRITE_PATH, REMOTE_WRITE)


REFUSED = [
    pytest.param("spoke-b", "spoke-a", id="spoke-a's-password-as-spoke-b"),
    pytest.param("spoke-a", "spoke-b", id="spoke-b's-password-as-spoke-a"),
    pytest.param(None, None, id="no-credentials"),
    pytest.param("spoke-a", "wrong", id="a-wrong-password"),
    pytest.param("spoke-a", "", id="an-empty-password"),
    pytest.param("hub", "spoke-a", id="the-hubs-name"),
]


@needs_nginx
@pytest.mark.parametrize("path", [LOGS_PATH, METRICS_PATH])
@pytest.mark.parametrize(("user", "whose"), REFUSED)
def test_without_a_spokes_own_credentials_nothing_gets_through(fresh, path, user, whose):
    secret = password(whose) if whose in SPOKES else whose
    assert fresh.post(path, user, secret, X_Scope_OrgID=user or "spoke-a") == 401
    assert fresh.received() == {}
