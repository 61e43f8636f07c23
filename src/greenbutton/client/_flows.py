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

import threading
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx2

from ..espi._flow import Download, Downloaded, Flow, Lock, Unlock
from ._policy import SPOOL_MEMORY_BYTES, Clock, Locks, Policy
from ._send_async import exchange_async
from ._send_sync import exchange_sync

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


def run_sync(flow: Flow[T], client: httpx2.Client, *, policy: Policy, locks: Locks) -> T:
    """Drive ``flow`` to completion over ``client`` (a blocking ``httpx2.Client``)."""
    clock = Clock(policy)
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
                value = exchange_sync(client, step.request, policy, clock, download=True)
                downloads.append(value)
            else:
                value = exchange_sync(client, step, policy, clock.narrowed(step)).response
    finally:
        flow.close()
        for lock in reversed(held):
            lock.release()
        for got in downloads:
            got.close()


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
    clock = Clock(policy)
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
                value = await exchange_async(client, step.request, policy, clock, download=True)
                downloads.append(value)
            else:
                value = (await exchange_async(client, step, policy, clock.narrowed(step))).response
    finally:
        # Closing may roll back and release a store lock (database I/O): off the loop too,
        # and shielded, so a cancelled task still leaves the row unlocked.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(flow.close)
        for lock in reversed(held):
            lock.release()
        for got in downloads:
            got.close()
