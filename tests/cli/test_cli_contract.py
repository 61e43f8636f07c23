"""CLI contracts (DESIGN 3.2, STYLE 7): every command documented, errors as one line."""

from __future__ import annotations

import click
from click.testing import CliRunner

from greenbutton.cli import cli


def test_every_command_has_help_text() -> None:
    assert cli.commands, "no commands registered"
    for name, command in cli.commands.items():
        assert command.help and len(command.help.strip()) > 20, name
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"{name} {param.opts} has no help"


def test_top_level_help_lists_the_file_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("export", "inspect", "plot"):
        assert name in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2


def test_error_is_one_line_without_traceback(tmp_path: object) -> None:
    from pathlib import Path

    bad = Path(str(tmp_path)) / "bad.xml"
    bad.write_text("<html><body>not green button</body></html>")
    for command in ("inspect", "export"):
        result = CliRunner().invoke(cli, [command, str(bad)])
        assert result.exit_code == 1, (command, result.output)
        assert result.stderr.startswith("error: ")
        assert "root element <html>" in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1


def test_debug_shows_the_traceback(tmp_path: object) -> None:
    from pathlib import Path

    bad = Path(str(tmp_path)) / "bad.xml"
    bad.write_text("<html/>")
    result = CliRunner().invoke(cli, ["--debug", "export", str(bad)])
    assert result.exit_code == 1
    assert result.exception is not None


def test_json_output_has_one_shared_definition() -> None:
    """STYLE 7 (sqlite-utils ``output_options``): ``--json`` is defined once, in
    cli/_output.py; commands use the decorator instead of their own click.option."""
    from pathlib import Path

    import greenbutton.cli as package

    folder = Path(package.__file__).parent
    own = [p.name for p in folder.glob("*.py") if '"--json"' in p.read_text()]
    assert own == ["_output.py"]
    for name in ("accounts", "inspect"):
        (option,) = [p for p in cli.commands[name].params if "--json" in p.opts]
        assert option.name == "as_json" and option.is_flag  # type: ignore[attr-defined]


def test_json_layout_of_each_command_is_unchanged(tmp_path: object) -> None:
    """What scripts diff: accounts indents by 1, inspect by 2 and keeps non-ASCII."""
    from pathlib import Path

    from tests.conftest import FIXTURES

    db = f"sqlite:///{Path(str(tmp_path)) / 'gb.db'}"
    result = CliRunner().invoke(cli, ["accounts", "--database", db, "--json"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "[]\n"
    fixture = str(FIXTURES / "gba_gas_monthly_therm.xml")
    result = CliRunner().invoke(cli, ["inspect", "--json", fixture])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith('{\n  "files": [\n    {\n')
