"""Facts about the interval data of a parsed document: what ``inspect`` shows, ``plot`` draws.

Pure functions on the models (no I/O, no pandas), so the CLI, charts and a future dashboard
all report the same numbers. Times stay epoch seconds (UTC, ESPI TimeType) until shown; local
time comes from the UsagePoint's LocalTimeParameters (ESPI_NOTES 3.4), and a file without one
is read in UTC and says so. Nothing here repairs data: gaps, duplicates and odd DST days are
counted and described, never filled in or averaged away.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from ..models import (
    ABSENT,
    Document,
    LocalTimeParameters,
    MeterReading,
    ReadingType,
    TimeZoneInfo,
    UsagePoint,
    UsageSummary,
    code_name,
    currency_code,
    uom_symbol,
)
from ..models._bounds import MULTIPLIER_MAX
from ..models._enums import ACCUMULATION_BEHAVIOUR, FLOW_DIRECTION
from ..models._rows import scale_factors

__all__ = [
    "MAX_EXPONENT",
    "SUMMABLE_UNITS",
    "DailyTotal",
    "DstDay",
    "DuplicateStats",
    "Gap",
    "SeriesSummary",
    "SeriesValues",
    "daily_totals",
    "describe_reading_type",
    "display_unit",
    "effective_durations",
    "flow_label",
    "format_duration",
    "format_number",
    "hourly_matrix",
    "local_datetime",
    "scaled",
    "series_values",
    "summarize",
    "summarize_series",
    "time_zone_for",
    "usage_summary_facts",
]

#: Units whose per-interval values add up to a meaningful total (energy, volume, money).
#: Power, demand, voltage or temperature readings are instantaneous or averaged: their sum
#: is a number nobody can use, so those series report peak and mean instead.
SUMMABLE_UNITS = frozenset(
    {
        "Wh", "VAh", "VArh", "Qh", "Ah", "J", "BTU", "therm", "money", "count",
        "m3", "m3_compensated", "m3_uncompensated", "ft3", "ft3_compensated",
        "gal", "imp_gal", "L", "L_compensated", "L_uncompensated",
    }
)  # fmt: skip

# Base unit -> (display unit, power of ten): people read kWh, not Wh x 10^3.
_DISPLAY = {
    "Wh": ("kWh", -3),
    "W": ("kW", -3),
    "VArh": ("kVArh", -3),
    "VAr": ("kVAr", -3),
    "VAh": ("kVAh", -3),
    "VA": ("kVA", -3),
}

# AccumulationKind bulkQuantity (1), continuousCumulative (2), cumulative (3): each value is
# a register reading since some origin, so summing them double counts.
_REGISTER = frozenset({1, 2, 3})

#: Largest plausible |powerOfTenMultiplier| (SI yotta / yocto); the parser refuses larger
#: ones in ReadingTypes (``models._bounds``), SummaryMeasurements may still carry them.
MAX_EXPONENT = MULTIPLIER_MAX


@dataclass(frozen=True, slots=True)
class Gap:
    """Time with no reading between two consecutive readings (epoch seconds, UTC)."""

    start: int  # end of the reading before
    end: int  # start of the reading after
    missing: int  # whole intervals missing, at the series' usual interval length

    @property
    def seconds(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class DuplicateStats:
    """Readings repeating a start already seen in the same MeterReading (any block).

    Only the last occurrence is kept (DESIGN 3.3); ``conflicting`` counts the starts whose
    repeated values differ, i.e. where the choice of occurrence changes the data.
    """

    extra: int = 0
    starts: int = 0
    conflicting: int = 0


@dataclass(frozen=True, slots=True)
class DstDay:
    """A local day whose length is not 24 hours under the series' time zone."""

    day: date
    day_hours: float  # 23 or 25 for a one-hour DST shift
    data_hours: float  # hours covered by readings starting that local day
    readings: int

    @property
    def complete(self) -> bool:
        """The day's readings cover exactly its real length (the expected DST handling)."""
        return self.data_hours == self.day_hours


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesValues:
    """A series ready to chart or total: sorted starts, effective durations and values in
    ``unit`` (the display unit), plus the local time zone."""

    starts: Sequence[int]
    durations: Sequence[int]
    values: Sequence[float]
    unit: str | None
    tz: tzinfo


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesSummary:
    """Everything ``inspect`` reports about one MeterReading."""

    usage_point: str
    meter_reading: str
    service_kind: str | int | None
    reading_type: ReadingType | None
    description: str
    unit: str | None  # unit the totals are in (display unit, e.g. kWh)
    flow_direction: str | int | None
    accumulation: str | int | None
    readings: int  # after de-duplication
    raw_readings: int  # as in the file
    first_start: int | None
    last_end: int | None
    tz: tzinfo
    time_zone: str
    time_zone_problems: tuple[str, ...]
    interval_lengths: Mapping[int, int]
    total: float | None
    total_basis: str | None  # "sum", "register" (last - first) or None
    peak: float | None
    mean: float | None
    cost_total: float | None
    currency: str | None
    cost_readings: int
    gaps: tuple[Gap, ...]
    overlaps: int
    duplicates: DuplicateStats
    dst_days: tuple[DstDay, ...]
    zero_duration: int
    outside_block: int
    missing_values: int
    warnings: tuple[str, ...] = field(default=())

    @property
    def missing_seconds(self) -> int:
        return sum(g.seconds for g in self.gaps)


