"""Hostile numbers in otherwise valid documents (issue 9, SECURITY R37, catalogue b1.18).

Every numeric ESPI field is bounded at parse time (``models._bounds``): a multiplier, time or
duration the arithmetic behind the readings table cannot take is a ``ParseError`` naming the
field and its line, the same with and without the C accelerator; DST rules never raise;
scaling never computes a power the input chose. The property tests put any value into every
numeric element and require a result or a ``GreenButtonError``; a hang is caught by a
``faulthandler`` watchdog, which ends the run with every thread's traceback even when the
hang holds the GIL (``10**99999999999`` did).
"""

from __future__ import annotations

import faulthandler
import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

import greenbutton
from greenbutton import ConfigurationError, GreenButtonError, ParseError
from greenbutton.analysis import _summary as analysis
from greenbutton.cli import cli
from greenbutton.models import ReadingType, SummaryMeasurement, decode_time_zone, parse_dst_rule
from greenbutton.models._bounds import DURATION_MAX, TIME_MAX, TIME_MIN, pow10
from greenbutton.models._rows import Series, scale_factors
from tests.unit.test_cblocks import pure_python

# A generous watchdog: far above any case here, short enough to end a hang in a CI log.
WATCHDOG_SECONDS = 120


@pytest.fixture(autouse=True)
def watchdog() -> Iterator[None]:
    """A hang fails the run with tracebacks instead of stalling it (a test timeout)."""
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


# One usage point with every resource whose numbers the parser reads. ``{name}`` marks a
# numeric element's text; FIELDS holds the values a valid file would carry.
FIELDS: dict[str, str] = {
    "rt_accumulationBehaviour": "4", "rt_commodity": "1", "rt_currency": "840",
    "rt_dataQualifier": "12", "rt_defaultQuality": "0", "rt_flowDirection": "1",
    "rt_intervalLength": "3600", "rt_kind": "12", "rt_phase": "769",
    "rt_powerOfTenMultiplier": "-3", "rt_timeAttribute": "0", "rt_uom": "72",
    "rt_consumptionTier": "0", "rt_cpp": "0", "rt_measuringPeriod": "2", "rt_tou": "0",
    "ltp_dstEndRule": "B40E2000", "ltp_dstOffset": "3600", "ltp_dstStartRule": "360E2000",
    "ltp_tzOffset": "-28800",
    "block_start": "1704067200", "block_duration": "10800",
    "r1_start": "1704067200", "r1_duration": "3600", "r1_value": "1500", "r1_cost": "2100",
    "r1_quality": "7", "r1_tou": "1",
    "r2_start": "1704070800", "r2_duration": "3600", "r2_value": "1700",
    "r3_start": "1704074400", "r3_value": "900",
    "us_start": "1704067200", "us_duration": "2678400", "us_billLastPeriod": "6752000",
    "us_billToDate": "100", "us_costAdditionalLastPeriod": "0", "us_currency": "840",
    "us_qualityOfReading": "14", "us_statusTimeStamp": "1706745600", "us_commodity": "1",
    "m_powerOfTenMultiplier": "3", "m_timeStamp": "1706745600", "m_uom": "72", "m_value": "612",
    "li_amount": "100", "li_rounding": "0", "li_dateTime": "1706745600", "li_itemKind": "1",
    "li_unitCost": "5", "li_start": "1704067200", "li_duration": "2678400",
}  # fmt: skip

_UP = "/espi/1_1/resource/Subscription/1/UsagePoint/1"
TEMPLATE = f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:espi="http://naesb.org/espi">
<entry><link rel="self" href="{_UP}"/>
 <link rel="related" href="{_UP}/MeterReading"/>
 <link rel="related" href="/espi/1_1/resource/LocalTimeParameters/1"/>
 <content><espi:UsagePoint><espi:ServiceCategory><espi:kind>0</espi:kind></espi:ServiceCategory>
 </espi:UsagePoint></content></entry>
<entry><link rel="self" href="/espi/1_1/resource/LocalTimeParameters/1"/>
 <content><espi:LocalTimeParameters>
  <espi:dstEndRule>{{ltp_dstEndRule}}</espi:dstEndRule>
  <espi:dstOffset>{{ltp_dstOffset}}</espi:dstOffset>
  <espi:dstStartRule>{{ltp_dstStartRule}}</espi:dstStartRule>
  <espi:tzOffset>{{ltp_tzOffset}}</espi:tzOffset>
 </espi:LocalTimeParameters></content></entry>
