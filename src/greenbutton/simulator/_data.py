"""Usage data the simulator serves: deterministic synthetic customers, or real ESPI files.

A data custodian holds years of 15-minute readings per meter; the simulator must serve a
5-year window without holding it. So :class:`SyntheticData` keeps no readings at all: every
day's values are a pure function of ``(seed, usage point, date)``, IntervalBlocks are made
per requested window (:class:`_LazyBlocks`), and each block's readings are computed only when
the writer reaches that block (:class:`_LazyColumns`). Memory stays at one block.

Shapes are plausible rather than fitted: a Pacific residential load with morning and evening
peaks, summer air-conditioning and winter heating, rooftop solar netted against it (forward
and reverse MeterReadings, flowDirection 1 and 19), daily gas in therms. Days are local
(America/Los_Angeles) and blocks start at local midnight, so DST days hold 23 or 25 hours
(82800 / 90000 s), as at PG&E.
"""

from __future__ import annotations

import base64
import math
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast, overload
from zoneinfo import ZoneInfo

from ..models import (
    ABSENT,
    DateTimeInterval,
    Document,
    IntervalBlock,
    LocalTimeParameters,
    MeterReading,
    ReadingColumns,
    ReadingType,
    SummaryMeasurement,
    UsagePoint,
    UsageSummary,
)
from ._config import SimulatorConfig
from ._state import SimulatorState, UsagePointSpec

__all__ = [
    "PACIFIC",
    "PACIFIC_LTP",
    "PGE_TOU_CODES",
    "SUMMARY_MONTHS",
    "DataSource",
    "FileData",
    "SyntheticData",
    "Window",
    "create_data_source",
]

PACIFIC = ZoneInfo("America/Los_Angeles")
#: PG&E's LocalTimeParameters (US rules since 2007: 2nd Sunday of March, 1st of November).
PACIFIC_LTP = LocalTimeParameters(
    href="LocalTimeParameters/1",
    title="DST For Pacific timezone",
    dst_start_rule="360E2000",
    dst_end_rule="B40E2000",
    dst_offset=3600,
    tz_offset=-28800,
)
#: published/updated of resources that do not change (usage points, reading types ...).
_EPOCH = datetime(2015, 1, 1, tzinfo=UTC)

# ReadingQuality codes as PG&E writes them on electric readings.
_QUALITY_REVENUE = 19
_QUALITY_ESTIMATED = 8
#: PG&E's ``tou`` codes, as its ProgramIdMappings entry explains them (ESPI_NOTES 2.6,
#: ``pge_smd_bulk_day_*``): code -> (name, note). Readings carry 1/2 in summer (June to
#: September) and 4/6 otherwise, peak being 16:00-21:00 local.
PGE_TOU_CODES = {
    1: ("SPK", "Summer Peak"),
    2: ("SOP", "Summer Off Peak"),
    3: ("SPP", "Summer Partial Peak"),
    4: ("WPK", "Winter Peak"),
    5: ("WPP", "Winter Partial Peak"),
    6: ("WOP", "Winter Off Peak"),
    7: ("MPK", "Spring Peak"),
    8: ("MOP", "Spring Off Peak"),
    9: ("MXO", "Spring Super Off Peak"),
    10: ("WSO", "Winter Super Off Peak"),
}
_SUMMER_MONTHS = range(6, 10)
# Tariffs in 10^-5 USD per kWh / therm (ESPI money scale).
_RATE_PEAK = 52_000
_RATE_OFF_PEAK = 41_000
_RATE_GAS = 210_000
#: The subscription of ``DownloadSampleData``: no customer has it, so no token reaches it.
SAMPLE_SUBSCRIPTION = "0"
_SAMPLE_SPEC = UsagePointSpec(id="1", profile="electric_hourly", seed=0)
#: How many monthly UsageSummaries (billing periods) a synthetic usage point keeps.
SUMMARY_MONTHS = 13