def display_unit(unit: str | None) -> tuple[str | None, int]:
    """The unit people expect to read (``kWh`` for ``Wh``) and the power of ten to get there."""
    if unit is None:
        return None, 0
    return _DISPLAY.get(unit, (unit, 0))


def scaled(raw: float, exponent: int) -> float:
    """``raw × 10^exponent``, dividing for negative exponents so that 2668300 × 10^-6 is
    2.6683 and not 2.6683000000000003."""
    mul, div = scale_factors(exponent)  # a table lookup, never an unbounded 10**p
    return float(raw * mul) if div == 1 else raw / div


def format_duration(seconds: int) -> str:
    """``15 min``, ``1 h``, ``1 day``, ``30 days`` ... for interval lengths."""
    if seconds <= 0:
        return f"{seconds} s"
    for size, name in ((86400, "day"), (3600, "h"), (60, "min")):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {name}s" if name == "day" and n != 1 else f"{n} {name}"
    if seconds > 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    return f"{seconds} s"


def format_number(x: float, decimals: int = 3) -> str:
    """Readable numbers: thousands separators, no float noise, tiny values kept."""
    if x != 0 and abs(x) < 10**-decimals:
        return f"{x:.3g}"
    text = f"{x:,.{decimals}f}"
    if decimals > 2 and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def describe_reading_type(rt: ReadingType | None) -> str:
    """One line a person can read: ``Wh ×10^-3, forward, 15 min``."""
    if rt is None:
        return "no ReadingType"
    parts = []
    unit = rt.unit or "no unit"
    mult = rt.power_of_ten_multiplier or 0
    parts.append(f"{unit} ×10^{mult}" if mult else unit)
    if rt.flow_direction is not None:
        parts.append(str(rt.flow_direction_name))
    if rt.interval_length:
        parts.append(format_duration(rt.interval_length))
    if rt.kind is not None and rt.kind not in (12, 0):  # energy is the unremarkable case
        parts.append(str(rt.kind_name))
    if rt.accumulation_behaviour not in (None, 4):
        parts.append(str(code_name(ACCUMULATION_BEHAVIOUR, rt.accumulation_behaviour)))
    return ", ".join(parts)


def time_zone_for(doc: Document, up: UsagePoint) -> tuple[tzinfo, str, tuple[str, ...]]:
    """The local time zone of a usage point: ``(tzinfo, label, problems)``.

    The UsagePoint's own LocalTimeParameters win; a document with exactly one
    LocalTimeParameters lends it to usage points not linked to any (DMD files often omit
    the link). Without either, local time is UTC and the problems say so.
    """
    ltp = up.local_time_parameters
    borrowed = False
    if ltp is None and len(doc.local_time_parameters) == 1:
        ltp, borrowed = doc.local_time_parameters[0], True
    if ltp is None:
        return UTC, "UTC (no LocalTimeParameters)", ("local days are UTC days",)
    info = ltp.time_zone
    label = _describe_tz(ltp, info)
    problems = list(info.problems)
    if borrowed:
        label += " (the document's only LocalTimeParameters)"
    return info.tzinfo, label, tuple(problems)