<entry><link rel="self" href="{_UP}/MeterReading/1"/>
 <link rel="related" href="/espi/1_1/resource/ReadingType/1"/>
 <content><espi:MeterReading/></content></entry>
<entry><link rel="self" href="/espi/1_1/resource/ReadingType/1"/>
 <content><espi:ReadingType>
{{reading_type}}
 </espi:ReadingType></content></entry>
<entry><link rel="self" href="{_UP}/MeterReading/1/IntervalBlock/1"/>
 <link rel="up" href="{_UP}/MeterReading/1/IntervalBlock"/>
 <content><espi:IntervalBlock>
  <espi:interval><espi:duration>{{block_duration}}</espi:duration><espi:start>{{block_start}}</espi:start></espi:interval>
  <espi:IntervalReading><espi:cost>{{r1_cost}}</espi:cost>
   <espi:ReadingQuality><espi:quality>{{r1_quality}}</espi:quality></espi:ReadingQuality>
   <espi:timePeriod><espi:duration>{{r1_duration}}</espi:duration><espi:start>{{r1_start}}</espi:start></espi:timePeriod>
   <espi:tou>{{r1_tou}}</espi:tou><espi:value>{{r1_value}}</espi:value></espi:IntervalReading>
  <espi:IntervalReading>
   <espi:timePeriod><espi:duration>{{r2_duration}}</espi:duration><espi:start>{{r2_start}}</espi:start></espi:timePeriod>
   <espi:value>{{r2_value}}</espi:value></espi:IntervalReading>
  <espi:IntervalReading>
   <espi:timePeriod><espi:start>{{r3_start}}</espi:start></espi:timePeriod>
   <espi:value>{{r3_value}}</espi:value></espi:IntervalReading>
 </espi:IntervalBlock></content></entry>
<entry><link rel="self" href="{_UP}/UsageSummary/1"/>
 <link rel="up" href="{_UP}/UsageSummary"/>
 <content><espi:UsageSummary>
  <espi:billingPeriod><espi:duration>{{us_duration}}</espi:duration><espi:start>{{us_start}}</espi:start></espi:billingPeriod>
  <espi:billLastPeriod>{{us_billLastPeriod}}</espi:billLastPeriod>
  <espi:billToDate>{{us_billToDate}}</espi:billToDate>
  <espi:costAdditionalDetailLastPeriod>
   <espi:note>x</espi:note>
   <espi:measurement><espi:powerOfTenMultiplier>{{m_powerOfTenMultiplier}}</espi:powerOfTenMultiplier>
    <espi:timeStamp>{{m_timeStamp}}</espi:timeStamp><espi:uom>{{m_uom}}</espi:uom>
    <espi:value>{{m_value}}</espi:value></espi:measurement>
   <espi:itemKind>{{li_itemKind}}</espi:itemKind><espi:unitCost>{{li_unitCost}}</espi:unitCost>
   <espi:itemPeriod><espi:duration>{{li_duration}}</espi:duration><espi:start>{{li_start}}</espi:start></espi:itemPeriod>
   <espi:amount>{{li_amount}}</espi:amount><espi:rounding>{{li_rounding}}</espi:rounding>
   <espi:dateTime>{{li_dateTime}}</espi:dateTime>
  </espi:costAdditionalDetailLastPeriod>
  <espi:costAdditionalLastPeriod>{{us_costAdditionalLastPeriod}}</espi:costAdditionalLastPeriod>
  <espi:currency>{{us_currency}}</espi:currency>
  <espi:currentDayLastYearNetConsumption><espi:powerOfTenMultiplier>{{m_powerOfTenMultiplier}}</espi:powerOfTenMultiplier>
   <espi:timeStamp>{{m_timeStamp}}</espi:timeStamp><espi:uom>{{m_uom}}</espi:uom>
   <espi:value>{{m_value}}</espi:value></espi:currentDayLastYearNetConsumption>
  <espi:qualityOfReading>{{us_qualityOfReading}}</espi:qualityOfReading>
  <espi:statusTimeStamp>{{us_statusTimeStamp}}</espi:statusTimeStamp>
  <espi:commodity>{{us_commodity}}</espi:commodity>
 </espi:UsageSummary></content></entry>
