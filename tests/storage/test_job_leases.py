"""Ingest jobs are claimed with a lease, so no two processes run the same job at once.

Two ``greenbutton sync`` processes started on the same pending jobs fetch each job's window
once between them (the simulator counts the fetches; its API holds them until both
processes hold a job, so the runs really overlap). A holder that crashed is taken over:
at once when it was a process of this host, after its lease ends otherwise (the clock is
injected); a lease ending further ahead than a lease can (a clock set back) is expired.
SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")

from sqlalchemy import select, text, update

from greenbutton.espi import subscription_of
from greenbutton.espi._paths import split_windows
from greenbutton.simulator import Simulator
from greenbutton.simulator._apps import create_api_app
from greenbutton.simulator._data import Window
from greenbutton.storage import (
    LEASE_SECONDS,
    LEASE_SLACK,
    DatabaseTokenStore,
    Store,
    claim_job,
    create_job,
    fail_job,
    lease_owner,
    sync,
    window_uri,
)
from greenbutton.storage._schema import authorizations, ingest_jobs
from tests.simulator_harness import SimulatorHandle, start_simulator
from tests.web_harness import BASE, connect, running

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
SINCE = TODAY - timedelta(days=40)  # two 30-day windows per usage point, then a catch-up

pytestmark = pytest.mark.usefixtures("secret_key")  # every test: a fresh key


class Fetches:
    """Wraps the simulator's API app: records every windowed fetch (path and query) and
    holds it while ``gate`` is shut."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        self.gate = threading.Event()
        self.gate.set()

    def app(self, sim: Simulator) -> Any:
        inner = create_api_app(sim)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and b"published-min" in scope["query_string"]:
                self.seen.append(_key(f"{scope['path']}?{scope['query_string'].decode()}"))
                while not self.gate.is_set():
                    await anyio.sleep(0.01)
            await inner(scope, receive, send)

        return app

    def count(self, uri: str) -> int:
        return self.seen.count(_key(uri))


