"""LoggingStack: Loki and a collector shipping every pod's logs to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import pulumi

from components import manifests
from components.charts import ALLOY, LOKI, LOKI_STACK, helm_chart
from components.falco_host import DEFAULT_RUNTIMES, READ_ONLY
from components.logging_config import LokiMode, ObjectStorage, PodLogs
from components.loki_destination import CA_FILE, MOUNT, PASSWORD_KEY, LokiDestination, rendered
from components.namespaces import RESTRICTED_CONTAINER, Namespace
from components.profile import Profile
from components.sizing import (
    CONTAINERS,
    LOKI_CACHE_CPU,
    LOKI_CHUNKS_CACHE_MB,
    LOKI_RESULTS_CACHE_MB,
    SCALE_OUT,
    SCALE_OUT_CACHE_CPU,
    SCALE_OUT_CHUNKS_CACHE_MB,
    SCALE_OUT_RESULTS_CACHE_MB,
)

RELEASE = "loki"
# Pod labels, ports and components, for the NetworkPolicies (components/fences.py).
LOKI_PODS = {"app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": RELEASE}  # loki 18
LOKI_SERVERS = ("single-binary", "read", "write", "backend")  # app.kubernetes.io/component
LOKI_CACHES = ("memcached-chunks-cache", "memcached-results-cache")
LOKI_2_PODS = {"app": "loki", "release": RELEASE}  # loki-stack's Loki 2.6
ALLOY_PODS = {"app.kubernetes.io/name": "alloy", "app.kubernetes.io/instance": "alloy"}
PROMTAIL_PODS = {"app.kubernetes.io/name": "promtail", "app.kubernetes.io/instance": RELEASE}
LOKI_HTTP_PORT = 3100  # pushes, queries and metrics alike
LOKI_GRPC_PORT = 9095
MEMBERLIST_PORT = 7946
MEMCACHED_PORT = 11211
MEMCACHED_EXPORTER_PORT = 9150
ALLOY_PORT = 12345
PROMTAIL_PORT = 3101
# The Loki targets that read or write the bucket: queriers, ingesters, compactor and index
# gateway live in read, write and backend. The caches never touch it.
BUCKET_CLIENTS = ("read", "write", "backend")
ALLOY_USER = 473  # the non-root user of the grafana/alloy image
# The walk-through's LogQL query: etcd's compaction lines, on minikube.
WALKTHROUGH_QUERY = '{container="etcd"} |= "compaction"'
OBJECT_STORAGE_SECRET = "loki-object-storage"
# Falco's container, in the falco charts' DaemonSet (templates/pod-template.tpl: the chart's name).
FALCO_CONTAINER = "falco"
# The second copy of every Falco event: Falco's own JSON line, as the collector labels it
# (pod-logs.alloy; promtail_falco_stages), whether or not Falcosidekick is up. Falco names
# priorities as Falcosidekick does (falco_common.cpp priority_names).
FALCO_LOG_CRITICAL_LOGQL = (
    f'{{container="{FALCO_CONTAINER}"}} | priority=~"Critical|Alert|Emergency" | k8s_ns_name=~"$namespace"'
)
# Promtail reads the node's log files, whose format is the container runtime's: CRI lines
# (containerd, CRI-O: "<time> <stream> <P|F> <message>") or Docker JSON (the docker runtime,
# minikube's default: {"log":"...","stream":"...","time":"..."}). The chart parses CRI only;
# each line goes to the parser of the format it is in.
PROMTAIL_RUNTIME_STAGES = [
    {"match": {"selector": r'{namespace=~".+"} |~ `^\S+ (stdout|stderr) [FP] `', "stages": [{"cri": {}}]}},
    {"match": {"selector": r'{namespace=~".+"} |~ `^\{"log":`', "stages": [{"docker": {}}]}},
]
# The promtail chart's default job labels the node `node_name` (promtail 6.17.1 values.yaml
# config.snippets.common); `node`, as Alloy names it, instead. Appended to that job's rules
# by config.snippets.extraRelabelConfigs.
PROMTAIL_NODE_LABEL = [
    {"action": "replace", "source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "node"},
    {"action": "labeldrop", "regex": "node_name"},
]


def promtail_falco_stages(falco_namespace: str) -> list[dict[str, Any]]:
    """Falco's JSON events (its stdout; after the runtime's format is parsed), labelled by
    priority, rule and the namespace the event concerns. Labels, not structured metadata:
    Loki 2.6 has none. Each label has few values (8 priorities, the loaded rules, the
    namespaces), and the event's pod, which comes and goes, stays in the line."""
    fields = {"priority": "priority", "rule": "rule", "k8s_ns_name": 'output_fields."k8s.ns.name"'}
    return [
        {
            "match": {
                "selector": f'{{namespace="{falco_namespace}", container="{FALCO_CONTAINER}"}} |~ "^[{{]"',
                "stages": [{"json": {"expressions": fields}}, {"labels": dict.fromkeys(fields, "")}],
            }
        }
    ]