@dataclass(frozen=True, slots=True)
class Window:
    """The ESPI query filters of one request, as epoch seconds (``None`` = open).

    ``published`` bounds apply to an IntervalBlock's interval (ESPI_NOTES 1.3): a block is
    in the window when it overlaps ``[published_min, published_max)``, so consecutive windows
    never lose a block that straddles their boundary (a client de-duplicates the overlap).
    Other dated entries (UsageSummary) are filtered on ``atom:published``. ``updated``
    bounds apply to ``atom:updated`` (a block's is its end).
    """

    published_min: int | None = None
    published_max: int | None = None
    updated_min: int | None = None
    updated_max: int | None = None

    def keeps_interval(self, start: int, end: int) -> bool:
        if self.published_min is not None and end <= self.published_min:
            return False
        if self.published_max is not None and start >= self.published_max:
            return False
        return self.keeps_updated(end)

    def keeps_published(self, published: int, updated: int) -> bool:
        if self.published_min is not None and published < self.published_min:
            return False
        if self.published_max is not None and published > self.published_max:
            return False
        return self.keeps_updated(updated)

    def keeps_updated(self, updated: int) -> bool:
        if self.updated_min is not None and updated < self.updated_min:
            return False
        return not (self.updated_max is not None and updated > self.updated_max)


class DataSource(ABC):
    """What the resource server asks of its data, synthetic or file-backed.

    Hrefs are relative to the resource endpoint (``Subscription/{s}/UsagePoint/{u}`` ...),
    as the writer and the parser use them.
    """

    @abstractmethod
    def usage_points(self, subscription_id: str) -> tuple[UsagePoint, ...]:
        """The subscription's UsagePoints with their MeterReadings (ReadingType attached,
        no blocks) and LocalTimeParameters; summaries are separate. Empty when unknown."""

    @abstractmethod
    def interval_blocks(
        self, subscription_id: str, usage_point_id: str, meter_reading_id: str, window: Window
    ) -> Sequence[IntervalBlock]:
        """The MeterReading's blocks in ``window``, oldest first (made on access)."""

    @abstractmethod
    def usage_summaries(
        self, subscription_id: str, usage_point_id: str, window: Window
    ) -> tuple[UsageSummary, ...]:
        """The usage point's billing summaries published in ``window``."""

    @abstractmethod
    def reading_types(self) -> tuple[ReadingType, ...]:
        """Every ReadingType (a top-level resource shared by all subscriptions)."""

    def local_time_parameters(self) -> tuple[LocalTimeParameters, ...]:
        return (PACIFIC_LTP,)

    def usage_point(self, subscription_id: str, usage_point_id: str) -> UsagePoint | None:
        for up in self.usage_points(subscription_id):
            if up.id == usage_point_id:
                return up
        return None

    def document(
        self,
        subscription_id: str,
        window: Window,
        *,
        usage_point_id: str | None = None,
        meter_reading_id: str | None = None,
        blocks: bool = True,
        summaries: bool = True,
    ) -> Document:
        """The subscription (or one usage point / MeterReading) as a Document for the
        writer. Blocks stay lazy: nothing is generated until the document is written."""
        points = []
        for up in self.usage_points(subscription_id):
            if usage_point_id is not None and up.id != usage_point_id:
                continue
            readings = []
            for mr in up.meter_readings:
                if meter_reading_id is not None and mr.id != meter_reading_id:
                    continue
                ibs = self.interval_blocks(subscription_id, up.id, mr.id, window) if blocks else ()
                # The writer only iterates interval_blocks; a lazy Sequence keeps memory flat.
                readings.append(replace(mr, interval_blocks=cast(tuple[IntervalBlock, ...], ibs)))
            sums = self.usage_summaries(subscription_id, up.id, window) if summaries else ()
            points.append(replace(up, meter_readings=tuple(readings), usage_summaries=sums))
        return Document(usage_points=tuple(points))

    def sample_document(self) -> Document:
        """PG&E's ``DownloadSampleData`` (a registration test): usage that belongs to no
        customer. Synthetic: yesterday of a fixed hourly meter; files: the first file."""
        return Document()

    def has_blocks(self, document: Document) -> bool:
        """Whether ``document`` holds at least one IntervalBlock (else PG&E answers 204)."""
        return any(len(mr.interval_blocks) for mr in document.meter_readings)


# --------------------------------------------------------------------------------------------
# synthetic data


@dataclass(frozen=True, slots=True)
class _Series:
    """One MeterReading of a synthetic usage point."""

    key: str  # "forward" | "reverse" | "gas"
    reading_type: ReadingType


