"""Date-sensitive pure logic under a frozen clock, on the dates that bite (issue 13.7).

Each test freezes the wall clock with ``time_machine.travel(..., tick=False)`` (in-process:
``time.time``, ``datetime.now``; no LD_PRELOAD) at one of :data:`tests.conftest.BITING` —
US DST changes, 29 February, a month's last day, New Year's Eve in UTC and in Pacific
time — and checks what the code computes from "now": date windows and their
``published-min/max`` text, the sync planner's catch-up from a frozen now, the web app's
first-pull window, PG&E's daily quota reset at 17:00 Pacific, daily totals in local time.

Expected values come from the calendar (``calendar.timegm``, ordinal days), from
``zoneinfo`` or are written out by hand, never by running the code under test again. The
clock is frozen only around pure code and SQLite: no sockets, no simulator, no threads.
"""

from __future__ import annotations

import calendar
import dataclasses
import time
from collections.abc import Coroutine, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import insert, select

from greenbutton import QuotaExhaustedError
from greenbutton.analysis._summary import SeriesValues, daily_totals
from greenbutton.client._ratelimit import SharedRateLimiter, profile_quotas
from greenbutton.espi import Paths, format_time, split_windows
from greenbutton.espi._identity import authorization_key
from greenbutton.models._profile import PGE, UtilityProfile
from greenbutton.storage import DEFAULT_HISTORY_DAYS, Store, sync, window_uri
from greenbutton.storage._schema import authorizations, ingest_jobs
from greenbutton.storage._sync import _without_max
from greenbutton.web._app import _Web
from tests.conftest import BITING

PACIFIC = ZoneInfo("America/Los_Angeles")
DAY = 86400
#: PG&E (epoch seconds, 28-day windows) and a custodian using the other published format.
PROFILES = [
    PGE,
    dataclasses.replace(PGE, name="generic", published_format="datetime", window_days=30),
]


def _id(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%MZ")


def _epoch(when: datetime) -> int:
    """Epoch seconds from the UTC calendar (not ``datetime.timestamp``)."""
    return calendar.timegm(when.astimezone(UTC).utctimetuple())


def _text(epoch: int) -> str:
    """The ESPI datetime form of epoch seconds, from ``time.gmtime``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _published(fmt: str, epoch: int) -> str:
    return str(epoch) if fmt == "epoch" else _text(epoch)


def _bounds(uri: str) -> tuple[int, int]:
    """A job URI's ``published-min/max`` as epoch seconds, whichever format it uses."""
    query = parse_qs(urlsplit(uri).query)

    def one(name: str) -> int:
        (value,) = query[name]
        if value.isdigit():
            return int(value)
        return calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))

    return one("published-min"), one("published-max")


def _local_day_hours(day: date, tz: ZoneInfo = PACIFIC) -> float:
    """Hours from one local midnight to the next, by zoneinfo."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return (_epoch(end) - _epoch(start)) / 3600


@pytest.fixture(params=BITING, ids=_id)
def frozen(request: pytest.FixtureRequest) -> Iterator[datetime]:
    """The wall clock stopped at one biting instant for the test's duration."""
    with time_machine.travel(request.param, tick=False):
        assert datetime.now(UTC) == request.param and time.time() == _epoch(request.param)
        yield request.param


# --- split_windows and format_time ---------------------------------------------------------


