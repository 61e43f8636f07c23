"""Database faults and concurrency on the storage layer (SECURITY b9, b10; R60-R66).

SQLite: a writer holding the lock past the lock timeout, a read-only file, a copy without
its ``-wal`` file, a corrupted page. PostgreSQL: serialization failures and deadlocks are
retried, ``statement_timeout`` leaves nothing half-written. Both: a token row locked by
another connection, the same resource ingested concurrently.

Wrong Fernet keys and tampered ciphertext are covered in ``test_storage.py``.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from greenbutton import iter_readings, parse
from greenbutton._secret import Secret
from greenbutton.oauth import Token
from greenbutton.storage import (
    DatabaseTokenStore,
    StorageError,
    Store,
    _ingest,
    create_job,
    ingest_document,
    ingest_file,
)
from tests.conftest import FIXTURES
from tests.test_storage import PG_ENV, _pg_unavailable

FIXTURE = FIXTURES / "gba_demo_15min_15days.xml"
OTHER = FIXTURES / "gba_demo_hourly_2011-03_dst_spring.xml"


def _postgres_url() -> Iterator[str]:
    import os

    base = os.environ.get(PG_ENV)
    if not base:
        _pg_unavailable(f"set {PG_ENV}=postgresql+psycopg://user:pw@host/db")
    assert base is not None
    admin = create_engine(base)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # any failure to reach the server
        admin.dispose()
        _pg_unavailable(f"{base!r} is unreachable: {exc}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gb.db'}"
    else:
        yield from _postgres_url()


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _postgres_url()


def _count(store: Store, table: str) -> int:
    with store.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def _job_state(store: Store, job_id: int) -> str:
    with store.connect() as conn:
        return str(
            conn.execute(
                text("SELECT state FROM ingest_jobs WHERE id = :i"), {"i": job_id}
            ).scalar_one()
        )


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