def _b64(text: str) -> str:
    """PG&E-style opaque id (base64 of a descriptive key; URL-safe, ``=`` kept)."""
    return base64.urlsafe_b64encode(text.encode()).decode()


def _reading_type(
    *, uom: int, interval: int, flow: int, commodity: int, cost: bool, measuring: int
) -> ReadingType:
    rid = _b64(f"{uom}:{840 if cost else 'null'}:{interval}:{flow}")
    return ReadingType(
        href=f"ReadingType/{rid}",
        title="Type of Meter Reading Data",
        published=_EPOCH,
        updated=_EPOCH,
        accumulation_behaviour=4,
        commodity=commodity,
        currency=840 if cost else None,
        data_qualifier=12,
        default_quality=17,
        flow_direction=flow,
        interval_length=interval,
        kind=12,
        power_of_ten_multiplier=-3,
        time_attribute=0,
        uom=uom,
        measuring_period=measuring,
    )


def _series(spec: UsagePointSpec) -> tuple[_Series, ...]:
    cost = spec.with_cost
    if spec.profile == "gas_daily":
        rt = _reading_type(uom=169, interval=86400, flow=1, commodity=7, cost=cost, measuring=4)
        return (_Series("gas", rt),)
    interval = 900 if spec.profile == "electric_15min" else 3600
    measuring = 2 if interval == 900 else 7
    fwd = _reading_type(
        uom=72, interval=interval, flow=1, commodity=1, cost=cost, measuring=measuring
    )
    if spec.profile != "solar_net":
        return (_Series("forward", fwd),)
    rev = _reading_type(
        uom=72, interval=interval, flow=19, commodity=1, cost=False, measuring=measuring
    )
    return (_Series("forward", fwd), _Series("reverse", rev))


_TITLES = {
    "electric_15min": "Residential electric (15 min)",
    "electric_hourly": "Residential electric (hourly)",
    "solar_net": "Net-metered solar home",
    "gas_daily": "Residential gas (daily)",
}


