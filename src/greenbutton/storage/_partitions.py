"""Monthly partitions of the PostgreSQL readings table (r0006), created as ingest needs them.

``readings`` is range-partitioned on ``start`` by UTC calendar month (``readings_YYYYMM``),
with a default partition (``readings_default``) as a safety net. A backfill writes months
years back and a live feed writes the month that just began, so a fixed set made ahead
would always be missing some: ingest creates the partition of every month it is about to
write (:func:`ensure_partitions`), as a DBA running pg_partman would expect, instead of
leaving rows in the default partition for a maintenance job. Rows in the default partition
are a trap there: creating their month's partition later fails until they are moved out.
So the default partition stays empty in normal operation; if rows do land there (the
partition of their month was dropped, or they were written past this module), creating
that month's partition moves them into it.

A partition is made with ``CREATE TABLE ... (LIKE readings)`` and ``ATTACH PARTITION`` in
its own short transaction, under an advisory lock so two workers never race to make the
same month: ``ATTACH`` takes SHARE UPDATE EXCLUSIVE on the parent, so readers and writers
of other months carry on (``CREATE TABLE ... PARTITION OF`` would take ACCESS EXCLUSIVE and
stall every ingest while it waits). ``ATTACH`` adds the parent's primary key and foreign key
to the new table itself. Months outside the years 1-9999 have no partition of their own and
go to the default partition.

Retention is the DBA's: ``ALTER TABLE readings DETACH PARTITION readings_YYYYMM CONCURRENTLY``
then archive or drop it; a later ingest of that month makes a new, empty partition.

Revision r0006 writes the same rules out frozen (names, bounds), as revisions must.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, text

from ._store import Store

__all__ = [
    "DEFAULT_PARTITION",
    "ensure_partitions",
    "include_name",
    "is_partition_name",
    "missing_partitions",
    "month_of",
    "months_between",
    "partition_name",
]

PARENT = "readings"
DEFAULT_PARTITION = "readings_default"
#: Held while partitions are created ("grnp"), one creator at a time per database.
_PARTITION_LOCK = 0x6772_6E70
#: A series spanning more months than this gets partitions only for the months it holds
#: readings in (a stray reading decades off must not make hundreds of empty tables).
_DENSE_MONTHS = 120
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def month_of(epoch: int) -> int | None:
    """The start (epoch seconds) of the UTC month holding ``epoch``; None outside 1-9999."""
    try:
        t = datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return _epoch(t.year, t.month)


def _epoch(year: int, month: int) -> int:
    return int((datetime(year, month, 1, tzinfo=UTC) - _EPOCH).total_seconds())


def _next(month_start: int) -> int | None:
    t = datetime.fromtimestamp(month_start, UTC)
    if t.year == 9999 and t.month == 12:
        return None
    return _epoch(t.year + t.month // 12, t.month % 12 + 1)


def partition_name(month_start: int) -> str:
    """``readings_YYYYMM`` for the month starting at ``month_start``."""
    t = datetime.fromtimestamp(month_start, UTC)
    return f"{PARENT}_{t.year:04d}{t.month:02d}"


def is_partition_name(name: str) -> bool:
    """Whether ``name`` is one of the readings table's partitions (not a table of its own)."""
    if name == DEFAULT_PARTITION:
        return True
    digits = name.removeprefix(f"{PARENT}_")
    return len(digits) == 6 and digits != name and digits.isdigit()


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: autogenerate and ``compare_metadata`` compare
    ``readings``, not its partitions (tables the metadata rightly does not declare)."""
    return type_ != "table" or name is None or not is_partition_name(name)


#: The readings → meter readings key, declared in ``_schema`` (SQLite enforces it); on
#: PostgreSQL statement-level triggers check the same rule instead (r0010: the per-row key
#: check cost ingest 2.7×).
SET_CHECKED_KEY = "fk_readings_meter_reading_id"


def include_object(dialect: str) -> Callable[[object, str | None, str, bool, object], bool]:
    """Alembic's ``include_object`` hook for a database of ``dialect``: on PostgreSQL the
    declared readings → meter readings key is checked by r0010's triggers, not by a
    constraint, so its absence is not drift."""

    def include(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
        return not (
            dialect == "postgresql" and type_ == "foreign_key_constraint"
            and name == SET_CHECKED_KEY and not reflected
        )  # fmt: skip

    return include


def months_between(lo: int, hi: int, starts: Iterable[int] = ()) -> set[int]:
    """The months to partition for readings starting in ``[lo, hi]``: every month between
    (a year of data gets its twelve), or, over more than ``_DENSE_MONTHS``, only the months
    of ``starts``."""
    first, last = month_of(lo), month_of(hi)
    if first is not None and last is not None and last - first <= _DENSE_MONTHS * 31 * 86400:
        out: set[int] = set()
        month: int | None = first
        while month is not None and month <= last:
            out.add(month)
            month = _next(month)
        return out
    return {m for m in map(month_of, starts) if m is not None}


def missing_partitions(conn: Connection, months: set[int]) -> set[int]:
    """Of ``months``, those without an attached partition; empty when ``readings`` is not
    partitioned (SQLite, or PostgreSQL before r0006)."""
    if conn.dialect.name != "postgresql" or not months:
        return set()
    names = {partition_name(m): m for m in months}
    row = conn.execute(
        text(
            "SELECT EXISTS (SELECT FROM pg_partitioned_table WHERE partrelid = p.oid),"
            " array(SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            "       WHERE i.inhparent = p.oid AND c.relname = ANY(:names))"
            " FROM (SELECT to_regclass(:parent) AS oid) p"
        ),
        {"names": list(names), "parent": PARENT},
    ).one()
    partitioned, present = row
    if not partitioned:
        return set()
    return {m for n, m in names.items() if n not in set(present)}


def ensure_partitions(store: Store, months: set[int]) -> None:
    """Create the partitions of ``months`` that do not exist yet, each moving in any rows of
    its month from the default partition; one short transaction, one creator at a time."""

    def create(conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PARTITION_LOCK})
        todo = sorted(missing_partitions(conn, months))  # again, now that we hold the lock
        if not todo:
            return
        exists = text("SELECT to_regclass(:n) IS NOT NULL")
        has_default = conn.execute(exists, {"n": DEFAULT_PARTITION}).scalar()
        if has_default:  # ATTACH takes this lock anyway: taking it first cannot deadlock
            conn.execute(text(f"LOCK TABLE {DEFAULT_PARTITION} IN ACCESS EXCLUSIVE MODE"))
        for month in todo:
            name, end = partition_name(month), _next(month)
            upper = "MAXVALUE" if end is None else str(end)
            conn.execute(
                text(
                    f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                )
            )
            if has_default:
                bound = f"start >= {month}" + ("" if end is None else f" AND start < {end}")
                conn.execute(
                    text(
                        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE {bound}"  # noqa: S608
                        f" RETURNING *) INSERT INTO {name} SELECT * FROM moved"
                    )
                )
            conn.execute(
                text(
                    f"ALTER TABLE {PARENT} ATTACH PARTITION {name}"
                    f" FOR VALUES FROM ({month}) TO ({upper})"
                )
            )

    store.transaction(create)
