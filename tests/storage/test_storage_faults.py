"""Database faults and concurrency on the storage layer (SECURITY b9, b10; R60-R66).

SQLite: a writer holding the lock past the lock timeout, a read-only file, a copy without
its ``-wal`` file, a corrupted page. PostgreSQL: serialization failures and deadlocks are
retried, ``statement_timeout`` leaves nothing half-written, a connection dropped mid-ingest
(``pg_terminate_backend``) re-runs the resource on a fresh one, a concurrent upsert of the
same rows waits instead of failing, the locked token refresh is never re-run. Both: a token
row locked by another connection, the same resource ingested concurrently, ``kill -9`` of an
ingesting process at chosen points (R62: per-day checksums equal a clean run's after the
restart), the wall clock jumping during jobs, an unreachable database.

Migrations with data present and failing halfway are in ``test_migrations.py``.

Wrong Fernet keys and tampered ciphertext are covered in ``test_storage.py``.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from greenbutton import iter_readings, parse
from greenbutton._secret import Secret
from greenbutton.oauth import Token
from greenbutton.storage import (
    DatabaseTokenStore,
    StorageError,
    Store,
    _ingest,
    create_job,
    fail_job,
    ingest_document,
    ingest_file,
    pending_jobs,
    start_job,
)
from tests.conftest import FIXTURES
from tests.storage_harness import checksums, count, job_state, postgres_url, shape

FIXTURE = FIXTURES / "gba_demo_15min_15days.xml"
OTHER = FIXTURES / "gba_demo_hourly_2011-03_dst_spring.xml"


_count = count
_job_state = job_state


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from postgres_url()


def _token(expires_at: float = 1.0) -> Token:
    return Token(
        kind="access",
        access_token=Secret("access-before"),
        refresh_token=Secret("refresh-before"),
        expires_at=expires_at,
    )


def _sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


# --- SQLite -------------------------------------------------------------------------------


def test_sqlite_writer_holding_the_lock_is_a_storage_error_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "gb.db"
    store = Store.open(f"sqlite:///{path}", lock_timeout=0.2)
    tokens = DatabaseTokenStore(store, Fernet.generate_key())
    doc = parse(FIXTURE)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process's long write transaction
    try:
        started = time.monotonic()
        with pytest.raises(StorageError, match="locked"):
            ingest_document(store, doc)
        with pytest.raises(StorageError, match="locked"):
            tokens.save("g", _token())
        with pytest.raises(StorageError, match="locked"):
            create_job(store, "https://dc.example/Batch/Subscription/1")
        assert time.monotonic() - started < 10  # bounded by the lock timeout, no hang
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    result = ingest_document(store, doc)  # the lock released: the same call succeeds
    assert result.rows == _count(store, "readings") == len(list(iter_readings(FIXTURE)))
    store.close()


def test_sqlite_read_only_file_is_a_clear_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "gb.db"
    with Store.open(f"sqlite:///{path}") as store:
        ingest_file(store, FIXTURE)
    # mode=ro: read-only even for root, who ignores file permissions.
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    ro = Store.open(url)  # at head already: nothing to migrate, reading works
    try:
        with pytest.raises(StorageError, match="readonly|read-only|read only"):
            ingest_document(ro, parse(OTHER))
        assert _count(ro, "readings") == len(list(iter_readings(FIXTURE)))
    finally:
        ro.close()


def test_sqlite_copy_without_its_wal_has_only_committed_resources(tmp_path: Path) -> None:
    # b9: power loss simulated by copying the main file while the newest commits sit in
    # the -wal file; the copy is consistent and holds whole resources only.
    path = tmp_path / "gb.db"
    store = Store.open(f"sqlite:///{path}")
    ingest_file(store, FIXTURE)
    with store.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    before = _count(store, "readings")
    holder = store.engine.connect()  # an open reader keeps the WAL from being checkpointed
    holder.exec_driver_sql("SELECT 1").all()
    ingest_file(store, OTHER)  # committed, but only in gb.db-wal
    assert (tmp_path / "gb.db-wal").stat().st_size > 0
    copy = tmp_path / "copy.db"
    shutil.copyfile(path, copy)
    holder.close()
    store.close()

    with Store.open(f"sqlite:///{copy}", migrate=False) as restored:
        restored.check()
        assert _count(restored, "readings") == before == len(list(iter_readings(FIXTURE)))
        with restored.connect() as conn:
            per_series = conn.execute(
                text("SELECT meter_reading_id, count(*) FROM readings GROUP BY 1")
            ).all()
            done = conn.execute(text("SELECT count(*) FROM ingest_jobs WHERE state = 'done'"))
            assert done.scalar_one() == 1
        assert sum(n for _, n in per_series) == before
        ingest_file(restored, OTHER)  # replaying the lost resource converges
        assert _count(restored, "readings") == before + len(list(iter_readings(OTHER)))


def test_sqlite_corrupted_page_is_detected_by_check(tmp_path: Path) -> None:
    path = tmp_path / "gb.db"
    with Store.open(f"sqlite:///{path}") as store:
        ingest_file(store, FIXTURES / "gba_meter_data_1min_2014-01-06_week.xml")
        store.check()  # healthy
        with store.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            page_size = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
            pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
    assert pages > 20
    with path.open("r+b") as f:  # garbage over some b-tree pages, the header page intact
        for page in range(pages // 2, pages // 2 + 4):
            f.seek(page * page_size)
            f.write(b"\xa5" * page_size)
    damaged = Store.open(f"sqlite:///{path}", migrate=False)
    try:
        with pytest.raises(StorageError, match="corrupt"):
            damaged.check()
    finally:
        damaged.close()


# --- PostgreSQL -------------------------------------------------------------------------------


def _inject_error(store: Store, sqlstate: str, *, times: int) -> None:
    """A trigger on usage_points raising ``sqlstate`` on its first ``times`` firings.

    The counter is a sequence: ``nextval`` survives the rollback the error causes."""
    with store.begin() as conn:
        conn.execute(text("CREATE SEQUENCE fault_calls"))
        conn.execute(
            text(
                "CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS $$"
                f" BEGIN IF nextval('fault_calls') <= {times} THEN"
                f" RAISE EXCEPTION 'injected fault' USING ERRCODE = '{sqlstate}';"
                " END IF; RETURN NEW; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER fault BEFORE INSERT ON usage_points"
                " FOR EACH ROW EXECUTE FUNCTION fault()"
            )
        )


def _fault_calls(store: Store) -> int:
    with store.connect() as conn:
        return int(conn.execute(text("SELECT last_value FROM fault_calls")).scalar_one())


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_postgresql_serialization_failure_and_deadlock_are_retried(
    pg_url: str, tmp_path: Path, sqlstate: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ingest.time, "sleep", lambda _s: None)
    with Store.open(pg_url, data_dir=tmp_path) as store:
        _inject_error(store, sqlstate, times=2)
        job = create_job(store, FIXTURE.as_uri())
        result = ingest_document(store, parse(FIXTURE), job_id=job)
        assert _fault_calls(store) == 3  # two failed attempts, the third went through
        assert result.rows == _count(store, "readings") == len(list(iter_readings(FIXTURE)))
        assert _count(store, "usage_points") == 1
        assert _job_state(store, job) == "done"


def test_postgresql_retries_are_bounded_and_other_errors_are_not_retried(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ingest.time, "sleep", lambda _s: None)
    monkeypatch.setattr(_ingest, "RETRY_ATTEMPTS", 3)
    with Store.open(pg_url, data_dir=tmp_path) as store:
        _inject_error(store, "40001", times=1000)
        with pytest.raises(StorageError, match="injected fault"):
            ingest_document(store, parse(FIXTURE))
        assert _fault_calls(store) == 3
        assert _count(store, "readings") == 0
    with Store.open(pg_url, data_dir=tmp_path) as store:
        with store.begin() as conn:
            conn.execute(text("DROP TRIGGER fault ON usage_points"))
            conn.execute(text("DROP FUNCTION fault()"))
            conn.execute(text("DROP SEQUENCE fault_calls"))
        _inject_error(store, "23514", times=1000)  # check_violation: not transient
        with pytest.raises(StorageError, match="injected fault"):
            ingest_document(store, parse(FIXTURE))
        assert _fault_calls(store) == 1


def test_postgresql_statement_timeout_leaves_nothing_half_written(
    pg_url: str, tmp_path: Path
) -> None:
    with Store.open(pg_url, data_dir=tmp_path) as store:
        with store.begin() as conn:  # the readings merge takes longer than allowed
            conn.execute(
                text(
                    "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$"
                    " BEGIN PERFORM pg_sleep(5); RETURN NULL; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER slow AFTER INSERT ON readings"
                    " FOR EACH STATEMENT EXECUTE FUNCTION slow()"
                )
            )
        job = create_job(store, FIXTURE.as_uri())
        limited = Store.open(pg_url, data_dir=tmp_path, migrate=False)

        def timeout(dbapi: Any, _rec: Any) -> None:
            with dbapi.cursor() as cur:
                cur.execute("SET statement_timeout = 300")
            dbapi.commit()

        event.listen(limited.engine, "connect", timeout)
        started = time.monotonic()
        try:
            with pytest.raises(StorageError, match="statement timeout"):
                ingest_document(limited, parse(FIXTURE), job_id=job)
        finally:
            limited.close()
        assert time.monotonic() - started < 4  # cancelled, not retried
        for table in ("readings", "usage_points", "meter_readings"):
            assert _count(store, table) == 0
        assert _job_state(store, job) == "pending"


# --- both back ends ---------------------------------------------------------------------------


def test_token_row_locked_elsewhere_is_a_storage_error_not_a_hang(
    store_url: str, tmp_path: Path
) -> None:
    key = Fernet.generate_key()
    store = Store.open(store_url, data_dir=tmp_path, lock_timeout=0.3)
    tokens = DatabaseTokenStore(store, key)
    tokens.save("g", _token())
    calls: list[Token] = []

    def refresh(old: Token) -> Token:
        calls.append(old)
        return _token(expires_at=2e9)

    other = Store.open(store_url, data_dir=tmp_path, migrate=False)
    holder = other.engine.raw_connection()  # a crashed/stuck process holding the row
    cur = holder.cursor()
    if store.dialect == "sqlite":
        cur.execute("BEGIN IMMEDIATE")
    else:
        cur.execute("SELECT * FROM authorizations WHERE key = 'g' FOR UPDATE")
    try:
        started = time.monotonic()
        with pytest.raises(StorageError, match="lock"):
            tokens.refresh("g", refresh, now=lambda: 100.0)
        assert time.monotonic() - started < 10
        assert calls == []  # nothing refreshed without the lock
    finally:
        holder.rollback()
        cur.close()
        holder.close()
        other.close()
    fresh = tokens.refresh("g", refresh, now=lambda: 100.0)  # released: works again
    assert fresh.expires_at == 2e9 and len(calls) == 1
    store.close()


def test_same_resource_ingested_concurrently_gives_one_correct_result(
    store_url: str, tmp_path: Path
) -> None:
    # b10: two notifications for the same subscription window at the same time, each its
    # own job, ingested by two threads on two engines (two "processes").
    stores = [Store.open(store_url, data_dir=tmp_path) for _ in range(2)]
    doc = parse(FIXTURE)
    jobs = [create_job(stores[0], FIXTURE.as_uri()) for _ in range(4)]
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            ingest_document(stores[i % 2], doc, job_id=jobs[i])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    expected = list(iter_readings(FIXTURE))
    assert _count(stores[0], "readings") == len(expected)
    assert _count(stores[0], "usage_points") == 1
    with stores[0].connect() as conn:
        total = conn.execute(text("SELECT sum(raw_value) FROM readings")).scalar_one()
    with Store.open(f"sqlite:///{tmp_path / 'reference.db'}") as reference:
        ingest_document(reference, doc)
        with reference.connect() as conn:
            assert conn.execute(text("SELECT sum(raw_value) FROM readings")).scalar_one() == total
    assert all(_job_state(stores[0], j) == "done" for j in jobs)
    for s in stores:
        s.close()


# --- dropped connections, kill -9, clock jumps (b9, R62) ------------------------------------

MULTI = FIXTURES / "gba_one_usagepoint_three_readingtypes.xml"  # three series, one resource
_RECONCILE = "coalesce(sum(readings.raw_value)"  # the per-series check after its readings


def _clean(tmp_path: Path, *paths: Path) -> tuple[list[Any], dict[str, int]]:
    """Checksums and row counts of a clean, fault-free run of ``paths``."""
    with Store.open(f"sqlite:///{tmp_path / f'clean-{len(paths)}.db'}") as reference:
        for path in paths:
            ingest_file(reference, path)
        return checksums(reference), shape(reference)


class _Terminator:
    """Ends the server process of the connection running a statement containing ``marker``,
    from a second connection, as an administrator, a fail-over or a pooler restart would."""

    def __init__(self, store: Store, url: str, marker: str, *, times: int, after: bool) -> None:
        self.admin = create_engine(url)
        self.marker = marker
        self.times = times
        self.calls = 0
        when = "after_cursor_execute" if after else "before_cursor_execute"
        event.listen(store.engine, when, self)

    def __call__(self, conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if self.marker not in statement or self.calls >= self.times:
            return
        self.calls += 1
        pid = conn.connection.dbapi_connection.info.backend_pid
        with self.admin.connect() as admin:  # waits (up to 5 s) until the backend is gone
            ended = admin.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})
            assert ended.scalar_one() is True

    def close(self) -> None:
        self.admin.dispose()


@pytest.mark.parametrize("after", [False, True], ids=["mid-statement", "next-on-raw-cursor"])
def test_postgresql_connection_dropped_mid_ingest_reruns_on_a_fresh_connection(
    pg_url: str, tmp_path: Path, after: bool
) -> None:
    # Dropped once the first series' readings are merged: either while its reconciliation
    # query runs, or just after it, so the next series' COPY meets the dead connection.
    with Store.open(pg_url, data_dir=tmp_path) as store:
        job = create_job(store, MULTI.as_uri())
        drop = _Terminator(store, pg_url, _RECONCILE, times=1, after=after)
        try:
            result = ingest_document(store, parse(MULTI), job_id=job)
        finally:
            drop.close()
        assert drop.calls == 1
        expected_sums, expected_shape = _clean(tmp_path, MULTI)
        assert checksums(store) == expected_sums
        assert shape(store) == expected_shape
        assert result.rows == expected_shape["readings"]
        assert _job_state(store, job) == "done"


def test_postgresql_connection_dropped_on_every_attempt_stores_nothing(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ingest, "RETRY_ATTEMPTS", 3)
    with Store.open(pg_url, data_dir=tmp_path) as store:
        job = create_job(store, MULTI.as_uri())
        drop = _Terminator(store, pg_url, _RECONCILE, times=1000, after=False)
        try:
            with pytest.raises(StorageError, match="storing readings failed"):
                ingest_document(store, parse(MULTI), job_id=job)
        finally:
            drop.close()
        assert drop.calls == 3  # bounded: one drop per attempt
        assert shape(store) == {"usage_points": 0, "meter_readings": 0, "readings": 0}
        assert _job_state(store, job) == "pending"


_CHILD = """
import os, signal, sys
from sqlalchemy import event
from greenbutton.storage import Store, _ingest, ingest_file

