"""Write a :class:`~greenbutton.models.Document` back out as an ESPI Atom feed.

The simulator serves years of readings and exporters write them to files, so the feed is
produced entry by entry (:func:`iter_feed_chunks`, :func:`write_feed`) and never held as one
tree; :func:`to_xml` joins the chunks. Links follow ESPI_NOTES 3.5, so ``greenbutton.parse``
rebuilds the same UsagePoint -> MeterReading -> IntervalBlock tree from the output.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote

from ..models import (
    ABSENT,
    ABSENT32,
    ATOM_NS,
    ESPI_NS,
    DateTimeInterval,
    Document,
    IntervalBlock,
    LineItem,
    LocalTimeParameters,
    MeterReading,
    ReadingColumns,
    ReadingType,
    SummaryMeasurement,
    UsagePoint,
    UsageSummary,
)

__all__ = ["DEFAULT_BASE_URL", "SupportsWriteBytes", "iter_feed_chunks", "to_xml", "write_feed"]

#: The OpenESPI reference implementation's resource endpoint (ESPI_NOTES 1.1).
DEFAULT_BASE_URL = "https://localhost/DataCustodian/espi/1_1/resource"

# Where resources without an href are placed (ESPI_NOTES 1.2 templates).
_SUBSCRIPTION = "Subscription/1"

# UsageSummary SummaryMeasurements in XSD order; qualityOfReading sits between the last two
# groups, so the sequence is split there.
_MEASUREMENTS_BEFORE_QUALITY = (
    "overallConsumptionLastPeriod",
    "currentBillingPeriodOverAllConsumption",
    "currentDayLastYearNetConsumption",
    "currentDayNetConsumption",
    "currentDayOverallConsumption",
    "peakDemand",
    "previousDayLastYearOverallConsumption",
    "previousDayNetConsumption",
    "previousDayOverallConsumption",
)
_MEASUREMENTS_AFTER_QUALITY = ("ratchetDemand",)
_MEASUREMENT_NAMES = frozenset(_MEASUREMENTS_BEFORE_QUALITY + _MEASUREMENTS_AFTER_QUALITY)

# Characters XML 1.0 cannot carry at all, even as character references.
_INVALID_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\r": "&#13;",
        "\n": "&#10;",
        "\t": "&#9;",
    }
)
# RFC 3986 pchar without "/": ids such as PG&E's base64 "...=" or "1,436,684" stay readable.
_SEGMENT_SAFE = "-._~!$&'()*+,;=:@"


class SupportsWriteBytes(Protocol):
    """A binary file object, socket wrapper or buffer: anything with ``write(bytes)``."""

    def write(self, data: bytes, /) -> object: ...


def to_xml(
    document: Document,
    *,
    base_url: str = DEFAULT_BASE_URL,
    feed_id: str | None = None,
    updated: datetime | None = None,
) -> bytes:
    """Serialise the usage data of ``document`` as one ESPI Atom feed (UTF-8 bytes).

    Written: UsagePoint, MeterReading, ReadingType, IntervalBlock, UsageSummary (or
    ElectricPowerUsageSummary, per ``UsageSummary.element``) and LocalTimeParameters
    entries. Authorizations, ApplicationInformation and customer resources are not part of a
    usage feed and are not written. See :func:`iter_feed_chunks` for the details.
    """
    return b"".join(iter_feed_chunks(document, base_url=base_url, feed_id=feed_id, updated=updated))


def write_feed(
    document: Document,
    fileobj: SupportsWriteBytes,
    *,
    base_url: str = DEFAULT_BASE_URL,
    feed_id: str | None = None,
    updated: datetime | None = None,
) -> int:
    """Write the feed of ``document`` to a binary ``fileobj`` entry by entry; returns the
    number of bytes written. Memory stays at one entry, however many readings there are."""
    total = 0
    for chunk in iter_feed_chunks(document, base_url=base_url, feed_id=feed_id, updated=updated):
        fileobj.write(chunk)
        total += len(chunk)
    return total


def iter_feed_chunks(
    document: Document,
    *,
    base_url: str = DEFAULT_BASE_URL,
    feed_id: str | None = None,
    updated: datetime | None = None,
) -> Iterator[bytes]:
    """Yield the ESPI Atom feed of ``document`` as UTF-8 chunks: the feed header, one chunk
    per entry, then the closing tag (suitable for a streaming HTTP response).

    * Each entry's self link is ``base_url + "/" + href``; resources without an href get a
      deterministic one (``Subscription/1/UsagePoint/{id}``, ``.../MeterReading/{id}``,
      ``.../IntervalBlock/{n}``, ``ReadingType/{n}``, ``LocalTimeParameters/{n}`` ...).
    * The Atom ``id`` is ``urn:uuid:`` + uuid5 of the href, so rewriting a document gives
      the same ids. ``up`` and ``related`` links are those of ESPI_NOTES 3.5.
    * ``published``/``updated`` come from each resource, else ``updated`` (default: now),
      which is also the feed's ``updated``. The feed id is ``feed_id``, else the
      document's, else a uuid5 of its self link or usage point hrefs.
    * ESPI elements are written in XSD child order with the model's raw integers; absent
      values are omitted. Values the model lacks but the XSD requires (a DateTimeInterval
      with only a start, a UsageSummary without ``statusTimeStamp``) cannot be made up, so
      such documents produce schema-invalid output rather than invented data.

    Raises :class:`ValueError` for text that XML 1.0 cannot represent (control
    characters) and for UsageSummary measurement names the XSD does not define.
    """
    base = base_url.rstrip("/")
    now = _utc(updated) if updated is not None else datetime.now(UTC)
    plan = _Plan.build(document)
    yield _feed_header(document, plan, base, feed_id, now).encode()
    emitted_types: set[str] = set()
    emitted_ltps: set[str] = set()
    emitted_summaries: set[int] = set()
    for up in document.usage_points:
        up_href = plan.usage_points[id(up)]
        yield _entry(
            base,
            up_href,
            up,
            now,
            _usage_point_xml(up),
            related=plan.usage_point_related(up),
            kind="UsagePoint",
        )
        ltp = up.local_time_parameters
        if ltp is not None:
            ltp_href = plan.ltp_href(ltp)
            if ltp_href not in emitted_ltps:
                emitted_ltps.add(ltp_href)
                yield _entry(base, ltp_href, ltp, now, _ltp_xml(ltp), kind="LocalTimeParameters")
        for mr in up.meter_readings:
            mr_href = plan.meter_readings[id(up), id(mr)]
            block_hrefs = plan.block_hrefs(mr, mr_href)
            related = [(h, "espi-feed/IntervalBlock") for h in _collections(block_hrefs)]
            if not related:
                related.append((f"{mr_href}/IntervalBlock", "espi-feed/IntervalBlock"))
            rt = mr.reading_type
            if rt is not None:
                related.append((plan.reading_type_href(rt), "espi-entry/ReadingType"))
            yield _entry(
                base,
                mr_href,
                mr,
                now,
                f'<MeterReading xmlns="{ESPI_NS}"/>',
                related=related,
                kind="MeterReading",
            )
            if rt is not None:
                rt_href = plan.reading_type_href(rt)
                if rt_href not in emitted_types:
                    emitted_types.add(rt_href)
                    yield _entry(base, rt_href, rt, now, _reading_type_xml(rt), kind="ReadingType")
            for block, block_href in zip(mr.interval_blocks, block_hrefs, strict=True):
                yield _entry(
                    base, block_href, block, now, _interval_block_xml(block), kind="IntervalBlock"
                )
        for summary in up.usage_summaries:
            emitted_summaries.add(id(summary))
            yield _entry(
                base,
                plan.summaries[id(summary)],
                summary,
                now,
                _usage_summary_xml(summary),
                kind=summary.element,
            )
    # Resources no usage point links to are still part of the document.
    for rt in document.reading_types:
        rt_href = plan.reading_type_href(rt)
        if rt_href not in emitted_types:
            emitted_types.add(rt_href)
            yield _entry(base, rt_href, rt, now, _reading_type_xml(rt), kind="ReadingType")
    for ltp in document.local_time_parameters:
        ltp_href = plan.ltp_href(ltp)
        if ltp_href not in emitted_ltps:
            emitted_ltps.add(ltp_href)
            yield _entry(base, ltp_href, ltp, now, _ltp_xml(ltp), kind="LocalTimeParameters")
    for summary in document.usage_summaries:
        if id(summary) not in emitted_summaries:
            emitted_summaries.add(id(summary))
            yield _entry(
                base,
                plan.summaries[id(summary)],
                summary,
                now,
                _usage_summary_xml(summary),
                kind=summary.element,
            )
    yield b"</feed>\n"


# --------------------------------------------------------------------------------------------
# hrefs


@dataclass(slots=True)
class _Plan:
    """The href of every resource but the IntervalBlocks, decided before anything is written
    (a UsagePoint's related links name its LocalTimeParameters, which may come later)."""

    usage_points: dict[int, str] = field(default_factory=dict)
    meter_readings: dict[tuple[int, int], str] = field(default_factory=dict)  # (up, mr)
    summaries: dict[int, str] = field(default_factory=dict)
    reading_types: dict[ReadingType, str] = field(default_factory=dict)
    ltps: dict[LocalTimeParameters, str] = field(default_factory=dict)

    @classmethod
    def build(cls, document: Document) -> _Plan:
        plan = cls()
        used = _existing_hrefs(document)
        for up in document.usage_points:
            up_href = up.href or _fresh(f"{_SUBSCRIPTION}/UsagePoint", up.id, used)
            plan.usage_points[id(up)] = up_href
            for mr in up.meter_readings:
                plan.meter_readings[id(up), id(mr)] = mr.href or _fresh(
                    f"{up_href}/MeterReading", mr.id, used
                )
                if mr.reading_type is not None:
                    plan._add_reading_type(mr.reading_type, used)
            for summary in up.usage_summaries:
                if id(summary) not in plan.summaries:  # a summary shared by two points
                    plan.summaries[id(summary)] = summary.href or _fresh(
                        f"{up_href}/{summary.element}", None, used
                    )
            if up.local_time_parameters is not None:
                plan._add_ltp(up.local_time_parameters, used)
        for rt in document.reading_types:
            plan._add_reading_type(rt, used)
        for ltp in document.local_time_parameters:
            plan._add_ltp(ltp, used)
        for summary in document.usage_summaries:
            if id(summary) not in plan.summaries:
                plan.summaries[id(summary)] = summary.href or _fresh(summary.element, None, used)
        return plan

    def _add_reading_type(self, rt: ReadingType, used: set[str]) -> None:
        if rt not in self.reading_types:
            self.reading_types[rt] = rt.href or _fresh("ReadingType", None, used)

    def _add_ltp(self, ltp: LocalTimeParameters, used: set[str]) -> None:
        if ltp not in self.ltps:
            self.ltps[ltp] = ltp.href or _fresh("LocalTimeParameters", None, used)

    def reading_type_href(self, rt: ReadingType) -> str:
        return self.reading_types[rt]

    def ltp_href(self, ltp: LocalTimeParameters) -> str:
        return self.ltps[ltp]

    def block_hrefs(self, mr: MeterReading, mr_href: str) -> list[str]:
        """Blocks keep their href; the others are numbered under the MeterReading."""
        used = {b.href for b in mr.interval_blocks if b.href}
        return [
            b.href or _fresh(f"{mr_href}/IntervalBlock", None, used) for b in mr.interval_blocks
        ]

    def usage_point_related(self, up: UsagePoint) -> list[tuple[str, str]]:
        """ESPI_NOTES 3.5: the MeterReading and summary collections, the LocalTimeParameters.

        Collections are taken from the children's own hrefs, so a parser attaching children
        by their ``up`` link finds them even when they live outside the usage point's path.
        """
        up_href = self.usage_points[id(up)]
        related = [
            (h, "espi-feed/MeterReading")
            for h in _collections(self.meter_readings[id(up), id(mr)] for mr in up.meter_readings)
        ] or [(f"{up_href}/MeterReading", "espi-feed/MeterReading")]
        summary_links = [
            (h, f"espi-feed/{h.rsplit('/', 1)[-1]}")
            for h in _collections(self.summaries[id(s)] for s in up.usage_summaries)
        ]
        related += summary_links or [(f"{up_href}/UsageSummary", "espi-feed/UsageSummary")]
        if up.local_time_parameters is not None:
            related.append(
                (self.ltp_href(up.local_time_parameters), "espi-entry/LocalTimeParameters")
            )
        return related


def _existing_hrefs(document: Document) -> set[str]:
    resources: list[UsagePoint | MeterReading | ReadingType | LocalTimeParameters | UsageSummary]
    resources = [*document.reading_types, *document.local_time_parameters]
    resources += document.usage_summaries
    for up in document.usage_points:
        resources.append(up)
        resources += up.meter_readings
        resources += up.usage_summaries
        resources += [mr.reading_type for mr in up.meter_readings if mr.reading_type]
        if up.local_time_parameters is not None:
            resources.append(up.local_time_parameters)
    return {r.href for r in resources if r.href}


def _fresh(collection: str, preferred: str | None, used: set[str]) -> str:
    """A new member href of ``collection``: the resource's own id when free, else the
    smallest unused number."""
    if preferred:
        href = f"{collection}/{quote(preferred, safe=_SEGMENT_SAFE)}"
        if href not in used:
            used.add(href)
            return href
    n = 1
    while f"{collection}/{n}" in used:
        n += 1
    href = f"{collection}/{n}"
    used.add(href)
    return href


def _collections(hrefs: Iterable[str]) -> list[str]:
    """The distinct collection hrefs (parents) of member hrefs, in first-seen order."""
    seen: dict[str, None] = {}
    for href in hrefs:
        parent = _parent(href)
        if parent is not None:
            seen.setdefault(parent, None)
    return list(seen)


def _parent(href: str) -> str | None:
    head, sep, _ = href.rstrip("/").rpartition("/")
    if not sep or not head or head.endswith(":/"):
        return None
    return head


def _url(base: str, href: str) -> str:
    if "://" in href:  # already absolute (an href the parser could not normalise)
        return href
    return f"{base}/{href.lstrip('/')}"


# --------------------------------------------------------------------------------------------
# Atom envelope


def _feed_header(
    document: Document, plan: _Plan, base: str, feed_id: str | None, now: datetime
) -> str:
    if feed_id is None:
        feed_id = document.feed_id
    if feed_id is None:
        key = document.feed_href or ",".join(plan.usage_points.values()) or "feed"
        feed_id = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, _url(base, key))}"
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<feed xmlns="{ATOM_NS}">',
        f"<id>{_text(feed_id)}</id>",
        f"<title>{_text(document.feed_title or 'Green Button Usage Feed')}</title>",
        f"<updated>{_datetime(now)}</updated>",
    ]
    if document.feed_href:
        parts.append(f'<link rel="self" href="{_attr(_url(base, document.feed_href))}"/>')
    parts.append("\n")
    return "".join(parts)


