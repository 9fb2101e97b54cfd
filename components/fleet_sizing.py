"""The hub's load for a fleet of N spoke clusters x M nodes, and the hub shape that carries it.

Pure arithmetic, no Pulumi: ``NodeRates`` states what one spoke node sends (each rate with its
source, or the reasoning where no source gives a figure); ``hub_load`` multiplies it out into
the hub's log, event and metric ingest; ``hub_shape`` turns that into Loki replicas and volumes,
per-tenant Loki limits, remote-write receivers and the hub Prometheus's memory and volume;
``collector_source`` says whether a spoke's Alloy reads pod logs through the Kubernetes API or
from the node's files; ``sizing_table`` renders the table in docs/fleet-sizing.md.

Units: GB is 10^9 bytes (ingest, bucket), Gi/Mi are 2^30/2^20 bytes (Kubernetes quantities).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from fractions import Fraction
from types import MappingProxyType
from typing import Literal

from components.sizing import CONTAINERS, SCALE_OUT, ContainerSize

SECONDS_PER_DAY = 86_400
GB = 10**9
MiB = 2**20
GiB = 2**30

# -- Falco events as they reach Loki ------------------------------------------------------------
# One event of a stable default rule (falco-rules 5.1.0, the `falco-rules:5` falcoctl installs in
# falco chart 9.1.0), "Terminal shell in container", with its output template's fields plus the
# six the container plugin 0.7.1 marks as suggested output (container.id, container.name,
# container.image.repository, container.image.tag, k8s.pod.name, k8s.ns.name), which the chart's
# `append_output: [{suggested_output: true}]` appends. Values are made up but typical in length.
_RULE_OUTPUT = (
    "A shell was spawned in a container with an attached terminal | evt_type=execve user=root user_uid=0 "
    "user_loginuid=-1 process=bash proc_exepath=/usr/bin/bash parent=runc command=bash terminal=34816 "
    "exe_flags=EXE_WRITABLE|EXE_LOWER_LAYER container_id=3ad7b26ded6d container_name=payments-api "
    "container_image_repository=registry.example.com/shop/payments-api container_image_tag=1.14.2 "
    "k8s_pod_name=payments-api-7d9c8b6f5d-x2x9q k8s_ns_name=shop"
)
_OUTPUT_FIELDS = {
    "container.id": "3ad7b26ded6d",
    "container.image.repository": "registry.example.com/shop/payments-api",
    "container.image.tag": "1.14.2",
    "container.name": "payments-api",
    "evt.arg.flags": "EXE_WRITABLE|EXE_LOWER_LAYER",
    "evt.time": 1769876543123456789,
    "evt.type": "execve",
    "k8s.ns.name": "shop",
    "k8s.pod.name": "payments-api-7d9c8b6f5d-x2x9q",
    "proc.cmdline": "bash",
    "proc.exepath": "/usr/bin/bash",
    "proc.name": "bash",
    "proc.pname": "runc",
    "proc.tty": 34816,
    "user.loginuid": -1,
    "user.name": "root",
    "user.uid": 0,
}
_HOSTNAME = "ip-10-0-12-34.eu-west-1.compute.internal"  # the node's name (the chart sets FALCO_HOSTNAME)
_TAGS = ["T1059", "container", "maturity_stable", "mitre_execution", "shell"]
# Falco's own JSON line (json_output, with the output, output_fields and tags properties the chart
# leaves on), which it also prints to stdout (the chart's stdout_output is on).
SAMPLE_FALCO_EVENT = {
    "hostname": _HOSTNAME,
    "output": f"16:22:23.123456789: Notice {_RULE_OUTPUT}",
    "output_fields": _OUTPUT_FIELDS,
    "priority": "Notice",
    "rule": "Terminal shell in container",
    "source": "syscall",
    "tags": _TAGS,
    "time": "2026-01-31T16:22:23.123456789Z",
}
# What Falcosidekick 2.32.0 pushes to Loki with `config.loki.format: json`: its FalcoPayload
# marshalled (types/types.go: uuid, output, priority, rule, time, output_fields, source, tags,
# hostname), with a uuid it adds and a spoke's `config.customfields` (here the cluster's name).
SAMPLE_SIDEKICK_EVENT = {
    "uuid": "6f9c6c1e-2d3b-4b8e-9a51-1c2d3e4f5a6b",
    "output": SAMPLE_FALCO_EVENT["output"],
    "priority": "Notice",
    "rule": "Terminal shell in container",
    "time": "2026-01-31T16:22:23.123456789Z",
    "output_fields": dict(sorted({**_OUTPUT_FIELDS, "cluster": "spoke-01"}.items())),
    "source": "syscall",
    "tags": _TAGS,
    "hostname": _HOSTNAME,
}
# Falcosidekick logs each delivery (outputs/client.go, Go's log with its default date prefix).
SIDEKICK_DELIVERY_LOG_LINE = "2026/01/31 16:22:23 [INFO]  : Loki - POST OK (204)"


def json_bytes(document: object) -> int:
    """Bytes of ``document`` as Go's encoding/json writes it (compact; nothing here needs escaping)."""
    return len(json.dumps(document, separators=(",", ":")).encode())


