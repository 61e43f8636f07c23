"""Transport: the mutual-TLS context (R28-R30, b6), the client factory (R25, https only),
retry policy tables (R57, b4, b8), deadlines (R55, R56), the rate limiter (R58), error
mapping, and log redaction over a whole run against the simulator (R49)."""

# ruff: noqa: S106  (fixed test passwords and token-type literals)

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import hashlib
import logging
import os
import random
import secrets
import ssl
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, quote_plus, urlsplit

import httpx2
import pytest
from cryptography.hazmat.primitives import serialization

from greenbutton._errors import (
    ConfigurationError,
    ConnectError,
    GreenButtonWarning,
    RequestTimeout,
    TransportError,
)
from greenbutton._secret import Secret
from greenbutton.client._config import credentials_from_registration
from greenbutton.client._redact import (
    _PATTERNS,
    MASK,
    RedactingFilter,
    install_redaction,
    redact,
)
from greenbutton.client._transport import (
    DEFAULT_TIMEOUT,
    TLS_HINT,
    USER_AGENT,
    Deadline,
    RateLimiter,
    build_ssl_context,
    check_url,
    make_async_client,
    make_client,
    map_transport_error,
    parse_retry_after,
    retry_delay,
    safe_url,
)
from greenbutton.models._profile import Credentials, UtilityProfile
from greenbutton.simulator._pki import CertKey, issue_certificate, new_ca, write_cert, write_key
from tests.conftest import LogLines
from tests.simulator_harness import SimulatorHandle, start_simulator

NOW = dt.datetime.now(dt.UTC)

# -- certificates --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> CertKey:
    return new_ca("test CA")


def write_pair(
    tmp_path: Path,
    pair: CertKey,
    *,
    name: str = "client",
    password: str | None = None,
    key_mode: int = 0o600,
) -> tuple[Path, Path]:
    cert, key = tmp_path / f"{name}-cert.pem", tmp_path / f"{name}-key.pem"
    write_cert(cert, pair)
    if password is None:
        write_key(key, pair)
    else:
        key.write_bytes(
            pair.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(password.encode()),
            )
        )
    os.chmod(key, key_mode)
    return cert, key


