"""ESPI REST URL templates (ESPI_NOTES 1.2) and query parameters (1.3, SECURITY R26).

Ids are opaque strings: PG&E uses numbers, base64 (``=``, ``+``, ``/``), GUIDs, epoch seconds
and comma-grouped numbers. A path segment keeps every RFC 3986 ``pchar`` as is (so ``=`` and
``,`` appear exactly as the custodian wrote them) and percent-encodes the rest, ``/`` and
``%`` included, so an id can never add a segment or smuggle a query.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

__all__ = [
    "Paths",
    "format_time",
    "segment",
    "split_windows",
    "to_datetime",
]

# RFC 3986 pchar = unreserved / sub-delims / ":" / "@" (quote() keeps unreserved anyway).
_PCHAR_SAFE = "!$&'()*+,;=:@"

TimeLike = datetime | date | int | float


def segment(resource_id: str) -> str:
    """One path segment for an opaque id; refuses ids that would change the path's shape."""
    if not isinstance(resource_id, str):
        resource_id = str(resource_id)
    if resource_id in ("", ".", "..") or any(ord(c) < 0x20 or c == "\x7f" for c in resource_id):
        raise ValueError(f"not a usable ESPI resource id: {resource_id!r}")
    return quote(resource_id, safe=_PCHAR_SAFE)


def to_datetime(value: TimeLike) -> datetime:
    """A timezone-aware UTC datetime from a datetime, a date (UTC midnight) or epoch seconds.

    Naive datetimes are refused: a window boundary off by the local offset is a silent gap."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("use a timezone-aware datetime for ESPI time bounds")
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a datetime, date or epoch seconds, not {type(value).__name__}")
    return datetime.fromtimestamp(int(value), UTC)


def format_time(value: TimeLike, fmt: Literal["epoch", "datetime"]) -> str:
    """``published-min/max`` text: epoch seconds (PG&E) or ``YYYY-MM-DDThh:mm:ssZ`` (R26)."""
    when = to_datetime(value)
    if fmt == "epoch":
        return str(int(when.timestamp()))
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def split_windows(start: TimeLike, end: TimeLike, days: int) -> Iterator[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive windows of at most ``days`` days (ESPI has no
    cursor paging; custodians cap one request's history, PG&E at about a month)."""
    lo, hi = to_datetime(start), to_datetime(end)
    if lo > hi:
        raise ValueError("the window starts after it ends")
    if days < 1:
        raise ValueError("window_days must be at least 1")
    step = timedelta(days=days)
    while lo < hi:
        nxt = min(lo + step, hi)
        yield lo, nxt
        lo = nxt


class Paths:
    """Absolute URLs of the resources under one resource endpoint (``.../espi/1_1/resource``)."""

    __slots__ = ("base",)

    def __init__(self, resource_url: str):
        self.base = resource_url.rstrip("/")

    def url(self, *parts: str) -> str:
        """``base/part/...``; each part is a literal name or an already-encoded segment."""
        return "/".join((self.base, *parts))

    # -- Batch ------------------------------------------------------------------------------

    def batch_subscription(self, sub: str) -> str:
        return self.url("Batch", "Subscription", segment(sub))

    def batch_usage_points(self, sub: str) -> str:
        return self.url("Batch", "Subscription", segment(sub), "UsagePoint")

    def batch_usage_point(self, sub: str, up: str) -> str:
        return self.url("Batch", "Subscription", segment(sub), "UsagePoint", segment(up))

    def batch_bulk(self, bulk: str) -> str:
        return self.url("Batch", "Bulk", segment(bulk))

    def batch_retail_customer(self, rc: str) -> str:
        return self.url("Batch", "RetailCustomer", segment(rc))

    # -- Subscription sub-resources -----------------------------------------------------------

    def usage_points(self, sub: str, up: str | None = None) -> str:
        base = self.url("Subscription", segment(sub), "UsagePoint")
        return base if up is None else f"{base}/{segment(up)}"

    def meter_readings(self, sub: str, up: str, mr: str | None = None) -> str:
        base = f"{self.usage_points(sub, up)}/MeterReading"
        return base if mr is None else f"{base}/{segment(mr)}"

    def interval_blocks(self, sub: str, up: str, mr: str, ib: str | None = None) -> str:
        base = f"{self.meter_readings(sub, up, mr)}/IntervalBlock"
        return base if ib is None else f"{base}/{segment(ib)}"

    def usage_summaries(self, sub: str, up: str, us: str | None = None) -> str:
        base = f"{self.usage_points(sub, up)}/UsageSummary"
        return base if us is None else f"{base}/{segment(us)}"

    # -- shared and administrative --------------------------------------------------------------

    def reading_types(self, rt: str | None = None) -> str:
        return self.url("ReadingType") if rt is None else self.url("ReadingType", segment(rt))

    def local_time_parameters(self, ltp: str | None = None) -> str:
        base = self.url("LocalTimeParameters")
        return base if ltp is None else f"{base}/{segment(ltp)}"

    def authorizations(self, auth: str | None = None) -> str:
        base = self.url("Authorization")
        return base if auth is None else f"{base}/{segment(auth)}"

    def application_information(self, app: str) -> str:
        return self.url("ApplicationInformation", segment(app))

    def read_service_status(self) -> str:
        return self.url("ReadServiceStatus")

    def same_origin(self, url: str) -> bool:
        """Whether ``url`` lies under this resource endpoint: same scheme, host and port, a
        path below the endpoint's and no dot segments (notified URIs, STYLE 4)."""
        mine, theirs = urlsplit(self.base), urlsplit(url)
        if (
            (theirs.scheme, theirs.hostname, theirs.port)
            != (
                mine.scheme,
                mine.hostname,
                mine.port,
            )
            or theirs.username is not None
            or theirs.password is not None
        ):
            return False
        path = theirs.path
        if any(seg in (".", "..") for seg in unquote(path).split("/")):
            return False
        return path == mine.path or path.startswith(mine.path.rstrip("/") + "/")