# -- Active series one node's and one cluster's scrapes make -----------------------------------
# Falco 0.44.1's /metrics with the falco chart 9.1.0 `metrics.*` defaults (rules, resource,
# state, kernel-event, libbpf, plugin and kernel-iterator counters on; per-CPU counters and
# jemalloc off), driver modern_ebpf, read from userspace/falco/falco_metrics.cpp (0.44.1) and
# falcosecurity/libs 0.25.4. Not counted, because they export nothing by default: libbpf stats
# (only with the kernel.bpf_stats_enabled sysctl at 1) and the 21 kernel-iterator counters (BPF
# iterators are off when Falco is not in the host PID namespace, and the chart sets no hostPID).
FALCO_SERIES: Mapping[str, int] = MappingProxyType(
    {
        "falco_version_info": 1,
        "falco_sha256_rules_files_info (falco_rules.yaml and one custom rules file)": 2,
        "falco_sha256_config_files_info (falco.yaml)": 1,
        "falco_outputs_queue_num_drops_total": 1,
        "falco_reload_timestamp_nanoseconds": 1,
        "scap_engine_name_info (the syscall source)": 1,
        # n_evts, n_drops_buffer{dir=exit} for 8 event kinds, n_drops_buffer{dir=enter} for the 6
        # deprecated ones (always 0), n_drops_scratch_map, n_drops (libpman stats.c).
        "scap kernel event counters": 17,
        # cpu_usage, memory_rss/vsz/pss, container_memory_used, host_cpu_usage,
        # host_memory_used, host_procs_running, host_open_fds (libsinsp resource_utilization.cpp).
        "falco resource utilization": 9,
        # n_threads, n_fds and 15 lookup/store/drop counters (libsinsp metrics_collector.cpp).
        "scap state counters": 17,
        # n_containers, n_missing_container_images (container plugin 0.7.1, plugin.cpp).
        "plugins_container metrics": 2,
        "kernel_release_info, start_ts, duration_sec, evt_hostname_info, host_boot_ts, host_num_cpus": 6,
    }
)
FALCO_FIXED_SERIES = sum(FALCO_SERIES.values())
# Prometheus adds up, scrape_duration_seconds, scrape_samples_scraped,
# scrape_samples_post_metric_relabeling and scrape_series_added to every target it scrapes
# (Prometheus docs, "Jobs and instances").
SERIES_PER_TARGET = 5
# kube-state-metrics (docs/metrics/workload/pod-metrics.md, node-metrics.md): kube_node_info is one
# series per node; kube_pod_info one per pod, kube_pod_status_ready three per pod
# (condition="true|false|unknown"). The spoke keeps only these families.
KSM_SERIES_PER_NODE = 1
KSM_SERIES_PER_POD = 1 + 3
# Falcosidekick 2.32.0 registers its counters with client_golang v1.22.0's default registry, whose
# Go collector exports 35 series (go_gc_duration_seconds summary: 5 quantiles, sum, count;
# go_goroutines, go_threads, go_info, go_memstats_last_gc_time_seconds, 21 go_memstats_*, and
# go_gc_gogc_percent, go_gc_gomemlimit_bytes, go_sched_gomaxprocs_threads), its process collector
# 9 (process_*), and promhttp.Handler() 4 (requests_total for 200/500/503, requests_in_flight);
# then falcosidekick_inputs_total{source="requests", status="accepted|rejected"} (2) and
# falcosidekick_outputs_total{destination="loki", status="ok|error"} (2).
SIDEKICK_SERIES_PER_POD = 35 + 9 + 4 + 2 + 2


