"""The PostgreSQL readings table partitioned by month (r0006, issue 10.3).

A database at 0005 holding readings of several years (real fixtures, plus rows before 1970
and past year 9999) is upgraded: every row is kept, each in the partition of its UTC month
(the far-off ones in the default partition), re-ingesting changes nothing, the keys still
hold; ingest makes the partition of a new month itself (also when two writers need it at
once, and moving rows that reached the default partition); the downgrade gives back one
plain table with the same rows. The month rules are checked on their own without a server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")

from sqlalchemy import text

from greenbutton import parse
from greenbutton.models import (
    Document,
    IntervalBlock,
    MeterReading,
    ReadingColumns,
    ReadingType,
    UsagePoint,
)
from greenbutton.storage import StorageError, Store, ingest_document
from greenbutton.storage._partitions import (
    is_partition_name,
    month_of,
    months_between,
    partition_name,
)
from tests.conftest import FIXTURES
from tests.storage_harness import checksums, postgres_url, shape

FILES = [
    "gba_demo_15min_15days.xml",
    "gba_demo_hourly_2011-03_dst_spring.xml",
    "gba_gas_monthly_therm.xml",
    "gba_one_usagepoint_three_readingtypes.xml",
    "gba_coastal_multi_family_2011_12hr_blocks.xml",
]
BEFORE_1970 = -86_400 * 40  # 1969-11-22
PAST_9999 = 300_000_000_000  # year 11476: no month partition, the default one


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from postgres_url()


def _documents() -> list[Document]:
    return [parse(FIXTURES / name) for name in FILES]


def _rows(store: Store) -> list[tuple[object, ...]]:
    with store.connect() as conn:
        query = text(
            "SELECT meter_reading_id, start, usage_point_id, duration, raw_value, multiplier,"
            " uom, cost, quality, quality_codes, tou FROM readings ORDER BY 1, 2"
        )
        return [tuple(r) for r in conn.execute(query)]


def _partitions(store: Store) -> dict[str, str]:
    """Partition name -> its bound, as PostgreSQL prints it."""
    with store.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
                " JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = to_regclass('readings')"
            )
        )
        return {str(n): str(b) for n, b in rows}


def _partitioned(store: Store) -> bool:
    with store.connect() as conn:
        query = text(
            "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'readings'::regclass"
        )
        return bool(conn.execute(query).scalar_one())


def _where_rows_live(store: Store) -> dict[str, int]:
    """Rows per physical table (each row's ``tableoid``)."""
    with store.connect() as conn:
        rows = conn.execute(
            text("SELECT tableoid::regclass::text, count(*) FROM readings GROUP BY 1")
        )
        return {str(t): int(n) for t, n in rows}


def _month_table(start: int) -> str:
    """The partition a reading belongs in, worked out here independently of the code."""
    if not -62135596800 <= start <= 253402300799:
        return "readings_default"
    return f"readings_{datetime.fromtimestamp(start, UTC):%Y%m}"


def _columns(*starts: int, value: int = 7) -> ReadingColumns:
    cols = ReadingColumns()
    for start in starts:
        cols.append(start, 3600, value)
    return cols


def _document(up: str, *starts: int, value: int = 7) -> Document:
    rt = ReadingType(uom=72, power_of_ten_multiplier=0, interval_length=3600, kind=12)
    mr = MeterReading(
        id="1",
        href=f"Subscription/9/UsagePoint/{up}/MeterReading/1",
        reading_type=rt,
        interval_blocks=(IntervalBlock(readings=_columns(*starts, value=value)),),
    )
    return Document(
        usage_points=(
            UsagePoint(id=up, href=f"Subscription/9/UsagePoint/{up}", meter_readings=(mr,)),
        )
    )


def _ts(year: int, month: int, day: int = 1, hour: int = 0) -> int:
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp())


