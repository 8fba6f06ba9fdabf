"""deploy/: the Prometheus rules and config pass promtool, the rules' unit tests pass, the Grafana dashboard is
well formed, and every metric and label that the rules, their tests and the dashboard name is one that
ops-pipeline's /metrics exposes. Fails (never skips) without promtool (Debian package `prometheus`)."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "ops-pipeline.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
CORE_PANELS = {"row", "timeseries", "stat", "gauge", "bargauge", "table", "heatmap", "text"}

# Labels Prometheus adds to every scraped series, and its own series about each scrape.
TARGET_LABELS = {"instance", "job"}
PROMETHEUS_SERIES = {"up": TARGET_LABELS}

# The exposition of every metrics.py object, in a fresh process with its own multiprocess directory (the
# test process's catalogue may already point at another directory): one child per labelled metric, a value
# for each gauge (a `mostrecent` gauge never set is not exposed); prints {sample name: label names}.
EXPOSE = """
import json
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector
from ops_pipeline.observability import metrics

for metric in vars(metrics).values():
    if isinstance(metric, MetricWrapperBase):
        child = metric.labels(*metric._labelnames) if metric._labelnames else metric
        if isinstance(metric, Gauge):
            child.set(1)
registry = CollectorRegistry(auto_describe=False)
MultiProcessCollector(registry, path=str(metrics.DIRECTORY))
names = {}
for family in registry.collect():
    for sample in family.samples:
        names.setdefault(sample.name, set()).update(sample.labels)