def _positive(owner: str, name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{owner}.{name} = {value!r}: must be a number above 0")


@dataclass(frozen=True)
class NodeRates:
    """What one spoke node sends the hub, and the few per-cluster facts the load depends on."""

    # ASSUMPTION: Falco events per second per node with the default (stable) rules, in steady
    # state: 36 an hour. A quiet cluster makes fewer (shells, sensitive reads are rare); a noisy
    # workload or a custom rule can make far more. Measure: sum(rate(
    # falcosecurity_falco_rules_matches_total[1d])) / count(falcosecurity_falco_version_info).
    falco_events_per_s: float = 0.01
    # The Loki line Falcosidekick pushes per event: SAMPLE_SIDEKICK_EVENT as JSON.
    falco_event_bytes: int = json_bytes(SAMPLE_SIDEKICK_EVENT)
    # What the same event adds to the spoke's pod logs, which the collector ships too: Falco's
    # stdout JSON line (SAMPLE_FALCO_EVENT) and Falcosidekick's delivery log line.
    falco_event_echo_bytes: int = json_bytes(SAMPLE_FALCO_EVENT) + len(SIDEKICK_DELIVERY_LOG_LINE)
    falco_event_echo_lines: int = 2
    # ASSUMPTION: pod log lines per second per node, all containers together. No upstream figure
    # exists; it depends wholly on the workloads. Measure on a spoke: the mean over Alloy pods of
    # rate(loki_write_sent_entries_total[1d]) (one Alloy per node).
    pod_log_lines_per_s: float = 20.0
    # ASSUMPTION: bytes per pod log line as Loki stores it (the message, without the runtime's
    # timestamp/stream prefix). Measure on the hub: rate(loki_distributor_bytes_received_total[1d])
    # / rate(loki_distributor_lines_received_total[1d]).
    pod_log_bytes_per_line: int = 250
    # ASSUMPTION: pods per node (the kubelet allows 110) and containers per pod (sidecars): each
    # container is one log stream (labels namespace, pod, container, node) and each pod has
    # KSM_SERIES_PER_POD series.
    pods_per_node: int = 30
    containers_per_pod: float = 1.5
    # ASSUMPTION: distinct rules that have matched on a node since Falco started (Falco exports a
    # rule's falcosecurity_falco_rules_matches_total only once it is above zero).
    falco_rules_matched_per_node: int = 5
    # ASSUMPTION: distinct (rule, pod) pairs among a node's events: one series of
    # falcosidekick_falco_events_total each (labels hostname, rule, priority, k8s_ns_name,
    # k8s_pod_name), and one Loki stream each (Falcosidekick's stream labels are rule, source,
    # priority, k8s_ns_name, k8s_pod_name, hostname, tags).
    event_label_sets_per_node: int = 10
    # Series of Falco's own /metrics per node: FALCO_SERIES.
    falco_fixed_series: int = FALCO_FIXED_SERIES
    # Falcosidekick replicas per spoke (eventExport.replicas defaults to 1).
    falcosidekick_replicas: int = 1
    # The spoke Prometheus agent's scrape interval for every target (components/scraping.py uses
    # 30s; the falco chart's own ServiceMonitor defaults to 15s and must be set to match).
    scrape_interval_s: float = 30.0

    def __post_init__(self) -> None:
        for f in fields(self):
            _positive("NodeRates", f.name, getattr(self, f.name))

    @property
    def containers_per_node(self) -> float:
        return self.pods_per_node * self.containers_per_pod

    @property
    def series_per_node(self) -> int:
        """Falco's /metrics, kube-state-metrics' node and pod series, Falcosidekick's event counters."""
        falco = self.falco_fixed_series + self.falco_rules_matched_per_node + SERIES_PER_TARGET
        ksm = KSM_SERIES_PER_NODE + self.pods_per_node * KSM_SERIES_PER_POD
        # Each Falcosidekick replica counts the label sets of the events it received.
        sidekick = self.falcosidekick_replicas * self.event_label_sets_per_node
        return falco + ksm + sidekick

    @property
    def series_per_cluster(self) -> int:
        """The kube-state-metrics target, and Falcosidekick's own series and targets."""
        return SERIES_PER_TARGET + self.falcosidekick_replicas * (SIDEKICK_SERIES_PER_POD + SERIES_PER_TARGET)


RATES = NodeRates()

# -- Storage constants ---------------------------------------------------------------------------
# ASSUMPTION: how much Loki's chunks shrink. Loki 3.7 compresses chunks with gzip by default
# (-ingester.chunk-encoding; the loki 18.11.0 chart does not set it); Loki's own chunk test
# (grafana/loki#1411) turned 2.62 MB of its test logs into 144 kB with gzip (18x), but those logs
# are repetitive. 5x is the figure used here for mixed pod logs and JSON events. Measure:
# loki_ingester_chunk_compression_ratio on the hub's write pods.
LOKI_COMPRESSION_RATIO = 5.0
REPLICATION_FACTOR = 3  # Loki's replication factor in scalable mode (components/logging_stack.py)
# Prometheus storage docs: "On average, Prometheus uses only around 1-2 bytes per sample";
# needed_disk_space = retention_time_seconds * ingested_samples_per_second * bytes_per_sample.
PROMETHEUS_BYTES_PER_SAMPLE = 2.0
# The WAL (Prometheus docs: at least three 128 MiB segments, and at least two hours of raw data;
# tsdb/docs/format/wal.md: a sample record holds a varint series reference, a varint timestamp
# delta and an 8-byte value, about 13 bytes). Three hours, no credit for WAL compression.
WAL_BYTES_PER_SAMPLE = 13.0
WAL_HOURS = 3.0
WAL_MIN_BYTES = 3 * 128 * MiB
# Head-block memory (Brian Brazil, Prometheus maintainer, "How much RAM does Prometheus 2.x need
# for cardinality and ingestion?", robustperception.io): "a million series costs around 2GiB of
# RAM in terms of cardinality"; for ingestion, up to 3 hours of samples per series at the bytes
# per sample above, with 50% chunk overhead, all doubled for Go's garbage collection.
PROMETHEUS_CARDINALITY_BYTES_PER_SERIES = 2 * GiB / 1_000_000
PROMETHEUS_HEAD_HOURS = 3.0
PROMETHEUS_CHUNK_OVERHEAD = 1.5
GO_GC_FACTOR = 2.0


def prometheus_bytes_per_series(scrape_interval_s: float) -> float:
    """Head memory per active series: its cardinality cost and up to 3 hours of its samples."""
    samples = PROMETHEUS_HEAD_HOURS * 3600 / scrape_interval_s
    ingestion = samples * PROMETHEUS_BYTES_PER_SAMPLE * PROMETHEUS_CHUNK_OVERHEAD * GO_GC_FACTOR
    return PROMETHEUS_CARDINALITY_BYTES_PER_SERIES + ingestion


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} = {value!r}: must be a whole number of at least 1")
    return value


