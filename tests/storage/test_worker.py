"""``greenbutton worker`` (DESIGN 3.7), as real processes against the simulator over mTLS.

* Two workers playing two machines (``GREENBUTTON_HOST_ID``, a rate-limit folder each) on
  one PostgreSQL database run every planned job exactly once, and together stay inside the
  simulator's ``--rate-limit``: 0 x 429, never more than R arrivals in a second (the limit
  lives in the database; with only their folders they would send about 2 x R).
* A worker killed with ``kill -9`` in the middle of a job loses nothing: another worker
  sees its heartbeat stop, takes the job over and the database ends equal to a clean
  ``sync`` of the same windows.
* On SQLite ``worker --until-idle`` runs the same jobs in its own process.
* The periodic plans are deferred once per tick however many workers run.
* ``--metrics-port`` serves ``greenbutton_jobs{state}`` while it works.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest

pytest.importorskip("procrastinate", reason="the workers extra is not installed")

from sqlalchemy import text

from greenbutton.storage import DatabaseTokenStore, Store, sync
from tests.conftest import BITING
from tests.simulator_harness import SimulatorHandle, start_simulator
from tests.storage_harness import checksums, postgres_url
from tests.worker_harness import finish, free_port, start_worker

pytestmark = pytest.mark.usefixtures("secret_key")

RATE = 5.0
UNTIL = datetime(2026, 6, 1, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=400)  # 15 windows of the simulator's 28 days
SIM_NOW = datetime(2026, 12, 3, 11, 34, tzinfo=UTC).timestamp()  # its history: 730 days back


@pytest.fixture
def gb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorHandle]:
    monkeypatch.setenv("GREENBUTTON_RATE_DIR", str(tmp_path / "rate-test"))
    config: dict[str, Any] = {"auto_approve": "alice", "customers": 1, "rate_limit": RATE}
    with start_simulator(tmp_path / "sim", **config) as handle:
        handle.sim.data.clock = lambda: SIM_NOW
        yield handle


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from postgres_url()


def _stats(gb: SimulatorHandle) -> dict[str, int]:
    with gb.api_client() as api:
        stats: dict[str, int] = api.get("/_simulator/stats").json()
    return stats


def _reference(gb: SimulatorHandle, tmp_path: Path) -> Any:
    """What a clean ``sync`` of the same windows stores."""
    clean = Store.open(f"sqlite:///{tmp_path / 'clean.db'}", data_dir=tmp_path / "clean")
    tokens = DatabaseTokenStore(clean)
    gb.authorize(tokens)
    with gb.sdk_client(tokens) as client:
        report = sync(clean, client, since=SINCE, until=UNTIL)
    assert report.ok and report.jobs_run >= 10, report
    expected = checksums(clean)
    clean.close()
    return expected


def _planned(gb: SimulatorHandle, url: str, tmp_path: Path, *, plan: bool = True) -> Store:
    """The database with alice's grant and the windows planned (``sync --enqueue-only``)."""
    store = Store.open(url, data_dir=tmp_path / "db")
    gb.authorize(DatabaseTokenStore(store))
    if plan:
        _plan(gb, store)
    return store


def _plan(gb: SimulatorHandle, store: Store) -> None:
    with gb.sdk_client(DatabaseTokenStore(store)) as client:
        report = sync(store, client, since=SINCE, until=UNTIL, enqueue_only=True)
    assert report.planned is not None and report.planned >= 10


def _jobs(store: Store) -> list[tuple[int, str, int, str | None]]:
    with store.connect() as conn:
        rows = conn.execute(
            text("SELECT id, state, attempts, error FROM ingest_jobs ORDER BY id")
        ).all()
    return [(int(i), str(s), int(n), e) for i, s, n, e in rows]


def _running(store: Store, host: str) -> int | None:
    with store.connect() as conn:
        found = conn.execute(
            text("SELECT id FROM ingest_jobs WHERE state = 'running' AND lease_owner LIKE :h"),
            {"h": f"{host}:%"},
        ).scalar()
    return None if found is None else int(found)


def _registered(store: Store) -> int:
    """procrastinate workers alive in the database (0 before the first made its tables)."""
    try:
        with store.connect() as conn:
            return int(
                conn.execute(text("SELECT count(*) FROM procrastinate_workers")).scalar_one()
            )
    except Exception:
        return 0


def _tally(out: str) -> dict[str, int]:
    """``attempts made here: 7 done, 0 failed, 0 deferred`` from a worker's output."""
    line = next(x for x in out.splitlines() if x.startswith("attempts made here: "))
    pairs = (part.split() for part in line.removeprefix("attempts made here: ").split(", "))
    return {kind: int(n) for n, kind in pairs}


