"""Backfill throughput with 1, 2 and 4 ``greenbutton worker`` processes (issue 10, item 6).

What is measured is the whole path a third party runs: ``greenbutton worker --until-idle``
processes (each its own ``GREENBUTTON_HOST_ID`` and rate-limit folder, as separate machines
would be) sharing one PostgreSQL database, fetching planned backfill windows from the
simulator over real mutual TLS, parsing and ingesting them. Rows:

* **throughput**, 1, 2 and 4 workers, the simulator's rate limit off: readings stored per
  second of wall time, from spawning the workers to the last one exiting (process start-up
  and the idle check included: that is what a backfill costs). The ratio is to 1 worker.
* **rate limit on**: the simulator restarted with ``--rate-limit`` (PG&E: 1 request/s), which
  it writes into ``registration.json`` so the ``simulator`` profile keeps under it; two
  workers share the limit through the database. Shows requests/s staying at the limit,
  the most arrivals in any second and the 429s (``/_simulator/stats``).
* the **ingest rate against table size** table of ``bench/ingest_scale.py``, run as its own
  process (PostgreSQL only; small sizes with ``--quick``).

The network is modelled by the simulator's latency faults: every API answer is delayed one
round trip (``--rtt-ms``, 100) and a new connection's first answer two more (TCP + TLS 1.3,
see ``fetch.py``). Every run starts from the same state: the customers are authorized
through the real portal and the backfill is planned (``storage.sync(..., enqueue_only=True)``,
what ``sync --enqueue-only`` does) once, in a template database, and each run works on a
fresh ``CREATE DATABASE ... TEMPLATE`` copy of it (a file copy: the same jobs, tokens and
empty readings table every time). After each run every job must be ``done`` and the readings
count must equal the first run's. The job queue's own tables (procrastinate) are made in
the template too, as a production database has them before a backfill starts.

The simulator and the workers are separate processes (no shared interpreter lock); all of
them and PostgreSQL share this machine's cores, so the CPU use of the whole machine during
each run is shown (from ``/proc/stat``): once it nears 100 %, more workers cannot help on
this machine, and the next machine would.

The workers run with a bytecode cache (``PYTHONPYCACHEPREFIX`` in the temporary folder,
filled by an untimed warm-up worker), as an installed package has one: this machine sets
``PYTHONDONTWRITEBYTECODE``, and without a cache each worker spent ~1.7 s of CPU compiling
its modules before its first job. What is left per run (start-up, the ``--until-idle``
check once a second) is printed as the fixed cost beside the steady-state ratios.

The rate-limited row can show a 429: the simulator counts an arrival and applies
``--rate-limit`` where a remote custodian would (after a new connection's two extra RTTs
and half a round trip), and the client spaces its requests when it sends them, 10 % above
the limit. A request that opens a new connection reaches the custodian 200 ms later than
one on a kept-alive connection, so two requests sent 1.1 s apart can arrive 0.9 s apart;
"at most 2 in any second" then comes with the 429 (the rejected request arrived). A real
custodian sees the same squeeze; with ``--rtt-ms 0`` the row has none. The client retries
after ``Retry-After``, so the backfill is unharmed; only the request is spent.

PostgreSQL: ``$GREENBUTTON_BENCH_POSTGRES_URL``, else ``$GREENBUTTON_TEST_POSTGRES_URL``
(the role must be allowed to CREATE DATABASE); the databases are dropped afterwards.

    .venv/bin/python bench/scale.py [--quick] [--customers N] [--days D] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from fetch import _authorize_all, _set_latency, _tail
from greenbutton import Client
from greenbutton.client._config import credentials_from_registration
from greenbutton.client._transport import build_ssl_context
from greenbutton.storage import DatabaseTokenStore, Store, ensure_queue_schema, sync

HERE = Path(__file__).resolve().parent
RATIO = 1.6  # issue 10: 2 workers >= 1.6 x 1 worker
PGE_RATE = 1.0  # PG&E: 1 request/s per vendor
COMMAND = ".venv/bin/python bench/scale.py"


@dataclass(frozen=True, slots=True)
class Run:
    """One timed run of ``workers`` processes."""

    workers: int
    seconds: float
    readings: int
    jobs: int
    requests: int
    max_per_second: int
    responses_429: int
    busy: float  # share of the machine's CPU time used during the run, 0..1
    span: float  # first to last job finished (the database's finished_at)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU s: workers, simulator, postgres
    split: list[int] = field(default_factory=list)  # jobs done by each worker

    @property
    def rate(self) -> float:
        return self.readings / self.seconds

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu.values())


def proc_cpu(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (None: gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Busy share of all cores between :meth:`start` and :meth:`stop` (``/proc/stat``)."""

    @staticmethod
    def _read() -> tuple[int, int]:
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except OSError:
            return 0, 0
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    def start(self) -> None:
        self.b0, self.t0 = self._read()

    def stop(self) -> float:
        b1, t1 = self._read()
        return (b1 - self.b0) / (t1 - self.t0) if t1 > self.t0 else 0.0


