"""The account page's view models: what the templates print, built from stored readings,
the customer's facts and bills (analysis computes; this only picks words and formats).

Blocking (storage reads, matplotlib): call from a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from markupsafe import Markup

from .. import analysis
from ..analysis import (
    RANGES,
    TOU_NAMES,
    Bill,
    CustomerFacts,
    Period,
    RangeChoice,
    Resolution,
    Usage,
)
from ..models import Reading
from ..storage import Store, StoredPoint, export_readings

__all__ = ["AccountView", "PointView", "account_view", "page_context", "point_view", "range_choice"]

_SYMBOLS = {"USD": "$", "CAD": "CA$", "EUR": "€", "GBP": "£", "AUD": "A$"}
_SERVICE_WORDS = {"therm": "Gas", "Wh": "Electricity"}


def range_choice(value: str | None) -> RangeChoice:
    """The range a query asks for; anything else is the default (30 days)."""
    for choice in RANGES:
        if value == choice:
            return choice
    return "30d"


def money(amount: float | None, currency: str | None) -> str | None:
    if amount is None:
        return None
    symbol = _SYMBOLS.get(currency or "")
    if symbol is not None:
        return f"-{symbol}{-amount:,.2f}" if amount < 0 else f"{symbol}{amount:,.2f}"
    return f"{amount:,.2f} {currency or ''}".strip()


def _amount(value: float, unit: str | None) -> str:
    unit = "therms" if unit == "therm" else unit
    return f"{value:,.1f} {unit or ''}".strip()


def _day(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def _span(start: date, end: date) -> str:
    """``[start, end)`` in words (end exclusive)."""
    last = end - timedelta(days=1)
    return _day(start) if last <= start else f"{_day(start)} – {_day(last)}"


@dataclass(slots=True)
class Row:
    """A line of a table: a label and its cells (already formatted)."""

    label: str
    cells: list[str | None]


@dataclass(slots=True)
class PointView:
    index: int
    key: str
    name: str  # the usage point's name (never an ESPI id)
    readings: int
    first: str | None
    last: str | None
    zone: str
    span: str = ""
    resolution: Resolution = "day"
    facts: list[str] = field(default_factory=list)
    has_export: bool = False
    has_cost: bool = False
    chart_desktop: Markup | None = None
    chart_phone: Markup | None = None
    chart_label: str = ""
    table: list[Row] = field(default_factory=list)
    comparison: list[Row] = field(default_factory=list)
    tou: list[Row] = field(default_factory=list)
    bills: list[Row] = field(default_factory=list)
    bill_amounts: bool = False  # some bill has an amount (gas bills may carry only use)


@dataclass(slots=True)
class AccountView:
    index: int
    title: str  # the customer's name, else "Your account"
    address: str | None
    status: str
    points: list[PointView]


def _local_date(epoch: int, tz: tzinfo) -> date:
    return datetime.fromtimestamp(epoch, UTC).astimezone(tz).date()


def _midnight(d: date, tz: tzinfo) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp())


def _stamp(epoch: int | None, tz: tzinfo) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz).strftime("%Y-%m-%d %H:%M %Z").strip()


def _point_name(point: StoredPoint, rows: Sequence[Reading], number: int, many: bool) -> str:
    if point.title and "/" not in point.title:
        return point.title
    uoms = {r.uom for r in rows[:200]}
    word = next((w for u, w in _SERVICE_WORDS.items() if u in uoms), "Usage")
    return f"{word} (meter {number})" if many else word


def _change(now: float, before: float) -> str | None:
    if before == 0:
        return None
    pct = round((now - before) / before * 100)
    return "0 %" if pct == 0 else f"{pct:+d} %"  # never "-0 %"


def _usage_cells(u: Usage | None, export: bool, cost: bool) -> list[str | None]:
    if u is None:
        return ["no data"] + [None] * (export + cost)
    cells: list[str | None] = [_amount(u.used, u.unit)]
    if export:
        cells.append(_amount(u.exported, u.unit))
    if cost:
        cells.append(money(u.cost, u.currency))
    return cells


def _label(p: Period, resolution: Resolution) -> str:
    if resolution == "month" and not p.whole:
        return f"{p.start:%B %Y} ({_span(p.start, p.end)} only)"
    if resolution == "month":
        return f"{p.start:%B %Y}"
    return f"{p.start:%a} {_day(p.start)}"


def point_view(
    store: Store,
    namespace: str,
    point: StoredPoint,
    *,
    index: int,
    number: int,
    many: bool,
    tz: tzinfo,
    zone: str,
    choice: RangeChoice,
    bills: Sequence[Bill] = (),
) -> PointView:
    """The dashboard of one usage point for the range ``choice``."""
    view = PointView(
        index=index,
        key=point.key,
        name="",
        readings=point.readings,
        first=_stamp(point.first, tz),
        last=_stamp(point.last, tz),
        zone=zone,
    )
    if not point.readings or point.first is None or point.last is None:
        view.name = _point_name(point, [], number, many)
        return view
    first = _local_date(point.first, tz)
    last = _local_date(point.last - 1, tz)
    start, end, resolution = analysis.range_bounds(choice, first, last)
    # this range, the one before it and the same dates a year earlier
    since = min(start - (end - start), start.replace(day=1) - timedelta(days=366))
    rows = list(
        export_readings(
            store,
            usage_point=point.key,
            namespace=namespace,
            start=_midnight(since, tz),
            end=_midnight(end, tz),
        )
    )
    view.name = _point_name(point, rows, number, many)
    view.resolution = resolution
    view.span = _span(start, end)
    periods = analysis.period_totals(rows, tz, resolution, start, end)
    compared = analysis.comparison(rows, tz, start, end)
    current = compared.current
    view.has_export = current.exported > 0
    view.has_cost = current.cost is not None
    if view.has_export:  # solar: "use" would hide what the panels covered
        view.facts.append(f"Delivered from the grid: {_amount(current.used, current.unit)}")
        view.facts.append(f"Exported to the grid: {_amount(current.exported, current.unit)}")
        net = current.used - current.exported
        view.facts.append(f"Net from the grid: {_amount(net, current.unit)}")
    else:  # no solar jargon on a home without export
        view.facts.append(f"Use: {_amount(current.used, current.unit)}")
    if view.has_cost:
        view.facts.append(f"Cost of the energy used: {money(current.cost, current.currency)}")
    days = (end - start).days
    if days and current.readings:
        per_day = f"{_amount(current.used / days, current.unit)} a day"
        if view.has_cost and current.cost is not None:
            per_day += f", {money(current.cost / days, current.currency)} a day"
        view.facts.append(f"On average: {per_day}")
    view.table = [
        Row(_label(p, resolution), _usage_cells(p.usage if p.usage.readings else None,
                                                view.has_export, view.has_cost))
        for p in periods
    ]  # fmt: skip
    if choice != "all":
        sides = [
            ("This range", _span(start, end), current),
            ("The range before", _span(compared.previous_start, start), compared.previous),
            (
                "Same dates last year",
                _span(compared.last_year_start, compared.last_year_end),
                compared.last_year,
            ),
        ]
        if (end - start).days >= 365:  # a year's "range before" is last year's dates
            del sides[1]
        for name, dates, usage in sides:
            cells = [dates, *_usage_cells(usage, False, view.has_cost)]
            change = None if usage is None or usage is current else _change(
                current.used, usage.used
            )  # fmt: skip
            view.comparison.append(Row(name, [*cells, change]))
    for share in analysis.tou_breakdown(rows, tz, start, end):
        name = TOU_NAMES.get(share.tou, f"Period {share.tou}")
        view.tou.append(
            Row(name, [_amount(share.energy, current.unit), f"{share.share:.0%}",
                       money(share.cost, current.currency) if view.has_cost else None])
        )  # fmt: skip
    for bill in reversed(bills[-24:]):
        ends = bill.end if bill.end else bill.start
        period = _span(_local_date(bill.start, tz), _local_date(ends, tz))
        consumption = None if bill.consumption is None else _amount(bill.consumption, bill.unit)
        view.bills.append(Row(period, [money(bill.amount, bill.currency), consumption]))
        view.bill_amounts = view.bill_amounts or bill.amount is not None
    _draw(view, periods, resolution)
    return view


def _draw(view: PointView, periods: Sequence[Period], resolution: Resolution) -> None:
    """Two drawings of the same chart (desktop and phone sizes, CSS shows one), each with
    an accessible name summarising it; nothing when matplotlib is missing."""
    try:
        from ..analysis import accessible_svg, period_chart, render
    except ImportError:
        return
    label = analysis.describe_periods(periods, resolution)
    title = f"{view.name}: {'monthly' if resolution == 'month' else 'daily'} use, {view.span}"
    view.chart_label = label
    try:
        for size in ("desktop", "phone"):
            svg = render(period_chart(periods, resolution, size=size), "svg")
            markup = Markup(accessible_svg(svg, title, label))  # noqa: S704 - our SVG, escaped
            if size == "desktop":
                view.chart_desktop = markup
            else:
                view.chart_phone = markup
    except ValueError:
        return


def account_view(
    index: int,
    status: str,
    facts: CustomerFacts | None,
    points: list[PointView],
    count: int,
) -> AccountView:
    """The account's heading: the customer's name and address when the utility sent them."""
    title = facts.name if facts and facts.name else "Your account"
    if (facts is None or not facts.name) and count > 1:
        title = f"Account {index + 1}"
    return AccountView(index, title, facts.address if facts else None, status, points)


def page_context(choice: RangeChoice) -> Mapping[str, Any]:
    """What the template needs beside the accounts: the range links."""
    return {
        "ranges": [(c, label, c == choice) for c, label in RANGES.items()],
        "range": choice,
    }
