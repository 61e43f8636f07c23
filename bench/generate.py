"""Generate large, realistic Green Button files for the parser benchmarks (DESIGN 6).

Real files big enough to benchmark cannot be committed, so this writes them: 15-minute
electric readings of a California home (daily and seasonal load shape, weather noise,
PG&E E-TOU-C codes), one IntervalBlock per local day in America/Los_Angeles (23/25-hour
blocks on DST days), in one of two layouts that stress a parser differently:

* ``pge``: PG&E Share My Data bulk layout (``pge_smd_bulk_day_*`` fixtures): no whitespace,
  ``ns1`` (Atom) / ``ns0`` (ESPI) prefixes re-declared on nearly every element,
  ``xsi:type`` on every Atom child, ReadingQuality 19 and a ``tou`` code per reading, a
  ProgramIdMappings entry last. Real PG&E files re-declare ``ns0`` on each entry's content;
  by default we also re-declare it on each reading's compound elements, so that 3 years
  (105,216 readings) make the ~40 MB file DESIGN 6 names (``--compact`` gives the exact
  fixture layout, ~28 MB).
* ``openespi``: OpenESPI / GBA sample layout: default Atom namespace, ``espi:`` prefix,
  indented with tabs.

Output is deterministic for a seed and written as it is produced, so a 400 MB file needs
no more memory than a 40 MB one::

    python bench/generate.py --style pge --years 3 -o bench/out/pge_3y.xml
    python bench/generate.py --style pge --years 3 --size-mb 400 -o bench/out/pge_400mb.xml
"""

from __future__ import annotations

import argparse
import base64
import math
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

TZ = ZoneInfo("America/Los_Angeles")
INTERVAL = 900
START_YEAR = 2019  # 2019-2021 holds one leap day: 3 years = 1096 days = 105,216 readings
PGE_BASE = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource"
ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
STAMP = "2022-01-03T19:33:56.434Z"

# PG&E ProgramIdMappings tou codes (ESPI_NOTES 2.6).
TOU_NAMES = (
    ("SPK", "Summer Peak"),
    ("SOP", "Summer Off Peak"),
    ("SPP", "Summer Partial Peak"),
    ("WPK", "Winter Peak"),
    ("WPP", "Winter Partial Peak"),
    ("WOP", "Winter Off Peak"),
    ("MPK", "Spring Peak"),
    ("MOP", "Spring Off Peak"),
    ("MXO", "Spring Super Off Peak"),
    ("WSO", "Winter Super Off Peak"),
)


@dataclass(frozen=True, slots=True)
class Day:
    """One local day: its IntervalBlock and the local hour-of-day of each reading."""

    start: int
    duration: int
    month: int
    weekday: int
    day_of_year: int
    hours: tuple[float, ...]


def local_days(years: int) -> list[Day]:
    """Local midnights of ``years`` calendar years from 2019; DST days have 92/100 slots."""
    days: list[Day] = []
    d = date(START_YEAR, 1, 1)
    end = date(START_YEAR + years, 1, 1)
    plain = tuple(i * INTERVAL / 3600 for i in range(96))
    while d < end:
        nxt = d + timedelta(days=1)
        t0 = int(datetime(d.year, d.month, d.day, tzinfo=TZ).timestamp())
        t1 = int(datetime(nxt.year, nxt.month, nxt.day, tzinfo=TZ).timestamp())
        n = (t1 - t0) // INTERVAL
        if n == 96:
            hours = plain
        else:  # a DST change: ask the zone for each slot's wall-clock hour
            walls = (datetime.fromtimestamp(t0 + i * INTERVAL, TZ) for i in range(n))
            hours = tuple(w.hour + w.minute / 60 for w in walls)
        days.append(Day(t0, t1 - t0, d.month, d.weekday(), d.timetuple().tm_yday, hours))
        d = nxt
    return days


