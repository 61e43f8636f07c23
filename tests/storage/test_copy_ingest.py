"""PostgreSQL's COPY ingest (issue 10.3) stores exactly what SQLite's executemany stores.

Both ways of the COPY path are exercised: straight into ``readings`` when nothing of the
resource's range is stored yet, and through the staging table and one
``INSERT ... ON CONFLICT`` when some is (a re-run, an overlapping window). A writer that
stores the same rows between the probe and the COPY (a unique violation) is absorbed: the
copy is rolled back to its savepoint and merged instead. Job marker, payload hash and cost
scale are written as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")

from sqlalchemy import text

from greenbutton import parse
from greenbutton.models import (
    ABSENT,
    ABSENT32,
    Document,
    IntervalBlock,
    MeterReading,
    ReadingColumns,
    ReadingType,
    UsagePoint,
)
from greenbutton.storage import Store, _ingest, create_job, ingest_document
from tests.conftest import FIXTURES
from tests.storage_harness import postgres_url

FILES = [
    "gba_demo_15min_15days.xml",
    "gba_gas_monthly_therm.xml",
    "gba_one_usagepoint_three_readingtypes.xml",
    "gba_meter_data_1min_2014-01-06_week.xml",
    "burlington_hydro_dmd_usage_60min_trimmed.xml",
]
T0 = 1_767_225_600  # 2026-01-01 UTC


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """A SQLite and a PostgreSQL store, both migrated to head."""
    for url in postgres_url():
        sqlite = Store.open(f"sqlite:///{tmp_path / 'gb.db'}", data_dir=tmp_path)
        pg = Store.open(url, data_dir=tmp_path)
        try:
            yield sqlite, pg
        finally:
            sqlite.close()
            pg.close()


def _snapshot(store: Store) -> list[tuple[object, ...]]:
    """Every stored reading by its natural names (ids differ between databases)."""
    with store.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT up.namespace, up.key, mr.key, mr.cost_scale, r.start, r.duration,"
                " r.raw_value, r.multiplier, r.uom, r.cost, r.quality, r.quality_codes, r.tou"
                " FROM readings r JOIN meter_readings mr ON mr.id = r.meter_reading_id"
                " JOIN usage_points up ON up.id = r.usage_point_id ORDER BY 1, 2, 3, 5"
            )
        )
        return [tuple(r) for r in rows]


def _odd_document(value_shift: int = 0, *, starts: range | None = None) -> Document:
    """Readings with every optional present, absent, and the extremes of their types."""
    cols = ReadingColumns()
    for i, start in enumerate(starts or range(T0, T0 + 48 * 3600, 3600)):
        cols.append(
            start,
            3600,
            ABSENT if i % 7 == 3 else (-(2**62) if i == 0 else i * 1000 + value_shift),
            ABSENT if i % 2 else 2**40 + i,
            ABSENT32 if i % 3 else 19 + i % 2,
            ABSENT32 if i % 5 else 2,
        )
        if i % 11 == 4:
            cols.extra_quality[i] = (8, 17, 19)
    rt = ReadingType(uom=72, power_of_ten_multiplier=-3, interval_length=3600, kind=12)
    mr = MeterReading(
        id="1",
        href="Subscription/5/UsagePoint/1/MeterReading/1",
        reading_type=rt,
        interval_blocks=(IntervalBlock(readings=cols),),
    )
    up = UsagePoint(id="1", href="Subscription/5/UsagePoint/1", meter_readings=(mr,))
    return Document(usage_points=(up,))


def _spy_copies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tables the COPY path writes into, in order."""
    tables: list[str] = []
    real = _ingest._copy

    def spy(cur: Any, table: str, *args: Any) -> None:
        tables.append(table)
        real(cur, table, *args)

    monkeypatch.setattr(_ingest, "_copy", spy)
    return tables


