"""Every URL a spoke sends to is served by its hub, as both clusters receive them.

The spoke's senders are read from its rendered objects (Alloy's `loki.write` in the ConfigMap
it runs, Falcosidekick's LOKI_HOSTPORT and LOKI_ENDPOINT as its container's environment holds
them, the PrometheusAgent's remoteWrite); each URL is then followed through the hub's rendered
objects as the traffic would go: the Ingress rule for its host and exact path, the Service it
routes to, the gateway pods behind it and the port their nginx listens on, the nginx location
for that path, and the in-cluster Service that location proxies to, down to the pods that take
what the spoke sent (Loki's write target for logs and events, the spoke's receiver for
metrics). Each sender also authenticates with, and trusts the CA in, the spoke's `fleet-hub`
Secret, which holds what the hub issued.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import alloy_syntax
from fleet import (
    NGINX_CONF,
    Endpoint,
    container,
    endpoints,
    environment,
    exact_location,
    listen_ports,
    mounted_file,
    nginx_map,
    secret_data,
    selected_by,
    upstreams,
    workload,
)
from rendering import RenderedStack

from components.fleet_hub import GATEWAY_PODS, RECEIVER_PODS
from components.fleet_spoke import CREDENTIALS_OUTPUT, FLEET_OUTPUT, SECRET

LOKI_WRITE_PODS = {"app.kubernetes.io/name": "loki", "app.kubernetes.io/component": "write"}
# Who takes what a spoke sends, once through the gateway.
TAKERS: Mapping[str, Mapping[str, str]] = {"logs": LOKI_WRITE_PODS, "events": LOKI_WRITE_PODS, "metrics": RECEIVER_PODS}


# -- what the spoke's senders are configured with --------------------------------------------------


def alloy_endpoints(spoke: RenderedStack) -> list[alloy_syntax.Block]:
    """The `endpoint` blocks of every `loki.write` in the configuration Alloy runs."""
    pod = workload(spoke, "DaemonSet", "alloy")
    run = container(pod, "alloy")["args"]
    assert run[0] == "run", run
    blocks = alloy_syntax.parse(mounted_file(spoke, pod, "alloy", run[1]))
    found = [endpoint for b in blocks if b.name == "loki.write" for endpoint in b.children("endpoint")]
    assert found, "Alloy writes to no Loki"
    return found


def sidekick_environment(spoke: RenderedStack) -> dict[str, str]:
    return environment(spoke, workload(spoke, "Deployment", "falcosidekick"), "falcosidekick")


def remote_writes(spoke: RenderedStack) -> list[dict]:
    (agent,) = spoke.of_kind("PrometheusAgent")
    found = agent.body["spec"].get("remoteWrite") or []
    assert found, "the agent writes nowhere"
    return found


def sent_urls(spoke: RenderedStack) -> dict[str, list[str]]:
    env = sidekick_environment(spoke)
    return {
        "logs": [endpoint.attributes["url"] for endpoint in alloy_endpoints(spoke)],
        # Falcosidekick posts to LOKI_HOSTPORT + LOKI_ENDPOINT.
        "events": [env["LOKI_HOSTPORT"] + env["LOKI_ENDPOINT"]],
        "metrics": [write["url"] for write in remote_writes(spoke)],
    }


# -- where the hub takes them ---------------------------------------------------------------------


def ingress_backend(hub: RenderedStack, host: str, path: str) -> tuple[str, str, int]:
    """(namespace, Service, port) the hub's Ingresses route ``host`` + exactly ``path`` to."""
    found = []
    for ingress in hub.of_kind("Ingress"):
        spec = ingress.body["spec"]
        for rule in spec.get("rules") or []:
            if rule.get("host") != host:
                continue
            assert any(host in tls.get("hosts", []) for tls in spec.get("tls") or []), f"{ingress}: no TLS for {host}"
            for entry in rule["http"]["paths"]:
                if entry["path"] == path and entry["pathType"] == "Exact":
                    service = entry["backend"]["service"]
                    found.append((ingress.namespace, service["name"], int(service["port"]["number"])))
    assert len(found) == 1, f"Ingress rules for https://{host}{path} (Exact): {found}"
    return found[0]


def gateway_conf(hub: RenderedStack, endpoint: Endpoint) -> str:
    return mounted_file(hub, endpoint.pod, endpoint.container, NGINX_CONF)


def route(hub: RenderedStack, url: str) -> list[tuple[str, int, list[Endpoint]]]:
    """Follows ``url`` from a spoke into the hub: the Ingress, the gateway's pods (which must
    listen where the Service sends), the gateway's location for the path, and for each Service
    it proxies to (on each port it may pick) the pods behind it."""
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.port is None, f"{url}: not https on the ingress controller's port"
    namespace, service, port = ingress_backend(hub, parts.hostname or "", parts.path)
    gateways = endpoints(hub, service, namespace, port)
    assert gateways, f"Service {namespace}/{service} port {port} reaches no pod"
    taken = []
    for gateway in gateways:
        assert selected_by(gateway.pod, GATEWAY_PODS), f"{gateway.pod.owner} is not the gateway"
        conf = gateway_conf(hub, gateway)
        assert gateway.port in listen_ports(conf), f"{gateway.pod.owner}: nginx does not listen on {gateway.port}"
        proxied = upstreams(exact_location(conf, parts.path))
        assert proxied, f"the gateway's location = {parts.path} proxies nowhere"
        for upstream in proxied:
            if upstream.port.startswith("$"):
                ports = [int(p) for p in nginx_map(conf, upstream.port)[1].values() if p]
                assert ports, f"{upstream.port} maps no user to a port"
            else:
                ports = [int(upstream.port)]
            for upstream_port in ports:
                behind = endpoints(hub, upstream.service, upstream.namespace, upstream_port)
                assert behind, f"Service {upstream.namespace}/{upstream.service} port {upstream_port} reaches no pod"
                taken.append((upstream.service, upstream_port, behind))
    return taken


