"""The fleet sizing model (components/fleet_sizing.py) and the figures docs/fleet-sizing.md states.

Pure arithmetic and the vendored charts' files: no Helm, no program run.
"""

import ast
import contextlib
import dataclasses
import inspect
import io
import itertools
import json
import math
import re
import tarfile
from pathlib import Path

import pytest
import yaml
from documents import figure_phrase
from rendering import mebibytes, millicores

from components import fleet_sizing as fs
from components.charts import FALCO, FALCOSIDEKICK
from components.config_reader import QUANTITY
from components.scraping import service_monitor
from components.sizing import SCALE_OUT, ContainerSize

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "fleet-sizing.md"
TABLE = re.compile(r"<!-- fleet-sizing-table:start -->\n(.*?)<!-- fleet-sizing-table:end -->", re.S)
# apimachinery's resource.Quantity grammar: a signed number, then a binary-SI, decimal-SI or
# decimal-exponent suffix.
K8S_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
PROMETHEUS_SIZE = re.compile(r"^\d+(B|KB|MB|GB|TB|PB|EB)$")  # --storage.tsdb.retention.size units
GRID = list(itertools.product((1, 2, 3, 7, 20, 60, 100), (1, 2, 3, 10, 11, 20, 50, 120)))


def doc() -> str:
    return DOC.read_text()


# -- the stated rates -----------------------------------------------------------------------------


def test_every_rate_is_above_zero():
    stated = dataclasses.fields(fs.NodeRates)
    assert stated, "NodeRates states no rate"
    for field in stated:
        assert getattr(fs.RATES, field.name) > 0, field.name


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(fs.NodeRates)])
def test_a_rate_of_zero_is_refused_by_name(name):
    with pytest.raises(ValueError, match=rf"NodeRates\.{name} = 0: must be a number above 0"):
        fs.NodeRates(**{name: 0})


def test_the_event_sizes_are_the_sample_events_as_json():
    """Falcosidekick's line is its payload marshalled; the echo is Falco's stdout line and the
    delivery log line; neither JSON needs escaping, so Python's compact JSON is Go's."""
    sidekick = json.dumps(fs.SAMPLE_SIDEKICK_EVENT, separators=(",", ":"))
    falco = json.dumps(fs.SAMPLE_FALCO_EVENT, separators=(",", ":"))
    assert not re.search(r"[<>&\\]|[^\x00-\x7f]", sidekick + falco)
    assert fs.RATES.falco_event_bytes == len(sidekick) == 1299
    assert fs.RATES.falco_event_echo_bytes == len(falco) + len(fs.SIDEKICK_DELIVERY_LOG_LINE) == 1232 + 50
    # Falcosidekick adds the uuid and the spoke's custom field; the rest is Falco's event.
    extra = {"uuid"}
    assert set(fs.SAMPLE_SIDEKICK_EVENT) - set(fs.SAMPLE_FALCO_EVENT) == extra
    assert set(fs.SAMPLE_SIDEKICK_EVENT["output_fields"]) - set(fs.SAMPLE_FALCO_EVENT["output_fields"]) == {"cluster"}
    # Every value in output_fields is one the output line shows (evt.time is its time prefix).
    fields = fs.SAMPLE_FALCO_EVENT["output_fields"]
    assert len(fields) == 17
    for key, value in fields.items():
        if key != "evt.time":
            assert f"={value}" in fs.SAMPLE_FALCO_EVENT["output"], key


def test_the_falco_series_count_is_the_sum_of_its_families():
    assert fs.FALCO_FIXED_SERIES == sum(fs.FALCO_SERIES.values()) == 58
    assert fs.RATES.falco_fixed_series == fs.FALCO_FIXED_SERIES
    # 58 + 5 matched rules + 5 scrape series; 1 + 30 pods x 4; 10 event label sets.
    assert fs.RATES.series_per_node == 58 + 5 + 5 + 1 + 30 * 4 + 10 == 199
    assert fs.RATES.series_per_cluster == 5 + (52 + 5) == 62


def _chart_file(chart: str, member: str) -> str:
    with tarfile.open(ROOT / "charts" / f"{chart}.tgz") as archive:
        extracted = archive.extractfile(member)
        assert extracted is not None, member
        return extracted.read().decode()