def _entry(
    base: str,
    href: str,
    resource: UsagePoint
    | MeterReading
    | ReadingType
    | IntervalBlock
    | UsageSummary
    | LocalTimeParameters,
    now: datetime,
    content: str,
    *,
    kind: str,
    related: Iterable[tuple[str, str]] = (),
) -> bytes:
    entry_id = uuid.uuid5(uuid.NAMESPACE_URL, href)
    parts = [
        f"<entry><id>urn:uuid:{entry_id}</id>",
        f'<link rel="self" href="{_attr(_url(base, href))}" type="espi-entry/{kind}"/>',
    ]
    parent = _parent(href)
    if parent is not None:
        parts.append(f'<link rel="up" href="{_attr(_url(base, parent))}" type="espi-feed/{kind}"/>')
    for rel_href, rel_type in related:
        parts.append(
            f'<link rel="related" href="{_attr(_url(base, rel_href))}" type="{rel_type}"/>'
        )
    title = resource.title
    parts.append(f"<title>{_text(title)}</title>" if title else "<title/>")
    parts.append(f"<content>{content}</content>")
    parts.append(f"<published>{_datetime(resource.published or now)}</published>")
    parts.append(f"<updated>{_datetime(resource.updated or now)}</updated>")
    parts.append("</entry>\n")
    return "".join(parts).encode()


