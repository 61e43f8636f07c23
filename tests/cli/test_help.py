"""Every command's help (issue 12.5): an ``Examples:`` block, and nothing a user cannot
look up — no references to internal documents (DESIGN, SECURITY rule numbers, STYLE,
ESPI_NOTES, issue numbers)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from greenbutton.cli import cli

INTERNAL = re.compile(r"DESIGN \d|SECURITY|\bR\d\d\b|ESPI_NOTES|STYLE \d|issue \d+")


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


COMMANDS = list(_commands(cli))


def test_the_walk_found_the_commands() -> None:
    assert {("export",), ("sync",), ("worker",), ("config", "init"), ("admin", "add-user")} <= set(
        COMMANDS
    )


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_has_examples_and_no_internal_references(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="greenbutton")
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Examples:" in text
    block = text.split("Examples:", 1)[1].split("Options:", 1)[0]
    assert f"greenbutton {' '.join(path)}" in block  # the examples run this very command
    assert INTERNAL.findall(text) == []


def test_the_top_level_help_does_not_cut_descriptions() -> None:
    text = CliRunner().invoke(cli, ["--help"], prog_name="greenbutton").output
    assert "..." not in text.split("Commands:", 1)[1]
