"""The Grafana dashboard and its provisioning: structure, PromQL, units and thresholds."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO
from dashboard import (
    dashboard_expressions,
    dashboard_rows,
    duration_seconds,
    iter_panels,
    load_dashboard,
    render_expression,
)

from monitor.config import HedgeConfig

GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD_PATH = GRAFANA / "dashboards" / "condor-monitor.json"
DATASOURCES_PATH = GRAFANA / "provisioning" / "datasources" / "condor-prometheus.yaml"
PROVIDERS_PATH = GRAFANA / "provisioning" / "dashboards" / "condor-monitor.yaml"
RULES_PATH = REPO / "rules" / "second-engine.yaml"
README = (REPO / "README.md").read_text(encoding="utf-8")

DASHBOARD = load_dashboard(DASHBOARD_PATH)
PANELS = [p for p in iter_panels(DASHBOARD) if p.get("type") != "row"]
EXPRESSIONS = dashboard_expressions(DASHBOARD_PATH)
DATASOURCE = "${datasource}"
INSTANCE_MATCHER = 'instance=~"$instance"'
RATE_INTERVAL = "$__rate_interval"

# Exported by the daemon besides the README's table (name: type).
EXTRA_METRICS = {
    "condor_pipeline_latency_seconds": "histogram",
    "condor_alert_states": "gauge",
    "condor_feed_reconnects_total": "counter",
    "condor_ready": "gauge",
    "condor_market_open": "gauge",
    "condor_pipeline_last_progress_timestamp_seconds": "gauge",
}
METRIC = re.compile(r"\bcondor_[a-z0-9_]+")
SELECTOR = re.compile(r"\b(condor_[a-z0-9_]+)\s*(\{[^}]*\})?")
RANGE_FUNCTIONS = re.compile(r"\b(rate|increase|irate|delta|idelta|[a-z]+_over_time)\s*\(")
RANGE_SELECTOR = re.compile(r"\[([^\]]*)\]")

ROWS = (
    "Book risk",
    "Second engine",
    "Scenario grid",
    "Stress",
    "Alerts",
    "Feed and pipeline health",
)
# Metrics each row must show.
ROW_METRICS = {
    "Stress": ("condor_stress_pnl_dollars", "condor_stress_hedge_coverage_ratio"),
    "Book risk": (
        "condor_strategy_delta_dollars_per_spx_pct",
        "condor_strategy_delta_dollars_per_spx_point",
        "condor_strategy_gamma_dollars_per_spx_pct",
        "condor_strategy_vega_dollars_per_vol_point",
        "condor_strategy_theta_dollars_per_day",
        "condor_strategy_beta_delta_dollars_per_spx_pct",
        "condor_index_value",
    ),
    "Second engine": (
        "condor_hedge_ratio_percent",
        "condor_hedge_band_percent",
        "condor_vix_future_price",
        "condor_vix_term_spread_points",
        "condor_vix_roll_points_per_day",
        "condor_carry_dollars_per_day",
        "condor_hedge_carry_ratio_percent",
        "condor_hedge_quality_correlation",
        "condor_hedge_quality_beta",
        "condor_indicator_macd",
        "condor_indicator_rsi",
        "condor_breadth_divergence",
        "condor_event_next_hours",
    ),
    "Scenario grid": ("condor_scenario_pnl_dollars",),
    "Alerts": (
        "condor_alert_states",
        "condor_alerts_firing",
        "condor_alert_transitions_total",
    ),
    "Feed and pipeline health": (
        "condor_feed_data_age_seconds",
        "condor_feed_connected",
        "condor_feed_instruments",
        "condor_quotes_rejected_total",
        "condor_replay_bad_lines_total",
        "condor_pipeline_latency_seconds_bucket",
        "condor_delivery_backlog_messages",
        "condor_delivery_oldest_undelivered_age_seconds",
        "condor_delivery_sent_total",
        "condor_delivery_failed_total",
        "condor_mqtt_connected",
        "condor_ready",
        "condor_market_open",
    ),
}


def readme_metrics() -> dict[str, str]:
    """name: type, from the README's metric table."""
    rows = re.findall(r"^\| `(condor_[a-z0-9_]+)` \| (\w+) \|", README, flags=re.MULTILINE)
    return dict(rows)


