"""``greenbutton export``: the readings table (DESIGN 3.3) of ESPI files as CSV, JSONL or
Parquet.

Rows are streamed (``iter_readings``), so files of any size export in bounded memory. The
formats and the atomic write (a failure leaves no partial file) are the library's
:func:`greenbutton.table._files.write_readings`; this command picks rows and destination.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import click

from ..models import Reading
from ..parse import iter_readings, parse
from ..table import ReadingsFormat, document_rows, format_for, write_readings
from . import cli
from ._output import FileSource, Window, input_files, window_options

__all__ = ["export"]


def _rows(paths: Iterable[FileSource], window: Window) -> Iterator[Reading]:
    for path in paths:
        if window.active:  # the window needs the document's time zone: parse it whole
            yield from document_rows(window.apply(parse(path)))
        else:
            yield from iter_readings(path)  # streamed, bounded memory


def _stored_rows(url: str | None, window: Window) -> Iterator[Reading]:
    """Rows of ``storage.export_readings``: the same columns as for files. The database is
    opened before the first row is asked for, so a bad URL prints nothing but the error."""
    from ..storage import Store, export_readings, reading_count

    store = Store.open(url)

    start, end = window.bounds(None)  # stored rows: --tz, else UTC

    def rows() -> Iterator[Reading]:
        with store, _progress("export", lambda: reading_count(store)) as advance:
            for row in export_readings(store):
                advance()
                if (start is None or row.start >= start) and (end is None or row.start < end):
                    yield row

    return rows()


@contextmanager
def _progress(label: str, total: Callable[[], int]) -> Iterator[Callable[[], None]]:
    """A progress bar with an ETA on stderr while rows are read, when stderr is a terminal
    (a 1.4M-row export takes seconds); ``advance()`` counts one row. ``total`` is asked
    only for a bar: counting a large table is not free, and a pipe shows none."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total() or None)
        seen = 0

        def advance() -> None:
            nonlocal seen
            seen += 1
            if seen % 10_000 == 0:  # Rich redraws at 10 Hz anyway: update rarely
                bar.update(task, completed=seen)

        yield advance


def write_table(rows: Iterable[Reading], fmt: ReadingsFormat, output: Path | None) -> int:
    """``rows`` to ``output`` (atomically), or to stdout; Parquet needs a file."""
    if output is not None:
        return write_readings(rows, output, format=fmt)
    if fmt == "parquet":
        raise click.UsageError("parquet output needs a file: add -o OUT.parquet")
    n = write_readings(rows, sys.stdout, format=fmt)
    sys.stdout.flush()
    return n


@cli.command()
@window_options
@input_files(required=False)
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
    files: tuple[FileSource, ...],
    db_url: str | None,
    fmt: str | None,
    output: Path | None,
    window: Window,
) -> None:
    """Export the readings table of Green Button XML FILES, or of the database (--db).

    Columns: usage_point, meter_reading, start (UTC), duration, raw_value,
    value, uom, flow_direction, kind, commodity, interval_length, cost, currency,
    quality, tou. One row per (usage_point, meter_reading, start); when a file repeats an
    interval, its last occurrence wins.

    \b
    Examples:
      greenbutton export usage.xml > usage.csv
      greenbutton export usage.xml -o usage.parquet
      greenbutton export *.xml --format jsonl -o all.jsonl
      greenbutton export --db -o stored.csv
      greenbutton export pge_download.zip --start 2024-01-01 --end 2025-01-01 -o 2024.csv
    """
    if (db_url is None) == (not files):
        raise click.UsageError("give FILES or --db (one of them)")
    rows = _rows(files, window) if db_url is None else _stored_rows(db_url or None, window)
    n = write_table(rows, cast(ReadingsFormat, fmt) if fmt else format_for(output), output)
    if output is not None:
        click.echo(f"wrote {n} readings to {output}", err=True)
