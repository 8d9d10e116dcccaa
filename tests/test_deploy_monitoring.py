"""deploy/'s Grafana dashboard and Prometheus alert rules against the product itself.

Their queries are checked against the series a real /metrics endpoint serves over a
seeded database: every metric name exists and every label matcher selects a served
sample; the rules cover the conditions the alert channels announce. Where Prometheus is
installed, promtool parses every query and runs the rules' unit tests, and a real
Prometheus scrapes the endpoint and answers every dashboard query.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import socket
import subprocess
import threading
import time
from collections import defaultdict

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from rostersync.console.cli import build_parser, main
from rostersync.storage import events as event_store
from rostersync.storage.db import Store
from rostersync.sync.alerts import Alerter, conditions
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import Config
from rostersync.sync.metrics import MetricsService
from rostersync.sync.status import build_status
from tests.console_harness import VIEWED_AT, fresh_db
from tests.promql_selectors import Selector, matches, selectors
from tests.test_deploy import DEPLOY, UNIT, one, unit_directives

DASHBOARD = DEPLOY / "grafana-dashboard.json"
RULES = DEPLOY / "prometheus-rules.yml"
# Labels Prometheus adds to every scraped series (the target's), not rostersync's.
TARGET_LABELS = frozenset({"instance", "job"})

@pytest.fixture(scope="module")
def metrics_world(seeded, tmp_path_factory) -> tuple[Store, Config, FrozenClock]:
    """The seeded world (held leavers, drift, a finished run) with an operator's audited
    pause, the alert states checked once and an HR event received, [metrics] on."""
    folder = tmp_path_factory.mktemp("metrics-world")
    db = fresh_db(seeded, folder)
    config = seeded.config_for(db)
    config_path = folder / "rostersync.toml"
    assert main(["pause", "--reason", "maintenance", "--config", str(config_path)]) == 0
    store = Store(db)
    clock = FrozenClock(VIEWED_AT)
    Alerter(store, config, clock).check()
    # One HR event taken in, as the webhook listener records it, for the intake figures.
    event_store.record_delivery(store, clock.now(), "bamboohr", "signature-1",
                                [("E00001", "update", "queued", None)])
    config.metrics.enabled, config.metrics.listen = True, "127.0.0.1:0"
    return store, config, clock


class Endpoint:
    """The real /metrics endpoint, served on a loop of its own while the block runs."""

    def __init__(self, store: Store, config: Config, clock: FrozenClock) -> None:
        self.service = MetricsService(store, config, clock)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self.service.start(), self.loop).result(30)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.service.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


@pytest.fixture(scope="module")
def served(metrics_world) -> tuple[dict[str, list[dict[str, str]]], dict]:
    """Every sample the endpoint serves over that world, and the status document of the
    same moment."""
    store, config, clock = metrics_world
    with Endpoint(store, config, clock) as url:
        text = httpx.get(url, timeout=30).text
    samples: dict[str, list[dict[str, str]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append(sample.labels)
    return dict(samples), build_status(store, config, clock.now())


def unserved(found: list[Selector], samples: dict[str, list[dict[str, str]]]) -> list[str]:
    """The selectors that select nothing /metrics serves, each with why."""
    problems = []
    for s in found:
        if s.metric not in samples:
            problems.append(f"{s.metric}: not a metric /metrics serves")
        elif not any(matches(labels, s.matchers, TARGET_LABELS) for labels in samples[s.metric]):
            problems.append(f"{s.metric}{{{s.matchers}}}: no served sample matches")
    return problems


def dashboard_queries() -> dict[str, str]:
    doc = json.loads(DASHBOARD.read_text())
    queries = {f"panel {p['title']!r} {t['refId']}": t["expr"]
               for p in doc["panels"] for t in p.get("targets", [])}
    for variable in doc["templating"]["list"]:
        if variable["type"] == "query":
            queries[f"variable {variable['name']}"] = variable["query"]["query"]
    return queries


def rule_list() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"]
            for rule in group["rules"]]


def test_every_dashboard_query_selects_series_that_metrics_serves(served):
    samples, _status = served
    queries = dashboard_queries()
    found = {where: selectors(expr) for where, expr in queries.items()}
    assert all(found.values()), [w for w, s in found.items() if not s]
    problems = {where: unserved(s, samples) for where, s in found.items()}
    assert {w: p for w, p in problems.items() if p} == {}
    # The states an operator looks for are all on it.
    queried = {s.metric for sel in found.values() for s in sel}
    assert queried >= {"rostersync_source_staleness_seconds", "rostersync_drift",
                       "rostersync_ops", "rostersync_terminations_oldest_pending_age_seconds",
                       "rostersync_termination_sla_seconds", "rostersync_quarantined",
                       "rostersync_audit_entries", "rostersync_last_feed_accepted"}
    apply_rate = [e for e in queries.values() if 'status="succeeded"' in e]
    assert apply_rate and all("deriv(" in e for e in apply_rate)


def test_a_query_over_a_metric_or_label_value_that_is_not_served_is_caught(served):
    samples, _status = served
    assert unserved(selectors('sum(rostersync_op{status="held"})'), samples)
    assert unserved(selectors('sum(rostersync_ops{status="hold"})'), samples)
    assert unserved(selectors('rostersync_drift{kind=~"typo|other"}'), samples)
    assert not unserved(selectors('rostersync_ops{status="held",instance=~"$i"}'), samples)


def test_every_alert_rule_selects_series_that_metrics_serves(served):
    samples, _status = served
    problems = {r["alert"]: unserved(selectors(r["expr"]), samples) for r in rule_list()
                if "absent(" not in r["expr"]}
    assert {a: p for a, p in problems.items() if p} == {}
    [absent] = [r for r in rule_list() if "absent(" in r["expr"]]
    assert unserved(selectors(absent["expr"]), samples) == []


def test_the_rules_cover_the_conditions_the_alert_channels_announce(served):
    samples, status = served
    announced = set(conditions(status, "warning"))  # stale:hris, stale:lms, quarantine...
    assert {labels["alert"] for labels in samples["rostersync_alert_active"]} == announced
    covered = set()
    for rule in rule_list():
        key = rule.get("labels", {}).get("rostersync_alert")
        if key is None:
            continue
        sources = {m[2] for s in selectors(rule["expr"]) for m in s.matchers
                   if m[0] == "source"} or set(status["staleness"])
        covered |= {key.replace("{{ $labels.source }}", source) for source in sources} \
            if "$labels.source" in key else {key}
    assert covered == announced
    names = {r["alert"] for r in rule_list()}
    assert {"RostersyncOperationsDead", "RostersyncFeedRejected"} <= names


def test_the_commands_the_rules_print_parse_as_rostersync_commands():
    argv0 = shlex.split(one(unit_directives(UNIT.read_text())["Service"], "ExecStart"))[0]
    commands = [re.search(re.escape(argv0) + r" ([^:;]+)$", rule["annotations"]["description"])
                for rule in rule_list() if argv0 in rule["annotations"]["description"]]
    assert len(commands) >= 5 and all(commands)
    for found in commands:
        args = build_parser().parse_args(shlex.split(found.group(1)))
        assert str(args.config) == "/etc/rostersync/rostersync.toml"


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not installed (apt-get install prometheus)")
def test_promtool_checks_the_rules_and_runs_their_unit_tests():
    check = subprocess.run(["promtool", "check", "rules", RULES.name], cwd=DEPLOY,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(["promtool", "test", "rules", "prometheus-rules.test.yml"],
                          cwd=DEPLOY, capture_output=True, text=True, timeout=120)
    assert test.returncode == 0, test.stdout + test.stderr


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not installed (apt-get install prometheus)")
def test_promtool_parses_every_dashboard_query(tmp_path):
    # Each panel query as a recording rule: `promtool check rules` parses its PromQL.
    queries = {w: e for w, e in dashboard_queries().items() if not w.startswith("variable")}
    rules = [{"record": f"dashboard:query_{i}", "expr": expr}
             for i, expr in enumerate(queries.values())]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    check = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(rules)} rules found" in check.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, process: subprocess.Popen, seconds: float = 90):
    """Poll ``check`` until it returns something truthy (Prometheus scrapes and evaluates
    on its own clock; there is no event to wait on)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "prometheus exited"
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"prometheus: {what} within {seconds:g} s")


