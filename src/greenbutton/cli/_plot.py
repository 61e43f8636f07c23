"""``greenbutton plot``: charts of Green Button files as PNG, SVG or a standalone HTML page.

The drawing lives in :mod:`greenbutton.analysis` (shared with the web dashboard); this module
picks names and formats and turns a missing ``plot`` extra into an install hint.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import click

from .. import analysis
from ..models import Document
from ..parse import parse
from . import cli
from ._output import FileSource, Window, input_files, source_stem, window_options

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["plot_command"]

_FORMATS = ("png", "svg", "html")
_MAX_GROUPS = 12  # a bulk file can hold hundreds of usage points; a figure cannot
_INSTALL_HINT = "plotting needs matplotlib: pip install 'greenbutton[plot]'"


@cli.command("plot")
@window_options
@input_files()
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Output file, or an existing directory (required form for several FILES). "
    "Default: the input's name with the format's suffix, in the current directory.",
)
@click.option(
    "--kind",
    type=click.Choice(["daily", "heatmap", "profile", "all"]),
    default="all",
    show_default=True,
    help="Daily totals, hour-of-day heat map, average daily load profile, or all three.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_FORMATS),
    help="Output format. Default: from the -o suffix, else png.",
)
def plot_command(
    files: tuple[FileSource, ...], output: Path | None, kind: str, fmt: str | None, window: Window
) -> None:
    """Chart the energy use in Green Button FILES, in local time.

    Net-metered usage points (delivered and received energy) show import and export.
    HTML output is one self-contained page (the SVG inline, nothing fetched when viewed).

    \b
    Examples:
      greenbutton plot usage.xml                      # usage.png, daily totals
      greenbutton plot usage.xml --kind all -o usage.html
      greenbutton plot *.xml --kind heatmap -o charts/
      greenbutton plot usage.xml --start 2024-06-01 --end 2024-09-01 -o summer.svg
    """
    charts = _charts()
    fmt = fmt or _format_from(output)
    out_dir: Path | None = None
    if output is not None and output.is_dir():
        out_dir = output
    elif len(files) > 1 and output is not None:
        raise click.UsageError("with several FILEs, -o must be an existing directory")
    kinds = charts.KINDS if kind == "all" else (kind,)
    for path in files:
        target = output if output is not None and out_dir is None else None
        if target is None:
            suffix = "" if kind == "all" else f"-{kind}"
            target = (out_dir or Path()) / f"{source_stem(path)}{suffix}.{fmt}"
        _plot_one(charts, path, target, kinds, fmt, window)
        click.echo(f"wrote {target}")


def _charts() -> ModuleType:
    """The charts module, or the install hint when matplotlib (the plot extra) is missing."""
    from .. import analysis as charts

    try:
        charts.figure  # noqa: B018  (the first chart name imports matplotlib: fail here)
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in {"matplotlib", "numpy", "PIL"}:
            raise click.ClickException(_INSTALL_HINT) from exc
        raise
    return charts


def _format_from(output: Path | None) -> str:
    if output is not None and not output.is_dir():
        suffix = output.suffix.lower().lstrip(".")
        if suffix == "htm":
            return "html"
        if suffix in _FORMATS:
            return suffix
    return "png"


def _plot_one(
    charts: ModuleType,
    path: FileSource,
    target: Path,
    kinds: tuple[str, ...],
    fmt: str,
    window: Window,
) -> None:
    doc = window.apply(parse(path))
    groups = charts.groups_from_document(doc)
    if not groups:
        raise click.ClickException(
            f"{path}: no energy or volume readings to plot (see `greenbutton inspect {path}`)"
        )
    drawable = [g for g in groups if any(g.can_draw(k) for k in kinds)]
    if not drawable:
        lengths = ", ".join(sorted({analysis.format_duration(g.interval) for g in groups}))
        raise click.ClickException(
            f"{path}: a {' or '.join(kinds)} chart needs readings of one hour or shorter; "
            f"this file has {lengths} readings (try --kind daily)"
        )
    if len(drawable) > _MAX_GROUPS:
        click.echo(
            f"note: {path}: charting the first {_MAX_GROUPS} of {len(drawable)} series groups",
            err=True,
        )
        drawable = drawable[:_MAX_GROUPS]
    fig = charts.figure(drawable, kinds)
    if fmt == "html":
        svg = charts.render(fig, "svg")
        sections = [(Path(str(path)).name, _facts(doc), svg)]
        target.write_text(
            charts.html_page(f"Green Button data: {Path(str(path)).name}", sections), "utf-8"
        )
    else:
        target.write_bytes(charts.render(fig, cast(Literal["png", "svg"], fmt)))


def _facts(doc: Document) -> list[str]:
    """One line per series for the HTML page: what it is, how much, over which days."""
    lines = []
    for s in analysis.summarize(doc):
        if s.first_start is None or s.last_end is None:
            continue
        start = analysis.local_datetime(s.first_start, s.tz).strftime("%Y-%m-%d %H:%M")
        end = analysis.local_datetime(s.last_end, s.tz).strftime("%Y-%m-%d %H:%M")
        total = f", total {analysis.format_number(s.total)} {s.unit}" if s.total is not None else ""
        lines.append(
            f"Usage point {s.usage_point} · {s.description}: {s.readings:,} readings, "
            f"{start} → {end} ({s.time_zone}){total}"
        )
    return lines
