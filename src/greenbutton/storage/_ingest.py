"""Ingest: parsed documents into the readings table, one resource per transaction.

Each resource's readings, its usage points and meter readings, and its job's ``done`` marker
are written in one transaction (SECURITY R62), so a crash or a failed write leaves all of the
resource or none of it, and re-running a pending job converges to the same database. Rows are
upserted on the natural key (R60) after in-memory de-duplication, last occurrence winning
(DESIGN 3.3, R61: PostgreSQL refuses to update a row twice in one statement), and the stored
counts and sums are reconciled with the document before commit (R64).

The bulk path builds driver rows straight from the ``ReadingColumns`` arrays: SQLite gets
``executemany`` over an iterator in batches; PostgreSQL gets one ``COPY`` per resource,
straight into ``readings`` when none of its rows can be stored yet, else into a temporary
table and one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE``. On PostgreSQL the months a resource
writes get their partitions first (``_partitions``), in a transaction of their own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice, repeat
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from .._errors import ReconciliationError
from ..models import (
    ABSENT,
    ABSENT32,
    DEFAULT_COST_SCALE,
    Document,
    MeterReading,
    Reading,
    ReadingColumns,
    ReadingType,
    Series,
)
from ..parse import parse, series_key
from ._local_time import local_time_record
from ._partitions import ensure_partitions, missing_partitions, months_between
from ._schema import ingest_jobs, meter_readings, readings, usage_points
from ._store import StorageError, Store, sqlstate

__all__ = [
    "LEASE_SECONDS",
    "LEASE_SLACK",
    "IngestResult",
    "ReconciliationError",
    "claim_job",
    "create_job",
    "export_readings",
    "fail_job",
    "ingest_document",
    "ingest_file",
    "lease_owner",
    "pending_jobs",
    "start_job",
    "unstart_job",
]

log = logging.getLogger("greenbutton.storage")

BATCH_SIZE = 10_000
#: Attempts of one resource's transaction after a serialization failure (40001), a deadlock
#: (40P01) or a dropped connection; the transaction is rolled back, so re-running is safe.
RETRY_ATTEMPTS = 5
#: How long a claimed job is its claimer's (seconds): longer than one attempt can take.
#: Every process sharing a database should use the same value (see :func:`claim_job`).
LEASE_SECONDS = 600.0
#: A claim's ``now`` is read before its UPDATE, which may wait on a lock while another
#: process claims with a later ``now``: leases ending up to this much more than a lease
#: length ahead are live, not the mark of a clock set back.
LEASE_SLACK = 60.0

_READING_COLUMNS = (
    "meter_reading_id", "start", "usage_point_id", "duration", "raw_value", "multiplier",
    "uom", "cost", "quality", "quality_codes", "tou",
)  # fmt: skip
_UPDATE_SET = ", ".join(f"{c} = excluded.{c}" for c in _READING_COLUMNS[2:])
_CONFLICT = f"ON CONFLICT (meter_reading_id, start) DO UPDATE SET {_UPDATE_SET}"
_COLS = ", ".join(_READING_COLUMNS)
_MARKS = ", ".join("?" * len(_READING_COLUMNS))
_SQLITE_UPSERT = f"INSERT INTO readings ({_COLS}) VALUES ({_MARKS}) {_CONFLICT}"  # noqa: S608
_PG_LOAD_TABLE = "greenbutton_readings_load"
_PG_MERGE = f"INSERT INTO readings ({_COLS}) SELECT {_COLS} FROM {_PG_LOAD_TABLE} {_CONFLICT}"  # noqa: S608

_READING_TYPE_FIELDS = (
    "uom", "power_of_ten_multiplier", "flow_direction", "kind", "commodity", "interval_length",
    "currency", "default_quality", "accumulation_behaviour", "data_qualifier",
    "time_attribute", "tou", "phase", "consumption_tier", "cpp", "measuring_period",
)  # fmt: skip


class _MissingPartitions(Exception):
    """The readings need months without a partition yet: make them, then write again."""

    def __init__(self, months: set[int]):
        super().__init__(months)
        self.months = months


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one resource put in the database."""

    usage_points: int
    meter_readings: int
    rows: int


