"""Shared pieces of the storage fault and migration tests: a PostgreSQL schema per test,
row counts, and the per-day checksums that say two databases hold the same readings (R62).

PostgreSQL comes from ``$GREENBUTTON_TEST_POSTGRES_URL``; without it the PostgreSQL cases
skip, except under ``CI``, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from greenbutton.storage import Store

PG_ENV = "GREENBUTTON_TEST_POSTGRES_URL"


def pg_unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


def postgres_url() -> Iterator[str]:
    """A URL whose ``search_path`` is a fresh schema, dropped afterwards."""
    base = os.environ.get(PG_ENV)
    if not base:
        pg_unavailable(f"set {PG_ENV}=postgresql+psycopg://user:pw@host/db")
    assert base is not None
    admin = create_engine(base)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # any failure to reach the server
        admin.dispose()
        pg_unavailable(f"{base!r} is unreachable: {exc}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database of ``backend`` (``sqlite`` or ``postgresql``) for one test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'gb.db'}"
    else:
        yield from postgres_url()


def count(store: Store, table: str) -> int:
    with store.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def job_state(store: Store, job_id: int) -> str:
    with store.connect() as conn:
        query = text("SELECT state FROM ingest_jobs WHERE id = :i")
        return str(conn.execute(query, {"i": job_id}).scalar_one())


Checksums = list[tuple[str, str, str, int, int, int]]


def checksums(store: Store) -> Checksums:
    """Count and sum of raw values per (namespace, usage point, reading type, UTC day)."""
    with store.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT up.namespace, up.key, mr.key, r.start / 86400, count(*),"
                " coalesce(sum(r.raw_value), 0)"
                " FROM readings r JOIN meter_readings mr ON mr.id = r.meter_reading_id"
                " JOIN usage_points up ON up.id = r.usage_point_id"
                " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
            )
        )
        return [(ns, up, mr, int(day), int(n), int(s)) for ns, up, mr, day, n, s in rows]


def shape(store: Store) -> dict[str, int]:
    """How many usage points, meter readings and readings are stored."""
    return {t: count(store, t) for t in ("usage_points", "meter_readings", "readings")}