KNOWN_METRICS = readme_metrics() | EXTRA_METRICS


def resolve_metric(name: str) -> str | None:
    """The type of a metric name as written in PromQL: a known name, a histogram's series
    (``_bucket``, ``_sum``, ``_count`` of a known histogram), or a counter written with
    ``_total`` that the table lists without it. None when unknown."""
    if name in KNOWN_METRICS:
        return KNOWN_METRICS[name]
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and KNOWN_METRICS.get(base) == "histogram":
            return f"histogram{suffix}"
    base = name.removesuffix("_total")
    if base != name and KNOWN_METRICS.get(base) == "counter":
        return "counter"
    return None


def call_argument(expr: str, open_paren: int) -> str:
    """The text between the parenthesis at ``open_paren`` and its match."""
    depth = 0
    for i in range(open_paren, len(expr)):
        if expr[i] == "(":
            depth += 1
        elif expr[i] == ")":
            depth -= 1
            if depth == 0:
                return expr[open_paren + 1 : i]
    raise AssertionError(f"unbalanced parentheses in {expr!r}")


def panel_exprs(panel: dict[str, Any]) -> list[str]:
    return [t["expr"] for t in panel.get("targets", []) if t.get("expr")]


def panels_querying(metric: str, matcher: str | None = None) -> list[dict[str, Any]]:
    """Panels with a target that selects ``metric`` (with ``matcher`` in its braces)."""
    found = []
    for panel in PANELS:
        for expr in panel_exprs(panel):
            for name, braces in SELECTOR.findall(expr):
                if name == metric and (matcher is None or matcher in braces):
                    found.append(panel)
                    break
            else:
                continue
            break
    return found


def target_unit(panel: dict[str, Any], ref_id: str) -> str | None:
    """The unit a target's series are shown in: a by-query override, else the default."""
    config = panel["fieldConfig"]
    unit: str | None = config["defaults"].get("unit")
    for override in config.get("overrides", []):
        if override["matcher"] == {"id": "byFrameRefID", "options": ref_id}:
            for prop in override["properties"]:
                if prop["id"] == "unit":
                    unit = prop["value"]
    return unit


def expected_unit(expr: str) -> str | None:
    """The unit the metric name and the query imply, where they do."""
    if RANGE_FUNCTIONS.search(expr) and "histogram_quantile" not in expr:
        return "cpm" if re.search(r"\*\s*60\b", expr) else "cps"
    names = {n.removesuffix("_bucket") for n in METRIC.findall(expr)}
    if names and all("_dollars" in n for n in names):
        return "currencyUSD"
    if names and all(n.endswith("_percent") for n in names):
        return "percent"
    if names and all(n.endswith("_seconds") for n in names):
        return "s"
    if names and all(n.endswith("_hours") for n in names):
        return "h"
    return None


def rule(name: str) -> dict[str, Any]:
    pack = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))
    for group in pack["groups"]:
        for entry in group["rules"]:
            if entry["alert"] == name:
                return dict(entry)
    raise AssertionError(f"{name} is not in {RULES_PATH.name}")


def rule_threshold(name: str, variable: str) -> tuple[str, float]:
    """(comparison, number) of ``variable OP number`` in the rule's expr."""
    expr = rule(name)["expr"]
    found = re.search(re.escape(variable) + r"\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)", expr)
    assert found is not None, f"{name}: no '{variable} OP number' in {expr!r}"
    return found.group(1), float(found.group(2))