_ALLOY_PIPELINE = Path(__file__).with_name("pod-logs.alloy")
# How Alloy reads the lines (logging.podLogs): a note for the pipeline's header, and the
# components that read them and hand them to Falco's stage (falco_events).
_READERS: dict[PodLogs, tuple[str, str]] = {
    "api": (
        "// Logs are read through the Kubernetes API, so the lines arrive decoded whatever the\n"
        "// container runtime's on-disk format (minikube's docker runtime writes Docker JSON).",
        'loki.source.kubernetes "pods" {\n'
        "  targets    = discovery.relabel.pods.output\n"
        "  forward_to = [loki.process.falco_events.receiver]\n"
        "}",
    ),
    "files": (
        "// Logs are read from the node's files, as the container runtime writes them: Alloy runs\n"
        "// with the node agents, with /var/log/pods mounted read-only (logging.podLogs = files).",
        Path(__file__).with_name("pod-log-files.alloy").read_text().rstrip("\n"),
    ),
}
# Where the kubelet has the container runtime write each container's log (its podLogsDir).
POD_LOG_DIRECTORY = "/var/log/pods"
# The docker runtime (cri-dockerd) writes each log in its container's directory and links it
# from /var/log/pods: the link is followed there.
DOCKER_CONTAINERS_DIRECTORY = "/var/lib/docker/containers"
# Where Alloy keeps its place in each file (alloy 1.11.1 values.yaml alloy.storagePath, the
# chart's default): an emptyDir, the root filesystem being read-only.
ALLOY_STORAGE_PATH = "/tmp/alloy"
# CRI-O's conmon creates each log file 0600 (src/ctr_logging.c): only its owner, root, reads it.
# containerd (0640, internal/cri/server/helpers_linux.go openLogFile) and the docker runtime
# (0640 files in 0710 directories, moby jsonfilelog and daemon/create.go) let root's group read.
ROOT_ONLY_RUNTIMES = frozenset({"cri-o"})
ROOT_GROUP = 0
# The environment variable holding a spoke's password at its hub, in Alloy's container.
FLEET_PASSWORD_ENV = "FLEET_PASSWORD"


def alloy_values(alloy: Mapping[str, Any], controller: Mapping[str, Any]) -> dict[str, Any]:
    """Chart values for a Grafana Alloy (alloy 1.11.1) with ``alloy``'s settings (its pipeline,
    resources...) and ``controller``'s, as every Alloy of the stack runs: at the "restricted"
    level as the image's non-root user, with no usage reports and no CRDs."""
    return {
        "alloy": {
            **alloy,
            "enableReporting": False,  # no usage reports to grafana.com from a security stack
            # The image runs as root unless told otherwise; nothing here needs root.
            "securityContext": {
                **RESTRICTED_CONTAINER,
                "runAsNonRoot": True,
                "runAsUser": ALLOY_USER,
                "runAsGroup": ALLOY_USER,
            },
        },
        "configReloader": {"resources": CONTAINERS["alloy-config-reloader"].values()},
        "global": {"podSecurityContext": {"fsGroup": ALLOY_USER, "seccompProfile": {"type": "RuntimeDefault"}}},
        "controller": dict(controller),
        # The PodLogs CRD is for Alloy's operator-style discovery, unused here.
        "crds": {"create": False},
    }