@pytest.mark.parametrize("days", [1, 28, 30])
def test_a_year_back_from_now_splits_into_exact_utc_windows(frozen: datetime, days: int) -> None:
    """The planner's shape (``DEFAULT_HISTORY_DAYS`` back to now, ``window_days`` each):
    windows are whole multiples of 24 h in UTC, DST changes and month ends included."""
    now = datetime.now(UTC)
    windows = list(split_windows(now - timedelta(days=365), now, days))
    lo, hi = _epoch(frozen) - 365 * DAY, _epoch(frozen)
    step = days * DAY
    expected = [(s, min(s + step, hi)) for s in range(lo, hi, step)]
    assert [(_epoch(a), _epoch(b)) for a, b in windows] == expected
    assert len(windows) == -(-365 // days)
    assert all(a.tzinfo is UTC and b.tzinfo is UTC for a, b in windows)


def test_windows_between_local_midnights_of_dst_days() -> None:
    """A local day is 23 or 25 hours on a DST change: one-day windows are at most 24 h."""
    spring = list(
        split_windows(datetime(2026, 3, 8, tzinfo=PACIFIC), datetime(2026, 3, 9, tzinfo=PACIFIC), 1)
    )
    # 00:00 PST = 08:00 UTC; the next midnight is PDT (07:00 UTC): one window of 23 h.
    assert [(_text(_epoch(a)), _text(_epoch(b))) for a, b in spring] == [
        ("2026-03-08T08:00:00Z", "2026-03-09T07:00:00Z")
    ]
    fall = list(
        split_windows(
            datetime(2026, 11, 1, tzinfo=PACIFIC), datetime(2026, 11, 2, tzinfo=PACIFIC), 1
        )
    )
    # 00:00 PDT = 07:00 UTC to 00:00 PST = 08:00 UTC: 25 h, so 24 h then the hour left.
    assert [(_text(_epoch(a)), _text(_epoch(b))) for a, b in fall] == [
        ("2026-11-01T07:00:00Z", "2026-11-02T07:00:00Z"),
        ("2026-11-02T07:00:00Z", "2026-11-02T08:00:00Z"),
    ]


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (date(2028, 2, 28), date(2028, 3, 1), ["2028-02-28", "2028-02-29"]),
        (date(2027, 2, 28), date(2027, 3, 1), ["2027-02-28"]),
        (date(2026, 1, 31), date(2026, 2, 1), ["2026-01-31"]),
        (date(2026, 12, 31), date(2027, 1, 1), ["2026-12-31"]),
        (date(2026, 4, 29), date(2026, 5, 2), ["2026-04-29", "2026-04-30", "2026-05-01"]),
    ],
)
def test_date_bounds_are_utc_midnights_across_month_ends(
    start: date, end: date, days: list[str]
) -> None:
    windows = list(split_windows(start, end, 1))
    assert [_text(_epoch(a))[:10] for a, _ in windows] == days
    assert all(_epoch(b) - _epoch(a) == DAY for a, b in windows)


def test_published_text_of_now_in_both_formats(frozen: datetime) -> None:
    now = datetime.now(UTC)
    y, mo, d, h, mi, s = frozen.utctimetuple()[:6]
    assert format_time(now, "datetime") == f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z"
    assert format_time(now, "epoch") == str(_epoch(frozen))
    # The same instant written in Pacific time publishes the same text (UTC, never local).
    local = now.astimezone(PACIFIC)
    assert format_time(local, "datetime") == format_time(now, "datetime")
    assert format_time(time.time(), "epoch") == str(_epoch(frozen))


@pytest.mark.parametrize(
    ("local", "text"),
    [
        # 01:15 happens twice on 1 November 2026: PDT (UTC-7), then PST (UTC-8).
        (datetime(2026, 11, 1, 1, 15, tzinfo=PACIFIC), "2026-11-01T08:15:00Z"),
        (datetime(2026, 11, 1, 1, 15, fold=1, tzinfo=PACIFIC), "2026-11-01T09:15:00Z"),
        (datetime(2026, 3, 8, 3, 0, tzinfo=PACIFIC), "2026-03-08T10:00:00Z"),
        (datetime(2026, 3, 8, 1, 59, tzinfo=PACIFIC), "2026-03-08T09:59:00Z"),
        # Still New Year's Eve in California, already 2027 in UTC.
        (datetime(2026, 12, 31, 23, 59, tzinfo=PACIFIC), "2027-01-01T07:59:00Z"),
        (datetime(2028, 2, 29, 23, 0, tzinfo=PACIFIC), "2028-03-01T07:00:00Z"),
    ],
)
def test_published_text_of_local_times_on_biting_days(local: datetime, text: str) -> None:
    assert format_time(local, "datetime") == text
    assert format_time(local, "epoch") == str(
        calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    )


@pytest.mark.parametrize(
    ("when", "text"),
    [(date(2028, 2, 29), "2028-02-29T00:00:00Z"), (date(2026, 12, 31), "2026-12-31T00:00:00Z")],
)
def test_published_text_of_dates(when: date, text: str) -> None:
    assert format_time(when, "datetime") == text
    assert format_time(when, "epoch") == str(calendar.timegm((*when.timetuple()[:3], 0, 0, 0)))


