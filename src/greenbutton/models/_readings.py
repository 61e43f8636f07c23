"""Interval readings held as columns of machine integers (STYLE 6, DESIGN 3.3).

A 3-year 15-minute history is ~100k readings per meter; as Python objects that is tens of
megabytes and seconds of allocation. ``ReadingColumns`` keeps one ``array`` per field
(40 bytes a reading), so memory grows only with the readings kept and pandas/Arrow can be
built from the buffers without touching a Python object per reading.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["ABSENT", "ABSENT32", "IntervalReading", "ReadingColumns"]

#: Marks a missing optional int64 field (cost, value) in a column.
ABSENT = -(2**63)
#: Marks a missing optional int32 field (quality, tou) in a column.
ABSENT32 = -(2**31)


@dataclass(frozen=True, slots=True, kw_only=True)
class IntervalReading:
    """One ESPI IntervalReading, made only when a caller iterates readings."""

    start: int
    duration: int
    value: int | None
    cost: int | None = None
    quality: tuple[int, ...] = ()
    tou: int | None = None


class ReadingColumns:
    """Columns of IntervalReadings: ``start`` (epoch s), ``duration`` (s), ``value`` (raw int),
    ``cost`` (raw int, 10^-5 currency units), ``quality`` and ``tou`` codes.

    Missing optional values are stored as :data:`ABSENT` / :data:`ABSENT32`. A reading with
    more than one ReadingQuality keeps the first in ``quality`` and all of them in
    ``extra_quality`` (rare, so not worth a column).
    """

    __slots__ = ("cost", "duration", "extra_quality", "quality", "start", "tou", "value")

    def __init__(self) -> None:
        self.start = array("q")
        self.duration = array("q")
        self.value = array("q")
        self.cost = array("q")
        self.quality = array("i")
        self.tou = array("i")
        self.extra_quality: dict[int, tuple[int, ...]] = {}

    def __len__(self) -> int:
        return len(self.start)

    def __repr__(self) -> str:
        return f"<ReadingColumns n={len(self)}>"

    def append(
        self,
        start: int,
        duration: int,
        value: int = ABSENT,
        cost: int = ABSENT,
        quality: int = ABSENT32,
        tou: int = ABSENT32,
    ) -> None:
        """Append one reading (absent optionals as the sentinels)."""
        self.start.append(start)
        self.duration.append(duration)
        self.value.append(value)
        self.cost.append(cost)
        self.quality.append(quality)
        self.tou.append(tou)

    def extend(self, other: ReadingColumns) -> None:
        """Append every reading of ``other``."""
        offset = len(self)
        self.start.extend(other.start)
        self.duration.extend(other.duration)
        self.value.extend(other.value)
        self.cost.extend(other.cost)
        self.quality.extend(other.quality)
        self.tou.extend(other.tou)
        for i, codes in other.extra_quality.items():
            self.extra_quality[offset + i] = codes

    def take(self, indices: list[int]) -> ReadingColumns:
        """A new ReadingColumns holding the readings at ``indices``, in that order."""
        out = ReadingColumns()
        for name in ("start", "duration", "value", "cost", "quality", "tou"):
            src = getattr(self, name)
            getattr(out, name).extend(src[i] for i in indices)
        if self.extra_quality:
            for new, old in enumerate(indices):
                if old in self.extra_quality:
                    out.extra_quality[new] = self.extra_quality[old]
        return out

    def deduplicated(self) -> ReadingColumns:
        """Readings with repeated starts removed; the last occurrence wins (DESIGN 3.3)."""
        starts = self.start
        n = len(starts)
        if n < 2:
            return self
        # Fast path: strictly increasing starts have no duplicates.
        if all(starts[i] < starts[i + 1] for i in range(n - 1)):
            return self
        last: dict[int, int] = {}
        for i, s in enumerate(starts):
            last[s] = i
        keep = [i for i, s in enumerate(starts) if last[s] == i]
        return self.take(keep)

    def quality_codes(self, i: int) -> tuple[int, ...]:
        """All ReadingQuality codes of reading ``i`` (empty when none)."""
        if i in self.extra_quality:
            return self.extra_quality[i]
        q = self.quality[i]
        return () if q == ABSENT32 else (q,)

    def __iter__(self) -> Iterator[IntervalReading]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, i: int) -> IntervalReading:
        value, cost, tou = self.value[i], self.cost[i], self.tou[i]
        return IntervalReading(
            start=self.start[i],
            duration=self.duration[i],
            value=None if value == ABSENT else value,
            cost=None if cost == ABSENT else cost,
            quality=self.quality_codes(i),
            tou=None if tou == ABSENT32 else tou,
        )
