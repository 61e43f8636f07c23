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
:func:`make_limiter` falls back to the in-process :class:`~greenbutton._transport.RateLimiter`
and logs a warning. The folder is, in this order: the ``directory`` argument,
``GREENBUTTON_RATE_DIR``, or the per-user cache folder (platformdirs' ``user_cache_dir``)
+ ``greenbutton/ratelimit``.

Only the per-second limit is enforced; PG&E's hourly and daily quotas (2,000/h, 20,000/day)
are left to the job scheduler, which can defer whole jobs instead of holding requests open.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import anyio

from ._errors import ConfigurationError
from ._redact import get_logger
from ._transport import RateLimiter

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "RATE_DIR_ENV",
    "Limiter",
    "SharedRateLimiter",
    "default_rate_dir",
    "make_limiter",
]

log = get_logger("greenbutton.ratelimit")

#: Environment variable naming the folder of the shared rate-limit state files.
RATE_DIR_ENV = "GREENBUTTON_RATE_DIR"

#: How long an async caller waits before trying a lock another process holds again.
_ASYNC_LOCK_RETRY_S = 0.001


@runtime_checkable
class Limiter(Protocol):
    """What the drivers need of a rate limiter: wait for a slot, blocking or awaiting."""

    def acquire(self) -> float: ...

    async def acquire_async(self) -> float: ...


def default_rate_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``GREENBUTTON_RATE_DIR``, else the per-user cache folder (what platformdirs'
    ``user_cache_dir`` gives) + ``greenbutton/ratelimit``."""
    if env.get(RATE_DIR_ENV):
        return Path(env[RATE_DIR_ENV]).expanduser()
    if sys.platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "greenbutton" / "ratelimit"


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


class SharedRateLimiter:
    """GCRA rate limit whose state lives in ``path``, shared by every process that opens it.

    ``rate_per_s`` requests per second, ``burst`` of them back to back after an idle period
    (default 1), each slot ``headroom`` longer than ``1/rate_per_s`` (see the module
    docstring). ``clock`` must be a clock shared by all processes (``time.monotonic`` on
    Linux); it and ``sleep``/``async_sleep`` are injectable for tests.
    """

    def __init__(
        self,
        rate_per_s: float,
        path: Path,
        *,
        burst: int = 1,
        headroom: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[object]] = anyio.sleep,
    ):
        if fcntl is None:  # pragma: no cover - Windows
            raise ConfigurationError("a shared rate limit needs fcntl (POSIX)")
        if not rate_per_s > 0 or math.isinf(rate_per_s):
            raise ConfigurationError(f"rate limit must be a positive number, not {rate_per_s}")
        if burst < 1:
            raise ConfigurationError(f"rate limit burst must be at least 1, not {burst}")
        if not 0 <= headroom < 1:
            raise ConfigurationError(f"rate limit headroom must be in [0, 1), not {headroom}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.path = path
        self._interval = (1.0 + headroom) / rate_per_s
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._boot = _boot_id()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(self._open())  # fail here, at construction, when the folder is not writable

    def __repr__(self) -> str:
        return f"SharedRateLimiter({self.rate_per_s:g}/s, {str(self.path)!r})"

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:  # the folder was removed (a cache clean-up): make it again
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def _read(self, fd: int) -> float | None:
        raw = os.pread(fd, 256, 0)
        try:
            state = json.loads(raw)
            boot, tat = state["boot"], float(state["tat"])
        except (ValueError, KeyError, TypeError):
            return None  # empty or torn (a crash mid-write): start afresh
        return tat if boot == self._boot and math.isfinite(tat) else None

    def _reserve_locked(self, fd: int) -> float:
        """Reserve the next slot; the caller holds the flock on ``fd``. Returns the wait."""
        now = self._clock()
        tat = self._read(fd)
        # Without a boot id a reboot resets the clock; a slot implausibly far ahead is stale.
        if tat is None or tat - now > 3600.0 + 1000 * self._interval:
            tat = now
        tat = max(tat, now)
        wait = max(0.0, tat - (self.burst - 1) * self._interval - now)
        data = json.dumps({"boot": self._boot, "tat": tat + self._interval}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
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

    def acquire(self) -> float:
        """Block until a request may go; returns the seconds waited."""
        wait = self._reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    async def acquire_async(self) -> float:
        """:meth:`acquire` for coroutines: neither the lock nor the wait blocks the loop."""
        wait = await self._reserve_async()
        if wait > 0:
            await self._async_sleep(wait)
        return wait


def make_limiter(
    rate_per_s: float,
    *,
    profile_name: str,
    client_id: str,
    shared: bool = True,
    directory: Path | None = None,
) -> Limiter:
    """The limiter a client uses: shared across processes for (``profile_name``,
    ``client_id``) in ``directory`` (default :func:`default_rate_dir`), or the in-process
    :class:`RateLimiter` when ``shared`` is False or sharing is impossible here."""
    if shared and fcntl is not None:
        folder = directory if directory is not None else default_rate_dir()
        try:
            return SharedRateLimiter(rate_per_s, folder / _state_name(profile_name, client_id))
        except OSError as exc:
            log.warning(
                "cannot share the rate limit through %s (%s); limiting this process only",
                folder,
                exc.strerror or exc.__class__.__name__,
            )
    return RateLimiter(rate_per_s)