def _describe_tz(ltp: LocalTimeParameters, info: TimeZoneInfo) -> str:
    std = _offset_label(ltp.tz_offset or 0) if ltp.tz_offset is not None else "UTC"
    if info.iana:
        return f"{info.iana} ({std} standard)"
    if info.dst_start is None or info.dst_end is None or not ltp.dst_offset:
        return f"{std}, no DST"
    shift = ltp.dst_offset / 3600
    return f"{std}, DST +{shift:g} h from {info.dst_start.describe()} to {info.dst_end.describe()}"


def _offset_label(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "-"
    return f"UTC{sign}{abs(seconds) // 3600:02d}:{abs(seconds) % 3600 // 60:02d}"


def local_datetime(epoch: int, tz: tzinfo) -> datetime:
    """An epoch instant as an aware local datetime."""
    return datetime.fromtimestamp(epoch, UTC).astimezone(tz)


class _LocalClock:
    """Local wall-clock times of many instants without a tz lookup per reading.

    Offsets are cached per 15-minute bucket when both ends of the bucket agree, which is
    exact for every zone whose transitions fall on quarter hours and falls back to a lookup
    per instant inside any bucket that holds a transition (odd ESPI rule seconds).
    """

    _BUCKET = 900

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._cache: dict[int, int | None] = {}

    def _offset(self, epoch: int) -> int:
        off = local_datetime(epoch, self.tz).utcoffset()
        return int(off.total_seconds()) if off is not None else 0

    def offset(self, epoch: int) -> int:
        bucket = epoch // self._BUCKET
        if bucket in self._cache:
            cached = self._cache[bucket]
        else:
            lo = self._offset(bucket * self._BUCKET)
            hi = self._offset(bucket * self._BUCKET + self._BUCKET - 1)
            cached = lo if lo == hi else None
            self._cache[bucket] = cached
        return cached if cached is not None else self._offset(epoch)

    def local_naive(self, epoch: int) -> datetime:
        return datetime(1970, 1, 1) + timedelta(seconds=epoch + self.offset(epoch))

    def day_seconds(self, day: date) -> int:
        """Real length of a local day (82800/90000 on DST days)."""
        start = datetime(day.year, day.month, day.day, tzinfo=self.tz).timestamp()
        nxt = day + timedelta(days=1)
        end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=self.tz).timestamp()
        return int(end - start)


def _scale(rt: ReadingType | None) -> tuple[str | None, int]:
    unit = rt.unit if rt is not None else None
    shown, shift = display_unit(unit)
    return shown, shift + _multiplier(rt.power_of_ten_multiplier if rt is not None else None)


def _multiplier(mult: int | None) -> int:
    """The power of ten to apply; test files carry sentinels such as 4096, which would
    overflow a float, so anything beyond the SI range (yocto..yotta) counts as none."""
    return mult if mult is not None and abs(mult) <= MAX_EXPONENT else 0


def _effective_durations(
    starts: Sequence[int], durations: Sequence[int], rt: ReadingType | None
) -> list[int]:
    return effective_durations(starts, durations, rt.interval_length if rt is not None else None)


def effective_durations(
    starts: Sequence[int], durations: Sequence[int], interval_length: int | None
) -> list[int]:
    """Durations with zeros replaced by the interval length (GBA Meter_Data files write 0
    for every reading), else the usual step between starts, so gaps and per-day coverage
    stay meaningful."""
    fallback = interval_length or 0
    if not fallback:
        steps = [b - a for a, b in zip(starts, starts[1:], strict=False) if b > a]
        fallback = int(statistics.median(steps)) if steps else 0
    return [d if d > 0 else fallback for d in durations]


