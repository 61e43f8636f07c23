"""Flows and the two drivers that run them (STYLE 2): the only code that sends.

A *flow* is a generator that yields :class:`httpx2.Request` objects and receives the fully
read :class:`httpx2.Response` for each; its return value is the operation's result. Flows
compose with ``yield from`` (a data flow first runs a token flow), never touch a socket, and
are therefore written once for :func:`run_sync` and :func:`run_async`.

A flow may also yield :class:`Lock` / :class:`Unlock` for a named lock: the drivers map them
to a ``threading.Lock`` (sync) or an ``anyio.Lock`` (async) shared by one client, which is
how a token refresh is single-flight across threads or tasks (SECURITY R52). Locks a flow
still holds when it ends, normally or not, are released by the driver.

The drivers apply the transport policy to every request: the client-side rate limit (R58),
retries with backoff that honour ``Retry-After`` (R57, via ``retry_delay``), per-request
timeouts clipped to an overall deadline (R56), a cap on decoded body size (R27), and the
mapping of httpx2 errors to ours (no httpx2 type escapes).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import httpx2

from ._errors import RequestTimeout, TransportError
from ._transport import RateLimiter, map_transport_error, retry_delay

__all__ = ["Flow", "Lock", "Locks", "Policy", "Unlock", "run_async", "run_sync"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Lock:
    """Flow step: take the named lock (blocks other flows of the same client)."""

    name: str


@dataclass(frozen=True, slots=True)
class Unlock:
    """Flow step: release a named lock taken with :class:`Lock`."""

    name: str


Step = httpx2.Request | Lock | Unlock
#: A flow: yields steps, is sent the Response of each Request (None after Lock/Unlock).
Flow = Generator[Step, Any, T]


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
    limiter: RateLimiter | None = None
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


class _Clock:
    """The overall deadline of one run (monotonic, R55)."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self.end = None if policy.deadline is None else policy.monotonic() + policy.deadline

    def remaining(self, url: str) -> float | None:
        if self.end is None:
            return None
        left = self.end - self.policy.monotonic()
        if left <= 0:
            raise RequestTimeout(
                f"the operation's deadline of {self.policy.deadline:g} s passed", url=url
            )
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


# --------------------------------------------------------------------------------------------
# sync


def _read_sync(
    client: httpx2.Client, request: httpx2.Request, policy: Policy, clock: _Clock
) -> httpx2.Response:
    response = client.send(request, stream=True)
    try:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > policy.max_body_bytes:
                raise _too_large(request, policy.max_body_bytes)
            clock.remaining(_safe_url(request))  # a 1 byte/s trickle still ends (R56)
    finally:
        response.close()
    return _complete(response, bytes(body))


def _exchange_sync(
    client: httpx2.Client, request: httpx2.Request, policy: Policy, clock: _Clock
) -> httpx2.Response:
    attempt = 0
    while True:
        attempt += 1
        url = _safe_url(request)
        clock.remaining(url)
        if policy.limiter is not None:
            policy.limiter.acquire()
        _prepare(request, client.timeout, clock.remaining(url))
        try:
            response = _read_sync(client, request, policy, clock)
        except httpx2.TransportError as exc:
            delay = _delay(policy, request, attempt, None, exc)
            if delay is None or not clock.allows(delay):
                raise map_transport_error(exc, url) from exc
        else:
            delay = _delay(policy, request, attempt, response, None)
            if delay is None or not clock.allows(delay):
                return response
        policy.sleep(delay)


def run_sync(flow: Flow[T], client: httpx2.Client, *, policy: Policy, locks: Locks) -> T:
    """Drive ``flow`` to completion over ``client`` (a blocking ``httpx2.Client``)."""
    clock = _Clock(policy)
    held: list[threading.Lock] = []
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
            else:
                value = _exchange_sync(client, step, policy, clock)
    finally:
        flow.close()
        for lock in reversed(held):
            lock.release()


# --------------------------------------------------------------------------------------------
# async


async def _read_async(
    client: httpx2.AsyncClient, request: httpx2.Request, policy: Policy, clock: _Clock
) -> httpx2.Response:
    response = await client.send(request, stream=True)
    try:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > policy.max_body_bytes:
                raise _too_large(request, policy.max_body_bytes)
            clock.remaining(_safe_url(request))
    finally:
        await response.aclose()
    return _complete(response, bytes(body))


async def _exchange_async(
    client: httpx2.AsyncClient, request: httpx2.Request, policy: Policy, clock: _Clock
) -> httpx2.Response:
    attempt = 0
    while True:
        attempt += 1
        url = _safe_url(request)
        clock.remaining(url)
        if policy.limiter is not None:
            await policy.limiter.acquire_async()
        _prepare(request, client.timeout, clock.remaining(url))
        try:
            response = await _read_async(client, request, policy, clock)
        except httpx2.TransportError as exc:
            delay = _delay(policy, request, attempt, None, exc)
            if delay is None or not clock.allows(delay):
                raise map_transport_error(exc, url) from exc
        else:
            delay = _delay(policy, request, attempt, response, None)
            if delay is None or not clock.allows(delay):
                return response
        await anyio.sleep(delay)


async def run_async(
    flow: Flow[T], client: httpx2.AsyncClient, *, policy: Policy, locks: Locks
) -> T:
    """Drive ``flow`` to completion over ``client`` (an ``httpx2.AsyncClient``)."""
    clock = _Clock(policy)
    held: list[anyio.Lock] = []
    try:
        value: Any = None
        while True:
            try:
                step = flow.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
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
            else:
                value = await _exchange_async(client, step, policy, clock)
    finally:
        flow.close()
        for lock in reversed(held):
            lock.release()