# --- job URIs and the sync planner ------------------------------------------------------


def _client(profile: UtilityProfile, listing: Any = None) -> Any:
    """What the planners read of a client: its profile, paths and a usage point listing."""
    return SimpleNamespace(
        profile=profile,
        paths=Paths(profile.resource_url),
        usage_points=lambda key: listing,
    )


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.published_format)
def test_window_uri_of_now_and_without_its_max(frozen: datetime, profile: UtilityProfile) -> None:
    now = datetime.now(UTC)
    lo = now - timedelta(days=profile.window_days)
    uri = window_uri(_client(profile), "SUB1", "UP1", lo, now)
    fmt = profile.published_format
    hi_s = _epoch(frozen)
    lo_s = hi_s - profile.window_days * DAY

    def enc(epoch: int) -> str:
        return _published(fmt, epoch).replace(":", "%3A")

    base = f"{profile.resource_url}/Batch/Subscription/SUB1/UsagePoint/UP1"
    assert uri == f"{base}?published-min={enc(lo_s)}&published-max={enc(hi_s)}"
    assert _without_max(uri) == f"{base}?published-min={enc(lo_s)}"


#: 365 days back from two instants, by hand: 2027 has no 29 February, 2028 does.
FLOORS = {
    datetime(2028, 2, 29, 18, 0, tzinfo=UTC): "2027-03-01T18:00:00Z",
    datetime(2027, 1, 1, 7, 59, tzinfo=UTC): "2026-01-01T07:59:00Z",
    datetime(2026, 3, 8, 10, 30, tzinfo=UTC): "2025-03-08T10:30:00Z",
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'gb.db'}", data_dir=tmp_path)
    try:
        yield s
    finally:
        s.engine.dispose()


def _grant(store: Store, profile: UtilityProfile, sub: str = "SUB1") -> tuple[int, str]:
    """A stored, active customer grant of ``profile``'s utility (no token needed to plan)."""
    key = authorization_key(profile.name, sub)
    with store.engine.begin() as conn:
        auth_id = conn.execute(
            insert(authorizations)
            .values(
                key=key,
                kind="access",
                token_type="Bearer",  # noqa: S106 - a token type, not a secret
                access_token_enc=b"not a token",
                status="active",
                updated_at=0.0,
                utility=profile.name,
                subscription=sub,
            )
            .returning(authorizations.c.id)
        ).scalar_one()
    return int(auth_id), key


def _job_uris(store: Store) -> list[str]:
    with store.connect() as conn:
        rows = conn.execute(select(ingest_jobs.c.resource_uri).order_by(ingest_jobs.c.id))
        return [str(u) for (u,) in rows]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.published_format)
