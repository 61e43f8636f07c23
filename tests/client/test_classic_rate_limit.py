"""The classic interface runs over the modern client (DESIGN 5): PG&E's 1 request/s and the
body cap hold for 2015-style calls too (SECURITY R58, R27).

Measured where it matters, at the simulator (``sim.state.arrivals``, monotonic): classic
token and data calls sent from threads, through objects sharing one profile and client id,
never put more than the profile's rate into any one-second window. Before classic went
through ``Client`` it built a bare transport per call and sent them all at once.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from greenbutton import CircuitBreaker
from greenbutton.classic import Api, ClientCredentials, OAuth2
from greenbutton.client._ratelimit import RATE_DIR_ENV
from greenbutton.models._profile import UtilityProfile
from tests.client.test_rate_limit import _windows
from tests.simulator_harness import start_simulator

RATE = 4.0
CALLS = 6  # per object: 12 requests, at least 11 limiter slots (1.1 / RATE s) apart


def test_classic_calls_keep_the_profile_rate_and_body_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RATE_DIR_ENV, str(tmp_path / "rate"))
    with start_simulator(tmp_path / "sim", auto_approve="alice", customers=1) as gb:
        reg = gb.registration
        profile = dataclasses.replace(UtilityProfile.simulator(reg), rate_limit_per_s=RATE)
        creds = {"client_key": reg["client_id"], "client_secret_key": reg["client_secret"]}
        certs = {"crt": reg["client_cert"], "key": reg["client_key"], "ca": reg["ca_cert"]}
        tokens = ClientCredentials(creds, certs, profile=profile)
        # Api names the client id, so its calls count against the same budget as the tokens'.
        api = Api(certs, profile=profile, client_id=reg["client_id"])
        batch = reg["resource_url"] + "/Batch"
        now = int(time.time())

        def call(i: int) -> dict[str, object]:
            if i % 2:
                return tokens.get_client_access_token(reg["token_url"])
            return api.async_request(batch, "1", now - 86400, now, "not-a-token")

        gb.sim.state.arrivals.clear()
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(call, range(2 * CALLS)))
        elapsed = time.monotonic() - started
        assert sorted(a["status"] for a in answers) == [200] * CALLS + [401] * CALLS
        arrivals = [t for t, _, _ in gb.sim.state.arrivals]
        assert len(arrivals) == 2 * CALLS
        assert _windows(arrivals) <= RATE
        assert elapsed >= (2 * CALLS - 1) / RATE * 0.9

        # The profile's body cap applies as well: a token answer over it is an error dict.
        capped = ClientCredentials(
            creds, certs, profile=dataclasses.replace(profile, max_body_bytes=16)
        )
        answer = capped.get_client_access_token(reg["token_url"])
        assert answer["status"] == 0 and "larger than 16 bytes" in answer["error"]
        for obj in (tokens, api, capped):
            obj.close()


def test_a_pge_url_gets_pges_limits_and_shares_them_with_modern_clients() -> None:
    """Without ``profile=``, a ``*.pge.com`` URL brings PG&E's quirks and the profile name
    ``pge``, so classic and modern calls of one client id share one machine-wide budget."""
    from greenbutton.classic import _profile

    pge = _profile("https://api.pge.com/datacustodian/oauth/v2/token")
    assert (pge.name, pge.rate_limit_per_s, pge.quota_per_hour) == ("pge", 1.0, 2000)
    other = _profile("https://example.com/token")
    assert other.rate_limit_per_s is None and not other.local
    assert _profile("http://127.0.0.1:8080/token").local
    assert OAuth2({}, {"crt": "c", "key": "k"}).client is None  # nothing built before a call


def test_classic_calls_share_the_clients_circuit_breaker(tmp_path: Path) -> None:
    """After the breaker's threshold of failed calls the next classic call is refused
    without a request (R59): an error dict naming the breaker, nothing at the simulator."""
    with start_simulator(tmp_path / "sim", auto_approve="alice", customers=1) as gb:
        reg = gb.registration
        creds = {"client_key": reg["client_id"], "client_secret_key": reg["client_secret"]}
        certs = {"crt": reg["client_cert"], "key": reg["client_key"], "ca": reg["ca_cert"]}
        breaker = CircuitBreaker(failure_threshold=2, min_span_s=0.0, cooldown_s=60.0)
        with ClientCredentials(
            creds, certs, circuit_breaker=breaker, max_attempts=1, rate_limit_shared=False
        ) as tokens:
            faults = gb.sim.faults
            faults.burst_status, faults.retry_after, faults.status_burst = 503, 0, 10
            failed = [tokens.get_client_access_token(reg["token_url"]) for _ in range(2)]
            assert [a["status"] for a in failed] == [503, 503]
            sent = len(gb.sim.state.arrivals)
            refused = tokens.get_client_access_token(reg["token_url"])
            assert refused["status"] == 0 and "circuit" in refused["error"].lower()
            assert len(gb.sim.state.arrivals) == sent