def threshold_steps(panel: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return steps


def assert_threshold(panel: dict[str, Any], op: str, value: float) -> None:
    """A step at ``value`` whose alarm side (above for > and >=, below for < and <=) is not
    green, drawn on time series."""
    steps = threshold_steps(panel)
    title = panel["title"]
    assert panel["fieldConfig"]["defaults"]["thresholds"]["mode"] == "absolute", title
    at = [
        i
        for i, s in enumerate(steps)
        if s["value"] is not None and math.isclose(s["value"], value, abs_tol=1e-9)
    ]
    assert at, f"{title}: no threshold step at {value}: {steps}"
    i = at[0]
    alarm = steps[i] if op in {">", ">="} else steps[i - 1]
    assert alarm["color"] != "green", f"{title}: the alarm side of {value} is green"
    if panel["type"] == "timeseries":
        mode = panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"]
        assert mode != "off", f"{title}: thresholds are not drawn"


def test_dashboard_identity() -> None:
    assert DASHBOARD["uid"] == "condor-monitor"
    assert DASHBOARD["schemaVersion"] == 39
    assert DASHBOARD["title"]
    json.dumps(DASHBOARD)  # round-trips


def test_panel_ids_are_unique() -> None:
    ids = [p["id"] for p in iter_panels(DASHBOARD)]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids))


def test_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in DASHBOARD["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_template_variables() -> None:
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    instance = variables["instance"]
    assert instance["type"] == "query"
    assert instance["datasource"] == {"type": "prometheus", "uid": DATASOURCE}
    query = instance["query"]
    text = query["query"] if isinstance(query, dict) else query
    assert text == "label_values(condor_build_info, instance)"
    assert instance["definition"] == text
    assert instance.get("includeAll") is True
    assert instance.get("allValue") == ".*"


def test_the_rows_exist_with_their_metrics() -> None:
    rows = dashboard_rows(DASHBOARD)
    assert tuple(t for t in rows if t) == ROWS
    assert rows.get("", []) == []  # no panel above the first row
    for title, metrics in ROW_METRICS.items():
        assert rows[title], f"row {title} is empty"
        used = {m for p in rows[title] for e in panel_exprs(p) for m in METRIC.findall(e)}
        missing = sorted(set(metrics) - used)
        assert missing == [], f"row {title} lacks {missing}"


@pytest.mark.parametrize("panel", PANELS, ids=lambda p: p["title"])
def test_panel_unit_description_and_datasource(panel: dict[str, Any]) -> None:
    unit = panel["fieldConfig"]["defaults"].get("unit")
    assert isinstance(unit, str), "no fieldConfig.defaults.unit"
    assert unit.strip(), "an empty fieldConfig.defaults.unit"
    assert "unit" in panel.get("description", "").lower(), "the description states no unit"
    assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE}
    assert panel["targets"], "no query"
    for target in panel["targets"]:
        assert target["datasource"] == {"type": "prometheus", "uid": DATASOURCE}
        assert target["expr"].strip()


@pytest.mark.parametrize("panel", PANELS, ids=lambda p: p["title"])
def test_units_match_the_metric_names(panel: dict[str, Any]) -> None:
    for target in panel["targets"]:
        expected = expected_unit(target["expr"])
        if expected is not None:
            assert target_unit(panel, target["refId"]) == expected, target["expr"]


@pytest.mark.parametrize(("title", "expr"), EXPRESSIONS, ids=[t for t, _ in EXPRESSIONS])
def test_every_selector_filters_on_the_instance(title: str, expr: str) -> None:
    selectors = SELECTOR.findall(expr)
    assert selectors, f"no condor_ metric in {expr!r}"
    for name, braces in selectors:
        assert INSTANCE_MATCHER in braces, f"{name} without {INSTANCE_MATCHER}"


