"""Security: a planted secret is found nowhere; TLS verification is on unless an endpoint
says otherwise; filter values are escaped; files are owner-only; the audit log is
append-only and tamper-evident, and `rostersync audit verify` proves it."""

from __future__ import annotations

import asyncio
import html
import os
import re
import sqlite3
import stat
from pathlib import Path

import pytest

from rostersync.console.app import ConsoleApp
from rostersync.console.cli import main
from rostersync.sandbox.faults import FaultPlan
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.sandbox.successfactors import SuccessFactorsSandbox
from rostersync.sandbox.successfactors_data import organisation
from rostersync.storage.db import Store
from rostersync.sync.config import load_config
from rostersync.sync.connectors.canvas_config import CanvasTargetConfig
from rostersync.sync.connectors.moodle_config import MoodleTargetConfig
from rostersync.sync.connectors.scim import ScimTarget
from rostersync.sync.connectors.successfactors import SuccessFactorsSource
from rostersync.sync.connectors.successfactors_config import SuccessFactorsSourceConfig
from rostersync.sync.connectors.workday_config import WorkdaySourceConfig
from rostersync.sync.engine import Engine
from rostersync.sync.models import Account
from tests.console_harness import SIZE, settle
from tests.console_harness import TOKEN as HARNESS_TOKEN
from tests.reliability import figures
from tests.scim_fixtures import SCIM_TOKEN
from tests.support import TOKEN_ENV, World, set_token_env, write_config

pytestmark = pytest.mark.reliability

PLANTED = "PLANTED-secret-7d41c9e0b2"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
# Every fixed secret the tests and the screenshot harness use: none may be on a screen.
KNOWN_SECRETS = (PLANTED, SCIM_TOKEN, HARNESS_TOKEN)
# What a credential on screen would look like: a bearer or basic header with its value,
# or a run of 24+ token characters mixing cases and digits (secrets.token_urlsafe), or
# 32+ hex digits (secrets.token_hex). Environment variable NAMES are upper case only.
CREDENTIAL_SHAPES = (
    re.compile(r"(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{12,}"),
    re.compile(r"(?i)authorization\s*:"),
    re.compile(r"(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_-]*[a-z])(?=[A-Za-z0-9_-]*[A-Z])"
               r"(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{24,}(?![A-Za-z0-9_-])"),
    re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32,}(?![0-9a-fA-F])"),
)


def _everything_written(folder: Path) -> bytes:
    """Every byte rostersync left in its folder: database, WAL, config, exports."""
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def _screen_text(svg: str) -> str:
    """The characters a Textual SVG screenshot shows, in order (spaces as spaces)."""
    return html.unescape("".join(re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S))
                         ).replace("\xa0", " ")


async def _render_console(config_path: Path, out: Path) -> list[Path]:
    """The console over the database the planted-secret runs left, each view saved as
    an SVG: home (with the quarantine banner), drift, ops, runs, audit, held, the run
    whose operations failed and a person whose operation failed."""
    out.mkdir(parents=True, exist_ok=True)
    config = load_config(config_path)
    store = Store(config.database.path)
    person = store.scalar("SELECT employee_id FROM ops WHERE status IN ('failed', 'dead') "
                          "ORDER BY id LIMIT 1")
    # The run whose operations failed: its error groups quote what the LMS answered.
    run_id = store.scalar("SELECT min(id) FROM runs WHERE status = 'partial'")
    assert person and run_id, "the runs left no failed operation to look at"
    app = ConsoleApp(config, store, engine=Engine(config, store), run_scheduler=False,
                     live=False, actor="operator")
    shots: list[Path] = []
    async with app.run_test(size=SIZE) as pilot:
        async def shoot(name: str) -> None:
            await settle(pilot)
            app.save_screenshot(f"{name}.svg", path=str(out))
            shots.append(out / f"{name}.svg")

        await shoot("dashboard")
        for key, name in (("2", "drift"), ("3", "ops"), ("5", "runs"), ("6", "audit"),
                          ("7", "held")):
            await pilot.press(key)
            await shoot(name)
        app.open_run(run_id)
        await shoot("run")
        await pilot.press("1")
        app.open_person(person)
        await shoot("person")
    store.close()
    return shots