def test_sync_plans_the_default_history_back_from_a_frozen_now(
    frozen: datetime, profile: UtilityProfile, store: Store
) -> None:
    """Nothing stored, no ``since``: catch-up windows from ``DEFAULT_HISTORY_DAYS`` before
    the frozen now up to it, ``window_days`` each, in the profile's published format."""
    _grant(store, profile)
    listing = SimpleNamespace(usage_points=[SimpleNamespace(id="UP1", href=None, atom_id=None)])
    report = sync(store, _client(profile, listing), enqueue_only=True)
    uris = _job_uris(store)
    assert report.planned == len(uris) == -(-DEFAULT_HISTORY_DAYS // profile.window_days)
    hi = _epoch(frozen)
    lo = hi - DEFAULT_HISTORY_DAYS * DAY
    step = profile.window_days * DAY
    assert [_bounds(u) for u in uris] == [(s, min(s + step, hi)) for s in range(lo, hi, step)]
    # The floor is the same UTC wall time, DEFAULT_HISTORY_DAYS calendar days earlier.
    back = date.fromordinal(frozen.date().toordinal() - DEFAULT_HISTORY_DAYS)
    assert _text(lo) == f"{back.isoformat()}T{frozen:%H:%M:%S}Z"
    if frozen in FLOORS:
        assert _text(lo) == FLOORS[frozen]
    fmt = profile.published_format
    assert f"published-min={_published(fmt, lo).replace(':', '%3A')}" in uris[0]
    assert uris[-1].endswith(f"published-max={_published(fmt, hi).replace(':', '%3A')}")


def test_sync_planned_twice_before_running_keeps_the_open_catch_up(store: Store) -> None:
    """Planning again an hour later (across the spring-forward hour) does not add a second
    last window with a later end: the open one is kept (``_without_max``)."""
    profile = PROFILES[1]
    _grant(store, profile)
    listing = SimpleNamespace(usage_points=[SimpleNamespace(id="UP1", href=None, atom_id=None)])
    since = datetime(2026, 2, 1, tzinfo=UTC)
    first_now = datetime(2026, 3, 8, 9, 30, tzinfo=UTC)  # 01:30 PST
    with time_machine.travel(first_now, tick=False) as traveller:
        first = sync(store, _client(profile, listing), since=since, enqueue_only=True)
        before = _job_uris(store)
        traveller.move_to(first_now + timedelta(hours=1))  # 03:30 PDT
        again = sync(store, _client(profile, listing), since=since, enqueue_only=True)
    # 1 Feb to 8 Mar 09:30 UTC is 35 days and 9.5 hours: one 30-day window and the rest.
    assert [(_text(lo), _text(hi)) for lo, hi in map(_bounds, before)] == [
        ("2026-02-01T00:00:00Z", "2026-03-03T00:00:00Z"),
        ("2026-03-03T00:00:00Z", "2026-03-08T09:30:00Z"),
    ]
    assert first.planned == again.planned == 2
    assert _job_uris(store) == before


# --- the web app's first pull -----------------------------------------------------------


def _drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (every await below is an immediate fake), with
    no event loop, so no loop clock or self-pipe socket runs under the frozen clock."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("the coroutine suspended: a fake awaited something real")


class _Immediate:
    """``anyio.to_thread.run_sync`` as a plain call (no worker thread)."""

    @staticmethod
    async def run_sync(func: Any, *args: Any) -> Any:
        return func(*args)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.published_format)
