"""The streaming, hardened ESPI/Atom parser (DESIGN 2.4, SECURITY E).

:func:`parse` reads a whole document into typed models with readings as columns;
:func:`iter_readings` streams readings-table rows in bounded memory. Both accept a path,
bytes or a binary file object, read Download-My-Data files and API responses alike, and
raise :class:`~greenbutton.ParseError` (never an lxml error) on bad input.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..models import (
    DEFAULT_COST_SCALE,
    Document,
    MeterReading,
    Reading,
    ReadingColumns,
    Series,
    UsagePoint,
)
from ._archive import ZipMember, documents
from ._blocks import fold_fractional
from ._document import FeedInfo, assemble, fill_durations, read_feed_info
from ._links import MeterNode, PointNode, link
from ._records import Record, read_entry, read_resource_root
from ._stream import BATCH_READINGS, read_batches, read_metadata, write_parts
from ._xml import ATOM, Limits, Source, iter_elements, parse_own_xml

__all__ = [
    "BATCH_READINGS",
    "Limits",
    "Source",
    "ZipMember",
    "accelerator",
    "documents",
    "iter_batches",
    "iter_readings",
    "parse",
    "parse_own_xml",
    "series_key",
    "split_feed",
]


def accelerator() -> str:
    """How this install parses interval blocks: ``"compiled"`` (the C accelerator built at
    install time), ``"off"`` (built, but ``GREENBUTTON_PURE_PYTHON=1``), or ``"pure
    Python"`` (not built: no C compiler at install, or ``GREENBUTTON_NO_EXTENSION=1``).
    Results are the same either way; only the speed differs."""
    from . import _accel

    if not _accel.available():
        return "pure Python"
    return "compiled" if _accel.refresh() else "off"


_ENTRY = f"{{{ATOM}}}entry"
_FEED = f"{{{ATOM}}}feed"


def _collect(
    source: Source, *, keep_readings: bool, limits: Limits, name: str | None
) -> tuple[list[Record], FeedInfo, str, list[str]]:
    records: list[Record] = []
    warnings: list[str] = []
    feed = FeedInfo()
    root_kind = "feed"
    index = 0
    for kind, el in iter_elements(source, limits=limits, name=name):
        if kind == "entry":
            rec = read_entry(
                el, index, keep_readings=keep_readings, limits=limits, name=name, warnings=warnings
            )
            index += 1
            if rec is not None:
                records.append(rec)
            continue
        if el.tag == _FEED:
            feed = read_feed_info(el)
        elif el.tag == _ENTRY:
            root_kind = "entry"
        else:
            rec = read_resource_root(el, limits=limits, name=name, warnings=warnings)
            root_kind = rec.kind
            records.append(rec)
    fold_fractional(warnings)
    return records, feed, root_kind, warnings


def parse(source: Source, *, limits: Limits | None = None, name: str | None = None) -> Document:
    """Parse a Green Button document (feed, entry, BatchList, ServiceStatus ...).

    ``name`` labels errors (defaults to the file name). Readings are held as columns; use
    :func:`iter_readings` to stream rows of files too large to hold.
    """
    records, feed, root, warnings = _collect(
        source, keep_readings=True, limits=limits or Limits(), name=name
    )
    points = link(records, warnings)
    return assemble(records, points, feed, root, warnings)


def series_key(resource: UsagePoint | MeterReading) -> str:
    """The readings-table key of a UsagePoint or MeterReading (DESIGN 3.3)."""
    return resource.href or resource.atom_id or resource.id


def _rewindable(source: Source) -> tuple[Source, IO[bytes] | None]:
    """A source that can be read twice; unseekable streams are spooled to a temp file."""
    if isinstance(source, bytes | bytearray | memoryview | str | os.PathLike | ZipMember):
        return source, None
    if hasattr(source, "seekable") and source.seekable():
        return source, None
    spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)
    shutil.copyfileobj(source, spool)
    return spool, spool


def iter_readings(
    source: Source,
    *,
    limits: Limits | None = None,
    name: str | None = None,
    cost_scale: int = DEFAULT_COST_SCALE,
) -> Iterator[Reading]:
    """Stream the readings table (DESIGN 3.3) of a document in bounded memory.

    Two passes: the first links the document and records, per IntervalBlock, only the
    range of its starts (and the starts of blocks that overlap earlier ones); the second
    re-reads blocks one at a time and emits their rows, skipping readings that a later
    block repeats (last occurrence wins). The whole document is checked before the first
    row is produced, so a malformed file yields no rows at all.
    """
    limits = limits or Limits()
    src, spool = _rewindable(source)
    try:
        yield from _iter_rows(src, limits, name, cost_scale)
    finally:
        if spool is not None:
            spool.close()


def iter_batches(
    source: Source,
    *,
    max_readings: int = BATCH_READINGS,
    limits: Limits | None = None,
    name: str | None = None,
) -> Iterator[Document]:
    """A feed as Documents of at most ``max_readings`` readings each (a Bulk file too large
    to hold; one IntervalBlock larger than that comes alone), for ingesting in batches.

    Two passes: the first checks the whole document and links its small records, so a
    malformed file yields nothing; the second re-reads blocks one at a time. Each batch
    holds the usage points its blocks belong to, with all their meter readings; the last
    also holds usage points without blocks. Together the batches hold the readings
    :func:`parse` gives, in document order. A document that is not a linked feed (a bare
    resource, an entry, a file without links) comes whole, as one :func:`parse`.
    """
    if max_readings < 1:
        raise ValueError("max_readings must be at least 1")
    limits = limits or Limits()
    src, spool = _rewindable(source)
    try:
        start_pos = src.tell() if hasattr(src, "tell") and hasattr(src, "seek") else None
        meta = read_metadata(src, limits=limits, name=name)
        if start_pos is not None:
            src.seek(start_pos)  # type: ignore[union-attr]
        if not meta.batchable:
            yield parse(src, limits=limits, name=name)
            return
        yield from read_batches(src, meta, max_readings=max_readings, limits=limits, name=name)
    finally:
        if spool is not None:
            spool.close()


def split_feed(
    source: Source,
    directory: str | os.PathLike[str],
    parts: int,
    *,
    limits: Limits | None = None,
    name: str | None = None,
) -> list[Path]:
    """Split a linked feed (a Bulk file) into ``parts`` feeds by usage point, written to
    ``directory`` as ``part-0000.xml`` ...: every entry of a usage point in one part,
    ReadingTypes and LocalTimeParameters in all, so the parts can be ingested side by side
    (by several workers) and together store what the whole feed stores. The whole file is
    checked first (:class:`~greenbutton.ParseError`, nothing written); a document that is
    not a linked feed cannot be split (:class:`ValueError`: ingest it whole)."""
    if parts < 1:
        raise ValueError("parts must be at least 1")
    limits = limits or Limits()
    src, spool = _rewindable(source)
    try:
        start_pos = src.tell() if hasattr(src, "tell") and hasattr(src, "seek") else None
        meta = read_metadata(src, limits=limits, name=name)
        if not meta.batchable:
            raise ValueError("only a feed with links can be split by usage point; ingest it whole")
        if start_pos is not None:
            src.seek(start_pos)  # type: ignore[union-attr]
        return write_parts(src, meta, Path(directory), parts, limits=limits, name=name)
    finally:
        if spool is not None:
            spool.close()


def _iter_rows(
    source: Source, limits: Limits, name: str | None, cost_scale: int
) -> Iterator[Reading]:
    start_pos = source.tell() if hasattr(source, "tell") and hasattr(source, "seek") else None
    records, _feed, _root, warnings = _collect(
        source, keep_readings=False, limits=limits, name=name
    )
    points = link(records, warnings)
    plan = _Plan(points, cost_scale)
    if not plan.series:
        return
    if start_pos is not None:
        source.seek(start_pos)  # type: ignore[union-attr]
    index = 0
    for kind, el in iter_elements(source, limits=limits, name=name):
        if kind != "entry":
            if el.tag not in (_FEED, _ENTRY):
                rec = read_resource_root(el, limits=limits, name=name, warnings=[])
                if rec.readings is not None:  # a bare IntervalBlock document
                    yield from plan.rows(0, rec.readings)
            continue
        i = index
        index += 1
        if i not in plan.series:
            continue
        block = read_entry(el, i, keep_readings=True, limits=limits, name=name, warnings=[])
        if block is not None and block.readings is not None:
            yield from plan.rows(i, block.readings)


class _Plan:
    """Pass-one results: which series each block belongs to, and for series whose blocks
    overlap, which block holds the last occurrence of each start."""

    def __init__(self, points: list[PointNode], cost_scale: int):
        self.series: dict[int, tuple[Series, MeterNode, dict[int, int] | None]] = {}
        for point in points:
            for meter in point.meters:
                s = Series.of(point.key, meter.key, meter.reading_type, cost_scale)
                owners = self._owners(meter)
                for b in meter.blocks:
                    self.series[b.index] = (s, meter, owners)
                    b.readings = None  # starts no longer needed

    @staticmethod
    def _owners(meter: MeterNode) -> dict[int, int] | None:
        # Blocks almost always come in time order without overlap: one comparison each,
        # and nothing kept. Only a series with overlapping blocks maps start -> last block.
        high: int | None = None
        overlap = False
        for b in meter.blocks:
            starts = b.readings.start if b.readings is not None else ()
            if not starts:
                continue
            lo = min(starts)
            if high is not None and lo <= high:
                overlap = True
                break
            high = max(starts)
        if not overlap:
            return None
        owners: dict[int, int] = {}
        for b in meter.blocks:
            if b.readings is not None:
                for s in b.readings.start:
                    owners[s] = b.index
        return owners

    def rows(self, index: int, cols: ReadingColumns) -> Iterator[Reading]:
        entry = self.series.get(index)
        if entry is None:
            return
        series, meter, owners = entry
        fill_durations(cols, meter.reading_type, [], meter.key)
        starts = cols.start
        n = len(starts)
        increasing = all(starts[i] < starts[i + 1] for i in range(n - 1))
        if increasing and owners is None:
            yield from series.rows(cols)
            return
        last = {s: i for i, s in enumerate(starts)}
        keep = [
            i
            for i, s in enumerate(starts)
            if last[s] == i and (owners is None or owners.get(s) == index)
        ]
        yield from series.rows(cols, keep)