def creds_for(cert: Path, key: Path, **kwargs: object) -> Credentials:
    return Credentials(
        client_id="tp",
        client_secret=Secret("not-used"),
        client_cert=cert,
        client_key=key,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def good(tmp_path: Path, ca: CertKey) -> Credentials:
    cert, key = write_pair(tmp_path, issue_certificate(ca, "tp", client=True, days=365))
    return creds_for(cert, key)


def test_context_is_strict(good: Credentials) -> None:
    ctx = build_ssl_context(good)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.check_hostname is True
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    tls13 = build_ssl_context(good, minimum_version=ssl.TLSVersion.TLSv1_3)
    assert tls13.minimum_version == ssl.TLSVersion.TLSv1_3
    with pytest.raises(ConfigurationError, match="below 1.2"):
        build_ssl_context(good, minimum_version=ssl.TLSVersion.TLSv1_1)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_readable_by_others_is_refused(good: Credentials, mode: int) -> None:
    os.chmod(good.client_key, mode)
    with pytest.raises(ConfigurationError) as info:
        build_ssl_context(good)
    assert f"chmod 600 {good.client_key}" in str(info.value)
    assert f"{mode:04o}" in str(info.value)


def test_mismatched_key(tmp_path: Path, ca: CertKey, good: Credentials) -> None:
    _, other_key = write_pair(tmp_path, issue_certificate(ca, "other", client=True), name="o")
    with pytest.raises(ConfigurationError, match="does not match certificate"):
        build_ssl_context(replace(good, client_key=other_key))


def test_expired_and_not_yet_valid(tmp_path: Path, ca: CertKey) -> None:
    old = issue_certificate(ca, "old", client=True, days=10, not_before=NOW - dt.timedelta(days=20))
    cert, key = write_pair(tmp_path, old, name="old")
    with pytest.raises(ConfigurationError, match=r"expired on \d{4}-\d\d-\d\d .*renew"):
        build_ssl_context(creds_for(cert, key))

    future = issue_certificate(ca, "new", client=True, not_before=NOW + dt.timedelta(days=2))
    cert, key = write_pair(tmp_path, future, name="new")
    with pytest.raises(ConfigurationError, match="not yet valid"):
        build_ssl_context(creds_for(cert, key))
    # The same certificate, seen from a clock three days on, is fine.
    build_ssl_context(creds_for(cert, key), now=(NOW + dt.timedelta(days=3)).timestamp())


def test_warning_before_expiry(tmp_path: Path, ca: CertKey) -> None:
    soon = issue_certificate(ca, "soon", client=True, days=10)
    cert, key = write_pair(tmp_path, soon, name="soon")
    with pytest.warns(GreenButtonWarning, match=r"expires on .* \(in [89] days\)"):
        build_ssl_context(creds_for(cert, key))
    build_ssl_context(creds_for(cert, key), warn_days=5)  # no warning: filterwarnings=error


def test_key_passwords(tmp_path: Path, ca: CertKey) -> None:
    pair = issue_certificate(ca, "locked", client=True, rsa_bits=2048)
    cert, key = write_pair(tmp_path, pair, name="locked", password="right horse")
    build_ssl_context(creds_for(cert, key, key_password=Secret("right horse")))
    with pytest.raises(ConfigurationError, match="wrong key password") as info:
        build_ssl_context(creds_for(cert, key, key_password=Secret("wrong horse")))
    assert "horse" not in str(info.value)
    with pytest.raises(ConfigurationError, match="is encrypted: set the key password"):
        build_ssl_context(creds_for(cert, key))
    plain_cert, plain_key = write_pair(tmp_path, pair, name="plain")
    with pytest.raises(ConfigurationError, match="not encrypted but a key password"):
        build_ssl_context(creds_for(plain_cert, plain_key, key_password=Secret("x")))


def test_missing_and_unreadable_files(tmp_path: Path, good: Credentials) -> None:
    with pytest.raises(ConfigurationError, match="client certificate not found: .*nope.pem"):
        build_ssl_context(replace(good, client_cert=tmp_path / "nope.pem"))
    with pytest.raises(ConfigurationError, match="client key not found"):
        build_ssl_context(replace(good, client_key=tmp_path / "nope.pem"))
    with pytest.raises(ConfigurationError, match="custodian CA bundle not found"):
        build_ssl_context(replace(good, ca_cert=tmp_path / "nope.pem"))
    with pytest.raises(ConfigurationError, match="is a directory"):
        build_ssl_context(replace(good, client_cert=tmp_path))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    with pytest.raises(ConfigurationError, match="not a PEM certificate"):
        build_ssl_context(replace(good, client_cert=garbage))
    with pytest.raises(ConfigurationError, match="holds no PEM certificate"):
        build_ssl_context(replace(good, ca_cert=garbage))
    if os.geteuid() != 0:  # root reads anything
        os.chmod(good.client_key, 0o000)
        with pytest.raises(ConfigurationError, match="cannot read client key"):
            build_ssl_context(good)


# -- the client factory --------------------------------------------------------------------

PROFILE = UtilityProfile(
    name="test",
    authorize_url="https://portal.test/authorize",
    token_url="https://api.test/token",
    resource_url="https://api.test/espi/1_1/resource",
)
CREDS = Credentials(
    client_id="tp",
    client_secret=Secret("s"),
    client_cert=Path("/nonexistent/cert.pem"),  # a transport= client never reads them
    client_key=Path("/nonexistent/key.pem"),
)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.pge.com/x",
        "https://127.0.0.1:8443/x",
        "http://127.0.0.1:3000/OAuthCallback",
        "http://127.8.9.10/x",
        "http://[::1]:8080/x",
    ],
)
def test_check_url_accepts(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://api.pge.com/x", "must use https://"),
        ("http://localhost:3000/x", "must use https://"),  # a name, not a parsed IP
        ("http://127.0.0.1.evil.test/x", "must use https://"),
        ("http://127.0.0.1@evil.test/x", "user name or password"),
        ("https://user:pw@api.test/x", "user name or password"),
        ("http://[::ffff:127.0.0.1]/x", "must use https://"),
        ("ftp://127.0.0.1/x", "must use https://"),
        ("https:///nohost", "no host"),
        ("/relative/only", "no host"),
    ],
)
def test_check_url_refuses(url: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words) as info:
        check_url(url, what="token_url")
    assert "pw" not in str(info.value)


