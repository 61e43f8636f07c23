"""The readings table (DESIGN 3.3) written as CSV, JSONL or Parquet: the one writer of each.

``export``, ``fetch`` and :func:`greenbutton.table._frames.write_parquet` all write through
:func:`write_readings`; the CLI only picks the rows and the destination (sqlite-utils keeps
file formats in the library the same way). Rows are streamed, so a file of any size is
written in bounded memory (Parquet in row groups of ``_BATCH`` rows).

A path is written atomically: a temporary file in the destination's own folder, flushed
and fsynced, then renamed onto the name, so a failure leaves no partial file and a reader
never sees half a table. A missing folder is a :class:`FileNotFoundError` naming that
folder, not the temporary name. A file object is written as it is (nothing to rename).

This module belongs to the ``table/`` layer of STYLE 1 (rows, frames, writers); it is
flat, beside ``_table.py`` and ``frames.py``, until that folder exists.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal, cast

from .._errors import ConfigurationError
from .._util import atomic_file
from ..models import COLUMNS, DEFAULT_COST_SCALE, Document, Reading, Series
from ..models._rows import format_start

__all__ = [
    "FORMATS",
    "ReadingsFormat",
    "document_rows",
    "format_for",
    "write_readings",
]

ReadingsFormat = Literal["csv", "jsonl", "parquet"]
#: The formats :func:`write_readings` writes.
FORMATS: tuple[ReadingsFormat, ...] = ("csv", "jsonl", "parquet")
#: File-name suffixes that name a format; anything else is CSV.
_SUFFIXES: dict[str, ReadingsFormat] = {
    "csv": "csv",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "parquet": "parquet",
    "pq": "parquet",
}
_BATCH = 65_536
_TEXT_COLUMNS = frozenset({"flow_direction", "kind", "commodity"})  # code name or int code


def format_for(path: str | os.PathLike[str] | None) -> ReadingsFormat:
    """The format a destination's suffix names (``.parquet``/``.pq``, ``.jsonl``/``.ndjson``),
    else ``csv``."""
    if path is None:
        return "csv"
    return _SUFFIXES.get(Path(path).suffix.lower().lstrip("."), "csv")


def document_rows(document: Document, *, cost_scale: int = DEFAULT_COST_SCALE) -> Iterator[Reading]:
    """The readings table of a parsed document, in document order."""
    from ..parse import series_key

    for up in document.usage_points:
        for mr in up.meter_readings:
            series = Series.of(series_key(up), series_key(mr), mr.reading_type, cost_scale)
            yield from series.rows(mr.readings)


def write_readings(
    rows: Iterable[Reading],
    target: str | os.PathLike[str] | IO[Any],
    *,
    format: ReadingsFormat | None = None,
) -> int:
    """Write readings-table rows to ``target`` (a path, or an open file); returns the count.

    ``format`` is ``csv`` (header row, ``start`` as ``YYYY-MM-DDTHH:MM:SSZ``, empty cells
    for missing values), ``jsonl`` (one object per row, ``null`` for missing) or
    ``parquet`` (typed columns, ``start`` a UTC timestamp); by default it follows the
    path's suffix, else CSV. A path is replaced atomically (module docstring). A file
    object may be text or binary for CSV/JSONL; Parquet needs a binary one.
    """
    fmt = format or (format_for(target) if isinstance(target, str | os.PathLike) else "csv")
    if fmt not in FORMATS:
        raise ConfigurationError(f"unknown readings format {fmt!r}; use one of {FORMATS}")
    if fmt == "parquet":
        _need_pyarrow()
    if not isinstance(target, str | os.PathLike):
        return _write_to(rows, target, fmt)
    with atomic_file(Path(target), "wb") as fh:
        return _write_to(rows, fh, fmt)


def _write_to(rows: Iterable[Reading], out: IO[Any], fmt: ReadingsFormat) -> int:
    if fmt == "parquet":
        return _write_parquet(rows, out)
    if isinstance(out, io.TextIOBase) or hasattr(out, "encoding"):
        return _write_text(rows, cast(IO[str], out), fmt)
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        return _write_text(rows, text, fmt)
    finally:
        text.flush()
        text.detach()  # the caller's file stays open


def _write_text(rows: Iterable[Reading], out: IO[str], fmt: ReadingsFormat) -> int:
    return _write_csv(rows, out) if fmt == "csv" else _write_jsonl(rows, out)


def _write_csv(rows: Iterable[Reading], out: IO[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    n = 0
    for row in rows:
        writer.writerow(
            ["" if v is None else v for v in (*row[:2], format_start(row.start), *row[3:])]
        )
        n += 1
    return n


def _write_jsonl(rows: Iterable[Reading], out: IO[str]) -> int:
    n = 0
    for row in rows:
        record = row._asdict()
        record["start"] = format_start(row.start)
        out.write(json.dumps(record, separators=(",", ":")))
        out.write("\n")
        n += 1
    return n


def _need_pyarrow() -> None:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "Parquet needs pyarrow; install it with: pip install 'greenbutton[frames]'"
        ) from None


def _parquet_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("usage_point", pa.string()),
            ("meter_reading", pa.string()),
            ("start", pa.timestamp("s", tz="UTC")),
            ("duration", pa.int64()),
            ("raw_value", pa.int64()),
            ("value", pa.float64()),
            ("uom", pa.string()),
            ("flow_direction", pa.string()),
            ("kind", pa.string()),
            ("commodity", pa.string()),
            ("interval_length", pa.int64()),
            ("cost", pa.float64()),
            ("currency", pa.string()),
            ("quality", pa.string()),
            ("tou", pa.int64()),
        ]
    )


def _write_parquet(rows: Iterable[Reading], out: IO[bytes]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schema()
    n = 0
    with pq.ParquetWriter(out, schema) as writer:
        batch: list[Reading] = []

        def flush() -> None:
            columns = {}
            for i, name in enumerate(COLUMNS):
                values = [r[i] for r in batch]
                if name in _TEXT_COLUMNS:
                    values = [None if v is None else str(v) for v in values]
                columns[name] = values
            writer.write_table(pa.Table.from_pydict(columns, schema=schema))

        for row in rows:
            batch.append(row)
            n += 1
            if len(batch) >= _BATCH:
                flush()
                batch = []
        if batch or n == 0:
            flush()
    return n
