"""What both drivers share, with no I/O of its own: the send policy, the named locks of one
client, the operation's clock (deadline and per-request timeouts, R56), the body sink that
enforces the cap and spools large bodies (R27), and the retry and breaker decisions (R57,
R59). The drivers are in :mod:`._flows`; the exchange loops in :mod:`._send_async` and the
generated :mod:`._send_sync`."""

from __future__ import annotations

import io
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

import anyio
import httpx2

from .._errors import ConnectError, RequestTimeout, TransportError
from ..espi._flow import REQUEST_DEADLINE, Downloaded
from ._breaker import CircuitBreaker
from ._ratelimit import Limiter
from ._transport import ClientStats, retry_delay

__all__ = [
    "SPOOL_MEMORY_BYTES",
    "Clock",
    "Locks",
    "Policy",
    "Sink",
    "delay_for",
    "judge",
    "prepare",
    "request_url",
]

#: A downloaded body stays in memory up to this size, then the spool moves to a temp file.
SPOOL_MEMORY_BYTES = 8 * 1024**2


class Locks:
    """Named locks of one client, created on first use (sync and async kinds kept apart)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._threads: dict[str, threading.Lock] = {}
        self._tasks: dict[str, anyio.Lock] = {}

    def thread_lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._threads.setdefault(name, threading.Lock())

    def task_lock(self, name: str) -> anyio.Lock:
        with self._guard:
            lock = self._tasks.get(name)
            if lock is None:
                lock = self._tasks[name] = anyio.Lock()
            return lock


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """How the drivers send: attempts, deadline, body cap, rate limit, injected RNG/clocks,
    and where the exchange loop records each resource request's latency (``stats``, the
    owning client's :class:`~._transport.ClientStats`; None records nothing)."""

    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    deadline: float | None = 300.0  # seconds for one whole operation (R56)
    max_body_bytes: int = 2 * 1024**3  # decoded bytes of one response (R27)
    spool_memory_bytes: int = SPOOL_MEMORY_BYTES  # a Download's body in memory up to this
    limiter: Limiter | None = None
    breaker: CircuitBreaker | None = None
    stats: ClientStats | None = None
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


class Clock:
    """The overall deadline of one run (monotonic, R55)."""

    def __init__(self, policy: Policy, deadline: float | None = None):
        self.policy = policy
        self.deadline = policy.deadline if deadline is None else deadline
        self.end = None if self.deadline is None else policy.monotonic() + self.deadline

    def narrowed(self, request: httpx2.Request) -> Clock:
        """This clock, or a shorter one for a request with a :data:`REQUEST_DEADLINE`."""
        seconds = request.extensions.get(REQUEST_DEADLINE)
        if seconds is None:
            return self
        inner = Clock(self.policy, float(seconds))
        return self if self.end is not None and self.end <= (inner.end or 0) else inner

    def remaining(self, url: str) -> float | None:
        if self.end is None:
            return None
        left = self.end - self.policy.monotonic()
        if left <= 0:
            raise RequestTimeout(f"the operation's deadline of {self.deadline:g} s passed", url=url)
        return left

    def allows(self, delay: float) -> bool:
        return self.end is None or self.policy.monotonic() + delay < self.end


def prepare(request: httpx2.Request, timeout: httpx2.Timeout, left: float | None) -> None:
    # Requests built by sans-IO code carry no timeout; without one the transport would wait
    # forever (R56). Clip every phase to what is left of the deadline.
    values = timeout.as_dict()
    if left is not None:
        values = {k: left if v is None else min(v, left) for k, v in values.items()}
    request.extensions = {**request.extensions, "timeout": values}


def request_url(request: httpx2.Request) -> str:
    return str(request.url.copy_with(query=None))


def _complete(response: httpx2.Response, body: bytes) -> httpx2.Response:
    """A read response: ``body`` is already decoded, so the encoding headers go."""
    headers = [
        (k, v)
        for k, v in response.headers.multi_items()
        if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx2.Response(
        response.status_code, headers=headers, content=body, request=response.request
    )


class Sink:
    """Where one attempt's body goes while it streams: memory for plain requests and error
    answers, a spooled temporary file for a Download's 2xx body; the cap and the deadline
    are checked on every chunk (R27, R56)."""

    def __init__(
        self,
        response: httpx2.Response,
        request: httpx2.Request,
        policy: Policy,
        clock: Clock,
        download: bool,
    ) -> None:
        self.response = response
        self.request = request
        self.policy = policy
        self.clock = clock
        self.spooled = download and 200 <= response.status_code < 300
        self.file: IO[bytes] = (
            tempfile.SpooledTemporaryFile(max_size=policy.spool_memory_bytes)
            if self.spooled
            else io.BytesIO()
        )
        self.size = 0
        self.url = request_url(request)  # once: write runs per chunk

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.policy.max_body_bytes:
            raise _too_large(self.request, self.policy.max_body_bytes)
        self.file.write(chunk)
        self.clock.remaining(self.url)  # a 1 byte/s trickle still ends (R56)

    def result(self) -> Downloaded:
        if not self.spooled:
            assert isinstance(self.file, io.BytesIO)
            return Downloaded(_complete(self.response, self.file.getvalue()), None, self.size)
        self.file.seek(0)
        return Downloaded(_complete(self.response, b""), self.file, self.size)


def _too_large(request: httpx2.Request, cap: int) -> TransportError:
    return TransportError(
        f"response body larger than {cap} bytes; aborted", url=request_url(request)
    )


def _is_token_request(request: httpx2.Request) -> bool:
    # Resource calls are GET/DELETE; the only POSTs a client sends go to the token endpoint.
    return request.method == "POST"


def delay_for(
    policy: Policy,
    request: httpx2.Request,
    attempt: int,
    response: httpx2.Response | None,
    error: Exception | None,
) -> float | None:
    return retry_delay(
        request.method,
        None if response is None else response.status_code,
        None if response is None else response.headers,
        attempt,
        error=error,
        is_token_request=_is_token_request(request),
        rng=policy.rng,
        max_attempts=policy.max_attempts,
        base=policy.backoff_base,
        cap=policy.backoff_cap,
    )


def judge(
    breaker: CircuitBreaker, probe: bool, error: BaseException | None, status: int | None
) -> None:
    """Feed one exchange's outcome, after its retries, to the breaker (R59): no connection,
    a transport timeout, or a 5xx/429 the retries gave up on is a failure; any other answer
    a success; anything else says nothing about the custodian: a cancellation, a body over
    the cap, and our own deadline passing (a RequestTimeout without a transport cause),
    which may have been spent queueing for the rate limit (R58) behind other requests."""
    timed_out = isinstance(error, RequestTimeout) and error.__cause__ is not None
    if (
        isinstance(error, ConnectError)
        or timed_out
        or (status is not None and (status >= 500 or status == 429))
    ):
        breaker.failure()
    elif status is not None:
        breaker.success()
    else:
        breaker.release(probe)
