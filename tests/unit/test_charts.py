"""The daily chart's legend and bars, read from matplotlib's artists (not from SVG ids,
which move with the data), for 30-day windows ending on dates that bite.

A window ending at an arbitrary instant starts part-way through a local day, so its first
(and last) day is partial: the web app's account page draws exactly such a window. The
dates are fixed here, never today's.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from matplotlib.artist import Artist
from matplotlib.colors import to_hex, to_rgba
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from greenbutton.analysis import _charts as charts
from greenbutton.analysis._summary import SeriesValues
from tests.conftest import BITING

PACIFIC = ZoneInfo("America/Los_Angeles")
IMPORT = "#2b6cb0"
EXPORT = "#d69e2e"


def _hourly(end: datetime, flow: str, per_hour: float) -> charts.ChartSeries:
    """30 days of hourly readings ending at ``end`` (rounded down to the hour)."""
    last = int(end.replace(minute=0, second=0).timestamp())
    starts = [last - 3600 * i for i in range(30 * 24, 0, -1)]
    values = SeriesValues(
        starts=starts,
        durations=[3600] * len(starts),
        values=[per_hour] * len(starts),
        unit="kWh",
        tz=PACIFIC,
    )
    return charts.ChartSeries(flow=flow, values=values)


def _colour(handle: Artist | None) -> tuple[float, ...]:
    """A legend handle's colour: a patch's fill, a line's stroke."""
    if isinstance(handle, Line2D):
        return tuple(to_rgba(handle.get_color()))
    assert isinstance(handle, Patch)
    return tuple(to_rgba(handle.get_facecolor()))


def _draw(*series: charts.ChartSeries) -> tuple[dict[str, tuple[float, ...]], list[str]]:
    group = charts.ChartGroup(
        title="Usage point 1",
        unit="kWh",
        interval=3600,
        time_zone="America/Los_Angeles",
        series=series,
    )
    ax = Figure().subplots()
    charts.daily_chart(ax, group)
    legend = ax.get_legend()
    assert legend is not None
    swatches = {
        text.get_text(): _colour(handle)
        for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True)
    }
    bars = [
        to_hex(patch.get_facecolor(), keep_alpha=True)
        for container in ax.containers
        if isinstance(container, BarContainer)
        for patch in container.patches
    ]
    return swatches, bars


@pytest.mark.parametrize("end", BITING, ids=lambda d: d.strftime("%Y-%m-%dT%H:%M"))
def test_daily_chart_legend_matches_the_bars(end: datetime) -> None:
    """The import swatch has the full import colour of the bars; only "partial day" is faded
    (the first bar of such a window is a partial day, whose colour the legend once took)."""
    swatches, bars = _draw(_hourly(end, "import", 1.0))
    assert to_hex(swatches["import"], keep_alpha=True) == IMPORT + "ff"
    assert to_hex(swatches["partial day"]) == IMPORT
    assert swatches["partial day"][3] == pytest.approx(0.35)
    # the bars use both: full colour for whole days, faded for the partial first and last
    faded = to_hex(to_rgba(IMPORT, 0.35), keep_alpha=True)
    assert bars[0] == faded and bars[-1] == faded
    assert bars.count(IMPORT + "ff") == len(bars) - 2


@pytest.mark.parametrize("end", BITING, ids=lambda d: d.strftime("%Y-%m-%dT%H:%M"))
def test_net_metered_legend_shows_each_flow_in_its_own_colour(end: datetime) -> None:
    swatches, _ = _draw(_hourly(end, "import", 1.0), _hourly(end, "export", 0.5))
    assert to_hex(swatches["import"]) == IMPORT and swatches["import"][3] == 1.0
    assert to_hex(swatches["export"]) == EXPORT and swatches["export"][3] == 1.0
    assert "partial day" in swatches
    assert to_hex(swatches["net (import − export)"]) == "#1a202c"


@pytest.mark.parametrize("end", BITING, ids=lambda d: d.strftime("%Y-%m-%dT%H:%M"))
def test_a_window_of_whole_days_has_no_partial_swatch(end: datetime) -> None:
    """Readings from local midnight to local midnight: nothing is partial, so the legend
    (a single flow) is not drawn at all."""
    # the ten local days up to and including the end's own day (a DST day for two ends)
    last = end.astimezone(PACIFIC).date()
    days = [last - timedelta(days=n) for n in range(9, -1, -1)]
    starts: list[int] = []
    hours: list[float] = []  # each day's length from the calendar, not from the chart code
    for d in days:
        midnight = datetime(d.year, d.month, d.day, tzinfo=PACIFIC).timestamp()
        after = d + timedelta(days=1)
        length = datetime(after.year, after.month, after.day, tzinfo=PACIFIC).timestamp()
        length -= midnight
        starts += [int(midnight) + 3600 * h for h in range(int(length) // 3600)]
        hours.append(length / 3600)
    values = SeriesValues(
        starts=starts, durations=[3600] * len(starts), values=[1.0] * len(starts),
        unit="kWh", tz=PACIFIC,
    )  # fmt: skip
    group = charts.ChartGroup(
        title="Usage point 1",
        unit="kWh",
        interval=3600,
        time_zone="America/Los_Angeles",
        series=(charts.ChartSeries(flow="import", values=values),),
    )
    ax = Figure().subplots()
    charts.daily_chart(ax, group)
    assert ax.get_legend() is None
    heights = [p.get_height() for c in ax.containers if isinstance(c, BarContainer) for p in c]
    assert heights == hours  # 1 kWh an hour: a DST day is 23 or 25 kWh
    dst = {date(2026, 3, 8): 23.0, date(2026, 11, 1): 25.0}
    assert hours[-1] == dst.get(last, 24.0)  # the parametrization does reach DST days


@pytest.mark.parametrize("end", BITING, ids=str)
def test_a_year_of_readings_is_drawn_as_monthly_bars(end: datetime) -> None:
    """Past about six months the daily chart becomes one bar per local month (issue 12.5),
    each the sum of that month's days; the months cut by the data's ends are paler."""
    last = int(end.replace(minute=0, second=0).timestamp())
    starts = [last - 3600 * i for i in range(365 * 24, 0, -1)]
    values = SeriesValues(
        starts=starts, durations=[3600] * len(starts), values=[0.5] * len(starts),
        unit="kWh", tz=PACIFIC,
    )  # fmt: skip
    group = charts.ChartGroup(
        title="Usage point 1",
        unit="kWh",
        interval=3600,
        time_zone="America/Los_Angeles",
        series=(charts.ChartSeries(flow="import", values=values),),
    )
    ax = Figure().subplots()
    charts.daily_chart(ax, group)
    (container,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    heights = [p.get_height() for p in container.patches]
    assert len(heights) in (12, 13)  # a year touches 12 or 13 local months
    assert sum(heights) == pytest.approx(0.5 * len(starts))
    full = heights[1:-1]
    assert all(12 * 28 <= h <= 12 * 31 + 0.5 for h in full)  # 0.5 kWh x 24 h x 28..31 days
    colours = [to_hex(p.get_facecolor(), keep_alpha=True) for p in container.patches]
    assert colours[1].startswith(IMPORT) and colours[0] != colours[1]  # first month cut: paler
    assert ax.get_title(loc="left").startswith("Monthly use")
    labels = [t.get_text() for t in ax.get_xticklabels()]
    first = datetime.fromtimestamp(starts[0], PACIFIC)  # the first local month, with its year
    assert len(labels) == len(heights) and labels[0] == f"{first:%b}\n{first.year}"
