"""Typed ESPI resources: frozen, slotted, keyword-only dataclasses (STYLE 6).

Codes stay the raw integers of the XML (``uom=72``, ``power_of_ten_multiplier=-3``);
names and scaling are applied where they are shown (readings table, frames, CLI), so
nothing is lost and unknown codes never fail. Every resource carries its Atom metadata:
``href`` (self link, normalised), ``atom_id``, ``title``, ``published``, ``updated``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._bounds import MULTIPLIER_MAX, MULTIPLIER_MIN
from ._enums import (
    COMMODITY,
    FLOW_DIRECTION,
    MEASUREMENT_KIND,
    SERVICE_KIND,
    code_name,
    currency_code,
    uom_symbol,
)
from ._readings import ReadingColumns
from ._time import TimeZoneInfo, decode_time_zone

__all__ = [
    "ApplicationInformation",
    "Authorization",
    "BatchList",
    "CustomerResource",
    "DateTimeInterval",
    "Document",
    "GenericResource",
    "IntervalBlock",
    "LineItem",
    "LocalTimeParameters",
    "MeterReading",
    "ReadingType",
    "ServiceStatus",
    "SummaryMeasurement",
    "UsagePoint",
    "UsageSummary",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class DateTimeInterval:
    """ESPI DateTimeInterval: ``start`` (epoch seconds, UTC) and ``duration`` (seconds)."""

    start: int | None = None
    duration: int | None = None

    @property
    def end(self) -> int | None:
        if self.start is None or self.duration is None:
            return None
        return self.start + self.duration


@dataclass(frozen=True, slots=True, kw_only=True)
class _Meta:
    href: str | None = None
    atom_id: str | None = None
    title: str | None = None
    published: datetime | None = None
    updated: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingType(_Meta):
    """ESPI ReadingType: what the values of a MeterReading mean (units, scale, direction)."""

    accumulation_behaviour: int | None = None
    commodity: int | None = None
    consumption_tier: int | None = None
    currency: int | None = None
    data_qualifier: int | None = None
    default_quality: int | None = None
    flow_direction: int | None = None
    interval_length: int | None = None
    kind: int | None = None
    phase: int | None = None
    power_of_ten_multiplier: int | None = None
    time_attribute: int | None = None
    tou: int | None = None
    uom: int | None = None
    cpp: int | None = None
    measuring_period: int | None = None

    @property
    def unit(self) -> str | None:
        """ASCII unit symbol (``Wh``, ``therm`` ...; ``uom:<code>`` when unknown)."""
        return uom_symbol(self.uom)

    @property
    def currency_code(self) -> str | None:
        """ISO 4217 alpha code (``USD``) of ``currency``."""
        return currency_code(self.currency)

    @property
    def flow_direction_name(self) -> str | int | None:
        return code_name(FLOW_DIRECTION, self.flow_direction)

    @property
    def kind_name(self) -> str | int | None:
        return code_name(MEASUREMENT_KIND, self.kind)

    @property
    def commodity_name(self) -> str | int | None:
        return code_name(COMMODITY, self.commodity)


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalTimeParameters(_Meta):
    """ESPI LocalTimeParameters (TimeConfiguration): standard offset and DST rules.

    ``time_zone`` decodes them into a real :class:`datetime.tzinfo`; rules that cannot be
    decoded are reported in ``time_zone.problems`` and the standard offset is used.
    """

    dst_start_rule: str | None = None
    dst_end_rule: str | None = None
    dst_offset: int | None = None
    tz_offset: int | None = None
    #: An IANA zone chosen by the user over what the fields say (``--tz``, for files whose
    #: LocalTimeParameters are wrong); never parsed from a document.
    zone_override: str | None = None

    @property
    def time_zone(self) -> TimeZoneInfo:
        """The decoded zone: the override when there is one, else the fields' zone."""
        if self.zone_override is not None:
            return TimeZoneInfo(ZoneInfo(self.zone_override), self.zone_override, None, None)
        return decode_time_zone(
            tz_offset=self.tz_offset,
            dst_offset=self.dst_offset,
            dst_start_rule=self.dst_start_rule,
            dst_end_rule=self.dst_end_rule,
        )

    @property
    def tzinfo(self) -> tzinfo:
        """The decoded time zone (an IANA zone when the rules match one)."""
        return self.time_zone.tzinfo


