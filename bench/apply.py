"""Apply throughput: the engine's executor against a bare httpx loop, same server, same
requests, same concurrency.

    python -m bench.apply --ops 5000 --concurrency 8
    python -m bench.apply --ops 5000 --concurrency 8 --bulk
    python -m bench.apply --ops 5000 --concurrency 8 \
        --database-url postgresql://rostersync@127.0.0.1:5432/rostersync_bench

Each side gets its own fresh scim2-server (ASGI app on uvicorn, HTTP/1.1) in a separate
process on 127.0.0.1. With ``--bulk`` the baseline sends the same operations as /Bulk
requests of the size the server advertises (maxOperations), the engine uses SCIM Bulk
(``[lms] bulk = "auto"``), and the engine's single-request rate is measured too, for the
speed-up. Without it both sides send one request per user (``bulk = "off"``).

The baseline POSTs the same user bodies the engine would send and
records nothing; the engine plans the creates (not timed), then applies them and
persists every attempt and outcome (timed). The organisation is flat (no managers) so
both sides send exactly one request per user.

With ``--database-url`` the engine's run is repeated against a fresh PostgreSQL database
(the one the URL names, dropped and created again; password from
$ROSTERSYNC_DB_PASSWORD), on a fresh server of its own, beside the SQLite run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import TOKEN_ENV, config_text, fresh_pg_database, line_for
from rostersync.sandbox.world import HEADER
from rostersync.sync.bulk import BatchItem
from rostersync.sync.connectors.scim_bulk import bulk_operation, bulk_request
from rostersync.sync.connectors.scim_payload import creation_body
from rostersync.sync.models import Account

TOKEN = "bench-token"


class ServerProcess:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rostersync.sandbox.scim_server", "--token", TOKEN],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http"):
            raise RuntimeError(f"SCIM server did not start: {self.proc.stderr.read()}")
        self.base_url = line

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def flat_rows(n: int) -> list[str]:
    # Everyone reports to nobody: one request per user on both sides.
    return [line_for(i).replace(f",E{(i - 2) // 8 + 1:07d},", ",,") for i in range(2, n + 2)]


async def bare_loop(base_url: str, bodies: list[dict], concurrency: int) -> float:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json",
               "Accept": "application/scim+json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    queue = list(reversed(bodies))
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits) as client:
        async def worker() -> None:
            while queue:
                body = queue.pop()
                response = await client.post("/Users", json=body)
                response.raise_for_status()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0


async def bare_bulk_loop(base_url: str, accounts: list[Account], concurrency: int
                         ) -> tuple[float, int]:
    """The same creates as /Bulk requests of maxOperations each; returns (seconds, size)."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json",
               "Accept": "application/scim+json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # A 1,000-operation request takes the server seconds, and it works through them one
    # after the other: no timeout on this side, 300 s on the engine's.
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits,
                                 timeout=None) as client:
        size = (await client.get("/ServiceProviderConfig")).json()["bulk"]["maxOperations"]
        operations = [bulk_operation(BatchItem(str(i), "create", account=account))
                      for i, account in enumerate(accounts, 1)]
        queue = [bulk_request(operations[i:i + size], None)
                 for i in range(0, len(operations), size)]
        queue.reverse()

        async def worker() -> None:
            while queue:
                response = await client.post("/Bulk", json=queue.pop())
                response.raise_for_status()
                failed = [op for op in response.json()["Operations"]
                          if int(op["status"]) >= 400]
                assert not failed, failed[:1]

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0, size