def series_values(mr: MeterReading, tz: tzinfo) -> SeriesValues:
    """The de-duplicated readings of ``mr`` sorted by start, in display units.

    Register readings (accumulationBehaviour 1) whose values only rise are turned into
    per-interval differences (the first reading has no predecessor and is dropped), so a
    chart shows use, not the meter's odometer.
    """
    cols = mr.readings
    rt = mr.reading_type
    unit, exp = _scale(rt)
    order = sorted(range(len(cols)), key=cols.start.__getitem__)
    keep = [i for i in order if cols.value[i] != ABSENT]
    starts = [cols.start[i] for i in keep]
    durations = _effective_durations(starts, [cols.duration[i] for i in keep], rt)
    raw = [cols.value[i] for i in keep]
    if _is_rising_register(rt, raw):
        diffs = [scaled(b - a, exp) for a, b in zip(raw, raw[1:], strict=False)]
        return SeriesValues(
            starts=starts[1:], durations=durations[1:], values=diffs, unit=unit, tz=tz
        )
    return SeriesValues(
        starts=starts, durations=durations, values=[scaled(v, exp) for v in raw], unit=unit, tz=tz
    )


def _is_rising_register(rt: ReadingType | None, raw: Sequence[int]) -> bool:
    if rt is None or rt.accumulation_behaviour not in _REGISTER or len(raw) < 2:
        return False
    return all(a <= b for a, b in zip(raw, raw[1:], strict=False))


@dataclass(frozen=True, slots=True)
class DailyTotal:
    """A local day's total, and how much of the day the readings cover."""

    day: date
    total: float
    covered_hours: float
    day_hours: float  # 23/25 on DST days

    @property
    def complete(self) -> bool:
        return self.covered_hours >= self.day_hours


def daily_totals(values: SeriesValues) -> list[DailyTotal]:
    """Values summed per local day of each reading's start, in date order."""
    clock = _LocalClock(values.tz)
    total: dict[date, float] = {}
    covered: dict[date, int] = {}
    for s, d, v in zip(values.starts, values.durations, values.values, strict=True):
        day = clock.local_naive(s).date()
        total[day] = total.get(day, 0.0) + v
        covered[day] = covered.get(day, 0) + d
    return [
        DailyTotal(day, total[day], covered[day] / 3600, clock.day_seconds(day) / 3600)
        for day in sorted(total)
    ]


def hourly_matrix(values: SeriesValues) -> tuple[list[date], dict[tuple[date, int], float]]:
    """Values summed per (local day, local hour of day): the cells of a heat map.

    A spring-forward day simply has no cell for the skipped hour; a fall-back day's repeated
    hour holds both readings (the energy used in that wall-clock hour).
    """
    clock = _LocalClock(values.tz)
    cells: dict[tuple[date, int], float] = {}
    for s, v in zip(values.starts, values.values, strict=True):
        local = clock.local_naive(s)
        key = (local.date(), local.hour)
        cells[key] = cells.get(key, 0.0) + v
    days = sorted({d for d, _ in cells})
    return days, cells


def summarize(doc: Document) -> tuple[SeriesSummary, ...]:
    """One :class:`SeriesSummary` per MeterReading of every UsagePoint, in document order."""
    out = []
    for up in doc.usage_points:
        tz, label, problems = time_zone_for(doc, up)
        for mr in up.meter_readings:
            out.append(summarize_series(mr, up, tz=tz, time_zone=label, tz_problems=problems))
    return tuple(out)