def tou_code(month: int, hour: float) -> int:
    """E-TOU-C-like periods: peak 16-21 h, partial peak around it in summer (Jun-Sep)."""
    if 6 <= month <= 9:
        if 16 <= hour < 21:
            return 1
        return 3 if 14 <= hour < 16 or 21 <= hour < 23 else 2
    return 4 if 16 <= hour < 21 else 6


def _shape(hour: float, weekend: bool) -> float:
    """Household base load in W: overnight base, morning bump, evening peak."""
    morning = 9.5 if weekend else 7.5
    w = 320.0
    w += 550.0 * math.exp(-(((hour - morning) / 1.3) ** 2))
    w += 1100.0 * math.exp(-(((hour - 19.5) / 2.2) ** 2))
    if weekend:
        w += 250.0 * math.exp(-(((hour - 13.0) / 3.0) ** 2))
    return w


_SHAPES = {(hq, weekend): _shape(hq / 4, weekend) for hq in range(100) for weekend in (False, True)}


def day_values(day: Day, rng: random.Random, scale: float, weather: float) -> list[int]:
    """Readings of one day as raw ints (Wh x 10^3, i.e. powerOfTenMultiplier -3).

    Summer afternoons add air conditioning in proportion to a hot-day factor, winter
    evenings add heating/lighting; values are rounded to 0.1 Wh like PG&E's.
    """
    season = math.cos(2 * math.pi * (day.day_of_year - 200) / 365.25)  # +1 late July
    cooling = max(0.0, season) * 2200.0 * weather
    heating = max(0.0, -season) * 450.0 * (2.0 - weather)
    weekend = day.weekday >= 5
    out = []
    gauss = rng.gauss
    for h in day.hours:
        w = _SHAPES[(int(h * 4), weekend)]
        if 12 <= h < 22:
            w += cooling * math.exp(-(((h - 17.0) / 3.0) ** 2))
        if h >= 17 or h < 7:
            w += heating
        w *= scale * (1.0 + 0.18 * gauss(0.0, 1.0))
        wh = max(w, 40.0) * INTERVAL / 3600
        out.append(round(wh * 10) * 100)
    return out


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(frozen=True, slots=True)
class Point:
    """One UsagePoint of the feed with its MeterReading's hrefs."""

    subscription: int
    usage_point: int
    meter_reading_id: str
    reading_type_id: str


def reading_type_id() -> str:
    """PG&E ReadingType ids are base64 of ``uom:null:interval:1``."""
    return base64.b64encode(f"72:null:{INTERVAL}:1".encode()).decode()


def make_point(index: int) -> Point:
    rt = reading_type_id()
    mr = base64.b64encode(f"{rt}:1".encode()).decode()  # MeterReading id: base64(rt + ":1")
    return Point(4095251 + index * 17, 5391320451 + index * 7919, mr, rt)


def series(days: list[Day], seed: int, index: int) -> Iterator[tuple[Day, list[int]]]:
    """The readings of usage point ``index``: its own scale and weather noise, day by day."""
    rng = random.Random(seed * 1_000_003 + index)
    scale = rng.uniform(0.6, 1.8)
    weather = 1.0
    for day in days:
        weather = min(1.9, max(0.1, 0.75 * weather + 0.25 + rng.gauss(0.0, 0.25)))
        yield day, day_values(day, rng, scale, weather)


# ---------------------------------------------------------------- PG&E layout


def _pge_meta(tag: str, text: str) -> str:
    return f'<ns1:{tag} {XSI} xsi:type="ns1:dateTimeType">{text}</ns1:{tag}>'


