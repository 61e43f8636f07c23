"""Link resolution: records -> UsagePoint -> MeterReading (+ReadingType) -> IntervalBlocks.

Implements ESPI_NOTES 3.5. Children are found, in order of preference, by their ``up``
link naming a collection the parent lists as ``related``; by the parent's ``related`` link
naming the child itself (Burlington Hydro, Opower); by the child linking back to the
parent; by path prefix (SDG&E). IntervalBlocks sent without their MeterReading (FB 19
partial updates) get one derived from their own links; documents with no links at all
(early DMD files) fall back to document order: a ReadingType applies to the blocks after it.
Path lookups walk a href's prefixes in a dict, so a bulk feed with thousands of usage
points links in linear time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models import LocalTimeParameters, ReadingType, UsageSummary
from ._records import Record

__all__ = ["Linker", "MeterNode", "PointNode", "link"]


@dataclass(slots=True)
class MeterNode:
    key: str
    record: Record | None
    href: str | None
    reading_type: ReadingType | None = None
    blocks: list[Record] = field(default_factory=list)


@dataclass(slots=True)
class PointNode:
    key: str
    record: Record | None
    href: str | None
    meters: list[MeterNode] = field(default_factory=list)
    summaries: list[UsageSummary] = field(default_factory=list)
    local_time: LocalTimeParameters | None = None


class _Parents:
    """Index of candidate parents for the child-finding rules."""

    def __init__(self, parents: list[Record]):
        self.by_self: dict[str, Record] = {}
        self.by_related: dict[str, Record] = {}
        for p in parents:
            if p.self:
                self.by_self.setdefault(p.self, p)
            for h in p.related:
                self.by_related.setdefault(h, p)

    def find(self, child: Record) -> Record | None:
        if child.up and child.up in self.by_related:
            return self.by_related[child.up]
        if child.self and child.self in self.by_related:
            return self.by_related[child.self]
        for h in child.related:
            if h in self.by_self:
                return self.by_self[h]
        for href in (child.self, child.up):
            p = self._prefix(href)
            if p is not None:
                return p
        return None

    def _prefix(self, href: str | None) -> Record | None:
        while href:
            href = href.rpartition("/")[0]
            if href in self.by_self:
                return self.by_self[href]
        return None


def _strip_after(href: str | None, segment: str) -> str | None:
    """``a/MeterReading/1/IntervalBlock/7`` -> ``a/MeterReading/1`` for segment IntervalBlock."""
    if not href:
        return None
    parts = href.split("/")
    if segment in parts:
        i = len(parts) - 1 - parts[::-1].index(segment)
        return "/".join(parts[:i]) or None
    return None


def _fields(rt: ReadingType) -> tuple[object, ...]:
    """A ReadingType's values without its Atom metadata."""
    return tuple(
        getattr(rt, f)
        for f in (
            "uom",
            "power_of_ten_multiplier",
            "interval_length",
            "flow_direction",
            "kind",
            "commodity",
            "currency",
        )
    )


def _key(rec: Record | None, fallback: str) -> str:
    if rec is None:
        return fallback
    return rec.self or rec.atom_id or fallback


def link(records: list[Record], warnings: list[str]) -> list[PointNode]:
    """Assemble the UsagePoint tree from records in document order."""
    blocks = [r for r in records if r.kind == "IntervalBlock"]
    if blocks and not any(r.self or r.up or r.related for r in records):
        ups = [r for r in records if r.kind == "UsagePoint"]
        return _by_document_order(records, ups, warnings)
    linker = Linker([r for r in records if r.kind != "IntervalBlock"], warnings)
    for b in blocks:
        linker.add_block(b)
    return linker.finish()