def summarize_series(
    mr: MeterReading,
    up: UsagePoint,
    *,
    tz: tzinfo = UTC,
    time_zone: str = "UTC",
    tz_problems: Iterable[str] = (),
) -> SeriesSummary:
    """Facts about one MeterReading; ``tz`` is the local time zone (see :func:`time_zone_for`)."""
    rt = mr.reading_type
    warnings: list[str] = []
    cols = mr.readings
    raw_count = sum(len(b.readings) for b in mr.interval_blocks)
    order = sorted(range(len(cols)), key=cols.start.__getitem__)
    starts = [cols.start[i] for i in order]
    durations = [cols.duration[i] for i in order]
    eff = _effective_durations(starts, durations, rt)
    usual = _usual_length(eff)
    unit, exp = _scale(rt)
    raw_values = [cols.value[i] for i in order if cols.value[i] != ABSENT]
    missing_values = len(order) - len(raw_values)

    if rt is None:
        warnings.append("no ReadingType linked: units and scale are unknown")
    elif _multiplier(rt.power_of_ten_multiplier) != (rt.power_of_ten_multiplier or 0):
        warnings.append(
            f"powerOfTenMultiplier {rt.power_of_ten_multiplier} is not a plausible scale; "
            "values are shown unscaled"
        )
    # Counted in the file as written: the 0-s reading GBA writes at a fall-back hour shares
    # its start with the real one, so de-duplication alone would hide it.
    zero = sum(1 for b in mr.interval_blocks for d in b.readings.duration if d == 0)
    if zero:
        warnings.append(
            f"{zero} reading(s) with duration 0; the interval length "
            f"({format_duration(usual)}) is assumed"
        )

    total: float | None = None
    basis: str | None = None
    peak = mean = None
    summable = unit is not None and (rt is not None and rt.unit in SUMMABLE_UNITS)
    if raw_values and summable:
        if rt is not None and rt.accumulation_behaviour in _REGISTER:
            if _is_rising_register(rt, raw_values):
                total, basis = scaled(raw_values[-1] - raw_values[0], exp), "register"
                warnings.append(
                    f"register readings ({_accumulation(rt)}): the total is the last minus "
                    "the first reading, not a sum"
                )
            else:
                total, basis = scaled(sum(raw_values), exp), "sum"
                warnings.append(
                    f"the ReadingType says register readings ({_accumulation(rt)}) but the "
                    "values rise and fall like per-interval amounts; they were summed as such, "
                    "so check the total"
                )
        else:
            total, basis = scaled(sum(raw_values), exp), "sum"
    elif raw_values:
        peak = scaled(max(raw_values), exp)
        mean = scaled(sum(raw_values), exp) / len(raw_values)

    costs = [cols.cost[i] for i in order if cols.cost[i] != ABSENT]
    cost_total = scaled(sum(costs), -5) if costs else None
    currency = rt.currency_code if rt is not None else None
    if costs and currency is None:
        warnings.append("readings carry cost but the ReadingType names no currency")

    gaps, overlaps = _gaps(starts, eff, usual)
    dups = _duplicates(mr)
    if dups.conflicting:
        warnings.append(
            f"{dups.conflicting} start(s) repeated with different values; "
            "the last occurrence was kept"
        )
    outside = _outside_block(mr)
    if outside:
        warnings.append(f"{outside} reading(s) fall outside their IntervalBlock's interval")
    if missing_values:
        warnings.append(f"{missing_values} reading(s) without a value")

    clock = _LocalClock(tz)
    dst_days, odd_days = _dst_days(clock, starts, eff)
    for d in dst_days:
        if not d.complete:
            warnings.append(
                f"{d.day}: a {d.day_hours:g}-hour local day (DST) holds {d.data_hours:g} h of "
                f"readings ({d.readings})"
            )
    for day, hours in odd_days:
        warnings.append(
            f"{day}: {hours:g} h of readings on a 24-hour local day; the time zone "
            f"({time_zone}) may not be the one the data was recorded in"
        )

    return SeriesSummary(
        usage_point=up.id,
        meter_reading=mr.id,
        service_kind=up.service_kind_name,
        reading_type=rt,
        description=describe_reading_type(rt),
        unit=unit,
        flow_direction=rt.flow_direction_name if rt is not None else None,
        accumulation=code_name(ACCUMULATION_BEHAVIOUR, rt.accumulation_behaviour) if rt else None,
        readings=len(cols),
        raw_readings=raw_count,
        first_start=starts[0] if starts else None,
        last_end=max(s + d for s, d in zip(starts, eff, strict=True)) if starts else None,
        tz=tz,
        time_zone=time_zone,
        time_zone_problems=tuple(tz_problems),
        interval_lengths=dict(sorted(Counter(durations).items())),
        total=total,
        total_basis=basis,
        peak=peak,
        mean=mean,
        cost_total=cost_total,
        currency=currency,
        cost_readings=len(costs),
        gaps=tuple(gaps),
        overlaps=overlaps,
        duplicates=dups,
        dst_days=tuple(dst_days),
        zero_duration=zero,
        outside_block=outside,
        missing_values=missing_values,
        warnings=tuple(warnings),
    )


def _accumulation(rt: ReadingType) -> str:
    code = rt.accumulation_behaviour
    return f"accumulationBehaviour {code} = {code_name(ACCUMULATION_BEHAVIOUR, code)}"


def _usual_length(durations: Sequence[int]) -> int:
    """The most common positive length (the first seen on a tie), 0 when none; the
    charts use it too."""
    positive = [d for d in durations if d > 0]
    if not positive:
        return 0
    return Counter(positive).most_common(1)[0][0]


