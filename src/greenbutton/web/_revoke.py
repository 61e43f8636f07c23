"""Disconnecting an account (SECURITY R22): the local tokens go at once, the custodian is told
until it confirms.

:meth:`Revocations.disconnect` deletes the authorization's tokens and records the revocation
as owed in one transaction (``storage.queue_revocation``), then tries it once, bounded by
``WebConfig.revoke_timeout``, so the browser gets its answer quickly whatever the custodian
does. A revocation that fails (503, 429, a timeout, an open circuit) stays owed and the web
app's worker retries it (:meth:`Revocations.run_due`) after a back-off or the custodian's
``Retry-After``. The ESPI ``DELETE Authorization/{id}`` goes with the client-credentials
token, so nothing of the customer's is kept for the retry. A 404 means the custodian no
longer knows the authorization: nothing is owed any more.
"""

from __future__ import annotations

import logging
from functools import partial

import anyio
import anyio.to_thread

from .._errors import NotFoundError, RequestDeferred, ServerError
from ..client import AsyncClient
from ..storage import (
    PendingRevocation,
    Store,
    cancel_revocation,
    claim_revocation,
    due_revocations,
    queue_revocation,
    revocation_done,
    revocation_failed,
)

__all__ = ["Revocations"]

log = logging.getLogger("greenbutton.web")


class Revocations:
    """Revocations owed to one custodian (``utility`` = the profile's name)."""

    def __init__(self, store: Store, client: AsyncClient, utility: str, timeout: float) -> None:
        self.store = store
        self.client = client
        self.utility = utility
        self.timeout = timeout

    async def disconnect(self, key: str) -> bool:
        """Forget authorization ``key`` here and tell the custodian; True when it confirmed
        at once, False when the revocation is left to the worker's retries."""
        queue = partial(queue_revocation, self.store, key, utility=self.utility)
        owed = await anyio.to_thread.run_sync(queue)
        return await self.attempt(owed)

    async def reconnected(self, authorization_uri: str | None) -> None:
        """The custodian granted ``authorization_uri`` (again): a revocation still owed for
        it would end the new connection, so it is dropped."""
        if not authorization_uri:
            return
        cancel = partial(cancel_revocation, self.store, authorization_uri, utility=self.utility)
        if await anyio.to_thread.run_sync(cancel):
            log.info("an owed revocation was dropped: the authorization was connected again")

    async def attempt(self, owed: PendingRevocation, *, now: float | None = None) -> bool:
        """One attempt (claimed first, so two workers never send it at once); True when
        nothing is owed any more. ``now`` (epoch seconds) is for tests."""
        claim = partial(claim_revocation, self.store, owed.id, now=now)
        if not await anyio.to_thread.run_sync(claim):
            return False
        retry_after: float | None = None
        try:
            with anyio.fail_after(self.timeout):
                await self.client.revoke(owed.authorization_id)
        except NotFoundError:
            pass  # the custodian no longer knows it: revoked already
        except Exception as exc:  # whatever happened, it stays owed with its reason
            if isinstance(exc, RequestDeferred | ServerError):
                retry_after = exc.retry_after
            reason = (
                f"no answer within {self.timeout:g} s"
                if isinstance(exc, TimeoutError)
                else type(exc).__name__
            )
            fail = partial(
                revocation_failed, self.store, owed.id, reason, retry_after=retry_after, now=now
            )
            delay = await anyio.to_thread.run_sync(fail)
            log.warning("revocation not confirmed (%s); retrying in %.0f s", reason, delay)
            return False
        await anyio.to_thread.run_sync(partial(revocation_done, self.store, owed.id))
        return True

    async def run_due(self, *, now: float | None = None) -> int:
        """Try every due revocation once; returns how many were confirmed."""
        due = partial(due_revocations, self.store, self.utility, now=now)
        confirmed = 0
        for owed in await anyio.to_thread.run_sync(due):
            confirmed += await self.attempt(owed, now=now)
        return confirmed
