"""Small read and write queries the front ends need, so none of them touches the schema.

STYLE 1: ``cli/``, ``web/`` and ``simulator/`` are thin, with no SQL of their own and no
private imports of lower layers. Each function here is one query a front end used to
write against ``_schema`` itself (the CLI's token import and demo checks, the web app's
account pages and its server-side sessions); the schema can change under them without a
front end noticing.

The ``web_session_*`` functions take an open connection, not the store: the web app's
session code composes them into one transaction (compare-and-swap on the ciphertext read,
insert-new + delete-old on rotation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, and_, case, delete, func, insert, not_, select, update

from ._ingest import released
from ._schema import (
    authorizations,
    ingest_jobs,
    pending_revocations,
    readings,
    usage_points,
    web_sessions,
)
from ._store import Store, default_data_dir
from ._tokens import KEY_FILE_NAME

__all__ = [
    "JobView",
    "StoredPoint",
    "authorization_id",
    "authorization_points",
    "authorization_versions",
    "authorization_counts",
    "job_counts",
    "jobs_since",
    "open_jobs",
    "retry_job",
    "revocations_owed",
    "last_reading_start",
    "latest_authorization",
    "local_time_of",
    "reading_count",
    "secret_key_file",
    "web_session_delete_expired",
    "web_session_delete_if",
    "web_session_get",
    "web_session_insert",
    "web_session_replace_if",
    "web_session_touch",
]


@dataclass(frozen=True, slots=True)
class StoredPoint:
    """A stored usage point of one authorization: readings count and covered span
    (epoch seconds: first start, last end), both None without readings."""

    key: str
    title: str | None
    readings: int
    first: int | None
    last: int | None


# -- authorizations -----------------------------------------------------------------------


def authorization_versions(store: Store) -> dict[str, float]:
    """``{key: updated_at}`` of every stored authorization (nothing decrypted)."""
    a = authorizations
    with store.connect() as conn:
        return {str(k): float(t) for k, t in conn.execute(select(a.c.key, a.c.updated_at))}


def latest_authorization(store: Store) -> str | None:
    """The key of the active customer grant updated last, or None."""
    a = authorizations
    with store.connect() as conn:
        key = conn.execute(
            select(a.c.key)
            .where(a.c.kind == "access", a.c.status == "active")
            .order_by(a.c.updated_at.desc())
            .limit(1)
        ).scalar()
    return None if key is None else str(key)


def authorization_id(store: Store, key: str) -> int | None:
    """The row id of the authorization stored under ``key`` (jobs refer to it)."""
    with store.connect() as conn:
        value = conn.execute(
            select(authorizations.c.id).where(authorizations.c.key == key)
        ).scalar()
    return None if value is None else int(value)


def authorization_points(
    store: Store, key: str, namespace: str
) -> tuple[str, list[StoredPoint]] | None:
    """The status of the authorization ``key`` and its usage points in ``namespace`` (by
    key), with counts and coverage; None when no such authorization is stored."""
    a, up, r = authorizations, usage_points, readings
    with store.connect() as conn:
        row = conn.execute(select(a.c.id, a.c.status).where(a.c.key == key)).first()
        if row is None:
            return None
        ups = conn.execute(
            select(up.c.id, up.c.key, up.c.title)
            .where(up.c.authorization_id == row.id, up.c.namespace == namespace)
            .order_by(up.c.key)
        ).all()
        points = []
        for point in ups:  # one indexed aggregate per point, as the account page needs
            n, first, last = conn.execute(
                select(func.count(), func.min(r.c.start), func.max(r.c.start + r.c.duration)).where(
                    r.c.usage_point_id == point.id
                )
            ).one()
            points.append((point, n, first, last))
    return str(row.status), [
        StoredPoint(
            key=str(p.key),
            title=None if p.title is None else str(p.title),
            readings=int(n or 0),
            first=None if first is None else int(first),
            last=None if last is None else int(last),
        )
        for p, n, first, last in points
    ]


# -- usage points and readings ------------------------------------------------------------


def local_time_of(store: Store, namespace: str, usage_point: str) -> str | None:
    """The usage point's stored local-time record (JSON; ``time_zone_of`` reads it)."""
    up = usage_points
    with store.connect() as conn:
        raw = conn.execute(
            select(up.c.local_time).where(up.c.namespace == namespace, up.c.key == usage_point)
        ).scalar()
    return None if raw is None else str(raw)


def last_reading_start(store: Store, namespace: str, usage_point: str) -> int | None:
    """The latest stored interval start of a usage point (epoch seconds), or None."""
    up, r = usage_points, readings
    with store.connect() as conn:
        last = conn.execute(
            select(func.max(r.c.start))
            .join(up, up.c.id == r.c.usage_point_id)
            .where(up.c.key == usage_point, up.c.namespace == namespace)
        ).scalar()
    return None if last is None else int(last)


def reading_count(store: Store) -> int:
    """How many readings the database holds."""
    with store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(readings)).scalar_one())


def jobs_since(store: Store, since: float) -> list[tuple[str, str | None]]:
    """``(state, error)`` of the ingest jobs created at or after ``since`` (epoch s)."""
    j = ingest_jobs
    with store.connect() as conn:
        rows = conn.execute(select(j.c.state, j.c.error).where(j.c.created_at >= since)).all()
    return [(str(state), None if error is None else str(error)) for state, error in rows]


def secret_key_file(store: Store) -> Path:
    """The key file the token store reads when ``GREENBUTTON_SECRET_KEY`` is unset."""
    return (store.data_dir or default_data_dir()) / KEY_FILE_NAME