#: Upsert statements by (dialect, table, key columns, value columns), built once: building
#: and hashing a construct per row cost more than the database's work for a Bulk file of
#: thousands of usage points (bench/ingest_scale.py, the Bulk-shaped row).
_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}


def _upsert_all(
    conn: Connection, table: Any, keys: list[str], rows: Iterable[dict[str, Any]]
) -> dict[tuple[Any, ...], int]:
    """Upsert ``rows`` on ``keys``; the ids by key tuple.

    Rows with the same key are merged first, later values winning and a column only an
    earlier one names kept (what upserting them one by one stores; R61: one statement may
    not touch a row twice). One executemany per set of columns: SQLAlchemy sends it as
    multi-row ``INSERT ... RETURNING`` in parameter order ("insertmanyvalues"), so a Bulk
    file's thousands of usage points cost a few round trips, not one each."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        merged[key] = {**merged[key], **row} if key in merged else row
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in merged.values():
        groups.setdefault(tuple(row), []).append(row)
    ids: dict[tuple[Any, ...], int] = {}
    name = conn.dialect.name
    for columns, group in groups.items():
        cache_key = (name, table.name, tuple(keys), columns)
        stmt = _UPSERTS.get(cache_key)
        if stmt is None:
            base = (sqlite if name == "sqlite" else postgresql).insert(table)
            changed = [k for k in columns if k not in keys] or keys[:1]
            stmt = base.on_conflict_do_update(
                index_elements=keys, set_={k: base.excluded[k] for k in changed}
            ).returning(table.c.id, sort_by_parameter_order=True)
            _UPSERTS[cache_key] = stmt
        got = conn.execute(stmt, group).scalars().all()
        ids.update((tuple(row[k] for k in keys), int(i)) for row, i in zip(group, got, strict=True))
    return ids


def _absent_to_none(column: Iterable[int], absent: int) -> Iterable[int | None]:
    return [None if v == absent else v for v in column]


def _rows(
    mr_id: int, up_id: int, multiplier: int, uom: int | None, cols: ReadingColumns
) -> Iterator[tuple[Any, ...]]:
    """Driver rows in ``_READING_COLUMNS`` order, straight from the arrays."""
    n = len(cols)
    values = _absent_to_none(cols.value, ABSENT) if ABSENT in cols.value else cols.value
    costs = _absent_to_none(cols.cost, ABSENT) if _present(cols.cost, ABSENT) else repeat(None, n)
    if _present(cols.quality, ABSENT32):
        qualities: Iterable[int | None] = _absent_to_none(cols.quality, ABSENT32)
    else:
        qualities = repeat(None, n)
    tous = _absent_to_none(cols.tou, ABSENT32) if _present(cols.tou, ABSENT32) else repeat(None, n)
    if cols.extra_quality:
        extra = cols.extra_quality
        codes: Iterable[str | None] = [
            ";".join(map(str, extra[i])) if i in extra else None for i in range(n)
        ]
    else:
        codes = repeat(None, n)
    return zip(
        repeat(mr_id, n), cols.start, repeat(up_id, n), cols.duration, values,
        repeat(multiplier, n), repeat(uom, n), costs, qualities, codes, tous,
        strict=False,
    )  # fmt: skip


def _present(column: Any, absent: int) -> bool:
    """Whether any element differs from ``absent`` (a C-speed scan for the common cases)."""
    n = len(column)
    return n > 0 and column.count(absent) != n


def _write_sqlite(conn: Connection, rows: Iterator[tuple[Any, ...]], batch_size: int) -> None:
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        while batch := list(islice(rows, batch_size)):
            _write_batch(cur, batch)
    finally:
        cur.close()


def _write_batch(cur: Any, batch: list[tuple[Any, ...]]) -> None:
    """One ``executemany`` (a seam for fault-injection tests)."""
    cur.executemany(_SQLITE_UPSERT, batch)


#: One row per series (meter reading id, usage point id, multiplier, uom, readings).
_Series = tuple[int, int, int, int | None, ReadingColumns]


def _write_postgresql(conn: Connection, series: list[_Series], batch_size: int) -> None:
    """All of a resource's readings in one COPY.

    When no stored reading of any of its series falls in the resource's time range (a
    backfill, the next window) the rows are copied straight into ``readings``: no staging
    table, no ``ON CONFLICT`` probe per row. Otherwise, or when a concurrent writer stored
    some of the same rows meanwhile (a unique violation: the copy is rolled back to its
    savepoint, one per transaction), they are copied into a temporary staging table and
    merged with one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE``."""
    raw: Any = conn.connection.dbapi_connection  # a psycopg Connection
    with raw.cursor() as cur:
        if not _any_stored(cur, series):
            cur.execute("SAVEPOINT greenbutton_copy")
            try:
                _copy(cur, "readings", series, batch_size)
            except raw.Error as exc:
                if sqlstate(exc) != "23505":  # unique_violation: someone stored them first
                    raise
                cur.execute("ROLLBACK TO SAVEPOINT greenbutton_copy")
            else:
                cur.execute("RELEASE SAVEPOINT greenbutton_copy")
                return
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_PG_LOAD_TABLE} "
            "(LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        cur.execute(f"TRUNCATE {_PG_LOAD_TABLE}")
        _copy(cur, _PG_LOAD_TABLE, series, batch_size)
        cur.execute(_PG_MERGE)


def _any_stored(cur: Any, series: list[_Series]) -> bool:
    """Whether a stored reading of one of ``series`` lies in that series' time range (an
    index probe per series; LATERAL ... LIMIT 1 keeps it one, partitions pruned)."""
    ids, lows, highs = [], [], []
    for mr_id, _up, _mult, _uom, cols in series:
        ids.append(mr_id)
        lows.append(min(cols.start))
        highs.append(max(cols.start))
    cur.execute(
        "SELECT EXISTS (SELECT FROM unnest(%s::integer[], %s::bigint[], %s::bigint[])"
        " AS v(m, lo, hi), LATERAL (SELECT FROM readings r WHERE r.meter_reading_id = v.m"
        " AND r.start BETWEEN v.lo AND v.hi LIMIT 1) AS hit)",
        (ids, lows, highs),
    )
    return bool(cur.fetchone()[0])


#: ``readings``' column types in ``_READING_COLUMNS`` order, for binary COPY: psycopg's C
#: dumpers write binary rows about twice as fast as text ones (bench/ingest_scale.py).
_PG_TYPES = (
    "int4", "int8", "int4", "int4", "int8", "int2", "int2", "int8", "int4", "text", "int4",
)  # fmt: skip


def _copy(cur: Any, table: str, series: list[_Series], batch_size: int) -> None:
    with cur.copy(f"COPY {table} ({_COLS}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_PG_TYPES)
        for mr_id, up_id, multiplier, uom, cols in series:
            rows = _rows(mr_id, up_id, multiplier, uom, cols)
            while batch := list(islice(rows, batch_size)):
                _copy_batch(copy, batch)


def _copy_batch(copy: Any, batch: list[tuple[Any, ...]]) -> None:
    for row in batch:
        copy.write_row(row)


def _reading_type_values(rt: ReadingType | None) -> dict[str, Any]:
    rt = rt or ReadingType()
    values = {name: getattr(rt, name) for name in _READING_TYPE_FIELDS}
    values["reading_type_href"] = rt.href
    return values


def _signature(values: Mapping[Any, Any]) -> tuple[Any, ...]:
    """What a meter reading measures (its ReadingType's codes), without its links."""
    return tuple(values[name] for name in _READING_TYPE_FIELDS)


_STORED_SERIES = select(
    meter_readings.c.id,
    meter_readings.c.key,
    meter_readings.c.atom_id,
    *[meter_readings.c[n] for n in _READING_TYPE_FIELDS],
    meter_readings.c.usage_point_id,
).where(meter_readings.c.usage_point_id.in_(bindparam("ups", expanding=True)))
#: Usage points per stored-series query (SQLite allows 32,766 parameters per statement).
_IDS_PER_QUERY = 5000


def _follow_all_rekeyed(conn: Connection, incoming: Mapping[int, Sequence[MeterReading]]) -> None:
    """:func:`_follow_rekeyed` for every usage point of a document, their stored series
    read with a query per :data:`_IDS_PER_QUERY` usage points instead of one each."""
    ups = list(incoming)
    stored: dict[int, list[Any]] = {}
    for i in range(0, len(ups), _IDS_PER_QUERY):
        for row in conn.execute(_STORED_SERIES, {"ups": ups[i : i + _IDS_PER_QUERY]}):
            stored.setdefault(row.usage_point_id, []).append(row)
    for up_id, meters in incoming.items():
        if up_id in stored:
            _follow_rekeyed(conn, stored[up_id], meters)


def _follow_rekeyed(
    conn: Connection, stored: Sequence[Any], incoming: Sequence[MeterReading]
) -> None:
    """SECURITY R65: a custodian that re-keys its MeterReading ids (PG&E did in 2024) serves
    the same series under a new path. Before upserting, a stored meter reading of this
    usage point that the document no longer names takes the new key when it is the same
    series: the same Atom id, else the only stored and the only new series of that
    ReadingType. Its readings then upsert onto their own rows (no duplicate intervals);
    each such migration is logged. Anything ambiguous is left alone (a new series)."""
    mr = meter_readings
    keys = {series_key(m): m for m in incoming}
    gone = [row for row in stored if row.key not in keys]
    new = [m for k, m in keys.items() if k not in {row.key for row in stored}]
    if not gone or not new:
        return
    moves: dict[int, MeterReading] = {}
    by_atom = {row.atom_id: row for row in gone if row.atom_id}
    for m in new:
        row = by_atom.get(m.atom_id) if m.atom_id else None
        if row is not None:
            moves[row.id] = m
    left_rows = [row for row in gone if row.id not in moves]
    left_new = [m for m in new if m not in moves.values()]
    for sig in {_signature(_reading_type_values(m.reading_type)) for m in left_new}:
        rows = [r for r in left_rows if _signature(r._mapping) == sig]
        news = [m for m in left_new if _signature(_reading_type_values(m.reading_type)) == sig]
        if len(rows) == 1 and len(news) == 1:
            moves[rows[0].id] = news[0]
    for row_id, m in moves.items():
        old = next(r.key for r in gone if r.id == row_id)
        log.warning("meter reading re-keyed by the custodian: %s -> %s (R65)", old, series_key(m))
        conn.execute(
            update(mr)
            .where(mr.c.id == row_id)
            .values(key=series_key(m), href=m.href, atom_id=m.atom_id)
        )


def _months(document: Document) -> set[int]:
    """The months (partitions) the document's readings fall in."""
    spans: dict[tuple[int, int], Any] = {}  # customers of a Bulk file share their blocks' spans
    for mr in document.meter_readings:
        for block in mr.interval_blocks:
            if starts := block.readings.start:
                spans.setdefault((min(starts), max(starts)), starts)
    months: set[int] = set()
    for (lo, hi), starts in spans.items():
        months |= months_between(lo, hi, starts)
    return months


def _merged(blocks: list[ReadingColumns]) -> ReadingColumns:
    if len(blocks) == 1:
        return blocks[0]
    merged = ReadingColumns()
    for cols in blocks:
        merged.extend(cols)
    return merged.deduplicated()


def ingest_document(
    store: Store,
    document: Document,
    *,
    job_id: int | None = None,
    namespace: str = "",
    authorization_id: int | None = None,
    payload_hash: str | None = None,
    cost_scale: int = DEFAULT_COST_SCALE,
    batch_size: int = BATCH_SIZE,
    rows_before: int = 0,
) -> IngestResult:
    """Store every usage point, meter reading and reading of ``document`` in one transaction.

    With ``job_id`` the job is marked ``done`` in that same transaction, its ``rows`` this
    document's plus ``rows_before`` (what earlier batches of the same job stored: a Bulk
    file ingested in parts, ``storage._bulk``). Re-ingesting the
    same document changes nothing (R60). Raises :class:`ReconciliationError` (and stores
    nothing) when the stored totals do not match the document's, :class:`StorageError` when
    the database fails. A serialization failure or deadlock re-runs the whole transaction
    (up to ``RETRY_ATTEMPTS`` times, with a short jittered back-off), and so does a dropped
    connection: the rolled-back resource is written again on a fresh one (R62).
    """

    months = _months(document) if store.dialect == "postgresql" else set()
    check_partitions = True

    def write(conn: Connection) -> IngestResult:
        if check_partitions and (missing := missing_partitions(conn, months)):
            raise _MissingPartitions(missing)  # before anything is written
        result = _ingest(conn, document, namespace, authorization_id, cost_scale, batch_size)
        if job_id is not None:
            now = time.time()
            conn.execute(
                update(ingest_jobs)
                .where(ingest_jobs.c.id == job_id)
                .values(
                    released(
                        "done",
                        now,
                        rows=rows_before + result.rows,
                        payload_hash=payload_hash,
                        error=None,
                        finished_at=now,
                    )  # fmt: skip
                )
            )
        return result

    try:
        try:
            return store.transaction(write, attempts=RETRY_ATTEMPTS)
        except _MissingPartitions as missing:
            # Made in their own transaction (not under this one's locks); then the
            # resource is written again, rows of a partition dropped meanwhile landing
            # in the default partition rather than being lost.
            ensure_partitions(store, missing.months)
            check_partitions = False
            return store.transaction(write, attempts=RETRY_ATTEMPTS)
    except ReconciliationError:
        raise
    except StorageError as exc:
        raise StorageError(f"storing readings failed: {exc}") from exc


def _ingest(
    conn: Connection,
    document: Document,
    namespace: str,
    authorization_id: int | None,
    cost_scale: int,
    batch_size: int,
) -> IngestResult:
    # Group by meter-reading row first: a document may repeat a MeterReading, and its
    # readings must reach the database once (R61).
    points: list[dict[str, Any]] = []
    for up in document.usage_points:
        point: dict[str, Any] = {
            "namespace": namespace, "key": series_key(up), "href": up.href,
            "atom_id": up.atom_id, "title": up.title, "service_kind": up.service_kind,
            "authorization_id": authorization_id,
        }  # fmt: skip
        local_time = local_time_record(document, up)
        if local_time is not None:  # a later document without one keeps the stored zone
            point["local_time"] = local_time
        points.append(point)
    point_ids = _upsert_all(conn, usage_points, ["namespace", "key"], points)
    up_ids = [point_ids[(namespace, point["key"])] for point in points]
    incoming: dict[int, list[MeterReading]] = {}
    for up_id, up in zip(up_ids, document.usage_points, strict=True):
        incoming.setdefault(up_id, []).extend(up.meter_readings)
    _follow_all_rekeyed(conn, incoming)
    meters = [
        (up_id, mr, {
            "usage_point_id": up_id, "key": series_key(mr), "href": mr.href,
            "atom_id": mr.atom_id, "cost_scale": cost_scale,
            **_reading_type_values(mr.reading_type),
        })
        for up_id, up in zip(up_ids, document.usage_points, strict=True)
        for mr in up.meter_readings
    ]  # fmt: skip
    meter_ids = _upsert_all(conn, meter_readings, ["usage_point_id", "key"], (m[2] for m in meters))
    series: dict[int, tuple[int, MeterReading, list[ReadingColumns]]] = {}
    for up_id, mr, values in meters:
        mr_id = meter_ids[(up_id, values["key"])]
        entry = series.setdefault(mr_id, (up_id, mr, []))
        entry[2].append(mr.readings)
    work: list[tuple[_Series, str]] = []
    for mr_id, (up_id, mr, blocks) in series.items():
        cols = _merged(blocks)
        if len(cols):
            rt = mr.reading_type or ReadingType()
            multiplier = rt.power_of_ten_multiplier or 0
            work.append(((mr_id, up_id, multiplier, rt.uom, cols), series_key(mr)))
    if conn.dialect.name == "sqlite":
        for (mr_id, up_id, multiplier, uom, cols), _label in work:
            _write_sqlite(conn, _rows(mr_id, up_id, multiplier, uom, cols), batch_size)
    elif work:
        _write_postgresql(conn, [w for w, _label in work], batch_size)
    totals = _span_totals(conn, [w for w, _label in work]) if len(work) > 1 else {}
    for (mr_id, *_, cols), label in work:
        _reconcile(conn, mr_id, cols, label, totals.get(mr_id))
    return IngestResult(len(incoming), len(series), sum(len(w[4]) for w, _label in work))


_SPAN = and_(
    readings.c.meter_reading_id == bindparam("m"),
    readings.c.start >= bindparam("lo"),
    readings.c.start <= bindparam("hi"),
)
_SPAN_TOTALS = select(func.count(), func.coalesce(func.sum(readings.c.raw_value), 0)).where(_SPAN)
_SPAN_VALUES = select(readings.c.start, readings.c.raw_value).where(_SPAN)


def _span_totals(conn: Connection, series: list[_Series]) -> dict[int, tuple[int, int]]:
    """Stored count and sum of raw values in each series' span, in one query on PostgreSQL
    (a round trip per series is most of a Bulk file's time there); empty on SQLite, where
    a query is a function call and :func:`_reconcile` asks per series."""
    if conn.dialect.name != "postgresql":
        return {}
    ids, lows, highs = [], [], []
    for mr_id, _up, _mult, _uom, cols in series:
        ids.append(mr_id)
        lows.append(min(cols.start))
        highs.append(max(cols.start))
    rows = conn.execute(
        text(
            "SELECT v.m, x.n, x.s FROM unnest(CAST(:m AS integer[]), CAST(:lo AS bigint[]),"
            " CAST(:hi AS bigint[])) AS v(m, lo, hi) CROSS JOIN LATERAL (SELECT count(*) AS n,"
            " coalesce(sum(readings.raw_value), 0) AS s FROM readings"
            " WHERE readings.meter_reading_id = v.m AND readings.start BETWEEN v.lo AND v.hi) AS x"
        ),
        {"m": ids, "lo": lows, "hi": highs},
    )
    return {int(m): (int(n), int(total)) for m, n, total in rows}


def _reconcile(
    conn: Connection,
    mr_id: int,
    cols: ReadingColumns,
    label: str,
    totals: tuple[int, int] | None = None,
) -> None:
    """Count and sum of raw values over the document's time range must match (R64).

    The range may also hold readings stored earlier that this document does not repeat;
    only then is the slower reading-by-reading comparison needed. ``totals`` are the
    stored count and sum when :func:`_span_totals` already read them.
    """
    starts, values = cols.start, cols.value
    lo, hi = min(starts), max(starts)
    absent = values.count(ABSENT)
    expected_sum = sum(values) - absent * ABSENT
    span = {"m": mr_id, "lo": lo, "hi": hi}
    count, total = totals if totals is not None else conn.execute(_SPAN_TOTALS, span).one()
    if count == len(cols) and int(total) == expected_sum:
        return
    rows = conn.execute(_SPAN_VALUES, span)
    stored: dict[int, int | None] = {start: raw for start, raw in rows}  # noqa: C416
    for start, value in zip(starts, values, strict=True):
        want = None if value == ABSENT else value
        if start not in stored or stored[start] != want:
            raise ReconciliationError(
                f"stored readings of {label} do not match the document "
                f"(first difference at {start}); nothing was stored"
            )


# --- jobs ---------------------------------------------------------------------------------


def create_job(store: Store, resource_uri: str, *, authorization_id: int | None = None) -> int:
    """A pending job for one resource; committed at once so it survives a crash."""
    now = time.time()
    stmt = insert(ingest_jobs).values(
        resource_uri=resource_uri, authorization_id=authorization_id, state="pending",
        attempts=0, created_at=now, updated_at=now,
    )  # fmt: skip
    return store.transaction(
        lambda conn: int(conn.execute(stmt.returning(ingest_jobs.c.id)).scalar_one())
    )


def start_job(store: Store, job_id: int) -> None:
    """Count an attempt before it is made (a crash mid-ingest still counts)."""
    stmt = (
        update(ingest_jobs)
        .where(ingest_jobs.c.id == job_id)
        .values(state="running", attempts=ingest_jobs.c.attempts + 1, updated_at=time.time())
    )
    store.transaction(lambda conn: conn.execute(stmt))


def lease_owner() -> str:
    """A name for this process's leases, ``host:pid:random`` (the random part tells two
    owners in one process apart, and a reused pid from the process it had before)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def lease_free(now: float, lease_s: float) -> ColumnElement[bool]:
    """No live lease on the job: none, expired, or ending further ahead than a lease can
    (set by a clock that was ahead, or ours was set back since: it would never end)."""
    until = ingest_jobs.c.lease_until
    return or_(until.is_(None), until <= now, until > now + lease_s + LEASE_SLACK)


def lease_values(table: Table, owner: str, now: float, lease_s: float) -> dict[str, Any]:
    """The values that take a lease on a row of ``table`` (a job or a Bulk part) for
    ``lease_s`` seconds and count the attempt: one rule for both kinds of work."""
    return {
        "state": "running",
        "attempts": table.c.attempts + 1,
        "updated_at": now,
        "lease_owner": owner,
        "lease_until": now + lease_s,
    }


def released(state: str, now: float | None = None, **values: Any) -> dict[str, Any]:
    """The values that end a lease on a job or a Bulk part, leaving it in ``state`` (with
    ``values``): every way work stops (done, failed, given back, abandoned) drops the
    lease the same way, so no row keeps an owner it no longer has."""
    stamp = time.time() if now is None else now
    return {"state": state, "updated_at": stamp, "lease_owner": None, "lease_until": None,
            **values}  # fmt: skip


def interrupted() -> dict[str, Any]:
    """The values that hand back work whose worker stopped (it is retried, not lost)."""
    return released("failed", error="interrupted: the worker running it stopped")


def claim_job(
    store: Store, job_id: int, owner: str, lease_s: float, *, now: float | None = None
) -> bool:
    """Take the job for ``lease_s`` seconds and count the attempt; False when it is done,
    abandoned, or another process holds a live lease on it (it must not be run then).

    One conditional UPDATE, so of several processes claiming at once exactly one wins.
    Leases use the claimer's wall clock (``now``, default ``time.time()``): hosts sharing a
    PostgreSQL database cannot compare monotonic clocks. A lease ending more than
    ``lease_s`` ahead (plus :data:`LEASE_SLACK`) counts as expired, so a clock set back
    cannot keep a job held for good. A clock set *forward* can take over a live lease
    early; the worst case is one duplicate fetch, which ingest absorbs (R60).

    A lease of a process of this host (the ``host`` of :func:`lease_owner`) that no longer
    exists is taken over at once, so a killed run's job is not stuck until its lease ends;
    this assumes no two hosts (containers) with their own process ids share a host name.
    """
    now = time.time() if now is None else now
    j = ingest_jobs
    claim = (
        update(j)
        .where(j.c.id == job_id, j.c.state.not_in(("done", "abandoned")))
        .values(lease_values(j, owner, now, lease_s))
    )
    free = or_(lease_free(now, lease_s), j.c.lease_owner == owner)
    if store.transaction(lambda conn: conn.execute(claim.where(free)).rowcount) == 1:
        return True
    holder = dead_holder(store, job_id)
    if holder is None:
        return False
    taken = claim.where(j.c.lease_owner == holder)  # only if still that dead holder's
    return bool(store.transaction(lambda conn: conn.execute(taken).rowcount) == 1)


def dead_holder(store: Store, job_id: int) -> str | None:
    """The job's lease owner when it is a process of this host that has ended, else None."""
    j = ingest_jobs
    with store.connect() as conn:
        holder = conn.execute(select(j.c.lease_owner).where(j.c.id == job_id)).scalar()
    return None if holder is None or not owner_gone(str(holder)) else str(holder)


def owner_gone(owner: str) -> bool:
    """Whether ``owner`` names a process of this host that has ended."""
    host, _, rest = owner.rpartition(":")[0].rpartition(":")
    if host != socket.gethostname() or not rest.isdigit():
        return False
    try:
        os.kill(int(rest), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive under another user (EPERM), or unknowable: assume alive
        return False
    return False


def _held_by(owner: str | None) -> list[ColumnElement[bool]]:
    """With ``owner``: only while the job is still ours (or nobody's), not a successor's."""
    j = ingest_jobs
    if owner is None:
        return []
    return [or_(j.c.lease_owner.is_(None), j.c.lease_owner == owner)]


def unstart_job(store: Store, job_id: int, *, owner: str | None = None) -> None:
    """Take back the attempt :func:`start_job` or :func:`claim_job` counted, for a request
    that never left (the client's circuit breaker refused it, R59); the job is pending
    again and its lease released."""
    j = ingest_jobs
    stmt = (
        update(j)
        .where(j.c.id == job_id, j.c.attempts > 0, *_held_by(owner))
        .values(released("pending", attempts=j.c.attempts - 1))
    )
    store.transaction(lambda conn: conn.execute(stmt))


def fail_job(store: Store, job_id: int, error: str, *, owner: str | None = None) -> None:
    """Record why an attempt failed and release the lease; the job stays retryable.

    With ``owner``, a job another process has taken over since is left to it."""
    stmt = (
        update(ingest_jobs)
        .where(ingest_jobs.c.id == job_id, *_held_by(owner))
        .values(released("failed", error=error[:2000]))
    )
    store.transaction(lambda conn: conn.execute(stmt))


def pending_jobs(store: Store) -> list[tuple[int, str]]:
    """Jobs still to run (pending, interrupted while running, or failed), oldest first.

    Jobs that ran out of attempts (``abandoned``, see ``sync``) are not among them."""
    with store.connect() as conn:
        rows = conn.execute(
            select(ingest_jobs.c.id, ingest_jobs.c.resource_uri)
            .where(ingest_jobs.c.state.not_in(("done", "abandoned")))
            .order_by(ingest_jobs.c.id)
        )
        return [(int(i), str(u)) for i, u in rows]


def ingest_file(
    store: Store,
    path: str | os.PathLike[str],
    *,
    namespace: str = "",
    cost_scale: int = DEFAULT_COST_SCALE,
) -> IngestResult:
    """Parse and store one file as one job (its URI is the file's ``file://`` URI)."""
    path = Path(path)
    uri = path.resolve().as_uri()
    with store.connect() as conn:
        job_id = conn.execute(
            select(ingest_jobs.c.id)
            .where(ingest_jobs.c.resource_uri == uri, ingest_jobs.c.state != "done")
            .order_by(ingest_jobs.c.id.desc())
            .limit(1)
        ).scalar()
    if job_id is None:
        job_id = create_job(store, uri)
    start_job(store, job_id)
    try:
        data = path.read_bytes()
        document = parse(data, name=path.name)
        return ingest_document(
            store, document, job_id=job_id, namespace=namespace,
            payload_hash=hashlib.sha256(data).hexdigest(), cost_scale=cost_scale,
        )  # fmt: skip
    except BaseException as exc:
        try:
            fail_job(store, job_id, f"{type(exc).__name__}: {exc}")
        except StorageError:
            pass
        raise


# --- export -------------------------------------------------------------------------------


def export_readings(
    store: Store,
    *,
    usage_point: str | None = None,
    meter_reading: str | None = None,
    start: int | None = None,
    end: int | None = None,
    namespace: str | None = None,
) -> Iterator[Reading]:
    """Stored readings as readings-table rows (DESIGN 3.3), series by series in start order.

    ``start``/``end`` bound interval starts (epoch seconds, end exclusive). The rows are the
    ones :func:`greenbutton.iter_readings` gives for the documents that were stored.
    """
    mr, up = meter_readings, usage_points
    query = select(mr, up.c.key.label("up_key")).join(up, up.c.id == mr.c.usage_point_id)
    if usage_point is not None:
        query = query.where(up.c.key == usage_point)
    if meter_reading is not None:
        query = query.where(mr.c.key == meter_reading)
    if namespace is not None:
        query = query.where(up.c.namespace == namespace)
    with store.connect() as conn:
        series = list(conn.execute(query.order_by(up.c.key, mr.c.key)).mappings())
        for row in series:
            rt = ReadingType(**{name: row[name] for name in _READING_TYPE_FIELDS})
            s = Series.of(row["up_key"], row["key"], rt, row["cost_scale"])
            where = [readings.c.meter_reading_id == row["id"]]
            if start is not None:
                where.append(readings.c.start >= start)
            if end is not None:
                where.append(readings.c.start < end)
            stmt = (
                select(
                    readings.c.start,
                    readings.c.duration,
                    readings.c.raw_value,
                    readings.c.cost,
                    readings.c.quality,
                    readings.c.quality_codes,
                    readings.c.tou,
                )  # fmt: skip
                .where(*where)
                .order_by(readings.c.start)
            )
            cols = ReadingColumns()
            extra = cols.extra_quality
            for i, (st, dur, raw, cost, q, codes, tou) in enumerate(conn.execute(stmt)):
                cols.append(
                    st, dur,
                    ABSENT if raw is None else raw,
                    ABSENT if cost is None else cost,
                    ABSENT32 if q is None else q,
                    ABSENT32 if tou is None else tou,
                )  # fmt: skip
                if codes:
                    extra[i] = tuple(int(c) for c in codes.split(";"))
            yield from s.rows(cols)
