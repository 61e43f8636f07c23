"""The ESPI client against the real simulator's faults, over mutual TLS on real sockets
(SECURITY b5, b6, b8): certificate problems, 429/503 with ``Retry-After``, 5xx sequences with
exact attempt counts, malformed XML, revoked authorizations.

Attempts are counted at the simulator: ``faults.status_burst`` answers the next N API
requests with ``faults.burst_status`` and counts down, so ``N - status_burst`` afterwards is
the number of requests the client made. Delays are recorded through the client's ``sleep``
(the sync driver's only way to wait), except where a test times a real wait.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from greenbutton import AsyncClient, Client
from greenbutton._errors import (
    AuthorizationError,
    ConfigurationError,
    ConnectError,
    ParseError,
    ServerError,
)
from greenbutton.client._config import credentials_from_registration
from greenbutton.client._transport import TLS_HINT
from greenbutton.models import Document
from greenbutton.models._profile import UtilityProfile
from greenbutton.simulator._pki import PKIFiles, issue_certificate, load_pair, write_cert, write_key
from tests.simulator_harness import SimulatorHandle, start_simulator


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(tmp_path / "sim", auto_approve="alice", customers=2) as handle:
        yield handle


def _registration(gb: SimulatorHandle) -> Path:
    return gb.state_dir / "registration.json"


def _authorize(gb: SimulatorHandle, client: Client) -> str:
    pending = client.authorization_url()
    with gb.portal_client() as browser:
        r = browser.get(pending.url)
    assert r.status_code == 302
    key, _ = client.exchange_code(r.headers["location"], pending)
    return key


class Ready:
    """An authorized client whose tokens are fresh, so every fault hits the data call only."""

    def __init__(self, gb: SimulatorHandle, **options: Any) -> None:
        self.gb = gb
        self.sleeps: list[float] = []
        options.setdefault("sleep", self.sleeps.append)
        self.client = Client.for_simulator(_registration(gb), **options)
        self.key = _authorize(gb, self.client)
        assert isinstance(self.client.usage_points(self.key), Document)
        self.client.client_token()  # the client-credentials token too (Bulk, status)

    def burst(self, status: int, n: int, retry_after: int = 0) -> None:
        faults = self.gb.sim.faults
        faults.burst_status = status
        faults.retry_after = retry_after
        faults.status_burst = n

    def attempts(self, n: int) -> int:
        """Requests answered by the burst of ``n`` so far."""
        return n - self.gb.sim.faults.status_burst


@pytest.fixture
def ready(gb: SimulatorHandle) -> Iterator[Ready]:
    r = Ready(gb)
    try:
        yield r
    finally:
        r.client.close()


# -- certificates (b6) -----------------------------------------------------------------------


def test_missing_client_certificate_is_a_connect_error_with_the_hint(gb: SimulatorHandle) -> None:
    """The API listener demands a client certificate; a TLS context without one is refused.

    (Under TLS 1.3 the refusal arrives after the handshake, as an alert or a dropped
    connection; both map to ConnectError naming the certificate.)"""
    path = _registration(gb)
    no_cert = ssl.create_default_context(cafile=gb.registration["ca_cert"])
    transport = httpx2.HTTPTransport(verify=no_cert)
    sleeps: list[float] = []
    with (
        Client(
            UtilityProfile.simulator(path),
            credentials_from_registration(path),
            transport=transport,
            sleep=sleeps.append,
        ) as client,
        pytest.raises(ConnectError) as info,
    ):
        client.service_status()
    assert TLS_HINT in str(info.value)
    assert "client_secret" not in str(info.value)


def test_expired_client_certificate_fails_at_start_up(gb: SimulatorHandle, tmp_path: Path) -> None:
    """A certificate the simulator's CA issued but whose not_after has passed: refused when
    the client is made (R30), before any connection, with the date and what to do."""
    files = PKIFiles.in_dir(gb.state_dir)
    ca = load_pair(files.ca_cert, files.ca_key)
    assert ca is not None
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    expired = issue_certificate(
        ca, "greenbutton third party", client=True, not_before=start, days=10
    )
    assert expired.cert.not_valid_after_utc < dt.datetime.now(dt.UTC)
    cert, key = tmp_path / "expired-cert.pem", tmp_path / "expired-key.pem"
    write_cert(cert, expired)
    write_key(key, expired)
    path = _registration(gb)
    creds = dataclasses.replace(
        credentials_from_registration(path), client_cert=cert, client_key=key
    )
    with pytest.raises(ConfigurationError, match="expired on .*renew it"):
        Client(UtilityProfile.simulator(path), creds)
    with pytest.raises(ConfigurationError, match="expired"):
        AsyncClient(UtilityProfile.simulator(path), creds)


# -- 429 / 503 / 5xx sequences (b5, b8) ------------------------------------------------------


def test_429_retry_after_seconds_is_honoured(ready: Ready) -> None:
    """``[429 Retry-After: 1] x 2, 200``: three requests, two waits of exactly the header."""
    ready.burst(429, 2, retry_after=1)
    assert isinstance(ready.client.usage_points(ready.key), Document)
    assert ready.attempts(2) == 2 and ready.sleeps == [1.0, 1.0]


def test_429_retry_after_really_waits(gb: SimulatorHandle) -> None:
    """``[429 Retry-After: 2, 200]`` with the real clock: the retry comes >= 2 s later."""
    r = Ready(gb, sleep=time.sleep)
    with r.client:
        r.burst(429, 1, retry_after=2)
        t0 = time.monotonic()
        assert isinstance(r.client.usage_points(r.key), Document)
        assert time.monotonic() - t0 >= 2.0
        assert r.attempts(1) == 1


def test_429_until_max_attempts(ready: Ready) -> None:
    """``[429] x inf``: exactly ``max_attempts`` (4) requests, then ServerError with the
    server's Retry-After for the caller to defer the job."""
    ready.burst(429, 10, retry_after=1)
    with pytest.raises(ServerError) as info:
        ready.client.usage_points(ready.key)
    assert ready.attempts(10) == 4 and ready.sleeps == [1.0, 1.0, 1.0]
    assert info.value.status_code == 429 and info.value.retry_after == 1


