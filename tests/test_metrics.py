"""The Prometheus endpoint reports the numbers `rostersync status --json` prints."""

from __future__ import annotations

import asyncio
import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from rostersync.console.cli import main
from rostersync.storage.store_factory import make_store
from rostersync.sync.clock import Clock
from rostersync.sync.config import load_config
from rostersync.sync.metrics import MetricsService


def scrape(config) -> dict[str, dict[tuple, float]]:
    async def fetch() -> str:
        service = MetricsService(make_store(config.database), config, Clock())
        await service.start()
        try:
            async with httpx.AsyncClient() as client:
                answer = await client.get(service.listener.url + "/metrics")
                assert answer.status_code == 200
                assert answer.headers["content-type"].startswith("text/plain")
                return answer.text
        finally:
            await service.stop()

    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(asyncio.run(fetch())):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_metrics_match_the_status_document(workspace, capsys):
    text = workspace.csv_path.read_text().splitlines()
    text[5] = text[5].replace("@acme.example", "@@acme.example", 1)  # one invalid record
    workspace.csv_path.write_text("\n".join(text) + "\n")
    assert main(workspace.args("sync")) in (0, 1)
    assert main(workspace.args("pause", "--reason", "maintenance")) == 0
    capsys.readouterr()
    main(workspace.args("status", "--json"))
    status = json.loads(capsys.readouterr().out)
    with workspace.config_path.open("a") as f:
        f.write('\n[metrics]\nenabled = true\nlisten = "127.0.0.1:0"\n')
    metrics = scrape(load_config(workspace.config_path))

    assert metrics["rostersync_status"][()] == status["exit_code"] == 2
    assert {k[0][1]: v for k, v in metrics["rostersync_drift"].items()} == status["drift"]
    assert status["drift"]["invalid"] == 1
    assert metrics["rostersync_drift_total"][()] == status["drift_total"]
    assert {k[0][1]: v for k, v in metrics["rostersync_ops"].items()} == status["ops"]
    assert status["ops"]["succeeded"] > 400
    for key in ("pending", "overdue", "scheduled"):
        assert metrics[f"rostersync_terminations_{key}"][()] == status["terminations"][key]
    assert metrics["rostersync_job_state"][(("state", "paused"),)] == 1
    assert metrics["rostersync_quarantined"][()] == 0
    for source in ("hris", "lms"):
        age = metrics["rostersync_source_staleness_seconds"][(("source", source),)]
        assert abs(age - status["staleness"][source]["age_seconds"]) <= 5  # scraped later
        state = status["staleness"][source]["state"]
        assert metrics["rostersync_source_stale_state"][(("source", source),
                                                          ("state", state))] == 1
    assert metrics["rostersync_last_run_duration_seconds"][(("kind", "full"),)] > 0
    assert metrics["rostersync_last_feed_accepted"][()] == 1


def test_metrics_textfile_is_written_atomically(workspace, tmp_path):
    assert main(workspace.args("sync")) in (0, 1)
    target = tmp_path / "rostersync.prom"
    with workspace.config_path.open("a") as f:
        f.write(f'\n[metrics]\nenabled = true\nlisten = ""\ntextfile = "{target}"\n')
    config = load_config(workspace.config_path)
    service = MetricsService(make_store(config.database), config, Clock())
    assert service.listener is None
    service.write_textfile()
    text = target.read_text()
    assert "rostersync_ops{status=\"succeeded\"}" in text
    assert not list(tmp_path.glob("*.prom.*"))  # no temp file left behind


