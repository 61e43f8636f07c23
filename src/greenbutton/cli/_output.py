"""The one definition of the options commands share (STYLE 7, after sqlite-utils
``cli.output_options``): ``--json`` and how JSON is printed, and the FILES argument of the
commands that read Green Button files.

A command decorated with :func:`output_options` receives ``as_json``; it builds one
JSON-ready value and, with ``--json``, prints it through :func:`echo_json`, otherwise its
text view. The indentation each command has always printed is part of its contract
(scripts parse and diff it), so ``echo_json`` takes it from the command.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from .._errors import GreenButtonError
from ..models import Document
from ..parse import ZipMember, documents

__all__ = [
    "FileSource",
    "Window",
    "echo_json",
    "input_files",
    "output_options",
    "source_stem",
    "window_options",
]

#: One document named on the command line: a file, or one XML member of a zip.
FileSource = str | ZipMember

F = TypeVar("F", bound=Callable[..., Any])


def output_options(help: str = "Print the same facts as one JSON document.") -> Callable[[F], F]:
    """Add ``--json`` (parameter ``as_json``) to a command; ``help`` says what it prints."""

    def decorate(fn: F) -> F:
        return click.option("--json", "as_json", is_flag=True, help=help)(fn)

    return decorate


def echo_json(value: Any, *, indent: int = 2, ensure_ascii: bool = True) -> None:
    """``value`` as JSON on stdout, one document ending in a newline."""
    click.echo(json.dumps(value, indent=indent, ensure_ascii=ensure_ascii))


def input_files(*, required: bool = True) -> Callable[[F], F]:
    """Add FILES... (parameter ``files``): Green Button files as downloaded — XML, or a
    ``.zip`` (each XML member is a document) or gzip — handed to the command as parser
    sources. A missing file or a folder is one ``error:`` line and exit 1 (issue 12.4), not
    a usage error: the command line was right, the file is not there."""

    def decorate(fn: F) -> F:
        return click.argument(
            "files",
            nargs=-1,
            required=required,
            type=click.Path(path_type=Path),
            callback=_documents,
        )(fn)

    return decorate


def _documents(
    _ctx: click.Context, _param: click.Parameter, value: Sequence[Path]
) -> tuple[FileSource, ...]:
    found: list[FileSource] = []
    for path in value:
        try:
            found.extend(documents(path))
        except IsADirectoryError:
            raise click.ClickException(
                f"{path} is a folder: name the files in it (e.g. {path}/*.xml)"
            ) from None
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}: {path}") from None
        except GreenButtonError as exc:
            raise click.ClickException(str(exc)) from None
    return tuple(found)


def source_stem(source: FileSource) -> str:
    """A file-name stem for outputs made from ``source`` (a zip member's own name)."""
    return Path(str(source)).stem


_WHEN = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"])


@dataclass(frozen=True, slots=True)
class Window:
    """``--start``/``--end``/``--tz`` of a command that reads files (issue 12.5): dates and
    times are in ``--tz`` when given, else in the document's own time zone (its first usage
    point's LocalTimeParameters), else UTC; ``--tz`` also overrides the document's zone for
    local days (for files whose LocalTimeParameters are wrong)."""

    start: datetime | None = None
    end: datetime | None = None
    tz: str | None = None

    @property
    def active(self) -> bool:
        return self.start is not None or self.end is not None or self.tz is not None

    def zone(self, document: Document | None) -> tzinfo:
        if self.tz is not None:
            return ZoneInfo(self.tz)
        if document is not None and document.usage_points:
            from ..analysis import time_zone_for

            return time_zone_for(document, document.usage_points[0])[0]
        return UTC

    def bounds(self, document: Document | None) -> tuple[datetime | None, datetime | None]:
        zone = self.zone(document)
        return tuple(  # type: ignore[return-value]
            None if t is None else t.replace(tzinfo=zone) for t in (self.start, self.end)
        )

    def apply(self, document: Document) -> Document:
        """``document`` in ``--tz`` and cut to ``[--start, --end)``."""
        if self.tz is not None:
            document = document.with_time_zone(self.tz)
        if self.start is None and self.end is None:
            return document
        return document.between(*self.bounds(document))


def window_options(fn: F) -> F:
    """Add ``--start``, ``--end`` and ``--tz``; the command receives ``window``."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any, start: datetime | None, end: datetime | None, tz: str | None, **kwargs: Any
    ) -> Any:
        if start is not None and end is not None and start >= end:
            raise click.UsageError("--start must be before --end")
        if tz is not None:
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                raise click.BadParameter(
                    f"unknown time zone {tz!r}: use an IANA name such as America/Los_Angeles",
                    param_hint="--tz",
                ) from None
        return fn(*args, window=Window(start, end, tz), **kwargs)

    for option in reversed(
        (
            click.option("--start", type=_WHEN, help="Only readings from this date/time on."),
            click.option("--end", type=_WHEN, help="Only readings before this date/time."),
            click.option(
                "--tz",
                metavar="ZONE",
                help="Read the data in this IANA time zone (e.g. America/Los_Angeles), "
                "whatever the file says; --start/--end are in it too. [default: the file's]",
            ),
        )
    ):
        wrapper = option(wrapper)
    return cast(F, wrapper)