def test_first_pull_window_is_first_pull_days_back_from_the_hour(
    frozen: datetime, profile: UtilityProfile, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from greenbutton.web import _app

    monkeypatch.setattr(_app, "anyio", SimpleNamespace(to_thread=_Immediate))
    auth_id, key = _grant(store, profile)
    ran: list[Any] = []

    async def usage_points(_key: str) -> Any:
        return SimpleNamespace(usage_points=[SimpleNamespace(id="UP1")])

    async def arun(_client: Any, job: Any) -> None:
        ran.append(job)

    client = SimpleNamespace(
        profile=profile, paths=Paths(profile.resource_url), usage_points=usage_points
    )
    web = SimpleNamespace(
        config=SimpleNamespace(first_pull_days=30),
        client=client,
        store=store,
        namespace=profile.name,
        jobs=SimpleNamespace(arun=arun),
    )
    _drive(_Web.first_pull(web, key))  # type: ignore[arg-type]  # a stand-in for the app
    (job,) = ran
    assert job.authorization_id == auth_id and _job_uris(store) == [job.uri]
    hi = _epoch(frozen) // 3600 * 3600  # now, down to the hour
    assert _bounds(job.uri) == (hi - 30 * DAY, hi)
    assert f"published-max={_published(profile.published_format, hi).replace(':', '%3A')}" in (
        job.uri
    )


# --- PG&E's daily quota: 17:00 America/Los_Angeles --------------------------------------

#: The PG&E quota day holding each biting instant, by hand (PST = UTC-8, PDT = UTC-7).
QUOTA_DAYS = {
    # 03:30 PDT on 8 March: the day began 17:00 PST on the 7th and ends 17:00 PDT: 23 h.
    datetime(2026, 3, 8, 10, 30, tzinfo=UTC): ("2026-03-08T01:00:00Z", "2026-03-09T00:00:00Z"),
    # The second 01:15 (PST) of 1 November: 17:00 PDT on 31 October to 17:00 PST: 25 h.
    datetime(2026, 11, 1, 9, 15, tzinfo=UTC): ("2026-11-01T00:00:00Z", "2026-11-02T01:00:00Z"),
    datetime(2028, 2, 29, 18, 0, tzinfo=UTC): ("2028-02-29T01:00:00Z", "2028-03-01T01:00:00Z"),
    datetime(2026, 1, 31, 23, 45, tzinfo=UTC): ("2026-01-31T01:00:00Z", "2026-02-01T01:00:00Z"),
    datetime(2026, 12, 31, 23, 59, tzinfo=UTC): ("2026-12-31T01:00:00Z", "2027-01-01T01:00:00Z"),
    # 23:59 PST on New Year's Eve: since 17:00 that evening.
    datetime(2027, 1, 1, 7, 59, tzinfo=UTC): ("2027-01-01T01:00:00Z", "2027-01-02T01:00:00Z"),
    datetime(2026, 12, 3, 11, 34, tzinfo=UTC): ("2026-12-03T01:00:00Z", "2026-12-04T01:00:00Z"),
}


def _pge_day_quota() -> Any:
    (day,) = [q for q in profile_quotas(PGE) if q.period == "day"]
    return day


def test_every_biting_instant_has_a_hand_computed_quota_day() -> None:
    assert set(QUOTA_DAYS) == set(BITING)


def test_pge_quota_day_holding_now(frozen: datetime) -> None:
    start, end = _pge_day_quota().day_window(time.time())
    assert (_text(start), _text(end)) == QUOTA_DAYS[frozen]
    for edge in (start, end):  # both ends are 17:00 on the Pacific wall clock
        local = datetime.fromtimestamp(edge, UTC).astimezone(PACIFIC)
        assert (local.hour, local.minute, local.second) == (17, 0, 0)
    assert start <= _epoch(frozen) < end


@pytest.mark.parametrize(
    ("reset", "hours"),
    [
        (datetime(2026, 3, 9, 0, 0, tzinfo=UTC), 23),  # 17:00 PDT, 8 March: a 23-h day ends
        (datetime(2026, 11, 2, 1, 0, tzinfo=UTC), 25),  # 17:00 PST, 1 November: 25 h
        (datetime(2027, 1, 1, 1, 0, tzinfo=UTC), 24),  # 17:00 PST, New Year's Eve
    ],
    ids=["spring-forward", "fall-back", "new-years-eve"],
)
def test_pge_daily_quota_resets_at_17_pacific(tmp_path: Path, reset: datetime, hours: int) -> None:
    """A used-up day quota refuses until 17:00 Pacific and counts afresh from then, on the
    days the clocks change too (the quota day ending at ``reset`` is ``hours`` long). The
    limiter reads the frozen wall clock itself (its default ``time.time``)."""
    quota = dataclasses.replace(_pge_day_quota(), limit=2)
    limiter = SharedRateLimiter(None, tmp_path / "rate", quotas=[quota])
    start = reset - timedelta(hours=hours)  # 17:00 Pacific the day before

    def used_up() -> float:
        limiter.acquire()
        limiter.acquire()
        return refusal()

    def refusal() -> float:
        with pytest.raises(QuotaExhaustedError) as info:
            limiter.acquire()
        assert info.value.retry_after is not None
        return info.value.retry_after

    with time_machine.travel(start - timedelta(seconds=1), tick=False) as traveller:
        assert used_up() == pytest.approx(1.0)  # the previous quota day ends in a second
        traveller.move_to(start)
        assert used_up() == pytest.approx(hours * 3600)  # a fresh day, 23, 24 or 25 h long
        traveller.move_to(reset - timedelta(seconds=1))
        assert refusal() == pytest.approx(1.0)
        traveller.move_to(reset)
        limiter.acquire()  # counted in the next day


# --- daily totals in local time ---------------------------------------------------------


def _hourly_values(first: datetime, last: datetime, tz: ZoneInfo = PACIFIC) -> SeriesValues:
    """1.0 per hour for every hour starting in [first, last)."""
    starts = list(range(_epoch(first), _epoch(last), 3600))
    return SeriesValues(
        starts=starts, durations=[3600] * len(starts), values=[1.0] * len(starts), unit="kWh", tz=tz
    )


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        (date(2026, 3, 7), {date(2026, 3, 7): 24, date(2026, 3, 8): 23, date(2026, 3, 9): 24}),
        (
            date(2026, 10, 31),
            {date(2026, 10, 31): 24, date(2026, 11, 1): 25, date(2026, 11, 2): 24},
        ),
        (date(2028, 2, 28), {date(2028, 2, 28): 24, date(2028, 2, 29): 24, date(2028, 3, 1): 24}),
        (
            date(2026, 12, 30),
            {date(2026, 12, 30): 24, date(2026, 12, 31): 24, date(2027, 1, 1): 24},
        ),
    ],
    ids=["spring-forward", "fall-back", "leap-day", "new-years-eve"],
)
def test_daily_totals_of_three_whole_local_days(first: date, expected: dict[date, int]) -> None:
    lo = datetime(first.year, first.month, first.day, tzinfo=PACIFIC)
    end = first + timedelta(days=3)
    hi = datetime(end.year, end.month, end.day, tzinfo=PACIFIC)
    totals = daily_totals(_hourly_values(lo, hi))
    assert {t.day: t.total for t in totals} == expected
    assert {t.day: t.day_hours for t in totals} == expected
    assert all(t.complete and t.covered_hours == t.day_hours for t in totals)


