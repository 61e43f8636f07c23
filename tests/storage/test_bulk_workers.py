"""A Bulk file ingested by every worker (issue 10.4), as real processes over real TLS.

The simulator serves a Bulk file of several customers (the 202 and the BatchList
notification naming ``Batch/Bulk/{id}?correlationID=``); its URI is one engine job. The
worker that fetches it splits it by usage point into parts stored in the database
(``bulk_parts``), and:

* on PostgreSQL two ``greenbutton worker`` processes playing two machines ingest the parts
  side by side, both of them (each part row names who stored it), and the readings equal
  ``storage.ingest_bulk`` of the same file into a clean database; the job is done with the
  whole file's hash and every reading counted, and the parts' bodies are dropped;
* a worker killed with ``kill -9`` in the middle of a part loses nothing: the other worker
  sees its heartbeat stop, takes the part over, and the database ends equal to a clean run;
* on SQLite ``worker --until-idle`` ingests the parts in its own process;
* in one process, on both back ends: a malformed file gets no parts, a job whose parts are
  pending is no job to fetch, and a part that cannot be stored gives the job up after its
  attempts (its error kept, its parts deleted);
* r0009 upgrades and downgrades on both back ends.

Who holds a part at a given moment is made certain, not left to timing: the test holds a
real lock on ``usage_points`` (every part's first write), so a worker that took a part
waits in it until the test lets go.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")

from sqlalchemy import inspect, text

from greenbutton import ParseError, parse
from greenbutton.models import DEFAULT_COST_SCALE
from greenbutton.oauth import InMemoryTokenStore
from greenbutton.storage import (
    MAX_ATTEMPTS,
    JobRunner,
    Store,
    due_jobs,
    due_parts,
    enqueue,
    ingest_bulk,
)
from tests.simulator_harness import SimulatorHandle, start_simulator
from tests.storage.test_bulk_ingest import SIM_NOW, fetch_bulk
from tests.storage_harness import checksums, postgres_url
from tests.worker_harness import finish, start_worker

pytestmark = pytest.mark.usefixtures("secret_key")

CUSTOMERS = 6
#: Readings per part asked of the workers: about one customer's 20 days, so several parts.
PART_READINGS = 2000


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(tmp_path / "sim", customers=CUSTOMERS, history_days=20) as handle:
        handle.sim.data.clock = lambda: SIM_NOW
        yield handle


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from postgres_url()


def _bulk_job(gb: SimulatorHandle, store: Store, tmp_path: Path) -> tuple[int, Any, int]:
    """The Bulk URI as one engine job in ``store``; (its id, the checksums of
    ``ingest_bulk`` of the same file into a clean database, the file's readings)."""
    uri, body = fetch_bulk(gb)
    with gb.sdk_client(InMemoryTokenStore()) as client:
        namespace = client.profile.name
    clean = Store.open(f"sqlite:///{tmp_path / 'clean.db'}", data_dir=tmp_path / "clean")
    ingest_bulk(clean, body, namespace=namespace)
    expected = checksums(clean)
    clean.close()
    job = enqueue(store, uri)
    assert job is not None
    return job.id, expected, parse(body).reading_count


def _worker(
    gb: SimulatorHandle, url: str, tmp_path: Path, host: str, *extra: str,
    part_readings: int = PART_READINGS,
) -> subprocess.Popen[str]:  # fmt: skip
    return start_worker(gb, url, tmp_path, host, "--bulk-part-readings", str(part_readings), *extra)


def _job(store: Store, job_id: int) -> tuple[str, int | None, str | None]:
    with store.connect() as conn:
        state, rows, digest = conn.execute(
            text("SELECT state, rows, payload_hash FROM ingest_jobs WHERE id = :i"),
            {"i": job_id},
        ).one()
    return str(state), rows, digest


def _parts(store: Store) -> list[dict[str, Any]]:
    with store.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, part, state, rows, attempts, done_by, lease_owner, file_sha256,"
                " body IS NULL AS dropped FROM bulk_parts ORDER BY part"
            )
        ).mappings()
        return [dict(r) for r in rows]


def _wait(what: str, ready: Any, procs: list[subprocess.Popen[str]], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := ready()):
        alive = all(p.poll() is None for p in procs)
        assert time.monotonic() < deadline and alive, f"waiting for {what}"
        time.sleep(0.05)
    return got


def _registered(store: Store) -> int:
    try:
        with store.connect() as conn:
            return int(
                conn.execute(text("SELECT count(*) FROM procrastinate_workers")).scalar_one()
            )
    except Exception:
        return 0


class _UsagePointsLock:
    """A real PostgreSQL lock on ``usage_points`` that lets readers through and makes
    every writer (a part's first batch) wait until :meth:`release`."""

    def __init__(self, store: Store) -> None:
        self.conn = store.engine.connect()
        self.trans = self.conn.begin()
        self.conn.execute(text("LOCK TABLE usage_points IN SHARE ROW EXCLUSIVE MODE"))

    def release(self) -> None:
        if self.trans.is_active:
            self.trans.commit()
        self.conn.close()


