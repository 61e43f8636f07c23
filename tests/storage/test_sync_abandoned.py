"""An abandoned first window comes back by itself (SECURITY R46, R64): the catch-up starts
after the stored data and holes lie between stored readings, so nothing else would ask
for it again. Real mTLS simulator, SQLite and PostgreSQL; the wall clock is injected."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")

from sqlalchemy import select

from greenbutton.storage import DatabaseTokenStore, Store, export_readings, sync
from greenbutton.storage._schema import ingest_jobs
from tests.simulator_harness import SimulatorHandle
from tests.storage import test_sync
from tests.storage.test_sync import SINCE, _job_states, _JumpingClock, authorize, client_for, run

# the fixtures of the sync tests: SQLite and PostgreSQL, the simulator, a fresh key
gb = test_sync.gb  # the store fixture is conftest's
pytestmark = pytest.mark.usefixtures("secret_key")

DAY = 86400.0


def _first_window_fails(
    gb: SimulatorHandle,
) -> tuple[Callable[[int, int, str], None], Callable[[float], None]]:
    """Hooks for ``sync``: the first planned job's every attempt answers 503 (4 requests:
    the client's own retries), every other job succeeds. Round 0 starts at the first
    progress tick; only the failing job is left for the later rounds (after ``sleep``)."""

    def progress(done: int, total: int, _what: str) -> None:
        if total and not done and not gb.sim.faults.status_burst:
            gb.sim.faults.status_burst = 4

    def sleep(_seconds: float) -> None:
        gb.sim.faults.status_burst = 4

    return progress, sleep


def _job(store: Store, uri: str) -> tuple[str, int, float]:
    j = ingest_jobs
    with store.connect() as conn:
        rows = conn.execute(
            select(j.c.state, j.c.attempts, j.c.updated_at).where(j.c.resource_uri == uri)
        ).all()
    assert len(rows) == 1  # one row per window: a re-request reuses it
    state, attempts, updated = rows[0]
    return str(state), int(attempts), float(updated)


@pytest.fixture
def clean_readings(gb: SimulatorHandle, store: Store, tmp_path: Path) -> Iterator[list[object]]:
    """What a clean run stores (its own database, a copy of the same token)."""
    tokens = DatabaseTokenStore(store)
    key = authorize(gb, tokens)
    clean = Store.open(f"sqlite:///{tmp_path / 'clean.db'}", data_dir=tmp_path)
    token = tokens.load(key)
    assert token is not None
    DatabaseTokenStore(clean).save(key, token)
    with client_for(gb, DatabaseTokenStore(clean)) as client:
        assert sync(clean, client, since=SINCE).ok
    expected: list[object] = sorted(export_readings(clean))
    clean.close()
    yield expected


def test_an_abandoned_first_window_is_asked_for_again_once_a_day_without_failing_runs(
    gb: SimulatorHandle,
    store: Store,
    store_url: str,
    tmp_path: Path,
    clean_readings: list[object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from greenbutton.storage import _jobs, _sync

    tokens = DatabaseTokenStore(store)
    gb.sim.faults.retry_after = 0  # the 503s say "retry at once": the test never waits
    progress, sleep = _first_window_fails(gb)

    # run 1: the first window of the first usage point fails 5 times -> abandoned, run fails
    with client_for(gb, tokens) as client:
        report = sync(store, client, since=SINCE, progress=progress, sleep=sleep)
    gb.sim.faults.status_burst = 0
    assert not report.ok and not report.unfinished and not report.skipped
    (given_up,) = report.abandoned
    assert given_up.attempts == 5 and "503" in (given_up.error or "")
    window = given_up.uri
    assert "published-min=" + SINCE.strftime("%Y-%m-%dT%H:%M:%SZ").replace(":", "%3A") in window
    stored = sorted(export_readings(store))
    assert stored != clean_readings and set(stored) < set(clean_readings)
    state, _, abandoned_at = _job(store, window)
    assert state == "abandoned"

    # run 2, at once: the window is not due; nothing fails, nothing asks for it
    with client_for(gb, tokens) as client:
        again = sync(store, client)
    assert again.ok and again.retried == 0 and not again.still_abandoned
    assert _job(store, window) == ("abandoned", 5, abandoned_at)
    assert sorted(export_readings(store)) == stored

    # run 3, a day later, the custodian still failing that window: asked for again (same
    # row, fresh attempts), failing again is reported but does not fail the run
    clock = _JumpingClock()
    clock.offset = DAY + 3600
    for module in (_sync, _jobs):
        monkeypatch.setattr(module, "time", clock)
    with client_for(gb, tokens) as client:
        third = sync(store, client, progress=progress, sleep=sleep)
    gb.sim.faults.status_burst = 0
    assert third.ok and third.retried == 1 and not third.abandoned
    assert [(j.uri, j.attempts) for j in third.still_abandoned] == [(window, 5)]
    state, attempts, updated = _job(store, window)
    assert (state, attempts) == ("abandoned", 5) and updated > abandoned_at + DAY

    # run 4 (CLI): the clock is right again, so the job was last updated "in the future":
    # due at once, not in a day; the custodian answers and the data is complete
    for module in (_sync, _jobs):
        monkeypatch.setattr(module, "time", time)
    common = (
        "--simulator", str(gb.state_dir), "--database", store_url,
        "--store", str(tmp_path / "none.json"),
    )  # fmt: skip
    fourth = run("sync", *common)
    assert fourth.exit_code == 0, fourth.output
    assert "abandoned windows asked for again: 1" in fourth.stdout
    assert "failed again" not in fourth.stderr
    assert sorted(export_readings(store)) == clean_readings
    assert _job(store, window)[0] == "done"
    assert set(_job_states(store)) == {"done"}
    (account,) = json.loads(run("accounts", "--database", store_url, "--json").stdout)
    assert account["abandoned"] == []

    # run 5: nothing left to ask for again
    with client_for(gb, tokens) as client:
        fifth = sync(store, client)
    assert fifth.ok and fifth.retried == 0 and fifth.gaps == 0


def test_a_window_failing_again_is_asked_for_once_per_period_not_every_run(
    gb: SimulatorHandle, store: Store, clean_readings: list[object]
) -> None:
    # retry_abandoned_after=0: due on every run; a large value: never within this test
    tokens = DatabaseTokenStore(store)
    gb.sim.faults.retry_after = 0
    progress, sleep = _first_window_fails(gb)
    with client_for(gb, tokens) as client:
        first = sync(store, client, since=SINCE, progress=progress, sleep=sleep)
    gb.sim.faults.status_burst = 0
    (given_up,) = first.abandoned
    assert not first.ok

    with client_for(gb, tokens) as client:
        later = sync(store, client, retry_abandoned_after=timedelta(days=3).total_seconds())
        assert later.ok and later.retried == 0
        now = sync(store, client, retry_abandoned_after=0)
    assert now.ok and now.retried == 1 and not now.still_abandoned
    assert _job(store, given_up.uri)[0] == "done"
    assert sorted(export_readings(store)) == clean_readings
