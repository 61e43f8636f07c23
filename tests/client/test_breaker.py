"""SECURITY R59: after N failed operations in a row the client fails fast, then probes.

Against the real simulator over mutual TLS. Failures come from its ``status_burst`` fault;
requests are counted where they arrive (``sim.state.arrivals``), so "fail fast" means
"nothing reached the custodian". The breaker's monotonic clock is injected and moved by the
test (no cool-down is slept through); backoff sleeps go to a list.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from greenbutton import (
    APIStatusError,
    AsyncClient,
    CircuitBreaker,
    CircuitOpenError,
    Client,
    RequestTimeout,
    ServerError,
    TransportError,
)
from greenbutton.client._config import credentials_from_registration
from greenbutton.models import Document
from greenbutton.models._profile import UtilityProfile
from greenbutton.oauth import InMemoryTokenStore
from tests.simulator_harness import SimulatorHandle, start_simulator


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(tmp_path / "sim", auto_approve="alice", customers=1) as handle:
        yield handle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _breaker(clock: Clock, **options: Any) -> CircuitBreaker:
    options.setdefault("failure_threshold", 3)
    options.setdefault("min_span_s", 0.0)
    return CircuitBreaker(cooldown_s=10.0, jitter=0.5, clock=clock, rng=random.Random(7), **options)


def _client(gb: SimulatorHandle, **options: Any) -> tuple[Client, str]:
    """An authorized client with a fresh token (every fault hits the data call only)."""
    options.setdefault("sleep", lambda s: None)
    client = Client.for_simulator(gb.state_dir / "registration.json", **options)
    pending = client.authorization_url()
    with gb.portal_client() as browser:
        r = browser.get(pending.url)
    key, _ = client.exchange_code(r.headers["location"], pending)
    assert isinstance(client.usage_points(key), Document)
    return client, key


def _burst(gb: SimulatorHandle, status: int, n: int) -> None:
    faults = gb.sim.faults
    faults.burst_status, faults.retry_after, faults.status_burst = status, 0, n


def _arrived(gb: SimulatorHandle) -> int:
    return len(gb.sim.state.arrivals)


def test_opens_after_n_failed_operations_then_a_probe_decides(gb: SimulatorHandle) -> None:
    """Operations fail after their 4 attempts each (503). Three within a second are a blip
    (the circuit stays closed); one more 10 s later makes it sustained -> it opens, and the
    next calls raise CircuitOpenError with nothing sent. After the cool-down one probe goes
    out: a failing probe re-opens with the cool-down doubled, a succeeding one closes."""
    clock = Clock()
    breaker = _breaker(clock, min_span_s=10.0)
    client, key = _client(gb, circuit_breaker=breaker)
    with client:
        _burst(gb, 503, 4 * 4 + 4)  # four operations, then one failing probe
        before = _arrived(gb)
        for _ in range(3):
            with pytest.raises(ServerError):
                client.usage_points(key)
        assert breaker.state == "closed" and breaker.failures == 3  # not sustained yet
        clock.now += 10.0
        with pytest.raises(ServerError):
            client.usage_points(key)
        assert _arrived(gb) - before == 16 and breaker.failures == 4
        assert repr(breaker) == "<CircuitBreaker open failures=4>"

        for _ in range(5):
            with pytest.raises(CircuitOpenError) as info:
                client.usage_points(key)
        assert _arrived(gb) - before == 16  # failed fast: the simulator saw none of them
        first = info.value
        assert isinstance(first, TransportError) and first.failures == 4
        assert 10.0 <= first.retry_after <= 15.0  # cool-down with jitter
        assert first.url is not None and first.url.endswith("/UsagePoint")
        assert first.url in str(first) and "next try in" in str(first)

        clock.now += first.retry_after  # cool-down over: the next call is the probe
        with pytest.raises(ServerError):
            client.usage_points(key)
        assert _arrived(gb) - before == 20 and gb.sim.faults.status_burst == 0
        with pytest.raises(CircuitOpenError) as info:
            client.usage_points(key)
        assert 20.0 <= info.value.retry_after <= 30.0  # re-opened, cool-down doubled
        assert _arrived(gb) - before == 20

        clock.now += info.value.retry_after
        assert isinstance(client.usage_points(key), Document)  # the probe succeeds
        assert breaker.state == "closed" and breaker.failures == 0
        assert isinstance(client.usage_points(key), Document)
        assert _arrived(gb) - before == 22


def test_while_the_probe_is_out_other_callers_fail_fast(gb: SimulatorHandle) -> None:
    """Half-open lets exactly one request through: a second caller during the (slow) probe
    gets CircuitOpenError and sends nothing."""
    clock = Clock()
    breaker = _breaker(clock, failure_threshold=1)
    client, key = _client(gb, circuit_breaker=breaker)
    with client:
        _burst(gb, 500, 1)  # 500 is not retried: one request, one failed operation
        with pytest.raises(ServerError):
            client.usage_points(key)
        clock.now += 60.0
        gb.sim.faults.latency_ms = 400  # the probe stays in flight
        before = _arrived(gb)
        probe: list[object] = []
        thread = threading.Thread(target=lambda: probe.append(client.usage_points(key)))
        thread.start()
        deadline = time.monotonic() + 10
        while _arrived(gb) == before and time.monotonic() < deadline:
            time.sleep(0.005)  # until the probe reached the simulator
        with pytest.raises(CircuitOpenError) as info:
            client.usage_points(key)
        assert info.value.retry_after == 0.0  # due, but another caller is probing
        thread.join(10)
        gb.sim.faults.latency_ms = 0
        assert len(probe) == 1 and isinstance(probe[0], Document)
        assert _arrived(gb) - before == 1 and breaker.state == "closed"


def test_other_answers_reset_the_count_and_defaults_do_not_trip(gb: SimulatorHandle) -> None:
    """A 404 is an answer (the custodian is up): it resets the count, so 2 + 2 failures
    with a threshold of 3 never open. The default breaker (5 operations) is on, and
    ``circuit_breaker=False`` sends every call."""
    clock = Clock()
    breaker = _breaker(clock)
    client, key = _client(gb, circuit_breaker=breaker)
    with client:
        for status, n in ((500, 2), (404, 1), (500, 2)):
            _burst(gb, status, n)
            for _ in range(n):
                with pytest.raises(APIStatusError):
                    client.usage_points(key)
        assert breaker.state == "closed" and breaker.failures == 2
    default, key = _client(gb)
    with default:
        assert default._policy.breaker is not None
        assert default._policy.breaker.failure_threshold == 5
        assert default._policy.breaker.min_span_s == 10.0
    off, key = _client(gb, circuit_breaker=False)
    with off:
        _burst(gb, 500, 8)
        before = _arrived(gb)
        for _ in range(8):
            with pytest.raises(ServerError):
                off.usage_points(key)
        assert _arrived(gb) - before == 8


def test_recovery_goes_through_the_rate_limit(gb: SimulatorHandle, tmp_path: Path) -> None:
    """After the probe closes the circuit, 30 queued fetches from 6 threads still keep to
    the 20/s limit (R58): recovery is no burst."""
    clock = Clock()
    breaker = _breaker(clock, failure_threshold=1)
    registration = gb.state_dir / "registration.json"
    profile = dataclasses.replace(UtilityProfile.simulator(registration), rate_limit_per_s=20.0)
    client = Client(
        profile,
        credentials_from_registration(registration),
        circuit_breaker=breaker,
        rate_limit_dir=tmp_path / "rate",
        sleep=lambda s: None,
    )
    pending = client.authorization_url()
    with gb.portal_client() as browser:
        r = browser.get(pending.url)
    key, _ = client.exchange_code(r.headers["location"], pending)
    with client:
        _burst(gb, 500, 1)
        with pytest.raises(ServerError):
            client.usage_points(key)
        clock.now += 60.0
        gb.sim.state.arrivals.clear()
        results: list[object] = []

        def fetch() -> None:
            for _ in range(5):
                try:
                    results.append(client.usage_points(key))
                except Exception as exc:  # reported below
                    results.append(exc)

        assert isinstance(client.usage_points(key), Document)  # the probe
        threads = [threading.Thread(target=fetch) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert len(results) == 30 and all(isinstance(x, Document) for x in results), results
    times = sorted(t for t, _, _ in gb.sim.state.arrivals)
    assert len(times) == 31
    assert max(sum(1 for u in times if t <= u < t + 1.0) for t in times) <= 20


@pytest.mark.anyio
async def test_async_client_fails_fast_too(gb: SimulatorHandle) -> None:
    """The async driver feeds the same breaker: 2 failed operations (threshold 2), then
    CircuitOpenError with no request; after the cool-down the probe closes it."""
    clock = Clock()
    breaker = _breaker(clock, failure_threshold=2)
    sync, key = _client(gb)
    with sync:
        token = sync.token_store.load(key)
    assert token is not None
    async with AsyncClient.for_simulator(
        gb.state_dir / "registration.json", circuit_breaker=breaker
    ) as client:
        _burst(gb, 500, 2)
        before = _arrived(gb)
        for _ in range(2):
            with pytest.raises(ServerError):
                await client.usage_points(token)
        with pytest.raises(CircuitOpenError):
            await client.usage_points(token)
        assert _arrived(gb) - before == 2
        clock.now += 60.0
        with anyio.fail_after(10):
            assert isinstance(await client.usage_points(token), Document)
        assert breaker.state == "closed"


def test_a_deadline_spent_queueing_for_the_rate_limit_is_not_a_failure(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    """Three calls at once at 2/s with a 0.3 s deadline: the later ones wait ~0.55 s for
    their slot and time out before sending. That is our queue, not the custodian failing,
    so even a breaker with a threshold of 1 stays closed."""
    clock = Clock()
    breaker = _breaker(clock, failure_threshold=1)
    registration = gb.state_dir / "registration.json"
    profile = dataclasses.replace(UtilityProfile.simulator(registration), rate_limit_per_s=2.0)
    creds = credentials_from_registration(registration)
    tokens = InMemoryTokenStore()
    with Client(profile, creds, token_store=tokens, rate_limit_dir=tmp_path / "rate") as setup:
        setup.client_token()  # fetched without the short deadline, kept in ``tokens``
    client = Client(
        profile,
        creds,
        token_store=tokens,
        circuit_breaker=breaker,
        rate_limit_dir=tmp_path / "rate",
        deadline=0.3,
    )
    with client:
        time.sleep(0.6)  # an idle limiter again: the first call goes at once
        outcomes: list[object] = []

        def call() -> None:
            try:
                outcomes.append(client.service_status())
            except Exception as exc:  # reported below
                outcomes.append(exc)

        threads = [threading.Thread(target=call) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    timeouts = [o for o in outcomes if isinstance(o, RequestTimeout)]
    assert len(outcomes) == 3 and len(timeouts) >= 1, outcomes
    assert all("deadline" in str(o) for o in timeouts)
    assert breaker.state == "closed" and breaker.failures == 0