def _key(uri: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    parts = urlsplit(uri)
    return parts.path, tuple(sorted(parse_qsl(parts.query)))


@pytest.fixture
def fetches() -> Fetches:
    return Fetches()


@pytest.fixture
def gb(tmp_path: Path, fetches: Fetches) -> Iterator[SimulatorHandle]:
    with start_simulator(tmp_path / "sim", auto_approve="alice", api_app=fetches.app) as handle:
        yield handle


def _pending_windows(gb: SimulatorHandle, store: Store) -> list[tuple[int, str]]:
    """Authorize alice and queue the windows of [SINCE, TODAY) as pending jobs, the way a
    run that was stopped after planning leaves them."""
    tokens = DatabaseTokenStore(store)
    key, token = gb.authorize(tokens)
    with store.connect() as conn:
        auth_id = conn.execute(
            select(authorizations.c.id).where(authorizations.c.key == key)
        ).scalar_one()
    sub = subscription_of(token.resource_uri)
    assert sub is not None
    jobs = []
    with gb.sdk_client(tokens) as client:
        listing = client.usage_points(key)
        for up in listing.usage_points:  # type: ignore[union-attr]
            assert up.id is not None
            for lo, hi in split_windows(SINCE, TODAY, client.profile.window_days):
                uri = window_uri(client, sub, up.id, lo, hi)
                jobs.append((create_job(store, uri, authorization_id=auth_id), uri))
    assert len(jobs) >= 4
    return jobs


def _jobs(store: Store) -> list[tuple[int, str, int, str | None]]:
    j = ingest_jobs
    with store.connect() as conn:
        rows = conn.execute(
            select(j.c.id, j.c.state, j.c.attempts, j.c.lease_owner).order_by(j.c.id)
        ).all()
    return [(int(i), str(s), int(n), o) for i, s, n, o in rows]


def _owners(store: Store) -> set[str]:
    return {o for _, _, _, o in _jobs(store) if o is not None}


def test_two_sync_processes_fetch_each_pending_job_once(
    gb: SimulatorHandle, fetches: Fetches, store: Store, store_url: str, tmp_path: Path
) -> None:
    pending = _pending_windows(gb, store)
    fetches.gate.clear()  # every windowed fetch waits at the custodian until both run
    args = [
        sys.executable, "-m", "greenbutton", "sync", "--simulator", str(gb.state_dir),
        "--database", store_url, "--store", str(tmp_path / "none.json"),
        "--since", SINCE.strftime("%Y-%m-%d"),
    ]  # fmt: skip
    procs = [
        subprocess.Popen(args, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(_owners(store)) < 2 and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.05)
        both_held = len(_owners(store)) == 2  # each process holds a job at the custodian
        fetches.gate.set()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        fetches.gate.set()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, (out.decode(), err.decode())
    assert both_held
    assert [fetches.count(uri) for _, uri in pending] == [1] * len(pending)
    jobs = _jobs(store)
    assert all(
        state == "done" and attempts == 1 and owner is None for _, state, attempts, owner in jobs
    )
    elsewhere = [
        line for out, _ in outputs for line in out.decode().splitlines()
        if line.startswith("jobs in progress elsewhere: ")
    ]  # fmt: skip
    assert elsewhere  # at least one run found a job the other was running


def _held_by(store: Store, job_id: int, owner: str, until: float) -> None:
    """A holder that claimed the job and then vanished without releasing it."""
    j = ingest_jobs
    with store.begin() as conn:
        conn.execute(
            update(j)
            .where(j.c.id == job_id)
            .values(state="running", attempts=1, lease_owner=owner, lease_until=until)
        )


def test_a_crashed_holder_on_another_host_is_taken_over_when_its_lease_ends(
    gb: SimulatorHandle, fetches: Fetches, store: Store
) -> None:
    pending = _pending_windows(gb, store)
    held_id, held_uri = pending[0]
    _held_by(store, held_id, "other-host:4242:0badf00d", time.time() + LEASE_SECONDS)
    tokens = DatabaseTokenStore(store)

    with gb.sdk_client(tokens) as client:
        report = sync(store, client, since=SINCE)
    assert report.ok and report.elsewhere == [held_uri]  # neither failed nor unfinished
    assert held_uri not in report.unfinished and fetches.count(held_uri) == 0
    assert _jobs(store)[0] == (held_id, "running", 1, "other-host:4242:0badf00d")
    assert all(fetches.count(uri) == 1 for _, uri in pending[1:])

    later = time.time() + LEASE_SECONDS + 1  # the lease has ended
    with gb.sdk_client(tokens) as client:
        report = sync(store, client, since=SINCE, clock=lambda: later)
    assert report.ok and report.elsewhere == []
    assert fetches.count(held_uri) == 1
    assert _jobs(store)[0] == (held_id, "done", 2, None)  # the crashed attempt counts too


def _claim_and_die(store_url: str, tmp_path: Path, job_id: int) -> None:
    """A real process claims the job and dies without releasing it."""
    code = (
        "import os, sys; from greenbutton.storage import Store, claim_job, lease_owner; "
        "s = Store.open(sys.argv[1], data_dir=sys.argv[2]); "
        "assert claim_job(s, int(sys.argv[3]), lease_owner(), 600.0); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, store_url, str(tmp_path), str(job_id)], check=True)


def test_a_run_killed_during_the_last_attempt_leaves_the_job_to_be_abandoned(
    gb: SimulatorHandle, fetches: Fetches, store: Store, store_url: str, tmp_path: Path
) -> None:
    pending = _pending_windows(gb, store)
    job_id, uri = pending[0]
    with store.begin() as conn:
        conn.execute(update(ingest_jobs).where(ingest_jobs.c.id == job_id).values(attempts=4))
    _claim_and_die(store_url, tmp_path, job_id)  # its 5th attempt, then killed
    with gb.sdk_client(DatabaseTokenStore(store)) as client:
        report = sync(store, client, since=SINCE, max_attempts=5)
    assert [a.uri for a in report.abandoned] == [uri] and report.elsewhere == []
    assert fetches.count(uri) == 0
    assert _jobs(store)[0] == (job_id, "abandoned", 5, None)


def test_a_crashed_holder_on_this_host_is_taken_over_at_once(
    gb: SimulatorHandle, fetches: Fetches, store: Store, store_url: str, tmp_path: Path
) -> None:
    pending = _pending_windows(gb, store)
    held_id, held_uri = pending[0]
    _claim_and_die(store_url, tmp_path, held_id)
    (owner,) = _owners(store)
    assert owner.split(":")[1] != str(os.getpid())
    alive = lease_owner()  # this (living) process holds another job
    _held_by(store, pending[1][0], alive, time.time() + LEASE_SECONDS)

    with gb.sdk_client(DatabaseTokenStore(store)) as client:
        report = sync(store, client, since=SINCE)
    assert fetches.count(held_uri) == 1
    assert report.elsewhere == [pending[1][1]] and fetches.count(pending[1][1]) == 0
    jobs = {i: (state, n, o) for i, state, n, o in _jobs(store)}
    assert jobs[held_id] == ("done", 2, None)
    assert jobs[pending[1][0]] == ("running", 1, alive)


def test_claims_exclude_each_other_and_a_clock_set_back_expires_the_lease(
    store: Store,
) -> None:
    job = create_job(store, "https://dc.example/espi/1_1/resource/Batch/Subscription/1")
    a, b, t = lease_owner(), lease_owner(), 1_800_000_000.0
    assert a != b
    assert claim_job(store, job, a, 60.0, now=t)
    assert not claim_job(store, job, b, 60.0, now=t + 59.0)  # live lease
    assert claim_job(store, job, b, 60.0, now=t + 60.0)  # ended
    assert not claim_job(store, job, a, 60.0, now=t + 61.0)
    # b's lease ends at t + 120; a clock set back an hour sees it end more than one
    # lease length ahead, which no live lease can: expired, not held for good
    assert not claim_job(store, job, a, 60.0, now=t + 60.0)  # exactly one lease ahead
    # a claim whose `now` was read before it waited on a lock: a little more than a lease
    # ahead is still live
    assert not claim_job(store, job, a, 60.0, now=t + 60.0 - LEASE_SLACK)
    assert claim_job(store, job, a, 60.0, now=t - 3600.0)
    with store.connect() as conn:
        row = conn.execute(
            text("SELECT state, attempts, lease_owner, lease_until FROM ingest_jobs")
        ).one()
    assert tuple(row) == ("running", 3, a, t - 3600.0 + 60.0)

    fail_job(store, job, "taken over since", owner=b)  # b no longer holds it: no change
    assert _jobs(store) == [(job, "running", 3, a)]
    fail_job(store, job, "boom", owner=a)  # the holder's failure releases the lease
    assert _jobs(store) == [(job, "failed", 3, None)]
    assert claim_job(store, job, b, 60.0, now=t)

    with store.begin() as conn:
        conn.execute(text("UPDATE ingest_jobs SET state = 'done'"))
    assert not claim_job(store, job, b, 60.0, now=t + 1000.0)  # done: never claimed


@pytest.fixture
def web_gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(tmp_path / "sim", auto_approve="alice", third_party_url=BASE) as h:
        yield h


@pytest.mark.anyio
async def test_the_web_worker_skips_a_job_another_process_holds(
    web_gb: SimulatorHandle, tmp_path: Path
) -> None:
    gb = web_gb
    async with running(gb, tmp_path, job_poll_seconds=60) as (web, browser, counting):
        await connect(gb, browser)
        (grant,) = gb.sim.state.grants.values()
        end = int(time.time()) // 86400 * 86400
        uri = gb.sim.notifier.prepare(
            f"Batch/Subscription/{grant.subscription_id}",
            Window(published_min=end - 60 * 86400, published_max=end - 40 * 86400),
        )
        with web.store.connect() as conn:
            auth_id = conn.execute(
                select(authorizations.c.id).where(authorizations.c.kind == "access")
            ).scalar_one()
        job = create_job(web.store, uri, authorization_id=auth_id)
        other = lease_owner()  # a live process (this one), as a `greenbutton sync` would be
        assert claim_job(web.store, job, other, LEASE_SECONDS)
        sent = len(counting.urls)

        await web.run_jobs()
        assert uri not in counting.urls[sent:]
        assert (job, "running", 1, other) in _jobs(web.store)

        fail_job(web.store, job, "the other process gave up", owner=other)
        await web.run_jobs()
        assert counting.urls[sent:].count(uri) == 1
        assert (job, "done", 2, None) in _jobs(web.store)