def _pge_entry(rng: random.Random, up: str, self_: str, related: list[str], title: str) -> str:
    links = [(up, "up"), (self_, "self")] + [(r, "related") for r in related]
    parts = [
        f'<ns1:entry xmlns:ns1="{ATOM}">',
        f'<ns1:id {XSI} xsi:type="ns1:idType">{_uuid(rng)}</ns1:id>',
    ]
    parts += [
        f'<ns1:link href="{PGE_BASE}/{h}" rel="{rel}" {XSI} xsi:type="ns1:linkType"/>'
        for h, rel in links
    ]
    parts += [
        f'<ns1:title type="text" {XSI} xsi:type="ns1:textType">{title}</ns1:title>',
        _pge_meta("published", STAMP),
        _pge_meta("updated", STAMP),
        f'<ns1:content {XSI} xsi:type="ns1:contentType">',
    ]
    return "".join(parts)


_PGE_END = "</ns1:content></ns1:entry>"


def pge_head(rng: random.Random) -> str:
    rt = reading_type_id()
    return "".join(
        [
            f'<ns1:feed xmlns:ns0="{ESPI}" xmlns:ns1="{ATOM}">',
            f'<ns1:id xmlns:ns1="{ATOM}">{_uuid(rng)}</ns1:id>',
            f'<ns1:title xmlns:ns1="{ATOM}" type="text">Green Button Usage Feed</ns1:title>',
            f'<ns1:updated xmlns:ns1="{ATOM}">{STAMP}</ns1:updated>',
            f'<ns1:link xmlns:ns1="{ATOM}" href="{PGE_BASE}/Batch/Bulk/50916" rel="self"/>\n',
            _pge_entry(
                rng,
                "LocalTimeParameters",
                "LocalTimeParameters/1",
                [],
                "DST FOR PACIFIC TIMEZONE",
            ),
            f'<ns0:LocalTimeParameters xmlns:ns0="{ESPI}"><ns0:dstEndRule>B40E2000'
            "</ns0:dstEndRule><ns0:dstOffset>3600</ns0:dstOffset><ns0:dstStartRule>360E2000"
            "</ns0:dstStartRule><ns0:tzOffset>-28800</ns0:tzOffset></ns0:LocalTimeParameters>",
            _PGE_END,
            _pge_entry(rng, "ReadingType", f"ReadingType/{rt}", [], "Type of Meter Reading Data"),
            f'<ns0:ReadingType xmlns:ns0="{ESPI}">'
            "<ns0:accumulationBehaviour>4</ns0:accumulationBehaviour>"
            "<ns0:commodity>1</ns0:commodity><ns0:dataQualifier>12</ns0:dataQualifier>"
            "<ns0:defaultQuality>17</ns0:defaultQuality><ns0:flowDirection>1</ns0:flowDirection>"
            f"<ns0:intervalLength>{INTERVAL}</ns0:intervalLength><ns0:kind>12</ns0:kind>"
            "<ns0:powerOfTenMultiplier>-3</ns0:powerOfTenMultiplier>"
            "<ns0:timeAttribute>0</ns0:timeAttribute><ns0:uom>72</ns0:uom>"
            "<ns0:measuringPeriod>7</ns0:measuringPeriod></ns0:ReadingType>",
            _PGE_END,
        ]
    )


def pge_point_head(rng: random.Random, p: Point) -> str:
    upath = f"Subscription/{p.subscription}/UsagePoint/{p.usage_point}"
    mpath = f"{upath}/MeterReading/{p.meter_reading_id}"
    return "".join(
        [
            _pge_entry(
                rng,
                f"Subscription/{p.subscription}/UsagePoint",
                upath,
                [f"{upath}/MeterReading", f"{upath}/UsageSummary", "LocalTimeParameters/1"],
                "Green Button Data File",
            ),
            f'<ns0:UsagePoint xmlns:ns0="{ESPI}"><ns0:ServiceCategory><ns0:kind>0</ns0:kind>'
            "</ns0:ServiceCategory></ns0:UsagePoint>",
            _PGE_END,
            _pge_entry(
                rng,
                f"{upath}/MeterReading",
                mpath,
                [
                    f"{mpath}/IntervalBlock",
                    f"ReadingType/{p.reading_type_id}",
                    "LocalTimeParameters/1",
                ],
                "Green Button Data File",
            ),
            f'<ns0:MeterReading xmlns:ns0="{ESPI}"/>',
            _PGE_END,
        ]
    )