def test_no_environment_escape_hatch(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "OAUTHLIB_INSECURE_TRANSPORT",
        "AUTHLIB_INSECURE_TRANSPORT",
        "GREENBUTTON_INSECURE",
    ):
        monkeypatch.setenv(var, "1")
    with pytest.raises(ConfigurationError):
        check_url("http://api.test/x")


def test_profile_urls_checked_at_construction() -> None:
    bad = replace(PROFILE, token_url="http://api.test/token")
    with pytest.raises(ConfigurationError, match="profile 'test' token_url must use https"):
        make_client(bad, CREDS, transport=httpx2.MockTransport(lambda r: httpx2.Response(200)))


def test_client_settings_and_no_redirects() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(302, headers={"Location": "https://evil.test/steal"})

    with make_client(PROFILE, CREDS, transport=httpx2.MockTransport(handler)) as client:
        assert client.follow_redirects is False
        assert client.trust_env is False
        assert client.timeout == DEFAULT_TIMEOUT
        assert client.timeout.read is not None and client.timeout.connect is not None
        r = client.get(PROFILE.resource_url + "/ReadServiceStatus", headers={"X": "1"})
        assert r.status_code == 302  # an answer for the caller to refuse, not followed (R25)
        with pytest.raises(ConfigurationError, match="must use https"):
            client.get("http://api.test/plain")
    assert [str(r.url.host) for r in seen] == ["api.test"]
    assert seen[0].headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("greenbutton/")


def test_async_client_same_rules() -> None:
    async def main() -> None:
        async def handler(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(307, headers={"Location": "https://evil.test/"})

        timeout = httpx2.Timeout(connect=1.0, read=2.0, write=3.0, pool=4.0)
        transport = httpx2.MockTransport(handler)
        async with make_async_client(PROFILE, CREDS, transport=transport, timeout=timeout) as c:
            assert c.timeout == timeout and c.follow_redirects is False
            assert (await c.get(PROFILE.token_url)).status_code == 307
            with pytest.raises(ConfigurationError):
                await c.get("http://evil.test/")

    asyncio.run(main())


# -- error mapping -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "cls", "words"),
    [
        (httpx2.ConnectTimeout("timed out"), RequestTimeout, "timed out connecting to"),
        (httpx2.ReadTimeout("timed out"), RequestTimeout, "waiting for an answer"),
        (httpx2.PoolTimeout("x"), RequestTimeout, "free connection"),
        (httpx2.ConnectError("[Errno 111] Connection refused"), ConnectError, "cannot connect"),
        (
            httpx2.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
            ConnectError,
            TLS_HINT,
        ),
        (httpx2.RemoteProtocolError("Server disconnected"), ConnectError, TLS_HINT),
        (httpx2.ReadError("[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED]"), ConnectError, TLS_HINT),
        (httpx2.DecodingError("bad gzip"), TransportError, "cannot decode"),
        (httpx2.UnsupportedProtocol("nope"), TransportError, "failed: UnsupportedProtocol"),
    ],
)
def test_map_transport_error(exc: Exception, cls: type[TransportError], words: str) -> None:
    url = "https://api.test/espi/1_1/resource/Batch/Subscription/5?access_token=SEKRIT&x=1"
    mapped = map_transport_error(exc, url)
    assert type(mapped) is cls
    assert words in str(mapped)
    assert mapped.__cause__ is exc
    assert mapped.url == "https://api.test/espi/1_1/resource/Batch/Subscription/5"
    assert "SEKRIT" not in str(mapped) and "?" not in str(mapped)


