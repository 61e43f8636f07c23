"""Simulator ``--rate-limit R`` and ``/_simulator/stats`` (DESIGN 3.7).

The custodian's own limit: above R API requests in any second it answers 429 with
``Retry-After``; ``registration.json`` says ``rate_limit_per_second`` so the ``simulator``
profile keeps under it. ``GET /_simulator/stats`` (client certificate required) counts what
arrived: a client honouring the profile sees 0 x 429 and never more than R in a second.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from greenbutton import UtilityProfile
from greenbutton.oauth import InMemoryTokenStore
from tests.simulator_harness import SimulatorHandle, start_simulator

RATE = 4.0


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(tmp_path / "sim", auto_approve="alice", customers=1, rate_limit=RATE) as h:
        yield h


def _stats(gb: SimulatorHandle) -> dict[str, int]:
    with gb.api_client() as api:
        r = api.get("/_simulator/stats")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    stats: dict[str, int] = r.json()
    return stats


def test_registration_says_the_limit_and_the_profile_keeps_it(gb: SimulatorHandle) -> None:
    reg = json.loads((gb.state_dir / "registration.json").read_text())
    assert reg["rate_limit_per_second"] == RATE
    assert UtilityProfile.simulator(gb.state_dir).rate_limit_per_s == RATE
    tokens = InMemoryTokenStore()
    key, _ = gb.authorize(tokens)
    before = _stats(gb)
    with gb.sdk_client(tokens) as client:
        for _ in range(12):  # three seconds' worth at the limit
            client.usage_points(key)
    after = _stats(gb)
    assert after["requests"] - before["requests"] >= 12
    assert after["responses_429"] == 0
    assert after["max_requests_per_second"] <= RATE


def test_above_the_limit_the_custodian_answers_429(gb: SimulatorHandle) -> None:
    """A client ignoring the limit (no client-side limiter) gets 429 + Retry-After, and the
    stats count them; the stats route itself is not counted."""
    with gb.api_client() as api:
        answers = [api.get("/_simulator/faults").status_code for _ in range(3)]
        codes = [api.get(str(gb.registration["resource_url"]) + "/ReadServiceStatus")
                 for _ in range(int(RATE) * 3)]  # fmt: skip
        stats = api.get("/_simulator/stats").json()
    assert answers == [200, 200, 200]  # the admin routes are not limited
    limited = [r for r in codes if r.status_code == 429]
    assert limited and all(r.headers.get("retry-after") for r in limited)
    assert stats["responses_429"] == len(limited)
    assert stats["max_requests_per_second"] >= RATE


def test_stats_need_the_client_certificate(gb: SimulatorHandle) -> None:
    with gb.client(client_cert=False, base_url=gb.api_url) as anonymous:
        with pytest.raises(httpx2.TransportError):
            anonymous.get("/_simulator/stats")
