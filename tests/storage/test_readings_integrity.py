"""Readings → meter readings integrity on PostgreSQL, checked per statement (r0010).

r0010 replaces the row-by-row foreign key with statement triggers; these tests hold them to
what the key guaranteed: a reading of a missing meter reading is refused (COPY, the
``ON CONFLICT`` merge and a plain INSERT alike) and nothing of that statement is stored;
deleting a usage point or a meter reading removes its readings; a meter reading with
readings keeps its id and a reading cannot be re-pointed at nothing; a concurrent delete
of a meter reading waits for the transaction adding readings to it, then removes them too
(no orphan). 0009 → 0010 → 0009 keeps every row and gives the key back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")

from sqlalchemy import text

from greenbutton import parse
from greenbutton.storage import StorageError, Store, ingest_document
from tests.conftest import FIXTURES
from tests.storage_harness import checksums, postgres_url

FIXTURE = "gba_demo_15min_15days.xml"
ORPHAN = 987_654


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from postgres_url()


@pytest.fixture
def store(pg_url: str, tmp_path: Path) -> Iterator[Store]:
    with Store.open(pg_url, data_dir=tmp_path) as s:
        ingest_document(s, parse(FIXTURES / FIXTURE), namespace="files")
        yield s


def _count(store: Store, where: str = "TRUE", **params: object) -> int:
    with store.connect() as conn:
        sql = f"SELECT count(*) FROM readings WHERE {where}"  # noqa: S608
        return int(conn.execute(text(sql), params).scalar_one())


def _a_reading(store: Store) -> tuple[int, int, int]:
    with store.connect() as conn:
        row = conn.execute(
            text("SELECT meter_reading_id, start, usage_point_id FROM readings LIMIT 1")
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


def _copy(store: Store, rows: list[tuple[object, ...]], table: str = "readings") -> None:
    with store.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        with (
            raw.cursor() as cur,
            cur.copy(  # type: ignore[attr-defined]
                f"COPY {table} (meter_reading_id, start, usage_point_id, duration, multiplier)"
                " FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)


def test_the_row_key_is_gone_and_the_triggers_hold_its_rule(store: Store) -> None:
    with store.connect() as conn:
        keys = conn.execute(
            text("SELECT conname FROM pg_constraint WHERE conrelid = 'readings'::regclass")
        ).scalars()
        triggers = conn.execute(
            text(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
                " AND tgrelid IN ('readings'::regclass, 'meter_readings'::regclass)"
            )
        ).scalars()
        assert set(keys) == {"pk_readings"}
        assert set(triggers) == {
            "readings_inserted", "reading_repointed", "meter_readings_deleted",
            "meter_reading_renumbered",
        }  # fmt: skip


def test_a_reading_of_a_missing_meter_reading_is_refused_whole(store: Store) -> None:
    mr, start, up = _a_reading(store)
    before = checksums(store)
    fresh = [(mr, start + 86_400 * 400 + 900 * i, up, 900, 0) for i in range(50)]
    orphan = (ORPHAN, start, up, 900, 0)
    with pytest.raises(StorageError, match="does not exist"):
        _copy(store, [*fresh, orphan])  # COPY: the good rows go with the bad one
    with pytest.raises(StorageError, match="does not exist"), store.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO readings (meter_reading_id, start, usage_point_id, duration,"
                " multiplier) VALUES (:m, :s, :u, 900, 0), (:o, :s, :u, 900, 0)"
                " ON CONFLICT (meter_reading_id, start) DO UPDATE SET duration = 900"
            ),
            {"m": mr, "s": start, "u": up, "o": ORPHAN},
        )
    assert checksums(store) == before
    _copy(store, fresh)  # the same rows of a real meter reading are taken
    assert _count(store, "meter_reading_id = :m AND start > :s", m=mr, s=start + 86_400 * 399) == 50


def test_a_reading_cannot_be_repointed_at_nothing(store: Store) -> None:
    mr, start, _up = _a_reading(store)
    with pytest.raises(StorageError, match="does not exist"), store.begin() as conn:
        conn.execute(
            text("UPDATE readings SET meter_reading_id = :o WHERE meter_reading_id = :m"),
            {"o": ORPHAN, "m": mr},
        )
    with store.begin() as conn:  # updating other columns is not re-pointing
        conn.execute(
            text("UPDATE readings SET duration = 900 WHERE meter_reading_id = :m"), {"m": mr}
        )
    with pytest.raises(StorageError, match="cannot change"), store.begin() as conn:
        conn.execute(
            text("UPDATE meter_readings SET id = :o WHERE id = :m"), {"o": ORPHAN, "m": mr}
        )
    assert _count(store, "meter_reading_id = :m", m=mr) > 0


def test_deleting_a_usage_point_or_a_meter_reading_removes_its_readings(store: Store) -> None:
    with store.connect() as conn:
        meters = conn.execute(
            text("SELECT id, usage_point_id FROM meter_readings ORDER BY id")
        ).all()
    assert len(meters) >= 1
    total = _count(store)
    mr, up = meters[0]
    own = _count(store, "meter_reading_id = :m", m=mr)
    with store.begin() as conn:
        conn.execute(text("DELETE FROM meter_readings WHERE id = :m"), {"m": mr})
    assert _count(store) == total - own and _count(store, "meter_reading_id = :m", m=mr) == 0
    with store.begin() as conn:
        conn.execute(text("DELETE FROM usage_points WHERE id = :u"), {"u": up})
    assert _count(store, "usage_point_id = :u", u=up) == 0
    with store.connect() as conn:
        orphans = conn.execute(
            text(
                "SELECT count(*) FROM readings r WHERE NOT EXISTS"
                " (SELECT FROM meter_readings m WHERE m.id = r.meter_reading_id)"
            )
        ).scalar_one()
    assert orphans == 0


def test_a_concurrent_delete_waits_for_the_readings_being_added(store: Store) -> None:
    """The trigger locks the meter readings it checked (FOR KEY SHARE, as the key did): a
    delete started while readings are being added waits, then removes them too."""
    mr, start, up = _a_reading(store)
    deleted = threading.Event()

    def delete() -> None:
        with store.begin() as conn:
            conn.execute(text("DELETE FROM meter_readings WHERE id = :m"), {"m": mr})
        deleted.set()

    with store.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO readings (meter_reading_id, start, usage_point_id, duration,"
                " multiplier) VALUES (:m, :s, :u, 900, 0)"
            ),
            {"m": mr, "s": start + 86_400 * 800, "u": up},
        )
        other = threading.Thread(target=delete)
        other.start()
        waited = False
        for _ in range(200):  # until the delete is seen waiting on this transaction's lock
            with store.connect() as probe:
                waited = bool(
                    probe.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                            " 'Lock' AND query LIKE 'DELETE FROM meter_readings%'"
                        )
                    ).scalar_one()
                )
            if waited or deleted.is_set():
                break
            time.sleep(0.05)
        assert waited and not deleted.is_set()
    other.join(timeout=30)
    assert deleted.is_set()
    assert _count(store, "meter_reading_id = :m", m=mr) == 0


def test_0009_to_0010_and_back_keeps_every_row_and_the_key(pg_url: str, tmp_path: Path) -> None:
    store = Store.open(pg_url, data_dir=tmp_path, migrate=False)
    store.migrate("0009")
    ingest_document(store, parse(FIXTURES / FIXTURE), namespace="files")
    before = checksums(store)
    store.migrate("0010")
    assert store.schema_revision() == "0010" and checksums(store) == before
    store.downgrade("0009")
    assert checksums(store) == before
    mr, start, up = _a_reading(store)
    with pytest.raises(StorageError, match="fk_readings_meter_reading_id"), store.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO readings (meter_reading_id, start, usage_point_id, duration,"
                " multiplier) VALUES (:o, :s, :u, 900, 0)"
            ),
            {"o": ORPHAN, "s": start, "u": up},
        )
    store.migrate()
    assert store.schema_revision() == "0010" and checksums(store) == before
    store.close()
