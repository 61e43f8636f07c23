"""Each usage point's local time, kept beside it so every reader shows local days.

A usage point's LocalTimeParameters are stored as a small JSON record on
``usage_points.local_time`` (Alembic revision 0002): the four ESPI fields plus the label a
person reads ("America/Los_Angeles (UTC-08:00 standard)"). The record is rebuilt into a
time zone with the same rules the parser uses, so a stored point and a parsed file agree.
"""

from __future__ import annotations

import json
from datetime import UTC, tzinfo
from typing import Any

from ..analysis import time_zone_for
from ..models import Document, LocalTimeParameters, UsagePoint

__all__ = ["local_time_record", "time_zone_of"]

_FIELDS = ("tz_offset", "dst_offset", "dst_start_rule", "dst_end_rule")


def local_time_record(document: Document, point: UsagePoint) -> str | None:
    """The JSON record of ``point``'s LocalTimeParameters (or the document's only one)."""
    ltp = point.local_time_parameters
    if ltp is None and len(document.local_time_parameters) == 1:
        ltp = document.local_time_parameters[0]
    if ltp is None:
        return None
    record: dict[str, Any] = {f: getattr(ltp, f) for f in _FIELDS}
    record["label"] = time_zone_for(document, point)[1]
    return json.dumps(record, sort_keys=True)


def time_zone_of(record: str | None) -> tuple[tzinfo, str]:
    """The time zone and its label from a stored record; UTC without one (or a bad one)."""
    if record is None:
        return UTC, "UTC"
    try:
        fields = json.loads(record)
        ltp = LocalTimeParameters(**{f: fields.get(f) for f in _FIELDS})
        info = ltp.time_zone
        return info.tzinfo, info.iana or str(fields.get("label") or "local time")
    except (ValueError, TypeError, AttributeError):
        return UTC, "UTC"
