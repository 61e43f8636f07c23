"""Flows and the two drivers that run them (STYLE 2): the only code that sends.

A *flow* is a generator that yields :class:`httpx2.Request` objects and receives the fully
read :class:`httpx2.Response` for each; its return value is the operation's result. Flows
compose with ``yield from`` (a data flow first runs a token flow), never touch a socket, and
are therefore written once for :func:`run_sync` and :func:`run_async`.

A flow that wants a body it may not hold in memory yields :class:`Download` (a request) and
receives a :class:`Downloaded`: the status and headers, and a 2xx body streamed into a
:class:`tempfile.SpooledTemporaryFile` (in memory up to ``Policy.spool_memory_bytes``, then on
disk) under the body cap, never read whole into memory (R27). The flow parses from that file
and closes it; the driver closes whatever a flow left open when the run ends.

A flow may also yield :class:`Lock` / :class:`Unlock` for a named lock: the drivers map them
to a ``threading.Lock`` (sync) or an ``anyio.Lock`` (async) shared by one client, which is
how a token refresh is single-flight across threads or tasks (SECURITY R52). Locks a flow
still holds when it ends, normally or not, are released by the driver.

A flow's own code is synchronous: between two steps it may read and write the token store,
wait for the store's cross-process lock (a database row another process holds while it
refreshes) and parse a large body. :func:`run_async` therefore advances (and closes) the flow
in a worker thread, one step at a time, so the event loop keeps serving other tasks while
one task waits (R52); only the HTTP exchanges and the in-process locks run on the loop. A
flow is never advanced by two threads at once, and the objects it holds across steps (a
database connection under a row lock) are used by one thread at a time.

The drivers apply the transport policy to every request: the circuit breaker (R59, checked
once per exchange, fed the exchange's outcome after its retries), the client-side rate limit
and request quotas (R58, shared across processes by default; a used-up quota raises
``QuotaExhaustedError`` before anything is sent, and the breaker ignores it), retries with
backoff that honour ``Retry-After`` (R57, via ``retry_delay``), per-request timeouts clipped
to an overall deadline (R56), a cap on decoded body size (R27), and the mapping of httpx2
errors to ours (no httpx2 type escapes).
"""

from __future__ import annotations

import io
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx2

from .._errors import ConnectError, RequestDeferred, RequestTimeout, TransportError
from ..espi._flow import REQUEST_DEADLINE, Download, Downloaded, Flow, Lock, Unlock
from ._breaker import CircuitBreaker
from ._ratelimit import Limiter
from ._transport import map_transport_error, retry_delay

__all__ = [
    "SPOOL_MEMORY_BYTES",
    "Download",
    "Downloaded",
    "Flow",
    "Lock",
    "Locks",
    "Policy",
    "Unlock",
    "run_async",
    "run_sync",
]

T = TypeVar("T")

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
    """How the drivers send: attempts, deadline, body cap, rate limit, injected RNG/clocks."""

    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    deadline: float | None = 300.0  # seconds for one whole operation (R56)
    max_body_bytes: int = 2 * 1024**3  # decoded bytes of one response (R27)
    spool_memory_bytes: int = SPOOL_MEMORY_BYTES  # a Download's body in memory up to this
    limiter: Limiter | None = None
    breaker: CircuitBreaker | None = None
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


class _Clock:
    """The overall deadline of one run (monotonic, R55)."""

    def __init__(self, policy: Policy, deadline: float | None = None):
        self.policy = policy
        self.deadline = policy.deadline if deadline is None else deadline
        self.end = None if self.deadline is None else policy.monotonic() + self.deadline

    def narrowed(self, request: httpx2.Request) -> _Clock:
        """This clock, or a shorter one for a request with a :data:`REQUEST_DEADLINE`."""
        seconds = request.extensions.get(REQUEST_DEADLINE)
        if seconds is None:
            return self
        inner = _Clock(self.policy, float(seconds))
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


def _prepare(request: httpx2.Request, timeout: httpx2.Timeout, left: float | None) -> None:
    # Requests built by sans-IO code carry no timeout; without one the transport would wait
    # forever (R56). Clip every phase to what is left of the deadline.
    values = timeout.as_dict()
    if left is not None:
        values = {k: left if v is None else min(v, left) for k, v in values.items()}
    request.extensions = {**request.extensions, "timeout": values}