# --------------------------------------------------------------------------------------------
# ESPI content, children in XSD order


def _usage_point_xml(up: UsagePoint) -> str:
    parts = [f'<UsagePoint xmlns="{ESPI_NS}">']
    if up.role_flags is not None:
        parts.append(f"<roleFlags>{_text(up.role_flags)}</roleFlags>")
    if up.service_kind is not None:
        parts.append(f"<ServiceCategory><kind>{int(up.service_kind)}</kind></ServiceCategory>")
    _int(parts, "status", up.status)
    parts.append("</UsagePoint>")
    return "".join(parts)


def _reading_type_xml(rt: ReadingType) -> str:
    parts = [f'<ReadingType xmlns="{ESPI_NS}">']
    _int(parts, "accumulationBehaviour", rt.accumulation_behaviour)
    _int(parts, "commodity", rt.commodity)
    _int(parts, "consumptionTier", rt.consumption_tier)
    _int(parts, "currency", rt.currency)
    _int(parts, "dataQualifier", rt.data_qualifier)
    _int(parts, "defaultQuality", rt.default_quality)
    _int(parts, "flowDirection", rt.flow_direction)
    _int(parts, "intervalLength", rt.interval_length)
    _int(parts, "kind", rt.kind)
    _int(parts, "phase", rt.phase)
    _int(parts, "powerOfTenMultiplier", rt.power_of_ten_multiplier)
    _int(parts, "timeAttribute", rt.time_attribute)
    _int(parts, "tou", rt.tou)
    _int(parts, "uom", rt.uom)
    _int(parts, "cpp", rt.cpp)
    _int(parts, "measuringPeriod", rt.measuring_period)
    parts.append("</ReadingType>")
    return "".join(parts)