def test_503_burst_then_success(ready: Ready) -> None:
    """``[503, 503, 503, 200]``: the fourth (last allowed) attempt succeeds."""
    ready.burst(503, 3)
    end = dt.datetime.now(dt.UTC)
    doc = ready.client.subscription(ready.key, start=end - dt.timedelta(days=2), end=end)
    assert isinstance(doc, Document) and doc.reading_count > 0
    assert ready.attempts(3) == 3 and ready.sleeps == [0.0, 0.0, 0.0]


def test_503_burst_longer_than_the_attempts(ready: Ready) -> None:
    """``[503] x 5``: four requests, then ServerError; the fifth 503 is still pending."""
    ready.burst(503, 5)
    with pytest.raises(ServerError) as info:
        ready.client.usage_points(ready.key)
    assert info.value.status_code == 503
    assert ready.attempts(5) == 4 and len(ready.sleeps) == 3
    ready.gb.sim.faults.status_burst = 0
    assert isinstance(ready.client.usage_points(ready.key), Document)


def test_502_forever_stops_at_max_attempts(ready: Ready) -> None:
    """``[502] x inf``: 502 is retried (R57), so exactly four requests, backoff between."""
    ready.burst(502, 100)
    with pytest.raises(ServerError) as info:
        ready.client.usage_points(ready.key)
    assert info.value.status_code == 502
    assert ready.attempts(100) == 4 and len(ready.sleeps) == 3
    assert all(0.0 <= s <= 30.0 for s in ready.sleeps)  # full jitter under the cap


def test_500_forever_is_one_attempt(ready: Ready) -> None:
    """``[500] x inf`` (b8): exactly one request, no wait, ServerError.

    The choice: R57 lists what a GET is retried on (connect errors, read timeouts, 429, 502,
    503, 504), and 500 is not among them. 502-504 and 429 say "a gateway or the server is
    briefly unable"; a 500 says the server failed on *this* request, which usually fails the
    same way again, so repeating it only adds load on a custodian that is already failing
    (urllib3's default ``status_forcelist`` is empty for the same reason). b8's "stops at max
    attempts" therefore holds with max attempts = 1 for 500; marking the job failed and
    alerting is the job runner's part, from the ServerError raised here."""
    ready.burst(500, 100)
    with pytest.raises(ServerError) as info:
        ready.client.usage_points(ready.key)
    assert info.value.status_code == 500
    assert ready.attempts(100) == 1 and ready.sleeps == []


# -- bodies and grants (b5) ------------------------------------------------------------------


def test_malformed_xml_is_a_parse_error(ready: Ready) -> None:
    """A truncated XML body with status 200 (the streamed download path) is a ParseError,
    not a transport error, and it is not retried."""
    faults = ready.gb.sim.faults
    faults.malformed_xml = True
    end = dt.datetime.now(dt.UTC)
    with pytest.raises(ParseError):
        ready.client.usage_points(ready.key)
    with pytest.raises(ParseError):
        ready.client.subscription(ready.key, start=end - dt.timedelta(days=1), end=end)
    assert ready.sleeps == []
    faults.malformed_xml = False
    assert isinstance(ready.client.usage_points(ready.key), Document)


def test_revoked_authorization_is_an_authorization_error(ready: Ready) -> None:
    """Revoked at the custodian: the data call gets 401, the refresh gets invalid_grant,
    and the caller learns the customer must authorize again (R24)."""
    auth_id = ready.gb.authorization_id(ready.client.token_store, ready.key)
    assert ready.gb.sim.state.revoke_authorization(auth_id)
    with pytest.raises(AuthorizationError, match="authorize again") as info:
        ready.client.usage_points(ready.key)
    assert info.value.status_code == 401
    assert ready.sleeps == []


def test_revoke_all_fault(ready: Ready) -> None:
    ready.gb.sim.faults.revoke_all = True
    with pytest.raises(AuthorizationError, match="authorize again"):
        ready.client.usage_points(ready.key)
    ready.gb.sim.faults.revoke_all = False


@pytest.mark.anyio
async def test_async_client_sees_the_same_faults(gb: SimulatorHandle) -> None:
    """The async driver: 503 burst retried, 500 not, malformed XML a ParseError."""
    with Client.for_simulator(_registration(gb)) as sync:
        key = _authorize(gb, sync)
        token = sync.token_store.load(key)
    assert token is not None
    faults = gb.sim.faults
    async with AsyncClient.for_simulator(_registration(gb)) as client:
        assert isinstance(await client.usage_points(token), Document)
        faults.retry_after = 0
        faults.burst_status = 503
        faults.status_burst = 2
        assert isinstance(await client.usage_points(token), Document)
        assert faults.status_burst == 0
        faults.burst_status = 500
        faults.status_burst = 10
        with pytest.raises(ServerError):
            await client.usage_points(token)
        assert faults.status_burst == 9
        faults.status_burst = 0
        faults.malformed_xml = True
        with pytest.raises(ParseError):
            await client.usage_points(token)
        faults.malformed_xml = False
        with anyio.fail_after(10):
            assert isinstance(await client.usage_points(token), Document)