def _safe_url(request: httpx2.Request) -> str:
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


class _Sink:
    """Where one attempt's body goes while it streams: memory for plain requests and error
    answers, a spooled temporary file for a Download's 2xx body; the cap and the deadline
    are checked on every chunk (R27, R56)."""

    def __init__(
        self,
        response: httpx2.Response,
        request: httpx2.Request,
        policy: Policy,
        clock: _Clock,
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

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.policy.max_body_bytes:
            raise _too_large(self.request, self.policy.max_body_bytes)
        self.file.write(chunk)
        self.clock.remaining(_safe_url(self.request))  # a 1 byte/s trickle still ends (R56)

    def result(self) -> Downloaded:
        if not self.spooled:
            assert isinstance(self.file, io.BytesIO)
            return Downloaded(_complete(self.response, self.file.getvalue()), None, self.size)
        self.file.seek(0)
        return Downloaded(_complete(self.response, b""), self.file, self.size)


def _too_large(request: httpx2.Request, cap: int) -> TransportError:
    return TransportError(f"response body larger than {cap} bytes; aborted", url=_safe_url(request))


def _is_token_request(request: httpx2.Request) -> bool:
    # Resource calls are GET/DELETE; the only POSTs a client sends go to the token endpoint.
    return request.method == "POST"


def _delay(
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


def _judge(
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


# --------------------------------------------------------------------------------------------
# sync


def _read_sync(
    client: httpx2.Client, request: httpx2.Request, policy: Policy, clock: _Clock, download: bool
) -> Downloaded:
    response = client.send(request, stream=True)
    try:
        sink = _Sink(response, request, policy, clock, download)
        try:
            for chunk in response.iter_bytes():
                sink.write(chunk)
        except BaseException:
            sink.file.close()
            raise
    finally:
        response.close()
    return sink.result()


def _exchange_sync(
    client: httpx2.Client,
    request: httpx2.Request,
    policy: Policy,
    clock: _Clock,
    download: bool = False,
) -> Downloaded:
    breaker = policy.breaker
    if breaker is None:
        return _attempts_sync(client, request, policy, clock, download)
    probe = breaker.before(_safe_url(request))
    try:
        got = _attempts_sync(client, request, policy, clock, download)
    except BaseException as exc:
        _judge(breaker, probe, exc, None)
        raise
    _judge(breaker, probe, None, got.response.status_code)
    return got


def _attempts_sync(
    client: httpx2.Client,
    request: httpx2.Request,
    policy: Policy,
    clock: _Clock,
    download: bool,
) -> Downloaded:
    attempt = 0
    while True:
        attempt += 1
        url = _safe_url(request)
        clock.remaining(url)
        if policy.limiter is not None:
            try:
                policy.limiter.acquire()
            except RequestDeferred as exc:  # a quota is used up (R58): not sent
                exc.url = exc.url or url
                raise
        _prepare(request, client.timeout, clock.remaining(url))
        try:
            got = _read_sync(client, request, policy, clock, download)
        except httpx2.TransportError as exc:
            delay = _delay(policy, request, attempt, None, exc)
            if delay is None or not clock.allows(delay):
                raise map_transport_error(exc, url) from exc
        else:
            delay = _delay(policy, request, attempt, got.response, None)
            if delay is None or not clock.allows(delay):
                return got
            got.close()
        policy.sleep(delay)


def run_sync(flow: Flow[T], client: httpx2.Client, *, policy: Policy, locks: Locks) -> T:
    """Drive ``flow`` to completion over ``client`` (a blocking ``httpx2.Client``)."""
    clock = _Clock(policy)
    held: list[threading.Lock] = []
    downloads: list[Downloaded] = []
    try:
        value: Any = None
        while True:
            try:
                step = flow.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if isinstance(step, Lock):
                lock = locks.thread_lock(step.name)
                lock.acquire()
                held.append(lock)
                value = None
            elif isinstance(step, Unlock):
                lock = locks.thread_lock(step.name)
                held.remove(lock)
                lock.release()
                value = None
            elif isinstance(step, Download):
                value = _exchange_sync(client, step.request, policy, clock, download=True)
                downloads.append(value)
            else:
                value = _exchange_sync(client, step, policy, clock.narrowed(step)).response
    finally:
        flow.close()
        for lock in reversed(held):
            lock.release()
        for got in downloads:
            got.close()


# --------------------------------------------------------------------------------------------
# async


async def _read_async(
    client: httpx2.AsyncClient,
    request: httpx2.Request,
    policy: Policy,
    clock: _Clock,
    download: bool,
) -> Downloaded:
    response = await client.send(request, stream=True)
    try:
        sink = _Sink(response, request, policy, clock, download)
        try:
            async for chunk in response.aiter_bytes():
                sink.write(chunk)  # a spool on disk writes synchronously; chunks are small
        except BaseException:
            sink.file.close()
            raise
    finally:
        await response.aclose()
    return sink.result()


async def _exchange_async(
    client: httpx2.AsyncClient,
    request: httpx2.Request,
    policy: Policy,
    clock: _Clock,
    download: bool = False,
) -> Downloaded:
    breaker = policy.breaker
    if breaker is None:
        return await _attempts_async(client, request, policy, clock, download)
    probe = breaker.before(_safe_url(request))
    try:
        got = await _attempts_async(client, request, policy, clock, download)
    except BaseException as exc:
        _judge(breaker, probe, exc, None)
        raise
    _judge(breaker, probe, None, got.response.status_code)
    return got


async def _attempts_async(
    client: httpx2.AsyncClient,
    request: httpx2.Request,
    policy: Policy,
    clock: _Clock,
    download: bool,
) -> Downloaded:
    attempt = 0
    while True:
        attempt += 1
        url = _safe_url(request)
        clock.remaining(url)
        if policy.limiter is not None:
            try:
                await policy.limiter.acquire_async()
            except RequestDeferred as exc:  # a quota is used up (R58): not sent
                exc.url = exc.url or url
                raise
        _prepare(request, client.timeout, clock.remaining(url))
        try:
            got = await _read_async(client, request, policy, clock, download)
        except httpx2.TransportError as exc:
            delay = _delay(policy, request, attempt, None, exc)
            if delay is None or not clock.allows(delay):
                raise map_transport_error(exc, url) from exc
        else:
            delay = _delay(policy, request, attempt, got.response, None)
            if delay is None or not clock.allows(delay):
                return got
            got.close()
        await anyio.sleep(delay)


def _advance(flow: Flow[T], value: Any) -> tuple[bool, Any]:
    """``flow.send(value)`` as ``(done, step or result)``: a StopIteration cannot cross
    from a worker thread into a coroutine (PEP 479), so it ends here."""
    try:
        return False, flow.send(value)
    except StopIteration as stop:
        return True, stop.value


async def run_async(
    flow: Flow[T], client: httpx2.AsyncClient, *, policy: Policy, locks: Locks
) -> T:
    """Drive ``flow`` to completion over ``client`` (an ``httpx2.AsyncClient``); the flow's
    own code runs in a worker thread (see the module docstring)."""
    clock = _Clock(policy)
    held: list[anyio.Lock] = []
    downloads: list[Downloaded] = []
    try:
        value: Any = None
        while True:
            done, step = await anyio.to_thread.run_sync(_advance, flow, value)
            # The thread is not abandoned on cancellation (the flow may hold a store lock);
            # a task cancelled meanwhile stops here, before its next step is sent.
            await anyio.lowlevel.checkpoint_if_cancelled()
            if done:
                return step  # type: ignore[no-any-return]
            if isinstance(step, Lock):
                lock = locks.task_lock(step.name)
                await lock.acquire()
                held.append(lock)
                value = None
            elif isinstance(step, Unlock):
                lock = locks.task_lock(step.name)
                held.remove(lock)
                lock.release()
                value = None
            elif isinstance(step, Download):
                value = await _exchange_async(client, step.request, policy, clock, download=True)
                downloads.append(value)
            else:
                value = (await _exchange_async(client, step, policy, clock.narrowed(step))).response
    finally:
        # Closing may roll back and release a store lock (database I/O): off the loop too,
        # and shielded, so a cancelled task still leaves the row unlocked.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(flow.close)
        for lock in reversed(held):
            lock.release()
        for got in downloads:
            got.close()