def test_safe_url_strips_secrets_and_newlines() -> None:
    assert safe_url("https://u:p@h.test:8443/a/b?code=1#frag") == "https://h.test:8443/a/b"
    assert safe_url("https://h.test/a%0D%0Ab") == "https://h.test/a%0D%0Ab"
    assert "\n" not in safe_url("https://h.test/a\nb")


# -- retry policy --------------------------------------------------------------------------


def delays(
    method: str, outcomes: list[int | Exception], *, token: bool = False, seed: int = 7
) -> list[float]:
    """Run the policy over a sequence of failed attempts; the delays until it gives up."""
    rng = random.Random(seed)
    out: list[float] = []
    for attempt, outcome in enumerate(outcomes, start=1):
        status = outcome if isinstance(outcome, int) else None
        error = outcome if isinstance(outcome, Exception) else None
        d = retry_delay(method, status, {}, attempt, error=error, is_token_request=token, rng=rng)
        if d is None:
            break
        out.append(d)
    return out


def test_full_jitter_backoff_exact_values() -> None:
    # b8 [503, 503, 200]: two retries, delays drawn from [0, 0.5) then [0, 1.0).
    expected_rng = random.Random(7)
    expected = [expected_rng.uniform(0, 0.5), expected_rng.uniform(0, 1.0)]
    assert delays("GET", [503, 503]) == expected
    # [500]x inf: 500 is not retried at this level (a server bug; the job layer decides).
    assert delays("GET", [500, 500]) == []
    # 503 forever: max_attempts=4 means three retries, then stop.
    got = delays("GET", [503] * 10)
    assert len(got) == 3
    assert all(0 <= d < cap for d, cap in zip(got, [0.5, 1.0, 2.0], strict=True))


def test_cap_bounds_backoff() -> None:
    rng = random.Random(1)
    for attempt in range(1, 30):
        d = retry_delay("GET", 503, None, attempt, rng=rng, max_attempts=100, cap=3.0)
        assert d is not None and 0 <= d <= 3.0


@pytest.mark.parametrize(
    ("method", "status", "token", "retried"),
    [
        ("GET", 429, False, True),
        ("GET", 502, False, True),
        ("GET", 503, False, True),
        ("GET", 504, False, True),
        ("GET", 500, False, False),
        ("GET", 400, False, False),
        ("GET", 401, False, False),
        ("GET", 404, False, False),
        ("POST", 429, True, True),  # "not processed": safe even for a refresh
        ("POST", 503, True, True),
        ("POST", 502, True, False),  # a gateway may have passed it on: not safe
        ("POST", 504, True, False),
        ("POST", 500, True, False),
        ("GET", 503, True, True),  # a token call is never idempotent, 503 still is safe
        ("GET", 504, True, False),
    ],
)
def test_status_table(method: str, status: int, token: bool, retried: bool) -> None:
    d = retry_delay(method, status, None, 1, is_token_request=token, rng=random.Random(0))
    assert (d is not None) is retried


@pytest.mark.parametrize(
    ("error", "get", "token_post"),
    [
        (httpx2.ConnectError("[Errno 111] Connection refused"), True, True),
        (httpx2.ConnectTimeout("connect timed out"), True, True),
        (httpx2.PoolTimeout("pool"), True, True),
        (httpx2.ReadTimeout("read timed out"), True, False),  # ambiguous for a POST (R57)
        (httpx2.RemoteProtocolError("Server disconnected"), True, False),
        (httpx2.WriteError("broken pipe"), True, False),
        (httpx2.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] verify failed"), False, False),
        (RequestTimeout("gave up after the overall deadline"), False, False),
        (ValueError("a bug"), False, False),
    ],
)
def test_error_table(error: Exception, get: bool, token_post: bool) -> None:
    def retried(method: str, token: bool, exc: BaseException) -> bool:
        d = retry_delay(
            method, None, None, 1, error=exc, is_token_request=token, rng=random.Random(0)
        )
        return d is not None

    assert retried("GET", False, error) is get
    assert retried("POST", True, error) is token_post
    # The same decisions when the caller has already mapped the error to ours.
    mapped = map_transport_error(error, "https://api.test/x")
    assert retried("GET", False, mapped) is get
    assert retried("POST", True, mapped) is token_post


