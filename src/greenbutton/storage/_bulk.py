"""Bulk files in bounded memory: a feed of every customer, ingested in batches.

A PG&E Bulk download of a year of 15-minute data for 2,000 customers is ~70M readings;
:func:`~greenbutton.storage.ingest_document` of one :func:`~greenbutton.parse.parse`
would hold them all. :func:`ingest_bulk` reads the file with
:func:`~greenbutton.parse.iter_batches` (the whole file checked first, then at most
``max_readings`` readings held at once) and stores each batch with ``ingest_document``, so
the rows, upsert, reconciliation (R64) and re-keying (R65) rules are the ones a whole
Document gets. Each batch is one transaction (R62 per batch); the job is marked done, with
the payload hash and the total row count, only after the last one, so a crash part-way
leaves the job open and running it again converges on the same database (R60).

**Parts, for many workers** (issue 10.4). A worker (``JobRunner(part_readings=N)``) that
fetched a Bulk file too large for one part does not ingest it alone: :func:`split_parts`
checks the whole file and splits it by usage point (:func:`~greenbutton.parse.split_feed`)
into parts of about ``N`` readings, and stores them in ``bulk_parts`` (zlib-compressed, with
their SHA-256), so every worker on every machine can read them: parts are rows, never
paths. The parts and the job's release (it stays ``running``, a state every reader knows,
with no lease: :func:`~greenbutton.storage.due_jobs` leaves out a job whose parts are
pending) are one transaction, so a crash during the split leaves the job to be fetched
again. Each part is then a unit of work of its own (:func:`claim_part`, a lease like a
job's; :func:`ingest_part` through :func:`ingest_bulk`, the same rows, R64, R65); the part
is marked done after its last batch, and a part cut short is ingested again to the same
rows (R60). :func:`finish_part` marks the last part's job done with the whole file's hash
and the parts' total rows, and drops the parts' bodies (their small rows stay, saying who
stored which). Compression is zlib from the standard library: XML compresses about tenfold
and a part is written and read once, so nothing faster is needed.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import ColumnElement, Connection, Exists, delete, func, insert, or_, select, update

from .._errors import ParseError
from ..models import DEFAULT_COST_SCALE, Document
from ..parse import BATCH_READINGS, Source, iter_batches, series_key, split_feed
from ._ingest import (
    LEASE_SECONDS,
    LEASE_SLACK,
    IngestResult,
    ingest_document,
    interrupted,
    lease_values,
    owner_gone,
    released,
)
from ._schema import bulk_parts, ingest_jobs
from ._store import Store

__all__ = [
    "BATCH_READINGS",
    "BulkPart",
    "BulkResult",
    "claim_part",
    "due_parts",
    "fail_part",
    "finish_part",
    "ingest_bulk",
    "ingest_part",
    "part_count",
    "parts_pending",
    "release_lost_part",
    "scan_bulk",
    "split_parts",
]


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What :func:`ingest_bulk` stored, and how: ``batches`` transactions of at most
    ``largest_batch`` readings each (the most held in memory at once)."""

    usage_points: int
    meter_readings: int
    rows: int
    batches: int
    largest_batch: int

    @property
    def result(self) -> IngestResult:
        """The same figures as one :func:`ingest_document` gives."""
        return IngestResult(self.usage_points, self.meter_readings, self.rows)


def ingest_bulk(
    store: Store,
    source: Source,
    *,
    job_id: int | None = None,
    namespace: str = "",
    authorization_id: int | None = None,
    payload_hash: str | None = None,
    cost_scale: int = DEFAULT_COST_SCALE,
    max_readings: int = BATCH_READINGS,
    name: str | None = None,
) -> BulkResult:
    """Store a (Bulk) feed from ``source`` (a path, bytes or a file) in batches of at most
    ``max_readings`` readings; with ``job_id`` the job is marked done after the last.

    A malformed file raises :class:`~greenbutton.ParseError` before anything is stored; a
    failing batch (:class:`ReconciliationError`, :class:`StorageError`) leaves the batches
    before it stored and the job open, and a re-run stores the same rows again."""
    points: set[str] = set()
    meters: set[tuple[str, str]] = set()
    rows = batches = largest = 0
    for doc in iter_batches(source, max_readings=max_readings, name=name):
        held = sum(len(b.readings) for mr in doc.meter_readings for b in mr.interval_blocks)
        largest = max(largest, held)
        got = ingest_document(
            store, doc, namespace=namespace, authorization_id=authorization_id,
            cost_scale=cost_scale,
        )  # fmt: skip
        rows += got.rows
        batches += 1
        for up in doc.usage_points:
            key = series_key(up)
            points.add(key)
            meters.update((key, series_key(mr)) for mr in up.meter_readings)
        del doc
    if job_id is not None:
        ingest_document(
            store, Document(), job_id=job_id, payload_hash=payload_hash, rows_before=rows
        )
    return BulkResult(len(points), len(meters), rows, batches, largest)