@pytest.mark.parametrize(("title", "expr"), EXPRESSIONS, ids=[t for t, _ in EXPRESSIONS])
def test_every_range_uses_the_rate_interval(title: str, expr: str) -> None:
    for found in RANGE_FUNCTIONS.finditer(expr):
        argument = call_argument(expr, found.end() - 1)
        assert f"[{RATE_INTERVAL}]" in argument, f"{found.group(0)} without {RATE_INTERVAL}"
        for name in METRIC.findall(argument):
            kind = resolve_metric(name)
            assert kind in {"counter", "histogram_bucket", "histogram_sum", "histogram_count"}, (
                f"{found.group(1)} of {name}, a {kind}"
            )
    ranges = RANGE_SELECTOR.findall(expr)
    assert all(r == RATE_INTERVAL for r in ranges), f"ranges {ranges}, not {RATE_INTERVAL}"


def test_readme_metric_table_parses() -> None:
    metrics = readme_metrics()
    assert len(metrics) >= 40
    assert set(metrics.values()) <= {"gauge", "counter", "info", "histogram"}


@pytest.mark.parametrize(("title", "expr"), EXPRESSIONS, ids=[t for t, _ in EXPRESSIONS])
def test_metric_names_are_documented(title: str, expr: str) -> None:
    unknown = sorted(n for n in METRIC.findall(expr) if resolve_metric(n) is None)
    assert unknown == [], f"not in README.md nor the extra metrics: {unknown}"


def test_hedge_band_thresholds_come_from_the_hedge_config() -> None:
    expr = rule("HedgeRatioOutOfBand")["expr"]
    assert "hedge.ratio_pct < hedge.band_low_pct" in expr
    assert "hedge.ratio_pct > hedge.band_high_pct" in expr
    band = HedgeConfig()
    assert (band.band_low_pct, band.band_high_pct) == (15.0, 25.0)
    panels = panels_querying("condor_hedge_ratio_percent")
    assert panels
    for panel in panels:
        assert_threshold(panel, "<", band.band_low_pct)
        assert_threshold(panel, ">", band.band_high_pct)


def test_backwardation_threshold_is_zero() -> None:
    # VixTermStructureInverted: VX1 > VX2, i.e. VX1 - VX2 > 0.
    assert rule("VixTermStructureInverted")["expr"].strip() == "term.vx1 > term.vx2"
    panels = panels_querying("condor_vix_term_spread_points", 'spread="vx1_minus_vx2"')
    assert panels
    for panel in panels:
        assert_threshold(panel, ">", 0.0)


THRESHOLDS = [
    ("VixAboveFrontFuture", "term.vix_minus_vx1", "condor_vix_term_spread_points",
     'spread="vix_minus_vx1"'),
    ("VixRsiHigh", "signals.vix_rsi", "condor_indicator_rsi", None),
    ("HedgeCarryHigh", "hedge.carry_ratio_pct", "condor_hedge_carry_ratio_percent", None),
    ("HedgeMovesWithCondor", "hedge.quality_correlation", "condor_hedge_quality_correlation",
     None),
    ("FeedStale", "feed.data_age_seconds", "condor_feed_data_age_seconds", None),
    ("ScheduledEventSoon", "events.hours_to_next", "condor_event_next_hours", None),
    ("VxRollDue", "term.vx1_days", "condor_vix_future_days_to_settlement", None),
    ("HedgeCoverageLow", "stress.coverage_down5", "condor_stress_hedge_coverage_ratio", None),
]  # fmt: skip


@pytest.mark.parametrize(("name", "variable", "metric", "matcher"), THRESHOLDS,
                         ids=[t[0] for t in THRESHOLDS])  # fmt: skip
def test_thresholds_equal_the_default_pack(
    name: str, variable: str, metric: str, matcher: str | None
) -> None:
    op, value = rule_threshold(name, variable)
    panels = panels_querying(metric, matcher)
    assert panels, f"no panel shows {metric} {matcher or ''}"
    for panel in panels:
        assert_threshold(panel, op, value)