</feed>
""".replace(
    "{reading_type}",
    "\n".join(f"  <espi:{k[3:]}>{{{k}}}</espi:{k[3:]}>" for k in FIELDS if k.startswith("rt_")),
)


def document(**values: str) -> bytes:
    """The template with ``values`` (XML-escaped) in place of the valid ones."""
    texts = {**FIELDS, **{k: escape(v) for k, v in values.items()}}
    return re.sub(r"\{(\w+)\}", lambda m: texts[m.group(1)], TEMPLATE).encode()


def line_of(field: str) -> int:
    """The 1-based line of the first element that holds ``field``'s value."""
    return TEMPLATE[: TEMPLATE.index("{" + field + "}")].count("\n") + 1


def all_entry_points(data: bytes) -> list[Callable[[], Any]]:
    return [
        lambda: greenbutton.parse(data),
        lambda: list(greenbutton.iter_readings(data)),
        lambda: greenbutton.read_frame(data),
    ]


def test_template_is_valid_and_read_in_full() -> None:
    """The baseline the hostile cases change one value of."""
    doc = greenbutton.parse(document())
    (up,) = doc.usage_points
    assert up.local_time_parameters is not None
    assert up.local_time_parameters.time_zone.iana == "America/Los_Angeles"
    (mr,) = up.meter_readings
    assert mr.reading_type is not None and mr.reading_type.power_of_ten_multiplier == -3
    assert list(mr.readings.start) == [1704067200, 1704070800, 1704074400]
    assert len(up.usage_summaries) == 1
    assert [r.value for r in greenbutton.iter_readings(document())] == [1.5, 1.7, 0.9]
    assert doc.warnings == (  # r3 has no duration on purpose: intervalLength fills it
        "Subscription/1/UsagePoint/1/MeterReading/1: readings without a duration; using 3600 s",
    )


# -- R37: each bound, its error, its line, both parser paths --------------------------------

REFUSED = [
    ("rt_powerOfTenMultiplier", "99999999999"),  # froze the web app (10**p holds the GIL)
    ("rt_powerOfTenMultiplier", "400"),  # OverflowError
    ("rt_powerOfTenMultiplier", "-400"),
    ("rt_powerOfTenMultiplier", "10000000"),  # 6 s of CPU
    ("rt_powerOfTenMultiplier", "25"),
    ("rt_powerOfTenMultiplier", "-25"),
    ("rt_powerOfTenMultiplier", "99"),  # catalogue b1.18
    ("rt_intervalLength", "-1"),
    ("rt_intervalLength", str(DURATION_MAX + 1)),
    ("r1_start", "100000000000000"),  # OutOfBoundsDatetime / OverflowError before
    ("r1_start", str(TIME_MAX)),
    ("r1_start", str(TIME_MIN - 1)),
    ("r2_start", "-100000000000000"),
    ("r1_start", "1e14"),
    ("r1_start", "100000000000000.5"),
    ("block_start", "100000000000000"),
    ("r1_duration", "-900"),  # catalogue b1.18
    ("r1_duration", str(DURATION_MAX + 1)),
    ("block_duration", "-1"),
    ("block_duration", str(DURATION_MAX + 1)),
    ("m_powerOfTenMultiplier", "32768"),  # beyond ESPI's Int16
    ("us_duration", "-1"),
    ("li_duration", "-1"),
]


@pytest.mark.parametrize("pure", [False, True], ids=["accelerated", "pure-python"])
@pytest.mark.parametrize(("field", "value"), REFUSED)
def test_r37_out_of_range_number_is_a_parse_error_naming_field_and_line(
    field: str, value: str, pure: bool
) -> None:
    """R37: the bound is a ParseError with the element's name and line from every entry
    point, and the accelerated parse refuses exactly what the pure-Python one refuses."""
    data = document(**{field: value})
    tag = field.split("_", 1)[1]
    with pure_python(pure):
        for call in all_entry_points(data):
            with pytest.raises(ParseError) as info:
                call()
            assert type(info.value) is ParseError
            message = str(info.value)
            assert tag in message and ("outside" in message or "negative" in message), message
            # The element's line; a negative duration is reported at its reading's.
            assert info.value.line is not None, message
            assert line_of(field) - 3 <= info.value.line <= line_of(field), message