@dataclass(frozen=True)
class LokiTenancy:
    """A hub's Loki: one tenant per cluster of the fleet. The hub's own collector and
    Falcosidekick push straight to Loki under ``own_tenant``; spokes push through the gateway,
    whose basic auth (``htpasswd_secret``, one user per spoke) names their tenant, and which
    also serves the extra nginx routes given (the spokes' remote writes)."""

    own_tenant: str
    htpasswd_secret: str
    http_snippet: str
    server_snippet: str
    ingestion_rate_mb: int  # per tenant
    max_streams: int  # per tenant
    ready: pulumi.Resource  # the htpasswd Secret: the gateway mounts it


@dataclass(frozen=True)
class LokiScale:
    """Scalable Loki's replicas and sizes, where the fleet's size decides them
    (components/fleet_sizing.py)."""

    write: int
    read: int
    backend: int
    write_volume: str
    backend_memory_limit: str


@dataclass(frozen=True)
class LoggingStackArgs:
    profile: Profile
    namespace: Namespace
    # The node agents' namespace (Falco's): Promtail (tutorial) reads the node's log files
    # through host paths, which only that namespace's Pod Security level admits.
    node_agents: Namespace
    storage_size: str
    storage_class: str | None
    retention: str
    mode: LokiMode = "monolithic"
    replicas: int = 1  # read, write and backend replicas (scalable)
    object_storage: ObjectStorage | None = None
    retain_volumes: bool = False
    # A spoke's collector sends to its hub: no Loki here. None: to this stack's own Loki.
    destination: LokiDestination | None = None
    tenancy: LokiTenancy | None = None  # a hub's Loki
    scale: LokiScale | None = None  # a hub's Loki
    # How Alloy reads pod logs (current profile): through the Kubernetes API, from the logging
    # namespace, or from the node's files, from the node agents' namespace.
    pod_logs: PodLogs = "api"
    container_runtimes: tuple[str, ...] = DEFAULT_RUNTIMES  # the nodes' (falco.containerRuntime)


def alloy_pipeline(destination: LokiDestination, falco_namespace: str, pod_logs: PodLogs = "api") -> pulumi.Input[str]:
    template = Template(_ALLOY_PIPELINE.read_text())
    note, source = _READERS[pod_logs]
    return rendered(
        destination.push_url,
        lambda url: template.substitute(
            READ_NOTE=note,
            POD_LOG_SOURCE=source,
            LOKI_WRITE=loki_write_block(url, destination),
            FALCO_NAMESPACE=falco_namespace,
            FALCO_CONTAINER=FALCO_CONTAINER,
        ),
    )


def loki_write_block(url: str, destination: LokiDestination) -> str:
    """Alloy's `loki.write`: to this stack's Loki, under the hub's tenant, or to the hub."""
    endpoint = [f'    url = "{url}"']
    if destination.tenant is not None:
        endpoint.append(f'    tenant_id = "{destination.tenant}"')
    if destination.credentials is not None:
        endpoint += [
            "",
            "    basic_auth {",
            f'      username = "{destination.credentials.username}"',
            f'      password = sys.env("{FLEET_PASSWORD_ENV}")',
            "    }",
            "",
            "    tls_config {",
            f'      ca_file = "{CA_FILE}"',
            "    }",
        ]
    lines = ['loki.write "loki" {', "  endpoint {", *endpoint, "  }"]
    if destination.cluster is not None:
        lines += ["", "  external_labels = {", f'    cluster = "{destination.cluster}",', "  }"]
    return "\n".join([*lines, "}"])