def pge_block(rng: random.Random, p: Point, day: Day, values: list[int], redeclare: bool) -> str:
    blocks = (
        f"Subscription/{p.subscription}/UsagePoint/{p.usage_point}"
        f"/MeterReading/{p.meter_reading_id}/IntervalBlock"
    )
    ns = f' xmlns:ns0="{ESPI}"' if redeclare else ""
    parts = [
        _pge_entry(rng, blocks, f"{blocks}/{day.start}", [], f"IntervalBlock_{day.start}"),
        f'<ns0:IntervalBlock xmlns:ns0="{ESPI}"><ns0:interval><ns0:duration>{day.duration}'
        f"</ns0:duration><ns0:start>{day.start}</ns0:start></ns0:interval>",
    ]
    t = day.start
    for h, v in zip(day.hours, values, strict=True):
        parts.append(
            f"<ns0:IntervalReading{ns}><ns0:ReadingQuality{ns}><ns0:quality>19</ns0:quality>"
            f"</ns0:ReadingQuality><ns0:timePeriod{ns}><ns0:duration>{INTERVAL}</ns0:duration>"
            f"<ns0:start>{t}</ns0:start></ns0:timePeriod><ns0:value>{v}</ns0:value>"
            f"<ns0:tou>{tou_code(day.month, h)}</ns0:tou></ns0:IntervalReading>"
        )
        t += INTERVAL
    parts.append("</ns0:IntervalBlock>" + _PGE_END + "\n")
    return "".join(parts)


def pge_tail(rng: random.Random) -> str:
    typed = 'xmlns:xsd="http://www.w3.org/2001/XMLSchema" ' + XSI
    maps = "".join(
        "<ns0:programIdMapping><ns0:tOUorCPPorConsumptionTier>tou</ns0:tOUorCPPorConsumptionTier>"
        f'<ns0:code {typed} xsi:type="xsd:int">{code}</ns0:code>'
        f'<ns0:name {typed} xsi:type="xsd:string">{name}</ns0:name>'
        f'<ns0:note {typed} xsi:type="xsd:string">{note}</ns0:note></ns0:programIdMapping>'
        for code, (name, note) in enumerate(TOU_NAMES, 1)
    )
    return (
        _pge_entry(
            rng,
            "ProgramIdMapping",
            "ProgramIdMapping/1",
            [],
            "Time Of Use &amp; Consumption Tier Code Info",
        )
        + f'<ns0:ProgramIdMappings xmlns:ns0="{ESPI}">{maps}</ns0:ProgramIdMappings>'
        + _PGE_END
        + "</ns1:feed>"
    )


# ---------------------------------------------------------------- OpenESPI layout

_OE = "/espi/1_1/resource"


def _oe_entry(rng: random.Random, links: list[tuple[str, str]], title: str, body: str) -> str:
    lines = ["\t<entry>", f"\t\t<id>urn:uuid:{_uuid(rng).upper()}</id>"]
    lines += [f'\t\t<link rel="{rel}" href="{_OE}/{h}"/>' for rel, h in links]
    lines += [
        f"\t\t<title>{title}</title>" if title else "\t\t<title/>",
        "\t\t<content>",
        body,
        "\t\t</content>",
        "\t\t<published>2022-01-03T00:00:00Z</published>",
        "\t\t<updated>2022-01-03T00:00:00Z</updated>",
        "\t</entry>\n",
    ]
    return "\n".join(lines)


