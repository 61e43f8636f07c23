"""The ranges the parser accepts for numeric ESPI fields (SECURITY R37, issue 9).

Every value here ends up in arithmetic that has no bound of its own: ``10**p`` for a
scale, ``datetime``/pandas for a time, ``timedelta`` for a duration. A hostile file could
otherwise freeze a process (``10**99999999999`` holds the GIL) or raise an untyped
``OverflowError`` far from the parser. The parser checks each field against these ranges
and raises :class:`~greenbutton.ParseError` with the field and line.

* ``powerOfTenMultiplier`` of a ReadingType: -24..24. ESPI's ``UnitMultiplierKind`` names
  -12..12 (pico..tera) but is a union with ``Int16``, and real files use -14 (ESPI_NOTES
  5); SI prefixes end at yocto/yotta (10^±24), the range ``inspect`` already treated as
  plausible. SummaryMeasurements may hold any ``Int16``: GBA test files write 4096 in
  unused ones, which are kept and reported unusable rather than refused.
* reading times (IntervalReading and IntervalBlock ``start``): 1900-01-01 up to (not
  including) 2200-01-01 UTC. ESPI TimeType is int64 seconds, but rows turn starts into
  ``datetime`` and frames into pandas ``datetime64[ns, UTC]`` (``pd.to_datetime(unit="s")``
  in frames.py), whose range is 1677-09-21..2262-04-11; this range sits inside both with
  room for a time zone shift, and no interval meter predates 1900. Summary and
  authorization times stay int64: PG&E writes them in milliseconds, and they are shown
  only through guarded conversions.
* reading and block durations and ``intervalLength``: 0..4294967295 s, ESPI's ``UInt32``;
  so the end of any reading stays before year 2337, inside ``datetime``. Other durations
  must not be negative.
"""

from __future__ import annotations

__all__ = [
    "DURATION_MAX",
    "INT16_MAX",
    "INT16_MIN",
    "MULTIPLIER_MAX",
    "MULTIPLIER_MIN",
    "POW10_MAX",
    "TIME_MAX",
    "TIME_MIN",
    "pow10",
]

MULTIPLIER_MIN, MULTIPLIER_MAX = -24, 24
INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1
#: 1900-01-01T00:00:00Z and 2200-01-01T00:00:00Z (exclusive), epoch seconds.
TIME_MIN, TIME_MAX = -2208988800, 7258118400
DURATION_MAX = 2**32 - 1

#: Largest exponent :func:`pow10` gives: a ReadingType multiplier plus the display shift
#: (kWh for Wh) plus the cost scale stays far below it.
POW10_MAX = 64
_POW10: tuple[int, ...] = tuple(int(10**e) for e in range(POW10_MAX + 1))


def pow10(exponent: int) -> int:
    """``10**exponent`` for ``0 <= exponent <= POW10_MAX``, from a table: scaling code never
    computes a power whose size the input chooses. ``ValueError`` outside the table."""
    if not 0 <= exponent <= POW10_MAX:
        raise ValueError(f"power of ten {exponent} is outside 0..{POW10_MAX}")
    return _POW10[exponent]