print(json.dumps({name: sorted(labels) for name, labels in names.items()}))
"""


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: apt-get install --no-install-recommends prometheus (.ci/run does)")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, check=False)


def state_families() -> dict[str, set[str]]:
    """`GaugeMetricFamily("name", ..., labels=[...])` calls in state.py: the gauges read at scrape time."""
    tree = ast.parse((ROOT / "ops_pipeline" / "observability" / "state.py").read_text())
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "GaugeMetricFamily":
            labels = next((k.value for k in node.keywords if k.arg == "labels"), ast.List(elts=[]))
            found[node.args[0].value] = {e.value for e in labels.elts}
    return found


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> dict[str, set[str]]:
    """Every series name ops-pipeline exposes, with its label names (`le` on buckets)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("metrics"))}
    done = subprocess.run([sys.executable, "-c", EXPOSE], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    exposed = {name: set(labels) for name, labels in json.loads(done.stdout).items()}
    return {**exposed, **state_families(), **PROMETHEUS_SERIES}


# -- PromQL references ---------------------------------------------------------------------------------------
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
STRING = r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`"
MATCHER = re.compile(rf"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*(?:{STRING})\s*,?")
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
                "quantile", "limitk", "limit_ratio"}  # may be followed by `by (...)` before their `(`
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", *GROUPING, *AGGREGATIONS}


def _labels_in(text: str, start: int, close: str, item: re.Pattern) -> tuple[list[str], int]:
    """Label names listed from `start` (just past an opening bracket) to `close`; and the index past it."""
    names, i = [], start
    while True:
        while text[i].isspace():
            i += 1
        if text[i] == close:
            return names, i + 1
        m = item.match(text, i)
        assert m, f"cannot read labels at {text[i:]!r}"
        names.append(m.group(1))
        i = m.end()


def references(expr: str) -> tuple[dict[str, set[str]], set[str]]:
    """The metrics an expression selects with their matchers' label names, and the labels it groups or matches
    on (by, without, on, ignoring, group_left/right). Grafana variables (`$__rate_interval`) are skipped."""
    metrics: dict[str, set[str]] = {}
    grouping: set[str] = set()
    i = 0
    while i < len(expr):
        c = expr[i]
        if c == "$":
            i = re.compile(r"\$\{?\w+\}?").match(expr, i).end()
        elif c == "[":
            i = expr.index("]", i) + 1  # a range or subquery: durations
        elif c in "\"'`":
            i = re.compile(STRING).match(expr, i).end()
        elif c.isdigit() or c == ".":
            i = re.compile(r"[0-9.][\w.]*").match(expr, i).end()  # a number or a duration
        elif c == "{":
            raise AssertionError(f"a selector without a metric name in {expr!r}")
        elif m := IDENT.match(expr, i):
            name, i = m.group(), m.end()
            rest = expr[i:].lstrip()
            if name in GROUPING and rest.startswith("("):
                labels, i = _labels_in(expr, expr.index("(", i) + 1, ")", re.compile(r"([A-Za-z_]\w*)\s*,?"))
                grouping.update(labels)
            elif rest.startswith("(") or name.lower() in KEYWORDS:
                continue  # a function or an operator
            else:
                matched = set()
                if rest.startswith("{"):
                    matched, i = _labels_in(expr, expr.index("{", i) + 1, "}", MATCHER)
                metrics.setdefault(name, set()).update(matched)
        else:
            i += 1
    return metrics, grouping


def check_names(where: str, expr: str, catalogue: dict[str, set[str]], legend: str = "") -> list[str]:
    """What is wrong with one expression's metric and label names."""
    metrics, grouping = references(expr)
    assert metrics, f"{where}: no metric in {expr!r}"
    problems = [f"{where}: unknown metric {name}" for name in metrics if name not in catalogue]
    if problems:
        return problems  # an unknown metric's labels are unknown too
    known = TARGET_LABELS.union(*(catalogue[name] for name in metrics))
    for name, matched in metrics.items():
        problems += [f"{where}: {name} has no label {label}"
                     for label in sorted(matched - catalogue[name] - TARGET_LABELS)]
    problems += [f"{where}: no metric of {sorted(metrics)} has label {label} (grouping)"
                 for label in sorted(grouping - known)]
    problems += [f"{where}: legend names label {label}, not in {sorted(grouping or known)}"
                 for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", legend) if label not in (grouping or known)]
    return problems


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def dashboard_panels() -> list[dict]:
    return json.loads(DASHBOARD.read_text())["panels"]


def dashboard_targets() -> list[tuple[str, dict]]:
    return [(f"panel {p['id']} {p['title']!r} {t['refId']}", t)
            for p in dashboard_panels() if p["type"] != "row" for t in p["targets"]]


# -- promtool ------------------------------------------------------------------------------------------------
def test_alert_rules_pass_promtool_check():
    done = promtool("check", "rules", "--lint-fatal", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def test_alert_rules_unit_tests_pass():
    done = promtool("test", "rules", str(PROMETHEUS / "alerts_test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_prometheus_config_passes_promtool_check_and_loads_the_rules():
    done = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert (job["job_name"], job["metrics_path"]) == ("ops-pipeline", "/metrics")
    assert job["static_configs"] == [{"targets": ["127.0.0.1:8000"]}]


def test_every_alert_has_a_for_a_severity_and_a_runbook_and_is_unit_tested():
    rules = alert_rules()
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    fired = {case["alertname"] for t in tests for case in t["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for t in tests for case in t["alert_rule_test"] if not case["exp_alerts"]}
    for rule in rules:
        assert rule["for"], rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description", "runbook"} <= rule["annotations"].keys(), rule["alert"]
    assert {r["alert"] for r in rules} == fired
    assert quiet, "no case where an alert stays quiet"


def test_dashboard_queries_are_valid_promql(tmp_path):
    """Every dashboard query, with Grafana's interval variables replaced, as a recording rule for promtool."""
    rules = [{"record": f"dashboard:query:{n}", "expr": t["expr"].replace("$__rate_interval", "5m")}
             for n, (_, t) in enumerate(dashboard_targets())]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


# -- the dashboard's shape -----------------------------------------------------------------------------------
def test_dashboard_structure():
    board = json.loads(DASHBOARD.read_text())
    assert (board["uid"], board["schemaVersion"]) == ("ops-pipeline", 39)
    (variable,) = board["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == ("DS_PROMETHEUS", "datasource", "prometheus")
    panels = board["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    cells = set()
    for p in panels:
        assert p["type"] in CORE_PANELS, f"panel {p['id']}: {p['type']} is not a core panel"
        pos = p["gridPos"]
        assert all(isinstance(pos[k], int) for k in ("h", "w", "x", "y")), p["id"]
        assert pos["x"] + pos["w"] <= 24, f"panel {p['id']} is wider than the grid"
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not mine & cells, f"panel {p['id']} overlaps another"
        cells |= mine
        if p["type"] == "row":
            continue
        assert p["datasource"] == DATASOURCE, p["id"]
        assert p["title"] and p["targets"], p["id"]
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"]), p["id"]
        for t in p["targets"]:
            assert t["datasource"] == DATASOURCE and t["expr"].strip(), (p["id"], t["refId"])
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert rows == ["HTTP API", "Database and runtime", "Job queue", "Fund-out", "Tickets", "Ledger",
                    "Notifications", "Partners"]


# -- names against the catalogue -----------------------------------------------------------------------------
def test_the_catalogue_holds_events_and_state(catalogue):
    assert catalogue["ops_http_requests_total"] == {"route", "method", "status"}
    assert catalogue["ops_http_request_duration_seconds_bucket"] == {"route", "method", "le"}
    assert catalogue["ops_http_request_duration_seconds_count"] == {"route", "method"}
    assert catalogue["ops_fundout_missed_slots_total"] == set()
    assert catalogue["ops_ledger_replay_check_ok"] == set()
    assert catalogue["ops_fundout_batches"] == {"status"}
    assert catalogue["ops_jobqueue_oldest_waiting_seconds"] == {"type"}
    assert "ops_http_requests" not in catalogue  # counters are exposed with _total only


def test_alert_rules_and_their_tests_name_only_exposed_metrics_and_labels(catalogue):
    problems = [p for rule in alert_rules() for p in check_names(rule["alert"], rule["expr"], catalogue)]
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    problems += [p for t in tests for s in t["input_series"]
                 for p in check_names(f"test {t['name']!r}", s["series"], catalogue)]
    assert not problems, "\n".join(problems)


def test_dashboard_names_only_exposed_metrics_and_labels(catalogue):
    problems = [p for where, t in dashboard_targets()
                for p in check_names(where, t["expr"], catalogue, t.get("legendFormat", ""))]
    assert not problems, "\n".join(problems)


def test_the_name_check_catches_unknown_metrics_and_labels(catalogue):
    assert check_names("x", 'sum by (route) (rate(ops_http_requests{status="500"}[5m]))', catalogue) == [
        "x: unknown metric ops_http_requests"]
    assert check_names("x", 'ops_fundout_payouts_total{state="failed"}', catalogue) == [
        "x: ops_fundout_payouts_total has no label state"]
    assert check_names("x", "sum by (route) (ops_outbox_backlog)", catalogue) == [
        "x: no metric of ['ops_outbox_backlog'] has label route (grouping)"]
    assert check_names("x", "sum by (channel) (ops_outbox_dead)", catalogue, "{{chanel}}") == [
        "x: legend names label chanel, not in ['channel']"]
    assert references('histogram_quantile(0.99, sum by (le) (rate(ops_event_loop_lag_seconds_bucket[$__rate_interval])))'
                      ' > 0.025 and on (instance) up{job="ops-pipeline"} offset 5m') == (
        {"ops_event_loop_lag_seconds_bucket": set(), "up": {"job"}}, {"le", "instance"})