@dataclass(frozen=True)
class HubLoad:
    """What N spoke clusters of M nodes send the hub, and what the hub keeps of it."""

    clusters: int
    nodes_per_cluster: int
    retention_days: int
    scrape_interval_s: float
    falco_events_per_s: float
    # Pod logs go through each spoke's collector; event pushes go from Falcosidekick to Loki.
    pod_log_lines_per_s: float
    pod_log_bytes_per_s: float
    event_push_bytes_per_s: float
    log_lines_per_s: float
    log_bytes_per_s: float
    log_streams: int
    cluster_log_bytes_per_s: float  # one spoke, i.e. one Loki tenant
    cluster_log_streams: int
    cluster_containers: int
    active_series: int
    cluster_active_series: int
    samples_per_s: float
    loki_ingest_gb_per_day: float
    loki_bucket_gb: float  # the chunks kept for the retention, compressed, stored once
    prometheus_head_bytes: float  # the fleet's series in the hub Prometheus's head block
    prometheus_disk_bytes: float  # blocks for the retention, and the WAL

    @property
    def nodes(self) -> int:
        return self.clusters * self.nodes_per_cluster


def hub_load(clusters: int, nodes_per_cluster: int, rates: NodeRates = RATES, retention_days: int = 7) -> HubLoad:
    """The hub's ingest for ``clusters`` spokes of ``nodes_per_cluster`` nodes each, keeping logs
    and metrics for ``retention_days`` (7: logging.retention's 168h and Prometheus's 7d)."""
    _check_count("clusters", clusters)
    _check_count("nodes_per_cluster", nodes_per_cluster)
    _check_count("retention_days", retention_days)
    nodes = clusters * nodes_per_cluster

    events = nodes * rates.falco_events_per_s
    pod_lines_per_node = rates.pod_log_lines_per_s + rates.falco_events_per_s * rates.falco_event_echo_lines
    pod_bytes_per_node = (
        rates.pod_log_lines_per_s * rates.pod_log_bytes_per_line
        + rates.falco_events_per_s * rates.falco_event_echo_bytes
    )
    push_bytes_per_node = rates.falco_events_per_s * rates.falco_event_bytes
    containers = math.ceil(nodes_per_cluster * rates.containers_per_node)
    cluster_streams = containers + nodes_per_cluster * rates.event_label_sets_per_node
    cluster_series = nodes_per_cluster * rates.series_per_node + rates.series_per_cluster
    cluster_bytes = nodes_per_cluster * (pod_bytes_per_node + push_bytes_per_node)

    log_bytes = clusters * cluster_bytes
    ingest_gb_per_day = log_bytes * SECONDS_PER_DAY / GB
    series = clusters * cluster_series
    samples = series / rates.scrape_interval_s
    blocks = retention_days * SECONDS_PER_DAY * samples * PROMETHEUS_BYTES_PER_SAMPLE
    wal = max(WAL_MIN_BYTES, WAL_HOURS * 3600 * samples * WAL_BYTES_PER_SAMPLE)
    return HubLoad(
        clusters=clusters,
        nodes_per_cluster=nodes_per_cluster,
        retention_days=retention_days,
        scrape_interval_s=rates.scrape_interval_s,
        falco_events_per_s=events,
        pod_log_lines_per_s=nodes * pod_lines_per_node,
        pod_log_bytes_per_s=nodes * pod_bytes_per_node,
        event_push_bytes_per_s=nodes * push_bytes_per_node,
        log_lines_per_s=nodes * pod_lines_per_node + events,
        log_bytes_per_s=log_bytes,
        log_streams=clusters * cluster_streams,
        cluster_log_bytes_per_s=cluster_bytes,
        cluster_log_streams=cluster_streams,
        cluster_containers=containers,
        active_series=series,
        cluster_active_series=cluster_series,
        samples_per_s=samples,
        loki_ingest_gb_per_day=ingest_gb_per_day,
        # Ingesters hash a flushed chunk by tenant, labels and content, so the replicas' copies of
        # one chunk are stored once (Loki docs, "Loki components", Ingester).
        loki_bucket_gb=ingest_gb_per_day * retention_days / LOKI_COMPRESSION_RATIO,
        prometheus_head_bytes=series * prometheus_bytes_per_series(rates.scrape_interval_s),
        prometheus_disk_bytes=blocks + wal,
    )