def test_the_falco_chart_exports_the_families_counted():
    """falco 9.1.0's defaults are what FALCO_SERIES counts: these counter groups on, per-CPU and
    jemalloc off, no hostPID anywhere (so BPF iterators, and their counters, are off), events on
    stdout, suggested output fields appended, and the falco-rules 5 the sample event comes from."""
    values = yaml.safe_load(_chart_file("falco-9.1.0", "falco/values.yaml"))
    metrics = values["metrics"]
    for key in ("rulesCountersEnabled", "resourceUtilizationEnabled", "stateCountersEnabled"):
        assert metrics[key] is True, key
    for key in ("kernelEventCountersEnabled", "pluginsMetricsEnabled", "kernelIterEventCountersEnabled"):
        assert metrics[key] is True, key
    assert metrics["kernelEventCountersPerCPUEnabled"] is False
    assert metrics["jemallocStatsEnabled"] is False
    with tarfile.open(ROOT / "charts" / "falco-9.1.0.tgz") as archive:
        templates = [m for m in archive.getmembers() if m.name.startswith("falco/templates/")]
        assert templates
        for member in templates:
            extracted = archive.extractfile(member)
            assert extracted is None or b"hostPID" not in extracted.read(), member.name
    assert values["falco"]["stdout_output"]["enabled"] is True
    assert {"suggested_output": True} in values["falco"]["append_output"]
    assert values["falcoctl"]["config"]["artifact"]["install"]["refs"] == ["falco-rules:5"]


def test_the_loki_chart_leaves_encoding_and_tenant_limits_at_lokis_defaults():
    values = _chart_file("loki-18.11.0", "loki/values.yaml")
    for key in ("chunk_encoding", "ingestion_rate_mb", "max_global_streams_per_user"):
        assert key not in values, key


def test_the_scrape_interval_is_the_one_the_stack_sets():
    monitor = service_monitor("falco", "falco", {"app": "falco"}, "metrics", {})
    assert monitor["spec"]["endpoints"][0]["interval"] == f"{fs.RATES.scrape_interval_s:.0f}s"


# -- the load ------------------------------------------------------------------------------------


def test_three_by_three_by_hand():
    """One line worked out from the stated rates, independently of the model's formulas."""
    load = fs.hub_load(3, 3)
    r = fs.RATES
    per_node = 20 * 250 + 0.01 * (1282 + 1299)  # pod logs, Falco's echoes and Falcosidekick's pushes
    assert per_node == r.pod_log_lines_per_s * r.pod_log_bytes_per_line + r.falco_events_per_s * (
        r.falco_event_echo_bytes + r.falco_event_bytes
    )
    assert load.log_bytes_per_s == pytest.approx(9 * 5025.81)
    assert load.loki_ingest_gb_per_day == pytest.approx(9 * 5025.81 * 86_400 / 1e9)  # 3.908 GB/day
    assert load.loki_bucket_gb == pytest.approx(3.908069856 * 7 / 5)
    assert load.log_lines_per_s == pytest.approx(9 * (20 + 0.01 * 2 + 0.01))
    assert load.falco_events_per_s == pytest.approx(0.09)
    assert load.active_series == 3 * (3 * 199 + 62) == 1977
    assert load.samples_per_s == pytest.approx(1977 / 30)
    # Blocks at 2 bytes a sample for 7 days; the WAL at its floor of three 128 MiB segments.
    assert load.prometheus_disk_bytes == pytest.approx(7 * 86_400 * 1977 / 30 * 2 + 3 * 128 * 2**20)
    # Head: 2 GiB per million series, and 3 h of 30 s samples at 2 bytes, x1.5 chunks, x2 GC.
    assert load.prometheus_head_bytes == pytest.approx(1977 * (2 * 2**30 / 1e6 + 360 * 2 * 1.5 * 2))
    assert load.log_streams == 3 * (3 * 45 + 3 * 10) == 495


METRICS = (
    "falco_events_per_s",
    "pod_log_lines_per_s",
    "pod_log_bytes_per_s",
    "event_push_bytes_per_s",
    "log_lines_per_s",
    "log_bytes_per_s",
    "log_streams",
    "active_series",
    "samples_per_s",
    "loki_ingest_gb_per_day",
    "loki_bucket_gb",
    "prometheus_head_bytes",
)