# -- PostgreSQL databases -------------------------------------------------------------------


class Databases:
    """Fresh databases on the server of ``base``, all dropped by :meth:`drop_all`."""

    def __init__(self, base: str) -> None:
        self.base = make_url(base)
        self.admin = create_engine(base, isolation_level="AUTOCOMMIT")
        self.prefix = f"gb_scale_{uuid.uuid4().hex[:8]}"
        self.made: list[str] = []

    def url(self, name: str) -> str:
        return self.base.set(database=name).render_as_string(hide_password=False)

    def create(self, suffix: str, template: str | None = None) -> str:
        """A new database (a copy of ``template``, which must have no connections)."""
        name = f"{self.prefix}_{suffix}"
        copy = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        self.made.append(name)
        return name

    def backends(self, name: str) -> list[int]:
        """Process ids of the server's backends connected to database ``name``."""
        with self.admin.connect() as conn:
            query = text("SELECT pid FROM pg_stat_activity WHERE datname = :d")
            return [int(p) for p in conn.execute(query, {"d": name}).scalars()]

    def drop(self, name: str) -> None:
        """Drop ``name``, ending our leftover sessions (FORCE). An autovacuum worker, which
        a fresh table of many rows soon draws, runs as the server's superuser and cannot be
        ended by us: wait for it."""
        for attempt in range(60):
            try:
                with self.admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                break
            except DBAPIError:
                if attempt == 59:
                    raise
                time.sleep(0.5)
        self.made.remove(name)

    def drop_all(self) -> None:
        for name in list(reversed(self.made)):
            self.drop(name)
        self.admin.dispose()


# -- the simulator ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sim:
    """A running simulator process and its registration."""

    reg: dict[str, Any]
    pid: int
    state: Path


@contextmanager
def simulator(state: Path, customers: int, log: Path, *extra: str) -> Iterator[Sim]:
    """``greenbutton simulator`` in its own process (fetch.py's, with ``extra`` options)."""
    (state / "registration.json").unlink(missing_ok=True)  # written again once it serves
    cmd = [sys.executable, "-m", "greenbutton", "simulator", "--state-dir", str(state),
           "--customers", str(customers), *extra]  # fmt: skip
    with log.open("wb") as out:  # not a pipe: one nobody reads would fill up and stall it
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not (state / "registration.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the simulator did not start: {_tail(log)}")
        time.sleep(0.1)
    try:
        yield Sim(json.loads((state / "registration.json").read_text()), proc.pid, state)
    except BaseException:
        print(f"simulator log (tail):\n{_tail(log)}", file=sys.stderr)
        raise
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def stats(reg: dict[str, Any]) -> dict[str, int]:
    """``GET /_simulator/stats`` (client certificate required)."""
    creds = credentials_from_registration(reg)
    url = str(httpx2.URL(reg["token_url"]).copy_with(path="/_simulator/stats"))
    with httpx2.Client(verify=build_ssl_context(creds), trust_env=False) as http:
        r = http.get(url)
        r.raise_for_status()
        got: dict[str, int] = r.json()
    return got


