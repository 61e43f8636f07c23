"""The dashboard's numbers (analysis._dashboard): ranges anchored to the data, local days
and months across DST, cost, comparisons, time of use, bills, the chart's accessible name.

Rows are built by hand in Pacific time ending on each of ``BITING``'s dates, and every
computation runs under a clock frozen somewhere else (time-machine), so a result that
depended on today would change between the parametrized cases.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from greenbutton import parse
from greenbutton.analysis import (
    CustomerFacts,
    accessible_svg,
    bills,
    comparison,
    customer_facts,
    describe_periods,
    flow_words,
    period_chart,
    period_totals,
    range_bounds,
    render,
    tou_breakdown,
    usage_between,
)
from greenbutton.models import Reading
from tests.conftest import BITING, FIXTURES

PACIFIC = ZoneInfo("America/Los_Angeles")
ELSEWHERE = datetime(2031, 7, 4, 12, tzinfo=UTC)  # the frozen "now": nowhere near the data


def _row(start: datetime, wh: float, *, flow: str = "forward", cost: float | None = None,
         tou: int | None = None) -> Reading:  # fmt: skip
    return Reading("up", "mr-" + flow, start.astimezone(UTC), 3600, int(wh), wh, "Wh", flow,
                   "energy", "electricity", 3600, cost, "USD" if cost is not None else None,
                   None, tou)  # fmt: skip


def _hourly(first: date, last: date, wh: float = 1000.0, **kw: object) -> list[Reading]:
    """One reading per local hour (real hours: 23 on spring-forward days, 25 on fall-back)."""
    start = datetime(first.year, first.month, first.day, tzinfo=PACIFIC).astimezone(UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=PACIFIC) + timedelta(days=1)
    rows = []
    t = start
    while t < end.astimezone(UTC):
        rows.append(_row(t, wh, **kw))  # type: ignore[arg-type]
        t += timedelta(hours=1)
    return rows


def _utc(d: date) -> datetime:
    """Local midnight of ``d`` in UTC (aware datetimes of one zone subtract as wall time)."""
    return datetime(d.year, d.month, d.day, tzinfo=PACIFIC).astimezone(UTC)


@pytest.mark.parametrize("moment", BITING, ids=lambda m: m.isoformat())
def test_ranges_are_anchored_to_the_data_not_the_clock(moment: datetime) -> None:
    last = moment.astimezone(PACIFIC).date()
    first = last - timedelta(days=3 * 365)
    with time_machine.travel(ELSEWHERE, tick=False):
        start, end, res = range_bounds("30d", first, last)
        assert (end - start).days == 30 and end == last + timedelta(days=1) and res == "day"
        start, end, res = range_bounds("7d", first, last)
        assert (end - start).days == 7 and end == last + timedelta(days=1) and res == "day"
        start, end, res = range_bounds("12m", first, last)
        assert res == "month" and end == last + timedelta(days=1)
        assert (start.year + 1, start.month) == (end.year, end.month)
        assert start.day == min(end.day, 28) or start.day == end.day  # 29 Feb -> 28 Feb
        start, end, res = range_bounds("all", first, last)
        assert res == "month" and start == first
        with pytest.raises(ValueError, match="use one of 7d, 30d, 12m, all"):
            range_bounds("week", first, last)  # type: ignore[arg-type]
    # little data: "12 months" starts where the data does and is drawn by day
    start, end, res = range_bounds("12m", last - timedelta(days=9), last)
    assert (start, res) == (last - timedelta(days=9), "day")


@pytest.mark.parametrize("moment", BITING, ids=lambda m: m.isoformat())
def test_period_totals_by_local_day_and_month(moment: datetime) -> None:
    last = moment.astimezone(PACIFIC).date()
    first = last - timedelta(days=70)
    rows = _hourly(first, last, cost=0.25)
    with time_machine.travel(ELSEWHERE, tick=False):
        days = period_totals(rows, PACIFIC, "day", first, last + timedelta(days=1))
        months = period_totals(rows, PACIFIC, "month", first, last + timedelta(days=1))
    assert len(days) == 71 and days[0].start == first and days[-1].end == last + timedelta(1)
    for p in days:  # a local day's kWh is its real hours: 23 and 25 on DST days
        hours = (_utc(p.end) - _utc(p.start)).total_seconds() / 3600
        assert p.usage.used == pytest.approx(hours) and p.usage.unit == "kWh"
        assert p.usage.cost == pytest.approx(0.25 * hours) and p.usage.currency == "USD"
    total = sum(p.usage.used for p in days)
    assert sum(p.usage.used for p in months) == pytest.approx(total)
    assert months[0].start == first and all(m.start.day == 1 for m in months[1:])
    assert len(months) in (3, 4) and all(m.whole for m in months[1:-1])
    assert months[0].whole == (first.day == 1) and all(d.whole for d in days)
    assert usage_between(rows, PACIFIC, first, last + timedelta(1)).used == pytest.approx(total)


def test_a_three_year_file_is_36_or_37_monthly_bars_not_a_solid_block() -> None:
    last = date(2026, 12, 2)
    rows = _hourly(last - timedelta(days=3 * 365), last, wh=500)
    start, end, res = range_bounds("all", rows[0].start.astimezone(PACIFIC).date(), last)
    periods = period_totals(rows, PACIFIC, res, start, end)
    assert res == "month" and 36 <= len(periods) <= 37
    assert [p.whole for p in (periods[0], periods[-1])] == [False, False]  # cut months
    assert "lowest" in (text := describe_periods(periods, res)) and "(December 2026)" not in text
    fig = period_chart(periods, res, size="desktop")
    svg = render(fig, "svg")
    assert svg.count(b'<g id="patch_') < 60  # a bar per month (plus frame), not 26 000


def test_comparison_with_the_previous_range_and_last_year() -> None:
    last = date(2028, 3, 1)  # the range crosses 29 February 2028
    rows = _hourly(date(2027, 1, 1), last, wh=1000)
    rows += [_row(r.start, 2000.0, flow="reverse") for r in _hourly(last, last)]
    start, end, _ = range_bounds("30d", date(2027, 1, 1), last)
    with time_machine.travel(ELSEWHERE, tick=False):
        got = comparison(rows, PACIFIC, start, end)
    assert got.current.used == pytest.approx(30 * 24)  # 1 Feb to 1 Mar: no DST change
    assert got.current.exported == pytest.approx(48.0)
    assert got.previous is not None and got.previous.used == pytest.approx(30 * 24)
    assert got.previous_start == start - timedelta(days=30)
    # the same dates a year earlier: 1 Feb to 1 Mar 2027 has no 29th, so 29 days
    assert got.last_year_start == date(2027, 2, 1) and got.last_year_end == date(2027, 3, 2)
    assert got.last_year is not None and got.last_year.used == pytest.approx(29 * 24)
    # nothing stored a year earlier: "no data", not zero
    short = [r for r in rows if r.start >= datetime(2028, 1, 1, tzinfo=UTC)]
    assert comparison(short, PACIFIC, start, end).last_year is None


def test_time_of_use_breakdown() -> None:
    rows = _hourly(date(2026, 6, 1), date(2026, 6, 10), cost=0.1)
    tagged = [r._replace(tou=1 if r.start.astimezone(PACIFIC).hour >= 16 else 2,
                         cost=0.4 if r.start.astimezone(PACIFIC).hour >= 16 else 0.1)
              for r in rows]  # fmt: skip
    shares = tou_breakdown(tagged, PACIFIC, date(2026, 6, 1), date(2026, 6, 11))
    assert [s.tou for s in shares] == [2, 1]
    assert shares[0].energy == pytest.approx(160) and shares[1].energy == pytest.approx(80)
    assert sum(s.share for s in shares) == pytest.approx(1)
    assert shares[1].cost == pytest.approx(80 * 0.4)
    assert tou_breakdown(rows, PACIFIC, date(2026, 6, 1), date(2026, 6, 11)) == []


def test_bills_from_usage_summaries() -> None:
    doc = parse(FIXTURES / "gba_demo_electric_monthly.xml")
    summaries = [u for up in doc.usage_points for u in up.usage_summaries]
    (bill,) = bills(summaries + summaries)  # a resent period counts once
    assert bill.amount == pytest.approx(388.82) and bill.currency == "USD"
    assert bill.consumption == pytest.approx(4702.205) and bill.unit == "kWh"
    assert bill.end is not None and bill.end - bill.start == 30 * 86400
    assert bills(summaries, cost_scale=-2)[0].amount == pytest.approx(388820)


def test_words_and_the_charts_accessible_name() -> None:
    assert flow_words("forward") == flow_words(1) == "use"
    assert flow_words("reverse") == flow_words(19) == "export"
    rows = _hourly(date(2026, 3, 1), date(2026, 3, 10))
    periods = period_totals(rows, PACIFIC, "day", date(2026, 3, 1), date(2026, 3, 11))
    text = describe_periods(periods, "day")
    assert text.startswith("Daily use, 1 Mar 2026 to 10 Mar 2026: 239.0 kWh in total")
    assert "lowest 23.0 kWh (8 Mar 2026)" in text and "Exported" not in text
    empty = period_totals([], PACIFIC, "day", date(2026, 3, 1), date(2026, 3, 2))
    assert describe_periods(empty, "day") == "No readings in this range."
    svg = accessible_svg(render(period_chart(periods, "day", size="phone"), "svg"),
                         "Daily use at 1 <Main> St", text)  # fmt: skip
    head = svg[: svg.index(">") + 1]
    assert head.startswith("<svg") and 'role="img"' in head and 'aria-label="Daily use' in head
    assert "<title>Daily use at 1 &lt;Main&gt; St</title>" in svg
    assert 'width="259.2pt"' in head  # the phone drawing: 3.6 in
    with pytest.raises(ValueError):
        period_chart(empty, "day", size="phone")


def test_customer_facts_from_a_customer_feed() -> None:
    facts = customer_facts(parse(FIXTURES / "pge_retailcustomer_feed.xml"))
    assert facts == CustomerFacts("Acme Industries", "140 Han Rd, King City CA 95101")
    assert customer_facts(parse(FIXTURES / "gba_demo_electric_monthly.xml")) == CustomerFacts()