@dataclass(frozen=True, slots=True, kw_only=True)
class IntervalBlock(_Meta):
    """ESPI IntervalBlock: an ``interval`` and its readings, held as columns."""

    interval: DateTimeInterval = field(default_factory=DateTimeInterval)
    readings: ReadingColumns = field(default_factory=ReadingColumns)


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterReading(_Meta):
    """ESPI MeterReading: one series of readings of one ReadingType.

    ``id`` is the last segment of the self link (else the Atom id). ``readings`` merges
    every block in document order with repeated starts removed, the last one winning.
    """

    id: str
    reading_type: ReadingType | None = None
    interval_blocks: tuple[IntervalBlock, ...] = ()

    @property
    def readings(self) -> ReadingColumns:
        """All readings of the blocks, de-duplicated. Built on each access (keeping a merged
        copy beside the blocks would double the memory of a large document): bind it to a
        name when you use it more than once."""
        if len(self.interval_blocks) == 1:
            return self.interval_blocks[0].readings.deduplicated()
        merged = ReadingColumns()
        for block in self.interval_blocks:
            merged.extend(block.readings)
        return merged.deduplicated()


@dataclass(frozen=True, slots=True, kw_only=True)
class SummaryMeasurement:
    """ESPI SummaryMeasurement: ``value × 10^power_of_ten_multiplier`` in ``uom``."""

    power_of_ten_multiplier: int | None = None
    time_stamp: int | None = None
    uom: int | None = None
    value: int | None = None
    reading_type_ref: str | None = None

    @property
    def scaled(self) -> float | None:
        """The value scaled; None without a value or with a scale beyond the SI prefixes
        (GBA test files write 4096 in unused measurements; ``10.0**4096`` overflows)."""
        p = self.power_of_ten_multiplier or 0
        if self.value is None or not MULTIPLIER_MIN <= p <= MULTIPLIER_MAX:
            return None
        return self.value * 10.0**p


@dataclass(frozen=True, slots=True, kw_only=True)
class LineItem:
    """ESPI LineItem of a UsageSummary's ``costAdditionalDetailLastPeriod``."""

    amount: int | None = None
    rounding: int | None = None
    date_time: int | None = None
    note: str | None = None
    measurement: SummaryMeasurement | None = None
    item_kind: int | None = None
    unit_cost: int | None = None
    item_period: DateTimeInterval | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageSummary(_Meta):
    """ESPI UsageSummary (also the older ElectricPowerUsageSummary, named in ``element``).

    Money fields are raw integers in 10^-5 of ``currency`` (the spec's scale; some
    utilities differ, which a utility profile corrects).
    """

    element: str = "UsageSummary"
    billing_period: DateTimeInterval | None = None
    bill_last_period: int | None = None
    bill_to_date: int | None = None
    cost_additional_last_period: int | None = None
    line_items: tuple[LineItem, ...] = ()
    currency: int | None = None
    measurements: Mapping[str, SummaryMeasurement] = field(default_factory=dict)
    quality_of_reading: int | None = None
    status_time_stamp: int | None = None
    commodity: int | None = None
    tariff_profile: str | None = None
    read_cycle: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UsagePoint(_Meta):
    """ESPI UsagePoint: a metered service (electric, gas, water) and its MeterReadings."""

    id: str
    service_kind: int | None = None
    status: int | None = None
    role_flags: str | None = None
    meter_readings: tuple[MeterReading, ...] = ()
    usage_summaries: tuple[UsageSummary, ...] = ()
    local_time_parameters: LocalTimeParameters | None = None

    @property
    def service_kind_name(self) -> str | int | None:
        return code_name(SERVICE_KIND, self.service_kind)