class Linker:
    """The link rules of :func:`link`, with IntervalBlocks added one at a time.

    Built from every record but the blocks (small even for a Bulk file of thousands of
    usage points), so a reader that streams blocks can attach each to its MeterNode as it
    comes and let go of it after (``greenbutton.parse.iter_batches``)."""

    def __init__(self, records: list[Record], warnings: list[str]) -> None:
        self.warnings = warnings
        kinds: dict[str, list[Record]] = {}
        for r in records:
            kinds.setdefault(r.kind, []).append(r)
        ups = kinds.get("UsagePoint", [])
        mrs = kinds.get("MeterReading", [])
        rts = kinds.get("ReadingType", [])
        ltps = kinds.get("LocalTimeParameters", [])
        self.summaries = sorted(
            kinds.get("UsageSummary", []) + kinds.get("ElectricPowerUsageSummary", []),
            key=lambda r: r.index,
        )
        rt_by_self: dict[str, ReadingType] = {}
        for r in rts:
            if r.self:
                previous = rt_by_self.get(r.self)
                if previous is not None and _fields(previous) != _fields(r.resource):
                    warnings.append(
                        f"two different ReadingType entries share the link {r.self}; the "
                        "later one is used"
                    )
                rt_by_self[r.self] = r.resource
        ltp_by_self = {r.self: r.resource for r in ltps if r.self}
        self.only_rt = rts[0].resource if len(rts) == 1 else None
        self.only_ltp = ltps[0].resource if len(ltps) == 1 else None

        self.points: dict[str, PointNode] = {}
        self.point_of: dict[int, PointNode] = {}
        for r in ups:
            key = _key(r, f"UsagePoint/{len(self.points) + 1}")
            node = self.points.get(key)
            if node is None:
                node = self.points[key] = PointNode(key=key, record=r, href=r.self)
                ltp = next((ltp_by_self[h] for h in r.related if h in ltp_by_self), None)
                node.local_time = ltp or self.only_ltp
            self.point_of[id(r)] = node

        self.up_index = up_index = _Parents(ups)
        self.meters: dict[str, MeterNode] = {}
        self.meter_of: dict[int, MeterNode] = {}
        #: The point each meter belongs to (a streaming reader batches by point).
        self.point_of_meter: dict[int, PointNode] = {}
        for r in mrs:
            key = _key(r, f"MeterReading/{len(self.meters) + 1}")
            mnode = self.meters.get(key)
            if mnode is None:
                rt = next((rt_by_self[h] for h in r.related if h in rt_by_self), None)
                mnode = self.meters[key] = MeterNode(
                    key=key, record=r, href=r.self, reading_type=rt or self.only_rt
                )
                parent = up_index.find(r)
                if parent is not None:
                    point = self.point_of[id(parent)]
                else:
                    point = self._point_for(
                        _strip_after(r.self or r.up, "MeterReading"), "UsagePoint/1"
                    )
                point.meters.append(mnode)
                self.point_of_meter[id(mnode)] = point
            self.meter_of[id(r)] = mnode
        self.mr_index = _Parents(mrs)

    def _point_for(self, href: str | None, fallback: str) -> PointNode:
        key = href or fallback
        node = self.points.get(key)
        if node is None:
            node = self.points[key] = PointNode(key=key, record=None, href=href)
            node.local_time = self.only_ltp
        return node

    def add_block(self, b: Record) -> MeterNode:
        """Attach one IntervalBlock record to its meter (derived from the block's links
        when the document has no MeterReading for it); returns that meter."""
        mr_index = self.mr_index
        mparent = mr_index.find(b)
        if mparent is not None:
            meter = self.meter_of[id(mparent)]
        else:
            derived = _strip_after(b.up or b.self, "IntervalBlock") or "MeterReading/1"
            found = self.meters.get(derived)
            if found is None:
                meter = self.meters[derived] = MeterNode(key=derived, record=None, href=derived)
                meter.reading_type = self.only_rt
                if self.only_rt is None:
                    self.warnings.append(
                        f"IntervalBlocks of {derived} come without their MeterReading or "
                        "ReadingType; values are shown unscaled and without units"
                    )
                point = self._point_for(_strip_after(derived, "MeterReading"), "UsagePoint/1")
                point.meters.append(meter)
                self.point_of_meter[id(meter)] = point
            else:
                meter = found
        meter.blocks.append(b)
        return meter

    def parent_point(self, r: Record) -> PointNode | None:
        """The usage point a child record (a summary) belongs to, by the link rules."""
        up_index = self.up_index
        parent = up_index.find(r)
        return None if parent is None else self.point_of[id(parent)]

    def finish(self) -> list[PointNode]:
        """The usage points, with their summaries; warns of meters without a ReadingType."""
        up_index = self.up_index
        for s in self.summaries:
            sparent = up_index.find(s)
            if sparent is not None and s.resource is not None:
                self.point_of[id(sparent)].summaries.append(s.resource)
        self.summaries = []
        for m in self.meters.values():
            if m.reading_type is None and m.blocks and m.record is not None:
                self.warnings.append(
                    f"MeterReading {m.key} has no ReadingType; values are unscaled"
                )
        return list(self.points.values())


def _by_document_order(
    records: list[Record], ups: list[Record], warnings: list[str]
) -> list[PointNode]:
    """No links anywhere (early SDG&E DMD): a ReadingType applies to the blocks after it."""
    warnings.append("the document has no links; readings are grouped in document order")
    up_rec = ups[0] if len(ups) == 1 else None
    point = PointNode(key=_key(up_rec, "UsagePoint/1"), record=up_rec, href=None)
    meter: MeterNode | None = None
    current_rt: ReadingType | None = None
    for r in records:
        if r.kind == "ReadingType":
            current_rt = r.resource
            meter = None
        elif r.kind == "LocalTimeParameters" and point.local_time is None:
            point.local_time = r.resource
        elif r.kind in ("UsageSummary", "ElectricPowerUsageSummary") and r.resource is not None:
            point.summaries.append(r.resource)
        elif r.kind == "IntervalBlock":
            if meter is None:
                n = len(point.meters) + 1
                meter = MeterNode(key=f"{point.key}/MeterReading/{n}", record=None, href=None)
                meter.reading_type = current_rt
                point.meters.append(meter)
            meter.blocks.append(r)
    return [point]