# -- setting up: authorize, plan --------------------------------------------------------------


def authorize(url: str, reg_path: Path, reg: dict[str, Any]) -> int:
    """Every simulator customer consents on the portal; tokens into the database."""
    with (
        Store.open(url) as store,
        Client.for_simulator(reg_path, token_store=DatabaseTokenStore(store)) as client,
    ):
        keys = _authorize_all(client, reg, reg["ca_cert"])
        ensure_queue_schema(store)
    return len(keys)


def plan(url: str, reg_path: Path, since: datetime, until: datetime, keys: int | None) -> int:
    """The backfill's jobs (``sync --enqueue-only``): all authorizations, or the first
    ``keys``; how many jobs are open."""
    with Store.open(url) as store:
        tokens = DatabaseTokenStore(store)
        with Client.for_simulator(reg_path, token_store=tokens) as client:
            auths = None if keys is None else sorted(tokens.keys())[:keys]
            report = sync(
                store, client, authorizations=auths, since=since, until=until, enqueue_only=True
            )
        if report.skipped or not report.planned:
            raise SystemExit(f"planning failed: {report}")
        return report.planned


# -- one timed run ----------------------------------------------------------------------------


def _counts(url: str) -> tuple[int, int, int, float]:
    """Readings stored, jobs, jobs done, and seconds from the first to the last finished."""
    with Store.open(url, migrate=False) as store, store.connect() as conn:
        readings = int(conn.execute(text("SELECT count(*) FROM readings")).scalar_one())
        jobs, done, lo, hi = conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE state = 'done'), min(finished_at),"
                " max(finished_at) FROM ingest_jobs"
            )
        ).one()
    return readings, int(jobs), int(done), float((hi or 0) - (lo or 0))


_TALLY = re.compile(r"attempts made here: (\d+) done, (\d+) failed, (\d+) deferred")


def run_workers(dbs: Databases, name: str, sim: Sim, workers: int, tmp: Path, tag: str) -> Run:
    """``workers`` processes of ``greenbutton worker --until-idle`` on database ``name``;
    timed, with the CPU of the workers, the simulator and the database's backends (sampled
    while they live: their connections last as long as the workers)."""
    url, state = dbs.url(name), sim.state
    before = stats(sim.reg)
    sim_cpu = proc_cpu(sim.pid) or 0.0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    procs, logs = [], []
    meter = CpuMeter()
    meter.start()
    t0 = time.perf_counter()
    for i in range(workers):
        env = {**os.environ, "GREENBUTTON_HOST_ID": f"bench-{tag}-{i}",
               "GREENBUTTON_RATE_DIR": str(tmp / f"rate-{tag}-{i}")}  # fmt: skip
        log = tmp / f"worker-{tag}-{i}.log"
        cmd = [sys.executable, "-m", "greenbutton", "worker", "--database", url,
               "--simulator", str(state), "--concurrency", "1", "--until-idle"]  # fmt: skip
        with log.open("wb") as out:
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT))
        logs.append(log)
    backend_cpu: dict[int, float] = {}
    while any(p.poll() is None for p in procs):
        for pid in dbs.backends(name):
            if (used := proc_cpu(pid)) is not None:
                backend_cpu[pid] = used
        time.sleep(0.25)
    seconds = time.perf_counter() - t0
    busy = meter.stop()
    after = stats(sim.reg)
    done_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {
        "workers": done_children.ru_utime
        + done_children.ru_stime
        - children.ru_utime
        - children.ru_stime,
        "simulator": (proc_cpu(sim.pid) or sim_cpu) - sim_cpu,
        "postgres": sum(backend_cpu.values()),
    }
    split = []
    for proc, log in zip(procs, logs, strict=True):
        found = _TALLY.search(log.read_text(errors="replace"))
        if proc.returncode != 0 or found is None:
            raise SystemExit(f"worker exited {proc.returncode}:\n{_tail(log)}")
        done, failed, deferred = map(int, found.groups())
        if failed or deferred:
            print(f"  note: {log.name}: {failed} failed, {deferred} deferred", file=sys.stderr)
        split.append(done)
    readings, jobs, done, span = _counts(url)
    if done != jobs:
        raise SystemExit(f"{workers} worker(s): {jobs - done} of {jobs} jobs not done")
    return Run(
        workers=workers,
        seconds=seconds,
        readings=readings,
        jobs=jobs,
        requests=after["requests"] - before["requests"],
        max_per_second=after["max_requests_per_second"],
        responses_429=after["responses_429"] - before["responses_429"],
        busy=busy,
        span=span,
        cpu=cpu,
        split=split,
    )


