"""LoggingStack: Loki and a collector shipping every pod's logs to it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

import pulumi

from components.charts import ALLOY, LOKI, LOKI_STACK, helm_chart
from components.config import Profile
from components.namespaces import Namespace
from components.sizing import (
    CONTAINERS,
    LOKI_CACHE_CPU,
    LOKI_CHUNKS_CACHE_MB,
    LOKI_RESULTS_CACHE_MB,
)

RELEASE = "loki"
# The walk-through's LogQL query: etcd's compaction lines, on minikube.
WALKTHROUGH_QUERY = '{container="etcd"} |= "compaction"'
_ALLOY_PIPELINE = Path(__file__).with_name("pod-logs.alloy")


@dataclass(frozen=True)
class LoggingStackArgs:
    profile: Profile
    namespace: Namespace
    storage_size: str
    storage_class: str | None
    retention: str


def alloy_pipeline(push_url: str) -> str:
    return Template(_ALLOY_PIPELINE.read_text()).substitute(LOKI_PUSH_URL=push_url)


class LoggingStack(pulumi.ComponentResource):
    """Deploys Loki and a log collector: Loki 3 (monolithic, on a volume) with Grafana Alloy
    for the ``current`` profile, the deprecated loki-stack (Loki 2 + Promtail) for ``tutorial``.
    Either way Loki answers at ``query_url`` and accepts logs at ``push_url``.
    """

    def __init__(self, name: str, args: LoggingStackArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:logging:LoggingStack", name, None, opts)
        ns = args.namespace
        # Both Loki charts name the query/push Service after the release, on port 3100.
        self.query_url = f"http://{RELEASE}.{ns.name}.svc.cluster.local:3100"
        self.push_url = f"{self.query_url}/loki/api/v1/push"
        child = pulumi.ResourceOptions(parent=self)

        if args.profile == "current":
            loki = helm_chart(name, LOKI, release=RELEASE, namespace=ns.ref, values=self._loki_values(args), opts=child)
            self.charts = [
                loki,
                helm_chart(
                    f"{name}-alloy",
                    ALLOY,
                    release="alloy",
                    namespace=ns.ref,
                    values=self._alloy_values(self.push_url),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[loki]),
                ),
            ]
        else:
            self.charts = [
                helm_chart(
                    name, LOKI_STACK, release=RELEASE, namespace=ns.ref, values=self._loki_stack_values(), opts=child
                )
            ]
        self.register_outputs({"queryUrl": self.query_url, "pushUrl": self.push_url})

    @staticmethod
    def _loki_values(args: LoggingStackArgs) -> dict:
        persistence: dict = {
            "enabled": True,
            "size": args.storage_size,
            # The volume goes with the StatefulSet on `pulumi destroy`.
            "enableStatefulSetAutoDeletePVC": True,
            "whenDeleted": "Delete",
        }
        if args.storage_class:
            persistence["storageClass"] = args.storage_class
        return {
            "deploymentMode": "Monolithic",
            "loki": {
                "auth_enabled": False,  # single tenant: no X-Scope-OrgID needed by clients
                "commonConfig": {"replication_factor": 1},
                "storage": {"type": "filesystem"},
                "schemaConfig": {
                    "configs": [
                        {
                            "from": "2024-04-01",
                            "store": "tsdb",
                            "object_store": "filesystem",
                            "schema": "v13",
                            "index": {"prefix": "index_", "period": "24h"},
                        }
                    ]
                },
                "limits_config": {"retention_period": args.retention},
                "compactor": {"retention_enabled": True, "delete_request_store": "filesystem"},
            },
            "singleBinary": {
                "replicas": 1,
                "resources": CONTAINERS["loki"].values(),
                "persistence": persistence,
            },
            # Monolithic on a filesystem renders only with the scalable targets at zero.
            "read": {"replicas": 0},
            "write": {"replicas": 0},
            "backend": {"replicas": 0},
            # The caches default to 8 GiB + 1 GiB of memcached; small ones still help queries.
            "chunksCache": {
                "allocatedMemory": LOKI_CHUNKS_CACHE_MB,
                "allocatedCPU": LOKI_CACHE_CPU,
                "writebackSizeLimit": "16MB",
            },
            "resultsCache": {
                "allocatedMemory": LOKI_RESULTS_CACHE_MB,
                "allocatedCPU": LOKI_CACHE_CPU,
                "writebackSizeLimit": "16MB",
            },
            "memcachedExporter": {"resources": CONTAINERS["memcached-exporter"].values()},
            # Off by default-on extras: the canary DaemonSet, the nginx gateway (clients talk to
            # Loki directly), the Helm test and the rules sidecar (no Loki ruler here).
            "lokiCanary": {"enabled": False},
            "gateway": {"enabled": False},
            "test": {"enabled": False},
            "sidecar": {"rules": {"enabled": False}},
        }

    @staticmethod
    def _alloy_values(push_url: str) -> dict:
        return {
            "alloy": {
                "configMap": {"content": alloy_pipeline(push_url)},
                "extraEnv": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                "resources": CONTAINERS["alloy"].values(),
                "enableReporting": False,  # no usage reports to grafana.com from a security stack
            },
            "configReloader": {"resources": CONTAINERS["alloy-config-reloader"].values()},
            "controller": {
                "type": "daemonset",
                "tolerations": [
                    {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
                ],
            },
            # The PodLogs CRD is for Alloy's operator-style discovery, unused here.
            "crds": {"create": False},
        }

    @staticmethod
    def _loki_stack_values() -> dict:
        return {
            "loki": {
                "resources": CONTAINERS["loki-2"].values(),
                # loki 2.16.0 would render a PodSecurityPolicy, an API removed in Kubernetes 1.25.
                "rbac": {"pspEnabled": False},
            },
            "promtail": {"resources": CONTAINERS["promtail"].values()},
            # Its own Loki data source is marked default; Grafana refuses two defaults and the
            # baseline's Prometheus already is one. Pulumi adds Loki to Grafana instead.
            "grafana": {"sidecar": {"datasources": {"enabled": False}}},
            "test_pod": {"enabled": False},
        }
