"""Revocations owed to the custodian: local tokens go at once, the custodian is told until it
confirms (SECURITY R22; RFC 7009 2.2.1: after a 503 the client must assume the token still
exists at the server).

:func:`queue_revocation` deletes the authorization's local token material and records the
revocation as owed, in one transaction, so no crash leaves tokens behind or forgets the
custodian. The revocation itself (ESPI ``DELETE Authorization/{id}``) goes with the
client-credentials token, so the authorization's URI is all a later attempt needs. Whoever
sends it claims the row first (:func:`claim_revocation`, a lease: ``due_at`` pushed on in the
same conditional UPDATE), then reports :func:`revocation_done` (the row goes) or
:func:`revocation_failed` (the reason kept, the next attempt after an exponential back-off or
the custodian's Retry-After, whichever is later). Rows are never given up on: an owed
revocation stays owed, at most a day apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from sqlalchemy import Connection, Row, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ._schema import authorizations, pending_revocations
from ._store import Store

__all__ = [
    "REVOCATION_LEASE",
    "PendingRevocation",
    "cancel_revocation",
    "claim_revocation",
    "due_revocations",
    "pending_revocations_of",
    "queue_revocation",
    "revocation_done",
    "revocation_failed",
]

#: Seconds a claimed revocation is left to its claimer before another may try it.
REVOCATION_LEASE = 300.0
_BACKOFF_BASE = 30.0
_BACKOFF_CAP = 86400.0


@dataclass(frozen=True, slots=True)
class PendingRevocation:
    """One revocation the custodian has not confirmed."""

    id: int
    utility: str
    authorization_uri: str  # the grant's ``.../Authorization/{id}`` (the token's URI)
    attempts: int
    error: str | None

    @property
    def authorization_id(self) -> str:
        """The ESPI authorization id, the last path segment of the URI."""
        return unquote(self.authorization_uri.rstrip("/").rpartition("/")[2])


def _row(row: Row[Any]) -> PendingRevocation:
    return PendingRevocation(
        id=int(row.id),
        utility=str(row.utility),
        authorization_uri=str(row.authorization_uri),
        attempts=int(row.attempts),
        error=None if row.error is None else str(row.error),
    )


def queue_revocation(
    store: Store, key: str, *, utility: str, now: float | None = None
) -> PendingRevocation:
    """Delete the local tokens stored under ``key`` and record the revocation of their grant
    as owed to ``utility``'s custodian, due at once; one transaction. The grant is named by
    the token's ``authorizationURI`` (older keys were that URI themselves). Queuing one
    already owed makes it due at once again."""
    when = time.time() if now is None else now

    def write(conn: Connection) -> PendingRevocation:
        a = authorizations
        uri = conn.execute(select(a.c.authorization_uri).where(a.c.key == key)).scalar()
        uri = str(uri or key)
        conn.execute(delete(a).where(a.c.key == key))
        values = {
            "utility": utility,
            "authorization_uri": uri,
            "attempts": 0,
            "due_at": when,
            "created_at": when,
            "updated_at": when,
        }
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(pending_revocations).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["utility", "authorization_uri"],
            set_={"due_at": when, "updated_at": when},
        )
        conn.execute(stmt)
        row = conn.execute(
            select(pending_revocations).where(
                pending_revocations.c.utility == utility,
                pending_revocations.c.authorization_uri == uri,
            )
        ).one()
        return _row(row)

    return store.transaction(write)


def cancel_revocation(store: Store, authorization_uri: str, *, utility: str) -> bool:
    """The custodian granted ``authorization_uri`` again (a reconnect it gave the same
    authorization) before its revocation went through: it is no longer owed, since
    revoking now would end the new connection. True when one was cancelled."""
    r = pending_revocations
    stmt = delete(r).where(r.c.utility == utility, r.c.authorization_uri == authorization_uri)
    return bool(store.transaction(lambda conn: conn.execute(stmt).rowcount))


def due_revocations(
    store: Store, utility: str, *, now: float | None = None, limit: int = 100
) -> list[PendingRevocation]:
    """Revocations owed to ``utility`` whose next attempt is due, oldest due first."""
    when = time.time() if now is None else now
    r = pending_revocations
    with store.connect() as conn:
        rows = conn.execute(
            select(r)
            .where(r.c.utility == utility, r.c.due_at <= when)
            .order_by(r.c.due_at, r.c.id)
            .limit(limit)
        ).all()
    return [_row(row) for row in rows]


def pending_revocations_of(store: Store, utility: str) -> list[PendingRevocation]:
    """Every revocation still owed to ``utility``, due or not (for pages and tests)."""
    r = pending_revocations
    with store.connect() as conn:
        rows = conn.execute(select(r).where(r.c.utility == utility).order_by(r.c.id)).all()
    return [_row(row) for row in rows]


def claim_revocation(
    store: Store, revocation_id: int, *, lease: float = REVOCATION_LEASE, now: float | None = None
) -> bool:
    """Take a due revocation for one attempt (counted), so no two processes send it at
    once; False when it is not due (another claimed it) or gone (confirmed)."""
    when = time.time() if now is None else now
    r = pending_revocations
    stmt = (
        update(r)
        .where(r.c.id == revocation_id, r.c.due_at <= when)
        .values(due_at=when + lease, attempts=r.c.attempts + 1, updated_at=when)
    )
    return bool(store.transaction(lambda conn: conn.execute(stmt).rowcount) == 1)


def revocation_done(store: Store, revocation_id: int) -> None:
    """The custodian confirmed (or no longer knows the authorization): nothing is owed."""
    stmt = delete(pending_revocations).where(pending_revocations.c.id == revocation_id)
    store.transaction(lambda conn: conn.execute(stmt))


def revocation_failed(
    store: Store,
    revocation_id: int,
    error: str,
    *,
    retry_after: float | None = None,
    now: float | None = None,
) -> float:
    """Keep the reason and schedule the next attempt: ``30 s x 2^(attempts-1)`` capped at a
    day, or the custodian's ``retry_after`` when that is later. Returns the delay."""
    when = time.time() if now is None else now
    r = pending_revocations

    def write(conn: Connection) -> float:
        attempts = conn.execute(select(r.c.attempts).where(r.c.id == revocation_id)).scalar()
        backoff = _BACKOFF_BASE * float(2 ** min(max(int(attempts or 1) - 1, 0), 16))
        delay = min(max(backoff, retry_after or 0.0), _BACKOFF_CAP)
        conn.execute(
            update(r)
            .where(r.c.id == revocation_id)
            .values(due_at=when + delay, error=error[:500], updated_at=when)
        )
        return delay

    return store.transaction(write)
