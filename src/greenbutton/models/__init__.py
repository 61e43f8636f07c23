"""Typed models of ESPI resources; interval readings are columns (see ``_readings``)."""

from ._enums import code_name, currency_code, uom_symbol
from ._namespaces import ATOM_NS, CUSTOMER_NS, ESPI_NS
from ._readings import ABSENT, ABSENT32, IntervalReading, ReadingColumns
from ._resources import (
    ApplicationInformation,
    Authorization,
    BatchList,
    CustomerResource,
    DateTimeInterval,
    Document,
    GenericResource,
    IntervalBlock,
    LineItem,
    LocalTimeParameters,
    MeterReading,
    ReadingType,
    ServiceStatus,
    SummaryMeasurement,
    UsagePoint,
    UsageSummary,
)
from ._time import DstRule, RuleTimeZone, TimeZoneInfo, decode_time_zone, parse_dst_rule

__all__ = [
    "ABSENT",
    "ABSENT32",
    "ATOM_NS",
    "ApplicationInformation",
    "Authorization",
    "BatchList",
    "CUSTOMER_NS",
    "CustomerResource",
    "DateTimeInterval",
    "Document",
    "DstRule",
    "ESPI_NS",
    "GenericResource",
    "IntervalBlock",
    "IntervalReading",
    "LineItem",
    "LocalTimeParameters",
    "MeterReading",
    "ReadingColumns",
    "ReadingType",
    "RuleTimeZone",
    "ServiceStatus",
    "SummaryMeasurement",
    "TimeZoneInfo",
    "UsagePoint",
    "UsageSummary",
    "code_name",
    "currency_code",
    "decode_time_zone",
    "parse_dst_rule",
    "uom_symbol",
]
