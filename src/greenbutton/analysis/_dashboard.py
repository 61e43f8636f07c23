"""What a customer's dashboard shows: usage per day or month, cost, comparisons, time of use
and bills, computed from readings-table rows (``storage.export_readings``,
``greenbutton.iter_readings``) and UsageSummary resources.

Pure functions with no clock: every range is anchored to the data (its last local day), never
to today, so the same rows give the same page whenever it is drawn. Days and months are the
usage point's local ones (``tz``), so a DST day is one day of 23 or 25 hours, and a reading
counts for the local day its interval starts in. Units are the display ones (kWh for Wh);
money is the rows' (already scaled by the utility profile's cost scale).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta, tzinfo
from typing import Literal

from ..models import Document, Reading, UsageSummary, currency_code, uom_symbol
from ._summary import MAX_EXPONENT, SUMMABLE_UNITS, display_unit, scaled

__all__ = [
    "RANGES",
    "TOU_NAMES",
    "Bill",
    "Comparison",
    "CustomerFacts",
    "Period",
    "RangeChoice",
    "Resolution",
    "TouShare",
    "Usage",
    "bills",
    "comparison",
    "customer_facts",
    "describe_periods",
    "flow_words",
    "period_totals",
    "range_bounds",
    "tou_breakdown",
    "usage_between",
]

RangeChoice = Literal["7d", "30d", "12m", "all"]
Resolution = Literal["day", "month"]
#: The dashboard's range presets and their labels.
RANGES: Mapping[RangeChoice, str] = {
    "7d": "7 days",
    "30d": "30 days",
    "12m": "12 months",
    "all": "All data",
}
#: Time-of-use codes as PG&E's ProgramIdMappings explain them (ESPI_NOTES; other utilities
#: publish their own mapping, an unknown code is shown as "period N").
TOU_NAMES: Mapping[int, str] = {
    1: "Summer peak",
    2: "Summer off-peak",
    3: "Summer partial peak",
    4: "Winter peak",
    5: "Winter partial peak",
    6: "Winter off-peak",
    7: "Peak",
    8: "Off-peak",
    9: "Mixed off-peak",
    10: "Winter super off-peak",
}
_MONTHLY_FROM = 62  # days: a longer span is drawn month by month (no solid block of bars)
_USE, _EXPORT = "use", "export"


@dataclass(frozen=True, slots=True)
class Usage:
    """Energy per flow (``use`` = delivered to the customer, ``export`` = sent to the grid)
    in ``unit``, the cost of the delivered energy when the readings carry one, and how many
    readings it adds up."""

    unit: str | None
    energy: Mapping[str, float] = field(default_factory=dict)
    cost: float | None = None
    currency: str | None = None
    readings: int = 0

    @property
    def used(self) -> float:
        return self.energy.get(_USE, 0.0)

    @property
    def exported(self) -> float:
        return self.energy.get(_EXPORT, 0.0)


@dataclass(frozen=True, slots=True)
class Period:
    """One bar of the chart: local days ``start`` to ``end`` (exclusive)."""

    start: date
    end: date
    usage: Usage

    @property
    def whole(self) -> bool:
        """A single day, or a whole calendar month (not one cut by the range's ends)."""
        days = (self.end - self.start).days
        return days == 1 or (self.start.day == 1 and self.end == _add_months(self.start, 1))


@dataclass(frozen=True, slots=True)
class Comparison:
    """This range beside the one just before it and the same dates a year earlier (None
    when nothing is stored for them)."""

    current: Usage
    previous: Usage | None
    last_year: Usage | None
    previous_start: date
    last_year_start: date
    last_year_end: date


@dataclass(frozen=True, slots=True)
class TouShare:
    """Delivered energy and cost in one time-of-use period (the ``tou`` code of the rows)."""

    tou: int
    energy: float
    cost: float | None
    share: float  # of all delivered energy with a tou code, 0..1


@dataclass(frozen=True, slots=True)
class Bill:
    """One billing period of a UsageSummary: dates (UTC epoch), amount and consumption."""

    start: int
    end: int | None
    amount: float | None
    currency: str | None
    consumption: float | None
    unit: str | None


def flow_words(flow: str | int | None) -> str:
    """The plain word for an ESPI flow direction: ``use`` (forward, delivered) or
    ``export`` (reverse, sent to the grid); other directions keep their name."""
    if flow in ("forward", 1, None):
        return _USE
    if flow in ("reverse", 19):
        return _EXPORT
    return str(flow)


def _main_unit(rows: Sequence[Reading]) -> str | None:
    """The summable unit most rows have (a usage point's energy series)."""
    counts: dict[str, int] = {}
    for r in rows:
        if r.uom in SUMMABLE_UNITS and r.uom != "money":
            counts[r.uom] = counts.get(r.uom, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None


def _local_day(r: Reading, tz: tzinfo) -> date:
    start = r.start if r.start.tzinfo is not None else r.start.replace(tzinfo=UTC)
    return start.astimezone(tz).date()


class _Adder:
    """Sums rows of one unit into a Usage."""

    def __init__(self, uom: str | None) -> None:
        self.uom = uom
        self.unit, self.shift = display_unit(uom) if uom else (None, 0)
        self.energy: dict[str, float] = {}
        self.cost: float | None = None
        self.currency: str | None = None
        self.readings = 0

    def add(self, r: Reading) -> None:
        if r.uom != self.uom or r.value is None:
            return
        flow = flow_words(r.flow_direction)
        self.energy[flow] = self.energy.get(flow, 0.0) + scaled(r.value, self.shift)
        self.readings += 1
        if r.cost is not None and flow == _USE:
            self.cost = (self.cost or 0.0) + r.cost
            self.currency = self.currency or r.currency

    def usage(self) -> Usage:
        unit = self.unit or self.uom
        return Usage(unit, dict(self.energy), self.cost, self.currency, self.readings)


def _month_start(d: date) -> date:
    return d.replace(day=1)


def _add_months(d: date, months: int) -> date:
    """The same day ``months`` later (earlier when negative), clamped to the month's end."""
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    day = min(d.day, calendar.monthrange(year, month + 1)[1])
    return date(year, month + 1, day)


def range_bounds(choice: RangeChoice, first: date, last: date) -> tuple[date, date, Resolution]:
    """Local days ``[start, end)`` and the bar size for a preset, for data stored from local
    day ``first`` to ``last`` (inclusive): ``7d`` and ``30d`` are the 7 or 30 days ending
    with ``last``, ``12m`` the year ending with ``last`` (from the same date a year
    earlier), ``all`` everything. Spans longer than two months are drawn by calendar month,
    the months at either end cut to the range (:attr:`Period.whole` tells). Raises
    ValueError for an unknown choice."""
    end = last + timedelta(days=1)
    if choice in ("7d", "30d"):
        start = end - timedelta(days=7 if choice == "7d" else 30)
    elif choice == "12m":
        start = _add_months(end, -12)
    elif choice == "all":
        start = first
    else:
        raise ValueError(f"unknown range {choice!r}; use one of {', '.join(RANGES)}")
    if choice in ("12m", "all"):  # a 7- or 30-day window shows its empty days; the others
        start = max(start, first)  # start where the data does
    resolution: Resolution = "month" if (end - start).days > _MONTHLY_FROM else "day"
    return start, end, resolution


def period_totals(
    rows: Iterable[Reading], tz: tzinfo, resolution: Resolution, start: date, end: date
) -> list[Period]:
    """Usage per local day or calendar month from ``start`` to ``end`` (exclusive), one
    Period for each (empty ones too, so a gap shows as a gap); months are cut to the
    range's ends."""
    kept = [r for r in rows if start <= _local_day(r, tz) < end]
    uom = _main_unit(kept)
    buckets: list[tuple[date, date]] = []
    cursor = start
    while cursor < end:
        if resolution == "day":
            nxt = cursor + timedelta(days=1)
        else:
            nxt = min(_add_months(_month_start(cursor), 1), end)
        buckets.append((cursor, nxt))
        cursor = nxt
    adders = {b[0]: _Adder(uom) for b in buckets}
    for r in kept:
        day = _local_day(r, tz)
        key = day if resolution == "day" else max(_month_start(day), start)
        adders[key].add(r)
    return [Period(s, e, adders[s].usage()) for s, e in buckets]


def usage_between(rows: Iterable[Reading], tz: tzinfo, start: date, end: date) -> Usage:
    """The total of the rows whose interval starts on a local day in ``[start, end)``."""
    kept = [r for r in rows if start <= _local_day(r, tz) < end]
    adder = _Adder(_main_unit(kept))
    for r in kept:
        adder.add(r)
    return adder.usage()


def _year_before(d: date) -> date:
    return _add_months(d, -12)


def comparison(rows: Sequence[Reading], tz: tzinfo, start: date, end: date) -> Comparison:
    """The range ``[start, end)`` beside the equally long range just before it and the
    same dates one year earlier (29 February maps to 28 February). A side with no readings
    stored is None, so "no data" is never shown as "0 kWh"."""
    length = end - start
    before = start - length
    ly_start, ly_end = _year_before(start), _year_before(end)
    current = usage_between(rows, tz, start, end)
    previous = usage_between(rows, tz, before, start)
    last_year = usage_between(rows, tz, ly_start, ly_end)
    return Comparison(
        current=current,
        previous=previous if previous.readings else None,
        last_year=last_year if last_year.readings else None,
        previous_start=before,
        last_year_start=ly_start,
        last_year_end=ly_end,
    )


def tou_breakdown(rows: Iterable[Reading], tz: tzinfo, start: date, end: date) -> list[TouShare]:
    """Delivered energy per time-of-use code in ``[start, end)``, largest first; empty when
    no row carries a ``tou``."""
    kept = [r for r in rows if r.tou is not None and start <= _local_day(r, tz) < end]
    uom = _main_unit(kept)
    by: dict[int, _Adder] = {}
    for r in kept:
        if flow_words(r.flow_direction) == _USE and r.tou is not None:
            by.setdefault(r.tou, _Adder(uom)).add(r)
    total = sum(a.usage().used for a in by.values())
    shares = [
        TouShare(tou, a.usage().used, a.cost, a.usage().used / total if total else 0.0)
        for tou, a in by.items()
    ]
    return sorted(shares, key=lambda s: (-s.energy, s.tou))


def bills(summaries: Iterable[UsageSummary], cost_scale: int = -5) -> list[Bill]:
    """Billing periods of UsageSummary resources, oldest first (one per period start: a
    utility resending a period is counted once). Money is ``raw × 10^cost_scale`` (ESPI's
    10^-5 unless the utility profile says otherwise); consumption is the summary's
    ``overallConsumptionLastPeriod`` in display units, None when absent or unusable."""
    found: dict[int, Bill] = {}
    for us in summaries:
        bp = us.billing_period
        if bp is None or bp.start is None:
            continue
        amount = None if us.bill_last_period is None else scaled(us.bill_last_period, cost_scale)
        consumption = unit = None
        m = us.measurements.get("overall_consumption_last_period")
        usable = m is not None and abs(m.power_of_ten_multiplier or 0) <= MAX_EXPONENT
        if m is not None and m.value is not None and usable:
            unit, shift = display_unit(uom_symbol(m.uom))
            consumption = scaled(m.value, shift + (m.power_of_ten_multiplier or 0))
        end = None if bp.duration is None else bp.start + bp.duration
        found[bp.start] = Bill(bp.start, end, amount, currency_code(us.currency), consumption, unit)
    return [found[k] for k in sorted(found)]


def _day_label(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def describe_periods(periods: Sequence[Period], resolution: Resolution) -> str:
    """One sentence for a chart's accessible name: range, total, highest and lowest bar."""
    with_data = [p for p in periods if p.usage.readings]
    if not with_data:
        return "No readings in this range."
    unit = with_data[0].usage.unit or ""
    unit = "therms" if unit == "therm" else unit
    span = f"{_day_label(periods[0].start)} to {_day_label(periods[-1].end - timedelta(days=1))}"
    total = sum(p.usage.used for p in with_data)
    whole = [p for p in with_data if p.whole] or with_data  # a month cut short is no low
    high = max(whole, key=lambda p: p.usage.used)
    low = min(whole, key=lambda p: p.usage.used)

    def when(p: Period) -> str:
        return f"{p.start:%B %Y}" if resolution == "month" else _day_label(p.start)

    per = "Monthly" if resolution == "month" else "Daily"
    text = (
        f"{per} use, {span}: {total:,.1f} {unit} in total; highest {high.usage.used:,.1f} "
        f"{unit} ({when(high)}), lowest {low.usage.used:,.1f} {unit} ({when(low)})."
    )
    exported = sum(p.usage.exported for p in with_data)
    if exported:
        text += f" Exported to the grid: {exported:,.1f} {unit}."
    return text


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """What a page may call the customer: name and service address, None when the
    utility's customer feed (RetailCustomer, ESPI customer namespace) lacks them."""

    name: str | None = None
    address: str | None = None


def _tidy_words(text: str) -> str:
    """``140 HAN RD`` reads better as ``140 Han Rd``; mixed case is kept as sent."""
    text = " ".join(text.split())
    return text.title() if text.isupper() else text


def customer_facts(doc: Document) -> CustomerFacts:
    """The customer's name (``Customer/name``, or ``customerName`` as some utilities and
    the simulator send it) and first service location's address from a customer feed."""
    name = address = None
    for res in doc.customer_resources:
        data = res.data
        if res.element == "Customer" and name is None:
            value = data.get("name") or data.get("customerName")
            name = _tidy_words(value) if isinstance(value, str) and value.strip() else None
        elif res.element == "ServiceLocation" and address is None:
            main = data.get("mainAddress")
            if not isinstance(main, Mapping):
                continue
            street = main.get("streetDetail")
            town = main.get("townDetail")
            parts = []
            if isinstance(street, Mapping) and isinstance(street.get("addressGeneral"), str):
                parts.append(_tidy_words(street["addressGeneral"]))
            if isinstance(town, Mapping):
                place = " ".join(
                    str(x).strip()
                    for x in (
                        _tidy_words(str(town.get("name") or "")),
                        town.get("stateOrProvince") or "",
                        town.get("code") or "",
                    )
                    if str(x).strip()
                )
                if place:
                    parts.append(place)
            address = ", ".join(parts) or None
    return CustomerFacts(name, address)
