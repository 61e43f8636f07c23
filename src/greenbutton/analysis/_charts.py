"""Charts of interval data: daily totals, an hour-of-day heat map and a daily load profile.

The building blocks take a :class:`ChartGroup` (made from a parsed document or from a
readings DataFrame), so the CLI and a web dashboard draw the same pictures. Figures are
built with ``matplotlib.figure.Figure`` directly, never pyplot: no global state, no display,
safe in a server thread. HTML output inlines the SVG so a page opens offline, with no
external script, font or stylesheet.

Needs the ``plot`` extra (``pip install 'greenbutton[plot]'``); importing this module
without matplotlib raises ImportError, which the CLI turns into that hint.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Literal

import matplotlib
import numpy as np
from matplotlib import dates as mdates
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure, SubFigure

from ..models import Document
from ._summary import (
    SUMMABLE_UNITS,
    SeriesValues,
    _usual_length,  # the most common positive interval length: one copy
    daily_totals,
    display_unit,
    effective_durations,
    flow_label,
    format_duration,
    hourly_matrix,
    scaled,
    series_values,
    time_zone_for,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from ._dashboard import Period, Resolution

__all__ = [
    "ChartGroup",
    "ChartKind",
    "ChartSeries",
    "KINDS",
    "accessible_svg",
    "daily_chart",
    "figure",
    "groups_from_document",
    "groups_from_frame",
    "heatmap_chart",
    "html_page",
    "period_chart",
    "profile_chart",
    "render",
]

ChartKind = Literal["daily", "heatmap", "profile"]
KINDS: tuple[ChartKind, ...] = ("daily", "heatmap", "profile")

_COLORS = {"import": "#2b6cb0", "export": "#d69e2e", "net": "#1a202c"}
_OTHER_COLORS = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280")
_MISSING = "#edf2f7"  # heat map cells without a reading
_HOURLY = 3600
_PERIODIC = 2 * 86400  # readings this long or longer are billing periods, not intervals
_AREA_DAYS = 120  # from this many days on, daily totals are an area, not bars
_MONTH_DAYS = 183  # past about six months, months are bars again (issue 12.5): a year of
# daily columns is a solid block, and an area hides the monthly totals people compare


@dataclass(frozen=True, slots=True, kw_only=True)
class ChartSeries:
    """One series of a chart: ``flow`` is ``import``, ``export`` or another label."""

    flow: str
    values: SeriesValues


@dataclass(frozen=True, slots=True, kw_only=True)
class ChartGroup:
    """Series drawn together: one usage point, one unit, one interval length."""

    title: str
    unit: str
    interval: int  # the usual reading length, seconds
    time_zone: str
    series: tuple[ChartSeries, ...]

    @property
    def net_metered(self) -> bool:
        """Both delivered (import) and received (export) energy: charts show the two."""
        flows = {s.flow for s in self.series}
        return {"import", "export"} <= flows

    def can_draw(self, kind: ChartKind) -> bool:
        """Heat maps and profiles need hourly or finer readings; daily totals need any."""
        return kind == "daily" or 0 < self.interval <= _HOURLY


_SUMMABLE_KINDS = frozenset({None, 0, 12, 58, 3})  # none, energy, volume, currency


def groups_from_document(doc: Document) -> list[ChartGroup]:
    """Chartable groups of a parsed document, in document order.

    Only series whose values add up (energy, volume) are charted; power or voltage series
    are left to ``inspect``. Series of one usage point with the same unit and interval
    length are drawn together, so a net-metered point shows import and export side by side.
    """
    keyed: dict[tuple[str, str, int], list[ChartSeries]] = {}
    meta: dict[tuple[str, str, int], tuple[str, str]] = {}
    for up in doc.usage_points:
        tz, tz_label, _ = time_zone_for(doc, up)
        service = up.service_kind_name
        for mr in up.meter_readings:
            rt = mr.reading_type
            if rt is None or rt.unit not in SUMMABLE_UNITS or rt.kind not in _SUMMABLE_KINDS:
                continue
            values = series_values(mr, tz)
            if not values.starts or values.unit is None:
                continue
            interval = _usual_length(values.durations)
            key = (up.id, values.unit, interval)
            keyed.setdefault(key, []).append(
                ChartSeries(flow=flow_label(rt.flow_direction), values=values)
            )
            what = str(service) if service is not None else "usage"
            meta[key] = (f"Usage point {up.id} · {what}", tz_label)
    return [
        _autoscale(
            ChartGroup(
                title=meta[key][0],
                unit=key[1],
                interval=key[2],
                time_zone=meta[key][1],
                series=tuple(series),
            )
        )
        for key, series in keyed.items()
    ]


def groups_from_frame(
    frame: pd.DataFrame, *, tz: tzinfo = UTC, time_zone: str = "UTC"
) -> list[ChartGroup]:
    """Chartable groups of a readings table (DESIGN 3.3 columns), e.g. from storage.

    The table has no time zone of its own, so pass the usage point's (``tz``), else days
    are UTC days. Nor does it say whether values are register readings: they are charted
    as per-interval amounts (:func:`groups_from_document` can tell).
    """
    import pandas as pd

    groups: list[ChartGroup] = []
    epoch = pd.Timestamp(0, tz="UTC")
    for up_id, by_up in frame.groupby("usage_point", sort=False):
        keyed: dict[tuple[str, int], list[ChartSeries]] = {}
        for _, rows in by_up.groupby("meter_reading", sort=False):
            rows = rows.sort_values("start")
            uom = str(rows["uom"].iloc[0])
            if uom not in SUMMABLE_UNITS:
                continue
            unit, shift = display_unit(uom)
            starts = [int(x) for x in (rows["start"] - epoch) // pd.Timedelta(seconds=1)]
            length = rows["interval_length"].iloc[0]
            durations = effective_durations(
                starts, [int(d) for d in rows["duration"]], None if pd.isna(length) else int(length)
            )
            values = SeriesValues(
                starts=starts,
                durations=durations,
                values=[scaled(float(v), shift) for v in rows["value"]],
                unit=unit,
                tz=tz,
            )
            flow = rows["flow_direction"].iloc[0]
            label = {"forward": "import", "reverse": "export"}.get(str(flow), str(flow))
            key = (unit or uom, _usual_length(values.durations))
            keyed.setdefault(key, []).append(ChartSeries(flow=label, values=values))
        for (unit_key, interval), series in keyed.items():
            group = ChartGroup(
                title=f"Usage point {up_id}",
                unit=unit_key,
                interval=interval,
                time_zone=time_zone,
                series=tuple(series),
            )
            groups.append(_autoscale(group))
    return groups


# kWh-family units one step apart; a chart of 0.004 kWh a day reads better as 4 Wh.
_SMALLER = {"kWh": "Wh", "kW": "W", "kVArh": "VArh", "kVAh": "VAh"}


def _autoscale(group: ChartGroup) -> ChartGroup:
    """Switch a group to the smaller unit when its largest daily total is below 1."""
    smaller = _SMALLER.get(group.unit)
    if smaller is None:
        return group
    peak = max((abs(d.total) for s in group.series for d in daily_totals(s.values)), default=0.0)
    if peak == 0 or peak >= 1:
        return group
    series = tuple(
        ChartSeries(
            flow=s.flow,
            values=SeriesValues(
                starts=s.values.starts,
                durations=s.values.durations,
                values=[v * 1000 for v in s.values.values],
                unit=smaller,
                tz=s.values.tz,
            ),
        )
        for s in group.series
    )
    return replace(group, unit=smaller, series=series)


# --- the three charts -------------------------------------------------------------------


def daily_chart(ax: Axes, group: ChartGroup) -> None:
    """Bars of use per local day (per billing period for monthly data); a net-metered
    point gets import above the axis, export below and the net as a line."""
    if group.interval >= _PERIODIC:
        _period_bars(ax, group)
        _date_axis(ax)
    else:
        days = _day_bars(ax, group)
        if days and (days[-1] - days[0]).days < _MONTH_DAYS:
            _day_axis(ax, days, centred=True)  # else _month_bars labelled its months
    ax.set_ylabel(group.unit)
    ax.axhline(0, color="#4a5568", linewidth=0.8)
    _tidy(ax)


def _period_bars(ax: Axes, group: ChartGroup) -> None:
    for i, s in enumerate(group.series):
        sign = -1.0 if group.net_metered and s.flow == "export" else 1.0
        lefts = [_local(t, s.values.tz) for t in s.values.starts]
        widths = [timedelta(seconds=d) for d in s.values.durations]
        heights = [sign * v for v in s.values.values]
        ax.bar(
            [_num(x) for x in lefts],
            heights,
            width=[w.total_seconds() / 86400 * 0.92 for w in widths],
            align="edge",
            color=_color(s.flow, i),
            label=s.flow,
        )
    ax.set_title(f"Use per billing period ({group.unit})", loc="left")
    if len(group.series) > 1:
        _legend_above(ax)


def _day_bars(ax: Axes, group: ChartGroup) -> list[date]:
    by_flow: dict[str, dict[date, float]] = {}
    partial: set[date] = set()
    dst: dict[date, float] = {}  # DST days and their length, to mark on the chart
    for s in group.series:
        for d in daily_totals(s.values):
            by_flow.setdefault(s.flow, {})
            by_flow[s.flow][d.day] = by_flow[s.flow].get(d.day, 0.0) + d.total
            if not d.complete:
                partial.add(d.day)
            if d.day_hours != 24:
                dst[d.day] = d.day_hours
    days = sorted({d for totals in by_flow.values() for d in totals})
    if (days[-1] - days[0]).days >= _MONTH_DAYS:
        return _month_bars(ax, group, by_flow, partial)
    if (days[-1] - days[0]).days >= _AREA_DAYS:
        return _day_area(ax, group, by_flow, days[0], days[-1])
    x = [_num(datetime(d.year, d.month, d.day, 12)) for d in days]
    width = 0.5 if len(days) < 4 else 0.8
    top = max(abs(v) for totals in by_flow.values() for v in totals.values())
    fmt = _value_format([top])
    from matplotlib.patches import Patch

    extra = []
    for i, (flow, totals) in enumerate(by_flow.items()):
        sign = -1.0 if group.net_metered and flow == "export" else 1.0
        heights = [sign * totals.get(d, 0.0) for d in days]
        colors = [_color(flow, i, faded=d in partial) for d in days]
        bars = ax.bar(x, heights, width=width, color=colors, linewidth=0)
        # the legend shows the flow's colour, not its first bar's (faded if a partial day)
        extra.append(Patch(color=_color(flow, i), label=flow))
        if len(days) <= 14:  # few bars: print the numbers too (export without its sign)
            labels = [fmt % abs(h) if abs(h) >= 0.02 * top else "" for h in heights]
            ax.bar_label(bars, labels=labels, padding=2, fontsize="small", color="#4a5568")
    first_flow = next(iter(by_flow.values()))
    for day, hours in dst.items() if len(days) <= 62 else ():
        # Inside the top of the bar: a DST day's total covers 23 or 25 hours.
        ax.annotate(
            f"{hours:g}h",
            (_num(datetime(day.year, day.month, day.day, 12)), first_flow.get(day, 0.0)),
            xytext=(0, -4),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize="x-small",
            color="white",
        )
    if group.net_metered:
        net = [by_flow["import"].get(d, 0.0) - by_flow["export"].get(d, 0.0) for d in days]
        ax.plot(x, net, color=_COLORS["net"], marker="o", markersize=3, linewidth=1.2,
                label="net (import − export)")  # fmt: skip
    title = f"Daily {_what(group)} ({group.unit} per local day)"
    ax.set_title(title, loc="left")
    if partial:
        extra.append(Patch(color=_color("import", 0, faded=True), label="partial day"))
    _legend_above(ax, extra)
    ax.margins(y=0.12)
    return days


def monthly_totals(
    daily: dict[date, float], partial_days: set[date]
) -> tuple[dict[date, float], set[date]]:
    """Daily totals summed per local month (keyed by the month's first day), and the months
    that are partial: a day without readings, a partial day, or cut by the data's ends."""
    months: dict[date, float] = {}
    seen: dict[date, int] = {}
    short: set[date] = set()
    for day, total in daily.items():
        month = day.replace(day=1)
        months[month] = months.get(month, 0.0) + total
        seen[month] = seen.get(month, 0) + 1
        if day in partial_days:
            short.add(month)
    for month, count in seen.items():
        nxt = (month + timedelta(days=32)).replace(day=1)
        if count < (nxt - month).days:
            short.add(month)
    return months, short


def _month_bars(
    ax: Axes, group: ChartGroup, by_flow: dict[str, dict[date, float]], partial: set[date]
) -> list[date]:
    """Spans past six months: one bar per local month, partial months paler."""
    from matplotlib.patches import Patch

    totals = {flow: monthly_totals(daily, partial) for flow, daily in by_flow.items()}
    months = sorted({m for per, _ in totals.values() for m in per})
    x = [_num(datetime(m.year, m.month, 15)) for m in months]
    extra = []
    short_any = False
    for i, (flow, (per, short)) in enumerate(totals.items()):
        sign = -1.0 if group.net_metered and flow == "export" else 1.0
        heights = [sign * per.get(m, 0.0) for m in months]
        colors = [_color(flow, i, faded=m in short) for m in months]
        ax.bar(x, heights, width=24, color=colors, linewidth=0)
        extra.append(Patch(color=_color(flow, i), label=flow))
        short_any = short_any or bool(short)
    if group.net_metered:
        net = [
            totals["import"][0].get(m, 0.0) - totals.get("export", ({}, set()))[0].get(m, 0.0)
            for m in months
        ]
        ax.plot(x, net, color=_COLORS["net"], marker="o", markersize=3, linewidth=1.2,
                label="net (import − export)")  # fmt: skip
    # a label under each bar: the month, with its year at the first month and each January
    labels = [
        f"{m:%b}\n{m.year}" if n == 0 or m.month == 1 else f"{m:%b}" for n, m in enumerate(months)
    ]
    ax.set_xticks(x if len(months) <= 24 else x[::3], labels if len(months) <= 24 else labels[::3])
    ax.set_title(f"Monthly {_what(group)} ({group.unit} per local month)", loc="left")
    if short_any:
        extra.append(Patch(color=_color("import", 0, faded=True), label="partial month"))
    _legend_above(ax, extra)
    ax.margins(y=0.12)
    return months


def _day_area(
    ax: Axes, group: ChartGroup, by_flow: dict[str, dict[date, float]], first: date, last: date
) -> list[date]:
    """Months or years of days: a stepped area, since hundreds of one-pixel bars alias into
    stripes. Days without readings stay empty rather than being bridged."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    x = [_num(datetime(d.year, d.month, d.day, 12)) for d in days]
    for i, (flow, totals) in enumerate(by_flow.items()):
        sign = -1.0 if group.net_metered and flow == "export" else 1.0
        heights = np.array([sign * totals[d] if d in totals else np.nan for d in days])
        ax.fill_between(x, heights, step="mid", color=_color(flow, i), linewidth=0, label=flow)
    if group.net_metered:
        net = [
            by_flow["import"][d] - by_flow["export"].get(d, 0.0) if d in by_flow["import"]
            else np.nan
            for d in days
        ]  # fmt: skip
        ax.plot(x, net, color=_COLORS["net"], linewidth=0.8, label="net (import − export)")
    ax.set_title(f"Daily {_what(group)} ({group.unit} per local day)", loc="left")
    _legend_above(ax)
    return days


def heatmap_chart(ax: Axes, group: ChartGroup, fig: Figure | SubFigure) -> None:
    """Local day × hour of day, colour = use in that hour (net use for a net-metered
    point, red importing and blue exporting). Missing hours stay blank."""
    cells: dict[tuple[date, int], float] = {}
    for s in group.series:
        sign = -1.0 if group.net_metered and s.flow == "export" else 1.0
        _, c = hourly_matrix(s.values)
        for key, v in c.items():
            cells[key] = cells.get(key, 0.0) + sign * v
    days = sorted({d for d, _ in cells})
    first, last = days[0], days[-1]
    ndays = (last - first).days + 1
    grid = np.full((24, ndays), np.nan)
    for (d, h), v in cells.items():
        grid[h, (d - first).days] = v
    data = np.ma.masked_invalid(grid)
    left = _num(datetime(first.year, first.month, first.day))
    extent = (left, left + ndays, 24.0, 0.0)
    kwargs: dict[str, Any] = {}
    if group.net_metered:
        lim = float(np.nanmax(np.abs(grid))) or 1.0
        kwargs["norm"] = TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim)
        cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad=_MISSING)
        label = f"net {group.unit} in the hour (− = export)"
    else:
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad=_MISSING)
        label = f"{group.unit} in the hour"
    # Crisp cells while a day gets a pixel or more; past a year the columns are squeezed
    # and must blend rather than drop out (at the price of softer hour rows).
    smooth = ndays > 400
    image = ax.imshow(data, aspect="auto", interpolation="antialiased" if smooth else "nearest",
                      interpolation_stage="rgba", extent=extent, cmap=cmap, **kwargs)  # fmt: skip
    ax.set_yticks(range(0, 25, 3), [f"{h:02d}:00" for h in range(0, 25, 3)])
    ax.set_ylabel("local time of day")
    _day_axis(ax, [first + timedelta(days=i) for i in range(ndays)], centred=False)
    bar = fig.colorbar(image, ax=ax, pad=0.015, fraction=0.05)
    bar.set_label(label)
    bar.outline.set_visible(False)
    ax.set_title(f"Hour by hour ({format_duration(group.interval)} readings)", loc="left")
    for spine in ax.spines.values():
        spine.set_visible(False)


def profile_chart(ax: Axes, group: ChartGroup) -> None:
    """Average use in each local hour of the day, weekdays and weekends apart when the
    data has both."""
    for i, s in enumerate(group.series):
        _, cells = hourly_matrix(s.values)
        weekday: list[list[float]] = [[] for _ in range(24)]
        weekend: list[list[float]] = [[] for _ in range(24)]
        for (d, h), v in cells.items():
            (weekend if d.weekday() >= 5 else weekday)[h].append(v)
        color = _color(s.flow, i)
        both = any(weekday) and any(weekend)
        for buckets, style, name in ((weekday, "-", "weekdays"), (weekend, "--", "weekends")):
            if not any(buckets):
                continue
            hours = [h + 0.5 for h in range(24) if buckets[h]]
            means = [sum(b) / len(b) for b in buckets if b]
            label = s.flow if not both else f"{s.flow}, {name}"
            if len(group.series) == 1 and both:
                label = name
            ax.plot(hours, means, style, color=color, linewidth=2, label=label)
            if style == "-":
                ax.fill_between(hours, means, alpha=0.12, color=color, linewidth=0)
    ax.set_xlim(0, 24)
    ax.set_ylim(bottom=0)
    ax.set_xticks(range(0, 25, 3), [f"{h:02d}" for h in range(0, 25, 3)])
    ax.set_xlabel("local hour of day")
    ax.set_ylabel(f"average {group.unit} in the hour")
    ax.set_title("Average day", loc="left")
    if len(ax.get_legend_handles_labels()[0]) > 1:
        ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2,
                  fontsize="small")  # fmt: skip
    _tidy(ax)


# --- figures and output -----------------------------------------------------------------


def figure(groups: Sequence[ChartGroup], kinds: Iterable[ChartKind] = KINDS) -> Figure:
    """One figure: a band per group holding the requested charts that its data allows.

    Raises ValueError when no group can draw any of them.
    """
    wanted = [k for k in KINDS if k in set(kinds)]
    plan = [(g, [k for k in wanted if g.can_draw(k)]) for g in groups]
    plan = [(g, ks) for g, ks in plan if ks]
    if not plan:
        raise ValueError("nothing to chart")
    heights = [_band_height(ks) for _, ks in plan]
    fig = Figure(figsize=(12, sum(heights)), layout="constrained")
    subfigs = fig.subfigures(len(plan), 1, height_ratios=heights, squeeze=False)[:, 0]
    for sub, (group, ks) in zip(subfigs, plan, strict=True):
        sub.suptitle(
            f"{group.title} — {group.time_zone}", x=0.01, ha="left", fontsize="large",
            fontweight="bold",
        )  # fmt: skip
        _draw_band(sub, group, ks)
    return fig


def _band_height(kinds: Sequence[ChartKind]) -> float:
    rows = ("daily" in kinds) + (("heatmap" in kinds) or ("profile" in kinds))
    return 0.6 + 3.6 * rows


def _draw_band(sub: SubFigure, group: ChartGroup, kinds: Sequence[ChartKind]) -> None:
    lower = [k for k in kinds if k != "daily"]
    nrows = ("daily" in kinds) + bool(lower)
    grid = sub.add_gridspec(nrows, 3 if len(lower) == 2 else 1)
    row = 0
    if "daily" in kinds:
        daily_chart(sub.add_subplot(grid[0, :]), group)
        row = 1
    if len(lower) == 2:
        heatmap_chart(sub.add_subplot(grid[row, :2]), group, sub)
        profile_chart(sub.add_subplot(grid[row, 2]), group)
    elif lower == ["heatmap"]:
        heatmap_chart(sub.add_subplot(grid[row, 0]), group, sub)
    elif lower == ["profile"]:
        profile_chart(sub.add_subplot(grid[row, 0]), group)


def render(fig: Figure, fmt: Literal["png", "svg"]) -> bytes:
    """The figure as PNG or SVG bytes (SVG without creation date: same data, same bytes)."""
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "greenbutton"}):
        if fmt == "svg":
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
        else:
            fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return buf.getvalue()


def html_page(title: str, sections: Sequence[tuple[str, Sequence[str], bytes]]) -> str:
    """A standalone page: per section a heading, a few facts and the chart's SVG inline.

    Everything the page needs is in it (no CDN, font or script), so it opens offline and
    can be mailed; the SVG is stripped of its XML prolog, DOCTYPE and RDF metadata, which
    are not valid or needed inside HTML.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;"
        "padding:0 1rem;color:#1a202c}h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}"
        "ul{color:#4a5568;font-size:.9rem}svg{max-width:100%;height:auto}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for heading, facts, svg in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if facts:
            items = "".join(f"<li>{html.escape(f)}</li>" for f in facts)
            parts.append(f"<ul>{items}</ul>")
        parts.append(inline_svg(svg))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


#: Figure sizes (inches) of the dashboard's chart: the SVG scales to the page's width, so a
#: phone gets its own narrower drawing, whose 10 pt text stays about 11 px at 390 px wide.
_SIZES = {"desktop": (10.0, 3.4), "phone": (3.6, 3.0)}
#: The dashboard's bars: 3:1 or more against the white page (WCAG 1.4.11); the export
#: amber is darker than the CLI charts' (#d69e2e is 2.4:1).
_USE_COLOR, _EXPORT_COLOR = _COLORS["import"], "#b7791f"


def period_chart(
    periods: Sequence[Period], resolution: Resolution, *, size: Literal["desktop", "phone"]
) -> Figure:
    """Bars of use per local day or month (``analysis.period_totals``); energy exported to
    the grid, if any, below the axis. Raises ValueError when no period has readings."""
    if not any(p.usage.readings for p in periods):
        raise ValueError("nothing to chart")
    unit = next(p.usage.unit for p in periods if p.usage.readings) or ""
    width, height = _SIZES[size]
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    x = [_num(datetime(p.start.year, p.start.month, p.start.day)) for p in periods]
    widths = [(p.end - p.start).days * 0.85 for p in periods]
    used = [p.usage.used for p in periods]
    # a month cut by the range's ends is paler: its bar is not comparable with the others
    ax.bar(x, used, width=widths, align="edge", linewidth=0,
           color=[_faded(_USE_COLOR, not p.whole) for p in periods])  # fmt: skip
    if any(p.usage.exported for p in periods):
        from matplotlib.patches import Patch
        from matplotlib.ticker import FuncFormatter

        exported = [-p.usage.exported for p in periods]
        ax.bar(x, exported, width=widths, align="edge", linewidth=0,
               color=[_faded(_EXPORT_COLOR, not p.whole) for p in periods])  # fmt: skip
        ax.axhline(0, color="#4a5568", linewidth=0.8)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v):g}"))
        out = "exported to the grid" if size == "desktop" else "to the grid"  # fits 390 px
        handles = [Patch(color=_USE_COLOR, label="from the grid"),
                   Patch(color=_EXPORT_COLOR, label=out)]  # fmt: skip
        # above the plot, never over the bars
        ax.legend(handles=handles, frameon=False, fontsize=10 if size == "desktop" else 9,
                  loc="lower left", bbox_to_anchor=(0, 1), ncols=2, borderaxespad=0.2)  # fmt: skip
    per = "month" if resolution == "month" else "day"
    ax.set_ylabel(f"{unit} per {per}", fontsize=10)
    ax.tick_params(labelsize=10 if size == "desktop" else 9)
    # ticks at the bars' centres, every few bars: "Nov\n2026" or "3 Nov"
    step = max(1, round(len(periods) / (12 if size == "desktop" else 5)))
    if resolution == "day":
        step = max(1, round(len(periods) / (8 if size == "desktop" else 4)))
    whole = [p for p in periods if p.whole] or list(periods)  # a sliver of a month: no label
    shown = whole[::-1][::step][::-1]  # keep the latest whole bar labelled
    ticks = [_num(datetime(p.start.year, p.start.month, p.start.day)) + (p.end - p.start).days
             * 0.425 for p in shown]  # fmt: skip
    fmt = "%b\n%Y" if resolution == "month" else "%-d %b"
    ax.set_xticks(ticks, [p.start.strftime(fmt) for p in shown])
    first, last = periods[0].start, periods[-1].end
    ax.set_xlim(_num(datetime(first.year, first.month, first.day)),
                _num(datetime(last.year, last.month, last.day)))  # fmt: skip
    ax.margins(y=0.08)
    _tidy(ax)
    return fig