# -- Loki: what one replica of each scalable target carries ------------------------------------
@dataclass(frozen=True)
class LokiComponent:
    cpu: float  # cores requested per replica
    memory_gib: float  # GiB requested per replica
    replicas: int


@dataclass(frozen=True)
class LokiTier:
    """One tab of Loki's "Size the cluster" page (p90 usage, microservices mode): the requests
    and base replicas of each component for an ingest up to ``max_gb_per_day``."""

    max_gb_per_day: float
    components: Mapping[str, LokiComponent]


def _tier(max_tb_per_day: float, **components: tuple[float, float, int]) -> LokiTier:
    return LokiTier(
        max_tb_per_day * 1000, MappingProxyType({name: LokiComponent(*spec) for name, spec in components.items()})
    )


# https://grafana.com/docs/loki/latest/setup/size/ (CPU request, memory request Gi, base replicas).
LOKI_TIERS = (
    _tier(
        3,
        ingester=(2, 4, 6),
        distributor=(2, 0.5, 4),
        index_gateway=(0.5, 2, 4),
        querier=(1, 1, 10),
        query_frontend=(1, 2, 2),
        query_scheduler=(1, 0.5, 2),
        compactor=(2, 10, 1),
    ),
    _tier(
        30,
        ingester=(2, 6, 90),
        distributor=(2, 1, 40),
        index_gateway=(0.5, 4, 10),
        querier=(1.5, 2, 100),
        query_frontend=(1, 2, 8),
        query_scheduler=(1, 0.5, 2),
        compactor=(6, 20, 1),
    ),
)
# The simple-scalable targets and the components each runs (Loki docs, "Loki components"; the
# ruler is off here, components/logging_stack.py) whose load spreads over the target's replicas.
# The backend's compactor is a singleton: one replica carries all of it (hub_shape).
LOKI_TARGETS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "write": ("distributor", "ingester"),
        "read": ("query_frontend", "querier"),
        "backend": ("query_scheduler", "index_gateway"),
    }
)


def parse_cpu(quantity: str) -> float:
    """Cores of a CPU quantity such as "200m" or "2"."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def parse_memory(quantity: str) -> float:
    """Bytes of a memory quantity in Ki/Mi/Gi/Ti or plain bytes."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti)?", quantity)
    if match is None:
        raise ValueError(f"{quantity!r} is not a memory quantity in Ki, Mi, Gi or Ti")
    return float(match.group(1)) * {None: 1, "Ki": 2**10, "Mi": MiB, "Gi": GiB, "Ti": 2**40}[match.group(2)]


