"""What Grafana is given by the charts (dashboards through the sidecar) refers only to data
sources that exist in it: a panel that names a missing uid shows "data source not found"."""

import json

GRAFANA_BUILT_INS = {"-- Grafana --", "grafana", "-- Mixed --", "-- Dashboard --", "__expr__"}


def datasource_uids(node, found):
    if isinstance(node, dict):
        source = node.get("datasource")
        if isinstance(source, dict) and isinstance(source.get("uid"), str):
            found.add(source["uid"])
        for value in node.values():
            datasource_uids(value, found)
    elif isinstance(node, list):
        for value in node:
            datasource_uids(value, found)
    return found


def created_data_sources(stack):
    return {r.plain("uid") for r in stack.run.of_type("grafana:oss/dataSource:DataSource")}


def test_every_data_source_a_chart_dashboard_names_exists(stack):
    dashboards = [o for o in stack.of_kind("ConfigMap") if "grafana_dashboard" in o.labels]
    assert dashboards
    missing = {}
    for dashboard in dashboards:
        for key, text in dashboard.body["data"].items():
            uids = datasource_uids(json.loads(text), set())
            unknown = {u for u in uids if not u.startswith("$") and u not in GRAFANA_BUILT_INS}
            if unknown - created_data_sources(stack):
                missing[f"{dashboard.name}/{key}"] = sorted(unknown - created_data_sources(stack))
    assert missing == {}


def test_no_sidecar_provisions_a_data_source_behind_pulumis_back(stack):
    """Data sources come from the API only, so the alert rules can wait for them."""
    provisioned = [o.name for o in stack.of_kind("ConfigMap", "Secret") if "grafana_datasource" in o.labels]
    assert provisioned == []