@pytest.mark.parametrize(("clusters", "nodes"), [(1, 1), (3, 3), (20, 20), (7, 50)])
def test_doubling_the_clusters_doubles_the_load(clusters, nodes):
    one, two = fs.hub_load(clusters, nodes), fs.hub_load(2 * clusters, nodes)
    for metric in METRICS:
        assert getattr(two, metric) == pytest.approx(2 * getattr(one, metric)), metric


@pytest.mark.parametrize(("clusters", "nodes"), [(1, 1), (3, 3), (20, 20), (7, 50)])
def test_doubling_the_nodes_doubles_what_nodes_send(clusters, nodes):
    """Logs and events are per node; a cluster's own series (its KSM and Falcosidekick targets) are not."""
    one, two = fs.hub_load(clusters, nodes), fs.hub_load(clusters, 2 * nodes)
    for metric in ("falco_events_per_s", "log_lines_per_s", "log_bytes_per_s", "loki_ingest_gb_per_day"):
        assert getattr(two, metric) == pytest.approx(2 * getattr(one, metric)), metric
    assert two.active_series == 2 * one.active_series - clusters * fs.RATES.series_per_cluster


def test_the_load_grows_with_clusters_and_with_nodes():
    for (n, m), (n2, m2) in itertools.product(GRID, GRID):
        if (n, m) != (n2, m2) and n <= n2 and m <= m2:
            small, big = fs.hub_load(n, m), fs.hub_load(n2, m2)
            for metric in (*METRICS, "prometheus_disk_bytes"):
                assert getattr(big, metric) >= getattr(small, metric), (metric, (n, m), (n2, m2))
            assert big.log_bytes_per_s > small.log_bytes_per_s
            assert big.active_series > small.active_series