def _gaps(starts: Sequence[int], eff: Sequence[int], usual: int) -> tuple[list[Gap], int]:
    gaps: list[Gap] = []
    overlaps = 0
    for i in range(len(starts) - 1):
        end, nxt = starts[i] + eff[i], starts[i + 1]
        if nxt > end:
            gaps.append(Gap(end, nxt, (nxt - end) // usual if usual else 0))
        elif nxt < end:
            overlaps += 1
    return gaps, overlaps


def _duplicates(mr: MeterReading) -> DuplicateStats:
    seen: dict[int, int] = {}
    counts: Counter[int] = Counter()
    conflicting: set[int] = set()
    for block in mr.interval_blocks:
        cols = block.readings
        for s, v in zip(cols.start, cols.value, strict=True):
            counts[s] += 1
            if s in seen and seen[s] != v:
                conflicting.add(s)
            seen[s] = v
    repeated = [n for n in counts.values() if n > 1]
    return DuplicateStats(sum(repeated) - len(repeated), len(repeated), len(conflicting))


def _outside_block(mr: MeterReading) -> int:
    n = 0
    for block in mr.interval_blocks:
        lo, hi = block.interval.start, block.interval.end
        if lo is None or hi is None:
            continue
        cols = block.readings
        for s, d in zip(cols.start, cols.duration, strict=True):
            if s < lo or s + d > hi:
                n += 1
    return n


def _dst_days(
    clock: _LocalClock, starts: Sequence[int], eff: Sequence[int]
) -> tuple[list[DstDay], list[tuple[date, float]]]:
    """Local days of non-24-hour length (DST), and interior 24-hour days holding exactly
    23 or 25 hours of readings — the sign of data recorded in another zone than declared."""
    covered: dict[date, int] = {}
    count: Counter[date] = Counter()
    for s, d in zip(starts, eff, strict=True):
        day = clock.local_naive(s).date()
        covered[day] = covered.get(day, 0) + d
        count[day] += 1
    days = sorted(covered)
    dst: list[DstDay] = []
    odd: list[tuple[date, float]] = []
    for i, day in enumerate(days):
        length = clock.day_seconds(day)
        if length != 86400:
            dst.append(DstDay(day, length / 3600, covered[day] / 3600, count[day]))
        elif 0 < i < len(days) - 1 and covered[day] in (82800, 90000) and count[day] > 1:
            odd.append((day, covered[day] / 3600))
    return dst, odd


def usage_summary_facts(us: UsageSummary) -> dict[str, object]:
    """The bill-related facts of a UsageSummary, money scaled by the spec's 10^-5."""
    bp = us.billing_period
    facts: dict[str, object] = {
        "element": us.element,
        "billing_period_start": _iso(bp.start) if bp and bp.start is not None else None,
        "billing_period_end": _iso(bp.end) if bp and bp.end is not None else None,
        "currency": currency_code(us.currency),
        "bill_last_period": _money(us.bill_last_period),
        "bill_to_date": _money(us.bill_to_date),
        "cost_additional_last_period": _money(us.cost_additional_last_period),
        "line_items": len(us.line_items),
    }
    consumption = {}
    unusable = []
    for name, m in us.measurements.items():
        if m.value is None:
            continue
        if m.power_of_ten_multiplier is not None and abs(m.power_of_ten_multiplier) > MAX_EXPONENT:
            unusable.append(name)  # GBA test files fill unused ones with sentinel values
            continue
        unit, shift = display_unit(uom_symbol(m.uom))
        value = scaled(m.value, shift + (m.power_of_ten_multiplier or 0))
        consumption[name] = {"value": value, "unit": unit}
    facts["measurements"] = consumption
    facts["unusable_measurements"] = unusable
    return facts


def _money(raw: int | None) -> float | None:
    return None if raw is None else scaled(raw, -5)


def _iso(epoch: int) -> str | None:
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return None


def flow_label(code: int | None) -> str:
    """``import``/``export`` for forward/reverse flows, else the ESPI name."""
    if code == 1:
        return "import"
    if code == 19:
        return "export"
    name = code_name(FLOW_DIRECTION, code)
    return str(name) if name is not None else "usage"