ACCEPTED = [
    ("rt_powerOfTenMultiplier", "-24"),
    ("rt_powerOfTenMultiplier", "24"),
    ("rt_powerOfTenMultiplier", "-14"),  # seen in real files (ESPI_NOTES 5)
    ("r1_start", str(TIME_MIN)),
    ("r3_start", str(TIME_MAX - 1)),
    ("r1_duration", str(DURATION_MAX)),
    ("rt_intervalLength", str(DURATION_MAX)),
    ("m_powerOfTenMultiplier", "4096"),  # GBA's sentinel in unused measurements
    ("us_statusTimeStamp", "1440109957976"),  # PG&E: milliseconds
    ("us_start", "100000000000000"),  # summaries are shown through guarded conversions
]


@pytest.mark.parametrize("pure", [False, True], ids=["accelerated", "pure-python"])
@pytest.mark.parametrize(("field", "value"), ACCEPTED)
def test_r37_edges_inside_the_bounds_are_read(field: str, value: str, pure: bool) -> None:
    """The bounds are inclusive where documented (``models._bounds``), and each edge value
    reaches every output: rows, frame and inspect's facts."""
    data = document(**{field: value})
    with pure_python(pure):
        doc = greenbutton.parse(data)
        rows = list(greenbutton.iter_readings(data))
        frame = greenbutton.read_frame(data)
    assert len(rows) == len(frame) == 3
    assert [int(r.start.timestamp()) for r in rows] == [int(t.timestamp()) for t in frame["start"]]
    analysis.summarize(doc)
    for us in doc.usage_summaries:
        analysis.usage_summary_facts(us)


def test_r37_time_bounds_fit_datetime_and_pandas_nanoseconds() -> None:
    """Why the range is 1900..2200: both ends, plus a day and a UInt32 duration after the
    last start, are representable as ``datetime`` and as pandas ``datetime64[ns]``."""
    import pandas as pd

    for t in (TIME_MIN - 86400, TIME_MAX + 86400):
        assert pd.Timestamp(t, unit="s", tz="UTC").value == t * 10**9
    rows = list(greenbutton.iter_readings(document(r3_start=str(TIME_MAX - 1))))
    assert rows[-1].start.year == 2199
    assert pd.Timestamp(TIME_MAX + DURATION_MAX, unit="s").year == 2336


# -- scaling never computes a power the input chose ----------------------------------------


def test_scaling_refuses_a_wild_exponent_at_once() -> None:
    """A hand-built ReadingType cannot make ``10**p`` either: the table of powers ends at
    ±64 and beyond it is a typed error (the watchdog ends the test if this ever hangs)."""
    assert scale_factors(-3) == (1, 1000) and scale_factors(24) == (10**24, 1)
    assert pow10(64) == 10**64
    for exponent in (99999999999, -99999999999, 65, -65):
        with pytest.raises(ConfigurationError):
            scale_factors(exponent)
    series = Series.of("up", "mr", ReadingType(power_of_ten_multiplier=99999999999))
    doc = greenbutton.parse(document())
    with pytest.raises(ConfigurationError):
        list(series.rows(doc.meter_readings[0].readings))
    with pytest.raises(ConfigurationError):
        analysis.scaled(5, 99999999999)


def test_summary_measurement_with_a_sentinel_scale_is_unscaled_not_an_overflow() -> None:
    """GBA writes powerOfTenMultiplier 4096 in unused measurements: ``10.0**4096`` raised
    OverflowError; now ``scaled`` is None and inspect lists the measurement as unusable."""
    assert SummaryMeasurement(power_of_ten_multiplier=4096, value=5).scaled is None
    assert SummaryMeasurement(power_of_ten_multiplier=-3, value=5).scaled == 0.005
    doc = greenbutton.parse(document(m_powerOfTenMultiplier="4096"))
    (us,) = doc.usage_summaries
    facts = analysis.usage_summary_facts(us)
    assert facts["unusable_measurements"] == ["current_day_last_year_net_consumption"]


# -- DST rules and offsets: problems, never exceptions -------------------------------------