def _held_by(store: Store, host: str) -> list[int]:
    """Parts a live lease of ``host`` holds."""
    mine = f"{host}:"
    return [
        p["id"] for p in _parts(store)
        if p["state"] == "running" and str(p["lease_owner"]).startswith(mine)
    ]  # fmt: skip


def _assert_done(store: Store, job_id: int, readings: int, expected: Any) -> list[dict[str, Any]]:
    parts = _parts(store)
    assert len(parts) > 2, parts  # split: several parts, not one process's whole file
    assert all(p["state"] == "done" and p["dropped"] for p in parts), parts
    state, rows, digest = _job(store, job_id)
    assert (state, rows) == ("done", readings)
    assert sum(p["rows"] for p in parts) == readings
    assert digest is not None and {p["file_sha256"] for p in parts} == {digest}
    assert checksums(store) == expected
    return parts


def test_two_workers_ingest_the_parts_of_one_bulk_file_both_of_them(
    gb: SimulatorHandle, pg_url: str, tmp_path: Path
) -> None:
    store = Store.open(pg_url, data_dir=tmp_path / "db")
    job_id, expected, readings = _bulk_job(gb, store, tmp_path)
    workers = [_worker(gb, pg_url, tmp_path, host) for host in ("machine-a", "machine-b")]
    _wait("both workers", lambda: _registered(store) >= 2, workers)
    lock = _UsagePointsLock(store)
    try:  # whoever fetched and split it, each machine now holds a part, waiting to write
        _wait("a part each", lambda: _held_by(store, "machine-a") and _held_by(store, "machine-b"),
              workers)  # fmt: skip
    finally:
        lock.release()
    _wait("the job done", lambda: _job(store, job_id)[0] == "done", workers)
    for w in workers:
        w.send_signal(signal.SIGTERM)
    outs = [finish(w, timeout=60) for w in workers]

    parts = _assert_done(store, job_id, readings, expected)
    hosts = {str(p["done_by"]).split(":")[0] for p in parts}
    assert hosts == {"machine-a", "machine-b"}, parts
    assert all(p["attempts"] == 1 for p in parts), parts  # each part ingested once
    with store.connect() as conn:
        attempts = conn.execute(
            text("SELECT attempts FROM ingest_jobs WHERE id = :i"), {"i": job_id}
        ).scalar_one()
    assert attempts == 1, outs  # the file was fetched once
    store.close()


def test_a_worker_killed_mid_part_loses_nothing(
    gb: SimulatorHandle, pg_url: str, tmp_path: Path
) -> None:
    store = Store.open(pg_url, data_dir=tmp_path / "db")
    job_id, expected, readings = _bulk_job(gb, store, tmp_path)
    first = _worker(gb, pg_url, tmp_path, "machine-a")
    _wait("the worker", lambda: _registered(store) >= 1, [first])
    lock = _UsagePointsLock(store)
    try:
        held = _wait("a part in progress", lambda: _held_by(store, "machine-a"), [first])[0]
        first.send_signal(signal.SIGKILL)  # in the middle of the part: waiting to write it
        first.communicate()
    finally:
        lock.release()

    second = _worker(gb, pg_url, tmp_path, "machine-b", "--until-idle")
    out = finish(second, timeout=180)

    parts = _assert_done(store, job_id, readings, expected)
    taken_over = next(p for p in parts if p["id"] == held)
    assert taken_over["attempts"] == 2, (parts, out)  # the killed attempt counts
    assert str(taken_over["done_by"]).startswith("machine-b:")
    store.close()


def test_on_sqlite_the_worker_ingests_the_parts_in_its_own_process(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'gb.db'}"
    store = Store.open(url, data_dir=tmp_path / "db")
    job_id, expected, readings = _bulk_job(gb, store, tmp_path)
    store.close()
    out = finish(_worker(gb, url, tmp_path, "one", "--concurrency", "2", "--until-idle"))
    store = Store.open(url, data_dir=tmp_path / "db")
    parts = _assert_done(store, job_id, readings, expected)
    assert {str(p["done_by"]).split(":")[0] for p in parts} == {"one"}
    assert f"{len(parts)} parts" in out  # the tally: every part ingested here
    store.close()