def loki_tiers(ingest_gb_per_day: float) -> tuple[LokiTier, ...]:
    """The tiers up to the one ``ingest_gb_per_day`` falls in."""
    for index, tier in enumerate(LOKI_TIERS):
        if ingest_gb_per_day <= tier.max_gb_per_day:
            return LOKI_TIERS[: index + 1]
    raise ValueError(
        f"{ingest_gb_per_day:.0f} GB/day is beyond the 30 TB/day Loki's sizing page documents for "
        "more than base replicas; this model does not extrapolate"
    )


def replica_capacity_gb_per_day(target: str, size: ContainerSize, tier: LokiTier) -> float:
    """Ingest one replica of ``target`` with ``size``'s requests carries in ``tier``: the tier's
    requests of the target's components per GB/day of ingest at the tier's maximum, whichever of
    CPU and memory runs out first."""
    parts = [tier.components[name] for name in LOKI_TARGETS[target]]
    cpu_per_gb = sum(p.cpu * p.replicas for p in parts) / tier.max_gb_per_day
    gib_per_gb = sum(p.memory_gib * p.replicas for p in parts) / tier.max_gb_per_day
    return min(parse_cpu(size.cpu) / cpu_per_gb, parse_memory(size.memory) / GiB / gib_per_gb)


def loki_capacity_gb_per_day(target: str, size: ContainerSize, ingest_gb_per_day: float) -> float:
    """What one replica carries at ``ingest_gb_per_day``: the lowest capacity of the tiers up to
    this ingest's, so that more ingest never asks for fewer replicas (the larger tier's figures
    are more frugal per GB for some components)."""
    return min(replica_capacity_gb_per_day(target, size, tier) for tier in loki_tiers(ingest_gb_per_day))


def compactor_memory_bytes(ingest_gb_per_day: float) -> float:
    """The compactor's p90 memory request at this ingest: its own tier's, scaled to the ingest,
    and no less than any lower tier's at that tier's maximum."""
    tiers = loki_tiers(ingest_gb_per_day)
    scaled = tiers[-1].components["compactor"].memory_gib * ingest_gb_per_day / tiers[-1].max_gb_per_day
    return max([scaled, *(t.components["compactor"].memory_gib for t in tiers[:-1])]) * GiB


# -- The hub's shape -----------------------------------------------------------------------------
# Loki's per-tenant limits (pkg/validation/limits.go; the chart sets neither): 4 MB/s of ingest
# (read here as 10^6 bytes, the stricter reading) and 5000 active streams per tenant. Each spoke
# pushes as its own tenant (the gateway maps a spoke's credentials to its tenant), so a tenant's
# load is one cluster's. Headroom for log storms, and for pods replaced within Loki's 30 minute
# chunk_idle_period (their old streams still count):
LOKI_DEFAULT_INGESTION_RATE_MB = 4
LOKI_DEFAULT_MAX_STREAMS = 5000
TENANT_RATE_HEADROOM = 2.0
TENANT_STREAM_HEADROOM = 1.5
# A write replica's disk holds the WAL of what it has not flushed: up to max_chunk_age (2h, Loki's
# default) of its share, uncompressed, plus an hour for a slow bucket.
LOKI_WAL_HOURS = 3.0
LOKI_MIN_VOLUME = "5Gi"  # logging.storageSize's default
# Alloy's resource estimate for Prometheus metrics (grafana.com/docs/alloy, "Estimate Grafana
# Alloy resource usage"): per 1 million active series at the default 60s scrape interval, about
# 0.4 CPU cores (no concern at a spoke's size) and 11 GiB of memory. Scaled here by 60s / scrape
# interval, which over-counts memory (it tracks series more than samples) on the safe side.
ALLOY_GIB_PER_MILLION_SERIES = 11.0
ALLOY_DEFAULT_SCRAPE_INTERVAL_S = 60.0
# A spoke's receiver replicas sit behind one Service, so any replica may see any of the spoke's
# series: each is sized for all of them, up to 1 GiB, and one more replica than the load needs
# keeps a spoke's metrics flowing through a node drain.
RECEIVER_MEMORY_BUDGET = 1 * GiB
# The hub Prometheus: today's request covers its own scrapes (components/sizing.py); the limit
# leaves as much again as the head needs for queries and compaction; the volume keeps the
# retention at 80% of the claim, as today's 4GB retentionSize on 5Gi does.
PROMETHEUS_LIMIT_FACTOR = 2.0
PROMETHEUS_RETENTION_SHARE = Fraction(4, 5)
PROMETHEUS_MIN_VOLUME = "5Gi"