def test_nothing_to_go_on_is_not_retried() -> None:
    assert retry_delay("GET", None, None, 1, rng=random.Random(0)) is None


def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


NOW_TS = 1_750_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),  # b4, b8: [429 Retry-After:2, 200] waits exactly 2 s
        (" 0 ", 0.0),
        (http_date(NOW_TS + 5), 5.0),
        (http_date(NOW_TS - 60), 0.0),  # a date in the past: retry at once (b8)
        ("30", 30.0),  # equal to the cap: still honoured
    ],
)
def test_retry_after_honoured(value: str, expected: float) -> None:
    d = retry_delay("GET", 429, {"Retry-After": value}, 1, rng=random.Random(0), now=NOW_TS)
    assert d == expected


@pytest.mark.parametrize("value", ["abc", "-5", "1.5", "", "Wed, 99 Foo 2026"])
def test_retry_after_garbage_is_ignored(value: str) -> None:
    d = retry_delay("GET", 503, {"retry-after": value}, 1, rng=random.Random(3), now=NOW_TS)
    assert d == random.Random(3).uniform(0, 0.5)  # plain backoff instead


@pytest.mark.parametrize("value", ["86400", "31", http_date(NOW_TS + 3600)])
def test_retry_after_above_cap_defers(value: str) -> None:
    # b8 [429 Retry-After:86400]: no 24 h sleep; the caller defers the job.
    headers = httpx2.Headers({"Retry-After": value})
    assert retry_delay("GET", 429, headers, 1, rng=random.Random(0), now=NOW_TS) is None
    assert parse_retry_after(value, now=NOW_TS) is not None  # ... and knows for how long


def test_retry_after_ignored_where_status_is_not_retryable() -> None:
    d = retry_delay("GET", 500, {"Retry-After": "1"}, 1, rng=random.Random(0))
    assert d is None


# -- deadline and rate limiter -------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)

    def advance(self, seconds: float) -> None:
        self.t += seconds


def test_deadline() -> None:
    clock = FakeClock()
    deadline = Deadline(10.0, clock)
    assert deadline.remaining() == 10.0
    clock.advance(7.5)
    assert deadline.remaining() == 2.5 and not deadline.expired
    assert deadline.allows(1.0) and not deadline.allows(3.0)
    t = deadline.timeout(httpx2.Timeout(connect=5.0, read=60.0, write=1.0, pool=None))
    assert (t.connect, t.read, t.write, t.pool) == (2.5, 2.5, 1.0, 2.5)
    clock.advance(3.0)
    assert deadline.remaining() == 0.0 and deadline.expired
    with pytest.raises(RequestTimeout, match="overall deadline of 10 s for https://h.test/a"):
        deadline.check("https://h.test/a?code=secret")
    with pytest.raises(RequestTimeout):
        deadline.timeout()


def test_rate_limiter_spacing_with_fake_clock() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(3)] == [0.0, 1.0, 2.0]
    clock.advance(10.0)  # idle: the bucket refills to one token, not more
    assert [limiter.acquire() for _ in range(2)] == [0.0, 1.0]


def test_rate_limiter_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2.0, burst=3, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(5)] == [0.0, 0.0, 0.0, 0.5, 1.0]