@pytest.mark.skipif(shutil.which("prometheus") is None,
                    reason="prometheus is not installed (apt-get install prometheus)")
def test_a_real_prometheus_answers_every_dashboard_query_and_loads_the_rules(
        metrics_world, tmp_path):
    store, config, clock = metrics_world
    port = free_port()
    with Endpoint(store, config, clock) as url:
        target = url.removeprefix("http://").removesuffix("/metrics")
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "rostersync",
                                "static_configs": [{"targets": [target]}]}]}))
        process = subprocess.Popen(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        api = f"http://127.0.0.1:{port}/api/v1"
        try:
            def query(expr: str) -> list:
                answer = httpx.get(f"{api}/query", params={"query": expr}, timeout=10).json()
                assert answer["status"] == "success", (expr, answer)
                return answer["data"]["result"]

            # Until its storage is open, Prometheus answers 503 "Service Unavailable" in
            # plain text: wait for /-/ready before asking anything.
            wait_for("ready", lambda: httpx.get(f"http://127.0.0.1:{port}/-/ready",
                                                timeout=10).status_code == 200, process)
            queries = dashboard_queries()
            # The apply rate's slope needs two scrapes: once it answers, every query can.
            rate = next(e for e in queries.values() if "deriv(" in e)
            wait_for("two scrapes", lambda: query(rate.replace("$instance", ".*")), process)
            empty = [where for where, expr in queries.items() if not where.startswith("variable")
                     and not query(expr.replace("$instance", ".*"))]
            assert empty == []
            instances = httpx.get(f"{api}/label/instance/values",
                                  params={"match[]": "rostersync_status"}, timeout=10).json()
            assert instances["data"] == [target]

            def evaluated() -> list:
                groups = httpx.get(f"{api}/rules", timeout=10).json()["data"]["groups"]
                rules = [r for g in groups for r in g["rules"]]
                done = rules and all(r["lastEvaluation"] > "2000" for r in rules)
                return rules if done else []

            rules = wait_for("every rule evaluated", evaluated, process)
            assert {r["name"] for r in rules} == {r["alert"] for r in rule_list()}
            assert [r["name"] for r in rules if r["health"] != "ok"] == []
            # The seeded world holds 30 leavers for approval and has paused (not
            # quarantined) its job: exactly the rules for what it shows fire.
            firing = {r["name"] for r in rules if r["state"] == "firing"}
            assert "RostersyncOperationsHeld" in firing
            assert "RostersyncJobQuarantined" not in firing
            assert "RostersyncMetricsAbsent" not in firing
        finally:
            process.terminate()
            process.wait(30)