def test_0005_to_0006_keeps_every_row_in_its_months_partition_and_downgrade_returns(
    pg_url: str, tmp_path: Path
) -> None:
    store = Store.open(pg_url, data_dir=tmp_path, migrate=False)
    store.migrate("0005")
    docs = _documents()
    for doc in docs:
        ingest_document(store, doc, namespace="files")
    ingest_document(store, _document("far", BEFORE_1970, PAST_9999, _ts(2030, 12, 31, 23)))
    before_rows, before_sums, before_shape = _rows(store), checksums(store), shape(store)
    assert not _partitioned(store) and len(before_rows) > 5000

    store.migrate("0006")
    assert store.schema_revision() == "0006"
    assert _partitioned(store)
    assert _rows(store) == before_rows
    assert checksums(store) == before_sums and shape(store) == before_shape
    expected: dict[str, int] = {}
    for row in before_rows:
        table = _month_table(int(row[1]))  # type: ignore[call-overload]
        expected[table] = expected.get(table, 0) + 1
    assert _where_rows_live(store) == expected
    assert expected["readings_default"] == 1  # the reading past 9999
    assert "readings_196911" in expected and "readings_203012" in expected
    parts = _partitions(store)
    assert set(parts) == set(expected)  # one per month with data, and the default
    assert parts["readings_default"] == "DEFAULT"
    dec, jan = _ts(2030, 12), _ts(2031, 1)
    assert parts["readings_203012"] == f"FOR VALUES FROM ('{dec}') TO ('{jan}')"

    # re-ingesting the same documents changes nothing (R60), makes no partition
    for doc in docs:
        ingest_document(store, doc, namespace="files")
    assert _rows(store) == before_rows and set(_partitions(store)) == set(parts)

    # the keys survived the copy: the primary key refuses a second row of (series, start),
    # and deleting a meter reading still cascades to its readings
    first = before_rows[0]
    with pytest.raises(StorageError, match="pk_readings|duplicate key"), store.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO readings (meter_reading_id, start, usage_point_id, duration,"
                " multiplier) VALUES (:m, :s, :u, 900, 0)"
            ),
            {"m": first[0], "s": first[1], "u": first[2]},
        )
    with store.begin() as conn:
        conn.execute(text("DELETE FROM meter_readings WHERE id = :m"), {"m": first[0]})
    gone = [r for r in before_rows if r[0] != first[0]]
    assert _rows(store) == gone

    store.downgrade("0005")
    assert store.schema_revision() == "0005"
    assert not _partitioned(store) and _partitions(store) == {}
    assert _rows(store) == gone
    assert _where_rows_live(store) == {"readings": len(gone)}
    ingest_document(store, _document("again", _ts(2032, 3)))  # ingest at 0005 still works
    store.migrate()
    assert "readings_203203" in _partitions(store) and len(_rows(store)) == len(gone) + 1
    store.close()


def test_ingest_makes_the_partition_of_a_new_month(pg_url: str, tmp_path: Path) -> None:
    with Store.open(pg_url, data_dir=tmp_path) as store:
        assert set(_partitions(store)) == {"readings_default"}  # a new database: no data yet
        # Two months and the New Year between them: both partitions made, nothing in default.
        doc = _document("1", *range(_ts(2026, 12, 31, 20), _ts(2027, 1, 1, 4), 3600))
        assert ingest_document(store, doc).rows == 8
        assert set(_partitions(store)) == {"readings_default", "readings_202612", "readings_202701"}
        assert _where_rows_live(store) == {"readings_202612": 4, "readings_202701": 4}
        ingest_document(store, doc)
        assert _where_rows_live(store) == {"readings_202612": 4, "readings_202701": 4}


def test_rows_in_the_default_partition_move_to_their_new_month(pg_url: str, tmp_path: Path) -> None:
    with Store.open(pg_url, data_dir=tmp_path) as store:
        ingest_document(store, _document("1", _ts(2027, 4, 30, 23)))
        with store.begin() as conn:  # written past ingest: lands in the default partition
            conn.execute(
                text(
                    "INSERT INTO readings (meter_reading_id, start, usage_point_id, duration,"
                    " raw_value, multiplier) SELECT id, :s, usage_point_id, 3600, 99, 0"
                    " FROM meter_readings"
                ),
                {"s": _ts(2027, 5, 2)},
            )
        assert _where_rows_live(store) == {"readings_202704": 1, "readings_default": 1}
        ingest_document(store, _document("1", _ts(2027, 5, 3)))
        assert _where_rows_live(store) == {"readings_202704": 1, "readings_202705": 2}
        assert [r[4] for r in _rows(store)] == [7, 99, 7]


def test_two_writers_needing_the_same_new_month_both_succeed(pg_url: str, tmp_path: Path) -> None:
    stores = [Store.open(pg_url, data_dir=tmp_path) for _ in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            ingest_document(
                stores[i], _document(f"w{i}", *range(_ts(2029, 2), _ts(2029, 2, 2), 3600))
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert set(_partitions(stores[0])) == {"readings_default", "readings_202902"}
        assert _where_rows_live(stores[0]) == {"readings_202902": 48}
    finally:
        for s in stores:
            s.close()


def test_month_rules() -> None:
    assert month_of(_ts(2024, 2, 29, 23)) == _ts(2024, 2)
    assert month_of(BEFORE_1970) == _ts(1969, 11)
    assert month_of(PAST_9999) is None
    assert partition_name(_ts(2026, 12)) == "readings_202612"
    assert months_between(_ts(2026, 11, 30), _ts(2027, 2, 1)) == {
        _ts(2026, 11), _ts(2026, 12), _ts(2027, 1), _ts(2027, 2)
    }  # fmt: skip
    # a stray reading decades off: only the months that hold readings
    starts = [_ts(1990, 5), _ts(2026, 1, 3), _ts(2026, 1, 9)]
    assert months_between(min(starts), max(starts), starts) == {_ts(1990, 5), _ts(2026, 1)}
    assert is_partition_name("readings_202612") and is_partition_name("readings_default")
    assert not is_partition_name("readings") and not is_partition_name("readings_0005")
    assert not is_partition_name("meter_readings")