@pytest.mark.parametrize(
    "rule",
    ["99999999999", "FFFFFFFFFFFF", "7FFFFFFFFFFFFFFF", "1" + "0" * 40, "F" * 1000],
)
def test_dst_rule_beyond_any_instant_is_a_problem_not_an_overflow(rule: str) -> None:
    """A numeric rule above 1e9 is read as an epoch instant (Enbridge); one beyond the
    datetime range raised OverflowError in ``_rule_from_instant``. Now: a problem."""
    decoded, problem = parse_dst_rule(rule, -18000)
    assert decoded is None and problem is not None and "cannot be decoded" in problem
    doc = greenbutton.parse(document(ltp_dstStartRule=rule))
    assert any("cannot be decoded" in w for w in doc.warnings), doc.warnings
    analysis.summarize(doc)


def test_enbridge_epoch_rule_still_decodes() -> None:
    """The bound leaves real epoch rules alone: 2019-03-10 07:00 UTC is the US start rule."""
    rule, problem = parse_dst_rule(f"{1552201200:X}", -18000)
    assert problem is None and rule is not None and (rule.month, rule.operator) == (3, 3)


@pytest.mark.parametrize("offset", [99999999999, -99999999999, 86400, 4 * 3600 + 1])
def test_dst_offset_out_of_range_is_a_problem(offset: int) -> None:
    """``timedelta(seconds=dstOffset)`` overflowed, and an offset a day long makes tzinfo
    raise ValueError on use; both are now reported and DST is ignored."""
    info = decode_time_zone(
        tz_offset=-18000, dst_offset=offset, dst_start_rule="360E2000", dst_end_rule="B40E2000"
    )
    assert any("dstOffset" in p for p in info.problems), info.problems
    assert info.tzinfo.utcoffset(None) is not None
    doc = greenbutton.parse(document(ltp_dstOffset=str(offset)))
    analysis.summarize(doc)


# -- readings that collapse onto one start: one warning with the count ----------------------


def _collapsed(blocks: int) -> bytes:
    """The gas export of issue 9: one billing period a block, every start the same
    fractional generation time."""
    up = "/espi/1_1/resource/Subscription/1/UsagePoint/1/MeterReading/1"
    entries = "".join(
        f"""<entry><link rel="self" href="{up}/IntervalBlock/{i}"/>
<link rel="up" href="{up}/IntervalBlock"/><content><IntervalBlock xmlns="http://naesb.org/espi">
<interval><duration>2592000</duration><start>1721154384.66136</start></interval>
<IntervalReading><timePeriod><duration>2592000</duration><start>1721154384.66136</start>
</timePeriod><value>{100 + i}</value></IntervalReading></IntervalBlock></content></entry>
"""
        for i in range(blocks)
    )
    return f"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">