def test_rate_limiter_threads_get_distinct_slots() -> None:
    clock = FakeClock()  # frozen: every slot is a distinct reservation in the future
    limiter = RateLimiter(4.0, clock=clock, sleep=clock.sleep)
    threads = [
        threading.Thread(target=lambda: [limiter.acquire() for _ in range(5)]) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(clock.sleeps) == [i / 4 for i in range(1, 40)]


def test_rate_limiter_async_tasks() -> None:
    clock = FakeClock()
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    limiter = RateLimiter(10.0, clock=clock, async_sleep=fake_sleep)

    async def main() -> list[float]:
        return await asyncio.gather(*(limiter.acquire_async() for _ in range(20)))

    got = asyncio.run(main())
    assert sorted(got) == pytest.approx([i / 10 for i in range(20)])
    assert sorted(waits) == pytest.approx([i / 10 for i in range(1, 20)])


def test_rate_limiter_real_clock_is_short() -> None:
    limiter = RateLimiter(100.0)
    start = __import__("time").monotonic()
    for _ in range(6):
        limiter.acquire()
    assert __import__("time").monotonic() - start >= 0.05 - 1e-3


@pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan")])
def test_rate_limiter_refuses_nonsense(rate: float) -> None:
    with pytest.raises(ConfigurationError):
        RateLimiter(rate)


# -- against the simulator: real sockets, real mutual TLS ----------------------------------


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    with start_simulator(tmp_path_factory.mktemp("sim"), customers=1) as handle:
        yield handle


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def test_right_certificate_works(sim: SimulatorHandle) -> None:
    reg = sim.registration
    profile = UtilityProfile.simulator(reg)
    creds = credentials_from_registration(reg)
    with make_client(profile, creds) as client:
        r = client.post(
            profile.token_url,
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic(creds.client_id, creds.client_secret.reveal())},
        )
    assert r.status_code == 200, r.text
    assert "client_access_token" in r.json()


def _fails_with_tls_hint(client: httpx2.Client, url: str) -> ConnectError:
    with pytest.raises(httpx2.TransportError) as info:
        client.post(url, data={"grant_type": "client_credentials"})
    mapped = map_transport_error(info.value, url)
    assert isinstance(mapped, ConnectError)
    assert TLS_HINT in str(mapped)
    return mapped


def test_no_client_certificate(sim: SimulatorHandle) -> None:
    with sim.client(client_cert=False) as client:  # trusts the CA, presents no certificate
        _fails_with_tls_hint(client, sim.registration["token_url"])


def test_certificate_from_another_ca(sim: SimulatorHandle, tmp_path: Path) -> None:
    reg = sim.registration
    stranger = issue_certificate(new_ca("stranger CA"), "tp", client=True)
    cert, key = write_pair(tmp_path, stranger, name="stranger")
    creds = replace(credentials_from_registration(reg), client_cert=cert, client_key=key)
    with make_client(UtilityProfile.simulator(reg), creds) as client:
        _fails_with_tls_hint(client, reg["token_url"])


def test_server_from_an_unknown_ca(sim: SimulatorHandle) -> None:
    reg = sim.registration
    creds = replace(credentials_from_registration(reg), ca_cert=None)  # system store only
    with make_client(UtilityProfile.simulator(reg), creds) as client:
        mapped = _fails_with_tls_hint(client, reg["token_url"] + "?code=NOPE")
    assert "TLS handshake" in str(mapped) and "NOPE" not in str(mapped)
    d = retry_delay("POST", None, None, 1, error=mapped, is_token_request=True, rng=random.Random())
    assert d is None  # TLS failures are final (R28)


# -- redaction -----------------------------------------------------------------------------