def _ltp_xml(ltp: LocalTimeParameters) -> str:
    parts = [f'<LocalTimeParameters xmlns="{ESPI_NS}">']
    if ltp.dst_end_rule is not None:
        parts.append(f"<dstEndRule>{_text(ltp.dst_end_rule)}</dstEndRule>")
    _int(parts, "dstOffset", ltp.dst_offset)
    if ltp.dst_start_rule is not None:
        parts.append(f"<dstStartRule>{_text(ltp.dst_start_rule)}</dstStartRule>")
    _int(parts, "tzOffset", ltp.tz_offset)
    parts.append("</LocalTimeParameters>")
    return "".join(parts)


def _interval_block_xml(block: IntervalBlock) -> str:
    parts = [f'<IntervalBlock xmlns="{ESPI_NS}">']
    _interval(parts, "interval", block.interval)
    _readings(parts, block.readings)
    parts.append("</IntervalBlock>")
    return "".join(parts)


def _readings(parts: list[str], cols: ReadingColumns) -> None:
    """IntervalReading children: cost, ReadingQuality*, timePeriod, value, (consumptionTier),
    tou, (cpp). The hot loop of large feeds, hence plain string formatting."""
    extra = cols.extra_quality
    append = parts.append
    rows = zip(
        cols.start, cols.duration, cols.value, cols.cost, cols.quality, cols.tou, strict=True
    )
    for i, (start, duration, value, cost, quality, tou) in enumerate(rows):
        append("<IntervalReading>")
        if cost != ABSENT:
            append(f"<cost>{cost}</cost>")
        if extra and i in extra:
            for code in extra[i]:
                append(f"<ReadingQuality><quality>{code}</quality></ReadingQuality>")
        elif quality != ABSENT32:
            append(f"<ReadingQuality><quality>{quality}</quality></ReadingQuality>")
        if duration != ABSENT:
            append(
                f"<timePeriod><duration>{duration}</duration><start>{start}</start></timePeriod>"
            )
        else:  # unknown duration: keep the start (schema-invalid, but nothing is invented)
            append(f"<timePeriod><start>{start}</start></timePeriod>")
        if value != ABSENT:
            append(f"<value>{value}</value>")
        if tou != ABSENT32:
            append(f"<tou>{tou}</tou>")
        append("</IntervalReading>")