def test_default_pack_numbers() -> None:
    """The numbers the dashboard's thresholds were drawn from, read from the pack."""
    assert rule_threshold("VixAboveFrontFuture", "term.vix_minus_vx1") == (">", 1.0)
    assert rule_threshold("VixRsiHigh", "signals.vix_rsi") == (">=", 75.0)
    assert rule_threshold("HedgeCarryHigh", "hedge.carry_ratio_pct") == (">", 40.0)
    assert rule_threshold("HedgeMovesWithCondor", "hedge.quality_correlation") == (">", 0.3)
    assert rule_threshold("FeedStale", "feed.data_age_seconds") == (">", 60.0)
    assert rule_threshold("HedgeCoverageLow", "stress.coverage_down5") == ("<", 0.2)


def test_data_age_is_the_daemons_own_not_wall_clock_minus_session_time() -> None:
    """A replay stamps session time: wall clock minus it would show months of staleness."""
    assert panels_querying("condor_feed_data_age_seconds")
    for panel in panels_querying("condor_feed_last_update_timestamp_seconds"):
        for expr in panel_exprs(panel):
            assert "time()" not in expr


def test_scenario_grid_is_a_matrix_of_the_book_layer() -> None:
    panels = panels_querying("condor_scenario_pnl_dollars", 'layer="book"')
    grids = [p for p in panels if p["type"] in {"table", "heatmap"}]
    assert len(grids) == 1
    grid = grids[0]
    assert "heatmap" in grid["description"].lower()
    assert grid["targets"][0].get("instant") is True
    if grid["type"] == "table":
        assert grid["targets"][0].get("format") == "table"
        pivot = [t for t in grid["transformations"] if t["id"] == "groupingToMatrix"]
        assert len(pivot) == 1
        options = pivot[0]["options"]
        assert {options["rowField"], options["columnField"]} == {
            "spx_move_pct",
            "vol_shock_points",
        }
    worst = [p for p in panels if p is not grid]
    assert any(re.search(r"\b(bottomk|min)\b", e) for p in worst for e in panel_exprs(p))


def test_alert_states_are_a_state_timeline() -> None:
    panels = panels_querying("condor_alert_states")
    assert panels
    assert all(p["type"] == "state-timeline" for p in panels)
    exprs = " ".join(e for p in panels for e in panel_exprs(p))
    for state in ("pending", "firing", "keep_firing"):
        assert f'state="{state}"' in exprs


def test_latency_quantiles_come_from_the_histogram() -> None:
    exprs = [
        e for p in panels_querying("condor_pipeline_latency_seconds_bucket") for e in panel_exprs(p)
    ]
    quantiles = set()
    for expr in exprs:
        quantile = re.search(r"histogram_quantile\(\s*([0-9.]+)", expr)
        assert quantile is not None, expr
        quantiles.add(quantile.group(1))
        grouping = re.search(r"sum by \(([^)]*)\)", expr)
        assert grouping is not None
        assert {"le", "stage"} <= {g.strip() for g in grouping.group(1).split(",")}
    assert quantiles == {"0.5", "0.99"}


