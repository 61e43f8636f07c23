"""Records + links -> the typed :class:`~greenbutton.models.Document`."""

from __future__ import annotations

import operator
from itertools import islice

from lxml import etree

from ..models import (
    ABSENT,
    ApplicationInformation,
    Authorization,
    BatchList,
    CustomerResource,
    Document,
    GenericResource,
    IntervalBlock,
    LocalTimeParameters,
    MeterReading,
    ReadingColumns,
    ReadingType,
    ServiceStatus,
    UsagePoint,
    UsageSummary,
)
from ._links import MeterNode, PointNode
from ._records import Record, normalize_href
from ._xml import ATOM

__all__ = ["FeedInfo", "assemble", "fill_durations", "read_feed_info"]

_A = f"{{{ATOM}}}"


class FeedInfo:
    __slots__ = ("href", "id", "title")

    def __init__(self) -> None:
        self.id: str | None = None
        self.title: str | None = None
        self.href: str | None = None


def read_feed_info(root: etree._Element) -> FeedInfo:
    info = FeedInfo()
    for child in root:
        if child.tag == _A + "id":
            info.id = (child.text or "").strip() or None
        elif child.tag == _A + "title":
            info.title = (child.text or "").strip() or None
        elif child.tag == _A + "link" and child.get("rel") == "self":
            info.href = normalize_href(child.get("href"))
    return info


def _last_segment(href: str | None) -> str | None:
    return href.rstrip("/").rpartition("/")[2] or None if href else None


def fill_durations(
    cols: ReadingColumns, rt: ReadingType | None, warnings: list[str], key: str
) -> None:
    """Readings without a duration take the ReadingType's intervalLength (else 0)."""
    durations = cols.duration
    if ABSENT not in durations:
        return
    fill = rt.interval_length if rt is not None and rt.interval_length is not None else 0
    warnings.append(f"{key}: readings without a duration; using {fill} s")
    for i, d in enumerate(durations):
        if d == ABSENT:
            durations[i] = fill


def _dropped(columns: list[ReadingColumns]) -> int:
    """How many readings ``MeterReading.readings`` leaves out because a later one has the
    same start (DESIGN 3.3). Blocks in time order without repeats, the usual case, cost
    one comparison a reading and no set."""
    high: int | None = None
    for cols in columns:
        starts = cols.start
        n = len(starts)
        if not n:
            continue
        if (high is not None and starts[0] <= high) or not all(
            map(operator.lt, starts, islice(starts, 1, None))
        ):
            break
        high = starts[-1]
    else:
        return 0
    total = sum(len(c) for c in columns)
    return total - len({s for c in columns for s in c.start})


def _meter(node: MeterNode, warnings: list[str]) -> MeterReading:
    r = node.record
    blocks = []
    columns = [b.readings for b in node.blocks if b.readings is not None]
    dropped = _dropped(columns)
    if dropped:
        total = sum(len(c) for c in columns)
        # One warning for the series, whatever the cause: a gas export that stamps every
        # reading with the same (fractional) start keeps 1 of its 36 billing periods.
        warnings.append(
            f"{node.key}: {dropped} of {total} readings dropped: they repeat the start of a "
            "later reading, and the last occurrence of each start is kept"
        )
    for b in node.blocks:
        cols = b.readings if b.readings is not None else ReadingColumns()
        fill_durations(cols, node.reading_type, warnings, node.key)
        blocks.append(
            IntervalBlock(
                href=b.self,
                atom_id=b.atom_id,
                title=b.title,
                published=b.published,
                updated=b.updated,
                interval=b.interval or IntervalBlock().interval,
                readings=cols,
            )
        )
    return MeterReading(
        id=_last_segment(node.href) or (r.atom_id if r else None) or node.key,
        href=node.href,
        atom_id=r.atom_id if r else None,
        title=r.title if r else None,
        published=r.published if r else None,
        updated=r.updated if r else None,
        reading_type=node.reading_type,
        interval_blocks=tuple(blocks),
    )


def _point(node: PointNode, warnings: list[str]) -> UsagePoint:
    r = node.record
    info = r.resource if r is not None and isinstance(r.resource, dict) else {}
    return UsagePoint(
        id=_last_segment(node.href) or (r.atom_id if r else None) or node.key,
        href=node.href,
        atom_id=r.atom_id if r else None,
        title=r.title if r else None,
        published=r.published if r else None,
        updated=r.updated if r else None,
        service_kind=info.get("service_kind"),
        status=info.get("status"),
        role_flags=info.get("role_flags"),
        meter_readings=tuple(_meter(m, warnings) for m in node.meters),
        usage_summaries=tuple(node.summaries),
        local_time_parameters=node.local_time,
    )


def assemble(
    records: list[Record],
    points: list[PointNode],
    feed: FeedInfo,
    root: str,
    warnings: list[str],
) -> Document:
    """Build the Document; every resource found is also listed flat by type."""
    resources = [r.resource for r in records if r.resource is not None]

    def of(cls: type) -> tuple:  # type: ignore[type-arg]
        return tuple(x for x in resources if isinstance(x, cls))

    status = of(ServiceStatus)
    batch = of(BatchList)
    for ltp in of(LocalTimeParameters):
        for problem in ltp.time_zone.problems:
            warnings.append(f"LocalTimeParameters {ltp.href or ltp.atom_id or ''}: {problem}")
    return Document(
        usage_points=tuple(_point(p, warnings) for p in points),
        reading_types=of(ReadingType),
        local_time_parameters=of(LocalTimeParameters),
        usage_summaries=of(UsageSummary),
        authorizations=of(Authorization),
        application_information=of(ApplicationInformation),
        customer_resources=of(CustomerResource),
        other_resources=tuple(
            x
            for x in resources
            if isinstance(x, GenericResource) and not isinstance(x, CustomerResource)
        ),
        service_status=status[0] if status else None,
        batch_list=batch[0] if batch else None,
        feed_id=feed.id,
        feed_title=feed.title,
        feed_href=feed.href,
        root=root,
        warnings=tuple(dict.fromkeys(warnings)),
    )