def test_two_workers_on_one_database_share_the_rate_limit_and_run_each_job_once(
    gb: SimulatorHandle, pg_url: str, tmp_path: Path
) -> None:
    expected = _reference(gb, tmp_path)
    store = _planned(gb, pg_url, tmp_path, plan=False)
    before = _stats(gb)
    workers = [start_worker(gb, pg_url, tmp_path, host, "--concurrency", "2")
               for host in ("machine-a", "machine-b")]  # fmt: skip
    deadline = time.monotonic() + 60
    while _registered(store) < 2:  # both machines up before there is work
        assert time.monotonic() < deadline and all(w.poll() is None for w in workers)
        time.sleep(0.1)
    _plan(gb, store)  # as `sync --enqueue-only` would, while they run
    deadline = time.monotonic() + 120
    while any(state != "done" for _, state, _, _ in _jobs(store)):
        assert time.monotonic() < deadline and all(w.poll() is None for w in workers)
        time.sleep(0.2)
    for w in workers:
        w.send_signal(signal.SIGTERM)
    tallies = [_tally(finish(w, timeout=60)) for w in workers]
    after = _stats(gb)

    jobs = _jobs(store)
    assert all(attempts == 1 for _, _, attempts, _ in jobs), jobs  # each fetched once
    assert sum(t["done"] for t in tallies) == len(jobs)
    assert all(t["done"] >= 1 and t["failed"] == t["deferred"] == 0 for t in tallies), tallies
    assert after["responses_429"] == before["responses_429"] == 0
    assert after["requests"] - before["requests"] >= len(jobs)
    assert after["max_requests_per_second"] <= RATE
    with store.connect() as conn:
        holders = conn.execute(text("SELECT holder FROM shared_limits")).scalars().all()
    assert holders and set(holders) <= {"machine-a", "machine-b"}
    assert checksums(store) == expected
    store.close()


def test_a_worker_killed_mid_job_loses_nothing(
    gb: SimulatorHandle, pg_url: str, tmp_path: Path
) -> None:
    expected = _reference(gb, tmp_path)
    store = _planned(gb, pg_url, tmp_path)
    gb.sim.faults.latency_ms = 1500  # every request a slow one: a kill lands mid-job
    first = start_worker(gb, pg_url, tmp_path, "machine-a")
    deadline = time.monotonic() + 60
    while (held := _running(store, "machine-a")) is None:
        assert time.monotonic() < deadline and first.poll() is None, "no job started"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    gb.sim.faults.latency_ms = 0

    second = start_worker(gb, pg_url, tmp_path, "machine-b", "--until-idle")
    out = finish(second)

    jobs = _jobs(store)
    assert all(state == "done" for _, state, _, _ in jobs), (jobs, out)
    taken_over = {i: n for i, _, n, _ in jobs}[held]
    assert taken_over == 2  # the killed attempt counts, as a crash's does
    assert checksums(store) == expected
    store.close()