def oe_head(rng: random.Random) -> str:
    ltp = (
        "\t\t\t<espi:LocalTimeParameters>\n"
        "\t\t\t\t<espi:dstEndRule>B40E2000</espi:dstEndRule>\n"
        "\t\t\t\t<espi:dstOffset>3600</espi:dstOffset>\n"
        "\t\t\t\t<espi:dstStartRule>360E2000</espi:dstStartRule>\n"
        "\t\t\t\t<espi:tzOffset>-28800</espi:tzOffset>\n"
        "\t\t\t</espi:LocalTimeParameters>"
    )
    rt = "\n".join(
        ["\t\t\t<espi:ReadingType>"]
        + [
            f"\t\t\t\t<espi:{k}>{v}</espi:{k}>"
            for k, v in (
                ("accumulationBehaviour", 4),
                ("commodity", 1),
                ("dataQualifier", 12),
                ("defaultQuality", 17),
                ("flowDirection", 1),
                ("intervalLength", INTERVAL),
                ("kind", 12),
                ("powerOfTenMultiplier", -3),
                ("timeAttribute", 0),
                ("uom", 72),
                ("measuringPeriod", 7),
            )
        ]
        + ["\t\t\t</espi:ReadingType>"]
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<feed xmlns="{ATOM}" xmlns:espi="{ESPI}">\n'
        f"\t<id>urn:uuid:{_uuid(rng).upper()}</id>\n"
        "\t<title>Green Button Subscription Feed</title>\n"
        "\t<updated>2022-01-03T00:00:00Z</updated>\n"
        f'\t<link rel="self" href="{_OE}/Batch/Subscription/5"/>\n'
        + _oe_entry(
            rng,
            [("self", "LocalTimeParameters/01"), ("up", "LocalTimeParameters")],
            "DST For North America",
            ltp,
        )
        + _oe_entry(
            rng,
            [("self", "ReadingType/07"), ("up", "ReadingType")],
            "Type of Meter Reading Data",
            rt,
        )
    )


def oe_point_head(rng: random.Random, p: Point) -> str:
    upath = f"Subscription/{p.subscription}/UsagePoint/{p.usage_point}"
    mpath = f"{upath}/MeterReading/01"
    usage_point = (
        "\t\t\t<espi:UsagePoint>\n\t\t\t\t<espi:ServiceCategory>\n"
        "\t\t\t\t\t<espi:kind>0</espi:kind>\n\t\t\t\t</espi:ServiceCategory>\n"
        "\t\t\t</espi:UsagePoint>"
    )
    return _oe_entry(
        rng,
        [
            ("self", upath),
            ("up", f"Subscription/{p.subscription}/UsagePoint"),
            ("related", f"{upath}/MeterReading"),
            ("related", "LocalTimeParameters/01"),
        ],
        "Front Electric Meter",
        usage_point,
    ) + _oe_entry(
        rng,
        [
            ("self", mpath),
            ("up", f"{upath}/MeterReading"),
            ("related", f"{mpath}/IntervalBlock"),
            ("related", "ReadingType/07"),
        ],
        "Fifteen Minute Electricity Consumption",
        "\t\t\t<espi:MeterReading/>",
    )


def oe_block(rng: random.Random, p: Point, day: Day, values: list[int], redeclare: bool) -> str:
    blocks = f"Subscription/{p.subscription}/UsagePoint/{p.usage_point}/MeterReading/01"
    blocks += "/IntervalBlock"
    parts = [
        "\t\t\t<espi:IntervalBlock>\n\t\t\t\t<espi:interval>\n"
        f"\t\t\t\t\t<espi:duration>{day.duration}</espi:duration>\n"
        f"\t\t\t\t\t<espi:start>{day.start}</espi:start>\n\t\t\t\t</espi:interval>\n"
    ]
    t = day.start
    for h, v in zip(day.hours, values, strict=True):
        parts.append(
            "\t\t\t\t<espi:IntervalReading>\n"
            "\t\t\t\t\t<espi:ReadingQuality>\n"
            "\t\t\t\t\t\t<espi:quality>19</espi:quality>\n"
            "\t\t\t\t\t</espi:ReadingQuality>\n"
            "\t\t\t\t\t<espi:timePeriod>\n"
            f"\t\t\t\t\t\t<espi:duration>{INTERVAL}</espi:duration>\n"
            f"\t\t\t\t\t\t<espi:start>{t}</espi:start>\n"
            "\t\t\t\t\t</espi:timePeriod>\n"
            f"\t\t\t\t\t<espi:value>{v}</espi:value>\n"
            f"\t\t\t\t\t<espi:tou>{tou_code(day.month, h)}</espi:tou>\n"
            "\t\t\t\t</espi:IntervalReading>\n"
        )
        t += INTERVAL
    parts.append("\t\t\t</espi:IntervalBlock>")
    return _oe_entry(rng, [("self", f"{blocks}/{day.start}"), ("up", blocks)], "", "".join(parts))