class LoggingStack(pulumi.ComponentResource):
    """Deploys Loki and a log collector: Loki 3 with Grafana Alloy for the ``current`` profile
    (monolithic on a volume, or simple-scalable on object storage for bigger clusters), the
    deprecated loki-stack (Loki 2 + Promtail) for ``tutorial``. Either way Loki answers
    queries at ``query_url`` and accepts logs at ``push_url``. Every pod in the logging
    namespace passes the "restricted" Pod Security level (Alloy reads logs through the
    Kubernetes API; a collector that reads them on the node, Promtail or Alloy with
    ``pod_logs = "files"``, runs with the node agents), and the bucket's credentials reach
    only the Loki targets that use the bucket.
    """

    def __init__(self, name: str, args: LoggingStackArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:logging:LoggingStack", name, None, opts)
        ns = args.namespace
        svc = f"{ns.name}.svc.cluster.local:3100"
        self.push_url: pulumi.Input[str]
        if args.mode == "scalable":
            # Queries go to the read target, pushes to the write target (a hub's spokes reach
            # the write target through the gateway).
            self.query_url = f"http://{RELEASE}-read.{svc}"
            self.push_url = f"http://{RELEASE}-write.{svc}/loki/api/v1/push"
        else:
            # Both Loki charts name the Service after the release.
            self.query_url = f"http://{RELEASE}.{svc}"
            self.push_url = f"{self.query_url}/loki/api/v1/push"
        destination = args.destination
        if destination is not None and destination.remote:
            self.query_url = ""  # a spoke's logs are queried on its hub
            self.push_url = destination.push_url
        elif destination is None:
            tenancy = args.tenancy
            destination = LokiDestination(
                self.push_url,
                cluster=tenancy.own_tenant if tenancy else None,
                tenant=tenancy.own_tenant if tenancy else None,
            )
        self.destination = destination
        # Where the collector runs: reading the node's files takes a host path, which only the
        # node agents' namespace admits.
        self.collector_namespace = args.node_agents if args.pod_logs == "files" or args.profile == "tutorial" else ns

        if args.profile == "tutorial":
            self.charts = [
                helm_chart(
                    name,
                    LOKI_STACK,
                    release=RELEASE,
                    namespace=ns.ref,
                    values=self._loki_stack_values(args),
                    opts=pulumi.ResourceOptions(parent=self),
                )
            ]
        elif destination.remote:
            assert destination.credentials is not None
            self.charts = [
                helm_chart(
                    f"{name}-alloy",
                    ALLOY,
                    release="alloy",
                    namespace=self.collector_namespace.ref,
                    values=self._alloy_values(destination, args),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[destination.credentials.ready]),
                )
            ]
        else:
            needs: list[pulumi.Resource] = [args.tenancy.ready] if args.tenancy else []
            storage = args.object_storage
            with_credentials = False
            if storage is not None and storage.access_key_id is not None and storage.secret_access_key is not None:
                # Loki's S3 client reads these from its environment, so no key is in chart values.
                with_credentials = True
                needs.append(
                    manifests.apply(
                        f"{name}-object-storage",
                        [
                            manifests.secret(
                                OBJECT_STORAGE_SECRET,
                                ns.ref,
                                {
                                    "AWS_ACCESS_KEY_ID": storage.access_key_id,
                                    "AWS_SECRET_ACCESS_KEY": storage.secret_access_key,
                                },
                            )
                        ],
                        pulumi.ResourceOptions(parent=self),
                    )
                )
            loki = helm_chart(
                name,
                LOKI,
                release=RELEASE,
                namespace=ns.ref,
                values=self._loki_values(args, with_credentials=with_credentials),
                opts=pulumi.ResourceOptions(parent=self, depends_on=needs),
            )
            self.charts = [
                loki,
                helm_chart(
                    f"{name}-alloy",
                    ALLOY,
                    release="alloy",
                    namespace=self.collector_namespace.ref,
                    values=self._alloy_values(destination, args),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[loki]),
                ),
            ]
        self.register_outputs({"queryUrl": self.query_url, "pushUrl": self.push_url})

    @staticmethod
    def _persistence(args: LoggingStackArgs, claims_key: str = "enabled") -> dict[str, Any]:
        # The write target still calls the switch `volumeClaimsEnabled` in loki 18.11.0.
        persistence: dict[str, Any] = {
            claims_key: True,
            "size": args.storage_size,
            # The claims go with their StatefulSet on `pulumi destroy`, unless they are to be kept.
            "enableStatefulSetAutoDeletePVC": True,
            "whenDeleted": "Retain" if args.retain_volumes else "Delete",
        }
        if args.storage_class:
            persistence["storageClass"] = args.storage_class
        return persistence

    @classmethod
    def _loki_values(cls, args: LoggingStackArgs, with_credentials: bool) -> dict[str, Any]:
        scalable = args.mode == "scalable"
        store = "s3" if scalable else "filesystem"
        values: dict[str, Any] = {
            "deploymentMode": "SimpleScalable" if scalable else "Monolithic",
            "loki": {
                "auth_enabled": False,  # single tenant: no X-Scope-OrgID needed by clients
                "commonConfig": {"replication_factor": min(3, args.replicas) if scalable else 1},
                "storage": {"type": store},
                "schemaConfig": {
                    "configs": [
                        {
                            "from": "2024-04-01",
                            "store": "tsdb",
                            "object_store": store,
                            "schema": "v13",
                            "index": {"prefix": "index_", "period": "24h"},
                        }
                    ]
                },
                "limits_config": {"retention_period": args.retention},
                "compactor": {"retention_enabled": True, "delete_request_store": store},
            },
            "memcachedExporter": {"resources": CONTAINERS["memcached-exporter"].values()},
            # Off by default-on extras: the canary DaemonSet, the nginx gateway (clients talk to
            # Loki directly), the Helm test and the rules sidecar (no Loki ruler here).
            "lokiCanary": {"enabled": False},
            "gateway": {"enabled": False},
            "test": {"enabled": False},
            "sidecar": {"rules": {"enabled": False}},
        }
        if not scalable:
            values |= {
                "singleBinary": {
                    "replicas": 1,
                    "resources": CONTAINERS["loki"].values(),
                    "persistence": cls._persistence(args),
                },
                # Monolithic on a filesystem renders only with the scalable targets at zero.
                "read": {"replicas": 0},
                "write": {"replicas": 0},
                "backend": {"replicas": 0},
                # The caches default to 8 GiB + 1 GiB of memcached; small ones still help queries.
                "chunksCache": cls._cache(LOKI_CHUNKS_CACHE_MB, LOKI_CACHE_CPU),
                "resultsCache": cls._cache(LOKI_RESULTS_CACHE_MB, LOKI_CACHE_CPU),
            }
            return values

        storage = args.object_storage
        assert storage is not None  # config.load requires it in scalable mode
        s3: dict[str, Any] = {
            "endpoint": storage.endpoint,
            "insecure": storage.insecure,
            "s3ForcePathStyle": storage.force_path_style,
        }
        if storage.region:
            s3["region"] = storage.region
        # bucketNames is read by templates/_helpers.tpl (loki.commonStorageConfig).
        values["loki"]["storage"] |= {"bucketNames": {"chunks": storage.bucket}, "s3": s3}
        disruption = {"enabled": True, "maxUnavailable": 1}
        values |= {
            "singleBinary": {"replicas": 0},
            "write": {
                "replicas": args.replicas,
                "resources": SCALE_OUT["loki-write"].values(),
                "persistence": cls._persistence(args, claims_key="volumeClaimsEnabled"),
                "podDisruptionBudget": disruption,
            },
            "read": {
                "replicas": args.replicas,
                "resources": SCALE_OUT["loki-read"].values(),
                "podDisruptionBudget": disruption,
            },
            "backend": {
                "replicas": args.replicas,
                "resources": SCALE_OUT["loki-backend"].values(),
                "persistence": cls._persistence(args),
                "podDisruptionBudget": disruption,
            },
            "ruler": {"enabled": False},  # Grafana does the alerting; no ruler bucket needed
            "chunksCache": cls._cache(SCALE_OUT_CHUNKS_CACHE_MB, SCALE_OUT_CACHE_CPU),
            "resultsCache": cls._cache(SCALE_OUT_RESULTS_CACHE_MB, SCALE_OUT_CACHE_CPU),
        }
        if with_credentials:
            # Per target, not `global.extraEnvFrom`, which the memcached pods read too.
            for target in BUCKET_CLIENTS:
                values[target]["extraEnvFrom"] = [{"secretRef": {"name": OBJECT_STORAGE_SECRET}}]
        if args.scale is not None:
            cls._scale(values, args.scale)
        if args.tenancy is not None:
            cls._tenancy(values, args.tenancy)
        return values

    @staticmethod
    def _scale(values: dict[str, Any], scale: LokiScale) -> None:
        for target, replicas in (("write", scale.write), ("read", scale.read), ("backend", scale.backend)):
            values[target]["replicas"] = replicas
        values["loki"]["commonConfig"]["replication_factor"] = min(3, scale.write)
        values["write"]["persistence"]["size"] = scale.write_volume
        values["backend"]["resources"]["limits"]["memory"] = scale.backend_memory_limit

    @staticmethod
    def _tenancy(values: dict[str, Any], tenancy: LokiTenancy) -> None:
        loki = values["loki"]
        loki["auth_enabled"] = True  # every push and query names its tenant (X-Scope-OrgID)
        # Read by templates/config.tpl (loki.querier): Grafana queries every cluster's tenant at once.
        loki["querier"] = {"multi_tenant_queries_enabled": True}
        loki["limits_config"] |= {
            "ingestion_rate_mb": tenancy.ingestion_rate_mb,
            "ingestion_burst_size_mb": 2 * tenancy.ingestion_rate_mb,
            "max_global_streams_per_user": tenancy.max_streams,
        }
        values["gateway"] = {
            "enabled": True,
            "replicas": 2,  # the fleet's one way in: a rolling update keeps one serving
            "resources": SCALE_OUT["loki-gateway"].values(),
            "basicAuth": {"enabled": True, "existingSecret": tenancy.htpasswd_secret},
            # Off: its access-log exporter sidecar (another image, another port) feeds nothing here.
            "metrics": {"enabled": False},
            "nginxConfig": {
                # Read by templates/_helpers.tpl (loki.nginxFile) in every location: the tenant is
                # the user the gateway authenticated, whatever header the request brought.
                "locationSnippet": "proxy_set_header X-Scope-OrgID $remote_user;",
                "httpSnippet": tenancy.http_snippet,
                "serverSnippet": tenancy.server_snippet,
            },
        }

    @staticmethod
    def _cache(allocated_mb: int, cpu: str) -> dict[str, Any]:
        return {"allocatedMemory": allocated_mb, "allocatedCPU": cpu, "writebackSizeLimit": "16MB"}

    @classmethod
    def _alloy_values(cls, destination: LokiDestination, args: LoggingStackArgs) -> dict[str, Any]:
        env: list[dict[str, Any]] = [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
        values = alloy_values(
            {
                "configMap": {"content": alloy_pipeline(destination, args.node_agents.name, args.pod_logs)},
                "extraEnv": env,
                "resources": CONTAINERS["alloy"].values(),
            },
            {
                "type": "daemonset",
                "tolerations": [
                    {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
                ],
            },
        )
        # Read by alloy 1.11.1 templates/containers/_agent.yaml (the container's volumeMounts) and
        # templates/controllers/_pod.yaml (the pod's volumes).
        mounts: list[dict[str, Any]] = []
        volumes: list[dict[str, Any]] = []
        credentials = destination.credentials
        if credentials is not None:
            # The spoke's password reaches Alloy only through its Secret; the hub's CA as a file.
            env.append(
                {
                    "name": FLEET_PASSWORD_ENV,
                    "valueFrom": {"secretKeyRef": {"name": credentials.secret, "key": PASSWORD_KEY}},
                }
            )
            mounts.append({"name": "fleet-hub", "mountPath": MOUNT, "readOnly": True})
            volumes.append({"name": "fleet-hub", "secret": {"secretName": credentials.secret}})
        if args.pod_logs == "files":
            cls._file_reader(values, mounts, volumes, args.container_runtimes)
        if mounts:
            values["alloy"]["mounts"] = {"extra": mounts}
            values["controller"]["volumes"] = {"extra": volumes}
        return values

    @staticmethod
    def _file_reader(
        values: dict[str, Any], mounts: list[dict[str, Any]], volumes: list[dict[str, Any]], runtimes: tuple[str, ...]
    ) -> None:
        """Alloy reading the node's log files: the directories they are in, read-only (not the
        chart's `mounts.varlog`, all of /var/log), its place in each file on an emptyDir, and a
        read-only root filesystem. The files belong to root, readable by root's group except
        CRI-O's: Alloy joins the group, or runs as root where CRI-O's files are to be read, and
        holds no capability either way (the files' owner or group needs none)."""
        # The kubelet makes /var/log/pods; docker's directory is missing on the other nodes of a
        # cluster whose nodes differ (falco.containerRuntime a list): made empty there.
        directories = {POD_LOG_DIRECTORY: "Directory"}
        if "docker" in runtimes:
            directories[DOCKER_CONTAINERS_DIRECTORY] = (
                "Directory" if set(runtimes) == {"docker"} else "DirectoryOrCreate"
            )
        for index, (directory, kind) in enumerate(directories.items()):
            name = f"pod-logs-{index}"
            mounts.append({"name": name, "mountPath": directory, **READ_ONLY})
            volumes.append({"name": name, "hostPath": {"path": directory, "type": kind}})
        mounts.append({"name": "alloy-storage", "mountPath": ALLOY_STORAGE_PATH})
        volumes.append({"name": "alloy-storage", "emptyDir": {}})
        alloy = values["alloy"]
        alloy["storagePath"] = ALLOY_STORAGE_PATH
        pod = values["global"]["podSecurityContext"]
        if ROOT_ONLY_RUNTIMES.intersection(runtimes):
            user = {"runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0}
        else:
            user = {"runAsNonRoot": True, "runAsUser": ALLOY_USER, "runAsGroup": ALLOY_USER}
            pod["supplementalGroups"] = [ROOT_GROUP]
        alloy["securityContext"] = {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True, **user}

    def _loki_stack_values(self, args: LoggingStackArgs) -> dict[str, Any]:
        persistence: dict[str, Any] = {"enabled": True, "size": args.storage_size}
        if args.storage_class:
            # loki 2.16.0 templates/statefulset.yaml reads persistence.storageClassName.
            persistence["storageClassName"] = args.storage_class
        return {
            "loki": {
                "resources": CONTAINERS["loki-2"].values(),
                # Merged with the chart's (non-root user, read-only root filesystem).
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                "containerSecurityContext": RESTRICTED_CONTAINER,
                # loki 2.16.0 would render a PodSecurityPolicy, an API removed in Kubernetes 1.25.
                "rbac": {"pspEnabled": False},
                # The chart keeps logs on an emptyDir, gone with the pod, and forever: a volume
                # and the compactor's retention instead (merged into its Loki 2.6 config).
                "persistence": persistence,
                "config": {
                    "compactor": {"retention_enabled": True},
                    "limits_config": {"retention_period": args.retention},
                },
            },
            "promtail": {
                # Read by promtail 6.17.1 templates/_helpers.tpl (promtail.namespaceName).
                "namespace": args.node_agents.ref,
                "resources": CONTAINERS["promtail"].values(),
                "config": {
                    "snippets": {
                        "pipelineStages": PROMTAIL_RUNTIME_STAGES + promtail_falco_stages(args.node_agents.name),
                        "extraRelabelConfigs": PROMTAIL_NODE_LABEL,
                    },
                    # The chart's default names Loki's Service relative to its own namespace.
                    "clients": [{"url": self.push_url}],
                },
            },
            # Its own Loki data source is marked default; Grafana refuses two defaults and the
            # baseline's Prometheus already is one. Pulumi adds Loki to Grafana instead.
            "grafana": {"sidecar": {"datasources": {"enabled": False}}},
            "test_pod": {"enabled": False},
        }
