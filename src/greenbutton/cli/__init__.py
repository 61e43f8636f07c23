"""The ``greenbutton`` command line (DESIGN 3.2).

Commands are thin: they parse arguments, call the SDK and format output. Errors become one
``error: ...`` line on stderr with exit status 1 (usage errors exit 2); ``--debug`` shows
the traceback instead. Each command lives in its own module and registers itself here.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from typing import Any

import click

from .._errors import GreenButtonError
from ._logging import configure_logging, log_options

__all__ = ["main"]


class _Group(click.Group):
    """Turns expected failures into one ``error: ...`` line instead of a traceback, and lists
    each command with its whole first sentence (click cuts them at the terminal width)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=300)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise  # the reader went away (`| head`): click ends quietly (status 1, no message)
        except (GreenButtonError, OSError) as exc:
            if ctx.meta.get("greenbutton.debug"):
                raise
            raise click.ClickException(_one_line(exc)) from exc

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **kwargs: Any
    ) -> Any:
        if not kwargs.pop("standalone_mode", True):
            return super().main(args, prog_name, standalone_mode=False, **kwargs)
        try:
            rv = super().main(args, prog_name, standalone_mode=False, **kwargs)
        except click.UsageError as exc:  # click's usage text, exit 2
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        except BrokenPipeError:  # `greenbutton export f.xml | head`
            sys.exit(0)
        sys.exit(rv if isinstance(rv, int) else 0)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or exc}: {exc.filename}"
    return " ".join(str(exc).split()) or type(exc).__name__


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _param, value: _version(ctx) if value else None,
    help="Show the version and how this install parses (compiled or pure Python), then exit.",
)
@log_options(group=True)
@click.pass_context
def cli(ctx: click.Context, debug: bool, log_format: str, log_level: str) -> None:
    """Green Button toolkit: read, inspect, export and plot Green Button files; fetch them
    from a utility (Connect My Data); run the third-party site, its workers and a local
    simulated utility."""
    ctx.meta["greenbutton.debug"] = debug
    configure_logging(log_format.lower(), log_level.lower())


def _version(ctx: click.Context) -> None:
    from importlib.metadata import version

    from ..parse import accelerator

    click.echo(f"greenbutton, version {version('greenbutton')} (parser: {accelerator()})")
    ctx.exit(0)


def _exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C instead of killing the process where it stands: context
    managers run, so a progress bar gives the terminal its cursor back, a database
    transaction rolls back and temporary files go (issue 12.5). Commands with their own
    handler (``worker``) install it later and win."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (also ``python -m greenbutton``)."""
    _exit_on_sigterm()
    cli.main(args=list(argv) if argv is not None else None, prog_name="greenbutton")


def _register() -> None:
    # Imported for their side effect of adding commands to ``cli``.
    from . import (  # noqa: F401
        _admin,
        _configure,
        _db,
        _demo,
        _files,
        _inspect,
        _plot,
        _sdk,
        _serve,
        _simulator,
        _worker,
    )


_register()

if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
