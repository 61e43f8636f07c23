"""``greenbutton export``: the readings table (DESIGN 3.3) of ESPI files as CSV, JSONL or
Parquet.

Rows are streamed (``iter_readings``), so files of any size export in bounded memory. An
output file is written beside its destination and renamed into place only when complete:
a failure leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import click

from .._errors import ConfigurationError
from .._table import COLUMNS, Reading, format_start
from ..parse import iter_readings
from . import cli

__all__ = ["export"]

_BATCH = 65_536


def _rows(paths: Iterable[Path]) -> Iterator[Reading]:
    for path in paths:
        yield from iter_readings(path)


def _stored_rows(url: str | None) -> Iterator[Reading]:
    """Rows of ``storage.export_readings``: the same columns as for files."""
    from ..storage import Store, export_readings

    with Store.open(url) as store:
        yield from export_readings(store)


def _text_row(row: Reading) -> dict[str, Any]:
    d = row._asdict()
    d["start"] = format_start(row.start)
    return d


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
        out.write(json.dumps(_text_row(row), separators=(",", ":")))
        out.write("\n")
        n += 1
    return n


def _write_parquet(rows: Iterable[Reading], path: str) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigurationError(
            "Parquet needs pyarrow; install it with: pip install 'greenbutton[frames]'"
        ) from None
    schema = pa.schema(
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
    text_columns = {"flow_direction", "kind", "commodity"}
    n = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[Reading] = []

        def flush() -> None:
            columns = {}
            for i, name in enumerate(COLUMNS):
                values = [r[i] for r in batch]
                if name in text_columns:
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _atomic(path: Path, mode: str) -> Iterator[tuple[IO[Any], str]]:
    """A temporary file beside ``path``, renamed onto it only if the block succeeds."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, mode, newline="" if "b" not in mode else None) as fh:
            yield fh, tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; an export is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--db",
    "db_url",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[URL]",
    help="Export the readings stored in this database instead of files (URL optional: "
    "GREENBUTTON_DATABASE_URL, else the user data folder's greenbutton.db).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "parquet"]),
    default=None,
    help="Output format (default: from the -o suffix, else csv).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write here instead of stdout (required for parquet).",
)
def export(
    files: tuple[Path, ...], db_url: str | None, fmt: str | None, output: Path | None
) -> None:
    """Export the readings table of Green Button XML FILES, or of the database (--db).

    Columns (DESIGN 3.3): usage_point, meter_reading, start (UTC), duration, raw_value,
    value, uom, flow_direction, kind, commodity, interval_length, cost, currency,
    quality, tou. One row per (usage_point, meter_reading, start); when a file repeats an
    interval, its last occurrence wins.

    \b
    Examples:
      greenbutton export usage.xml > usage.csv
      greenbutton export usage.xml -o usage.parquet
      greenbutton export *.xml --format jsonl -o all.jsonl
      greenbutton export --db -o stored.csv
    """
    if (db_url is None) == (not files):
        raise click.UsageError("give FILES or --db (one of them)")
    if fmt is None:
        suffix = output.suffix.lower().lstrip(".") if output else ""
        fmt = {"parquet": "parquet", "pq": "parquet", "jsonl": "jsonl", "ndjson": "jsonl"}.get(
            suffix, "csv"
        )
    rows = _rows(files) if db_url is None else _stored_rows(db_url or None)
    if fmt == "parquet":
        if output is None:
            raise click.UsageError("parquet output needs a file: add -o OUT.parquet")
        with _atomic(output, "wb") as (fh, tmp):
            fh.close()
            n = _write_parquet(rows, tmp)
    elif output is None:
        n = (_write_csv if fmt == "csv" else _write_jsonl)(rows, sys.stdout)
        sys.stdout.flush()
        return
    else:
        with _atomic(output, "w") as (fh, _tmp):
            n = (_write_csv if fmt == "csv" else _write_jsonl)(rows, fh)
    click.echo(f"wrote {n} readings to {output}", err=True)