def _usage_summary_xml(summary: UsageSummary) -> str:
    name = summary.element
    measurements = _measurements(summary.measurements)
    parts = [f'<{name} xmlns="{ESPI_NS}">']
    if summary.billing_period is not None:
        _interval(parts, "billingPeriod", summary.billing_period)
    _int(parts, "billLastPeriod", summary.bill_last_period)
    _int(parts, "billToDate", summary.bill_to_date)
    _int(parts, "costAdditionalLastPeriod", summary.cost_additional_last_period)
    for item in summary.line_items:
        _line_item(parts, item)
    _int(parts, "currency", summary.currency)
    for key in _MEASUREMENTS_BEFORE_QUALITY:
        if key in measurements:
            _measurement(parts, key, measurements[key])
    _int(parts, "qualityOfReading", summary.quality_of_reading)
    for key in _MEASUREMENTS_AFTER_QUALITY:
        if key in measurements:
            _measurement(parts, key, measurements[key])
    # ratchetDemandPeriod has no model field.
    _int(parts, "statusTimeStamp", summary.status_time_stamp)
    _int(parts, "commodity", summary.commodity)
    if name != "ElectricPowerUsageSummary":  # the older element stops at commodity
        if summary.tariff_profile is not None:
            parts.append(f"<tariffProfile>{_text(summary.tariff_profile)}</tariffProfile>")
        if summary.read_cycle is not None:
            parts.append(f"<readCycle>{_text(summary.read_cycle)}</readCycle>")
    parts.append(f"</{name}>")
    return "".join(parts)