def test_a_worker_without_many_readings_ingests_the_bulk_file_whole(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    """A file within one part is not split: the fetching worker stores it, as before."""
    url = f"sqlite:///{tmp_path / 'gb.db'}"
    store = Store.open(url, data_dir=tmp_path / "db")
    job_id, expected, readings = _bulk_job(gb, store, tmp_path)
    store.close()
    finish(_worker(gb, url, tmp_path, "one", "--until-idle", part_readings=readings))
    store = Store.open(url, data_dir=tmp_path / "db")
    assert _parts(store) == []
    assert _job(store, job_id)[:2] == ("done", readings)
    assert checksums(store) == expected
    store.close()


@pytest.fixture(scope="module")
def bulk_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    """(the notified Bulk URI, its body), fetched once for the in-process tests."""
    with start_simulator(tmp_path_factory.mktemp("sim"), customers=CUSTOMERS,
                         history_days=20) as handle:  # fmt: skip
        handle.sim.data.clock = lambda: SIM_NOW
        return fetch_bulk(handle)


def _runner(store: Store, uri: str) -> JobRunner:
    return JobRunner(store, resource_url=uri.split("/Batch/")[0], namespace="sim",
                     cost_scale=DEFAULT_COST_SCALE, part_readings=PART_READINGS)  # fmt: skip


def test_a_malformed_bulk_file_gets_no_parts(store: Store, bulk_file: tuple[str, bytes]) -> None:
    uri, body = bulk_file
    cut = body.rfind(b"<espi:value>")
    cut = cut if cut > 0 else body.rfind(b"<value>")
    bad = body[:cut] + body[cut:].replace(b"value>", b"valu>", 1)
    runner = _runner(store, uri)
    job = enqueue(store, uri)
    assert job is not None and runner.claim(job)
    with pytest.raises(ParseError):
        runner.store_body(job, bad)
    assert _parts(store) == []
    assert _job(store, job.id)[0] == "running"  # the attempt's failure is the caller's to record


def test_a_job_whose_parts_are_pending_is_no_job_to_fetch(
    store: Store, bulk_file: tuple[str, bytes]
) -> None:
    uri, body = bulk_file
    runner = _runner(store, uri)
    job = enqueue(store, uri)
    assert job is not None and runner.claim(job)
    outcome = runner.store_body(job, body)
    assert outcome.done and len(outcome.parts) > 2 and outcome.rows == 0
    assert [p.id for p in due_parts(store)] == list(outcome.parts)
    assert due_jobs(store) == []  # its work is its parts: not fetched again
    again = enqueue(store, uri)  # a duplicate notification: the same open job
    assert again is not None and again.id == job.id and not again.new
    assert _job(store, job.id)[0] == "running"  # a state every reader knows
    for part_id in outcome.parts:
        got = runner.run_part(part_id)
        assert got is not None and got.done
    assert got.job_done and _job(store, job.id)[:2] == ("done", parse(body).reading_count)
    assert due_parts(store) == [] and runner.run_part(outcome.parts[0]) is None


def test_a_part_that_cannot_be_stored_gives_the_job_up(
    store: Store, bulk_file: tuple[str, bytes]
) -> None:
    import zlib

    uri, body = bulk_file
    runner = _runner(store, uri)
    job = enqueue(store, uri)
    assert job is not None and runner.claim(job)
    parts = runner.store_body(job, body).parts
    with store.begin() as conn:  # a part damaged at rest: not the bytes its hash names
        conn.execute(
            text("UPDATE bulk_parts SET body = :b WHERE id = :i"),
            {"b": zlib.compress(b"<feed/>"), "i": parts[1]},
        )
    for attempt in range(1, MAX_ATTEMPTS + 1):
        got = runner.run_part(parts[1])
        assert got is not None and got.error is not None and "damaged" in got.error
        assert got.abandoned == (attempt == MAX_ATTEMPTS)
    state, _, _ = _job(store, job.id)
    with store.connect() as conn:
        error = conn.execute(
            text("SELECT error FROM ingest_jobs WHERE id = :i"), {"i": job.id}
        ).scalar_one()
    assert state == "abandoned" and error.startswith("bulk part 1: ParseError")
    assert _parts(store) == [] and runner.run_part(parts[0]) is None


def test_r0009_upgrades_and_downgrades(store_url: str, tmp_path: Path) -> None:
    """bulk_parts comes with r0009 and goes with its downgrade; a job's parts go with the
    job (ON DELETE CASCADE)."""
    store = Store.open(store_url, data_dir=tmp_path, migrate=False)
    store.migrate("0008")
    assert "bulk_parts" not in _tables(store)
    store.migrate("0009")
    assert "bulk_parts" in _tables(store)
    with store.begin() as conn:
        job = conn.execute(
            text(
                "INSERT INTO ingest_jobs (resource_uri, state, attempts, created_at, updated_at)"
                " VALUES ('https://dc.example/Batch/Bulk/1', 'running', 1, 0, 0) RETURNING id"
            )
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO bulk_parts (job_id, part, body, sha256, file_sha256, created_at,"
                " updated_at) VALUES (:j, 0, :b, 'a', 'b', 0, 0)"
            ),
            {"j": job, "b": b"\x78\x9c"},
        )
    with store.connect() as conn:
        state = conn.execute(text("SELECT state, attempts FROM bulk_parts")).one()
    assert tuple(state) == ("pending", 0)  # the server defaults
    with store.begin() as conn:
        conn.execute(text("DELETE FROM ingest_jobs WHERE id = :j"), {"j": job})
    with store.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM bulk_parts")).scalar_one() == 0
    store.downgrade("0008")
    assert "bulk_parts" not in _tables(store)
    store.migrate()  # and up to head again
    assert "bulk_parts" in _tables(store)
    store.close()


def _tables(store: Store) -> set[str]:
    with store.connect() as conn:
        return set(inspect(conn).get_table_names())
