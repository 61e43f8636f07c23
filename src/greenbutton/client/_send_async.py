"""One exchange of the async driver, written once: breaker around retries around one
streamed read (R27, R56-R59). ``scripts/unasync.py`` writes the blocking copy,
``_send_sync.py``, from this file (a marked line is replaced there: see the script).

Each attempt at a resource request is timed here, from sending it to its body read or its
failure, into the client's :class:`~._transport.ClientStats`, ``policy.stats`` (``/metrics``:
``greenbutton_fetch_seconds``); token requests (POSTs) are not fetches and are left out.
The time is a measurement, never a decision, so it is ``time.perf_counter`` and not the
policy's injected clock."""

from __future__ import annotations

import time

# unasync: async-only
import anyio

# unasync: end
import httpx2

from .._errors import RequestDeferred
from ..espi._flow import Downloaded
from ._policy import Clock, Policy, Sink, delay_for, judge, prepare, request_url
from ._transport import ClientStats, map_transport_error

__all__ = ["exchange_async"]


async def _read_async(
    client: httpx2.AsyncClient,
    request: httpx2.Request,
    policy: Policy,
    clock: Clock,
    download: bool,
) -> Downloaded:
    response = await client.send(request, stream=True)
    try:
        sink = Sink(response, request, policy, clock, download)
        try:
            async for chunk in response.aiter_bytes():
                sink.write(chunk)  # a spool on disk writes synchronously; chunks are small
        except BaseException:
            sink.file.close()
            raise
    finally:
        await response.aclose()
    return sink.result()


async def exchange_async(
    client: httpx2.AsyncClient,
    request: httpx2.Request,
    policy: Policy,
    clock: Clock,
    download: bool = False,
) -> Downloaded:
    breaker = policy.breaker
    if breaker is None:
        return await _attempts_async(client, request, policy, clock, download)
    probe = breaker.before(request_url(request))
    try:
        got = await _attempts_async(client, request, policy, clock, download)
    except BaseException as exc:
        judge(breaker, probe, exc, None)
        raise
    judge(breaker, probe, None, got.response.status_code)
    return got


async def _attempts_async(
    client: httpx2.AsyncClient,
    request: httpx2.Request,
    policy: Policy,
    clock: Clock,
    download: bool,
) -> Downloaded:
    attempt = 0
    stats = policy.stats if request.method != "POST" else None
    while True:
        attempt += 1
        url = request_url(request)
        clock.remaining(url)
        if policy.limiter is not None:
            try:
                await policy.limiter.acquire_async()
            except RequestDeferred as exc:  # a quota is used up (R58): not sent
                exc.url = exc.url or url
                raise
        prepare(request, client.timeout, clock.remaining(url))
        started = time.perf_counter()
        try:
            got = await _read_async(client, request, policy, clock, download)
        except httpx2.TransportError as exc:
            _record(stats, started)
            delay = delay_for(policy, request, attempt, None, exc)
            if delay is None or not clock.allows(delay):
                raise map_transport_error(exc, url) from exc
        else:
            _record(stats, started)
            delay = delay_for(policy, request, attempt, got.response, None)
            if delay is None or not clock.allows(delay):
                return got
            got.close()
        await anyio.sleep(delay)  # unasync: policy.sleep(delay)


def _record(stats: ClientStats | None, started: float) -> None:
    if stats is not None:
        stats.fetch_seconds.observe(time.perf_counter() - started)