def test_copy_ingest_stores_what_sqlite_stores(
    pair: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite, pg = pair
    tables = _spy_copies(monkeypatch)
    docs = [parse(FIXTURES / name) for name in FILES]
    for store in pair:
        for doc in docs:
            ingest_document(store, doc, namespace="f", cost_scale=-3)
        ingest_document(store, _odd_document(), namespace="odd")
    assert tables == ["readings"] * (len(docs) + 1)  # nothing stored before: straight in
    assert _snapshot(pg) == _snapshot(sqlite)
    assert len(_snapshot(pg)) > 5000

    # the same again, and revised values over a window that overlaps the stored one
    tables.clear()
    for store in pair:
        for doc in docs:
            ingest_document(store, doc, namespace="f", cost_scale=-3)
        shifted = range(T0 + 24 * 3600, T0 + 96 * 3600, 3600)
        ingest_document(store, _odd_document(5, starts=shifted), namespace="odd")
    assert tables == ["greenbutton_readings_load"] * (len(docs) + 1)  # staged and merged
    assert _snapshot(pg) == _snapshot(sqlite)
    odd = [r for r in _snapshot(pg) if r[0] == "odd"]
    assert len(odd) == 96  # 48 first, 24 overlapping revised, 24 new
    assert odd[0][6] == -(2**62) and odd[30][6] == 6 * 1000 + 5  # 30 h in: revised


def test_rows_stored_between_the_probe_and_the_copy_are_merged(
    pair: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another writer storing the same rows after the probe found none: the direct COPY
    # hits the primary key, rolls back to its savepoint, and the rows are merged instead.
    _sqlite, pg = pair
    ingest_document(pg, _odd_document())
    tables = _spy_copies(monkeypatch)
    monkeypatch.setattr(_ingest, "_any_stored", lambda cur, series: False)
    job = create_job(pg, "https://dc.example/espi/1_1/resource/Batch/Subscription/5")
    result = ingest_document(pg, _odd_document(5), job_id=job, payload_hash="ab" * 32)
    assert tables == ["readings", "greenbutton_readings_load"]
    assert result.rows == 48
    values = [r[6] for r in _snapshot(pg)]
    assert values[1] == 1005 and len(values) == 48
    with pg.connect() as conn:
        state, digest, rows = conn.execute(
            text("SELECT state, payload_hash, rows FROM ingest_jobs WHERE id = :i"), {"i": job}
        ).one()
    assert (state, digest, rows) == ("done", "ab" * 32, 48)


def test_other_errors_of_the_direct_copy_are_not_swallowed(
    pair: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    _sqlite, pg = pair
    with pg.begin() as conn:  # a check the rows break: not a unique violation
        conn.execute(text("ALTER TABLE readings ADD CONSTRAINT small CHECK (raw_value < 1000)"))
    with pytest.raises(_ingest.StorageError, match="small"):
        ingest_document(pg, _odd_document())
    with pg.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM readings")).scalar_one() == 0


def _two_series(skip: int | None = None) -> Document:
    """Two usage points of 24 hourly readings; ``skip`` leaves one start out of the second."""
    points = []
    for up in ("1", "2"):
        cols = ReadingColumns()
        for i in range(24):
            if up == "2" and i == skip:
                continue
            cols.append(T0 + i * 3600, 3600, i + 1)
        mr = MeterReading(
            id="1",
            href=f"Subscription/6/UsagePoint/{up}/MeterReading/1",
            reading_type=ReadingType(uom=72, interval_length=3600),
            interval_blocks=(IntervalBlock(readings=cols),),
        )
        points.append(
            UsagePoint(id=up, href=f"Subscription/6/UsagePoint/{up}", meter_readings=(mr,))
        )
    return Document(usage_points=tuple(points))


def test_reconciliation_of_many_series_at_once(
    pair: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    # R64 over several series in one query: a reading lost on the way into one of them fails
    # the whole resource; a stored reading the document does not repeat is fine.
    _sqlite, pg = pair
    real = _ingest._rows

    def lossy(mr_id: int, *args: Any) -> Any:
        rows = list(real(mr_id, *args))
        return iter(rows[:-1] if rows[0][2] == second else rows)  # one of series 2's lost

    ingest_document(pg, _two_series())
    with pg.connect() as conn:
        second = conn.execute(
            text("SELECT id FROM usage_points WHERE key LIKE '%UsagePoint/2'")
        ).scalar_one()
    ingest_document(pg, _two_series(skip=5))  # 23 of series 2: the stored 24th is kept
    assert len(_snapshot(pg)) == 48
    with pg.begin() as conn:
        conn.execute(text("DELETE FROM readings"))
    monkeypatch.setattr(_ingest, "_rows", lossy)
    with pytest.raises(_ingest.ReconciliationError, match="UsagePoint/2"):
        ingest_document(pg, _two_series())
    assert _snapshot(pg) == []