def _measurements(measurements: Mapping[str, SummaryMeasurement]) -> dict[str, SummaryMeasurement]:
    """Key by XSD element name; snake_case keys (``peak_demand``) are accepted too."""
    out: dict[str, SummaryMeasurement] = {}
    for key, measurement in measurements.items():
        name = key if key in _MEASUREMENT_NAMES else _camel(key)
        if name not in _MEASUREMENT_NAMES:
            raise ValueError(f"UsageSummary has no SummaryMeasurement named {key!r}")
        out[name] = measurement
    return out


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    camel = first + "".join(w[:1].upper() + w[1:] for w in rest)
    # The XSD spells one of them "OverAll".
    return camel.replace(
        "currentBillingPeriodOverallConsumption", "currentBillingPeriodOverAllConsumption"
    )


def _measurement(parts: list[str], name: str, m: SummaryMeasurement) -> None:
    parts.append(f"<{name}>")
    _int(parts, "powerOfTenMultiplier", m.power_of_ten_multiplier)
    _int(parts, "timeStamp", m.time_stamp)
    _int(parts, "uom", m.uom)
    _int(parts, "value", m.value)
    if m.reading_type_ref is not None:
        parts.append(f"<readingTypeRef>{_text(m.reading_type_ref)}</readingTypeRef>")
    parts.append(f"</{name}>")


def _line_item(parts: list[str], item: LineItem) -> None:
    parts.append("<costAdditionalDetailLastPeriod>")
    _int(parts, "amount", item.amount)
    _int(parts, "rounding", item.rounding)
    _int(parts, "dateTime", item.date_time)
    if item.note is not None:
        parts.append(f"<note>{_text(item.note)}</note>")
    if item.measurement is not None:
        _measurement(parts, "measurement", item.measurement)
    _int(parts, "itemKind", item.item_kind)
    _int(parts, "unitCost", item.unit_cost)
    if item.item_period is not None:
        _interval(parts, "itemPeriod", item.item_period)
    parts.append("</costAdditionalDetailLastPeriod>")


def _interval(parts: list[str], name: str, interval: DateTimeInterval) -> None:
    # Both children are required by the XSD; half an interval is left out, not guessed.
    if interval.start is None or interval.duration is None:
        return
    parts.append(
        f"<{name}><duration>{int(interval.duration)}</duration>"
        f"<start>{int(interval.start)}</start></{name}>"
    )


def _int(parts: list[str], name: str, value: int | None) -> None:
    if value is not None:
        parts.append(f"<{name}>{int(value)}</{name}>")


# --------------------------------------------------------------------------------------------
# text


def _utc(dt: datetime) -> datetime:
    """Aware datetimes are converted to UTC; naive ones are taken to be UTC already."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _datetime(dt: datetime) -> str:
    """xs:dateTime in UTC with a ``Z``; microseconds only when there are some."""
    dt = _utc(dt)
    text = dt.replace(tzinfo=None, microsecond=0).isoformat()
    if dt.microsecond:
        text += f".{dt.microsecond:06d}"
    return text + "Z"


def _check(text: str) -> str:
    bad = _INVALID_XML_CHARS.search(text)
    if bad is not None:
        raise ValueError(f"character {bad.group()!r} cannot be written in XML 1.0: {text!r}")
    return text


def _text(text: str) -> str:
    return _check(text).translate(_TEXT_ESCAPES)


def _attr(text: str) -> str:
    return _check(text).translate(_ATTR_ESCAPES)
