"""Notified URIs: validated against the configured resource endpoint and rebuilt from it.

A BatchList is unsigned, so each URI in it is attacker-controlled text until proven
otherwise (SECURITY R41). A URI is accepted only when its scheme, host and port equal the
configured resource endpoint's, it has no userinfo, fragment, backslash, control or
non-ASCII character, its path lies under the endpoint and matches an allowlisted ESPI
pattern with ids free of encoded ``/``, ``\\`` and dot segments, and its query keys are
allowlisted with well-formed values: a time (``published-min`` and friends) must be a real
instant between 1970 and 2100, not just shaped like one, and a ``-min`` may not follow its
``-max``. The URL we fetch is then *built* from the configured
base and the validated parts, never taken from the notification; the rebuilt text is also
the job's de-duplication key (R45). Nothing here does I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from .._errors import RejectedURI
from ..espi import Paths, segment

__all__ = ["NotifiedURI", "RejectedURI", "validate_notified_uri"]

MAX_URI = 2048  # R39
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")
_ID = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]{1,256}")
_DATETIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)?"
_TIME = re.compile(rf"\d{{1,12}}|{_DATETIME}")
_QUERY: dict[str, re.Pattern[str]] = {
    "correlationID": re.compile(r"[A-Za-z0-9\-._~]{1,128}"),
    "published-min": _TIME,
    "published-max": _TIME,
    "updated-min": _TIME,
    "updated-max": _TIME,
}
#: Notified times must fall in this range (epoch seconds): a window outside it is no data
#: a custodian holds, only a way to make our follow-up GET (and its job) absurd.
EARLIEST, LATEST = 0, int(datetime(2100, 1, 1, tzinfo=UTC).timestamp())
_DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True, slots=True)
class NotifiedURI:
    """A validated notification target: what it names and the URL rebuilt from config."""

    kind: str  # "subscription" or "bulk"
    resource_id: str  # the subscription or bulk id
    url: str  # configured base + validated parts: the only URL ever fetched


def _port(scheme: str, port: int | None) -> int | None:
    return port if port is not None else _DEFAULT_PORTS.get(scheme)


def _segments(path: str, prefix: str) -> list[str]:
    """The decoded path segments below ``prefix``; refuses anything that could re-shape the
    path after decoding (encoded ``/`` or ``\\``, dot segments, empty segments)."""
    if not path.startswith(prefix + "/"):
        raise RejectedURI("the path is not under the resource endpoint")
    out = []
    for raw in path[len(prefix) + 1 :].split("/"):
        try:
            seg = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise RejectedURI("a path segment is not UTF-8") from None
        if not _ID.fullmatch(seg) or seg in (".", ".."):
            raise RejectedURI("a path segment is empty, a dot segment or has bad characters")
        out.append(seg)
    return out


def _instant(key: str, value: str) -> int:
    """``value`` (epoch seconds or an ISO 8601 date-time, shape already checked) as epoch
    seconds; a date or time that does not exist (``9999-99-99T99:99:99Z``) or one outside
    1970-2100 is refused."""
    if value.isdigit():
        seconds = int(value)
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise RejectedURI(f"the query parameter {key} is not a real date and time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = int(moment.timestamp())
    if not EARLIEST <= seconds <= LATEST:
        raise RejectedURI(f"the query parameter {key} is outside 1970-2100")
    return seconds


def _query(query: str) -> list[tuple[str, str]]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise RejectedURI("the query is malformed") from None
    seen: set[str] = set()
    times: dict[str, int] = {}
    for key, value in pairs:
        rule = _QUERY.get(key)
        if rule is None:
            raise RejectedURI("the query has a parameter that is not allowed")
        if key in seen:
            raise RejectedURI("the query repeats a parameter")
        if not rule.fullmatch(value):
            raise RejectedURI(f"the query parameter {key} has a malformed value")
        if rule is _TIME:
            times[key] = _instant(key, value)
        seen.add(key)
    for low, high in (("published-min", "published-max"), ("updated-min", "updated-max")):
        if low in times and high in times and times[low] > times[high]:
            raise RejectedURI(f"the query parameter {low} is after {high}")
    return sorted(pairs)


def validate_notified_uri(uri: str, resource_url: str) -> NotifiedURI:
    """Validate ``uri`` from a BatchList against the configured ``resource_url`` and rebuild
    it (R41); raises :class:`RejectedURI` with a reason fit for a log line."""
    if len(uri) > MAX_URI:
        raise RejectedURI("the URI is too long")
    if not _PRINTABLE_ASCII.fullmatch(uri):
        raise RejectedURI("the URI has spaces, control or non-ASCII characters")
    if "\\" in uri or "#" in uri:
        raise RejectedURI("the URI has a backslash or a fragment")
    base = urlsplit(resource_url.rstrip("/"))
    try:
        got = urlsplit(uri)
        got_port, got_host = got.port, got.hostname
    except ValueError:
        raise RejectedURI("the URI's authority is malformed") from None
    if got.scheme != base.scheme:
        raise RejectedURI(f"the scheme must be {base.scheme}")
    if "@" in got.netloc or got.username is not None:
        raise RejectedURI("the URI has userinfo")
    if (got_host or "") != (base.hostname or "").lower() or _port(got.scheme, got_port) != _port(
        base.scheme, base.port
    ):
        raise RejectedURI("the host or port is not the resource endpoint's")
    segs = _segments(got.path, base.path)
    pairs = _query(got.query)
    match segs:
        case ["Batch", "Subscription", sub]:
            kind, rid = "subscription", sub
        case ["Batch", "Bulk", bulk]:
            kind, rid = "bulk", bulk
        case _:
            raise RejectedURI("the path is not a notifiable ESPI resource")
    url = Paths(resource_url).url(*segs[:2], segment(rid))
    if pairs:
        url += "?" + urlencode(pairs)
    return NotifiedURI(kind=kind, resource_id=rid, url=url)
