"""The one definition of the output options that commands printing facts share (STYLE 7,
after sqlite-utils ``cli.output_options``): ``--json`` and how JSON is printed.

A command decorated with :func:`output_options` receives ``as_json``; it builds one
JSON-ready value and, with ``--json``, prints it through :func:`echo_json`, otherwise its
text view. The indentation each command has always printed is part of its contract
(scripts parse and diff it), so ``echo_json`` takes it from the command.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["echo_json", "output_options"]

F = TypeVar("F", bound=Callable[..., Any])


def output_options(help: str = "Print the same facts as one JSON document.") -> Callable[[F], F]:
    """Add ``--json`` (parameter ``as_json``) to a command; ``help`` says what it prints."""

    def decorate(fn: F) -> F:
        return click.option("--json", "as_json", is_flag=True, help=help)(fn)

    return decorate


def echo_json(value: Any, *, indent: int = 2, ensure_ascii: bool = True) -> None:
    """``value`` as JSON on stdout, one document ending in a newline."""
    click.echo(json.dumps(value, indent=indent, ensure_ascii=ensure_ascii))
