"""A request rate limit shared by every process on the machine (SECURITY R58).

A data custodian counts requests per vendor, not per process: PG&E allows 1 request/s for a
client id, and a web worker (``greenbutton serve``) and a CLI sync (``greenbutton sync``) that
each honoured that limit on their own would together send 2/s. :class:`SharedRateLimiter`
therefore keeps its state in a small file, one per (utility profile, client id), that every
process opens, and serialises the bookkeeping with ``fcntl.flock``:

* The state is GCRA's *theoretical arrival time* (the next free slot) as a ``CLOCK_MONOTONIC``
  timestamp, which on Linux counts from boot and is the same in every process, and which a
  wall-clock jump (NTP step, a user changing the date) does not move (R55). The boot id is
  stored beside it, so a value written before a reboot is not mistaken for one after.
* A caller takes the lock, reserves the next slot, writes the new state, releases the lock
  and only then sleeps until its slot: the lock is held for microseconds, callers are served
  in the order they reserved, and a process killed while it waits just leaves its slot unused.
* Async callers take the lock non-blocking and retry after a short ``anyio.sleep``, so the
  event loop never blocks on another process.

Slots are spaced ``(1 + headroom) / rate`` apart. Requests that leave evenly spaced reach the
custodian with a little jitter (scheduling, a new TLS connection), and a custodian counting
arrivals in a one-second window would see an exactly spaced stream exceed the limit by one
now and then; the default 10 % headroom absorbs up to 0.1 s of jitter at 1/s.

Where there is no ``fcntl`` (Windows) or the state folder cannot be created,
:func:`make_limiter` falls back to the in-process :class:`~.RateLimiter`
and logs a warning. The folder is, in this order: the ``directory`` argument,
``GREENBUTTON_RATE_DIR``, or the per-user cache folder (platformdirs' ``user_cache_dir``)
+ ``greenbutton/ratelimit``.

Request quotas (PG&E: 2,000/h and 20,000/day per client id, the day from 5 pm Pacific) are
counted in the same file under the same lock, so every process counts together. A request
over a quota is not sent and not slept for: :class:`~greenbutton.QuotaExhaustedError` (a
:class:`~greenbutton.RequestDeferred`) says how many seconds until the window frees one, so a
job runner defers the job. A request is counted at the time its rate-limit slot falls due
(when it leaves), not when it queued, so a request queued before a reset counts after it.

* **Which clock.** Quotas use the wall clock (``time.time``), unlike the slots: the custodian
  counts by its clock, its day resets at 17:00 in Los Angeles (23 or 25 hours apart on DST
  days, via :mod:`zoneinfo`), and a count must survive a reboot, which restarts
  ``CLOCK_MONOTONIC`` (the boot id only discards the slot, never the counts).
* **The hour is sliding**, kept as per-minute counts: a request may go when the current
  minute and the 60 before it hold fewer than the quota. PG&E does not say whether it counts
  clock hours or a sliding hour; fixed clock hours would let 2 x 2,000 requests through
  around :00, which a sliding counter refuses, while the sliding check satisfies either kind
  of counter. The 61st minute covers a partial minute at the window's start: no 60-minute
  span ever holds more than the quota, at the cost of waiting at most a minute longer.
* **Clock jumps.** The wall clock is taken as the custodian's (NTP keeps them together;
  a step is a correction towards it). Counts stamped with a minute or day that lies in the
  future (the clock was set back) are moved to the current minute or day, not dropped and
  not trusted as future windows: the requests were made, the custodian counted them in its
  current window, so a backward jump grants no fresh quota and never makes a caller wait
  for a window that has not begun. A forward jump within a window changes nothing; one
  past the window's end starts a new window, as it does at the custodian.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, time as dtime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio

from .._errors import ConfigurationError, QuotaExhaustedError
from .._util import user_cache_dir
from ._redact import get_logger
from ._transport import RateLimiter, Reserving

if TYPE_CHECKING:
    from ..models import UtilityProfile

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "RATE_DIR_ENV",
    "SHARED_LIMITER",
    "Limiter",
    "LocalQuotaLimiter",
    "Quota",
    "SharedRateLimiter",
    "check_limits",
    "default_rate_dir",
    "make_limiter",
    "profile_quotas",
]

log = get_logger("greenbutton.ratelimit")

#: Environment variable naming the folder of the shared rate-limit state files.
RATE_DIR_ENV = "GREENBUTTON_RATE_DIR"

#: How long an async caller waits before trying a lock another process holds again.
_ASYNC_LOCK_RETRY_S = 0.001

#: The sliding hour's granularity, and how many of its buckets a check sums (see above).
_MINUTE = 60
_HOUR_BUCKETS = 61

#: Bytes of state read; a state with both quotas is about 1 KiB.
_STATE_BYTES = 65536


@runtime_checkable
class Limiter(Protocol):
    """What the drivers need of a rate limiter: wait for a slot, blocking or awaiting."""

    def acquire(self) -> float: ...

    async def acquire_async(self) -> float: ...


def default_rate_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``GREENBUTTON_RATE_DIR``, else ``ratelimit`` in the per-user cache folder
    (:func:`greenbutton._util.user_cache_dir`, platformdirs)."""
    if env.get(RATE_DIR_ENV):
        return Path(env[RATE_DIR_ENV]).expanduser()
    return user_cache_dir(env) / "ratelimit"


