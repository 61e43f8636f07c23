"""Seeded mutations of real Green Button files: one place for ``test_fuzz`` and ``bench/fuzz.py``.

Case ``i`` of seed ``s`` is always the same bytes (``random.Random(f"{s}:{i}")``), so a case
a long campaign reports can be replayed alone: ``make_case(corpus, seed, i)``. The mutators
are what issue 9 found breaking the parser: byte flips, truncations, duplicated elements, and
hostile numbers, times, durations, multipliers and DST rules substituted into the elements
that hold them (SECURITY R36/R37, catalogue b1.15/b1.18/b1.19).

Each entry point (``parse``, ``iter_readings``, ``read_frame``) must give a result or raise a
``GreenButtonError`` in bounded time; :func:`run_case` says which, and for anything else
names the exception and where it came from.
"""

from __future__ import annotations

import random
import re
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ENTRY_POINTS",
    "MUTATORS",
    "Case",
    "Outcome",
    "load_corpus",
    "make_case",
    "run_case",
]

# Hostile values, by the kind of element they go into. Edges of every bound the parser
# keeps (models._bounds), int64/int32 edges, the ABSENT sentinel, floats, non-digits.
_INT_EDGES = [
    "0", "-1", "1", "2147483647", "2147483648", "-2147483648", "-2147483649", "4294967295",
    "4294967296", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
    "-9223372036854775809", "18446744073709551616", "99999999999", "100000000000000",
    "1e14", "1e309", "-1e309", "NaN", "inf", "abc", "", " 12 ", "+5", "-0", "1_000", "0x10",
    "\u0661\u0662", "3.5", "9" * 200, "9" * 5000, "-" + "9" * 30,
]  # fmt: skip
_TIMES = [
    "-2208988800", "-2208988801", "7258118399", "7258118400", "253402300799", "253402300800",
    "-62135596800", "-62135596801", "100000000000000", "-100000000000000",
    "1721154384.66136", "1721154384.5", "-0.5", "1e10", "17211543840000000000.5",
    "1.0E+2", "Infinity",
]  # fmt: skip
_DURATIONS = ["-1", "-900", "0", "4294967295", "4294967296", "9223372036854775807", "1.5"]
_MULTIPLIERS = [
    "99999999999", "400", "-400", "10000000", "-10000000", "24", "-24", "25", "-25", "4096",
    "32767", "-32768", "32768", "308", "-324", "9223372036854775807",
]  # fmt: skip
_DST_RULES = [
    "FFFFFFFF", "00000000", "360E2000", "B40E2000", "99999999999", "FFFFFFFFFFFF",
    "7FFFFFFFFFFFFFFF", "1" + "0" * 40, "zz", "", "-1", "F" * 1000, "D000000F", "1E8A8C40",
]  # fmt: skip
_OFFSETS = ["0", "3600", "-3600", "86400", "-86400", "99999999999", "9223372036854775807"]

_NUMBER_TAGS = (
    "value", "cost", "quality", "tou", "uom", "kind", "commodity", "currency", "flowDirection",
    "accumulationBehaviour", "dataQualifier", "defaultQuality", "phase", "consumptionTier",
    "timeAttribute", "cpp", "measuringPeriod", "billLastPeriod", "billToDate",
    "costAdditionalLastPeriod", "amount", "rounding", "unitCost", "itemKind",
    "qualityOfReading", "status", "currentStatus",
)  # fmt: skip
_TIME_TAGS = ("start", "timeStamp", "statusTimeStamp", "dateTime", "published", "updated")
_DURATION_TAGS = ("duration", "intervalLength")
_DUPLICABLE = (
    "IntervalReading", "IntervalBlock", "entry", "ReadingType", "LocalTimeParameters",
    "timePeriod", "value", "start", "ReadingQuality", "interval", "content", "link",
)  # fmt: skip


def _leaf(tags: Sequence[str]) -> re.Pattern[bytes]:
    names = "|".join(tags)
    return re.compile(rb"(<(?:[\w.-]+:)?(?:" + names.encode() + rb")>)([^<]*)(</)")


_NUMBER_RE = _leaf(_NUMBER_TAGS)
_TIME_RE = _leaf(_TIME_TAGS)
_START_RE = _leaf(("start",))
_DURATION_RE = _leaf(_DURATION_TAGS)
_MULTIPLIER_RE = _leaf(("powerOfTenMultiplier",))
_DST_RULE_RE = _leaf(("dstStartRule", "dstEndRule"))
_OFFSET_RE = _leaf(("dstOffset", "tzOffset"))
_OPEN_RE = re.compile(rb"<((?:[\w.-]+:)?(?:" + "|".join(_DUPLICABLE).encode() + rb"))[\s/>]")


@dataclass(frozen=True, slots=True)
class Case:
    """One fuzz case: the bytes, and how they were made (to report and replay)."""

    index: int
    source: str  # fixture file name
    steps: tuple[str, ...]  # mutators applied, in order
    data: bytes