def test_the_scheduler_serves_webhooks_and_metrics_on_one_listener(workspace, monkeypatch):
    from rostersync.sync.config import ConfigError
    from rostersync.sync.engine import Engine
    from rostersync.sync.scheduler import SyncScheduler

    with workspace.config_path.open("a") as f:
        f.write('\n[realtime]\nenabled = true\nlisten = "127.0.0.1:0"\n'
                'generic_secret_env = "ROSTERSYNC_TEST_EVENT_KEY"\n'
                '\n[metrics]\nenabled = true\nlisten = "127.0.0.1:0"\n')
    config = load_config(workspace.config_path)
    monkeypatch.delenv("ROSTERSYNC_TEST_EVENT_KEY", raising=False)
    try:
        SyncScheduler(Engine(config), config)
        raise AssertionError("a missing secret must be a config error")
    except ConfigError as exc:
        assert "ROSTERSYNC_TEST_EVENT_KEY is not set" in str(exc)
    monkeypatch.setenv("ROSTERSYNC_TEST_EVENT_KEY", "k")

    async def scenario():
        sched = SyncScheduler(Engine(config), config)
        sched.start()
        await sched.ready()
        try:
            base = sched.realtime.listener.url
            async with httpx.AsyncClient() as client:
                health = await client.get(base + "/healthz")
                unsigned = await client.post(base + "/webhooks/event", content=b"{}")
                metrics = await client.get(base + "/metrics")
            return health.status_code, metrics.text, unsigned.status_code
        finally:
            await sched.stop()

    health, text, unsigned = asyncio.run(scenario())
    assert health == 200 and unsigned == 401
    assert "rostersync_webhooks_refused 1.0" in text


def test_overlapping_runs_are_reported_as_json_lines_not_apscheduler_warnings(
        tmp_path, monkeypatch, caplog):
    """A full run still reading the LMS when its next time comes: APScheduler skips the
    second instance. The skip (and a job's exception) reach our log; APScheduler's
    warning does not reach stderr."""
    import threading
    from datetime import UTC, datetime
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from rostersync.sync.engine import Engine
    from rostersync.sync.scheduler import SyncScheduler
    from tests.support import TOKEN_ENV, World, write_config

    arrived, release = threading.Event(), threading.Event()

    class SlowLms(BaseHTTPRequestHandler):  # holds the run until the test lets it go
        def do_GET(self):
            arrived.set()
            release.wait(10)
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowLms)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    csv_path = World.generate(20).write(tmp_path / "employees.csv")
    config = load_config(write_config(tmp_path, f"http://127.0.0.1:{server.server_address[1]}",
                                      csv_path))
    monkeypatch.setenv(TOKEN_ENV, "token")
    records: list[dict] = []

    async def scenario():
        seen = asyncio.Event()

        def log(record: dict) -> None:
            records.append(record)
            if record["event"] in ("skipped", "job_error"):
                seen.set()

        async def broken() -> None:
            raise RuntimeError("a bug in a job")

        sched = SyncScheduler(Engine(config), config, log=log)
        sched.start()
        try:
            sched.scheduler.modify_job("full", next_run_time=datetime.now(UTC))
            assert await asyncio.to_thread(arrived.wait, 10), "the full run never read the LMS"
            sched.scheduler.modify_job("full", next_run_time=datetime.now(UTC))
            await asyncio.wait_for(seen.wait(), 10)
            seen.clear()
            sched.scheduler.add_job(broken, "date", run_date=datetime.now(UTC), id="broken")
            await asyncio.wait_for(seen.wait(), 10)
        finally:
            release.set()
            await sched.stop()

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    reported = [r for r in records if r["event"] in ("skipped", "job_error")]
    assert reported[0] == {"event": "skipped", "job": "full", "routine": True,
                           "why": "its previous run is still going"}
    assert {"event": "job_error", "job": "broken",
            "error": "RuntimeError: a bug in a job"} in reported
    from_apscheduler = [(r.levelname, r.getMessage()) for r in caplog.records
                        if r.name.startswith("apscheduler")]
    assert not [m for level, m in from_apscheduler if level == "WARNING"], from_apscheduler
    # Errors still get through (below ERROR is quiet, not everything).
    assert any(level == "ERROR" and "broken" in m for level, m in from_apscheduler)