def test_a_planted_secret_appears_in_no_output_log_file_or_message(tmp_path, capsys, caplog):
    faults = FaultPlan()
    set_token_env(PLANTED)
    csv_path = World.generate(25).write(tmp_path / "employees.csv")
    with ScimSandbox(token=PLANTED, fault=faults) as lms:
        config = str(write_config(tmp_path, lms.base_url, csv_path))
        faults.reset_connections(2, method="POST", after=True)
        faults.refuse_create_of("ben.novak.21@acme.example")
        outputs = [main(["sync", "--config", config, "--json"])]
        faults.revoke_token()
        outputs.append(main(["sync", "--config", config, "--json"]))
        faults.clear()
        set_token_env(PLANTED + "-but-wrong")  # an error about a wrong token quotes neither
        outputs.append(main(["sync", "--config", config, "--json"]))
        set_token_env(PLANTED)
        for argv in (["status"], ["ops", "list"], ["audit", "list"], ["doctor"]):
            main([*argv, "--config", config, "--json"])
        captured = capsys.readouterr()
    text = captured.out + captured.err + caplog.text
    assert "circuit breaker" in text or "401" in text or "quarantined" in text
    assert PLANTED not in text
    assert PLANTED.encode() not in _everything_written(tmp_path)
    db = tmp_path / "rostersync.db"
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert PLANTED not in dump
    for path in tmp_path.glob("rostersync.db*"):
        assert PLANTED.encode() not in path.read_bytes(), path
    figures.add("security: places searched for the planted secret", 6)

    # The console, with the LMS token set to the planted secret, over that database.
    set_token_env(PLANTED)
    shots = asyncio.run(_render_console(Path(config), tmp_path / "screens"))
    screens = {p.stem: _screen_text(p.read_text(encoding="utf-8")) for p in shots}
    assert "QUARANTINED" in screens["dashboard"] and "401" in screens["dashboard"]
    assert "sync" in screens["audit"] and "partial" in screens["run"]
    for name, shown in screens.items():
        raw = (tmp_path / "screens" / f"{name}.svg").read_text(encoding="utf-8")
        assert PLANTED not in raw and PLANTED not in shown, name
        figures.add("security: console screenshots searched (planted)")
    assert PLANTED.encode() not in _everything_written(tmp_path)


def test_the_committed_screenshots_show_no_credential():
    shots = sorted(SCREENSHOTS.iterdir())
    assert any(p.suffix == ".svg" for p in shots), f"no screenshots in {SCREENSHOTS}"
    for path in shots:
        data = path.read_bytes()
        for secret in KNOWN_SECRETS:
            assert secret.encode() not in data, (path.name, secret)
        if path.suffix == ".svg":
            shown = _screen_text(data.decode("utf-8"))
            for shape in CREDENTIAL_SHAPES:
                found = shape.search(shown)
                assert found is None, f"{path.name} shows {found.group(0)!r}"
        figures.add("security: committed screenshots searched")


def test_tls_verification_is_on_unless_one_endpoint_turns_it_off(tmp_path):
    set_token_env("t")
    config = load_config(write_config(tmp_path, "https://lms.example/v2", tmp_path / "x.csv"))
    assert config.lms.verify_tls is True
    for model, settings in (
            (MoodleTargetConfig, {"base_url": "https://m.example", "token_env": "X"}),
            (CanvasTargetConfig, {"base_url": "https://c.example", "token_env": "X",
                                  "account_id": "1"}),
            (SuccessFactorsSourceConfig, {"base_url": "https://sf.example", "company_id": "A",
                                          "username": "u", "password_env": "X"}),
            (WorkdaySourceConfig, {"base_url": "https://wd.example", "report_path": "a/b/c",
                                   "user": "u", "password_env": "X"})):
        assert model.model_validate(settings).verify_tls is True, model.__name__
    target = ScimTarget(config.lms, token="t")
    pool = target._client.http._transport._pool  # the TLS context httpx really uses
    assert pool._ssl_context.verify_mode.name == "CERT_REQUIRED"
    path = write_config(tmp_path, "https://lms.example/v2", tmp_path / "x.csv")
    path.write_text(path.read_text().replace('[lms]\n', '[lms]\nverify_tls = false\n'))
    loosened = load_config(path)
    assert loosened.lms.verify_tls is False and loosened.hris.type == "csv"