@dataclass(frozen=True, slots=True, kw_only=True)
class Authorization(_Meta):
    """ESPI Authorization: the state of one grant. Periods are normalised to seconds
    (PG&E writes them in milliseconds)."""

    authorized_period: DateTimeInterval | None = None
    published_period: DateTimeInterval | None = None
    status: int | None = None
    expires_at: int | None = None
    grant_type: str | None = None
    scope: str | None = None
    token_type: str | None = None
    error: str | None = None
    error_description: str | None = None
    error_uri: str | None = None
    resource_uri: str | None = None
    authorization_uri: str | None = None
    customer_resource_uri: str | None = None
    application_information_id: str | None = None
    retail_customer_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationInformation(_Meta):
    """ESPI ApplicationInformation: a third party's registration and the custodian's
    endpoints. Secrets in it (``client_secret``, ``registration_access_token``) are kept out
    of ``repr``."""

    data_custodian_id: str | None = None
    data_custodian_application_status: int | None = None
    data_custodian_resource_endpoint: str | None = None
    data_custodian_bulk_request_uri: str | None = None
    data_custodian_scope_selection_screen_uri: str | None = None
    third_party_application_name: str | None = None
    third_party_notify_uri: str | None = None
    third_party_scope_selection_screen_uri: str | None = None
    authorization_server_authorization_endpoint: str | None = None
    authorization_server_token_endpoint: str | None = None
    authorization_server_uri: str | None = None
    client_id: str | None = None
    client_id_issued_at: int | None = None
    client_secret: str | None = field(default=None, repr=False)
    registration_access_token: str | None = field(default=None, repr=False)
    redirect_uris: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()
    response_types: tuple[str, ...] = ()
    token_endpoint_auth_method: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceStatus:
    """ESPI ServiceStatus (ReadServiceStatus): 1 = normal, 0 = unavailable."""

    current_status: int

    @property
    def available(self) -> bool:
        return self.current_status == 1


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchList:
    """ESPI BatchList (a notification): resource URIs to GET, exactly as given."""

    resources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericResource(_Meta):
    """An ESPI resource without a typed model here (ElectricPowerQualitySummary,
    ProgramIdMappings ...): ``element`` is its element name and ``data`` its content as
    nested dicts (repeated children become lists)."""

    element: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerResource(GenericResource):
    """A resource of the customer (PII) namespace ``http://naesb.org/espi/customer``:
    Customer, CustomerAccount, CustomerAgreement, ServiceLocation, Meter, EndDevice ..."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """A parsed Green Button document: resources linked into UsagePoint -> MeterReading
    (+ReadingType) -> IntervalBlock, plus every other resource found, and warnings about
    quirks that were tolerated."""

    usage_points: tuple[UsagePoint, ...] = ()
    reading_types: tuple[ReadingType, ...] = ()
    local_time_parameters: tuple[LocalTimeParameters, ...] = ()
    usage_summaries: tuple[UsageSummary, ...] = ()
    authorizations: tuple[Authorization, ...] = ()
    application_information: tuple[ApplicationInformation, ...] = ()
    customer_resources: tuple[CustomerResource, ...] = ()
    other_resources: tuple[GenericResource, ...] = ()
    service_status: ServiceStatus | None = None
    batch_list: BatchList | None = None
    feed_id: str | None = None
    feed_title: str | None = None
    feed_href: str | None = None
    root: str = "feed"
    warnings: tuple[str, ...] = ()

    @property
    def meter_readings(self) -> tuple[MeterReading, ...]:
        """Every usage point's meter readings, in document order."""
        return tuple(mr for up in self.usage_points for mr in up.meter_readings)

    def between(self, start: datetime | None = None, end: datetime | None = None) -> Document:
        """The same document with only the interval readings starting in ``[start, end)``
        (aware datetimes; None leaves that side open); everything else is kept."""
        lo = None if start is None else int(start.timestamp())
        hi = None if end is None else int(end.timestamp())

        def keep(block: IntervalBlock) -> IntervalBlock:
            starts = block.readings.start
            picked = [
                i
                for i, s in enumerate(starts)
                if (lo is None or s >= lo) and (hi is None or s < hi)
            ]
            if len(picked) == len(starts):
                return block
            return replace(block, readings=block.readings.take(picked))

        points = tuple(
            replace(
                up,
                meter_readings=tuple(
                    replace(mr, interval_blocks=tuple(keep(b) for b in mr.interval_blocks))
                    for mr in up.meter_readings
                ),
            )
            for up in self.usage_points
        )
        return replace(self, usage_points=points)

    def with_time_zone(self, zone: str) -> Document:
        """The same document read in the IANA ``zone`` (e.g. ``America/Los_Angeles``)
        whatever its LocalTimeParameters say: for files whose time zone is wrong (an SDG&E
        sample says UTC). Raises :class:`ValueError` for an unknown zone."""
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {zone!r} (use an IANA name such as America/Los_Angeles)"
            ) from None

        def zoned(ltp: LocalTimeParameters | None) -> LocalTimeParameters:
            return replace(ltp or LocalTimeParameters(), zone_override=zone)

        points = tuple(
            replace(up, local_time_parameters=zoned(up.local_time_parameters))
            for up in self.usage_points
        )
        return replace(
            self,
            usage_points=points,
            local_time_parameters=tuple(zoned(ltp) for ltp in self.local_time_parameters),
        )

    @property
    def reading_count(self) -> int:
        """Readings after de-duplication, over every MeterReading."""
        return sum(len(mr.readings) for mr in self.meter_readings)
