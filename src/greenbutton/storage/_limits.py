"""The utility's rate limit and quotas, shared by every machine on one PostgreSQL database.

The file-locked limiter (``client/_ratelimit.py``, R58) makes every process *on a machine*
count together; two machines would each send PG&E's 1 request/s and 2,000/h. On PostgreSQL
the state moves into the database all of them already share (table ``shared_limits``,
r0007): one row per (utility profile, client id) with GCRA's next free slot (``tat``), the
quota counts (the file limiter's JSON), and a ``version``.

* **One atomic statement per reservation.** A caller reads the row and the database's
  clock, reserves the next slot and counts the request with the file limiter's own rules
  (:func:`~greenbutton.client._ratelimit._take_quotas`: one copy of the quota policy, the
  sliding hour and the 17:00-Pacific day included), and writes the result with one
  ``INSERT ... ON CONFLICT DO UPDATE ... WHERE version = <read> RETURNING``: it commits only
  when nobody reserved since the read, else the caller reads again. No lock is held while
  anyone sleeps; callers sleep for their slot on their own monotonic clock.
* **Which clock.** Slots use the database server's clock (``clock_timestamp()``), the one
  clock every machine sees: monotonic clocks of two machines cannot be compared (nor can
  their wall clocks be trusted to agree to a tenth of a second). A slot implausibly far
  ahead (more than an hour plus 1,000 slots: that server's clock was set back) is stale and
  restarts at now; a slot behind now (set forward) is now, as in the file limiter. The
  quotas count on the same clock, with the file limiter's rules for counts stamped in the
  future (moved to the current window, never dropped).
* ``holder`` records the host (``GREENBUTTON_HOST_ID``) of the last reservation.

:func:`shared_limits` makes the clients created inside it use this limiter when the store
is PostgreSQL; on SQLite (one machine) they keep the file-locked one.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import anyio
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert

from .._errors import ConfigurationError
from ..client._ratelimit import SHARED_LIMITER, Quota, _state_name, _take_quotas, check_limits
from ..client._transport import Reserving
from ._queue import host_id
from ._schema import shared_limits as limits_table
from ._store import Store

__all__ = ["DatabaseLimiter", "shared_limits"]

_READ = text(
    "SELECT c.now, s.version, s.tat, s.quotas FROM"
    " (SELECT extract(epoch FROM clock_timestamp())::float8 AS now) c"
    " LEFT JOIN shared_limits s ON s.key = :key"
)


class DatabaseLimiter(Reserving):
    """GCRA rate limit and request quotas for ``key``, kept in ``store``'s PostgreSQL
    database: the :class:`~greenbutton.client._ratelimit.Limiter` protocol, with the
    arguments of :class:`~greenbutton.client._ratelimit.SharedRateLimiter`."""

    def __init__(
        self,
        store: Store,
        key: str,
        rate_per_s: float | None,
        *,
        burst: int = 1,
        headroom: float = 0.1,
        quotas: Sequence[Quota] = (),
        holder: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[object]] = anyio.sleep,
    ) -> None:
        if store.dialect != "postgresql":
            raise ConfigurationError("a database rate limit needs PostgreSQL")
        check_limits(rate_per_s, burst, headroom, quotas)
        self.store, self.key, self.rate_per_s, self.burst = store, key, rate_per_s, burst
        self.quotas = tuple(quotas)
        self.holder = holder or host_id()
        self._interval = 0.0 if rate_per_s is None else (1.0 + headroom) / rate_per_s
        self._sleep, self._async_sleep = sleep, async_sleep

    def __repr__(self) -> str:
        rate = "no rate" if self.rate_per_s is None else f"{self.rate_per_s:g}/s"
        quotas = "".join(f", {q.limit}/{q.period}" for q in self.quotas)
        return f"DatabaseLimiter({rate}{quotas}, {self.key!r})"

    def quota_state(self) -> dict[str, object]:
        """The stored quota counts of ``key`` (read only; what ``/admin`` and ``/metrics``
        show), in the form the file-locked limiter keeps them."""
        with self.store.connect() as conn:
            _now, _version, _tat, stored = conn.execute(_READ, {"key": self.key}).one()
        try:
            found = json.loads(stored) if stored else {}
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    def _try(self) -> float | None:
        """One read and one conditional write: the wait, or None when another reservation
        came first (read again). Raises QuotaExhaustedError, reserving nothing."""
        with self.store.connect() as conn:
            now, version, tat, stored = conn.execute(_READ, {"key": self.key}).one()
        try:
            found = json.loads(stored) if stored else {}
        except ValueError:
            found = {}  # a hand edit: counts nothing, as a torn file
        found = found if isinstance(found, dict) else {}
        slot = float(tat) if tat is not None and math.isfinite(tat) else None
        # A slot implausibly far ahead: the server's clock was set back (see docstring).
        if slot is None or slot - now > 3600.0 + 1000 * self._interval:
            slot = now
        slot = max(slot, now)
        wait = max(0.0, slot - (self.burst - 1) * self._interval - now)
        new_tat: float | None = slot + self._interval
        refusal = None
        quotas = found
        if self.quotas:
            taken, refusal = _take_quotas(self.quotas, found, now + wait)  # when it leaves
            quotas = {**found, **taken}
            if refusal is not None:  # nothing reserved; counts moved from the future are
                new_tat = tat
                refusal.retry_after += wait
        counts = json.dumps(quotas, separators=(",", ":"))
        t = limits_table
        new = insert(t).values(key=self.key, version=1, tat=new_tat, quotas=counts,
                               holder=self.holder, updated_at=now)  # fmt: skip
        stmt = new.on_conflict_do_update(
            index_elements=[t.c.key],
            set_={
                "version": t.c.version + 1,
                "tat": new.excluded.tat,
                "quotas": new.excluded.quotas,
                "holder": new.excluded.holder,
                "updated_at": new.excluded.updated_at,
            },  # fmt: skip
            # versions start at 1: a row that did not exist at the read never matches 0
            where=t.c.version == (0 if version is None else int(version)),
        ).returning(t.c.version)
        won = self.store.transaction(lambda c: c.execute(stmt).first() is not None)
        if not won:
            return None
        if refusal is not None:
            raise refusal
        return float(wait)

    def _reserve(self) -> float:
        while True:
            wait = self._try()
            if wait is not None:
                return wait

    async def _reserve_async(self) -> float:
        return await anyio.to_thread.run_sync(self._reserve)  # the round trips off the loop


def limit_key(profile_name: str, client_id: str) -> str:
    """The row of (``profile_name``, ``client_id``): the file limiter's hashed name."""
    return _state_name(profile_name, client_id).removesuffix(".rate")


@contextmanager
def shared_limits(store: Store, *, holder: str | None = None) -> Iterator[None]:
    """Clients created inside keep their rate limit and quotas in ``store``'s database when
    it is PostgreSQL (every machine counts together); on SQLite nothing changes."""
    if store.dialect != "postgresql":
        yield
        return

    def factory(
        rate: float | None, profile_name: str, client_id: str, quotas: tuple[Quota, ...]
    ) -> Any:
        key = limit_key(profile_name, client_id)
        return DatabaseLimiter(store, key, rate, quotas=quotas, holder=holder)

    token = SHARED_LIMITER.set(factory)
    try:
        yield
    finally:
        SHARED_LIMITER.reset(token)