def test_new_years_eve_in_utc_and_in_pacific() -> None:
    """The hours 00:00-12:00 UTC on 1 January 2027 are split at local midnight: 08:00 UTC
    in California (PST), 00:00 UTC in UTC."""
    first, last = datetime(2026, 12, 31, 0, tzinfo=UTC), datetime(2027, 1, 1, 12, tzinfo=UTC)
    pacific = daily_totals(_hourly_values(first, last, PACIFIC))
    assert [(t.day, t.total) for t in pacific] == [
        (date(2026, 12, 30), 8),  # 16:00-23:00 PST on the 30th
        (date(2026, 12, 31), 24),
        (date(2027, 1, 1), 4),  # 00:00-03:00 PST
    ]
    utc = daily_totals(_hourly_values(first, last, ZoneInfo("UTC")))
    assert [(t.day, t.total, t.complete) for t in utc] == [
        (date(2026, 12, 31), 24, True),
        (date(2027, 1, 1), 12, False),
    ]


def test_daily_totals_of_the_30_days_ending_now(frozen: datetime) -> None:
    """What the account page charts: the 30 days of hourly readings before now (down to
    the hour). Inner local days are whole (23, 24 or 25 h, by zoneinfo); the first and
    last are partial, by as many hours as the window cuts off."""
    hi = _epoch(datetime.now(UTC)) // 3600 * 3600
    lo = hi - 30 * DAY
    starts = list(range(lo, hi, 3600))
    totals = daily_totals(
        SeriesValues(
            starts=starts,
            durations=[3600] * len(starts),
            values=[1.0] * len(starts),
            unit="kWh",
            tz=PACIFIC,
        )
    )
    first_day = datetime.fromtimestamp(lo, UTC).astimezone(PACIFIC).date()
    last_day = datetime.fromtimestamp(hi - 1, UTC).astimezone(PACIFIC).date()
    assert [t.day for t in totals] == [
        date.fromordinal(n) for n in range(first_day.toordinal(), last_day.toordinal() + 1)
    ]
    assert sum(t.total for t in totals) == 30 * 24
    for t in totals:
        assert t.day_hours == _local_day_hours(t.day)
        midnight = datetime(t.day.year, t.day.month, t.day.day, tzinfo=PACIFIC)
        nxt = t.day + timedelta(days=1)
        next_midnight = datetime(nxt.year, nxt.month, nxt.day, tzinfo=PACIFIC)
        inside = (min(hi, _epoch(next_midnight)) - max(lo, _epoch(midnight))) / 3600
        assert t.total == t.covered_hours == inside
        assert t.complete == (inside == t.day_hours)
    assert all(t.complete for t in totals[1:-1])


def test_planning_twice_without_since_keeps_the_open_catch_up(store: Store) -> None:
    """Nothing stored, no ``since``: the default floor follows the clock, so a second plan
    an hour later used to add a second full set of windows (each spending PG&E quota
    again). The earliest open window is where the history starts until data arrives."""
    profile = PROFILES[1]
    _grant(store, profile)
    listing = SimpleNamespace(usage_points=[SimpleNamespace(id="UP1", href=None, atom_id=None)])
    with time_machine.travel(datetime(2026, 3, 8, 9, 30, tzinfo=UTC), tick=False) as traveller:
        first = sync(store, _client(profile, listing), enqueue_only=True)
        traveller.move_to(datetime(2026, 3, 8, 10, 30, tzinfo=UTC))
        again = sync(store, _client(profile, listing), enqueue_only=True)
    assert first.planned == again.planned == 13
