"""One many-customer Bulk file ingested by 1 and 2 ``greenbutton worker`` processes (issue 10.4).

The simulator (in a thread of this process, ``--customers N``, every customer's grant put in
its state directly, as ``bulk.py`` does) serves a Bulk file; the SDK asks for it and the
BatchList notification's ``Batch/Bulk/{id}?correlationID=`` URI becomes one engine job in a
template PostgreSQL database (with procrastinate's tables). Each run works on a fresh
``CREATE DATABASE ... TEMPLATE`` copy: ``greenbutton worker --until-idle
--bulk-part-readings P`` processes, each its own ``GREENBUTTON_HOST_ID`` and rate-limit
folder. The worker that takes the job fetches the file to disk, checks it and splits it per
usage point into ``bulk_parts``; then every worker ingests parts. Printed per run, from the
database's own timestamps:

* **fetch + split**: spawning the workers to the first part stored (one worker's work, by
  design: the file is checked whole before any part exists);
* **parts**: the first part stored to the last part done: the phase the workers share;
* **wall**: spawning to the last worker's exit (start-up and the idle check included).

After each run the job must be ``done`` with every reading, and the readings (count and sum
per series) must equal the first run's. No network latency is modelled: the file is one
download. Other work on the two cores moves the times; the ratios are from one run.

PostgreSQL: ``$GREENBUTTON_BENCH_POSTGRES_URL``, else ``$GREENBUTTON_TEST_POSTGRES_URL``.

    .venv/bin/python bench/bulk_workers.py [--customers 200] [--days 30] [--part-readings 20000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import text

from bulk import checksums
from fetch import _tail
from greenbutton.client import Client
from greenbutton.oauth import InMemoryTokenStore
from greenbutton.simulator import SimulatorConfig, run_in_thread
from greenbutton.simulator._state import DEFAULT_SCOPE, AuthorizationGrant
from greenbutton.storage import Store, enqueue, ensure_queue_schema
from scale import _TALLY, CpuMeter, Databases

COMMAND = ".venv/bin/python bench/bulk_workers.py"


@dataclass(frozen=True, slots=True)
class Run:
    workers: int
    readings: int
    parts: int
    by_worker: dict[str, int]  # parts stored by each host
    split: float  # spawn -> first part stored
    shared: float  # first part stored -> last part done
    wall: float  # spawn -> last exit
    busy: float  # machine CPU busy share during the run


def bulk_uri(sim: Any, reg: Path, days: int) -> str:
    """Every customer granted; ``client.bulk()`` (202); the notified Bulk URI."""
    with sim.state.lock:
        for n, customer in enumerate(sim.state.customers.values()):
            sim.state.grants[f"bench-{n}"] = AuthorizationGrant(
                id=f"bench-{n}", customer=customer.username,
                subscription_id=customer.subscription_id, scope=DEFAULT_SCOPE,
            )  # fmt: skip
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with Client.for_simulator(reg, token_store=InMemoryTokenStore()) as client:
        got = client.bulk(start=end - timedelta(days=days + 1), end=end)
        if got.status_code != 202:
            raise SystemExit(f"bulk request answered {got.status_code}")
        if not sim.notifier.wait_idle(600):
            raise SystemExit("no BatchList notification")
        return str(sim.notifier.sent[-1].uris[0])


def run(
    dbs: Databases, template: str, state: Path, workers: int, parts: int, tmp: Path
) -> tuple[Run, list[tuple[Any, ...]]]:
    """One timed run on a fresh copy of ``template``; its figures and readings checksums."""
    name = dbs.create(f"w{workers}", template=template)
    url = dbs.url(name)
    try:
        procs, logs = [], []
        meter = CpuMeter()
        meter.start()
        t0, wall0 = time.perf_counter(), time.time()
        for i in range(workers):
            host = f"bulk-w{workers}-{i}"
            env = {**os.environ, "GREENBUTTON_HOST_ID": host,
                   "GREENBUTTON_RATE_DIR": str(tmp / f"rate-{host}")}  # fmt: skip
            cmd = [sys.executable, "-m", "greenbutton", "worker", "--database", url,
                   "--simulator", str(state), "--concurrency", "1", "--until-idle",
                   "--bulk-part-readings", str(parts)]  # fmt: skip
            log = tmp / f"{host}.log"
            with log.open("wb") as out:
                procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT))
            logs.append(log)
        for proc in procs:
            proc.wait()
        wall = time.perf_counter() - t0
        busy = meter.stop()
        for proc, log in zip(procs, logs, strict=True):
            if proc.returncode != 0 or _TALLY.search(log.read_text(errors="replace")) is None:
                raise SystemExit(f"worker exited {proc.returncode}:\n{_tail(log)}")
        with Store.open(url, migrate=False) as store, store.connect() as conn:
            state_, rows = conn.execute(text("SELECT state, rows FROM ingest_jobs")).one()
            first, last, count = conn.execute(
                text("SELECT min(created_at), max(done_at), count(*) FROM bulk_parts")
            ).one()
            hosts = conn.execute(
                text("SELECT split_part(done_by, ':', 1), count(*) FROM bulk_parts GROUP BY 1")
            ).all()
            readings = int(conn.execute(text("SELECT count(*) FROM readings")).scalar_one())
        if state_ != "done" or rows != readings or not count:
            raise SystemExit(f"{workers} worker(s): job {state_}, {rows} rows, {readings} stored")
        got = Run(
            workers=workers, readings=readings, parts=int(count),
            by_worker={str(h): int(c) for h, c in hosts}, split=float(first) - wall0,
            shared=float(last) - float(first), wall=wall, busy=busy,
        )  # fmt: skip
        return got, checksums(url)
    finally:
        dbs.drop(name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--customers", type=int, default=200)
    ap.add_argument("--days", type=int, default=30, help="days of 15-minute data per customer")
    ap.add_argument("--part-readings", type=int, default=20_000, help="--bulk-part-readings")
    ap.add_argument("--workers", default="1,2", help="worker counts; the first is the reference")
    ap.add_argument(
        "--postgres-url",
        default=os.environ.get("GREENBUTTON_BENCH_POSTGRES_URL")
        or os.environ.get("GREENBUTTON_TEST_POSTGRES_URL"),
    )
    a = ap.parse_args(argv)
    if not a.postgres_url:
        raise SystemExit("set GREENBUTTON_BENCH_POSTGRES_URL (or GREENBUTTON_TEST_POSTGRES_URL)")
    counts = [int(x) for x in a.workers.split(",") if x.strip()]
    os.environ["GREENBUTTON_SECRET_KEY"] = Fernet.generate_key().decode()
    os.environ.pop("GREENBUTTON_DATABASE_URL", None)
    load = os.getloadavg()[0]
    dbs = Databases(a.postgres_url)
    runs: list[Run] = []
    sums: list[list[tuple[Any, ...]]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gb-bulk-workers-") as tmp_name:
            tmp = Path(tmp_name)
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as in scale.py: a warm cache
            os.environ["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
            state = tmp / "sim"
            config = SimulatorConfig(
                state_dir=state, customers=a.customers, history_days=a.days + 2
            )
            with run_in_thread(config, timeout=600) as running:
                uri = bulk_uri(running.sim, state / "registration.json", a.days)
                template = dbs.create("tmpl")
                with Store.open(dbs.url(template)) as store:
                    ensure_queue_schema(store)
                    enqueue(store, uri)
                warm = dbs.create("warm")  # an untimed worker fills the bytecode cache
                with Store.open(dbs.url(warm)) as store:
                    ensure_queue_schema(store)
                subprocess.run(
                    [sys.executable, "-m", "greenbutton", "worker", "--database",
                     dbs.url(warm), "--simulator", str(state), "--until-idle"],
                    check=True, capture_output=True,
                )  # fmt: skip
                dbs.drop(warm)
                for n in counts:
                    print(f"bulk_workers: {n} worker(s) ...", file=sys.stderr, flush=True)
                    got, sum_ = run(dbs, template, state, n, a.part_readings, tmp)
                    if sums and sum_ != sums[0]:
                        raise SystemExit(f"{n} workers stored other readings than {counts[0]}")
                    runs.append(got)
                    sums.append(sum_)
    finally:
        dbs.drop_all()
    one = runs[0]
    print(
        f"## Bulk file of {a.customers} customers x {a.days} days: {one.readings:,} readings "
        f"in {one.parts} parts of about {a.part_readings:,} readings\n\n"
        "| workers | parts per worker | fetch + split s | parts s | vs 1 worker | wall s "
        "| readings/s (wall) | machine CPU busy |\n|---:|---|---:|---:|---:|---:|---:|---:|"
    )
    for r in runs:
        print(
            f"| {r.workers} | {', '.join(map(str, sorted(r.by_worker.values(), reverse=True)))} "
            f"| {r.split:.1f} | {r.shared:.1f} | {one.shared / r.shared:.2f}x | {r.wall:.1f} "
            f"| {r.readings / r.wall:,.0f} | {r.busy:.0%} |"
        )
    print(
        f"\nSame readings in every run (count and sum per series, checked). 1-min load "
        f"average at start {load:.2f}; {os.cpu_count()} cores.\n\ncommand: `{COMMAND} "
        f"--customers {a.customers} --days {a.days} --part-readings {a.part_readings}`"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
