"""LocalTimeParameters decoded into a real time zone (ESPI DstRuleType, ESPI_NOTES 3.4).

A DST rule is 32 bits written as 8 hex digits: month (bits 28-31), operator (25-27), day of
month (20-24), day of week (17-19, 1 = Monday), hour (12-16), seconds (0-11). Real files
bend this: Enbridge writes the absolute transition instant as epoch seconds in hex, SCE
files truncate rules to 4 digits, some files leave them empty. Epoch values are turned back
into the rule they express; anything else undecodable is reported in ``problems`` and the
standard offset is used, never a guess. When the decoded rules are the US rules (since
2007) the matching IANA zone is used, so the tz database does the arithmetic.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from ._bounds import TIME_MAX

__all__ = ["DstRule", "RuleTimeZone", "TimeZoneInfo", "decode_time_zone", "parse_dst_rule"]

_DISABLED = 0xFFFFFFFF
#: Largest |dstOffset| taken (real ones are 30 min to 2 h): with |tzOffset| <= 14 h the
#: local offset stays far inside the +-24 h a tzinfo may return.
_MAX_DST_OFFSET = 4 * 3600


@dataclass(frozen=True, slots=True)
class DstRule:
    """A decoded ESPI DST rule; ``transition(year)`` gives the local wall-clock instant."""

    month: int
    operator: int
    day_of_month: int
    day_of_week: int  # 1 = Monday ... 7 = Sunday, 0 = n/a
    hour: int
    seconds: int

    def transition(self, year: int) -> datetime:
        """The naive local date-time this rule names in ``year``."""
        day = self._day(year)
        return datetime(year, self.month, day) + timedelta(hours=self.hour, seconds=self.seconds)

    def _day(self, year: int) -> int:
        ndays = calendar.monthrange(year, self.month)[1]
        if self.operator == 0:
            return self.day_of_month
        wd = self.day_of_week - 1  # Python weekday: Monday = 0
        if self.operator == 1:  # first given weekday on or after day_of_month
            first = max(self.day_of_month, 1)
            return first + (wd - calendar.weekday(year, self.month, first)) % 7
        if self.operator == 7:  # last occurrence in the month
            return ndays - (calendar.weekday(year, self.month, ndays) - wd) % 7
        first = 1 + (wd - calendar.weekday(year, self.month, 1)) % 7
        day = first + 7 * (self.operator - 2)
        if day > ndays:
            raise ValueError("occurrence past the end of the month")
        return day

    def describe(self) -> str:
        names = ["", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        month = calendar.month_abbr[self.month]
        at = f"{self.hour:02d}:{self.seconds // 60:02d}"
        if self.operator == 0:
            return f"{month} {self.day_of_month} {at}"
        if self.operator == 1:
            return f"first {names[self.day_of_week]} on/after {month} {self.day_of_month} {at}"
        nth = (
            "last" if self.operator == 7 else ["1st", "2nd", "3rd", "4th", "5th"][self.operator - 2]
        )
        return f"{nth} {names[self.day_of_week]} of {month} {at}"


_US_START = DstRule(3, 3, 0, 7, 2, 0)
_US_END = DstRule(11, 2, 0, 7, 2, 0)
# Standard offset -> IANA zone, for zones that follow the US rules (and Canada's, the same).
_US_ZONES = {
    -12600: "America/St_Johns",
    -14400: "America/Halifax",
    -18000: "America/New_York",
    -21600: "America/Chicago",
    -25200: "America/Denver",
    -28800: "America/Los_Angeles",
    -32400: "America/Anchorage",
}
_NO_DST_ZONES = {-25200: "America/Phoenix", -36000: "Pacific/Honolulu"}


def parse_dst_rule(text: str | None, tz_offset: int = 0) -> tuple[DstRule | None, str | None]:
    """Decode one rule; returns ``(rule, None)``, ``(None, None)`` when DST is disabled, or
    ``(None, problem)`` when the text cannot be decoded."""
    raw = (text or "").strip()
    if not raw:
        return None, "empty DST rule"
    try:
        v = int(raw, 16)
    except ValueError:
        return None, f"DST rule {raw[:40]!r} is not hexadecimal"
    if v == _DISABLED:
        return None, None
    if len(raw) == 8:
        rule = DstRule(
            v >> 28 & 0xF, v >> 25 & 7, v >> 20 & 0x1F, v >> 17 & 7, v >> 12 & 0x1F, v & 0xFFF
        )
        if _valid(rule):
            return rule, None
    if v > 10**9:  # an absolute instant in epoch seconds (Enbridge)
        if v >= TIME_MAX:  # not an instant datetime can hold (issue 9: OverflowError)
            return None, f"DST rule {raw[:40]!r} cannot be decoded (no rule, no plausible instant)"
        return _rule_from_instant(v, tz_offset), None
    return None, f"DST rule {raw[:40]!r} cannot be decoded"


def _valid(rule: DstRule) -> bool:
    if not 1 <= rule.month <= 12 or rule.hour > 23 or rule.seconds > 3599:
        return False
    if rule.operator == 0:
        return 1 <= rule.day_of_month <= 31
    # Occurrence rules leave the day of month at 0; a value there means the bits are
    # something else (an epoch instant, in Enbridge's files).
    if rule.operator >= 2 and rule.day_of_month != 0:
        return False
    if not 1 <= rule.day_of_week <= 7:
        return False
    try:
        rule.transition(2020)
    except ValueError:
        return False
    return True


def _rule_from_instant(epoch: int, tz_offset: int) -> DstRule:
    local = datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None) + timedelta(seconds=tz_offset)
    ndays = calendar.monthrange(local.year, local.month)[1]
    nth = (local.day - 1) // 7
    operator = 7 if local.day + 7 > ndays and nth >= 3 else nth + 2
    seconds = local.minute * 60 + local.second
    return DstRule(local.month, operator, 0, local.isoweekday(), local.hour, seconds)


class RuleTimeZone(tzinfo):
    """A tzinfo that applies ESPI rules directly (for rules no IANA zone matches)."""

    def __init__(self, std_offset: int, dst_offset: int, start: DstRule, end: DstRule):
        self._std = timedelta(seconds=std_offset)
        self._dst = timedelta(seconds=dst_offset)
        self._start, self._end = start, end

    def _is_dst_std(self, std_local: datetime) -> bool:
        start = self._start.transition(std_local.year)
        end = self._end.transition(std_local.year) - self._dst  # end rule is in daylight time
        if start <= end:
            return start <= std_local < end
        return std_local >= start or std_local < end

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return self._std + self.dst(dt)

    def dst(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return timedelta(0)
        naive = dt.replace(tzinfo=None)
        return (
            self._dst
            if self._is_dst_std(naive - (self._dst if dt.fold else timedelta(0)))
            else timedelta(0)
        )

    def tzname(self, dt: datetime | None) -> str:
        total = int(self.utcoffset(dt).total_seconds())
        sign = "+" if total >= 0 else "-"
        return f"UTC{sign}{abs(total) // 3600:02d}:{abs(total) % 3600 // 60:02d}"

    def fromutc(self, dt: datetime) -> datetime:
        std_local = dt.replace(tzinfo=None) + self._std
        offset = self._dst if self._is_dst_std(std_local) else timedelta(0)
        return (std_local + offset).replace(tzinfo=self)

    def __repr__(self) -> str:
        rules = f"{self._start.describe()} -> {self._end.describe()}"
        return f"RuleTimeZone(std={self._std}, dst={self._dst}, {rules})"


@dataclass(frozen=True, slots=True)
class TimeZoneInfo:
    """The outcome of decoding LocalTimeParameters."""

    tzinfo: tzinfo
    iana: str | None
    dst_start: DstRule | None
    dst_end: DstRule | None
    problems: tuple[str, ...] = ()


def decode_time_zone(
    *,
    tz_offset: int | None,
    dst_offset: int | None,
    dst_start_rule: str | None,
    dst_end_rule: str | None,
) -> TimeZoneInfo:
    """Decode LocalTimeParameters fields into a :class:`TimeZoneInfo` (never raises)."""
    problems: list[str] = []
    if dst_offset is not None and not -_MAX_DST_OFFSET <= dst_offset <= _MAX_DST_OFFSET:
        problems.append(f"dstOffset {dst_offset} is out of range; DST ignored")
        dst_offset = None
    std = tz_offset or 0
    if tz_offset is None:
        problems.append("tzOffset missing; assuming UTC")
    elif not -14 * 3600 <= std <= 14 * 3600:
        problems.append(f"tzOffset {std} is out of range; assuming UTC")
        std = 0
    start, p1 = parse_dst_rule(dst_start_rule, std)
    end, p2 = parse_dst_rule(dst_end_rule, std)
    problems += [p for p in (p1, p2) if p]
    fixed = timezone(timedelta(seconds=std))
    if start is None or end is None or not dst_offset:
        if p1 is None and p2 is None and std in _NO_DST_ZONES:
            key = _NO_DST_ZONES[std]
            return TimeZoneInfo(ZoneInfo(key), key, None, None, tuple(problems))
        return TimeZoneInfo(fixed, None, start, end, tuple(problems))
    if std == 0 and start is not None:
        problems.append("tzOffset is 0 but DST rules are given; the offset is probably missing")
    if start == _US_START and end == _US_END and dst_offset == 3600 and std in _US_ZONES:
        key = _US_ZONES[std]
        return TimeZoneInfo(ZoneInfo(key), key, start, end, tuple(problems))
    return TimeZoneInfo(
        RuleTimeZone(std, dst_offset, start, end), None, start, end, tuple(problems)
    )
