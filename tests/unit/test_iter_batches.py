"""``parse.iter_batches``: a feed as small Documents that together hold what ``parse`` gives.

The storage layer ingests a Bulk file batch by batch (``storage.ingest_bulk``); these tests
pin the parser half: same usage points, meter readings, ReadingTypes and readings (last
occurrence of a start winning) as one ``parse``, on every fixture, in any entry order, and
never more readings in a batch than the bound (one block larger than it comes alone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from greenbutton import ParseError, parse
from greenbutton.models import (
    Document,
    IntervalBlock,
    MeterReading,
    ReadingColumns,
    ReadingType,
    UsagePoint,
)
from greenbutton.parse import iter_batches, series_key
from greenbutton.table import to_xml
from tests.conftest import FIXTURES

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
BULK = FIXTURES / "pge_smd_bulk_day_2019-10-16.xml"
FEEDS = sorted(p for p in FIXTURES.glob("*.xml") if p.stat().st_size < 3_000_000)

Table = dict[tuple[str, str, int], tuple[int, ...]]


def table(docs: list[Document]) -> tuple[Table, dict[tuple[str, str], Any], set[str]]:
    """Readings by (usage point, meter reading, start), last occurrence winning; the
    ReadingType of each series; the usage points."""
    rows: Table = {}
    types: dict[tuple[str, str], Any] = {}
    points: set[str] = set()
    for doc in docs:
        for up in doc.usage_points:
            points.add(series_key(up))
            for mr in up.meter_readings:
                key = (series_key(up), series_key(mr))
                types[key] = mr.reading_type
                for block in mr.interval_blocks:
                    c = block.readings
                    for i, start in enumerate(c.start):
                        rows[(*key, start)] = (
                            c.duration[i], c.value[i], c.cost[i], c.quality[i], c.tou[i],
                        )  # fmt: skip
    return rows, types, points


def block_sizes(doc: Document) -> list[int]:
    return [len(b.readings) for mr in doc.meter_readings for b in mr.interval_blocks]


def _parses(path: Path) -> bool:
    try:
        parse(path)
    except ParseError:
        return False
    return True


@pytest.mark.parametrize("bound", [1, 97, 10_000])
@pytest.mark.parametrize("path", [p for p in FEEDS if _parses(p)], ids=lambda p: p.name)
def test_batches_hold_what_parse_gives_and_never_more_than_the_bound(
    path: Path, bound: int
) -> None:
    whole = parse(path)
    batches = list(iter_batches(path, max_readings=bound))
    assert table(batches) == table([whole])
    largest_block = max([0, *block_sizes(whole)])
    for doc in batches:
        assert sum(block_sizes(doc)) <= max(bound, largest_block)


DAY, STEP = 1_700_006_400, 900


def bulk_feed(customers: int, days: int) -> bytes:
    """A Bulk-shaped feed: per customer, delivered and received energy in daily blocks."""
    rts = [ReadingType(uom=72, power_of_ten_multiplier=p, interval_length=STEP, kind=12,
                       flow_direction=f) for p, f in ((0, 1), (-3, 19))]  # fmt: skip
    points = []
    for c in range(customers):
        meters = []
        for m, rt in enumerate(rts, start=1):
            blocks = []
            for d in range(days):
                cols = ReadingColumns()
                for i in range(96):
                    cols.append(DAY + d * 86400 + i * STEP, STEP, (c * 7 + m * 3 + i) % 1000)
                blocks.append(IntervalBlock(readings=cols))
            href = f"Subscription/{c}/UsagePoint/{c}/MeterReading/{m}"
            meters.append(
                MeterReading(id=str(m), href=href, reading_type=rt, interval_blocks=tuple(blocks))
            )
        points.append(
            UsagePoint(
                id=str(c), href=f"Subscription/{c}/UsagePoint/{c}", meter_readings=tuple(meters)
            )
        )
    return to_xml(Document(usage_points=tuple(points)))


def test_a_bulk_file_is_cut_into_many_batches_per_usage_point(tmp_path: Path) -> None:
    path = tmp_path / "bulk.xml"
    path.write_bytes(bulk_feed(customers=6, days=3))
    whole = parse(path)
    batches = list(iter_batches(path, max_readings=200))
    assert len(whole.usage_points) == 6 and whole.reading_count == 6 * 2 * 3 * 96
    assert len(batches) >= whole.reading_count // 200
    assert table(batches) == table([whole])
    for doc in batches:
        assert 0 < sum(block_sizes(doc)) <= 200
    # each batch names all of a usage point's meter readings (what R65 decides on)
    meters = {series_key(up): len(up.meter_readings) for up in whole.usage_points}
    for doc in batches:
        for up in doc.usage_points:
            assert len(up.meter_readings) == meters[series_key(up)]


def _reordered(path: Path) -> bytes:
    """The feed with every IntervalBlock entry first, before its MeterReading and
    ReadingType (a custodian free to order a flat feed any way)."""
    root = etree.parse(str(path)).getroot()
    entries = root.findall(f"{{{ATOM}}}entry")
    blocks = [e for e in entries if e.find(f".//{{{ESPI}}}IntervalBlock") is not None]
    assert blocks and len(blocks) < len(entries)
    for e in entries:
        root.remove(e)
    for e in [*reversed(blocks), *(e for e in entries if e not in blocks)]:
        root.append(e)
    return etree.tostring(root)


@pytest.mark.parametrize("synthetic", [False, True], ids=["pge", "many-customers"])
def test_blocks_before_their_reading_type_get_it_all_the_same(
    tmp_path: Path, synthetic: bool
) -> None:
    path = BULK
    if synthetic:
        path = tmp_path / "bulk.xml"
        path.write_bytes(bulk_feed(customers=3, days=2))
    moved = _reordered(path)
    rows, types, points = table(list(iter_batches(moved, max_readings=50)))
    assert (rows, types, points) == table([parse(path)])
    assert all(rt is not None and rt.uom is not None for rt in types.values())


def test_a_malformed_block_at_the_end_yields_no_batch() -> None:
    text = BULK.read_text(encoding="utf-8")
    cut = text.rfind("<ns0:value>")
    assert cut > 0
    bad = (text[:cut] + "<ns0:value>twelve" + text[text.index("</ns0:value>", cut) :]).encode()
    with pytest.raises(ParseError):
        parse(bad)
    batches = iter_batches(bad, max_readings=10)
    with pytest.raises(ParseError):
        next(batches)


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_readings"):
        next(iter_batches(BULK, max_readings=0))


def test_pass_one_keeps_no_readings(tmp_path: Path) -> None:
    """What is held for the whole file is the small records: no block, no reading."""
    from greenbutton.parse import Limits
    from greenbutton.parse._stream import read_metadata

    path = tmp_path / "bulk.xml"
    path.write_bytes(bulk_feed(customers=4, days=2))
    meta = read_metadata(path, limits=Limits(), name=None)
    assert meta.blocks == 4 * 2 * 2 and meta.batchable
    assert {r.kind for r in meta.records} == {"UsagePoint", "MeterReading", "ReadingType"}
    assert all(r.readings is None for r in meta.records)


@pytest.mark.parametrize("parts", [1, 4])
@pytest.mark.parametrize("synthetic", [False, True], ids=["pge", "many-customers"])
def test_split_parts_hold_the_whole_feed_each_usage_point_in_one(
    tmp_path: Path, parts: int, synthetic: bool
) -> None:
    from greenbutton.parse import split_feed

    path = BULK
    if synthetic:
        path = tmp_path / "bulk.xml"
        path.write_bytes(bulk_feed(customers=7, days=2))
    files = split_feed(path, tmp_path / "parts", parts)
    assert len(files) == parts
    docs = [parse(f) for f in files]
    assert table(docs) == table([parse(path)])
    owners = [series_key(up) for d in docs for up in d.usage_points if up.meter_readings]
    assert len(owners) == len(set(owners))  # no usage point in two parts
    if synthetic and parts > 1:
        assert all(d.reading_count for d in docs)  # round robin: every part has work


def test_a_feed_without_links_is_not_split(tmp_path: Path) -> None:
    import re

    from greenbutton.parse import split_feed

    unlinked = re.sub(rb"<ns1:link [^>]*/>", b"", BULK.read_bytes())
    assert "no links" in " ".join(parse(unlinked).warnings)
    with pytest.raises(ValueError, match="ingest it whole"):
        split_feed(unlinked, tmp_path, 2)
    assert not list(tmp_path.iterdir())  # nothing written