url, point, first, second = sys.argv[1:]
store = Store.open(url)
ingest_file(store, first)  # committed before the crash


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def on_statement(conn, cursor, statement, *rest):
    if point == "after-usage-point" and statement.startswith("INSERT INTO meter_readings"):
        die()
    if point == "before-done-marker" and "payload_hash" in statement:
        die()


def killing(write):
    calls = []

    def wrapper(*args):
        write(*args)
        calls.append(1)
        if point == "mid-readings" and len(calls) == 2:  # the second series half-written
            die()

    return wrapper


_ingest._write_batch = killing(_ingest._write_batch)
_ingest._copy_batch = killing(_ingest._copy_batch)
event.listen(store.engine, "before_cursor_execute", on_statement)
ingest_file(store, second)
sys.exit(3)  # the crash point was never reached
"""


@pytest.mark.parametrize("point", ["after-usage-point", "mid-readings", "before-done-marker"])
def test_kill_9_mid_ingest_leaves_whole_resources_and_the_pending_job_reruns(
    store_url: str, tmp_path: Path, point: str
) -> None:
    # R62: a process SIGKILLed inside a resource's transaction; a restart finds the earlier
    # resource whole, nothing of the interrupted one, its job pending; re-running converges.
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    child = subprocess.run(
        [sys.executable, str(script), store_url, point, str(FIXTURE), str(MULTI)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    first_sums, first_shape = _clean(tmp_path, FIXTURE)
    with Store.open(store_url, data_dir=tmp_path) as store:
        store.check()
        assert checksums(store) == first_sums
        assert shape(store) == first_shape
        [(job, uri)] = pending_jobs(store)
        assert uri == MULTI.resolve().as_uri()
        assert _job_state(store, job) == "running"  # the attempt was counted, not finished
        ingest_file(store, Path(url2pathname(urlparse(uri).path)))  # the restart re-runs it
        assert pending_jobs(store) == []
        assert _job_state(store, job) == "done"
        assert _count(store, "ingest_jobs") == 2  # the same job, not a new one
        both_sums, both_shape = _clean(tmp_path, FIXTURE, MULTI)
        assert checksums(store) == both_sums
        assert shape(store) == both_shape


def test_clock_jumping_back_and_forward_during_jobs(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # b9: the wall clock steps back an hour (NTP, a VM resume) and forward again between a
    # job's steps; jobs still complete and are taken in id order, never by timestamps.
    real = time.time
    offset = [0.0]
    monkeypatch.setattr(time, "time", lambda: real() + offset[0])

    def at(hours: float) -> None:
        offset[0] = hours * 3600

    with Store.open(store_url, data_dir=tmp_path) as store:
        at(0)
        job = create_job(store, FIXTURE.as_uri())
        at(-1)
        start_job(store, job)
        at(+1)
        ingest_document(store, parse(FIXTURE), job_id=job)
        assert _job_state(store, job) == "done"

        at(0)
        older = create_job(store, OTHER.resolve().as_uri())
        at(-1)
        newer = create_job(store, OTHER.resolve().as_uri())  # created "before" the older one
        assert pending_jobs(store) == [(older, OTHER.resolve().as_uri())] + [
            (newer, OTHER.resolve().as_uri())
        ]
        start_job(store, older)
        at(-2)
        fail_job(store, older, "interrupted")
        at(+1)
        ingest_file(store, OTHER)  # picks the newest job by id, whatever the clock said
        assert _job_state(store, newer) == "done"
        assert _job_state(store, older) == "failed"
        expected_sums, expected_shape = _clean(tmp_path, FIXTURE, OTHER)
        assert checksums(store) == expected_sums
        assert shape(store) == expected_shape


def test_postgresql_concurrent_upsert_of_the_same_rows_waits_then_converges(
    pg_url: str, tmp_path: Path
) -> None:
    # b9: the second writer's INSERT of the same usage point meets the first's uncommitted
    # row on the unique index; ON CONFLICT makes it wait and then update, never a unique
    # violation. The interleaving is forced: A pauses inside its transaction until B waits.
    name = f"gb-b-{uuid.uuid4().hex[:8]}"
    a = Store.open(pg_url, data_dir=tmp_path)
    b = Store.open(
        pg_url, data_dir=tmp_path, migrate=False, connect_args={"application_name": name}
    )
    doc = parse(FIXTURE)
    jobs = [create_job(a, FIXTURE.as_uri()) for _ in range(2)]
    paused, release = threading.Event(), threading.Event()

    def pause(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.startswith("INSERT INTO meter_readings") and not paused.is_set():
            paused.set()
            release.wait(30)

    event.listen(a.engine, "after_cursor_execute", pause)
    errors: list[BaseException] = []

    def run(store: Store, job: int) -> None:
        try:
            ingest_document(store, doc, job_id=job)
        except BaseException as exc:  # reported below
            errors.append(exc)

    first = threading.Thread(target=run, args=(a, jobs[0]))
    first.start()
    assert paused.wait(30)
    second = threading.Thread(target=run, args=(b, jobs[1]))
    second.start()
    with a.connect() as conn:  # until B is blocked on A's row lock
        query = text("SELECT wait_event_type FROM pg_stat_activity WHERE application_name = :n")
        for _ in range(300):
            if conn.execute(query, {"n": name}).scalar() == "Lock":
                break
            conn.rollback()  # pg_stat_activity is a snapshot per transaction: take a new one
            time.sleep(0.05)
        else:
            pytest.fail("the second writer never waited for the first")
    release.set()
    first.join(30)
    second.join(30)
    assert errors == []
    expected_sums, expected_shape = _clean(tmp_path, FIXTURE)
    assert checksums(a) == expected_sums
    assert shape(a) == expected_shape
    assert [_job_state(a, j) for j in jobs] == ["done", "done"]
    a.close()
    b.close()


def test_postgresql_dropped_connection_retries_token_writes_never_the_locked_refresh(
    pg_url: str, tmp_path: Path
) -> None:
    # R53: a plain token write is re-run on a fresh connection; the refresh is not: the
    # custodian has already rotated the token, so a lost commit must not refresh twice.
    with Store.open(pg_url, data_dir=tmp_path) as store:
        tokens = DatabaseTokenStore(store, Fernet.generate_key())
        drop = _Terminator(store, pg_url, "INSERT INTO authorizations", times=1, after=False)
        try:
            tokens.save("g", _token())
            assert drop.calls == 1
            assert tokens.load("g") == _token()
            drop.times = 2  # the next upsert of the row, the one inside the locked refresh
            calls: list[Token] = []

            def refresh(old: Token) -> Token:
                calls.append(old)
                return _token(expires_at=2e9)

            with pytest.raises(StorageError, match="administrator command|connection"):
                tokens.refresh("g", refresh, now=lambda: 100.0)
            assert drop.calls == 2
            assert len(calls) == 1  # refreshed once, not again on a new connection
            assert tokens.load("g") == _token()  # rolled back; the next refresh meets R53
        finally:
            drop.close()


def test_connect_failure_is_a_storage_error(store_url: str, tmp_path: Path) -> None:
    if store_url.startswith("sqlite"):
        (tmp_path / "a-folder").mkdir()  # a database "file" that is a folder: fails at connect
        url = f"sqlite:///{tmp_path / 'a-folder'}"
        with pytest.raises(StorageError, match="no folder .*missing-dir"):  # refused up front
            Store.open(f"sqlite:///{tmp_path / 'missing-dir' / 'gb.db'}", migrate=False)
    else:  # a port nothing listens on
        url = make_url(store_url).set(port=1).render_as_string(hide_password=False)
    store = Store.open(url, migrate=False)
    try:
        with pytest.raises(StorageError, match="the database failed") as info:
            with store.connect() as conn:
                conn.execute(text("SELECT 1"))
        assert isinstance(info.value.__cause__, DBAPIError)
    finally:
        store.close()