def local_midnight(day: date) -> int:
    """Epoch seconds of local (Pacific) midnight starting ``day``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=PACIFIC).timestamp())


def local_date(epoch: float) -> date:
    return datetime.fromtimestamp(epoch, PACIFIC).date()


class _LazyColumns(ReadingColumns):
    """ReadingColumns computed on first use.

    The writer walks a MeterReading's blocks three times (twice for their hrefs, once to
    write them); deferring the readings to the first column access makes that one
    generation per block instead of three. Unset slots raise AttributeError, which routes
    the first access through ``__getattr__``.
    """

    __slots__ = ("_fill",)

    def __init__(self, fill: Callable[[ReadingColumns], None]) -> None:
        self._fill = fill  # the parent's columns stay unset until needed

    def __getattr__(self, name: str) -> Any:
        if name in ReadingColumns.__slots__:
            ReadingColumns.__init__(self)
            self._fill(self)
            return object.__getattribute__(self, name)
        raise AttributeError(name)


class _LazyBlocks(Sequence[IntervalBlock]):
    """The daily IntervalBlocks of one series over a range of local days, made on access."""

    def __init__(self, source: SyntheticData, sub: str, spec: UsagePointSpec, series: _Series,
                 mr_href: str, days: Sequence[int]) -> None:  # fmt: skip
        self._source, self._sub, self._spec, self._series = source, sub, spec, series
        self._mr_href = mr_href
        self._days = days  # date ordinals (a range: no list of 1800 dates either)

    def __len__(self) -> int:
        return len(self._days)

    @overload
    def __getitem__(self, i: int) -> IntervalBlock: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[IntervalBlock]: ...
    def __getitem__(self, i: int | slice) -> IntervalBlock | Sequence[IntervalBlock]:
        if isinstance(i, slice):
            return [self._block(d) for d in self._days[i]]
        return self._block(self._days[i])

    def __iter__(self) -> Iterator[IntervalBlock]:
        for d in self._days:
            yield self._block(d)

    def _block(self, ordinal: int) -> IntervalBlock:
        day = date.fromordinal(ordinal)
        start, end = local_midnight(day), local_midnight(day + timedelta(days=1))
        stamp = datetime.fromtimestamp(end, UTC)
        source, spec, series = self._source, self._spec, self._series

        def fill(cols: ReadingColumns) -> None:
            source.fill_day(spec, series, day, cols)

        return IntervalBlock(
            href=f"{self._mr_href}/IntervalBlock/{start}",
            published=stamp,
            updated=stamp,
            interval=DateTimeInterval(start=start, duration=end - start),
            readings=_LazyColumns(fill),
        )


class SyntheticData(DataSource):
    """Deterministic synthetic data for the customers of ``state``.

    ``history_days`` complete local days end yesterday (by ``clock``, Pacific time); values
    depend only on ``seed``, the usage point and the date, so a day reads the same whatever
    window it is fetched in and whenever. ``days_generated`` counts day computations (tests
    use it to prove laziness).
    """

    def __init__(
        self,
        state: SimulatorState,
        *,
        seed: int,
        history_days: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.seed = seed
        self.history_days = history_days
        self.clock = clock
        self.days_generated = 0
        self._month_totals: dict[tuple[str, str, int, int], tuple[int, int]] = {}

    # -- history range ------------------------------------------------------------------------

    def history(self) -> tuple[date, date]:
        """First and last local day with data (inclusive)."""
        last = local_date(self.clock()) - timedelta(days=1)
        return last - timedelta(days=self.history_days - 1), last

    def _days(self, window: Window) -> range:
        first, last = self.history()
        lo, hi = first.toordinal(), last.toordinal()
        if window.published_min is not None:
            # The block of the day containing published_min still overlaps it.
            lo = max(lo, local_date(window.published_min).toordinal())
        if window.published_max is not None:
            hi = min(hi, local_date(window.published_max).toordinal())
        days = range(lo, hi + 1)
        # Exact edges (a block ending at published_min, starting at published_max) and the
        # updated bounds are checked per day; only the few edge days are looked at.
        keep_lo, keep_hi = lo, hi
        while keep_lo <= keep_hi and not self._keeps(keep_lo, window):
            keep_lo += 1
        while keep_hi >= keep_lo and not self._keeps(keep_hi, window):
            keep_hi -= 1
        return days[keep_lo - lo : keep_hi - lo + 1] if keep_lo <= keep_hi else range(0)

    @staticmethod
    def _keeps(ordinal: int, window: Window) -> bool:
        day = date.fromordinal(ordinal)
        return window.keeps_interval(local_midnight(day), local_midnight(day + timedelta(1)))

    # -- resources ----------------------------------------------------------------------------

    def _specs(self, subscription_id: str) -> tuple[UsagePointSpec, ...]:
        if subscription_id == SAMPLE_SUBSCRIPTION:
            return (_SAMPLE_SPEC,)
        customer = self.state.by_subscription.get(subscription_id)
        return customer.usage_points if customer is not None else ()

    def _spec(self, subscription_id: str, usage_point_id: str) -> UsagePointSpec | None:
        for spec in self._specs(subscription_id):
            if spec.id == usage_point_id:
                return spec
        return None

    def usage_points(self, subscription_id: str) -> tuple[UsagePoint, ...]:
        out = []
        for spec in self._specs(subscription_id):
            href = f"Subscription/{subscription_id}/UsagePoint/{spec.id}"
            readings = tuple(
                MeterReading(
                    id=_b64(f"{spec.id}:{s.key}"),
                    href=f"{href}/MeterReading/{_b64(f'{spec.id}:{s.key}')}",
                    title=f"{s.key.capitalize()} readings",
                    published=_EPOCH,
                    updated=_EPOCH,
                    reading_type=s.reading_type,
                )
                for s in _series(spec)
            )
            out.append(
                UsagePoint(
                    id=spec.id,
                    href=href,
                    title=_TITLES[spec.profile],
                    published=_EPOCH,
                    updated=_EPOCH,
                    service_kind=1 if spec.profile == "gas_daily" else 0,
                    status=1,
                    meter_readings=readings,
                    local_time_parameters=PACIFIC_LTP,
                )
            )
        return tuple(out)

    def sample_document(self) -> Document:
        _, last = self.history()
        window = Window(
            published_min=local_midnight(last),
            published_max=local_midnight(last + timedelta(days=1)),
        )
        return self.document(SAMPLE_SUBSCRIPTION, window, summaries=False)

    def interval_blocks(
        self, subscription_id: str, usage_point_id: str, meter_reading_id: str, window: Window
    ) -> Sequence[IntervalBlock]:
        spec = self._spec(subscription_id, usage_point_id)
        if spec is None:
            return ()
        for series in _series(spec):
            if _b64(f"{spec.id}:{series.key}") == meter_reading_id:
                mr_href = (
                    f"Subscription/{subscription_id}/UsagePoint/{spec.id}"
                    f"/MeterReading/{meter_reading_id}"
                )
                return _LazyBlocks(self, subscription_id, spec, series, mr_href, self._days(window))
        return ()

    def reading_types(self) -> tuple[ReadingType, ...]:
        seen: dict[str, ReadingType] = {}
        for customer in self.state.customers.values():
            for spec in customer.usage_points:
                for s in _series(spec):
                    seen.setdefault(s.reading_type.href or "", s.reading_type)
        return tuple(seen.values())

    def usage_summaries(
        self, subscription_id: str, usage_point_id: str, window: Window
    ) -> tuple[UsageSummary, ...]:
        """One summary per complete local calendar month (a billing period), published at
        its end, for the last :data:`SUMMARY_MONTHS` months of history (a bill history, as
        utilities keep; totals need every reading of the month, so they are bounded)."""
        spec = self._spec(subscription_id, usage_point_id)
        if spec is None:
            return ()
        first, last = self.history()
        series = _series(spec)[0]
        out = []
        oldest = date(last.year - (SUMMARY_MONTHS // 12) - 1, 1, 1)
        first = max(first, oldest)
        while (last.year - first.year) * 12 + last.month - first.month > SUMMARY_MONTHS:
            first = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        year, month = first.year, first.month
        if first.day != 1:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        while True:
            start_day = date(year, month, 1)
            nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
            if nxt - timedelta(days=1) > last:
                break
            end = local_midnight(nxt)
            if window.keeps_published(end, end):
                out.append(self._summary(subscription_id, spec, series, start_day, nxt))
            year, month = nxt.year, nxt.month
        return tuple(out)

    def _summary(
        self, sub: str, spec: UsagePointSpec, series: _Series, first: date, nxt: date
    ) -> UsageSummary:
        start, end = local_midnight(first), local_midnight(nxt)
        key = (spec.id, series.key, first.year, first.month)
        totals = self._month_totals.get(key)
        if totals is None:
            value = cost = 0
            day = first
            while day < nxt:
                cols = ReadingColumns()
                self.fill_day(spec, series, day, cols)
                value += sum(cols.value)
                cost += sum(c for c in cols.cost if c != ABSENT)
                day += timedelta(days=1)
            totals = self._month_totals[key] = (value, cost)
        value, cost = totals
        rt = series.reading_type
        stamp = datetime.fromtimestamp(end, UTC)
        return UsageSummary(
            href=f"Subscription/{sub}/UsagePoint/{spec.id}/UsageSummary/{start}",
            title=f"Billing period {first:%Y-%m}",
            published=stamp,
            updated=stamp,
            billing_period=DateTimeInterval(start=start, duration=end - start),
            bill_last_period=cost if spec.with_cost else None,
            currency=840 if spec.with_cost else None,
            measurements={
                "overallConsumptionLastPeriod": SummaryMeasurement(
                    power_of_ten_multiplier=rt.power_of_ten_multiplier,
                    time_stamp=end,
                    uom=rt.uom,
                    value=value,
                )
            },
            status_time_stamp=end,
            commodity=rt.commodity,
        )

    # -- values -------------------------------------------------------------------------------

    def fill_day(
        self, spec: UsagePointSpec, series: _Series, day: date, cols: ReadingColumns
    ) -> None:
        """Append the readings of one local day of ``series`` to ``cols``."""
        self.days_generated += 1
        rng = random.Random(f"{self.seed}:{spec.seed}:{spec.id}:{day.toordinal()}")  # noqa: S311
        start, end = local_midnight(day), local_midnight(day + timedelta(days=1))
        doy = day.timetuple().tm_yday
        heat = max(0.0, math.cos(2 * math.pi * (doy - 15) / 365.25))
        cool = max(0.0, math.cos(2 * math.pi * (doy - 200) / 365.25))
        weather = rng.gauss(1.0, 0.2)  # a warm/cold, sunny/cloudy day
        if series.key == "gas":
            therms = 0.5 + 3.2 * heat * max(0.2, weather) + rng.uniform(0.0, 0.3)
            value = round(therms * 1000)
            cost = round(therms * _RATE_GAS) if spec.with_cost else ABSENT
            cols.append(start, end - start, value, cost)
            return
        step = series.reading_type.interval_length or 3600
        weekend = day.weekday() >= 5
        scale = 0.8 + (spec.seed % 7) / 10  # households differ in size
        cloud = min(1.0, max(0.15, rng.uniform(0.3, 1.25)))
        tou_peak, tou_off_peak = (1, 2) if day.month in _SUMMER_MONTHS else (4, 6)
        for t in range(start, end, step):
            local = datetime.fromtimestamp(t + step // 2, PACIFIC)
            h = local.hour + local.minute / 60
            load = _load_w(h, heat, cool * max(0.0, weather), weekend) * scale
            load *= max(0.3, rng.gauss(1.0, 0.12))
            if spec.profile == "solar_net":
                dst = 1.0 if local.dst() else 0.0
                pv = _solar_w(h - dst, doy) * cloud
                net = load - pv
                watts = max(net, 0.0) if series.key == "forward" else max(-net, 0.0)
            else:
                watts = load
            value = round(watts * step / 3.6)  # W over step s -> Wh, times 10^3 (mult. -3)
            peak = 16 <= h < 21
            cost = ABSENT
            if spec.with_cost and series.key == "forward":
                cost = round(value / 1e6 * (_RATE_PEAK if peak else _RATE_OFF_PEAK))
            quality = _QUALITY_ESTIMATED if rng.random() < 0.002 else _QUALITY_REVENUE
            cols.append(t, step, value, cost, quality, tou_peak if peak else tou_off_peak)


def _bump(h: float, centre: float, width: float) -> float:
    return math.exp(-(((h - centre) / width) ** 2))


def _load_w(h: float, heat: float, cool: float, weekend: bool) -> float:
    """Average household load (W) at local hour ``h``."""
    morning = 7.0 if not weekend else 9.0
    watts = 280.0
    watts += 650.0 * _bump(h, morning + 0.5, 1.3)
    watts += 1100.0 * _bump(h, 19.0, 2.2)
    watts += (500.0 if weekend else 150.0) * _bump(h, 13.0, 3.0)
    watts += 2200.0 * cool**2 * _bump(h, 16.5, 3.0)  # air conditioning
    watts += 700.0 * heat * (_bump(h, 7.0, 2.0) + _bump(h, 21.0, 2.5))  # heating fans
    return watts


def _solar_w(h_standard: float, doy: int) -> float:
    """Output (W) of a 5 kW rooftop array at local standard hour ``h_standard``."""
    half_day = 6.0 + 1.4 * math.cos(2 * math.pi * (doy - 172) / 365.25)
    x = (h_standard - 12.0) / half_day
    if abs(x) >= 1.0:
        return 0.0
    season = 0.7 + 0.3 * math.cos(2 * math.pi * (doy - 172) / 365.25)
    return 5000.0 * season * math.pow(math.cos(x * math.pi / 2), 1.5)


# --------------------------------------------------------------------------------------------
# real files


class FileData(DataSource):
    """Real ESPI files served as the customers' data: the n-th file (sorted by name) is the
    n-th customer's subscription; hrefs are rewritten under that subscription. Files are
    parsed once and held, so this suits sample files, not utility-sized archives."""

    def __init__(self, state: SimulatorState, data_dir: Path) -> None:
        from ..parse import parse  # the simulator imports the SDK, never the reverse

        self._points: dict[str, tuple[UsagePoint, ...]] = {}
        self._types: dict[str, ReadingType] = {}
        files = sorted(p for p in data_dir.iterdir() if p.suffix.lower() == ".xml")
        subscriptions = [c.subscription_id for c in state.customers.values()]
        for n, (path, sub) in enumerate(zip(files, subscriptions, strict=False)):
            self._points[sub] = self._adopt(parse(path), sub, n)

    def _adopt(self, doc: Document, sub: str, n: int) -> tuple[UsagePoint, ...]:
        out = []
        for i, up in enumerate(doc.usage_points, 1):
            up_id = _last_segment(up.href) or str(i)
            up_href = f"Subscription/{sub}/UsagePoint/{up_id}"
            readings = []
            for j, mr in enumerate(up.meter_readings, 1):
                mr_id = _last_segment(mr.href) or str(j)
                mr_href = f"{up_href}/MeterReading/{mr_id}"
                rt = mr.reading_type
                if rt is not None:
                    rt = replace(rt, href=f"ReadingType/{n}-{_last_segment(rt.href) or j}")
                    self._types[rt.href or ""] = rt
                blocks = []
                for k, block in enumerate(mr.interval_blocks):
                    bid = block.interval.start if block.interval.start is not None else k
                    blocks.append(replace(block, href=f"{mr_href}/IntervalBlock/{bid}"))
                readings.append(
                    replace(
                        mr, id=mr_id, href=mr_href, reading_type=rt, interval_blocks=tuple(blocks)
                    )
                )
            summaries = tuple(
                replace(s, href=f"{up_href}/UsageSummary/{k}")
                for k, s in enumerate(up.usage_summaries, 1)
            )
            out.append(
                replace(
                    up,
                    id=up_id,
                    href=up_href,
                    meter_readings=tuple(readings),
                    usage_summaries=summaries,
                    local_time_parameters=up.local_time_parameters or PACIFIC_LTP,
                )
            )
        return tuple(out)

    def usage_points(self, subscription_id: str) -> tuple[UsagePoint, ...]:
        return tuple(
            replace(
                up,
                usage_summaries=(),
                meter_readings=tuple(replace(mr, interval_blocks=()) for mr in up.meter_readings),
            )
            for up in self._points.get(subscription_id, ())
        )

    def sample_document(self) -> Document:
        first = next(iter(self._points), None)
        return Document() if first is None else self.document(first, Window())

    def _point(self, sub: str, up_id: str) -> UsagePoint | None:
        return next((up for up in self._points.get(sub, ()) if up.id == up_id), None)

    def interval_blocks(
        self, subscription_id: str, usage_point_id: str, meter_reading_id: str, window: Window
    ) -> Sequence[IntervalBlock]:
        up = self._point(subscription_id, usage_point_id)
        mr = next((m for m in up.meter_readings if m.id == meter_reading_id), None) if up else None
        if mr is None:
            return ()
        return tuple(
            b
            for b in mr.interval_blocks
            if b.interval.start is None
            or window.keeps_interval(b.interval.start, b.interval.end or b.interval.start)
        )

    def usage_summaries(
        self, subscription_id: str, usage_point_id: str, window: Window
    ) -> tuple[UsageSummary, ...]:
        up = self._point(subscription_id, usage_point_id)
        if up is None:
            return ()
        out = []
        for s in up.usage_summaries:
            published = _epoch(s.published) if s.published else s.status_time_stamp
            updated = _epoch(s.updated) if s.updated else published
            if published is None or window.keeps_published(published, updated or published):
                out.append(s)
        return tuple(out)

    def reading_types(self) -> tuple[ReadingType, ...]:
        return tuple(self._types.values())

    def local_time_parameters(self) -> tuple[LocalTimeParameters, ...]:
        seen = {PACIFIC_LTP.href: PACIFIC_LTP}
        for points in self._points.values():
            for up in points:
                ltp = up.local_time_parameters
                if ltp is not None:
                    seen.setdefault(ltp.href, ltp)
        return tuple(seen.values())


def _last_segment(href: str | None) -> str | None:
    if not href:
        return None
    segment = href.rstrip("/").rsplit("/", 1)[-1]
    return segment or None


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def create_data_source(
    config: SimulatorConfig, state: SimulatorState, *, clock: Callable[[], float] = time.time
) -> DataSource:
    """The data source ``config`` asks for: ``data_dir`` files, else synthetic data."""
    if config.data_dir is not None:
        return FileData(state, config.data_dir)
    return SyntheticData(state, seed=config.seed, history_days=config.history_days, clock=clock)