def test_redact_shapes() -> None:
    cases = {
        "Authorization: Bearer abc.def": "Authorization: Bearer " + MASK,
        "authorization: Basic dXNlcjpw": "authorization: Basic " + MASK,
        "{'authorization': 'Bearer t0k'}": "{'authorization': 'Bearer " + MASK + "'}",
        "(b'Authorization', b'Bearer t0k')": "(b'Authorization', b'Bearer " + MASK + "')",
        "grant_type=refresh_token&refresh_token=RT1&scope=x": (
            "grant_type=refresh_token&refresh_token=" + MASK + "&scope=x"
        ),
        '{"access_token": "AT", "expires_in": 3600}': '{"access_token": "'
        + MASK
        + '", "expires_in": 3600}',
        '{"client_access_token":"C\\"AT"}': '{"client_access_token":"' + MASK + '"}',
        "?response_type=code&state=S1&code_challenge=c": (
            "?response_type=code&state=" + MASK + "&code_challenge=c"
        ),
        "Token(code='abc', password = \"p w\")": (
            "Token(code='" + MASK + "', password = \"" + MASK + '")'
        ),
        "starting authorization, please wait": "starting authorization, please wait",
        "postal_code=94110 error_code=5": "postal_code=94110 error_code=5",
        # A dict or list under a secret key is masked whole, brackets in its strings too.
        "{'state': {'nonce': 'n]}', 'next': '/x'}, 'a': 1}": "{'state': " + MASK + ", 'a': 1}",
        '{"password": ["p1", ["p2"]]}': '{"password": ' + MASK + "}",
    }
    for text, expected in cases.items():
        assert redact(text) == expected, text


#: Inputs of every shape :data:`_PATTERNS` knows, already-masked ones among them: redacting
#: a second time (a record that went through two filters, a formatter that redacts a message
#: the filter did) must not mask the mask ("Bearer [REDACTED]]").
REDACT_EXAMPLES = (
    "HTTP Request: GET https://dc.example/oauth/authorize?code=C0DE&state=S",
    '127.0.0.1:5 - "GET /cb?code=C0DE&state=S HTTP/1.1" 200',
    "Authorization: Bearer abc.def",
    "Authorization: Bearer " + MASK,
    "Authorization: " + MASK,
    "Proxy-Authorization=abc]def",
    "{'authorization': 'Basic dXNlcjpw'}",
    "{'authorization': '" + MASK + "'}",
    "(b'Authorization', b'Bearer t0k')",
    "(b'Authorization', b'Bearer " + MASK + "')",
    "Authorization: b'" + MASK + "'",
    '{"access_token": "AT", "expires_in": 3600}',
    '{"client_access_token":"C\\"AT"}',
    "{b'state': b'S1'}",
    '{"code": 12345}',
    '{"code": ' + MASK + "}",
    "{'state': {'nonce': 'n]}', 'next': '/x'}}",
    "grant_type=refresh_token&refresh_token=RT1&scope=x",
    "?response_type=code&state=" + MASK + "&code_challenge=c",
    "Token(code='abc', password = \"p w\")",
    "Invalid refresh token, " + "A" * 24,
    "bearer token: " + MASK,
)


def test_every_redaction_pattern_has_an_example() -> None:
    for pattern, _ in _PATTERNS:
        assert any(pattern.search(text) for text in REDACT_EXAMPLES), pattern.pattern


@pytest.mark.parametrize("text", REDACT_EXAMPLES)
def test_redact_is_idempotent(text: str) -> None:
    once = redact(text)
    assert MASK in once or "?" not in once  # each example holds a secret or a query
    assert redact(once) == once


def test_filter_redacts_args_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("greenbutton.test_redaction")
    install_redaction()
    assert any(isinstance(f, RedactingFilter) for f in logger.filters)
    with caplog.at_level(logging.DEBUG, logger="greenbutton"):
        logger.debug("body %s", "code=XYZZY&client_secret=PLUGH")
        try:
            raise ValueError("refresh_token=FROBOZZ")
        except ValueError:
            logger.exception("failed with %r", {"access_token": "GRUE"})
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    for secret in ("XYZZY", "PLUGH", "FROBOZZ", "GRUE"):
        assert secret not in text
    assert "ValueError" in text  # the traceback is kept, redacted