def test_longer_retention_keeps_more():
    week, month = fs.hub_load(20, 20, retention_days=7), fs.hub_load(20, 20, retention_days=30)
    assert month.loki_bucket_gb == pytest.approx(week.loki_bucket_gb * 30 / 7)
    assert month.prometheus_disk_bytes > week.prometheus_disk_bytes
    assert month.loki_ingest_gb_per_day == week.loki_ingest_gb_per_day


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 3), "clusters = 0: must be a whole number of at least 1"),
        ((3, -1), "nodes_per_cluster = -1: must be a whole number of at least 1"),
        ((3, 2.5), "nodes_per_cluster = 2.5: must be a whole number of at least 1"),
        ((3, 3, fs.RATES, 0), "retention_days = 0: must be a whole number of at least 1"),
    ],
)
def test_bad_fleet_sizes_are_refused_by_name(args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        fs.hub_load(*args)


# -- the shape ------------------------------------------------------------------------------------


def test_loki_replicas_are_never_below_the_replication_factor():
    for n, m in GRID:
        shape = fs.hub_shape(fs.hub_load(n, m))
        for replicas in (shape.loki_write_replicas, shape.loki_read_replicas, shape.loki_backend_replicas):
            assert replicas >= 3, (n, m)
        assert shape.receiver_replicas >= 2


def test_loki_replicas_carry_the_ingest_at_the_stated_capacity():
    tier = fs.LOKI_TIERS[0]
    # Loki's sizing page, < 3 TB/day: ingesters 6 x 2 CPU / 4 Gi and distributors 4 x 2 CPU / 0.5 Gi
    # for 3000 GB/day; a write replica requests 200m / 1Gi: CPU runs out first, at 30 GB/day.
    assert fs.replica_capacity_gb_per_day("write", SCALE_OUT["loki-write"], tier) == pytest.approx(
        0.2 / ((6 * 2 + 4 * 2) / 3000)
    )
    for n, m in GRID:
        load = fs.hub_load(n, m)
        shape = fs.hub_shape(load)
        for target, replicas in (
            ("write", shape.loki_write_replicas),
            ("read", shape.loki_read_replicas),
            ("backend", shape.loki_backend_replicas),
        ):
            capacity = fs.loki_capacity_gb_per_day(target, SCALE_OUT[f"loki-{target}"], load.loki_ingest_gb_per_day)
            assert replicas * capacity >= load.loki_ingest_gb_per_day
            assert replicas == 3 or (replicas - 1) * capacity < load.loki_ingest_gb_per_day, (target, n, m)


def test_past_the_first_tier_no_target_needs_fewer_replicas():
    """Loki's 3-30 TB/day tier runs an index gateway at 4x the GB/day of the < 3 TB/day tier's, and
    its compactor at a fifth of the memory per GB: the model keeps the lower tier's figures where
    they ask more, so crossing 3 TB/day never shrinks the hub."""
    below, above = fs.hub_load(1, 6_900), fs.hub_load(1, 6_950)
    assert below.loki_ingest_gb_per_day < 3000 < above.loki_ingest_gb_per_day
    small, big = fs.hub_shape(below), fs.hub_shape(above)
    assert big.loki_backend_replicas >= small.loki_backend_replicas
    assert mebibytes(big.loki_backend_memory_limit) >= mebibytes(small.loki_backend_memory_limit)
    assert fs.compactor_memory_bytes(3001) == 10 * 2**30  # the < 3 TB/day tier's compactor, 10 Gi
    assert fs.compactor_memory_bytes(30_000) == 20 * 2**30


def test_bigger_loki_pods_need_fewer_of_them():
    load = fs.hub_load(100, 50)
    big = {f"loki-{t}": ContainerSize("2", "4Gi", "8Gi") for t in fs.LOKI_TARGETS}
    small, large = fs.hub_shape(load), fs.hub_shape(load, big)
    assert large.loki_write_replicas < small.loki_write_replicas
    assert large.loki_read_replicas < small.loki_read_replicas
    assert min(large.loki_write_replicas, large.loki_read_replicas, large.loki_backend_replicas) >= 3


def test_the_shape_grows_with_the_fleet():
    def size(shape):
        return (
            shape.loki_write_replicas,
            shape.loki_read_replicas,
            shape.loki_backend_replicas,
            shape.loki_write_replicas * mebibytes(shape.loki_write_volume),  # a replica's share may shrink
            mebibytes(shape.loki_backend_memory_limit),
            shape.loki_tenant_ingestion_rate_mb,
            shape.loki_tenant_max_streams,
            shape.receiver_replicas,
            mebibytes(shape.receiver_memory_request),
            mebibytes(shape.prometheus_memory_request),
            mebibytes(shape.prometheus_memory_limit),
            mebibytes(shape.prometheus_volume),
        )

    for (n, m), (n2, m2) in itertools.product(GRID, GRID):
        if n <= n2 and m <= m2:
            small, big = size(fs.hub_shape(fs.hub_load(n, m))), size(fs.hub_shape(fs.hub_load(n2, m2)))
            assert all(b >= s for s, b in zip(small, big, strict=True)), ((n, m), (n2, m2), small, big)


def test_every_setting_is_a_kubernetes_quantity_that_holds_the_load():
    for n, m in [*GRID, *fs.DEFAULT_FLEETS]:
        load = fs.hub_load(n, m)
        shape = fs.hub_shape(load)
        quantities = {
            "loki_write_volume": shape.loki_write_volume,
            "loki_backend_memory_limit": shape.loki_backend_memory_limit,
            "receiver_memory_request": shape.receiver_memory_request,
            "receiver_memory_limit": shape.receiver_memory_limit,
            "prometheus_memory_request": shape.prometheus_memory_request,
            "prometheus_memory_limit": shape.prometheus_memory_limit,
            "prometheus_volume": shape.prometheus_volume,
        }
        for name, quantity in quantities.items():
            assert K8S_QUANTITY.match(quantity), (name, quantity)
            assert QUANTITY.match(quantity), (name, quantity)  # what logging.storageSize and friends accept
        wal = load.log_bytes_per_s * 3 * 3 * 3600  # every replica's copy, for 3 hours
        assert shape.loki_write_replicas * mebibytes(shape.loki_write_volume) * 2**20 >= wal
        assert mebibytes(shape.prometheus_memory_request) * 2**20 >= load.prometheus_head_bytes
        assert mebibytes(shape.prometheus_memory_limit) >= mebibytes(shape.prometheus_memory_request)
        assert mebibytes(shape.receiver_memory_limit) >= mebibytes(shape.receiver_memory_request)
        # Prometheus's GB is GiB: the retention size fits the volume and holds blocks and WAL.
        assert PROMETHEUS_SIZE.match(shape.prometheus_retention_size)
        retention = int(shape.prometheus_retention_size[:-2]) * 2**30
        assert load.prometheus_disk_bytes <= retention <= 0.8 * mebibytes(shape.prometheus_volume) * 2**20


def test_tenant_limits_hold_a_spoke_and_default_where_they_can():
    for n, m in GRID:
        load = fs.hub_load(n, m)
        shape = fs.hub_shape(load)
        assert shape.loki_tenant_ingestion_rate_mb * 1e6 >= 2 * load.cluster_log_bytes_per_s
        assert shape.loki_tenant_max_streams >= 1.5 * load.cluster_log_streams
    small = fs.hub_shape(fs.hub_load(100, 50))
    assert (small.loki_tenant_ingestion_rate_mb, small.loki_tenant_max_streams) == (4, 5000)
    busy = fs.hub_shape(fs.hub_load(2, 1000))  # 5 MB/s and 55,000 streams per spoke
    assert busy.loki_tenant_ingestion_rate_mb == 11
    assert busy.loki_tenant_max_streams == 82_500


def test_an_ingest_beyond_lokis_documented_tiers_is_refused():
    with pytest.raises(ValueError, match="beyond the 30 TB/day"):
        fs.hub_shape(fs.hub_load(100, 20_000))


@pytest.mark.parametrize(("nodes", "source"), [(1, "api"), (3, "api"), (10, "api"), (11, "files"), (50, "files")])
def test_the_collector_reads_node_files_above_ten_nodes(nodes, source):
    assert fs.collector_source(nodes) == source


def test_the_collector_source_refuses_a_bad_node_count():
    with pytest.raises(ValueError, match=re.escape("nodes_per_cluster = 0: must be a whole number of at least 1")):
        fs.collector_source(0)


# -- the document ---------------------------------------------------------------------------------


def test_the_docs_table_is_the_generated_one():
    found = TABLE.search(doc())
    assert found, f"{DOC} has no fleet-sizing-table markers"
    assert found.group(1) == fs.sizing_table(), (
        "regenerate with: python -c 'from components.fleet_sizing import sizing_table; print(sizing_table())'"
    )


def test_the_docs_rates_are_the_stated_ones():
    rows = re.findall(r"^\| `(\w+)` \| ([0-9.,]+) \|", doc(), re.M)
    assert rows, "no rates table in the doc"
    assert {name for name, _ in rows} == {f.name for f in dataclasses.fields(fs.NodeRates)}
    for name, value in rows:
        assert float(value.replace(",", "")) == getattr(fs.RATES, name), name


def shown(value: object) -> str:
    """A figure as the doc writes it: 1,299, 99.5, 5 (not 5.0), a version as it is."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,}"
    assert isinstance(value, int | float), value
    return f"{int(value):,}"


def terms(constant: str) -> list[int]:
    """The numbers a constant of components/fleet_sizing.py is written as the sum of, in order
    (``SIDEKICK_SERIES_PER_POD = 35 + 9 + 4 + 2 + 2``): the parts the doc names one by one."""
    tree = ast.parse(Path(fs.__file__).read_text())
    (value,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [constant]
    ]
    found: list[int] = []

    def add(node: ast.expr) -> None:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            add(node.left)
            add(node.right)
        elif isinstance(node, ast.Constant) and isinstance(node.value, int):
            found.append(node.value)
        else:
            raise AssertionError(f"{constant} is not written as a sum of numbers: {ast.unparse(value)}")

    add(value)
    assert sum(found) == getattr(fs, constant), constant
    return found


def falco_series(*families: str) -> int:
    """Falco's series of the FALCO_SERIES families whose names start with ``families``, one each."""
    found = [count for family, count in fs.FALCO_SERIES.items() if family.startswith(families)]
    assert len(found) == len(families), (families, found)
    return sum(found)


def stated_figures() -> dict[str, tuple[object, ...]]:
    """Each phrase of the doc that states figures, with ``{}`` where each stands, and those
    figures as the model (its rates, constants and functions) or the pinned charts give them.
    tests/docs/test_figures.py reads these phrases (their dict's keys) to know which figures of
    the doc this check covers: a phrase here is a figure checked there."""
    r = fs.RATES
    big = fs.DEFAULT_FLEETS[-1]
    load = fs.hub_load(*big)
    shape = fs.hub_shape(load)
    at_threshold = fs.hub_load(1, fs.API_COLLECTOR_MAX_NODES)
    tiers = fs.LOKI_TIERS
    backend_limit = mebibytes(SCALE_OUT["loki-backend"].memory_limit)
    beyond = [
        f
        for f in fs.DEFAULT_FLEETS
        if mebibytes(fs.hub_shape(fs.hub_load(*f)).loki_backend_memory_limit) > backend_limit
    ]
    assert beyond and beyond[0] != fs.DEFAULT_FLEETS[0], "the smallest fleet fits today's backend limit"
    (ingester_cpu,) = {tier.components["ingester"].cpu for tier in tiers}
    retention = inspect.signature(fs.sizing_table).parameters["retention_days"].default
    assert retention == inspect.signature(fs.hub_load).parameters["retention_days"].default
    falco = yaml.safe_load(_chart_file("falco-9.1.0", "falco/values.yaml"))
    (rules,) = falco["falcoctl"]["config"]["artifact"]["install"]["refs"]
    falco_version = FALCO.tag("docker.io/falcosecurity/falco")
    info = ("falco_version_info", "falco_sha256_rules_files_info", "falco_sha256_config_files_info")
    queue = ("falco_outputs_queue_num_drops_total", "falco_reload_timestamp_nanoseconds", "scap_engine_name_info")
    groups = {
        "info": falco_series(*info),
        "queue": falco_series(*queue),
        "kernel": falco_series("scap kernel event counters"),
        "resources": falco_series("falco resource utilization"),
        "state": falco_series("scap state counters"),
        "plugin": falco_series("plugins_container"),
        "host": falco_series("kernel_release_info"),
    }
    assert sum(groups.values()) == fs.FALCO_FIXED_SERIES, "the doc names every family"
    pod_logs = r.pod_log_lines_per_s * r.pod_log_bytes_per_line
    return {
        # What one node sends
        "in steady state, {} an hour": (round(r.falco_events_per_s * 3600),),
        "(falco-rules {}, the `falco-rules:{}`": (rules.split(":")[1], rules.split(":")[1]),
        "the six the container plugin {} suggests": (
            falco["collectors"]["containerEngine"]["pluginRef"].rsplit(":", 1)[1],
        ),
        "(`append_output: suggested_output`): {} bytes": (fs.json_bytes(fs.SAMPLE_SIDEKICK_EVENT),),
        "the {} bytes of Falco's own JSON line": (fs.json_bytes(fs.SAMPLE_FALCO_EVENT),),
        "(a {}-byte `POST OK` line)": (len(fs.SIDEKICK_DELIVERY_LOG_LINE),),
        # Active series
        "**Falco {}, {} series** per node": (falco_version, fs.FALCO_FIXED_SERIES),
        "`userspace/falco/falco_metrics.cpp` at {} and": (falco_version,),
        "config-file info ({}), output queue drops, reload time, engine name ({}), kernel event counters ({}:": (
            groups["info"],
            groups["queue"],
            groups["kernel"],
        ),
        "resource utilization ({}), state counters ({}), the container plugin's {}, and {} host facts": (
            groups["resources"],
            groups["state"],
            groups["plugin"],
            groups["host"],
        ),
        "`kube_node_info` ({} per node), `kube_pod_info` ({} per pod), `kube_pod_status_ready` ({} per pod": (
            fs.KSM_SERIES_PER_NODE,
            *terms("KSM_SERIES_PER_POD"),
        ),
        "**Falcosidekick {}, {} series per Falcosidekick pod**": (
            FALCOSIDEKICK.tag("docker.io/falcosecurity/falcosidekick"),
            fs.SIDEKICK_SERIES_PER_POD,
        ),
        "({} Go runtime, {} process, {} `promhttp` series), `falcosidekick_inputs_total` ({}) and"
        " `falcosidekick_outputs_total` for Loki ({})": tuple(terms("SIDEKICK_SERIES_PER_POD")),
        "adds {} series to every target it scrapes": (fs.SERIES_PER_TARGET,),
        "That is {} series per node and {} per cluster": (r.series_per_node, r.series_per_cluster),
        # The model in words
        "per day = log bytes per second x {}.": (fs.SECONDS_PER_DAY,),
        "Compression is an *assumption*, {}x:": (fs.LOKI_COMPRESSION_RATIO,),
        "{} bytes per sample": (fs.PROMETHEUS_BYTES_PER_SAMPLE,),
        "the WAL: {} hours of samples at {} bytes each": (fs.WAL_HOURS, fs.WAL_BYTES_PER_SAMPLE),
        "at least three {} MiB segments": (fs.WAL_MIN_BYTES // (3 * fs.MiB),),
        "= {} bytes per series at a {} s interval": (
            round(fs.prometheus_bytes_per_series(r.scrape_interval_s)),
            r.scrape_interval_s,
        ),
        "{} GiB per million series for cardinality": (
            round(fs.PROMETHEUS_CARDINALITY_BYTES_PER_SERIES * 1e6 / fs.GiB, 6),
        ),
        "up to {} hours of samples at {} bytes with {}% chunk overhead": (
            fs.PROMETHEUS_HEAD_HOURS,
            fs.PROMETHEUS_BYTES_PER_SAMPLE,
            round((fs.PROMETHEUS_CHUNK_OVERHEAD - 1) * 100),
        ),
        "replicas for up to {} TB/day (and up to {} TB/day)": tuple(t.max_gb_per_day / 1000 for t in tiers),
        "write {}, read {}, backend {} GB/day": tuple(
            round(fs.replica_capacity_gb_per_day(t, SCALE_OUT[f"loki-{t}"], tiers[0]))
            for t in ("write", "read", "backend")
        ),
        "never fewer than {} (the replication factor)": (fs.REPLICATION_FACTOR,),
        "(x {} replicas) for {} hours": (fs.REPLICATION_FACTOR, fs.LOKI_WAL_HOURS),
        "up to Loki's {} h `max_chunk_age`, plus an hour": (fs.LOKI_WAL_HOURS - 1,),
        "Loki's defaults are {} MB/s and {} streams per tenant": (
            fs.LOKI_DEFAULT_INGESTION_RATE_MB,
            fs.LOKI_DEFAULT_MAX_STREAMS,
        ),
        "twice a spoke's ingest and {} times its streams": (fs.TENANT_STREAM_HEADROOM,),
        "{} GiB per million active series at its {} s default": (
            fs.ALLOY_GIB_PER_MILLION_SERIES,
            fs.ALLOY_DEFAULT_SCRAPE_INTERVAL_S,
        ),
        "doubled here for {} s": (r.scrape_interval_s,),
        "any replica), up to {} GiB": (fs.RECEIVER_MEMORY_BUDGET / fs.GiB,),
        # How to read it
        "Pod logs are about {}% of the bytes": (round(100 * pod_logs / (load.log_bytes_per_s / load.nodes), 1),),
        "At {} x {} the small pods ({}m CPU per write replica) add up to {} write replicas": (
            *big,
            millicores(SCALE_OUT["loki-write"].cpu),
            shape.loki_write_replicas,
        ),
        "runs ingesters at {} CPU and {}-{} Gi": (ingester_cpu, *(t.components["ingester"].memory_gib for t in tiers)),
        "From about {} x {} on, the compactor needs more than today's {}Mi backend limit": (
            *beyond[0],
            f"{backend_limit:.0f}",
        ),
        "would need {} MB/s and {} streams at {} x {}": (round(load.log_bytes_per_s / 1e6), load.log_streams, *big),
        "the {} MB/s and {} streams default": (fs.LOKI_DEFAULT_INGESTION_RATE_MB, fs.LOKI_DEFAULT_MAX_STREAMS),
        "{} million series and {} samples a second fit one hub Prometheus with {}Gi of memory": (
            round(load.active_series / 1e6),
            round(load.samples_per_s, -3),
            mebibytes(shape.prometheus_memory_request) / 1024,
        ),
        "the volume holds {} days at {} bytes per sample": (retention, fs.PROMETHEUS_BYTES_PER_SAMPLE),
        "(`retention_days`, {} by default": (retention,),
        # When a spoke's collector should read node files
        "keeps the API route up to {} nodes per cluster": (fs.API_COLLECTOR_MAX_NODES,),
        "carries at most {} log streams and {} KB/s of logs": (
            at_threshold.cluster_containers,
            round(at_threshold.pod_log_bytes_per_s / 1000),
        ),
    }


def test_the_figures_the_doc_states_are_the_models():
    """Every phrase of ``stated_figures``, wherever the doc states it, gives the model's figures."""
    text = doc()
    for template, figures in stated_figures().items():
        matches = list(figure_phrase(template).finditer(text))
        assert matches, f"the doc no longer says {template!r}"
        for match in matches:
            assert list(match.groups()) == [shown(f) for f in figures], f"{match[0]!r}: the model says {figures}"


def test_the_figures_the_doc_states_in_words_are_the_models():
    load = fs.hub_load(3, 3)
    sample_fields = fs.SAMPLE_FALCO_EVENT["output_fields"]
    stated = {
        "Those two lines": fs.RATES.falco_event_echo_lines == 2,
        "its two echoes": fs.RATES.falco_event_echo_lines == 2,
        "the six the container plugin": len([f for f in sample_fields if f.startswith(("container.", "k8s."))]) == 6,
        "four kube-state-metrics series": fs.KSM_SERIES_PER_POD == 4,
        "the three replicas' copies": fs.REPLICATION_FACTOR == 3,
        "doubled for Go's garbage collector": fs.GO_GC_FACTOR == 2,
        "The limit is twice the request": fs.PROMETHEUS_LIMIT_FACTOR == 2,
        "twice a spoke's ingest": fs.TENANT_RATE_HEADROOM == 2,
        "doubled here for": fs.ALLOY_DEFAULT_SCRAPE_INTERVAL_S / fs.RATES.scrape_interval_s == 2,
        "one replica more than the load needs": fs.hub_shape(load).receiver_replicas
        == math.ceil(
            load.cluster_active_series
            / 1e6
            * fs.ALLOY_GIB_PER_MILLION_SERIES
            * fs.GiB
            * (fs.ALLOY_DEFAULT_SCRAPE_INTERVAL_S / fs.RATES.scrape_interval_s)
            / fs.RECEIVER_MEMORY_BUDGET
        )
        + 1,
        "Seven days' retention": inspect.signature(fs.sizing_table).parameters["retention_days"].default == 7,
    }
    text = " ".join(doc().split())
    for phrase, holds in stated.items():
        assert phrase in text, f"the doc no longer says {phrase!r}"
        assert holds, f"the doc says {phrase!r}, the model does not"


def test_the_doc_names_the_series_prometheus_adds_to_every_target():
    (named,) = re.findall(r"adds \d+ series to every target it scrapes \(([^)]*)\)", doc())
    assert len(re.findall(r"`\w+`", named)) == fs.SERIES_PER_TARGET, named


def test_the_docs_commands_print_the_tables():
    """The commands the doc gives run as written: the first prints the doc's table, the second
    the table of the fleet and retention it passes."""
    (block,) = re.findall(r"```sh\n(.*?)```", doc(), re.S)
    commands = re.findall(r"^venv/bin/python -c '([^']*)'$", block, re.M)
    assert len(commands) == 2, block
    printed = []
    for command in commands:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(command, {})
        printed.append(out.getvalue())
    assert printed[0] == TABLE.search(doc()).group(1) + "\n"
    mine = re.fullmatch(r".*sizing_table\(\[\((\d+), (\d+)\)\], retention_days=(\d+)\)\)", commands[1])
    assert mine, commands[1]
    clusters, nodes, days = map(int, mine.groups())
    assert f"| Bucket GB ({days} d) |" in printed[1]
    assert printed[1].count(f"| {clusters} x {nodes} | {clusters * nodes:,} |") == 1, printed[1]
