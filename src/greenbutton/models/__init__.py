"""Typed models: ESPI resources (interval readings are columns, see ``_readings``), the rows
of the readings table (``_rows``) and the description of a utility (``_profile``), which
the layers above (parse, oauth, espi, client) are all built from."""

from ._enums import code_name, currency_code, uom_symbol
from ._namespaces import ATOM_NS, CUSTOMER_NS, ESPI_NS
from ._profile import PGE, Credentials, UtilityProfile
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
from ._rows import COLUMNS, DEFAULT_COST_SCALE, Reading, Series
from ._time import DstRule, RuleTimeZone, TimeZoneInfo, decode_time_zone, parse_dst_rule

__all__ = [
    "ABSENT",
    "ABSENT32",
    "ATOM_NS",
    "ApplicationInformation",
    "Authorization",
    "BatchList",
    "COLUMNS",
    "CUSTOMER_NS",
    "Credentials",
    "CustomerResource",
    "DEFAULT_COST_SCALE",
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
    "PGE",
    "Reading",
    "ReadingColumns",
    "ReadingType",
    "RuleTimeZone",
    "Series",
    "ServiceStatus",
    "SummaryMeasurement",
    "TimeZoneInfo",
    "UsagePoint",
    "UsageSummary",
    "UtilityProfile",
    "code_name",
    "currency_code",
    "decode_time_zone",
    "parse_dst_rule",
    "uom_symbol",
]
