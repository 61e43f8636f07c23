"""The one definition of the options commands share (STYLE 7, after sqlite-utils
``cli.output_options``): ``--json`` and how JSON is printed, and the FILES argument of the
commands that read Green Button files.

A command decorated with :func:`output_options` receives ``as_json``; it builds one
JSON-ready value and, with ``--json``, prints it through :func:`echo_json`, otherwise its
text view. The indentation each command has always printed is part of its contract
(scripts parse and diff it), so ``echo_json`` takes it from the command.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from .._errors import GreenButtonError
from ..parse import ZipMember, documents

__all__ = ["FileSource", "echo_json", "input_files", "output_options", "source_stem"]

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