def _faded(color: str, faded: bool) -> str | tuple[float, float, float, float]:
    if not faded:
        return color
    r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return (r, g, b, 0.35)


def accessible_svg(svg: bytes, title: str, label: str) -> str:
    """:func:`inline_svg` with an accessible name: ``role="img"``, ``aria-label`` and a
    ``<title>`` first child, so a screen reader announces the chart's summary instead of
    hundreds of unnamed paths (WAI-ARIA graphics; WCAG 1.1.1)."""
    text = inline_svg(svg)
    head, rest = text.split(">", 1)
    attrs = f' role="img" aria-label="{html.escape(label, quote=True)}"'
    return f"{head}{attrs}><title>{html.escape(title)}</title>{rest}"


def inline_svg(svg: bytes) -> str:
    """Matplotlib's SVG made fit to sit inside HTML."""
    text = svg.decode("utf-8")
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)
    # HTML knows xlink:href in SVG without the declaration; SVG 2 also takes plain href.
    text = text.replace(' xmlns:xlink="http://www.w3.org/1999/xlink"', "")
    return text.replace("xlink:href=", "href=")


# --- helpers ------------------------------------------------------------------------------


def _num(moment: datetime) -> float:
    """Matplotlib's date number of a naive local datetime (date2num is untyped)."""
    return float(mdates.date2num(moment))  # type: ignore[no-untyped-call]