# -- parts: one Bulk file ingested by many workers ------------------------------------------

#: The tag every reading of a feed has twice (open and close), whatever its prefix.
_READING_TAG = b"IntervalReading"
_CHUNK = 1 << 20


def scan_bulk(file: IO[bytes]) -> tuple[str, int, bool]:
    """One pass over a fetched body: its SHA-256, about how many readings it holds, and
    whether it is blank (202/204, whitespace). The count is the tag ``IntervalReading``
    seen, halved: only the number of parts depends on it (the parser checks the file), so
    a byte scan on the hashing pass is enough, where counting by parsing would cost a
    third pass over gigabytes."""
    digest, tags, blank, tail = hashlib.sha256(), 0, True, b""
    file.seek(0)
    for chunk in iter(lambda: file.read(_CHUNK), b""):
        digest.update(chunk)
        blank = blank and not chunk.strip()
        window = tail + chunk  # a tag cut by the chunk's edge is counted once
        tags += window.count(_READING_TAG) - tail.count(_READING_TAG)
        tail = window[-(len(_READING_TAG) - 1) :]
    file.seek(0)
    return digest.hexdigest(), tags // 2 + tags % 2, blank


@dataclass(frozen=True, slots=True)
class BulkPart:
    """One stored part of Bulk job ``job_id``: number ``part``, attempts made so far."""

    id: int
    job_id: int
    part: int
    attempts: int = 0
    error: str | None = None


def parts_pending() -> Exists:
    """The condition on ``ingest_jobs`` that the job has parts not yet done: its work is
    its parts, not a fetch (:func:`~greenbutton.storage.due_jobs` leaves it out)."""
    p = bulk_parts
    return select(p.c.id).where(p.c.job_id == ingest_jobs.c.id, p.c.state != "done").exists()


def split_parts(
    store: Store,
    job_id: int,
    file: IO[bytes],
    *,
    file_sha256: str,
    parts: int,
    name: str | None = None,
) -> list[int] | None:
    """Split the fetched Bulk ``file`` into ``parts`` feeds by usage point and store them
    for job ``job_id``, releasing the job (no lease; it stays ``running``) in the same
    transaction; the new parts' ids. ``None`` when the file is not a linked feed (ingest
    it whole). A malformed file raises :class:`~greenbutton.ParseError` before anything is
    stored; a job done or abandoned meanwhile gets no parts (``[]``)."""
    with tempfile.TemporaryDirectory(prefix="greenbutton-bulk-") as scratch:
        try:
            paths = split_feed(file, scratch, max(1, parts), name=name)
        except ValueError:
            return None
        paths = [path for path in paths if _has_point(path)] or paths[:1]

        def write(conn: Connection) -> list[int]:
            now = time.time()
            j, p = ingest_jobs, bulk_parts
            taken = conn.execute(
                update(j)
                .where(j.c.id == job_id, j.c.state.not_in(("done", "abandoned")))
                .values(released("running", now, error=None))
            ).rowcount
            if taken != 1:
                return []
            conn.execute(delete(p).where(p.c.job_id == job_id))  # an earlier split's
            ids = []
            for k, path in enumerate(paths):
                body, digest = _compressed(path)
                ids.append(
                    conn.execute(
                        insert(p)
                        .values(
                            job_id=job_id,
                            part=k,
                            state="pending",
                            body=body,
                            sha256=digest,
                            file_sha256=file_sha256,
                            attempts=0,
                            created_at=now,
                            updated_at=now,
                        )  # fmt: skip
                        .returning(p.c.id)
                    ).scalar_one()
                )
            return [int(i) for i in ids]

        return store.transaction(write)