def test_datasource_provisioning() -> None:
    document = yaml.safe_load(DATASOURCES_PATH.read_text(encoding="utf-8"))
    assert document["apiVersion"] == 1
    (source,) = document["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://127.0.0.1:9090"
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert source["uid"] == variables["datasource"]["current"]["value"] == "condor-prometheus"
    duration_seconds(source["jsonData"]["timeInterval"])


def test_datasource_interval_is_the_scrape_interval() -> None:
    """$__rate_interval is at least four times the datasource's timeInterval: with the real
    scrape interval every rate() window holds enough samples."""
    config_path = REPO / "deploy" / "prometheus" / "prometheus.yml"
    if not config_path.exists():
        pytest.skip("no deploy/prometheus/prometheus.yml")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    interval = config.get("global", {}).get("scrape_interval", "1m")
    for job in config.get("scrape_configs", []):
        if job.get("job_name") == "condor-monitor":
            interval = job.get("scrape_interval", interval)
    source = yaml.safe_load(DATASOURCES_PATH.read_text(encoding="utf-8"))["datasources"][0]
    assert duration_seconds(source["jsonData"]["timeInterval"]) == duration_seconds(interval)


def test_dashboard_provisioning_points_at_the_dashboard_directory() -> None:
    text = PROVIDERS_PATH.read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    assert document["apiVersion"] == 1
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    path = Path(provider["options"]["path"])
    assert path.is_absolute()
    assert path.name == DASHBOARD_PATH.stem == "condor-monitor"
    # The documented copy command puts the repository's dashboard in that directory.
    commands = " ".join(line.lstrip("#").strip().removesuffix("\\") for line in text.splitlines())
    source = DASHBOARD_PATH.relative_to(REPO).as_posix()
    copy = re.search(rf"\b(?:install|cp)\b[^;]*?\s{re.escape(source)}\s+(\S+)", commands)
    assert copy is not None, f"no copy command for {source} in {PROVIDERS_PATH.name}"
    assert copy.group(1).rstrip("/") in {str(path), f"{path}/{DASHBOARD_PATH.name}"}


def test_dashboard_expressions_include_collapsed_rows(tmp_path: Path) -> None:
    document = {
        "panels": [
            {"type": "row", "title": "open", "panels": []},
            {"type": "stat", "title": "a", "targets": [{"refId": "A", "expr": "up"}]},
            {
                "type": "row",
                "title": "closed",
                "collapsed": True,
                "panels": [
                    {
                        "type": "timeseries",
                        "title": "b",
                        "targets": [{"refId": "A", "expr": "x"}, {"refId": "B", "expr": "y"}],
                    },
                    {"type": "text", "title": "c"},
                ],
            },
        ]
    }
    path = tmp_path / "d.json"
    path.write_text(json.dumps(document))
    assert dashboard_expressions(path) == [("a", "up"), ("b", "x"), ("b", "y")]
    rows = dashboard_rows(document)
    assert [p["title"] for p in rows["open"]] == ["a"]
    assert [p["title"] for p in rows["closed"]] == ["b", "c"]


def test_render_expression_substitutes_grafana_variables() -> None:
    expr = (
        'sum(rate(condor_events_total{instance=~"$instance"}[$__rate_interval])) '
        "/ ${__interval_ms} + ${__range_s} * count_over_time(up[$__range]) + up[$__interval]"
    )
    rendered = render_expression(expr, instance_regex="127\\.0\\.0\\.1:9464", rate_interval="2m")
    assert rendered == (
        'sum(rate(condor_events_total{instance=~"127\\\\.0\\\\.0\\\\.1:9464"}[2m])) '
        "/ 120000 + 3600 * count_over_time(up[1h]) + up[2m]"
    )
    assert render_expression("up[$__interval]", interval="30s") == "up[30s]"
    with pytest.raises(ValueError, match="datasource"):
        render_expression('up{uid="$datasource"}')
    with pytest.raises(ValueError, match="duration"):
        render_expression("up", rate_interval="soon")


@pytest.mark.parametrize(("title", "expr"), EXPRESSIONS, ids=[t for t, _ in EXPRESSIONS])
def test_rendered_expressions_hold_no_variable(title: str, expr: str) -> None:
    rendered = render_expression(expr)
    assert "$" not in rendered
    assert 'instance=~".*"' in rendered


def test_rendered_expressions_parse_with_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool") or (
        "/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None
    )
    if promtool is None:
        pytest.skip("promtool is not installed (scripts/ensure-system-packages.sh installs it)")
    rules = [
        {"record": f"dashboard:expr_{i}", "expr": render_expression(expr)}
        for i, (_, expr) in enumerate(EXPRESSIONS)
    ]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