@dataclass(frozen=True, slots=True)
class Quota:
    """At most ``limit`` requests per ``period``: a sliding ``"hour"``, or a ``"day"`` that
    starts at ``reset_hour`` o'clock local time in the IANA ``zone`` (module docstring)."""

    period: Literal["hour", "day"]
    limit: int
    zone: str = "UTC"
    reset_hour: int = 0

    def __post_init__(self) -> None:
        if self.period not in ("hour", "day"):
            raise ConfigurationError(f"quota period must be 'hour' or 'day', not {self.period!r}")
        if self.limit < 1:
            raise ConfigurationError(f"a request quota must be at least 1, not {self.limit}")
        if not 0 <= self.reset_hour <= 23:
            raise ConfigurationError(f"quota reset hour must be 0-23, not {self.reset_hour}")
        try:
            ZoneInfo(self.zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(f"unknown time zone for the quota: {self.zone!r}") from None

    def day_window(self, now: float) -> tuple[int, int]:
        """The (start, end) epoch seconds of the day window holding ``now``."""
        tz = ZoneInfo(self.zone)
        day = datetime.fromtimestamp(now, tz).date()
        start = datetime.combine(day, dtime(self.reset_hour), tz)
        if start.timestamp() > now:
            day -= timedelta(days=1)
            start = datetime.combine(day, dtime(self.reset_hour), tz)
        end = datetime.combine(day + timedelta(days=1), dtime(self.reset_hour), tz)
        return round(start.timestamp()), round(end.timestamp())

    def prune(self, state: Any, now: float) -> tuple[Any, float | None]:
        """The stored ``state`` as of ``now``: expired counts dropped, counts from the future
        moved to now (a clock set back); and the seconds until a request is free again, or
        None when one is free now. Malformed entries (a hand edit) count nothing."""
        if self.period == "hour":
            return self._prune_hour(state, now)
        return self._prune_day(state, now)

    def count(self, pruned: Any, now: float) -> Any:
        """``pruned`` (from :meth:`prune` at the same ``now``) with one more request."""
        if self.period == "hour":
            key = str(math.floor(now / _MINUTE))
            return {**pruned, key: pruned.get(key, 0) + 1}
        start, count = pruned
        return [start, count + 1]

    def _prune_hour(self, state: Any, now: float) -> tuple[dict[str, int], float | None]:
        current = math.floor(now / _MINUTE)
        counts: dict[int, int] = {}
        for key, n in (state if isinstance(state, dict) else {}).items():
            try:
                minute, n = int(key), int(n)
            except (TypeError, ValueError):
                continue
            minute = min(minute, current)  # from the future: the clock was set back
            if minute > current - _HOUR_BUCKETS and n > 0:
                counts[minute] = counts.get(minute, 0) + n
        pruned = {str(k): v for k, v in sorted(counts.items())}
        total = sum(counts.values())
        if total < self.limit:
            return pruned, None
        # Free once the oldest minutes holding (total - limit + 1) requests slide out.
        freed = 0
        for minute in sorted(counts):
            freed += counts[minute]
            if freed > total - self.limit:
                break
        return pruned, (minute + _HOUR_BUCKETS) * _MINUTE - now

    def _prune_day(self, state: Any, now: float) -> tuple[list[int], float | None]:
        start, end = self.day_window(now)
        try:
            stored, count = (int(v) for v in state)
        except (TypeError, ValueError):
            stored, count = start, 0
        if stored < start:
            count = 0  # an earlier day's
        # stored > start: a day in the future (the clock was set back): counted in this one
        return [start, count], (end - now if count >= self.limit else None)


def profile_quotas(profile: UtilityProfile) -> tuple[Quota, ...]:
    """The request quotas a utility profile declares (PG&E: 2,000/h, 20,000/day from 17:00
    America/Los_Angeles); none when it declares none."""
    quotas: list[Quota] = []
    if profile.quota_per_hour is not None:
        quotas.append(Quota("hour", profile.quota_per_hour))
    if profile.quota_per_day is not None:
        zone, hour = profile.quota_day_reset or ("UTC", 0)
        quotas.append(Quota("day", profile.quota_per_day, zone, hour))
    return tuple(quotas)


def _take_quotas(
    quotas: Sequence[Quota], states: Mapping[str, Any], now: float
) -> tuple[dict[str, Any], QuotaExhaustedError | None]:
    """Count one request at ``now`` against every quota: the new states and None; or, when
    one is used up, the pruned states (nothing counted) and the error for the quota that
    frees last (retrying when only a shorter one is free would just fail again). The pruned
    states are worth writing: they fix counts from the future to the current window."""
    pruned: dict[str, Any] = {}
    refusal: tuple[float, Quota] | None = None
    for quota in quotas:
        pruned[quota.period], wait = quota.prune(states.get(quota.period), now)
        if wait is not None and (refusal is None or wait > refusal[0]):
            refusal = (wait, quota)
    if refusal is None:
        return {q.period: q.count(pruned[q.period], now) for q in quotas}, None
    wait, quota = refusal
    return pruned, QuotaExhaustedError(
        f"request quota of {quota.limit} per {quota.period} used up; "
        f"the next request may go in {wait:.0f} s",
        retry_after=wait,
        quota=quota.period,
        limit=quota.limit,
    )


def _boot_id() -> str:
    """This boot of the machine (Linux); monotonic timestamps from another boot mean nothing."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""  # elsewhere: the staleness cap in _reserve_locked still bounds any wait


def _state_name(profile_name: str, client_id: str) -> str:
    # Hashed: a client id may hold any character; the file name must not.
    digest = hashlib.sha256(f"{profile_name}\0{client_id}".encode()).hexdigest()[:32]
    return f"{digest}.rate"


def check_limits(
    rate_per_s: float | None, burst: int, headroom: float, quotas: Sequence[Quota]
) -> None:
    """The arguments every shared limiter takes (this file's and the database's), checked
    once: a rate or a quota, a positive finite rate, burst >= 1, headroom in [0, 1), one
    quota per period. Raises :class:`ConfigurationError`."""
    if rate_per_s is None and not quotas:
        raise ConfigurationError("a shared limiter needs a rate limit or a quota")
    if rate_per_s is not None and (not rate_per_s > 0 or math.isinf(rate_per_s)):
        raise ConfigurationError(f"rate limit must be a positive number, not {rate_per_s}")
    if burst < 1:
        raise ConfigurationError(f"rate limit burst must be at least 1, not {burst}")
    if not 0 <= headroom < 1:
        raise ConfigurationError(f"rate limit headroom must be in [0, 1), not {headroom}")
    if len({q.period for q in quotas}) != len(quotas):
        raise ConfigurationError("at most one quota per period")


class SharedRateLimiter(Reserving):
    """GCRA rate limit and request quotas whose state lives in ``path``, shared by every
    process that opens it.

    ``rate_per_s`` requests per second (None: quotas only), ``burst`` of them back to back
    after an idle period (default 1), each slot ``headroom`` longer than ``1/rate_per_s``
    (see the module docstring); ``quotas`` raise :class:`~greenbutton.QuotaExhaustedError`
    instead of waiting. ``clock`` must be a clock shared by all processes
    (``time.monotonic`` on Linux); it, ``wall_clock`` (the quotas') and ``sleep`` /
    ``async_sleep`` are injectable for tests.
    """

    def __init__(
        self,
        rate_per_s: float | None,
        path: Path,
        *,
        burst: int = 1,
        headroom: float = 0.1,
        quotas: Sequence[Quota] = (),
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[object]] = anyio.sleep,
    ):
        if fcntl is None:  # pragma: no cover - Windows
            raise ConfigurationError("a shared rate limit needs fcntl (POSIX)")
        check_limits(rate_per_s, burst, headroom, quotas)
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.path = path
        self.quotas = tuple(quotas)
        self._interval = 0.0 if rate_per_s is None else (1.0 + headroom) / rate_per_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._boot = _boot_id()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(self._open())  # fail here, at construction, when the folder is not writable

    def __repr__(self) -> str:
        rate = "no rate" if self.rate_per_s is None else f"{self.rate_per_s:g}/s"
        quotas = "".join(f", {q.limit}/{q.period}" for q in self.quotas)
        return f"SharedRateLimiter({rate}{quotas}, {str(self.path)!r})"

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:  # the folder was removed (a cache clean-up): make it again
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    @staticmethod
    def _load(fd: int) -> dict[str, Any]:
        try:
            state = json.loads(os.pread(fd, _STATE_BYTES, 0))
        except ValueError:
            return {}  # empty or torn (a crash mid-write): start afresh
        return state if isinstance(state, dict) else {}

    def _tat(self, state: Mapping[str, Any]) -> float | None:
        try:
            boot, tat = state["boot"], float(state["tat"])
        except (KeyError, TypeError, ValueError):
            return None
        return tat if boot == self._boot and math.isfinite(tat) else None

    def _reserve_locked(self, fd: int) -> float:
        """Reserve the next slot and count it against the quotas; the caller holds the flock
        on ``fd``. Returns the wait; raises QuotaExhaustedError, reserving nothing."""
        now = self._clock()
        state = self._load(fd)
        tat = self._tat(state)
        # Without a boot id a reboot resets the clock; a slot implausibly far ahead is stale.
        if tat is None or tat - now > 3600.0 + 1000 * self._interval:
            tat = now
        tat = max(tat, now)
        wait = max(0.0, tat - (self.burst - 1) * self._interval - now)
        new: dict[str, Any] = {"boot": self._boot, "tat": tat + self._interval}
        refusal = None
        if self.quotas:
            found = state.get("quotas")
            found = found if isinstance(found, dict) else {}
            # Counted when the request leaves, at the end of its wait.
            taken, refusal = _take_quotas(self.quotas, found, self._wall_clock() + wait)
            # Keep periods this process does not know (another version's quotas) as found.
            new["quotas"] = {**found, **taken}
            if refusal is not None:  # nothing reserved, but counts moved from the future are
                new["boot"], new["tat"] = state.get("boot"), state.get("tat")
                refusal.retry_after += wait  # from now, not from the slot
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(new, separators=(",", ":")).encode(), 0)
        if refusal is not None:
            raise refusal
        return wait

    def _reserve(self) -> float:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return self._reserve_locked(fd)
        finally:
            os.close(fd)  # closing releases the flock

    async def _reserve_async(self) -> float:
        fd = self._open()
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    await anyio.sleep(_ASYNC_LOCK_RETRY_S)  # another holder: microseconds
                    continue
                return self._reserve_locked(fd)
        finally:
            os.close(fd)


class LocalQuotaLimiter:
    """Request quotas counted in this process only, in front of an optional in-process
    rate limiter: the fallback where the state cannot be shared (no ``fcntl``, or the state
    folder is not writable). Counts when a request is granted, not when its slot is due."""

    def __init__(
        self,
        quotas: Sequence[Quota],
        inner: Limiter | None = None,
        *,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.quotas = tuple(quotas)
        self.inner = inner
        self._wall_clock = wall_clock
        self._state: dict[str, object] = {}
        self._lock = threading.Lock()

    def _take(self) -> None:
        with self._lock:
            self._state, refusal = _take_quotas(self.quotas, self._state, self._wall_clock())
        if refusal is not None:
            raise refusal

    def acquire(self) -> float:
        self._take()
        return 0.0 if self.inner is None else self.inner.acquire()

    async def acquire_async(self) -> float:
        self._take()
        return 0.0 if self.inner is None else await self.inner.acquire_async()


#: Where the clients made in this context keep a shared limit instead of the state folder:
#: ``factory(rate_per_s, profile_name, client_id, quotas)`` (storage's database limiter,
#: so every machine on one PostgreSQL database counts together, DESIGN 3.7); None: files.
SHARED_LIMITER: ContextVar[
    Callable[[float | None, str, str, tuple[Quota, ...]], Limiter] | None
] = ContextVar("greenbutton_shared_limiter", default=None)


def make_limiter(
    rate_per_s: float | None,
    *,
    profile_name: str,
    client_id: str,
    shared: bool = True,
    directory: Path | None = None,
    quotas: Sequence[Quota] = (),
) -> Limiter | None:
    """The limiter a client uses: shared across processes for (``profile_name``,
    ``client_id``) in ``directory`` (default :func:`default_rate_dir`), or the in-process
    :class:`RateLimiter` (and :class:`LocalQuotaLimiter` for ``quotas``) when ``shared`` is
    False or sharing is impossible here; None when there is neither a rate nor a quota."""
    if not rate_per_s and not quotas:
        return None
    factory = SHARED_LIMITER.get()
    if shared and factory is not None:
        return factory(rate_per_s or None, profile_name, client_id, tuple(quotas))
    if shared and fcntl is not None:
        folder = directory if directory is not None else default_rate_dir()
        try:
            return SharedRateLimiter(
                rate_per_s or None, folder / _state_name(profile_name, client_id), quotas=quotas
            )
        except OSError as exc:
            log.warning(
                "cannot share the rate limit through %s (%s); limiting this process only",
                folder,
                exc.strerror or exc.__class__.__name__,
            )
    inner = RateLimiter(rate_per_s) if rate_per_s else None
    return LocalQuotaLimiter(quotas, inner) if quotas else inner