def _local(epoch: int, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).astimezone(tz).replace(tzinfo=None)


def _what(group: ChartGroup) -> str:
    if group.net_metered:
        return "import and export"
    return "use"


def _color(
    flow: str, index: int, *, faded: bool = False
) -> str | tuple[float, float, float, float]:
    base = _COLORS.get(flow) or _OTHER_COLORS[index % len(_OTHER_COLORS)]
    if not faded:
        return base
    r, g, b = (int(base[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return (r, g, b, 0.35)


def _legend_above(ax: Axes, extra: Sequence[Any] = ()) -> None:
    """Legend above the plot's right corner, level with the title: never over the bars."""
    handles, labels = ax.get_legend_handles_labels()
    handles += list(extra)
    labels += [h.get_label() for h in extra]
    if len(handles) > 1:
        ax.legend(handles, labels, frameon=False, loc="lower right", bbox_to_anchor=(1, 1),
                  ncols=len(handles), fontsize="small", borderaxespad=0.2)  # fmt: skip


def _value_format(heights: Sequence[float]) -> str:
    top = max((abs(h) for h in heights), default=0.0)
    return "%.0f" if top >= 100 else "%.1f" if top >= 1 else "%.3g"


def _day_axis(ax: Axes, days: Sequence[date], *, centred: bool) -> None:
    """Date ticks for one-column-per-day charts: a label per day when there are few (at the
    column's centre), else matplotlib's concise dates. Hours never appear."""
    if not days or len(days) > 31:
        _date_axis(ax)
        return
    step = 1 if len(days) <= 16 else 2
    shown = days[::step]
    ticks = [_num(datetime(d.year, d.month, d.day, 12)) for d in shown]
    if len(days) <= 10:
        labels = [f"{d:%a}\n{d.day} {d:%b}" for d in shown]
    else:
        labels = [f"{d.day}\n{d:%b}" for d in shown]
    ax.set_xticks(ticks, labels)
    if not centred:
        first, last = days[0], days[-1] + timedelta(days=1)
        ax.set_xlim(_num(datetime(first.year, first.month, first.day)),
                    _num(datetime(last.year, last.month, last.day)))  # fmt: skip


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)


def _tidy(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color="#e2e8f0", linewidth=0.8)
    ax.set_axisbelow(True)
