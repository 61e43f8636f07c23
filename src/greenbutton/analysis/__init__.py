"""Summaries, inspect reports and charts of parsed documents: no I/O but the files given.

The summaries are imported with the package; the charts (matplotlib, numpy) at the first use
of a chart name (PEP 562), so ``greenbutton inspect`` never loads matplotlib.
"""

from typing import TYPE_CHECKING

from ._dashboard import (
    RANGES,
    TOU_NAMES,
    Bill,
    Comparison,
    CustomerFacts,
    Period,
    RangeChoice,
    Resolution,
    TouShare,
    Usage,
    bills,
    comparison,
    customer_facts,
    describe_periods,
    flow_words,
    period_totals,
    range_bounds,
    tou_breakdown,
    usage_between,
)
from ._summary import (
    DailyTotal,
    SeriesSummary,
    SeriesValues,
    daily_totals,
    describe_reading_type,
    display_unit,
    format_duration,
    format_number,
    hourly_matrix,
    local_datetime,
    scaled,
    series_values,
    summarize,
    summarize_series,
    time_zone_for,
    usage_summary_facts,
)

if TYPE_CHECKING:
    from ._charts import (
        KINDS,
        ChartGroup,
        ChartSeries,
        accessible_svg,
        figure,
        groups_from_document,
        groups_from_frame,
        html_page,
        inline_svg,
        period_chart,
        render,
    )

_CHARTS = frozenset(
    {
        "KINDS",
        "ChartGroup",
        "ChartSeries",
        "accessible_svg",
        "figure",
        "groups_from_document",
        "groups_from_frame",
        "html_page",
        "inline_svg",
        "period_chart",
        "render",
    }
)

__all__ = [
    "KINDS",
    "RANGES",
    "TOU_NAMES",
    "Bill",
    "ChartGroup",
    "ChartSeries",
    "Comparison",
    "CustomerFacts",
    "DailyTotal",
    "Period",
    "RangeChoice",
    "Resolution",
    "SeriesSummary",
    "SeriesValues",
    "TouShare",
    "Usage",
    "accessible_svg",
    "bills",
    "comparison",
    "customer_facts",
    "daily_totals",
    "describe_periods",
    "describe_reading_type",
    "display_unit",
    "figure",
    "flow_words",
    "format_duration",
    "format_number",
    "groups_from_document",
    "groups_from_frame",
    "hourly_matrix",
    "html_page",
    "inline_svg",
    "local_datetime",
    "period_chart",
    "period_totals",
    "range_bounds",
    "render",
    "scaled",
    "series_values",
    "summarize",
    "summarize_series",
    "time_zone_for",
    "tou_breakdown",
    "usage_between",
    "usage_summary_facts",
]


def __getattr__(name: str) -> object:
    if name in _CHARTS:
        from . import _charts

        return getattr(_charts, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