def test_on_sqlite_the_worker_runs_the_jobs_in_its_own_process(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    expected = _reference(gb, tmp_path)
    url = f"sqlite:///{tmp_path / 'gb.db'}"
    _planned(gb, url, tmp_path).close()
    finish(start_worker(gb, url, tmp_path, "one", "--concurrency", "2", "--until-idle"))
    store = Store.open(url, data_dir=tmp_path / "db")
    jobs = _jobs(store)
    assert jobs and all(state == "done" and n == 1 for _, state, n, _ in jobs), jobs
    assert checksums(store) == expected
    assert _stats(gb)["responses_429"] == 0
    store.close()


def test_sigterm_lets_the_running_job_finish(
    gb: SimulatorHandle, pg_url: str, tmp_path: Path
) -> None:
    store = _planned(gb, pg_url, tmp_path)
    gb.sim.faults.latency_ms = 1000
    proc = start_worker(gb, pg_url, tmp_path, "machine-a")  # no --until-idle: runs until stopped
    deadline = time.monotonic() + 60
    while (held := _running(store, "machine-a")) is None:
        assert time.monotonic() < deadline and proc.poll() is None, "no job started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out = finish(proc, timeout=60)
    assert "SIGTERM" in out
    states = {i: s for i, s, _, _ in _jobs(store)}
    assert states[held] == "done", out  # finished, not left running
    assert "running" not in states.values()
    assert "pending" in states.values()  # and no new job was taken after the signal
    store.close()


def test_a_periodic_plan_is_deferred_once_however_many_workers_run(
    gb: SimulatorHandle, pg_url: str, tmp_path: Path
) -> None:
    """Both periodic plans, deferred for the same tick by two workers' schedulers, are one
    job each; a worker then runs the plan and the jobs it planned."""
    import anyio
    from procrastinate.periodic import PeriodicDeferrer

    from greenbutton.storage import Worker, ensure_queue_schema

    store = Store.open(pg_url, data_dir=tmp_path / "db")
    tokens = DatabaseTokenStore(store)
    gb.authorize(tokens)
    assert ensure_queue_schema(store) and not ensure_queue_schema(store)
    tick = datetime(2026, 12, 3, 12, 30, tzinfo=UTC).timestamp()

    async def defer_from(worker: Worker) -> None:
        app = worker._app()
        async with app.open_async():
            due = [(task, round(task.croniter.get_prev(ret_type=float, start_time=tick)))
                   for task in app.periodic_registry.periodic_tasks.values()]  # fmt: skip
            assert len(due) == 2
            await PeriodicDeferrer(registry=app.periodic_registry).defer_jobs(due)

    with gb.sdk_client(tokens) as client:
        for _ in range(2):  # two machines' schedulers, the same tick
            anyio.run(defer_from, Worker(store, client))
    with store.connect() as conn:
        names = conn.execute(text("SELECT task_name FROM procrastinate_jobs")).scalars().all()
    assert sorted(names) == ["greenbutton.catch_up", "greenbutton.retry_abandoned"]

    out = finish(start_worker(gb, pg_url, tmp_path, "machine-a", "--until-idle"))
    jobs = _jobs(store)
    assert jobs and all(state == "done" for _, state, _, _ in jobs), (jobs, out)
    with store.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM procrastinate_jobs")).scalar_one()
    assert left == 0  # the plans ran (and succeeded: successful tasks are deleted)
    store.close()


def _job_series(port: int) -> dict[str, float]:
    """``greenbutton_jobs{state="..."}`` from the worker's /metrics (empty until it serves)."""
    try:
        with httpx2.Client(trust_env=False, timeout=5) as http:
            body = http.get(f"http://127.0.0.1:{port}/metrics").text
    except httpx2.TransportError:
        return {}
    found = {}
    for line in body.splitlines():
        if line.startswith('greenbutton_jobs{state="'):
            name, value = line.split(" ")
            found[name.split('"')[1]] = float(value)
    return found


def test_metrics_port_serves_the_job_counts_while_the_worker_runs(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'gb.db'}"
    store = _planned(gb, url, tmp_path)
    total = len(_jobs(store))
    port = free_port()
    proc = start_worker(gb, url, tmp_path, "one", "--metrics-port", str(port))
    deadline = time.monotonic() + 120
    seen: list[dict[str, float]] = []
    while not seen or seen[-1].get("done") != total:
        assert time.monotonic() < deadline and proc.poll() is None, seen[-1:]
        if series := _job_series(port):
            seen.append(series)
        time.sleep(0.2)
    assert seen[-1]["pending"] == seen[-1]["failed"] == seen[-1]["abandoned"] == 0
    assert seen[0]["done"] < total  # it counted while the jobs ran, not once at the end
    with httpx2.Client(trust_env=False, timeout=5) as http:
        body = http.get(f"http://127.0.0.1:{port}/metrics").text
    # the worker's own client too, as serve's /metrics shows it
    assert 'greenbutton_circuit_state{state="closed"} 1.0' in body
    assert "greenbutton_client_certificate_expiry_seconds" in body
    proc.send_signal(signal.SIGINT)
    finish(proc, timeout=30)
    store.close()


@pytest.mark.parametrize("now", BITING, ids=str)
def test_the_sqlite_loop_plans_at_the_cron_times(now: datetime) -> None:
    """The in-process loop's next plan is the next time procrastinate's cron would fire:
    within a day, on the minute, later than now (month, year and leap-day ends included)."""
    from croniter import croniter

    from greenbutton.storage._queue import CATCH_UP_AT, CATCH_UP_CRON, _next_daily

    ts = now.timestamp()
    tick = _next_daily(CATCH_UP_AT, ts)
    assert ts < tick <= ts + 86400
    assert tick == croniter(CATCH_UP_CRON, ts).get_next(float)
    assert _next_daily(CATCH_UP_AT, tick) == tick + 86400  # at the tick: the next day's


def test_sync_on_postgresql_counts_in_the_same_shared_limit(
    gb: SimulatorHandle, pg_url: str, tmp_path: Path
) -> None:
    """``greenbutton sync`` from cron on a third machine draws from the same slots."""
    store = _planned(gb, pg_url, tmp_path, plan=False)
    env = {**os.environ, "GREENBUTTON_HOST_ID": "cron-box",
           "GREENBUTTON_RATE_DIR": str(tmp_path / "rate-cron")}  # fmt: skip
    command = [sys.executable, "-m", "greenbutton", "sync", "--simulator", str(gb.state_dir),
               "--database", pg_url, "--store", str(tmp_path / "none.json"),
               "--since", "2026-05-01"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with store.connect() as conn:
        rows = conn.execute(text("SELECT holder, version FROM shared_limits")).all()
    assert len(rows) == 1 and rows[0][0] == "cron-box" and rows[0][1] >= 2, rows
    assert not (tmp_path / "rate-cron").exists()  # not the machine's state folder
    store.close()