def _has_point(path: Path) -> bool:
    """Whether a part holds a usage point (a part of none, when there were fewer usage
    points than parts, holds only the shared ReadingTypes: not worth a unit of work)."""
    with path.open("rb") as f:
        tail = b""
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            if b"UsagePoint" in tail + chunk:
                return True
            tail = chunk[-16:]
    return False


def _compressed(path: Path) -> tuple[bytes, str]:
    digest, packer, out = hashlib.sha256(), zlib.compressobj(6), []
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
            out.append(packer.compress(chunk))
    out.append(packer.flush())
    return b"".join(out), digest.hexdigest()


def _part_free(now: float, lease_s: float) -> ColumnElement[bool]:
    until = bulk_parts.c.lease_until
    return or_(until.is_(None), until <= now, until > now + lease_s + LEASE_SLACK)


def due_parts(
    store: Store, *, leased: bool = False, ids: list[int] | None = None
) -> list[BulkPart]:
    """Parts still to ingest (pending, failed, or running under a lease that has ended or
    whose holder, a process of this host, is gone), oldest first; ``leased=True`` also
    those a live lease holds. Only parts of jobs still open."""
    p, j = bulk_parts, ingest_jobs
    now = time.time()
    query = (
        select(
            p.c.id,
            p.c.job_id,
            p.c.part,
            p.c.attempts,
            p.c.error,
            p.c.lease_owner,
            _part_free(now, LEASE_SECONDS).label("free"),
        )
        .join(j, j.c.id == p.c.job_id)
        .where(
            p.c.state != "done", p.c.body.is_not(None), j.c.state.not_in(("done", "abandoned"))
        )  # fmt: skip
        .order_by(p.c.id)
    )
    if ids is not None:
        query = query.where(p.c.id.in_(ids))
    with store.connect() as conn:
        rows = conn.execute(query).all()
    return [
        BulkPart(int(r.id), int(r.job_id), int(r.part), int(r.attempts), r.error)
        for r in rows
        if leased or r.free or r.lease_owner is None or owner_gone(str(r.lease_owner))
    ]


def claim_part(store: Store, part_id: int, owner: str, lease_s: float) -> BulkPart | None:
    """Take the part's lease for ``lease_s`` seconds, counting the attempt (as
    :func:`~greenbutton.storage.claim_job` does for a job); None when it is done, gone, or
    a live process holds it."""
    p = bulk_parts
    now = time.time()
    claim = (
        update(p)
        .where(p.c.id == part_id, p.c.state != "done", p.c.body.is_not(None))
        .values(lease_values(p, owner, now, lease_s))
        .returning(p.c.id, p.c.job_id, p.c.part, p.c.attempts)
    )

    def take(conn: Connection) -> BulkPart | None:
        free = or_(_part_free(now, lease_s), p.c.lease_owner == owner)
        row = conn.execute(claim.where(free)).first()
        if row is None:
            holder = conn.execute(select(p.c.lease_owner).where(p.c.id == part_id)).scalar()
            if holder is not None and owner_gone(str(holder)):  # its process ended: take it over
                row = conn.execute(claim.where(p.c.lease_owner == holder)).first()
        return None if row is None else BulkPart(int(row.id), int(row.job_id), int(row.part),
                                                 int(row.attempts))  # fmt: skip

    return store.transaction(take)


def ingest_part(
    store: Store,
    part: BulkPart,
    *,
    namespace: str = "",
    cost_scale: int = DEFAULT_COST_SCALE,
    max_readings: int = BATCH_READINGS,
) -> BulkResult:
    """Ingest one stored part (claimed: :func:`claim_part`) with :func:`ingest_bulk`, its
    body decompressed to a temporary file (a part is never whole in memory but for its
    compressed bytes). A body that does not match its hash raises ParseError."""
    p, j = bulk_parts, ingest_jobs
    with store.connect() as conn:
        row = conn.execute(
            select(p.c.body, p.c.sha256, j.c.authorization_id)
            .join(j, j.c.id == p.c.job_id)
            .where(p.c.id == part.id)
        ).first()
    if row is None or row.body is None:
        raise ParseError(f"bulk part {part.part} of job {part.job_id} is gone")
    body, expected, authorization_id = bytes(row.body), str(row.sha256), row.authorization_id
    del row
    digest, unpacker = hashlib.sha256(), zlib.decompressobj()
    with tempfile.TemporaryFile() as file:
        try:
            for k in range(0, len(body), _CHUNK):
                data = unpacker.decompress(body[k : k + _CHUNK])
                digest.update(data)
                file.write(data)
            data = unpacker.flush()
        except zlib.error as exc:
            raise ParseError(f"bulk part {part.part} of job {part.job_id} is damaged") from exc
        digest.update(data)
        file.write(data)
        del body, data
        if digest.hexdigest() != expected:
            raise ParseError(f"bulk part {part.part} of job {part.job_id} is damaged")
        file.seek(0)
        return ingest_bulk(
            store, file, namespace=namespace, authorization_id=authorization_id,
            cost_scale=cost_scale, max_readings=max_readings,
            name=f"bulk part {part.part} of job {part.job_id}",
        )  # fmt: skip