def oe_tail(rng: random.Random) -> str:
    return "</feed>\n"


# ---------------------------------------------------------------- driver


@dataclass(frozen=True, slots=True)
class Layout:
    head: Callable[[random.Random], str]
    point_head: Callable[[random.Random, Point], str]
    block: Callable[[random.Random, Point, Day, list[int], bool], str]
    tail: Callable[[random.Random], str]


LAYOUTS = {
    "pge": Layout(pge_head, pge_point_head, pge_block, pge_tail),
    "openespi": Layout(oe_head, oe_point_head, oe_block, oe_tail),
}


def generate(
    out: IO[bytes],
    *,
    style: str = "pge",
    years: int = 3,
    usage_points: int = 1,
    size_mb: float | None = None,
    seed: int = 2019,
    redeclare: bool = True,
) -> tuple[int, int, int]:
    """Write one feed to ``out``; return ``(bytes, usage points, readings)``.

    With ``size_mb``, usage points are added (at least ``usage_points``) until the next
    one would overshoot the target by more than half of one.
    """
    layout = LAYOUTS[style]
    days = local_days(years)
    rng = random.Random(seed)  # ids; values use one generator per usage point
    written = readings = 0

    def put(text: str) -> None:
        nonlocal written
        data = text.encode()
        out.write(data)
        written += len(data)

    put(layout.head(rng))
    tail = layout.tail(random.Random(seed + 1))
    target = None if size_mb is None else size_mb * 1_000_000 - len(tail)
    index = 0
    per_point = 0
    while True:
        if index >= usage_points and (target is None or written + per_point / 2 >= target):
            break
        before = written
        p = make_point(index)
        put(layout.point_head(rng, p))
        for day, values in series(days, seed, index):
            put(layout.block(rng, p, day, values, redeclare))
            readings += len(values)
        per_point = written - before
        index += 1
    put(tail)
    return written, index, readings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--style", choices=sorted(LAYOUTS), default="pge")
    ap.add_argument("--years", type=int, default=3, help="calendar years from 2019 (default 3)")
    ap.add_argument("--usage-points", type=int, default=1, help="usage points (default 1)")
    ap.add_argument("--size-mb", type=float, help="add usage points until about this size")
    ap.add_argument("--seed", type=int, default=2019)
    ap.add_argument(
        "--compact",
        action="store_true",
        help="pge: declare ns0 only on each content element, exactly like the fixtures",
    )
    ap.add_argument("-o", "--output", type=Path, required=True)
    a = ap.parse_args(argv)
    a.output.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tmp = a.output.with_name(a.output.name + ".part")
    with open(tmp, "wb", buffering=1 << 20) as f:
        size, points, readings = generate(
            f,
            style=a.style,
            years=a.years,
            usage_points=a.usage_points,
            size_mb=a.size_mb,
            seed=a.seed,
            redeclare=not a.compact,
        )
    tmp.replace(a.output)  # never leave a truncated file where run.py looks for one
    print(
        f"{a.output}: {size / 1e6:.1f} MB, {points} usage point(s), {readings:,} readings "
        f"({time.perf_counter() - t0:.1f} s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
