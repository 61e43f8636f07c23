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
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import DEFAULT_COST_SCALE, Document
from ..parse import BATCH_READINGS, Source, iter_batches, series_key
from ._ingest import IngestResult, ingest_document
from ._store import Store

__all__ = ["BATCH_READINGS", "BulkResult", "ingest_bulk"]


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
