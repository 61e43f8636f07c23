"""IntervalBlock -> ReadingColumns: the hot loop of the parser.

Runs once per IntervalReading, so it touches each element once, compares interned tag
strings instead of building names, and lets ``int()`` strip the whitespace some writers
leave in numbers. Anything unexpected leaves the fast path for a slow one that finds the
offending element and reports its line.

Three paths, each taking what the one before leaves: the compiled accelerator
``_cblocks.read_block`` (when it was built at install time and is not switched off, see
``_accel``), the same walk in Python (``_fast``), and the careful loop that warns and raises.
"""

from __future__ import annotations

import sys
from decimal import Decimal, InvalidOperation

from lxml import etree

from .._errors import ParseError, XMLLimitError
from ..models import ABSENT, ABSENT32, DateTimeInterval, ReadingColumns
from ..models._bounds import DURATION_MAX, TIME_MAX, TIME_MIN
from ._accel import block_reader
from ._xml import ESPI, Limits, check_subtree

__all__ = ["FractionalStarts", "fold_fractional", "read_block"]

_E = f"{{{ESPI}}}"
_READING = _E + "IntervalReading"
_INTERVAL = _E + "interval"
_TIME_PERIOD = _E + "timePeriod"
_START = _E + "start"
_DURATION = _E + "duration"
_VALUE = _E + "value"
_COST = _E + "cost"
_QUALITY_WRAP = _E + "ReadingQuality"
_QUALITY = _E + "quality"
_TOU = _E + "tou"
_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1


class _Bad(Exception):
    def __init__(self, el: etree._Element, what: str, problem: str | None = None):
        self.el, self.what, self.problem = el, what, problem


_TIMES = "outside the supported times, 1900-01-01 to 2199-12-31 UTC (ESPI_NOTES 3.4)"
_DURATIONS = f"outside the durations ESPI allows, 0 to {DURATION_MAX} s (UInt32)"