def _substitute(label: str, pattern: re.Pattern[bytes], values: Sequence[str]) -> Mutator:
    def mutate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
        hits = list(pattern.finditer(data))
        if not hits:
            return _flip(rng, data)
        value = rng.choice(values)
        # One element, or all of them (a file that stamps every reading the same way).
        chosen = hits if rng.random() < 0.25 else [rng.choice(hits)]
        out, last = [], 0
        for m in chosen:
            out += [data[last : m.end(1)], value.encode()]
            last = m.start(3)
        out.append(data[last:])
        where = "all" if len(chosen) > 1 else f"@{chosen[0].start()}"
        return b"".join(out), f"{label}={value[:24]!r} {where}"

    return mutate


def _flip(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    buf = bytearray(data)
    n = rng.choice((1, 1, 2, 4, 16))
    for _ in range(n):
        if buf:
            buf[rng.randrange(len(buf))] ^= rng.randrange(1, 256)
    return bytes(buf), f"flip x{n}"


def _truncate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    cut = rng.randrange(len(data) + 1)
    return data[:cut], f"truncate @{cut}"


def _duplicate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    opens = list(_OPEN_RE.finditer(data))
    if not opens:
        return _truncate(rng, data)
    m = rng.choice(opens)
    name = m.group(1)
    close = data.find(b"</" + name + b">", m.end())
    end = close + len(name) + 3 if close >= 0 else data.find(b">", m.start()) + 1
    span = data[m.start() : end]
    times = rng.choice((1, 1, 2, 10, 200))
    return data[:end] + span * times + data[end:], f"duplicate <{name.decode()}> x{times}"


def _collapse_starts(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Every start the same (fractional) value: the gas export of issue 9."""
    value = rng.choice(("1721154384.66136", "1721154384", "0"))
    return _START_RE.sub(lambda m: m.group(1) + value.encode() + m.group(3), data), (
        f"every start = {value}"
    )


Mutator = Callable[[random.Random, bytes], tuple[bytes, str]]

#: name -> mutator; each returns the new bytes and a short description of what it did.
MUTATORS: dict[str, Mutator] = {
    "flip": _flip,
    "truncate": _truncate,
    "duplicate": _duplicate,
    "number": _substitute("number", _NUMBER_RE, _INT_EDGES),
    "time": _substitute("time", _TIME_RE, _TIMES + _INT_EDGES[:20]),
    "duration": _substitute("duration", _DURATION_RE, _DURATIONS + _INT_EDGES[:16]),
    "multiplier": _substitute("multiplier", _MULTIPLIER_RE, _MULTIPLIERS + _INT_EDGES[:16]),
    "dst": _substitute("dst", _DST_RULE_RE, _DST_RULES),
    "offset": _substitute("offset", _OFFSET_RE, _OFFSETS),
    "collapse": _collapse_starts,
}


def load_corpus(folder: Path, max_bytes: int | None = None) -> list[tuple[str, bytes]]:
    """The fixture files (name, bytes), sorted by name; ``max_bytes`` leaves out big ones."""
    files = sorted(p for p in folder.glob("*.xml") if p.is_file())
    out = [(p.name, p.read_bytes()) for p in files]
    return [(n, d) for n, d in out if max_bytes is None or len(d) <= max_bytes]


def make_case(corpus: Sequence[tuple[str, bytes]], seed: int, index: int) -> Case:
    """Case ``index`` of ``seed``: a fixture with one to three mutations."""
    rng = random.Random(f"{seed}:{index}")
    name, data = corpus[rng.randrange(len(corpus))]
    steps = []
    names = sorted(MUTATORS)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        kind = rng.choice(names)
        data, what = MUTATORS[kind](rng, data)
        steps.append(f"{kind}: {what}")
    return Case(index=index, source=name, steps=tuple(steps), data=data)


def _parse(data: bytes) -> object:
    import greenbutton

    return greenbutton.parse(data)


def _iter_readings(data: bytes) -> object:
    import greenbutton

    return sum(1 for _ in greenbutton.iter_readings(data))


def _read_frame(data: bytes) -> object:
    import greenbutton

    return len(greenbutton.read_frame(data))


#: The public entry points every case goes through.
ENTRY_POINTS: dict[str, Callable[[bytes], object]] = {
    "parse": _parse,
    "iter_readings": _iter_readings,
    "read_frame": _read_frame,
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one entry point did with one case: ``ok``, ``typed`` (a GreenButtonError) or
    ``untyped`` (anything else: the bug class of issue 9), with the error when there is one."""

    entry: str
    kind: str
    error: str = ""
    where: str = ""


def run_case(data: bytes, entries: Sequence[str] = tuple(ENTRY_POINTS)) -> list[Outcome]:
    """Run ``data`` through each entry point; never raises for an ordinary exception."""
    from greenbutton import GreenButtonError

    out = []
    for entry in entries:
        try:
            ENTRY_POINTS[entry](data)
        except GreenButtonError as exc:
            out.append(Outcome(entry, "typed", f"{type(exc).__name__}: {str(exc)[:120]}"))
        except Exception as exc:  # the point of the fuzzer: report, do not stop
            frames = traceback.extract_tb(exc.__traceback__)
            last = frames[-1] if frames else None
            where = f"{Path(last.filename).name}:{last.lineno} {last.name}" if last else ""
            out.append(Outcome(entry, "untyped", f"{type(exc).__name__}: {exc!s:.200}", where))
        else:
            out.append(Outcome(entry, "ok"))
    return out