# -- web sessions -------------------------------------------------------------------------


def web_session_get(
    conn: Connection,
    id_hash: str,
    *,
    seen_after: float | None = None,
    created_after: float | None = None,
) -> tuple[bytes, float] | None:
    """``(ciphertext, seen_at)`` of a session row, or None; with ``seen_after`` and
    ``created_after``, only a row still alive by both lifetimes."""
    s = web_sessions
    live = []
    if seen_after is not None:
        live.append(s.c.seen_at > seen_after)
    if created_after is not None:
        live.append(s.c.created_at > created_after)
    row = conn.execute(
        select(s.c.data_enc, s.c.seen_at).where(s.c.id_hash == id_hash, *live)
    ).first()
    return None if row is None else (bytes(row.data_enc), float(row.seen_at))


def web_session_touch(conn: Connection, id_hash: str, now: float) -> None:
    """Mark the session used at ``now`` (its idle lifetime restarts)."""
    s = web_sessions
    conn.execute(update(s).where(s.c.id_hash == id_hash).values(seen_at=now))


def web_session_insert(conn: Connection, id_hash: str, data_enc: bytes, now: float) -> None:
    """Store a new session created and seen at ``now``."""
    conn.execute(
        insert(web_sessions).values(id_hash=id_hash, data_enc=data_enc, created_at=now, seen_at=now)
    )


def web_session_delete_expired(conn: Connection, *, seen_after: float, created_after: float) -> int:
    """Delete the sessions dead by either lifetime; how many went."""
    s = web_sessions
    live = and_(s.c.seen_at > seen_after, s.c.created_at > created_after)
    return int(conn.execute(delete(s).where(not_(live))).rowcount)


def web_session_delete_if(conn: Connection, id_hash: str, data_enc: bytes) -> bool:
    """Delete the session if its ciphertext is still ``data_enc`` (compare-and-swap)."""
    s = web_sessions
    gone = conn.execute(delete(s).where(s.c.id_hash == id_hash, s.c.data_enc == data_enc))
    return int(gone.rowcount) == 1


def web_session_replace_if(
    conn: Connection, id_hash: str, old: bytes, new: bytes, *, seen_at: float
) -> bool:
    """Replace the session's ciphertext ``old`` by ``new`` (compare-and-swap); False when
    the row changed or went meanwhile."""
    s = web_sessions
    done = conn.execute(
        update(s)
        .where(s.c.id_hash == id_hash, s.c.data_enc == old)
        .values(data_enc=new, seen_at=seen_at)
    )
    return int(done.rowcount) == 1


# -- the operator's view (console, /metrics) ------------------------------------------------


def job_counts(store: Store) -> dict[str, int]:
    """``{state: jobs}`` over every ingest job (one indexed GROUP BY)."""
    j = ingest_jobs
    with store.connect() as conn:
        rows = conn.execute(select(j.c.state, func.count()).group_by(j.c.state)).all()
    return {str(state): int(n) for state, n in rows}


def authorization_counts(store: Store) -> dict[str, int]:
    """``{status: customer authorizations}`` (``active``, ``reauth_required`` ...)."""
    a = authorizations
    with store.connect() as conn:
        rows = conn.execute(
            select(a.c.status, func.count()).where(a.c.kind == "access").group_by(a.c.status)
        ).all()
    return {str(status): int(n) for status, n in rows}


@dataclass(frozen=True, slots=True)
class JobView:
    """An unfinished or given-up job as the operator sees it (no token, only the key)."""

    id: int
    uri: str
    state: str
    attempts: int
    error: str | None
    authorization: str | None
    created_at: float
    updated_at: float


def open_jobs(store: Store, *, limit: int = 200) -> list[JobView]:
    """Jobs not done (pending, running, failed, abandoned), failed and abandoned first,
    newest first; at most ``limit``."""
    j, a = ingest_jobs, authorizations
    rank = case((j.c.state == "abandoned", 0), (j.c.state == "failed", 1), else_=2)
    with store.connect() as conn:
        rows = conn.execute(
            select(
                j.c.id,
                j.c.resource_uri,
                j.c.state,
                j.c.attempts,
                j.c.error,
                a.c.key,
                j.c.created_at,
                j.c.updated_at,
            )  # fmt: skip
            .select_from(j.outerjoin(a, a.c.id == j.c.authorization_id))
            .where(j.c.state != "done")
            .order_by(rank, j.c.updated_at.desc(), j.c.id.desc())
            .limit(limit)
        ).all()
    return [
        JobView(
            id=int(r[0]),
            uri=str(r[1]),
            state=str(r[2]),
            attempts=int(r[3]),
            error=None if r[4] is None else str(r[4]),
            authorization=None if r[5] is None else str(r[5]),
            created_at=float(r[6]),
            updated_at=float(r[7]),
        )  # fmt: skip
        for r in rows
    ]


def revocations_owed(store: Store) -> int:
    """Revocations the custodian has not confirmed yet (R22: the worker retries them)."""
    with store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(pending_revocations)).scalar_one())


def retry_job(store: Store, job_id: int) -> bool:
    """Give a failed or abandoned job its attempts back (pending, no lease); False when it
    is in no such state (done, running, gone)."""
    j = ingest_jobs
    with store.begin() as conn:
        done = conn.execute(
            update(j)
            .where(j.c.id == job_id, j.c.state.in_(("failed", "abandoned")))
            .values(released("pending", attempts=0))
        )
    return int(done.rowcount) == 1