def memory_quantity(size_bytes: float) -> str:
    """A memory quantity no smaller than ``size_bytes``: 64Mi steps up to 4Gi, whole Gi above."""
    if size_bytes <= 4 * GiB:
        return f"{max(1, math.ceil(size_bytes / (64 * MiB))) * 64}Mi"
    return f"{math.ceil(size_bytes / GiB)}Gi"


def storage_quantity(size_bytes: float, minimum: str) -> str:
    """A volume size in whole Gi, no smaller than ``size_bytes`` nor ``minimum``."""
    return f"{max(math.ceil(size_bytes / GiB), math.ceil(parse_memory(minimum) / GiB))}Gi"


@dataclass(frozen=True)
class HubShape:
    """The hub settings a load needs. Replica counts are per target; receivers are per spoke."""

    loki_write_replicas: int
    loki_read_replicas: int
    loki_backend_replicas: int
    loki_write_volume: str  # per write replica
    loki_backend_memory_limit: str  # the replica running the compactor carries all of it
    loki_tenant_ingestion_rate_mb: int  # limits_config.ingestion_rate_mb, per spoke tenant
    loki_tenant_max_streams: int  # limits_config.max_global_streams_per_user, per spoke tenant
    receiver_replicas: int
    receiver_memory_request: str
    receiver_memory_limit: str
    prometheus_memory_request: str
    prometheus_memory_limit: str
    prometheus_volume: str
    prometheus_retention_size: str  # Prometheus units: GB here means GiB


def hub_shape(load: HubLoad, sizes: Mapping[str, ContainerSize] = SCALE_OUT) -> HubShape:
    """Loki replicas and volumes, tenant limits, receivers and Prometheus sizes for ``load``, with
    Loki's read, write and backend replicas of ``sizes`` (components/sizing.py's by default)."""
    replicas = {}
    for target in LOKI_TARGETS:
        capacity = loki_capacity_gb_per_day(target, sizes[f"loki-{target}"], load.loki_ingest_gb_per_day)
        replicas[target] = max(REPLICATION_FACTOR, math.ceil(load.loki_ingest_gb_per_day / capacity))
    wal = load.log_bytes_per_s * REPLICATION_FACTOR / replicas["write"] * LOKI_WAL_HOURS * 3600
    # The compactor sits on one backend replica, next to that replica's share of the rest. No CPU
    # limits here (components/sizing.py), so only its memory changes the backend's limit.
    backend = sizes["loki-backend"]
    compactor = compactor_memory_bytes(load.loki_ingest_gb_per_day)
    backend_limit = max(parse_memory(backend.memory_limit), parse_memory(backend.memory) + compactor)

    tenant_rate = math.ceil(load.cluster_log_bytes_per_s * TENANT_RATE_HEADROOM / 10**6)
    tenant_streams = math.ceil(load.cluster_log_streams * TENANT_STREAM_HEADROOM)

    interval_factor = ALLOY_DEFAULT_SCRAPE_INTERVAL_S / load.scrape_interval_s
    receiver_bytes = load.cluster_active_series / 1e6 * ALLOY_GIB_PER_MILLION_SERIES * GiB * interval_factor
    receivers = math.ceil(receiver_bytes / RECEIVER_MEMORY_BUDGET) + 1
    receiver_request = max(parse_memory(CONTAINERS["alloy"].memory), min(receiver_bytes, RECEIVER_MEMORY_BUDGET))
    receiver_limit = max(parse_memory(CONTAINERS["alloy"].memory_limit), 2 * receiver_request)

    prometheus_request = parse_memory(CONTAINERS["prometheus"].memory) + load.prometheus_head_bytes
    prometheus_limit = max(
        parse_memory(CONTAINERS["prometheus"].memory_limit), PROMETHEUS_LIMIT_FACTOR * prometheus_request
    )
    # Whole GiB: Prometheus's retention size (its GB are GiB) holds blocks and WAL, and is the
    # share of the volume, which is at least the minimum.
    retention_gib = math.ceil(load.prometheus_disk_bytes / GiB)
    volume_gib = max(
        math.ceil(retention_gib / PROMETHEUS_RETENTION_SHARE), round(parse_memory(PROMETHEUS_MIN_VOLUME) / GiB)
    )
    return HubShape(
        loki_write_replicas=replicas["write"],
        loki_read_replicas=replicas["read"],
        loki_backend_replicas=replicas["backend"],
        loki_write_volume=storage_quantity(wal, LOKI_MIN_VOLUME),
        loki_backend_memory_limit=memory_quantity(backend_limit),
        loki_tenant_ingestion_rate_mb=max(LOKI_DEFAULT_INGESTION_RATE_MB, tenant_rate),
        loki_tenant_max_streams=max(LOKI_DEFAULT_MAX_STREAMS, tenant_streams),
        receiver_replicas=receivers,
        receiver_memory_request=memory_quantity(receiver_request),
        receiver_memory_limit=memory_quantity(receiver_limit),
        prometheus_memory_request=memory_quantity(prometheus_request),
        prometheus_memory_limit=memory_quantity(prometheus_limit),
        prometheus_volume=f"{volume_gib}Gi",
        prometheus_retention_size=f"{math.floor(volume_gib * PROMETHEUS_RETENTION_SHARE)}GB",
    )


