"""The readings table (DESIGN 3.3): the one row shape shared by export, pandas and storage.

A row is a :class:`Reading` named tuple; :class:`Series` carries what every row of one
MeterReading shares (keys, units, scale), so per-row work is only the arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from .._errors import ConfigurationError
from ._bounds import POW10_MAX, pow10
from ._enums import (
    COMMODITY,
    FLOW_DIRECTION,
    MEASUREMENT_KIND,
    code_name,
    currency_code,
    uom_symbol,
)
from ._readings import ABSENT, ABSENT32, ReadingColumns
from ._resources import ReadingType

__all__ = ["COLUMNS", "DEFAULT_COST_SCALE", "Reading", "Series", "format_start", "scale_factors"]

#: Column names of the readings table, in order (DESIGN 3.3).
COLUMNS = (
    "usage_point", "meter_reading", "start", "duration", "raw_value", "value", "uom",
    "flow_direction", "kind", "commodity", "interval_length", "cost", "currency", "quality",
    "tou",
)  # fmt: skip

#: ESPI money is in hundred-thousandths of the currency unit; utility profiles may differ.
DEFAULT_COST_SCALE = -5

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Reading(NamedTuple):
    """One row of the readings table."""

    usage_point: str
    meter_reading: str
    start: datetime
    duration: int
    raw_value: int | None
    value: float | None
    uom: str | None
    flow_direction: str | int | None
    kind: str | int | None
    commodity: str | int | None
    interval_length: int | None
    cost: float | None
    currency: str | None
    quality: str | None
    tou: int | None


def scale_factors(exponent: int) -> tuple[int, int]:
    """``(multiplier, divisor)`` for ``x × 10^exponent``, from a table of powers.

    The parser bounds every powerOfTenMultiplier (``models._bounds``), so a parsed document
    never gets here with a wild exponent; a hand-built ReadingType or cost scale beyond
    ±``POW10_MAX`` is a :class:`ConfigurationError`, never a ``10**p`` the caller chose
    (issue 9: ``10**99999999999`` froze the web app).
    """
    if not -POW10_MAX <= exponent <= POW10_MAX:
        raise ConfigurationError(
            f"power of ten {exponent} is outside -{POW10_MAX}..{POW10_MAX}; "
            "powerOfTenMultiplier and cost scales must be plausible SI scales"
        )
    return (pow10(exponent), 1) if exponent >= 0 else (1, pow10(-exponent))


def format_start(start: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, the table's text form of ``start``."""
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Series:
    """What every row of one MeterReading shares."""

    usage_point: str
    meter_reading: str
    uom: str | None = None
    multiplier: int = 0
    flow_direction: str | int | None = None
    kind: str | int | None = None
    commodity: str | int | None = None
    interval_length: int | None = None
    currency: str | None = None
    default_quality: str | None = None
    cost_scale: int = DEFAULT_COST_SCALE

    @classmethod
    def of(
        cls,
        usage_point: str,
        meter_reading: str,
        reading_type: ReadingType | None,
        cost_scale: int = DEFAULT_COST_SCALE,
    ) -> Series:
        rt = reading_type or ReadingType()
        return cls(
            usage_point=usage_point,
            meter_reading=meter_reading,
            uom=uom_symbol(rt.uom),
            multiplier=rt.power_of_ten_multiplier or 0,
            flow_direction=code_name(FLOW_DIRECTION, rt.flow_direction),
            kind=code_name(MEASUREMENT_KIND, rt.kind),
            commodity=code_name(COMMODITY, rt.commodity),
            interval_length=rt.interval_length,
            currency=currency_code(rt.currency),
            default_quality=None if rt.default_quality is None else str(rt.default_quality),
            cost_scale=cost_scale,
        )

    def rows(self, cols: ReadingColumns, indices: Iterable[int] | None = None) -> Iterator[Reading]:
        """Rows for ``cols`` (all readings, or those at ``indices``, in that order)."""
        # Dividing by an exact power of ten rounds correctly (2668300 / 1000 == 2668.3);
        # multiplying by 0.001 would not.
        mul, div = scale_factors(self.multiplier)
        cmul, cdiv = scale_factors(self.cost_scale)
        starts, durations, values, costs = cols.start, cols.duration, cols.value, cols.cost
        qualities, tous, extra = cols.quality, cols.tou, cols.extra_quality
        up, mr, default_q = self.usage_point, self.meter_reading, self.default_quality
        shared = (self.uom, self.flow_direction, self.kind, self.commodity, self.interval_length)
        currency = self.currency
        for i in range(len(cols)) if indices is None else indices:
            raw = values[i]
            cost = costs[i]
            q = qualities[i]
            if i in extra:
                quality: str | None = ";".join(map(str, extra[i]))
            else:
                quality = default_q if q == ABSENT32 else str(q)
            tou = tous[i]
            yield Reading(
                up,
                mr,
                _EPOCH + timedelta(seconds=starts[i]),
                durations[i],
                None if raw == ABSENT else raw,
                None if raw == ABSENT else raw * mul / div,
                *shared,
                None if cost == ABSENT else cost * cmul / cdiv,
                None if cost == ABSENT else currency,
                quality,
                None if tou == ABSENT32 else tou,
            )