def _int(el: etree._Element, what: str) -> int:
    text = el.text
    try:
        v = int(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise _Bad(el, what) from None
    if not -_INT64_MAX - 1 < v <= _INT64_MAX:
        raise _Bad(el, what)
    return v


def _time(el: etree._Element, what: str, fractions: list[tuple[int | None, str]]) -> int:
    """Epoch seconds within ``models._bounds`` (rows and frames turn them into datetimes).

    Fractional seconds (seen in a gas export) are truncated and noted in ``fractions`` as
    ``(line, text)``; the block reports them in one warning, not one per reading.
    """
    try:
        v = _int(el, what)
    except _Bad:
        text = (el.text or "").strip()
        if len(text) > 64:  # longer than any time; Decimal would take its time over it
            raise _Bad(el, what) from None
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise _Bad(el, what) from None
        if not d.is_finite() or not TIME_MIN <= d < TIME_MAX:
            raise _Bad(el, what, _TIMES if d.is_finite() else None) from None
        fractions.append((el.sourceline, text))
        return int(d)
    if not TIME_MIN <= v < TIME_MAX:
        raise _Bad(el, what, _TIMES)
    return v


def _duration(el: etree._Element, what: str) -> int:
    v = _int(el, what)
    if v > DURATION_MAX:
        raise _Bad(el, what, _DURATIONS)
    return v  # negative ones are reported with the reading's line below


def _small(el: etree._Element, what: str) -> int:
    v = _int(el, what)
    if not -_INT32_MAX <= v <= _INT32_MAX:
        raise _Bad(el, what)
    return v


def read_block(
    block: etree._Element,
    depth: int,
    limits: Limits,
    name: str | None,
    warnings: list[str],
) -> tuple[DateTimeInterval, ReadingColumns]:
    """Read one ``espi:IntervalBlock`` element into its interval and reading columns.

    The common shape (every reading with a timePeriod, integers everywhere) takes a tight
    loop with no per-field checks, in C when the accelerator is built; anything else,
    including every error, is redone by the careful loop, which knows the line of each
    problem. Missing durations are stored as ``ABSENT``; the caller fills them from the
    ReadingType.
    """
    c_read_block = block_reader()
    if c_read_block is not None:
        cols = ReadingColumns()
        got = c_read_block(block, min(limits.max_readings_per_block, sys.maxsize), cols)
        if got is not None:
            return DateTimeInterval(start=got[0], duration=got[1]), cols
    try:
        result = _fast(block, limits)
    except (ValueError, TypeError, OverflowError, _Slow):
        result = None
    if result is not None:
        return result
    return _careful(block, depth, limits, name, warnings)


class _Slow(Exception):
    """The block needs the careful loop."""


def _fast(block: etree._Element, limits: Limits) -> tuple[DateTimeInterval, ReadingColumns] | None:
    cols = ReadingColumns()
    starts, durations, values, costs = cols.start, cols.duration, cols.value, cols.cost
    qualities, tous = cols.quality, cols.tou
    interval = DateTimeInterval()
    for child in block:
        tag = child.tag
        if tag == _READING:
            start = duration = None
            value = cost = ABSENT
            quality = tou = ABSENT32
            for f in child:
                t = f.tag
                if len(f):
                    if t == _TIME_PERIOD:
                        for g in f:
                            gt = g.tag
                            if len(g):
                                raise _Slow
                            if gt == _START:
                                start = int(g.text)  # type: ignore[arg-type]
                            elif gt == _DURATION:
                                duration = int(g.text)  # type: ignore[arg-type]
                            else:
                                raise _Slow
                    elif (
                        t == _QUALITY_WRAP
                        and len(f) == 1
                        and f[0].tag == _QUALITY
                        and not len(f[0])
                    ):
                        if quality != ABSENT32:
                            raise _Slow
                        quality = int(f[0].text)  # type: ignore[arg-type]
                    else:
                        raise _Slow
                elif t == _VALUE:
                    value = int(f.text)  # type: ignore[arg-type]
                elif t == _COST:
                    cost = int(f.text)  # type: ignore[arg-type]
                elif t == _TOU:
                    tou = int(f.text)  # type: ignore[arg-type]
                else:
                    raise _Slow
            if (
                start is None
                or duration is None
                or value == ABSENT
                or not TIME_MIN <= start < TIME_MAX
                or not 0 <= duration <= DURATION_MAX
            ):
                raise _Slow
            starts.append(start)
            durations.append(duration)
            values.append(value)
            costs.append(cost)
            qualities.append(quality)
            tous.append(tou)
        elif tag == _INTERVAL:
            istart = iduration = None
            for g in child:
                if len(g):
                    raise _Slow
                if g.tag == _START:
                    istart = int(g.text)  # type: ignore[arg-type]
                elif g.tag == _DURATION:
                    iduration = int(g.text)  # type: ignore[arg-type]
                else:
                    raise _Slow
            if iduration is not None and not 0 <= iduration <= DURATION_MAX:
                raise _Slow
            if istart is not None and not TIME_MIN <= istart < TIME_MAX:
                raise _Slow
            interval = DateTimeInterval(start=istart, duration=iduration)
        else:
            raise _Slow
    if len(starts) > limits.max_readings_per_block:
        raise _Slow
    return interval, cols


def _careful(
    block: etree._Element,
    depth: int,
    limits: Limits,
    name: str | None,
    warnings: list[str],
) -> tuple[DateTimeInterval, ReadingColumns]:
    cols = ReadingColumns()
    interval = DateTimeInterval()
    starts, durations, values, costs = cols.start, cols.duration, cols.value, cols.cost
    qualities, tous = cols.quality, cols.tou
    prev_end: int | None = None
    count = 0
    fractions: list[tuple[int | None, str]] = []
    try:
        for child in block:
            tag = child.tag
            if tag == _READING:
                count += 1
                if count > limits.max_readings_per_block:
                    raise XMLLimitError(
                        f"more than {limits.max_readings_per_block} readings in one IntervalBlock",
                        line=child.sourceline,
                        resource=name,
                    )
                start = duration = None
                value = cost = ABSENT
                quality = tou = ABSENT32
                extra: list[int] | None = None
                for f in child:
                    t = f.tag
                    if t == _TIME_PERIOD:
                        for g in f:
                            gt = g.tag
                            if gt == _START:
                                start = _time(g, "start", fractions)
                            elif gt == _DURATION:
                                duration = _duration(g, "duration")
                            elif len(g):
                                check_subtree(g, depth + 3, limits, name)
                    elif t == _VALUE:
                        value = _int(f, "value")
                    elif t == _COST:
                        cost = _int(f, "cost")
                    elif t == _QUALITY_WRAP:
                        for g in f:
                            if g.tag == _QUALITY:
                                q = _small(g, "quality")
                                if quality == ABSENT32:
                                    quality = q
                                else:
                                    extra = (extra or [quality]) + [q]
                    elif t == _TOU:
                        tou = _small(f, "tou")
                    if len(f) and t not in (_TIME_PERIOD, _QUALITY_WRAP):
                        check_subtree(f, depth + 2, limits, name)
                if duration is not None and duration < 0:
                    raise ParseError(
                        f"IntervalReading duration {duration} is negative",
                        line=child.sourceline,
                        resource=name,
                    )
                if start is None:
                    # No timePeriod: continue from the previous reading (a heuristic, flagged).
                    start = prev_end if prev_end is not None else interval.start
                    if start is None:
                        raise ParseError(
                            "IntervalReading has no timePeriod/start and its block no interval",
                            line=child.sourceline,
                            resource=name,
                        )
                    if not TIME_MIN <= start < TIME_MAX:  # the previous start + duration
                        raise ParseError(
                            f"IntervalReading has no timePeriod/start, and the previous "
                            f"reading ends at {start}, {_TIMES}",
                            line=child.sourceline,
                            resource=name,
                        )
                    warnings.append(
                        f"line {child.sourceline}: IntervalReading without a start; "
                        "placed after the previous reading"
                    )
                if extra is not None:
                    cols.extra_quality[len(starts)] = tuple(extra)
                starts.append(start)
                durations.append(ABSENT if duration is None else duration)
                values.append(value)
                costs.append(cost)
                qualities.append(quality)
                tous.append(tou)
                prev_end = None if duration is None else start + duration
            elif tag == _INTERVAL:
                istart = iduration = None
                for g in child:
                    if g.tag == _START:
                        istart = _time(g, "start", fractions)
                    elif g.tag == _DURATION:
                        iduration = _duration(g, "duration")
                if iduration is not None and iduration < 0:
                    raise ParseError(
                        f"IntervalBlock duration {iduration} is negative",
                        line=child.sourceline,
                        resource=name,
                    )
                interval = DateTimeInterval(start=istart, duration=iduration)
            else:
                check_subtree(child, depth + 1, limits, name)
    except _Bad as bad:
        text = (bad.el.text or "").strip()
        if len(text) > limits.max_text:
            raise XMLLimitError(
                f"text of <{bad.what}> is {len(text)} characters, above the limit of "
                f"{limits.max_text}",
                line=bad.el.sourceline,
                resource=name,
            ) from None
        shown = text if len(text) <= 40 else text[:37] + "..."
        problem = "is " + bad.problem if bad.problem else "is not a 64-bit integer"
        if text == str(ABSENT):
            problem = "is the one 64-bit value reserved to mark a missing reading"
        raise ParseError(
            f"IntervalReading {bad.what} {shown!r} {problem}",
            line=bad.el.sourceline,
            resource=name,
        ) from None
    if fractions:
        warnings.append(FractionalStarts(len(fractions), *fractions[0]))
    return interval, cols


class FractionalStarts(str):
    """The warning about one block's fractional starts, with what :func:`fold_fractional`
    needs to merge those of all blocks into one (a gas export had one reading a block)."""

    readings: int
    line: int | None
    text: str

    def __new__(cls, readings: int, line: int | None, text: str) -> FractionalStarts:
        self = super().__new__(cls, _fractional_message(readings, line, text))
        self.readings, self.line, self.text = readings, line, text
        return self


def _fractional_message(count: int, line: int | None, text: str) -> str:
    return (
        f"{count} fractional start time(s) truncated to whole seconds, the first "
        f"{text[:40]!r} at line {line}"
    )


def fold_fractional(warnings: list[str]) -> None:
    """Replace every block's :class:`FractionalStarts` warning by one for the document."""
    notes = [w for w in warnings if isinstance(w, FractionalStarts)]
    if len(notes) < 2:
        return
    first = notes[0]
    merged = _fractional_message(sum(n.readings for n in notes), first.line, first.text)
    at = next(i for i, w in enumerate(warnings) if w is first)
    warnings[:] = [w for w in warnings if not isinstance(w, FractionalStarts)]
    warnings.insert(at, merged)
