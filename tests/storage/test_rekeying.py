"""SECURITY R65: identity survives the custodian re-keying MeterReading ids.

PG&E's "Meter ID Phase 2" (2024-06-20) re-encoded MeterReading ids: the same readings came
back under new paths. Stored by path alone, every re-keyed series would be a second copy
of the same intervals. Ingest follows the re-key instead (same Atom id, else the only
stored and the only new series of one ReadingType), logs it, and stores no duplicate; a
genuinely new series is never merged into an old one. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import re
import uuid

import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")

from sqlalchemy import func, select

from greenbutton import parse
from greenbutton.storage import Store, export_readings, ingest_document
from greenbutton.storage._schema import meter_readings, readings
from tests.conftest import FIXTURES

FIXTURE = FIXTURES / "gba_demo_15min_15days.xml"
OLD, NEW = "MeterReading/01", "MeterReading/9001"


def _count(store: Store, table: object) -> int:
    with store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _series(store: Store) -> list[str]:
    with store.connect() as conn:
        return sorted(str(k) for (k,) in conn.execute(select(meter_readings.c.key)))


def _rekeyed(text: str, *, new_atom_ids: bool) -> bytes:
    out = text.replace(OLD, NEW)
    if new_atom_ids:
        out = re.sub(r"urn:uuid:[0-9A-Fa-f-]{36}", lambda _m: f"urn:uuid:{uuid.uuid4()}", out)
    assert out != text
    return out.encode()


@pytest.mark.parametrize("new_atom_ids", [False, True], ids=["same-atom-id", "new-atom-id"])
def test_the_same_readings_under_a_new_meter_reading_id_are_not_duplicated(
    store: Store, new_atom_ids: bool, caplog: pytest.LogCaptureFixture
) -> None:
    text = FIXTURE.read_text(encoding="utf-8")
    ingest_document(store, parse(text.encode()), namespace="pge")
    before_rows = _count(store, readings)
    before = [(r.start, r.raw_value, r.value) for r in export_readings(store)]
    assert before_rows > 0 and len(_series(store)) == 1

    with caplog.at_level(logging.WARNING, logger="greenbutton.storage"):
        ingest_document(store, parse(_rekeyed(text, new_atom_ids=new_atom_ids)), namespace="pge")
    assert _count(store, readings) == before_rows  # no duplicate intervals
    (key,) = _series(store)
    assert key.endswith(NEW)  # the stored series follows the custodian's new id
    after = list(export_readings(store))
    assert [(r.start, r.raw_value, r.value) for r in after] == before
    assert {r.meter_reading for r in after} == {key}
    assert any("re-keyed" in m and "R65" in m for m in caplog.messages)


def test_a_new_series_of_another_reading_type_is_not_merged(store: Store) -> None:
    """The control: a MeterReading with a new id *and* another ReadingType (here: another
    unit) is a series of its own, even though the old id is gone from the document."""
    text = FIXTURE.read_text(encoding="utf-8")
    ingest_document(store, parse(text.encode()), namespace="pge")
    rows = _count(store, readings)
    other = _rekeyed(text, new_atom_ids=True).decode()
    other, n = re.subn(r"<uom>\d+</uom>", "<uom>38</uom>", other)  # Wh -> W: another quantity
    assert n >= 1
    ingest_document(store, parse(other.encode()), namespace="pge")
    assert len(_series(store)) == 2 and _count(store, readings) == 2 * rows