# -- the tests ------------------------------------------------------------------------------------


def test_every_sender_dials_the_hubs_ingress_host_on_one_of_its_exact_paths(spoke_stack, hub_stack):
    (ingress,) = [o for o in hub_stack.of_kind("Ingress") if o.source == "program"]
    (rule,) = ingress.body["spec"]["rules"]
    exact = {entry["path"] for entry in rule["http"]["paths"] if entry["pathType"] == "Exact"}
    assert exact
    for what, urls in sent_urls(spoke_stack).items():
        assert urls, what
        for url in urls:
            parts = urlsplit(url)
            assert (parts.scheme, parts.hostname, parts.port) == ("https", rule["host"], None), f"{what}: {url}"
            assert parts.path in exact, f"{what}: {url} is not one of the hub's paths {sorted(exact)}"


def test_each_sender_reaches_the_pods_that_take_what_it_sends(spoke_stack, hub_stack):
    for what, urls in sent_urls(spoke_stack).items():
        for url in urls:
            taken = route(hub_stack, url)
            assert taken, f"{what}: {url}"
            for service, port, behind in taken:
                for endpoint in behind:
                    assert selected_by(endpoint.pod, TAKERS[what]), (
                        f"{what} sent to {url} reach {endpoint.pod.owner} through Service {service}:{port}"
                    )


def test_the_metrics_route_picks_the_spokes_own_receiver_port(spoke_stack, hub_stack):
    """What the gateway may pick for a spoke's metrics is that spoke's receiver port, served."""
    (write,) = remote_writes(spoke_stack)
    path = urlsplit(write["url"]).path
    namespace, service, port = ingress_backend(hub_stack, urlsplit(write["url"]).hostname or "", path)
    (gateway, *_) = endpoints(hub_stack, service, namespace, port)
    conf = gateway_conf(hub_stack, gateway)
    source, ports = nginx_map(conf, "$fleet_receiver_port")
    spoke = spoke_stack.name
    assert source == "$remote_user", "the receiver must follow the user the gateway authenticated"
    assert ports.pop("default") == "" and set(ports) == set(hub_stack.run.exports[FLEET_OUTPUT].value["spokes"])
    (upstream,) = upstreams(exact_location(conf, path))
    assert upstream.port == "$fleet_receiver_port"
    behind = endpoints(hub_stack, upstream.service, upstream.namespace, int(ports[spoke]))
    assert behind and all(selected_by(e.pod, RECEIVER_PODS) for e in behind)


def test_each_sender_authenticates_with_the_spokes_secret_and_trusts_the_ca_in_it(spoke_stack, hub_stack):
    """Alloy, Falcosidekick and the agent each send the user, password and CA of the
    `fleet-hub` Secret of its own namespace, which hold what the hub issued to this spoke."""
    spoke = spoke_stack.name
    fleet = hub_stack.run.exports[FLEET_OUTPUT].value
    issued = {
        "username": spoke,
        "password": hub_stack.run.exports[CREDENTIALS_OUTPUT].value[spoke],
        "ca.crt": fleet["caCertPem"],
    }
    secrets = [o for o in spoke_stack.of_kind("Secret") if o.name == SECRET]
    assert {s.namespace for s in secrets} == {"logging", "falco", "monitoring"}
    for secret in secrets:
        assert secret_data(secret) == issued, secret

    alloy = workload(spoke_stack, "DaemonSet", "alloy")
    alloy_env = environment(spoke_stack, alloy, "alloy")
    for endpoint in alloy_endpoints(spoke_stack):
        (auth,) = endpoint.children("basic_auth")
        password = alloy_syntax.evaluate(auth.attributes["password"], alloy_env)
        assert (auth.attributes["username"], password) == (spoke, issued["password"])
        (tls,) = endpoint.children("tls_config")
        assert mounted_file(spoke_stack, alloy, "alloy", tls.attributes["ca_file"]) == issued["ca.crt"]

    sidekick = workload(spoke_stack, "Deployment", "falcosidekick")
    env = sidekick_environment(spoke_stack)
    assert (env["LOKI_USER"], env["LOKI_APIKEY"]) == (spoke, issued["password"])
    assert mounted_file(spoke_stack, sidekick, "falcosidekick", env["TLSCLIENT_CACERTFILE"]) == issued["ca.crt"]

    (agent,) = spoke_stack.of_kind("PrometheusAgent")

    def key(ref: dict) -> str:
        return secret_data(spoke_stack.get("Secret", ref["name"], agent.namespace))[ref["key"]]

    for write in remote_writes(spoke_stack):
        auth = write["basicAuth"]
        assert (key(auth["username"]), key(auth["password"])) == (spoke, issued["password"])
        assert key(write["tlsConfig"]["ca"]["secret"]) == issued["ca.crt"]