def test_scim_filter_values_are_escaped(scim_server, lms_token):
    from tests.scim_fixtures import SCIM_TOKEN

    async def go():
        config = load_config(write_config(Path(os.environ.get("TMPDIR", "/tmp")),
                                          scim_server.base_url, Path("/tmp/x.csv"))).lms
        async with ScimTarget(config, token=SCIM_TOKEN) as target:
            for name in ("alice", "bob"):
                await target.create(Account(external_key=name, user_name=f"{name}@a.example",
                                            given_name="A", family_name="B",
                                            email=f"{name}@a.example"), None)
            hostile = ['x" or userName pr "', 'alice@a.example" or "1" eq "1',
                       '\\" or externalId pr \\"', "bob@a.example\" or title pr \""]
            found = [await target.find_by_user_name(v) for v in hostile]
            found += [await target.find_by_external_key(v) for v in hostile]
            return found
    assert all(result == [] for result in asyncio.run(go()))
    figures.add("security: SCIM filter injections tried", 8)


def test_odata_filter_values_are_escaped():
    os.environ["ROSTERSYNC_SEC_SF_PW"] = "pw"
    with SuccessFactorsSandbox("ACME", username="api", password="pw") as hris:
        for record in organisation(3):
            hris.put(record)
        config = SuccessFactorsSourceConfig(base_url=hris.base_url, company_id="ACME",
                                            username="api", password_env="ROSTERSYNC_SEC_SF_PW")
        source = SuccessFactorsSource(config, sleep=lambda s: None)
        key = next(iter(source.scan_full())).key
        for hostile in (f"{key}' or personIdExternal ne '", "x') or (1 eq 1",
                        f"{key}'' or ''1'' eq ''1"):
            assert source.fetch_one(hostile) is None, hostile
        assert source.fetch_one(key) is not None
    figures.add("security: OData filter injections tried", 3)


def test_database_and_config_files_are_owner_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.umask(0o022)
    assert main(["init", str(tmp_path / "rostersync.toml")]) == 0
    assert stat.S_IMODE((tmp_path / "rostersync.toml").stat().st_mode) == 0o600
    set_token_env("t")
    config = write_config(tmp_path, "http://127.0.0.1:9/v2", tmp_path / "none.csv")
    main(["pause", "--config", str(config), "--json"])
    for path in tmp_path.glob("rostersync.db*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_the_audit_log_is_append_only_and_verify_catches_tampering(tmp_path, capsys):
    set_token_env("t")
    config = str(write_config(tmp_path, "http://127.0.0.1:9/v2", tmp_path / "none.csv"))
    for command in ("pause", "resume", "pause"):
        assert main([command, "--config", config, "--json"]) == 0
    assert main(["audit", "verify", "--config", config, "--json"]) == 0
    db = sqlite3.connect(tmp_path / "rostersync.db")
    with pytest.raises(sqlite3.DatabaseError):
        db.execute("UPDATE audit SET actor = 'mallory' WHERE id = 2")
    with pytest.raises(sqlite3.DatabaseError):
        db.execute("DELETE FROM audit WHERE id = 2")
    # Someone with the file and sqlite3 drops the guard and edits history:
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET actor = 'mallory' WHERE id = 2")
    db.commit()
    capsys.readouterr()
    assert main(["audit", "verify", "--config", config, "--json"]) == 2
    assert "audit entry 2 was altered" in capsys.readouterr().out
    figures.add("security: audit tamperings detected")
    assert os.environ.get(TOKEN_ENV) == "t"