def test_client_logs_are_redacted_without_setup(caplog: pytest.LogCaptureFixture) -> None:
    """make_client installs the filter: httpx2's INFO line (full URL) loses its secrets."""
    transport = httpx2.MockTransport(lambda r: httpx2.Response(200))
    with caplog.at_level(logging.DEBUG), make_client(PROFILE, CREDS, transport=transport) as c:
        c.get(PROFILE.authorize_url, params={"state": "STATE-VALUE", "code": "CODE-VALUE"})
    assert "HTTP Request" in caplog.text
    assert "STATE-VALUE" not in caplog.text and "CODE-VALUE" not in caplog.text


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def test_full_run_logs_no_secret(tmp_path: Path) -> None:
    """R49: a whole run at DEBUG (client credentials, code flow, refresh, resource GET, an
    error path) leaves no token, code, state, verifier, secret or Authorization value in any
    log record, the simulator's own and httpx2's included."""
    handler = LogLines()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    install_redaction([handler])
    secrets_seen: set[str] = set()
    try:
        with start_simulator(tmp_path / "sim", customers=1, auto_approve="alice") as gb:
            reg = gb.registration
            profile = UtilityProfile.simulator(reg)
            creds = credentials_from_registration(reg)
            auth = basic(creds.client_id, creds.client_secret.reveal())
            secrets_seen |= {creds.client_secret.reveal(), auth.split()[1]}
            logging.getLogger("greenbutton.test").debug("token call with Authorization: %s", auth)
            with make_client(profile, creds) as client:
                r = client.post(
                    profile.token_url,
                    data={"grant_type": "client_credentials"},
                    headers={"Authorization": auth},
                )
                assert r.status_code == 200, r.text
                secrets_seen.add(r.json()["client_access_token"])

                verifier, challenge = pkce()
                state = secrets.token_urlsafe(16)
                secrets_seen |= {verifier, state}
                r = client.get(
                    profile.authorize_url,
                    params={
                        "response_type": "code",
                        "client_id": creds.client_id,
                        "redirect_uri": reg["redirect_uri"],
                        "scope": reg["scope"],
                        "state": state,
                        "code_challenge": challenge,
                        "code_challenge_method": "S256",
                    },
                )
                assert r.status_code == 302, r.text
                query = parse_qs(urlsplit(r.headers["location"]).query)
                code = query["code"][0]
                secrets_seen.add(code)
                logging.getLogger("greenbutton.test").info("callback %s", r.headers["location"])
                r = client.post(
                    profile.token_url,
                    data={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": reg["redirect_uri"],
                        "code_verifier": verifier,
                    },
                    headers={"Authorization": auth},
                )
                assert r.status_code == 200, r.text
                tokens = r.json()
                secrets_seen |= {tokens["access_token"], tokens["refresh_token"]}
                logging.getLogger("greenbutton.test").debug("token response %s", r.text)
                r = client.post(
                    profile.token_url,
                    data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                    headers={"Authorization": auth},
                )
                assert r.status_code == 200, r.text
                refreshed = r.json()
                secrets_seen |= {refreshed["access_token"], refreshed["refresh_token"]}
                bearer = {"Authorization": f"Bearer {refreshed['access_token']}"}
                r = client.get(tokens["resourceURI"], headers=bearer)
                assert r.status_code in (200, 202), r.text[:200]  # 202: an async batch
                logging.getLogger("greenbutton.test").debug("sent headers %r", dict(bearer))
                # An error path: the old (rotated) refresh token, and a transport failure.
                r = client.post(
                    profile.token_url,
                    data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                    headers={"Authorization": auth},
                )
                assert r.status_code == 400
            with gb.client(client_cert=False) as bare:
                url = profile.token_url + "?access_token=" + refreshed["access_token"]
                try:
                    bare.post(url, headers=bearer)
                except httpx2.TransportError as exc:
                    logging.getLogger("greenbutton.test").exception(
                        "failed: %s", map_transport_error(exc, url)
                    )
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = "\n".join(handler.lines)
    assert "greenbutton.transport" in text and "httpx2" in text  # the run did log
    assert MASK in text
    leaked = sorted(s for s in secrets_seen if s and s in text)
    bad = [line[:150] for line in handler.lines if any(s in line for s in leaked)]
    assert not leaked, f"secrets in the logs: {len(leaked)}: {bad}"