def fresh_run(dbs: Databases, template: str, sim: Sim, workers: int, tmp: Path, tag: str) -> Run:
    """A run on a new copy of ``template``, dropped afterwards."""
    name = dbs.create(tag, template=template)
    try:
        return run_workers(dbs, name, sim, workers, tmp, tag)
    finally:
        dbs.drop(name)


def warm_up(dbs: Databases, template: str, sim: Sim, tmp: Path) -> None:
    """One untimed worker with nothing to do: fills the bytecode cache and the server's
    caches, so the first timed run pays no more start-up than the others."""
    fresh_run(dbs, template, sim, 1, tmp, "warm")


# -- the ingest table -------------------------------------------------------------------------


def ingest_table(url: str, stored: int, repeat: int) -> str:
    """``bench/ingest_scale.py`` on PostgreSQL, in its own process (its output, verbatim)."""
    cmd = [sys.executable, str(HERE / "ingest_scale.py"), "--backend", "postgresql",
           "--postgres-url", url, "--stored", str(stored), "--repeat", str(repeat)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=HERE.parent, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode not in (0, 1):  # 1: a goal not met, the table is still the figures
        raise SystemExit(f"ingest_scale.py exited {proc.returncode}")
    return proc.stdout.strip()


# -- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few-minute run (smaller sizes)")
    ap.add_argument("--customers", type=int, help="simulator customers (quick 24, full 48)")
    ap.add_argument("--days", type=int, help="days of history to backfill (quick 180, full 360)")
    ap.add_argument("--workers", default="1,2,4", help="worker process counts to time")
    ap.add_argument("--rtt-ms", type=int, default=100, help="modelled network round trip")
    ap.add_argument("--rate-limit", type=float, default=PGE_RATE, help="requests/s, rate row")
    ap.add_argument(
        "--rate-customers", type=int, help="customers in the rate-limit row (quick 8, full 16)"
    )
    ap.add_argument("--rate-days", type=int, help="days in the rate-limit row (quick 30, full 120)")
    ap.add_argument("--stored", type=int, help="ingest_scale.py --stored (quick 1M, full 10M)")
    ap.add_argument("--no-ingest", action="store_true", help="skip the ingest-rate table")
    ap.add_argument(
        "--postgres-url",
        default=os.environ.get("GREENBUTTON_BENCH_POSTGRES_URL")
        or os.environ.get("GREENBUTTON_TEST_POSTGRES_URL"),
    )
    a = ap.parse_args(argv)
    if not a.postgres_url:
        raise SystemExit("set GREENBUTTON_BENCH_POSTGRES_URL (or GREENBUTTON_TEST_POSTGRES_URL)")
    customers = a.customers or (24 if a.quick else 48)
    days = a.days or (180 if a.quick else 360)
    rate_customers = a.rate_customers or (8 if a.quick else 16)
    rate_days = a.rate_days or (30 if a.quick else 120)
    stored = a.stored or (1_000_000 if a.quick else 10_000_000)
    counts = [int(x) for x in a.workers.split(",") if x.strip()]
    # The workers read the token key from the environment they inherit; no outside
    # database URL may leak into them.
    os.environ["GREENBUTTON_SECRET_KEY"] = Fernet.generate_key().decode()
    os.environ.pop("GREENBUTTON_DATABASE_URL", None)
    # Whole days, well inside the simulator's 730-day history, ending a week ago: the
    # same windows (and readings) in every run, whatever the clock does meanwhile.
    until = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    until -= timedelta(days=7)
    since = until - timedelta(days=days)
    rate_since = until - timedelta(days=rate_days)
    load = os.getloadavg()[0]  # other work on the cores skews every figure below

    t_start = time.perf_counter()
    dbs = Databases(a.postgres_url)
    runs: list[Run] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gb-scale-") as tmp_name:
            tmp = Path(tmp_name)
            # Bytecode cached (outside the tree) as an installed package has it: with
            # PYTHONDONTWRITEBYTECODE every process compiled all its modules again, which
            # cost each worker ~1.7 s of CPU at start. The cache is filled before timing.
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
            os.environ["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
            state, reg_path = tmp / "sim", tmp / "sim" / "registration.json"
            print(f"scale: {customers} customers, {days} days ...", file=sys.stderr, flush=True)
            with simulator(state, customers, tmp / "sim.log") as sim:
                reg = sim.reg
                base = dbs.create("authorized")
                authorize(dbs.url(base), reg_path, reg)
                full = dbs.create("tmpl_full", template=base)
                jobs = plan(dbs.url(full), reg_path, since, until, None)
                rate = dbs.create("tmpl_rate", template=base)
                rate_jobs = plan(dbs.url(rate), reg_path, rate_since, until, rate_customers)
                warm_up(dbs, base, sim, tmp)
                _set_latency(reg, a.rtt_ms)
                for n in counts:
                    print(f"scale: {n} worker(s), {jobs} jobs ...", file=sys.stderr, flush=True)
                    runs.append(fresh_run(dbs, full, sim, n, tmp, f"w{n}"))
                    if runs[-1].readings != runs[0].readings:
                        raise SystemExit(
                            f"{n} workers stored {runs[-1].readings} readings, "
                            f"{runs[0].workers} stored {runs[0].readings}"
                        )
            print(f"scale: rate limit {a.rate_limit:g}/s, {rate_jobs} jobs ...",
                  file=sys.stderr, flush=True)  # fmt: skip
            extra = ("--rate-limit", f"{a.rate_limit:g}")
            with simulator(state, customers, tmp / "sim-rate.log", *extra) as sim:
                if sim.reg.get("rate_limit_per_second") != a.rate_limit:
                    raise SystemExit(f"the simulator did not take --rate-limit {a.rate_limit}")
                _set_latency(sim.reg, a.rtt_ms)
                limited = fresh_run(dbs, rate, sim, 2, tmp, "rate")
    finally:
        dbs.drop_all()
    table = "" if a.no_ingest else ingest_table(a.postgres_url, stored, 3)
    total = time.perf_counter() - t_start
    setup = Setup(customers, days, rate_customers, rate_days, load, total)
    print(report(a, setup, runs, limited, table))
    return 0


def _command(a: argparse.Namespace) -> str:
    parts = [COMMAND]
    if a.quick:
        parts.append("--quick")
    for flag, value in (("--customers", a.customers), ("--days", a.days),
                        ("--rate-customers", a.rate_customers), ("--rate-days", a.rate_days),
                        ("--stored", a.stored)):  # fmt: skip
        if value is not None:
            parts.append(f"{flag} {value}")
    if a.workers != "1,2,4":
        parts.append(f"--workers {a.workers}")
    if a.rtt_ms != 100:
        parts.append(f"--rtt-ms {a.rtt_ms}")
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Setup:
    customers: int
    days: int
    rate_customers: int
    rate_days: int
    load: float  # 1-minute load average at the start
    total: float  # seconds the whole bench took


def report(a: argparse.Namespace, setup: Setup, runs: list[Run], limited: Run, table: str) -> str:
    one = runs[0]
    busy = " (**other work was running: figures inflated and noisy**)" if setup.load > 0.5 else ""
    lines = [
        f"## scale: backfill with {', '.join(str(r.workers) for r in runs)} workers on one "
        f"PostgreSQL ({setup.customers} customers, {setup.days} days, RTT {a.rtt_ms} ms)",
        "",
        "| workers | jobs (per worker) | readings | wall s | readings/s | vs 1 worker "
        "| requests | CPU s: workers + simulator + postgres | CPU ms per 1k readings "
        "| machine CPU busy | first-to-last job s |",
        "|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in runs:
        cpu = " + ".join(f"{r.cpu[k]:.1f}" for k in ("workers", "simulator", "postgres"))
        lines.append(
            f"| {r.workers} | {r.jobs} ({', '.join(map(str, r.split))}) | {r.readings:,} "
            f"| {r.seconds:.1f} | {r.rate:,.0f} | {r.rate / one.rate:.2f}x | {r.requests} "
            f"| {cpu} = {r.cpu_total:.1f} | {1e6 * r.cpu_total / r.readings:.0f} "
            f"| {r.busy:.0%} | {r.span:.1f} |"
        )
    lm = limited
    lines += [
        "",
        f"Rate limit on (simulator `--rate-limit {a.rate_limit:g}`; PG&E allows "
        f"{PGE_RATE:g} request/s; {setup.rate_customers} customers, {setup.rate_days} days; "
        f"2 workers sharing the limit through the database): {lm.jobs} jobs "
        f"({', '.join(map(str, lm.split))}), {lm.requests} requests in {lm.seconds:.1f} s = "
        f"**{lm.requests / lm.seconds:.2f} requests/s** (start-up and the idle check "
        f"included), at most {lm.max_per_second} in any second, {lm.responses_429} x 429; "
        f"{lm.rate:,.0f} readings/s.",
        "",
        "Each run: a fresh copy of one template database (customers authorized through the "
        "portal, the backfill planned by `sync --enqueue-only`'s library call), "
        "`greenbutton worker --concurrency 1 --until-idle` processes, each its own "
        "`GREENBUTTON_HOST_ID` and rate-limit folder; wall time from spawning them to the "
        "last exit; every job done and the same readings count in every run (checked). "
        f"Simulator latency faults: {a.rtt_ms} ms per answer, {2 * a.rtt_ms} ms more on a "
        "new connection. CPU: the workers (their rusage), the simulator process and the "
        "database's backends (/proc); machine CPU busy: all cores, other work included. "
        f"1-min load average at start {setup.load:.2f}{busy}; total bench time "
        f"{setup.total:.0f} s; {os.cpu_count()} cores.",
        "",
    ]
    summary = "; ".join(f"workers={r.workers} {r.rate:,.0f} readings/s" for r in runs[:2])
    ratio = runs[1].rate / one.rate if len(runs) > 1 else float("nan")
    lines.append(f"scale: {summary}; ratio {ratio:.2f}")
    for r in runs[2:]:
        lines.append(f"scale: workers={r.workers} {r.rate:,.0f} readings/s; ratio "
                     f"{r.rate / one.rate:.2f}")  # fmt: skip
    if len(runs) > 1:
        steady = ", ".join(f"{one.span / r.span:.2f}" for r in runs[1:])
        lines.append(
            f"steady state (first to last job finished, no start-up or idle check): "
            f"ratios {steady}; fixed cost per run (wall minus that span): "
            + ", ".join(f"{r.seconds - r.span:.1f} s" for r in runs)
        )
    verdict = "met" if ratio >= RATIO else "NOT met"
    lines.append(f"goal: 2 workers >= {RATIO}x 1 worker: {verdict}")
    if table:
        lines += ["", "### ingest rate against table size (bench/ingest_scale.py)", "", table]
    lines += ["", f"command: `{_command(a)}`"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