async def engine_apply(folder: Path, base_url: str, rows: list[str], concurrency: int,
                       bulk: str = "off", database_url: str | None = None
                       ) -> tuple[float, dict]:
    from rostersync.storage.store_factory import make_store
    from rostersync.sync.config import load_config
    from rostersync.sync.engine import Engine

    csv_path = folder / "employees.csv"
    csv_path.write_text(",".join(HEADER) + "\n" + "".join(rows))
    config_path = folder / "rostersync.toml"
    config_path.write_text(config_text(folder, csv_path, base_url,
                                       database_url=database_url).replace(
        "[lms]\n", f"[lms]\nconcurrency = {concurrency}\nbulk = \"{bulk}\"\n"
        "timeout_seconds = 300\n"))
    config = load_config(config_path)
    engine = Engine(config, make_store(config.database))
    await engine.sync("full", lms_read="cached", apply=False)
    t0 = time.perf_counter()
    report = await engine.apply_due(trigger="bench")
    return time.perf_counter() - t0, report.counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--bulk", action="store_true",
                        help="SCIM Bulk against a bare /Bulk loop (and the single rate)")
    parser.add_argument("--database-url", default=None, metavar="URL",
                        help="also time the engine on this PostgreSQL database (dropped "
                        "and created again; password from $ROSTERSYNC_DB_PASSWORD)")
    args = parser.parse_args(argv)
    folder = (Path("bench/out") / f"apply-{args.ops}").resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[TOKEN_ENV] = TOKEN
    rows = flat_rows(args.ops)

    # The baseline sends the very bodies our connector would build for these rows.
    accounts = []
    for i in range(2, args.ops + 2):
        first, last = f"First{i % 997}", f"Last{i % 1013}"
        email = f"{first.lower()}.{last.lower()}.{i}@acme.example"
        accounts.append(Account(
            external_key=f"E{i:07d}", user_name=email, given_name=first, family_name=last,
            display_name=f"{first} {last}", email=email, title="Specialist",
            employee_number=str(100000 + i)))
    if args.bulk:
        return bulk_main(args, folder, rows, accounts)
    bodies = [creation_body(account, None) for account in accounts]

    server = ServerProcess()
    try:
        bare = asyncio.run(bare_loop(server.base_url, bodies, args.concurrency))
    finally:
        server.stop()
    server = ServerProcess()
    try:
        engine, counts = asyncio.run(engine_apply(folder, server.base_url, rows,
                                                  args.concurrency, "off"))
    finally:
        server.stop()
    on_pg: tuple[float, dict] | None = None
    if args.database_url:
        url = fresh_pg_database(args.database_url)
        on_pg = _fresh(lambda base: engine_apply(folder, base, rows, args.concurrency, "off",
                                                 url))

    bare_rate, engine_rate = args.ops / bare, args.ops / engine
    print(f"\napply {args.ops} creates at concurrency {args.concurrency}")
    print(f"{'':<38}{'seconds':>10}{'ops/s':>10}")
    print(f"{'bare httpx loop (baseline)':<38}{bare:>10.2f}{bare_rate:>10.0f}")
    print(f"{'rostersync executor (persisting all)':<38}{engine:>10.2f}{engine_rate:>10.0f}")
    if on_pg is not None:
        pg_rate = args.ops / on_pg[0]
        print(f"{'  on PostgreSQL':<38}{on_pg[0]:>10.2f}{pg_rate:>10.0f}")
    print(f"engine outcomes: {counts.get('applied')}")
    print(f"engine / baseline rate = {engine_rate / bare_rate:.0%}  (target >= 85%)")
    if on_pg is not None:
        print(f"on PostgreSQL: outcomes {on_pg[1].get('applied')}, rate / baseline "
              f"{args.ops / on_pg[0] / bare_rate:.0%}")
    return 0


def _fresh(run):
    server = ServerProcess()
    try:
        return asyncio.run(run(server.base_url))
    finally:
        server.stop()


def bulk_main(args: argparse.Namespace, folder: Path, rows: list[str],
              accounts: list[Account]) -> int:
    bare, size = _fresh(lambda url: bare_bulk_loop(url, accounts, args.concurrency))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    engine, counts = _fresh(lambda url: engine_apply(folder, url, rows, args.concurrency,
                                                     "auto"))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    single, _ = _fresh(lambda url: engine_apply(folder, url, rows, args.concurrency, "off"))
    n = args.ops
    bare_rate, engine_rate, single_rate = n / bare, n / engine, n / single
    print(f"\napply {n} creates at concurrency {args.concurrency}, SCIM Bulk of {size} "
          "operations per request")
    print(f"{'':<44}{'seconds':>10}{'ops/s':>10}")
    print(f"{'bare httpx /Bulk loop (baseline)':<44}{bare:>10.2f}{bare_rate:>10.0f}")
    print(f"{'rostersync executor, bulk (persisting all)':<44}{engine:>10.2f}"
          f"{engine_rate:>10.0f}")
    print(f"{'rostersync executor, one request per op':<44}{single:>10.2f}{single_rate:>10.0f}")
    print(f"engine outcomes: {counts.get('applied')}")
    print(f"engine bulk / baseline rate = {engine_rate / bare_rate:.0%}  (target >= 85%)")
    print(f"speed-up of bulk over single requests = {engine_rate / single_rate:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
