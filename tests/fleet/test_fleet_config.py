"""Bad fleet configuration is refused with one clear error per mistake, naming the key, the
value and what is allowed, and nothing at all is registered (as tests/mocks/test_config.py
checks for the other sections). Each case starts from a committed fleet stack (Pulumi.hub.yaml
or Pulumi.spoke-a.yaml) and breaks one thing."""

from __future__ import annotations

from typing import Any

import pytest
from fleet import hub_config
from harness import Secret, environment_config, run_program

from components.config import ConfigError
from components.fleet_config import RECEIVER_PORTS, receiver_port

HUB = hub_config()
SPOKE = environment_config("spoke-a")
EXISTING_PROMETHEUS = {"deploy": False, "prometheusUrl": "http://prometheus.monitoring:9090"}
# Two spoke names whose ports, as derived from their names, are the same.
SHARING = ("spoke-93", "spoke-488")


def fleet(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``base`` with its ``fleet`` section changed (None removes a key)."""
    section = {**base.get("fleet", {}), **changes}
    return {**base, "fleet": {k: v for k, v in section.items() if v is not None}}


def ingress(**changes: Any) -> dict[str, Any]:
    return fleet(HUB, ingress={k: v for k, v in {**HUB["fleet"]["ingress"], **changes}.items() if v is not None})


ALL_KEYS = "role, clusterName, hubStack, spokes, ingress, nodesPerCluster, receiverPorts"

BAD_CONFIGS = [
    # -- the role and the keys of each role -------------------------------------------------------
    pytest.param(
        {"fleet": {"role": "edge"}},
        ['runtime-defense:fleet.role = "edge": allowed values are "standalone", "hub", "spoke"'],
        id="unknown-role",
    ),
    pytest.param(
        {"fleet": "hub"},
        [f'runtime-defense:fleet = "hub": must be a map with keys {ALL_KEYS}'],
        id="fleet-not-a-map",
    ),
    pytest.param(
        fleet(HUB, spoke=["spoke-a"]),
        [f'runtime-defense:fleet.spoke = ["spoke-a"]: unknown key; fleet takes {ALL_KEYS}'],
        id="unknown-fleet-key",
    ),
    pytest.param(
        {"fleet": {"clusterName": "edge", "spokes": ["spoke-a"]}},
        [
            'runtime-defense:fleet.clusterName = "edge": only applies with fleet.role hub or spoke',
            'runtime-defense:fleet.spokes = ["spoke-a"]: only applies with fleet.role hub or spoke',
        ],
        id="fleet-keys-on-a-standalone-stack",
    ),
    pytest.param(
        fleet(SPOKE, spokes=["spoke-c"], nodesPerCluster=3, receiverPorts={"spoke-c": 30000}),
        [
            'runtime-defense:fleet.spokes = ["spoke-c"]: only applies with fleet.role hub',
            "runtime-defense:fleet.nodesPerCluster = 3: only applies with fleet.role hub",
            'runtime-defense:fleet.receiverPorts = {"spoke-c": 30000}: only applies with fleet.role hub',
        ],
        id="hub-keys-on-a-spoke",
    ),
    pytest.param(
        fleet(SPOKE, ingress=HUB["fleet"]["ingress"]),
        ["runtime-defense:fleet.ingress = {"],
        id="ingress-on-a-spoke",
    ),
    pytest.param(
        fleet(HUB, hubStack="organization/runtime-defense/hub"),
        ['runtime-defense:fleet.hubStack = "organization/runtime-defense/hub": only applies with fleet.role spoke'],
        id="hub-stack-on-a-hub",
    ),
    # -- fleet.clusterName ------------------------------------------------------------------------
    pytest.param(
        fleet(HUB, clusterName=None),
        ["runtime-defense:fleet.clusterName is not set: a hub names its cluster"],
        id="hub-without-cluster-name",
    ),
    pytest.param(
        fleet(SPOKE, clusterName="Spoke_A"),
        ['runtime-defense:fleet.clusterName = "Spoke_A": must be a DNS label: at most 63 lower-case letters'],
        id="cluster-name-not-a-label",
    ),
    pytest.param(
        fleet(SPOKE, clusterName="s" * 64),
        [f'runtime-defense:fleet.clusterName = "{"s" * 64}": must be a DNS label: at most 63'],
        id="cluster-name-too-long",
    ),
    # -- fleet.hubStack ---------------------------------------------------------------------------
    pytest.param(
        fleet(SPOKE, hubStack=None),
        [
            "runtime-defense:fleet.hubStack is not set: a spoke reads its hub's endpoints, CA and credentials from "
            "the hub's stack"
        ],
        id="spoke-without-hub-stack",
    ),
    pytest.param(
        fleet(SPOKE, hubStack="hub"),
        ['runtime-defense:fleet.hubStack = "hub": must name the hub\'s stack as org/project/stack, or project/stack'],
        id="hub-stack-without-project",
    ),
    pytest.param(
        fleet(SPOKE, hubStack="acme/runtime-defense/hub/extra"),
        ['runtime-defense:fleet.hubStack = "acme/runtime-defense/hub/extra": must name the hub\'s stack'],
        id="hub-stack-too-deep",
    ),
    # -- fleet.spokes -----------------------------------------------------------------------------
    pytest.param(
        fleet(HUB, spokes="spoke-a"),
        ['runtime-defense:fleet.spokes = "spoke-a": must be a list of spoke cluster names, e.g. [spoke-a, spoke-b]'],
        id="spokes-not-a-list",
    ),
    pytest.param(
        fleet(HUB, spokes=["spoke-a", "Spoke_B"]),
        ['runtime-defense:fleet.spokes[1] = "Spoke_B": must be a spoke\'s fleet.clusterName: a DNS label'],
        id="spoke-name-not-a-label",
    ),
    pytest.param(
        fleet(HUB, spokes=["spoke-a", "hub"]),
        ['runtime-defense:fleet.spokes[1] = "hub": is the hub\'s own fleet.clusterName: a spoke needs a name'],
        id="spoke-named-as-the-hub",
    ),
    pytest.param(
        fleet(HUB, spokes=["spoke-a", "spoke-b", "spoke-a"]),
        ['runtime-defense:fleet.spokes[2] = "spoke-a": is listed twice: each spoke gets one set of credentials'],
        id="spoke-listed-twice",
    ),
    # -- fleet.receiverPorts ----------------------------------------------------------------------
    pytest.param(
        fleet(HUB, receiverPorts={"spoke-a": 8080}),
        ["runtime-defense:fleet.receiverPorts.spoke-a = 8080: must be a whole number from 20000 to 59999"],
        id="receiver-port-out-of-range",
    ),
    pytest.param(
        fleet(HUB, receiverPorts={"spoke-a": "high"}),
        ['runtime-defense:fleet.receiverPorts.spoke-a = "high": must be a whole number from 20000 to 59999'],
        id="receiver-port-not-a-number",
    ),
    pytest.param(
        fleet(HUB, receiverPorts={"spoke-c": 30000}),
        ["runtime-defense:fleet.receiverPorts.spoke-c = 30000: names no spoke of fleet.spokes (it admits spoke-a, "],
        id="receiver-port-of-no-spoke",
    ),
    pytest.param(
        fleet(HUB, spokes=None, receiverPorts={"spoke-a": 30000}),
        ["runtime-defense:fleet.receiverPorts.spoke-a = 30000: names no spoke of fleet.spokes (it admits none yet)"],
        id="receiver-port-without-spokes",
    ),
    pytest.param(
        fleet(HUB, receiverPorts=30000),
        ["runtime-defense:fleet.receiverPorts = 30000: must be a map of admitted spokes to ports from 20000 to 59999"],
        id="receiver-ports-not-a-map",
    ),
    pytest.param(
        fleet(HUB, spokes=list(SHARING)),
        [
            f"runtime-defense:fleet.receiverPorts.{SHARING[1]} = {receiver_port(SHARING[0])}: spokes "
            f"{', '.join(SHARING)} would share receiver port {receiver_port(SHARING[0])}: give one a free port from "
            f"20000 to 59999, e.g. `pulumi config set --path fleet.receiverPorts.{SHARING[1]} 20000`"
        ],
        id="two-spokes-sharing-a-receiver-port",
    ),
    pytest.param(
        fleet(HUB, receiverPorts={"spoke-b": receiver_port("spoke-a")}),
        [f"runtime-defense:fleet.receiverPorts.spoke-b = {receiver_port('spoke-a')}: spokes spoke-a, spoke-b would "],
        id="a-chosen-port-taken-by-another-spoke",
    ),
    # -- fleet.ingress ----------------------------------------------------------------------------
    pytest.param(
        fleet(HUB, ingress=None),
        ["runtime-defense:fleet.ingress is not set: a hub takes its spokes' logs, events and metrics through an"],
        id="hub-without-ingress",
    ),
    pytest.param(
        fleet(HUB, ingress="telemetry.example.com"),
        [
            'runtime-defense:fleet.ingress = "telemetry.example.com": must be a map with keys host, className, '
            "controllerNamespace"
        ],
        id="ingress-not-a-map",
    ),
    pytest.param(
        ingress(tlsSecret="fleet-tls"),
        [
            'runtime-defense:fleet.ingress.tlsSecret = "fleet-tls": unknown key; ingress takes host, className, '
            "controllerNamespace"
        ],
        id="ingress-unknown-key",
    ),
    pytest.param(
        ingress(host=None),
        ["runtime-defense:fleet.ingress.host is not set: the DNS name spokes dial, e.g. telemetry.example.com"],
        id="ingress-without-host",
    ),
    pytest.param(
        ingress(host="https://telemetry.example.com"),
        [
            'runtime-defense:fleet.ingress.host = "https://telemetry.example.com": must be a DNS name such as '
            "telemetry.example.com (lower case, no scheme)"
        ],
        id="ingress-host-with-a-scheme",
    ),
    pytest.param(
        ingress(host="telemetry"),
        ['runtime-defense:fleet.ingress.host = "telemetry": must be a DNS name such as telemetry.example.com'],
        id="ingress-host-without-a-domain",
    ),
    pytest.param(
        ingress(className="Nginx_Class"),
        ['runtime-defense:fleet.ingress.className = "Nginx_Class": must be the name of an IngressClass, e.g. nginx'],
        id="ingress-class-not-a-name",
    ),
    pytest.param(
        ingress(controllerNamespace=None),
        [
            "runtime-defense:fleet.ingress.controllerNamespace is not set: where your ingress controller runs: the "
            "hub's gateway admits only it, e.g. ingress-nginx"
        ],
        id="ingress-without-controller-namespace",
    ),
    pytest.param(
        ingress(controllerNamespace="Ingress"),
        ['runtime-defense:fleet.ingress.controllerNamespace = "Ingress": must be a namespace name, e.g. ingress-nginx'],
        id="ingress-controller-namespace-not-a-name",
    ),
    # -- fleet.nodesPerCluster --------------------------------------------------------------------
    pytest.param(
        fleet(HUB, nodesPerCluster=0),
        ["runtime-defense:fleet.nodesPerCluster = 0: must be a whole number from 1 to 5000"],
        id="nodes-per-cluster-zero",
    ),
    pytest.param(
        fleet(HUB, nodesPerCluster=5001),
        ["runtime-defense:fleet.nodesPerCluster = 5001: must be a whole number from 1 to 5000"],
        id="nodes-per-cluster-too-many",
    ),
    pytest.param(
        fleet(HUB, nodesPerCluster="many"),
        ['runtime-defense:fleet.nodesPerCluster = "many": must be a whole number from 1 to 5000'],
        id="nodes-per-cluster-not-a-number",
    ),
    # -- what a hub and a spoke need of the other sections -----------------------------------------
    pytest.param(
        {**HUB, "profile": "tutorial", "logging": {"mode": "monolithic"}, "eventExport": None},
        [
            'runtime-defense:lokiS3AccessKeyId = "<secret>": only applies with logging.mode = scalable',
            'runtime-defense:lokiS3SecretAccessKey = "<secret>": only applies with logging.mode = scalable',
            'runtime-defense:profile = "tutorial": a hub runs the current profile (loki-stack and falco-exporter '
            "have no fleet)",
            "runtime-defense:logging.mode = \"monolithic\": a hub keeps a fleet's logs in Loki's scalable shape on "
            "object storage",
        ],
        id="hub-on-the-tutorial-profile",
    ),
    pytest.param(
        {**SPOKE, "profile": "tutorial", "eventExport": None},
        [
            'runtime-defense:profile = "tutorial": a spoke runs the current profile (loki-stack and falco-exporter '
            "have no fleet)"
        ],
        id="spoke-on-the-tutorial-profile",
    ),
    pytest.param(
        {**HUB, "monitoring": EXISTING_PROMETHEUS, "grafanaToken": Secret("glsa_hub_token")},
        ["runtime-defense:monitoring.deploy = false: a hub deploys its own Prometheus to receive its spokes' metrics"],
        id="hub-without-its-own-prometheus",
    ),
    pytest.param(
        {**SPOKE, "monitoring": EXISTING_PROMETHEUS, "grafana": None},
        ["runtime-defense:monitoring.deploy = false: a spoke deploys its own Prometheus agent to ship its metrics"],
        id="spoke-without-its-own-agent",
    ),
    pytest.param(
        {
            **HUB,
            "logging": {**{k: v for k, v in HUB["logging"].items() if k != "objectStorage"}, "mode": "monolithic"},
            "lokiS3AccessKeyId": None,
            "lokiS3SecretAccessKey": None,
        },
        [
            "runtime-defense:logging.mode = \"monolithic\": a hub keeps a fleet's logs in Loki's scalable shape on "
            "object storage: `pulumi config set --path logging.mode scalable` and set logging.objectStorage"
        ],
        id="hub-with-monolithic-loki",
    ),
    pytest.param(
        {**HUB, "logging": {**HUB["logging"], "replicas": 3, "storageSize": "50Gi"}},
        [
            "runtime-defense:logging.replicas = 3: a hub's Loki follows the fleet's size "
            "(components/fleet_sizing.py): set fleet.nodesPerCluster",
            "runtime-defense:logging.storageSize = \"50Gi\": a hub's Loki follows the fleet's size",
        ],
        id="hub-with-loki-sizes",
    ),
    pytest.param(
        {**SPOKE, "logging": {"retention": "7d"}},
        ['runtime-defense:logging.retention = "<set>": a spoke runs no Loki: its logs go to the hub'],
        id="spoke-with-logging",
    ),
    pytest.param(
        {**SPOKE, "grafana": {"url": "https://grafana.example.com"}},
        ['runtime-defense:grafana = "<set>": a spoke runs no Grafana: the hub\'s shows the fleet'],
        id="spoke-with-grafana",
    ),
    pytest.param(
        {**SPOKE, "grafanaToken": Secret("glsa_spoke_token")},
        ['runtime-defense:grafanaToken = "<secret>": a spoke runs no Grafana: the hub\'s shows the fleet'],
        id="spoke-with-a-grafana-token",
    ),
    pytest.param(
        {**SPOKE, "monitoring": {"grafanaNodePort": 30300, "controlPlaneMetrics": True}},
        [
            'runtime-defense:monitoring.grafanaNodePort = "<set>": a spoke runs no Grafana, only a Prometheus agent',
            'runtime-defense:monitoring.controlPlaneMetrics = "<set>": a spoke runs no Grafana, only a Prometheus '
            "agent",
        ],
        id="spoke-with-grafanas-monitoring-keys",
    ),
    pytest.param(
        {**SPOKE, "monitoring": {"grafanaIngress": HUB["monitoring"]["grafanaIngress"]}},
        ['runtime-defense:monitoring.grafanaIngress = "<set>": a spoke runs no Grafana'],
        id="spoke-with-a-grafana-ingress",
    ),
    pytest.param(
        {**SPOKE, "alerting": {"email": ["secops@example.com"], "certificateWarningHours": 100}},
        [
            'runtime-defense:alerting.email = ["secops@example.com"]: the hub\'s Grafana alerts for the fleet: set it '
            "there",
            "runtime-defense:alerting.certificateWarningHours = 100: the hub's Grafana alerts for the fleet: set it "
            "there",
        ],
        id="spoke-with-alerting",
    ),
]


def secrets_in(config: dict[str, Any]) -> list[str]:
    return [str(value) for value in config.values() if isinstance(value, Secret)]


@pytest.mark.parametrize(("config", "expected"), BAD_CONFIGS)
def test_bad_fleet_config_is_a_clear_error_and_registers_nothing(config, expected):
    run = run_program(config, stack="fleet", expect_error=True)
    assert isinstance(run.error, ConfigError), f"expected a ConfigError, got {run.error!r}"
    problems = run.error.problems
    for text in expected:
        assert any(p.startswith(text) for p in problems), f"{text!r} not in {problems}"
    assert len(problems) == len(expected), problems
    assert run.resources == [], [r.name for r in run.resources]
    for secret in secrets_in(config):
        assert secret not in str(run.error), f"the secret {secret!r} is echoed"


def test_the_derived_receiver_ports_of_the_sharing_names_are_one():
    """The pair the collision case uses does collide, inside the range ports are taken from."""
    low, high = RECEIVER_PORTS
    assert receiver_port(SHARING[0]) == receiver_port(SHARING[1])
    assert low <= receiver_port(SHARING[0]) <= high


def test_the_port_the_collision_error_suggests_resolves_it():
    spokes = list(SHARING)
    refused = run_program(fleet(HUB, spokes=spokes), stack="hub", expect_error=True)
    (problem,) = refused.error.problems
    suggested = problem.rsplit(" ", 1)[1].rstrip("`")
    run = run_program(fleet(HUB, spokes=spokes, receiverPorts={SHARING[1]: int(suggested)}), stack="hub")
    ports = {p["port"] for p in run.chart_values("fleet-receiver")["alloy"]["extraPorts"]}
    assert ports == {receiver_port(SHARING[0]), int(suggested)}
