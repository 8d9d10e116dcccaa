"""A first sync to Moodle: rostersync against a bare loop of core_user_create_users calls
of the same batch size, sending the same fields.

    python -m bench.moodle --people 2000 --batch-size 100
    python -m bench.moodle --people 300 --batch-size 100 --url https://moodle.test --token-env T

By default each side gets its own fresh Moodle sandbox (sandbox/moodle.py, a separate
process on 127.0.0.1) that costs what a real site costs: a Moodle 4.3 on PHP 8.2 and
PostgreSQL 15 on loopback took 9.3 s for 300 create calls of one user and 3.6 s for
three calls of 100, so every call costs 31 ms (the site's bootstrap) and each user it
creates 11.7 ms (``--call-ms``, ``--user-ms``). Each user a lookup answers costs 3.4 ms
(``--read-ms``): a Moodle 4.3 site on loopback answered core_user_get_users_by_field
at 5.5 ms a user where it created users at 19 ms a user (it loads each user's courses),
and 3.4 ms keeps that ratio at the 11.7 ms above. ``--call-ms 0 --user-ms 0 --read-ms 0``
measures the client alone. With ``--url`` both run against that site (a throwaway one: the
users are kept; the two sides use different idnumbers and usernames, and each rostersync
run lists only its own users, so earlier runs' leftovers cost nothing; a site slows a
little as it fills, so with ``--rounds`` the two sides take turns going first). The baseline
sends create calls of ``--batch-size`` users, ``--concurrency`` at a time, and reads
nothing; rostersync runs its whole first sync (pull, plan, persist, batched creates, the
bulk read-back of every batch) from an empty database. rostersync with one call per user
(``bulk = "off"``) is measured too, beside them.

Pipelines (``--pipeline-depth``, default 2, ``lms.pipeline_depth``): rostersync writes
one batch while it reads the last one back. It gets ``--concurrency`` write streams, as
the bare loop gets ``--concurrency`` callers, so it runs with lms.concurrency =
concurrency x depth; the same batched sync without a pipeline (depth 1) is printed beside
it. The site must answer two calls at once: ``--workers`` (default 2) bounds the sandbox
as PHP_CLI_SERVER_WORKERS bounds ``php -S``; a real site is started with that variable
(docs/moodle.md, "Checking against a real Moodle"), and both sides get the same site.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

from rostersync.sandbox.world import COLUMNS, HEADER
from rostersync.sync.connectors.moodle_config import MoodleTargetConfig
from rostersync.sync.connectors.moodle_wire import encode_params, user_fields

TOKEN = "0123456789abcdefbench0123456789"
TOKEN_ENV = "ROSTERSYNC_BENCH_MOODLE_TOKEN"
ENDPOINT = "/webservice/rest/server.php"


class SiteProcess:
    def __init__(self, costs: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rostersync.sandbox.moodle", "--token", TOKEN, *costs],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http"):
            raise RuntimeError(f"Moodle sandbox did not start: {self.proc.stderr.read()}")
        self.base_url = line

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def rows(people: int, prefix: str) -> list[dict[str, str]]:
    """A flat organisation (Moodle holds no manager reference anyway)."""
    out = []
    for i in range(1, people + 1):
        first, last = f"First{i % 997}", f"Last{i % 1013}"
        email = f"{first.lower()}.{last.lower()}.{prefix.lower()}{i}@acme.example"
        out.append({"Employee ID": f"{prefix}{i:07d}", "Employee Number": str(100000 + i),
                    "First Name": first, "Last Name": last, "Preferred Name": "",
                    "Work Email": email, "Department": "Sales", "Job Title": "Specialist",
                    "Location": "Berlin", "Manager ID": "", "Status": "Active",
                    "Hire Date": "2020-03-01", "Termination Date": "",
                    "Time Zone": "Europe/Berlin", "Worker Type": "Employee"})
    return out


def bare_params(row: dict[str, str], config: MoodleTargetConfig) -> dict[str, object]:
    """What rostersync sends for a new user: the same fields, the same password rule."""
    params, _homeless = user_fields({
        "user_name": row["Work Email"], "given_name": row["First Name"],
        "family_name": row["Last Name"], "email": row["Work Email"],
        "department": row["Department"], "external_key": row["Employee ID"]}, config)
    return {**params, "auth": config.auth, "password": "Rs1!" + secrets.token_urlsafe(24)}


async def bare_loop(base_url: str, token: str, people: list[dict[str, str]], batch: int,
                    concurrency: int) -> float:
    config = MoodleTargetConfig(base_url=base_url)
    calls = [[bare_params(r, config) for r in people[i:i + batch]]
             for i in range(0, len(people), batch)]
    calls.reverse()
    query = {"wsfunction": "core_user_create_users", "moodlewsrestformat": "json",
             "wstoken": token}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=None) as client:
        async def worker() -> None:
            while calls:
                body = urlencode(encode_params({"users": calls.pop()})).encode()
                answer = await client.post(base_url + ENDPOINT, params=query, content=body,
                                           headers={"Content-Type":
                                                    "application/x-www-form-urlencoded"})
                data = answer.json()
                assert isinstance(data, list), data  # an exception object is a failure

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0


async def first_sync(folder: Path, base_url: str, token_env: str,
                     people: list[dict[str, str]], batch: int, concurrency: int, bulk: str,
                     only_these: str | None = None, depth: int = 1) -> tuple[float, dict]:
    from rostersync.storage.db import Store
    from rostersync.sync.config import load_config
    from rostersync.sync.engine import Engine

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    csv_path = folder / "employees.csv"
    csv_path.write_text(",".join(HEADER) + "\n" + "".join(
        ",".join(r[h] for h in HEADER) + "\n" for r in people))
    config_path = folder / "rostersync.toml"
    config_path.write_text("\n".join([
        "[database]", f'path = "{folder / "bench.db"}"', "",
        "[hris]", 'type = "csv"', f'path = "{csv_path}"', "", "[hris.columns]",
        *[f'{k} = "{v}"' for k, v in COLUMNS.items()], "",
        "[lms]", 'type = "moodle"', f'base_url = "{base_url}"', f'token_env = "{token_env}"',
        f"concurrency = {concurrency * depth}", f"pipeline_depth = {depth}",
        f'bulk = "{bulk}"', f"batch_size = {batch}",
        "timeout_seconds = 300",
        *([f'list_criteria_value = "{only_these}"'] if only_these else []), "",
        "[guards]", "mass_deactivation_min = 1000000", ""]))
    config = load_config(config_path)
    engine = Engine(config, Store(config.database.path))
    t0 = time.perf_counter()
    report = await engine.sync("full")
    return time.perf_counter() - t0, dict(report.counts.get("applied", {}))


def _side(url: str | None, costs: list[str], run):  # a fresh sandbox per side, or a site
    if url:
        return asyncio.run(run(url))
    site = SiteProcess(costs)
    try:
        return asyncio.run(run(site.base_url))
    finally:
        site.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=1,
                        help="calls at a time, both sides (1: the loop measured on Moodle)")
    parser.add_argument("--call-ms", type=float, default=31.0)
    parser.add_argument("--user-ms", type=float, default=11.7)
    parser.add_argument("--read-ms", type=float, default=3.4)
    parser.add_argument("--pipeline-depth", type=int, default=2,
                        help="lms.pipeline_depth of the batched sync (1: no pipeline)")
    parser.add_argument("--workers", type=int, default=2,
                        help="calls the sandbox answers at once (PHP_CLI_SERVER_WORKERS)")
    parser.add_argument("--url", help="a (throwaway) Moodle site instead of the sandbox")
    parser.add_argument("--rounds", type=int, default=1,
                        help="baseline and batched sync run this many times, alternating; "
                             "the medians are compared (a shared machine's noise)")
    parser.add_argument("--no-single", action="store_true",
                        help="skip the one-call-per-user sync (the slowest side)")
    parser.add_argument("--token-env", default=TOKEN_ENV,
                        help="the variable holding the site's token (with --url)")
    args = parser.parse_args(argv)
    if args.url:
        token = os.environ.get(args.token_env, "")
        if not token:
            parser.exit(2, f"--url needs the site's web service token in ${args.token_env}\n")
    else:
        token = os.environ[args.token_env] = TOKEN
    folder = (Path("bench/out") / f"moodle-{args.people}").resolve()
    tag = str(int(time.time()) % 100000)  # a real site keeps users: new keys per run
    n, batch, conc = args.people, args.batch_size, args.concurrency
    depth = args.pipeline_depth
    costs = ["--call-ms", str(args.call_ms), "--user-ms", str(args.user_ms),
             "--read-ms", str(args.read_ms), "--workers", str(args.workers)]

    # On a real site each run leaves its users behind, and listing them all costs a few
    # milliseconds a user: each side lists only the users of its own run (an email LIKE,
    # docs/moodle.md §6.3), as a first sync into a site without them would.
    def only(prefix: str) -> str | None:
        return f"%.{prefix.lower()}%" if args.url else None

    bares, batcheds, ratios, unpiped = [], [], [], []
    for r in range(max(1, args.rounds)):
        bare_prefix, ours = f"B{tag}R{r}X", f"E{tag}R{r}X"

        def bare_side(p: str = bare_prefix) -> float:
            return _side(args.url, costs, lambda url: bare_loop(url, token, rows(n, p), batch,
                                                                conc))

        def our_side(p: str = ours) -> tuple[float, dict]:
            return _side(args.url, costs, lambda url: first_sync(
                folder, url, args.token_env, rows(n, p), batch, conc, "auto", only(p), depth))

        # A real site's creates slow as it fills, so the side that goes second in a round
        # pays for the first side's users: the two take turns going first.
        if r % 2 == 0:
            bares.append(bare_side())
            took, counts = our_side()
        else:
            took, counts = our_side()
            bares.append(bare_side())
        batcheds.append(took)
        ratios.append(took / bares[-1])
        if depth > 1:
            unpiped.append(_side(args.url, costs, lambda url, p=f"P{tag}R{r}X": first_sync(
                folder, url, args.token_env, rows(n, p), batch, conc, "auto", only(p)))[0])
    bare, batched = statistics.median(bares), statistics.median(batcheds)
    single, single_counts = (None, {}) if args.no_single else _side(
        args.url, costs, lambda url: first_sync(folder, url, args.token_env,
                                                rows(n, f"S{tag}X"), batch, conc, "off",
                                                only(f"S{tag}X")))

    where = args.url or (f"the Moodle sandbox ({args.call_ms:g} ms a call, {args.user_ms:g} ms "
                         f"a user written, {args.read_ms:g} ms a user read, "
                         f"{args.workers or 'any number of'} calls at once)")
    print(f"\nfirst sync of {n} people to {where}, {batch} users per call, "
          f"{conc} write stream(s)")
    print(f"{'':<48}{'seconds':>10}{'users/s':>10}")
    print(f"{'bare core_user_create_users loop (baseline)':<48}{bare:>10.2f}{n / bare:>10.0f}")
    print(f"{f'rostersync first sync, batched, depth {depth}':<48}{batched:>10.2f}"
          f"{n / batched:>10.0f}")
    if unpiped:
        alone = statistics.median(unpiped)
        print(f"{'rostersync first sync, batched, depth 1':<48}{alone:>10.2f}"
              f"{n / alone:>10.0f}")
    if single is not None:
        print(f"{'rostersync first sync, one call per user':<48}{single:>10.2f}"
              f"{n / single:>10.0f}")
    print(f"outcomes: batched {json.dumps(counts)}, single {json.dumps(single_counts)}")
    if len(ratios) > 1:
        print(f"rounds: baseline {', '.join(f'{b:.2f}' for b in bares)} s; batched "
              f"{', '.join(f'{b:.2f}' for b in batcheds)} s; ratios "
              f"{', '.join(f'{r:.2f}' for r in ratios)}"
              + (f"; depth 1 {', '.join(f'{b:.2f}' for b in unpiped)} s" if unpiped else ""))
    print(f"rostersync batched / baseline time = {batched / bare:.2f}x  (target <= 1.25x)")
    if len(ratios) > 1:  # each round's two sides ran back to back: less of the load's drift
        print(f"median of the rounds' ratios = {statistics.median(ratios):.2f}x")
    if single is not None:
        print(f"speed-up of batches over one call per user = {single / batched:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
