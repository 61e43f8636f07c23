"""A large feed (a Bulk file of thousands of customers) as a series of small Documents.

:func:`~greenbutton.parse.parse` holds every reading of a document at once; a year of
15-minute data for 2,000 customers is ~70M readings. Here the feed is read twice, as
:func:`~greenbutton.parse.iter_readings` does: pass one checks every entry (blocks
included, so a malformed file yields nothing) and keeps only the small records (usage
points, meter readings, reading types, local time, summaries), linked by the same
:class:`~greenbutton.parse._links.Linker` rules as :func:`parse`; pass two re-reads the
blocks one at a time, attaches each to its meter, and hands out a Document whenever the
readings held would pass the bound. Knowing every ReadingType and every MeterReading of a
usage point before the first batch means blocks never wait for their ReadingType, whatever
the entry order, and each batch names all of a usage point's meter readings (what the
re-keying rule, SECURITY R65, looks at).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from ..models import Document, LocalTimeParameters, ReadingType
from ._document import FeedInfo, _point, read_feed_info
from ._links import Linker, PointNode
from ._records import Record, read_entry
from ._xml import ATOM, Limits, Source, iter_elements

__all__ = ["BATCH_READINGS", "Metadata", "read_batches", "read_metadata", "write_parts"]

#: Readings a batch holds at most (unless one IntervalBlock alone holds more): ~100 bytes
#: each in columns, so about 20 MB.
BATCH_READINGS = 200_000

_FEED = f"{{{ATOM}}}feed"
_ENTRY = f"{{{ATOM}}}entry"
_BLOCK = "IntervalBlock"


@dataclass(slots=True)
class Metadata:
    """Pass one: every record but the blocks, and what decides whether batching applies."""

    records: list[Record]
    feed: FeedInfo
    root: str  # "feed", "entry" or the resource root's kind
    blocks: int  # IntervalBlock entries
    linked: bool  # some record has a self, up or related link
    warnings: list[str]

    @property
    def batchable(self) -> bool:
        """A feed with links: an entry, a bare resource or a link-less file (grouped in
        document order) is read whole, as :func:`parse` does."""
        return self.root == "feed" and (self.linked or not self.blocks)


def read_metadata(source: Source, *, limits: Limits, name: str | None) -> Metadata:
    """Pass one. Every entry is read and checked, blocks too, but block readings are let go
    at once."""
    records: list[Record] = []
    warnings: list[str] = []
    feed, root, blocks, linked, index = FeedInfo(), "feed", 0, False, 0
    for kind, el in iter_elements(source, limits=limits, name=name):
        if kind == "entry":
            rec = read_entry(
                el, index, keep_readings=False, limits=limits, name=name, warnings=warnings
            )
            index += 1
            if rec is None:
                continue
            linked = linked or bool(rec.self or rec.up or rec.related)
            if rec.kind == _BLOCK:
                blocks += 1
            else:
                records.append(rec)
        elif el.tag == _FEED:
            feed = read_feed_info(el)
        elif el.tag == _ENTRY:
            root = "entry"
        else:
            root = str(el.tag)
    return Metadata(records, feed, root, blocks, linked, warnings)


def read_batches(
    source: Source, meta: Metadata, *, max_readings: int, limits: Limits, name: str | None
) -> Iterator[Document]:
    """Pass two: Documents of at most ``max_readings`` readings (one block more only when
    it alone is larger). Each holds the usage points whose blocks it carries, each with
    all its meter readings; the last also holds the usage points that have no blocks.
    Blocks of a series in two batches keep document order (last occurrence wins)."""
    linker = Linker(meta.records, meta.warnings)
    linker.finish()  # summaries onto their usage points
    rts = tuple(r.resource for r in meta.records if isinstance(r.resource, ReadingType))
    ltps = tuple(r.resource for r in meta.records if isinstance(r.resource, LocalTimeParameters))
    emitted: set[str] = set()
    touched: dict[str, PointNode] = {}
    held = 0

    def batch(points: list[PointNode]) -> Document:
        warnings: list[str] = []
        ups = []
        for p in points:
            ups.append(_point(p, warnings))
            emitted.add(p.key)
            for m in p.meters:
                m.blocks = []  # handed out: the next batch starts empty
        return Document(
            usage_points=tuple(ups),
            reading_types=rts,
            local_time_parameters=ltps,
            feed_id=meta.feed.id,
            feed_title=meta.feed.title,
            feed_href=meta.feed.href,
            warnings=tuple(dict.fromkeys(warnings)),
        )

    index = 0
    for kind, el in iter_elements(source, limits=limits, name=name):
        if kind != "entry":
            continue
        rec = read_entry(el, index, keep_readings=True, limits=limits, name=name, warnings=[])
        index += 1
        if rec is None or rec.kind != _BLOCK:
            continue
        n = len(rec.readings) if rec.readings is not None else 0
        if held and held + n > max_readings:
            yield batch(list(touched.values()))
            touched, held = {}, 0
        meter = linker.add_block(rec)
        point = linker.point_of_meter[id(meter)]
        touched.setdefault(point.key, point)
        held += n
    rest = [p for k, p in linker.points.items() if k not in emitted and k not in touched]
    yield batch([*touched.values(), *rest])


_HEADER = b'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'


def write_parts(
    source: Source,
    meta: Metadata,
    directory: Path,
    parts: int,
    *,
    limits: Limits,
    name: str | None,
) -> list[Path]:
    """Pass two of :func:`~greenbutton.parse.split_feed`: each usage point's entries (its
    UsagePoint, MeterReadings, IntervalBlocks, summaries) go to one part, round robin in
    document order; ReadingTypes, LocalTimeParameters and entries of no usage point go to
    every part, so each part links as the whole feed does (the same "only ReadingType" and
    "only LocalTimeParameters" fallbacks). Entries are copied as they are (lxml's
    serialisation of the parsed entry), not rewritten."""
    linker = Linker(meta.records, [])
    point_at: dict[int, PointNode] = {}  # pass-one record index -> its usage point
    for r in meta.records:
        if r.kind == "UsagePoint":
            point_at[r.index] = linker.point_of[id(r)]
        elif r.kind == "MeterReading":
            point_at[r.index] = linker.point_of_meter[id(linker.meter_of[id(r)])]
        elif r.kind in ("UsageSummary", "ElectricPowerUsageSummary"):
            summary_point = linker.parent_point(r)
            if summary_point is not None:
                point_at[r.index] = summary_point
    part_of: dict[str, int] = {}
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"part-{k:04d}.xml" for k in range(parts)]
    files = [p.open("wb") for p in paths]
    try:
        for f in files:
            f.write(_HEADER)
        index = 0
        for kind, el in iter_elements(source, limits=limits, name=name):
            if kind != "entry":
                continue
            i = index
            index += 1
            point = point_at.get(i)
            if point is None:
                rec = read_entry(el, i, keep_readings=False, limits=limits, name=name, warnings=[])
                if rec is not None and rec.kind == _BLOCK:
                    meter = linker.add_block(rec)
                    meter.blocks = []  # only its usage point is wanted here
                    point = linker.point_of_meter[id(meter)]
            data = etree.tostring(el) + b"\n"
            if point is None:
                for f in files:
                    f.write(data)
                continue
            k = part_of.setdefault(point.key, len(part_of) % parts)
            files[k].write(data)
        for f in files:
            f.write(b"</feed>\n")
    finally:
        for f in files:
            f.close()
    return paths