# -- How a spoke's collector reads pod logs ------------------------------------------------------
# Alloy's loki.source.kubernetes docs: it "uses more network traffic and CPU consumption of
# Kubelets than loki.source.file", in exchange for no privileged container, no root and no
# access to the node's filesystem. Through the API, every log byte of the cluster travels kubelet
# -> API server -> Alloy, and the API server holds one follow request per container. The kubelet
# side costs the same per node at any cluster size; the API server's share grows with the
# cluster. Alloy gives no number: up to 10 nodes (at the stated rates, 450 streams and 50 KB/s
# through the API server) this project keeps the API route, which lets Alloy run at the
# "restricted" Pod Security level; above, it reads /var/log/pods on the node (loki.source.file
# with a hostPath, as grafana/k8s-monitoring-helm does by default).
API_COLLECTOR_MAX_NODES = 10
CollectorSource = Literal["api", "files"]


def collector_source(nodes_per_cluster: int) -> CollectorSource:
    """How a spoke's Alloy should read pod logs: through the Kubernetes API, or the node's files."""
    _check_count("nodes_per_cluster", nodes_per_cluster)
    return "api" if nodes_per_cluster <= API_COLLECTOR_MAX_NODES else "files"


# -- The docs table ------------------------------------------------------------------------------
DEFAULT_FLEETS = ((3, 3), (20, 20), (100, 50))


def _number(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def sizing_table(
    fleets: Iterable[tuple[int, int]] = DEFAULT_FLEETS, rates: NodeRates = RATES, retention_days: int = 7
) -> str:
    """The load and the hub shape of each (clusters, nodes per cluster) fleet, as two markdown tables."""
    rows = [(n, m, hub_load(n, m, rates, retention_days)) for n, m in fleets]
    if not rows:
        raise ValueError("fleets is empty: give at least one (clusters, nodes_per_cluster) pair")
    load = [
        "| Fleet (N x M) | Nodes | Log lines/s | Log MB/s | Loki GB/day | Bucket GB "
        f"({retention_days} d) | Falco events/s | Active series | Samples/s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    shape = [
        "| Fleet (N x M) | Loki write / read / backend | Write volume | Backend memory limit "
        "| Tenant MB/s / streams | Receivers per spoke (memory) | Prometheus memory (request / limit) "
        "| Prometheus volume (retention size) | Collector |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for n, m, hub in rows:
        s = hub_shape(hub)
        fleet = f"{n} x {m}"
        load.append(
            f"| {fleet} | {_number(hub.nodes)} | {_number(hub.log_lines_per_s)} "
            f"| {_number(hub.log_bytes_per_s / 10**6, 2)} | {_number(hub.loki_ingest_gb_per_day, 1)} "
            f"| {_number(hub.loki_bucket_gb, 1)} | {_number(hub.falco_events_per_s, 2)} "
            f"| {_number(hub.active_series)} | {_number(hub.samples_per_s)} |"
        )
        shape.append(
            f"| {fleet} | {s.loki_write_replicas} / {s.loki_read_replicas} / {s.loki_backend_replicas} "
            f"| {s.loki_write_volume} | {s.loki_backend_memory_limit} "
            f"| {s.loki_tenant_ingestion_rate_mb} / {_number(s.loki_tenant_max_streams)} "
            f"| {s.receiver_replicas} ({s.receiver_memory_request}) "
            f"| {s.prometheus_memory_request} / {s.prometheus_memory_limit} "
            f"| {s.prometheus_volume} ({s.prometheus_retention_size}) | {collector_source(m)} |"
        )
    return "\n".join([*load, "", *shape]) + "\n"
