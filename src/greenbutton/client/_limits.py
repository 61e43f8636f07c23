"""A read-only look at a client's limits for operators: rate, quotas used, circuit state,
and when the client certificate expires (the console at /admin and ``/metrics``).

Nothing here sends a request or takes a slot: the quota counts are read from the limiter's
shared state (under a shared ``flock``, the way the limiter itself reads them) and pruned
with the quota's own rule (:meth:`Quota.prune`), so the numbers are what the next request
would be judged by. A limiter whose state this module does not know how to read reports
``used=None`` rather than a guess.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["ClientLimits", "QuotaUse", "certificate_expiry", "client_limits"]


@dataclass(frozen=True, slots=True)
class QuotaUse:
    """One request quota: ``used`` of ``limit`` in the current ``period`` window (None:
    not known here), and seconds until a request is free again when it is used up."""

    period: str
    limit: int
    used: int | None
    resets_in: float | None = None


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """The limits one client sends under. ``circuit`` is ``closed``, ``open``,
    ``half_open``, or ``none`` (no breaker)."""

    rate_per_s: float | None
    quotas: tuple[QuotaUse, ...]
    circuit: str
    circuit_failures: int
    shared: bool  # counted with every other process (a shared limiter)


def _state_of(limiter: Any) -> dict[str, Any] | None:
    """The quota states a limiter keeps, or None when they are not readable here."""
    read = getattr(limiter, "quota_state", None)  # storage's DatabaseLimiter (PostgreSQL)
    if callable(read):
        state = read()
        return state if isinstance(state, dict) else {}
    path = getattr(limiter, "path", None)
    if isinstance(path, Path):  # SharedRateLimiter: a JSON file under flock
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return {}  # no request yet
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_SH)
            raw = os.pread(fd, 1 << 20, 0)
        finally:
            os.close(fd)
        try:
            state = json.loads(raw)
        except ValueError:
            return {}
        quotas = state.get("quotas") if isinstance(state, dict) else None
        return quotas if isinstance(quotas, dict) else {}
    state = getattr(limiter, "_state", None)  # LocalQuotaLimiter: in this process
    return dict(state) if isinstance(state, dict) else None


def client_limits(client: Any, *, now: float | None = None) -> ClientLimits:
    """The limits of a :class:`Client` or :class:`AsyncClient`, read without side effects."""
    now = time.time() if now is None else now
    policy = getattr(client, "_policy", None)
    limiter = getattr(policy, "limiter", None)
    breaker = getattr(policy, "breaker", None)
    inner = getattr(limiter, "inner", None)
    rate = getattr(limiter, "rate_per_s", None) or getattr(inner, "rate_per_s", None)
    states = _state_of(limiter) if limiter is not None else None
    uses = []
    for quota in getattr(limiter, "quotas", ()):
        used = resets = None
        if states is not None:
            with contextlib.suppress(Exception):  # a hand-edited file counts nothing
                pruned, resets = quota.prune(states.get(quota.period), now)
                used = sum(pruned.values()) if quota.period == "hour" else int(pruned[1])
        uses.append(QuotaUse(quota.period, int(quota.limit), used, resets))
    return ClientLimits(
        rate_per_s=float(rate) if isinstance(rate, int | float) and rate else None,
        quotas=tuple(uses),
        circuit="none" if breaker is None else str(breaker.state),
        circuit_failures=0 if breaker is None else int(breaker.failures),
        shared=isinstance(getattr(limiter, "path", None), Path),
    )


def certificate_expiry(path: Path) -> datetime | None:
    """When the first certificate in the PEM file ``path`` stops being valid (UTC), or
    None when the file is missing or holds no certificate."""
    from cryptography import x509

    try:
        data = path.read_bytes()
        cert = x509.load_pem_x509_certificates(data)[0]
    except (OSError, ValueError, IndexError):
        return None
    return cert.not_valid_after_utc.astimezone(UTC)
