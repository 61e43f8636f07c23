"""Atom entries -> flat records, and ESPI content elements -> typed resources.

A record keeps what linking needs (self/up/related hrefs, normalised) and the resource
built from the entry's content. Resource builders read children by local name within the
ESPI namespaces, so prefixes (``espi:``, ``ns0:``, default) never matter, and keep unknown
children rather than failing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from .._errors import ParseError
from ..models import (
    ApplicationInformation,
    Authorization,
    BatchList,
    CustomerResource,
    DateTimeInterval,
    GenericResource,
    LineItem,
    LocalTimeParameters,
    ReadingColumns,
    ReadingType,
    ServiceStatus,
    SummaryMeasurement,
    UsageSummary,
)
from ..models._bounds import (
    DURATION_MAX,
    INT16_MAX,
    INT16_MIN,
    MULTIPLIER_MAX,
    MULTIPLIER_MIN,
)
from ._blocks import read_block
from ._xml import ATOM, CUSTOMER, ESPI, Limits, check_subtree

__all__ = ["Record", "normalize_href", "read_entry", "read_resource_root"]

_A = f"{{{ATOM}}}"
_LINK, _CONTENT, _ID, _TITLE = _A + "link", _A + "content", _A + "id", _A + "title"
_PUBLISHED, _UPDATED = _A + "published", _A + "updated"
_ENDPOINT = re.compile(r"/espi/1_1/resource/")
_SLASHES = re.compile(r"/{2,}")


# A last path segment that cannot change how the rest of the href is read (no slash, query,
# fragment, scheme colon, whitespace or percent sign).
_SEGMENT = re.compile(r"[A-Za-z0-9_.=+~-]+")


def normalize_href(href: str | None) -> str | None:
    """Path of a link relative to the ESPI resource endpoint (ESPI_NOTES 3.5 step 1).

    Scheme, host, query and fragment are dropped, repeated slashes collapsed (the GBA
    sandbox writes ``org//DataCustodian``), and everything up to ``/espi/1_1/resource/``
    removed; other paths lose their leading slash.

    Every entry's self link is unique (``.../IntervalBlock/1546329600``) but its parent is
    shared: a plain last segment under an endpoint path is appended to the parent's
    normalised form (cached), which is what normalising the whole href gives.
    """
    if not href:
        return None
    href = href.strip()
    parent, _, last = href.rpartition("/")
    if (
        last
        and "/espi/1_1/resource/" in parent
        and "?" not in parent
        and "#" not in parent
        and _SEGMENT.fullmatch(last)
    ):
        base, matched = _normalize(parent)
        if matched and base is not None:
            return f"{base}/{last}"
    return _normalize(href)[0]


@functools.lru_cache(maxsize=4096)
def _normalize(href: str) -> tuple[str | None, bool]:
    """``normalize_href`` of a stripped href, and whether its path holds the endpoint."""
    try:
        raw_path = urlsplit(href).path
    except ValueError:  # "https://[dc.example/...": not a URL (fuzz, issue 9); read as a path
        raw_path = href.partition("#")[0].partition("?")[0]
    path = _SLASHES.sub("/", raw_path).rstrip("/")
    m = _ENDPOINT.search(path + "/") if "/espi/1_1/resource" in path else None
    if m:
        path = path[m.end() :] if m.end() <= len(path) else ""
    return path.lstrip("/") or None, m is not None


@dataclass(slots=True)
class Record:
    """One Atom entry (or a bare resource root) reduced to what linking needs."""

    index: int
    kind: str  # local name of the content element: UsagePoint, IntervalBlock ...
    namespace: str | None
    atom_id: str | None = None
    title: str | None = None
    self: str | None = None
    up: str | None = None
    related: list[str] = field(default_factory=list)
    published: datetime | None = None
    updated: datetime | None = None
    line: int | None = None
    resource: Any = None
    # IntervalBlock only: the interval and (when kept) the reading columns.
    interval: DateTimeInterval | None = None
    readings: ReadingColumns | None = None


def _local(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def _ns(el: etree._Element) -> str | None:
    tag = el.tag
    if isinstance(tag, str) and tag.startswith("{"):
        return tag[1:].partition("}")[0]
    return None


def _text(el: etree._Element) -> str | None:
    t = el.text
    if t is None:
        return None
    t = t.strip()
    return t or None


def parse_datetime(text: str | None, warnings: list[str], line: int | None) -> datetime | None:
    """Atom date-times; bare dates (Opower) and zone-less times (taken as UTC) are tolerated."""
    if not text:
        return None
    text = text.strip()
    # A feed stamps every entry with the same few times: parse each once (datetimes are
    # immutable, so entries can share them). Longer texts are never valid ones.
    dt = _cached_datetime(text) if len(text) <= 64 else _datetime(text)
    if dt is None:
        warnings.append(f"line {line}: date-time {text[:40]!r} not understood; ignored")
    return dt


def _datetime(text: str) -> datetime | None:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        try:
            d = date.fromisoformat(text)
        except ValueError:
            return None
        dt = datetime(d.year, d.month, d.day)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


_cached_datetime = functools.lru_cache(maxsize=256)(_datetime)


def read_entry(
    entry: etree._Element,
    index: int,
    *,
    keep_readings: bool,
    limits: Limits,
    name: str | None,
    warnings: list[str],
) -> Record | None:
    """Reduce one Atom ``entry`` to a :class:`Record` (None when it has no ESPI content)."""
    rec = Record(index=index, kind="", namespace=None, line=entry.sourceline)
    content: etree._Element | None = None
    for child in entry:
        tag = child.tag
        if tag == _CONTENT:
            content = child
            continue
        if tag == _LINK:
            href = child.get("href")
            rel = child.get("rel") or "alternate"
            if rel == "self":
                rec.self = normalize_href(href)
            elif rel == "up":
                rec.up = normalize_href(href)
            elif rel == "related":
                h = normalize_href(href)
                if h:
                    rec.related.append(h)
        elif tag == _ID:
            rec.atom_id = _text(child)
        elif tag == _TITLE:
            rec.title = _text(child)
        elif tag == _PUBLISHED:
            rec.published = parse_datetime(child.text, warnings, child.sourceline)
        elif tag == _UPDATED:
            rec.updated = parse_datetime(child.text, warnings, child.sourceline)
        check_subtree(child, 3, limits, name)
    if content is None:
        warnings.append(f"line {entry.sourceline}: entry without content skipped")
        return None
    resource_el = None
    extra_blocks: list[etree._Element] = []
    for child in content:
        ns = _ns(child)
        if ns in (ESPI, CUSTOMER):
            if resource_el is None:
                resource_el = child
            elif _local(child) == "IntervalBlock" and _local(resource_el) == "IntervalBlock":
                extra_blocks.append(child)  # GBA demo files put many blocks in one entry
            else:
                warnings.append(
                    f"line {child.sourceline}: second resource "
                    f"<{_local(child)}> in one entry ignored"
                )
            continue
        if _local(child) in ("published", "updated") and ns is None:
            continue  # UtilityAPI writes these inside content
        if isinstance(child.tag, str):
            check_subtree(child, 4, limits, name)
    if resource_el is None:
        warnings.append(f"line {entry.sourceline}: entry content has no ESPI resource; skipped")
        return None
    rec.kind = _local(resource_el)
    rec.namespace = _ns(resource_el)
    if rec.kind == "IntervalBlock" and rec.namespace == ESPI:
        interval, cols = read_block(resource_el, 4, limits, name, warnings)
        for more in extra_blocks:
            other_interval, other = read_block(more, 4, limits, name, warnings)
            interval = _union(interval, other_interval)
            cols.extend(other)
        rec.interval = interval
        rec.readings = cols if keep_readings else _starts_only(cols)
    else:
        check_subtree(resource_el, 4, limits, name)
        rec.resource = build_resource(resource_el, rec, warnings, limits, name)
    return rec


def _union(a: DateTimeInterval, b: DateTimeInterval) -> DateTimeInterval:
    if a.start is None or a.end is None:
        return b
    if b.start is None or b.end is None:
        return a
    start = min(a.start, b.start)
    return DateTimeInterval(start=start, duration=max(a.end, b.end) - start)


def _starts_only(cols: ReadingColumns) -> ReadingColumns:
    out = ReadingColumns()
    out.start = cols.start
    return out


def read_resource_root(
    root: etree._Element, *, limits: Limits, name: str | None, warnings: list[str]
) -> Record:
    """A document whose root is an ESPI element (BatchList, ServiceStatus, a bare resource)."""
    ns = _ns(root)
    if ns not in (ESPI, CUSTOMER):
        what = f"<{_local(root)}>" + (f" in namespace {ns}" if ns else " without a namespace")
        raise ParseError(
            f"root element {what} is not Green Button data; expected an Atom feed or entry, "
            "or an ESPI resource such as BatchList or ServiceStatus",
            line=root.sourceline,
            resource=name,
        )
    rec = Record(index=0, kind=_local(root), namespace=ns, line=root.sourceline)
    if rec.kind == "IntervalBlock" and ns == ESPI:
        rec.interval, rec.readings = read_block(root, 1, limits, name, warnings)
    else:
        rec.resource = build_resource(root, rec, warnings, limits, name)
    return rec


# -- resource builders ---------------------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(name: str) -> str:
    """``powerOfTenMultiplier`` -> ``power_of_ten_multiplier`` (``client_id`` unchanged)."""
    return _CAMEL.sub(r"_\1", name).lower()


def to_dict(el: etree._Element) -> dict[str, Any]:
    """Children of ``el`` as a dict of local name -> text or nested dict; repeats -> list."""
    out: dict[str, Any] = {}
    for child in el:
        if not isinstance(child.tag, str):
            continue
        key = _local(child)
        value: Any = to_dict(child) if len(child) else _text(child)
        if key in out:
            prev = out[key]
            if isinstance(prev, list):
                prev.append(value)
            else:
                out[key] = [prev, value]
        else:
            out[key] = value
    return out


class _Fields:
    """Typed access to a resource's child values with line-numbered errors."""

    def __init__(self, el: etree._Element, name: str | None):
        self.el, self.name = el, name
        self.children: dict[str, etree._Element] = {}
        for child in el:
            if isinstance(child.tag, str):
                self.children.setdefault(_local(child), child)

    def text(self, key: str) -> str | None:
        child = self.children.get(key)
        return None if child is None else _text(child)

    def int(self, key: str, bounds: _Range | None = None) -> int | None:
        child = self.children.get(key)
        if child is None:
            return None
        v = _parse_int(child, key, self.name)
        if v is not None and bounds is not None:
            bounds.check(v, child, key, self.name)
        return v

    def interval(self, key: str, *, signed: bool = False) -> DateTimeInterval | None:
        """A DateTimeInterval: int64 start; duration non-negative unless ``signed``.

        Only readings and blocks (``_blocks``) hold starts to the datetime range: the times
        of summaries and authorizations are shown through guarded conversions, and PG&E
        writes them in milliseconds ("forever" periods run past year 9999).
        """
        child = self.children.get(key)
        if child is None:
            return None
        sub = _Fields(child, self.name)
        bounds = None if signed else _NON_NEGATIVE
        return DateTimeInterval(start=sub.int("start"), duration=sub.int("duration", bounds))

    def texts(self, key: str) -> tuple[str, ...]:
        out = []
        for child in self.el:
            if isinstance(child.tag, str) and _local(child) == key:
                t = _text(child)
                if t is not None:
                    out.append(t)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class _Range:
    """An inclusive range of a numeric field, and what it is, for the error message."""

    lo: int
    hi: int
    what: str

    def check(self, v: int, el: etree._Element, key: str, name: str | None) -> None:
        if not self.lo <= v <= self.hi:
            raise ParseError(
                f"<{key}> {v} is outside {self.what}", line=el.sourceline, resource=name
            )


_NON_NEGATIVE = _Range(0, 2**63 - 1, "the durations ESPI allows: it must not be negative")
_DURATION = _Range(0, DURATION_MAX, f"the durations ESPI allows, 0 to {DURATION_MAX} s (UInt32)")
_MULTIPLIER = _Range(
    MULTIPLIER_MIN, MULTIPLIER_MAX, f"the SI scales {MULTIPLIER_MIN}..{MULTIPLIER_MAX}"
)
_INT16 = _Range(INT16_MIN, INT16_MAX, "ESPI's Int16")


def _parse_int(el: etree._Element, key: str, name: str | None) -> int | None:
    text = _text(el)
    if text is None:
        return None
    try:
        v = int(text)
    except ValueError:
        raise ParseError(
            f"<{key}> {text[:40]!r} is not an integer", line=el.sourceline, resource=name
        ) from None
    if not -(2**63) <= v < 2**63:
        raise ParseError(
            f"<{key}> {text[:40]!r} does not fit in 64 bits", line=el.sourceline, resource=name
        )
    return v


def _meta(rec: Record) -> dict[str, Any]:
    return {
        "href": rec.self,
        "atom_id": rec.atom_id,
        "title": rec.title,
        "published": rec.published,
        "updated": rec.updated,
    }


_READING_TYPE_INTS = (
    "accumulationBehaviour", "commodity", "consumptionTier", "currency", "dataQualifier",
    "defaultQuality", "flowDirection", "intervalLength", "kind", "phase",
    "powerOfTenMultiplier", "timeAttribute", "tou", "uom", "cpp", "measuringPeriod",
)  # fmt: skip

_READING_TYPE_BOUNDS = {"powerOfTenMultiplier": _MULTIPLIER, "intervalLength": _DURATION}

_MEASUREMENTS = (
    "overallConsumptionLastPeriod", "currentBillingPeriodOverAllConsumption",
    "currentDayLastYearNetConsumption", "currentDayNetConsumption",
    "currentDayOverallConsumption", "peakDemand", "previousDayLastYearOverallConsumption",
    "previousDayNetConsumption", "previousDayOverallConsumption", "ratchetDemand",
)  # fmt: skip


def _measurement(el: etree._Element | None, name: str | None) -> SummaryMeasurement | None:
    if el is None:
        return None
    f = _Fields(el, name)
    # Any Int16 scale is kept here: GBA test files write 4096 in unused measurements, which
    # inspect reports as unusable and SummaryMeasurement.scaled refuses to scale.
    return SummaryMeasurement(
        power_of_ten_multiplier=f.int("powerOfTenMultiplier", _INT16),
        time_stamp=f.int("timeStamp"),
        uom=f.int("uom"),
        value=f.int("value"),
        reading_type_ref=f.text("readingTypeRef"),
    )


def _ms_interval(iv: DateTimeInterval | None) -> DateTimeInterval | None:
    """PG&E writes Authorization periods in milliseconds; normalise by magnitude."""
    if iv is None:
        return None
    start, duration = iv.start, iv.duration
    if start is not None and abs(start) > 10**11:
        start //= 1000
        if duration is not None:
            duration //= 1000
    return DateTimeInterval(start=start, duration=duration)


def build_resource(
    el: etree._Element, rec: Record, warnings: list[str], limits: Limits, name: str | None
) -> Any:
    """The typed model of one ESPI/customer content element (None for unknown kinds)."""
    kind, ns = _local(el), _ns(el)
    f = _Fields(el, name)
    if ns == CUSTOMER:
        return CustomerResource(**_meta(rec), element=kind, data=to_dict(el))
    if kind == "ReadingType":
        # The multiplier scales every reading and intervalLength becomes every missing
        # duration: both bounded; the rest are enumeration codes, kept even when unknown.
        ints: dict[str, Any] = {
            snake(k): f.int(k, _READING_TYPE_BOUNDS.get(k)) for k in _READING_TYPE_INTS
        }
        return ReadingType(**_meta(rec), **ints)
    if kind == "LocalTimeParameters":
        return LocalTimeParameters(
            **_meta(rec),
            dst_start_rule=f.text("dstStartRule"),
            dst_end_rule=f.text("dstEndRule"),
            dst_offset=f.int("dstOffset"),
            tz_offset=f.int("tzOffset"),
        )
    if kind in ("UsageSummary", "ElectricPowerUsageSummary"):
        items = []
        for child in el:
            if isinstance(child.tag, str) and _local(child) == "costAdditionalDetailLastPeriod":
                li = _Fields(child, name)
                items.append(
                    LineItem(
                        amount=li.int("amount"),
                        rounding=li.int("rounding"),
                        date_time=li.int("dateTime"),
                        note=li.text("note"),
                        measurement=_measurement(li.children.get("measurement"), name),
                        item_kind=li.int("itemKind"),
                        unit_cost=li.int("unitCost"),
                        item_period=li.interval("itemPeriod"),
                    )
                )
        measurements = {}
        for key in _MEASUREMENTS:
            m = _measurement(f.children.get(key), name)
            if m is not None:
                measurements[snake(key)] = m
        return UsageSummary(
            **_meta(rec),
            element=kind,
            billing_period=f.interval("billingPeriod"),
            bill_last_period=f.int("billLastPeriod"),
            bill_to_date=f.int("billToDate"),
            cost_additional_last_period=f.int("costAdditionalLastPeriod"),
            line_items=tuple(items),
            currency=f.int("currency"),
            measurements=measurements,
            quality_of_reading=f.int("qualityOfReading"),
            status_time_stamp=f.int("statusTimeStamp"),
            commodity=f.int("commodity"),
            tariff_profile=f.text("tariffProfile"),
            read_cycle=f.text("readCycle"),
        )
    if kind == "UsagePoint":
        sc = f.children.get("ServiceCategory")
        service_kind = _Fields(sc, name).int("kind") if sc is not None else None
        return {
            "service_kind": service_kind,
            "status": f.int("status"),
            "role_flags": f.text("roleFlags"),
        }
    if kind == "MeterReading":
        return None
    if kind == "Authorization":
        known = {
            "authorizedPeriod", "publishedPeriod", "status", "expires_at", "grant_type", "scope",
            "token_type", "error", "error_description", "error_uri", "resourceURI",
            "authorizationURI", "customerResourceURI", "applicationInformationId",
            "retailCustomerId",
        }  # fmt: skip
        extra = {k: v for k, v in to_dict(el).items() if k not in known}
        return Authorization(
            **_meta(rec),
            authorized_period=_ms_interval(f.interval("authorizedPeriod", signed=True)),
            published_period=_ms_interval(f.interval("publishedPeriod", signed=True)),
            status=f.int("status"),
            expires_at=f.int("expires_at"),
            grant_type=f.text("grant_type"),
            scope=f.text("scope"),
            token_type=f.text("token_type"),
            error=f.text("error"),
            error_description=f.text("error_description"),
            error_uri=f.text("error_uri"),
            resource_uri=f.text("resourceURI"),
            authorization_uri=f.text("authorizationURI"),
            customer_resource_uri=f.text("customerResourceURI"),
            application_information_id=f.text("applicationInformationId"),
            retail_customer_id=f.text("retailCustomerId"),
            extra=extra,
        )
    if kind == "ApplicationInformation":
        return _application_information(el, f, rec)
    if kind == "ServiceStatus":
        status = f.int("currentStatus")
        if status is None:
            raise ParseError(
                "ServiceStatus has no currentStatus", line=el.sourceline, resource=name
            )
        return ServiceStatus(current_status=status)
    if kind == "BatchList":
        uris: list[str] = []
        for child in el:
            if isinstance(child.tag, str) and _local(child) == "resources":
                if len(uris) >= limits.max_batch_resources:
                    raise ParseError(
                        f"BatchList has more than {limits.max_batch_resources} resources",
                        line=child.sourceline,
                        resource=name,
                    )
                uri = "".join((child.text or "").split())
                if uri:
                    uris.append(uri)
        return BatchList(resources=tuple(uris))
    if kind not in _EXPECTED_GENERIC:
        warnings.append(f"{kind} has no typed model here; kept as generic data")
    return GenericResource(**_meta(rec), element=kind, data=to_dict(el))


#: Resources kept as generic data without a warning: PG&E ends every batch feed with its
#: ProgramIdMappings (the meaning of the ``tou`` codes, ESPI_NOTES), so a warning there
#: would be on every PG&E download and say nothing.
_EXPECTED_GENERIC = frozenset({"ProgramIdMappings"})


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    """``authorization_code,refresh_token`` in one element (GBA test harness) -> two values."""
    return tuple(p.strip() for v in values for p in v.split(",") if p.strip())


def _application_information(el: etree._Element, f: _Fields, rec: Record) -> ApplicationInformation:
    simple = {
        "dataCustodianId": "data_custodian_id",
        "dataCustodianResourceEndpoint": "data_custodian_resource_endpoint",
        "dataCustodianBulkRequestURI": "data_custodian_bulk_request_uri",
        "dataCustodianScopeSelectionScreenURI": "data_custodian_scope_selection_screen_uri",
        "thirdPartyApplicationName": "third_party_application_name",
        "thirdPartyNotifyUri": "third_party_notify_uri",
        "thirdPartyScopeSelectionScreenURI": "third_party_scope_selection_screen_uri",
        "authorizationServerAuthorizationEndpoint": "authorization_server_authorization_endpoint",
        "authorizationServerTokenEndpoint": "authorization_server_token_endpoint",
        "authorizationServerUri": "authorization_server_uri",
        "client_id": "client_id",
        "client_secret": "client_secret",
        "registration_access_token": "registration_access_token",
        "token_endpoint_auth_method": "token_endpoint_auth_method",
    }
    values: dict[str, Any] = {attr: f.text(key) for key, attr in simple.items()}
    issued = f.int("client_id_issued_at")
    if issued is not None and issued > 10**11:
        issued //= 1000  # PG&E: milliseconds
    used = set(simple) | {
        "client_id_issued_at", "dataCustodianApplicationStatus", "redirect_uri", "scope",
        "grant_types", "response_types",
    }  # fmt: skip
    return ApplicationInformation(
        **_meta(rec),
        **values,
        client_id_issued_at=issued,
        data_custodian_application_status=f.int("dataCustodianApplicationStatus"),
        redirect_uris=f.texts("redirect_uri"),
        scopes=f.texts("scope"),
        grant_types=_split(f.texts("grant_types")),
        response_types=_split(f.texts("response_types")),
        extra={k: v for k, v in to_dict(el).items() if k not in used},
    )