<entry><link rel="self" href="{up}"/><content><MeterReading xmlns="http://naesb.org/espi"/>
</content></entry>
{entries}</feed>""".encode()


@pytest.mark.parametrize("pure", [False, True], ids=["accelerated", "pure-python"])
def test_collapsed_starts_give_one_warning_with_the_dropped_count(pure: bool) -> None:
    """36 readings on one truncated start: one warning for the truncation (not 72, one a
    line) and one saying 35 readings were dropped; the last one is the one kept."""
    with pure_python(pure):
        doc = greenbutton.parse(_collapsed(36))
    fractional = [w for w in doc.warnings if "fractional" in w]
    dropped = [w for w in doc.warnings if "dropped" in w]
    assert len(fractional) == 1 and fractional[0].startswith("72 fractional start"), fractional
    assert len(dropped) == 1 and "35 of 36 readings dropped" in dropped[0], dropped
    assert not any(w.startswith("line ") for w in doc.warnings), doc.warnings
    (mr,) = doc.meter_readings
    assert list(mr.readings.value) == [135] and list(mr.readings.start) == [1721154384]


def test_a_file_without_repeats_has_no_dropped_warning() -> None:
    """The count is only there when something was dropped (and costs no set otherwise)."""
    assert not any("dropped" in w for w in greenbutton.parse(document()).warnings)
    assert any(
        "1 of 3" in w for w in greenbutton.parse(document(r2_start=FIELDS["r1_start"])).warnings
    )


def test_inspect_reports_the_dropped_readings(tmp_path: Any) -> None:
    """``greenbutton inspect`` says how many readings were dropped, in JSON and as text."""
    path = tmp_path / "gas.xml"
    path.write_bytes(_collapsed(36))
    env = {"COLUMNS": "200", "NO_COLOR": "1"}
    result = CliRunner().invoke(cli, ["inspect", "--json", str(path)], env=env)
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)["files"]
    assert sum("35 of 36 readings dropped" in w for w in report["warnings"]) == 1
    (series,) = report["usage_points"][0]["meter_readings"]
    assert series["duplicates"]["extra_readings"] == 35
    text = CliRunner().invoke(cli, ["inspect", str(path)], env=env)
    assert text.exit_code == 0 and "35 reading(s) dropped" in text.output, text.output


# -- the CLI: one error line, no traceback ---------------------------------------------------


@pytest.mark.parametrize("command", [["inspect"], ["export"], ["inspect", "--json"]])
@pytest.mark.parametrize(
    ("field", "value"), [("r1_start", "100000000000000"), ("rt_powerOfTenMultiplier", "400")]
)
def test_r37_cli_reports_hostile_numbers_as_one_error_line(
    command: list[str], field: str, value: str, tmp_path: Any
) -> None:
    """``export`` and ``inspect`` raised OverflowError / OutOfBoundsDatetime with a traceback;
    now exit status 1 and one ``error:`` line naming the element (DESIGN 3)."""
    path = tmp_path / "hostile.xml"
    path.write_bytes(document(**{field: value}))
    result = CliRunner().invoke(cli, [*command, str(path)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert field.split("_", 1)[1] in result.output and "error:" in result.output


# -- properties: any value in any numeric element --------------------------------------------

HOSTILE = (
    st.integers(-(2**70), 2**70).map(str)
    | st.sampled_from(
        [
            "100000000000000", "-100000000000000", "99999999999", "9223372036854775807",
            "-9223372036854775808", "9223372036854775808", "18446744073709551615",
            str(TIME_MIN - 1), str(TIME_MAX), str(DURATION_MAX + 1), "1e14", "1e309", "NaN",
            "-inf", "", " ", "+7", "-0", "0x1F", "1_0", "\u0661", "3.25", "9" * 5000,
            "1721154384.66136", "FFFFFFFF", "FFFFFFFFFFFF",
        ]
    )
    | st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
)  # fmt: skip
PROPERTY_SETTINGS = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _result_or_typed_error(data: bytes) -> None:
    for call in all_entry_points(data):
        try:
            call()
        except GreenButtonError:
            pass
    try:
        doc = greenbutton.parse(data)
    except GreenButtonError:
        return
    analysis.summarize(doc)  # what inspect and plot show
    for us in doc.usage_summaries:
        analysis.usage_summary_facts(us)


@PROPERTY_SETTINGS
@given(field=st.sampled_from(sorted(FIELDS)), value=HOSTILE, pure=st.booleans())
def test_r37_any_value_in_any_numeric_element_gives_a_result_or_a_typed_error(
    field: str, value: str, pure: bool
) -> None:
    """R37 over every numeric element of IntervalReading, IntervalBlock, ReadingType,
    LocalTimeParameters and UsageSummary: any text, huge, negative, int64 edges, 1e14,
    non-digits. Anything but a GreenButtonError escapes and fails the example."""
    with pure_python(pure):
        _result_or_typed_error(document(**{field: value}))


@PROPERTY_SETTINGS
@given(values=st.dictionaries(st.sampled_from(sorted(FIELDS)), HOSTILE, min_size=2, max_size=6))
def test_r37_several_hostile_values_at_once(values: dict[str, str]) -> None:
    """Bounds interact (a start near the end of the range plus a long duration, a huge
    multiplier with a huge value): several fields changed at once."""
    _result_or_typed_error(document(**values))


@PROPERTY_SETTINGS
@given(
    tz=st.integers(-(2**64), 2**64) | st.none(),
    dst=st.integers(-(2**64), 2**64) | st.none(),
    start=HOSTILE | st.none(),
    end=HOSTILE | st.none(),
)
def test_decode_time_zone_never_raises(
    tz: int | None, dst: int | None, start: str | None, end: str | None
) -> None:
    """DST rules and offsets decode or become problems, and the tzinfo they give works for
    any instant the parser lets through."""
    info = decode_time_zone(tz_offset=tz, dst_offset=dst, dst_start_rule=start, dst_end_rule=end)
    from datetime import UTC, datetime

    for t in (TIME_MIN, 1704067200, TIME_MAX - 1):
        datetime.fromtimestamp(t, UTC).astimezone(info.tzinfo)