def finish_part(store: Store, part: BulkPart, *, rows: int, owner: str) -> bool:
    """Mark the part done with its ``rows``; when it was the job's last, the job is done
    in the same transaction (the whole file's hash, every part's rows) and the parts'
    bodies are dropped. True when the job is done. The job's row is locked first, so of
    two last parts finishing at once on PostgreSQL exactly one sees none left."""
    p, j = bulk_parts, ingest_jobs

    def write(conn: Connection) -> bool:
        now = time.time()
        lock = select(j.c.state).where(j.c.id == part.job_id)
        if conn.dialect.name == "postgresql":
            lock = lock.with_for_update()
        if conn.execute(lock).scalar() in (None, "done", "abandoned"):
            return False
        conn.execute(
            update(p)
            .where(p.c.id == part.id, p.c.state != "done")
            .values(released("done", now, rows=rows, error=None, done_by=owner, done_at=now))
        )
        left = conn.execute(
            select(func.count()).where(p.c.job_id == part.job_id, p.c.state != "done")
        ).scalar_one()
        if left:
            return False
        total, file_sha256 = conn.execute(
            select(func.coalesce(func.sum(p.c.rows), 0), func.min(p.c.file_sha256)).where(
                p.c.job_id == part.job_id
            )
        ).one()
        conn.execute(
            update(j)
            .where(j.c.id == part.job_id)
            .values(
                released(
                    "done",
                    now,
                    rows=int(total),
                    payload_hash=file_sha256,
                    error=None,
                    finished_at=now,
                )  # fmt: skip
            )
        )
        conn.execute(update(p).where(p.c.job_id == part.job_id).values(body=None))
        return True

    return bool(store.transaction(write))


def fail_part(
    store: Store, part: BulkPart, error: str, *, owner: str, give_up: bool = False
) -> None:
    """Record why an attempt of the part failed and release its lease (while still
    ``owner``'s); with ``give_up`` the whole job is abandoned (a part that cannot be stored
    means the file cannot be) with the part's error, and its parts are deleted."""
    p, j = bulk_parts, ingest_jobs

    def write(conn: Connection) -> None:
        now = time.time()
        conn.execute(
            update(p)
            .where(
                p.c.id == part.id,
                p.c.state != "done",
                or_(p.c.lease_owner.is_(None), p.c.lease_owner == owner),
            )  # fmt: skip
            .values(released("failed", now, error=error[:2000]))
        )
        if give_up:
            conn.execute(
                update(j)
                .where(j.c.id == part.job_id, j.c.state.not_in(("done", "abandoned")))
                .values(released("abandoned", now, error=f"bulk part {part.part}: {error}"[:2000]))
            )
            conn.execute(delete(p).where(p.c.job_id == part.job_id))

    store.transaction(write)


def release_lost_part(store: Store, part_id: int, owner_suffix: str) -> bool:
    """Free the part's lease when its holder's name ends with ``owner_suffix`` (a worker
    whose heartbeat stopped, as :func:`~greenbutton.storage.release_lost` for a job)."""
    p = bulk_parts
    stmt = (
        update(p)
        .where(
            p.c.id == part_id,
            p.c.state != "done",
            p.c.lease_owner.endswith(owner_suffix, autoescape=True),
        )  # fmt: skip
        .values(interrupted())
    )
    return int(store.transaction(lambda conn: conn.execute(stmt).rowcount)) == 1


def part_count(readings: int, part_readings: int) -> int:
    """How many parts of at most about ``part_readings`` readings (at least 1)."""
    return max(1, math.ceil(readings / max(1, part_readings)))
