"""The ESPI client: URL building, flows driven over ``httpx2.MockTransport`` (retries, 401
handling, single-flight refresh, caps), and the real simulator over mutual TLS (the code
flow, refresh, client credentials, every resource, faults of SECURITY b5/b8)."""

# ruff: noqa: S105, S106  (fixed test credentials)

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from hypothesis import given, strategies as st

import greenbutton
from greenbutton import AsyncClient, Client
from greenbutton._errors import (
    APIStatusError,
    AuthorizationError,
    ConnectError,
    NotFoundError,
    ParseError,
    ServerError,
    TransportError,
)
from greenbutton._secret import Secret
from greenbutton.espi import Paths, format_time, merge_documents, segment, split_windows
from greenbutton.models import Document
from greenbutton.models._profile import Credentials, UtilityProfile
from greenbutton.oauth import InMemoryTokenStore, Token
from greenbutton.simulator._oauth import token_calls
from tests.simulator_harness import SimulatorHandle, start_simulator

BASE = "https://api.example/GreenButtonConnect/espi/1_1/resource"
TOKEN_URL = "https://api.example/datacustodian/oauth/v2/token"
KEY = f"{BASE}/Authorization/7"
FEED = (
    b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><id>x</id>'
    b"<title>t</title><updated>2024-01-01T00:00:00Z</updated></feed>"
)
STATUS = (
    b'<ServiceStatus xmlns="http://naesb.org/espi"><currentStatus>1</currentStatus></ServiceStatus>'
)

PROFILE = UtilityProfile(
    name="test",
    authorize_url="https://portal.example/myAuthorization",
    token_url=TOKEN_URL,
    resource_url=BASE,
    published_format="epoch",
    window_days=10,
)
CREDS = Credentials(
    client_id="tp",
    client_secret=Secret("secret"),
    client_cert=Path("unused.crt"),
    client_key=Path("unused.key"),
    redirect_uri="https://tp.example/OAuthCallback",
)


# -- paths -------------------------------------------------------------------------------


def test_segment_keeps_pge_ids_and_encodes_what_would_change_the_path() -> None:
    assert segment("MTY5Om51bGw6ODY0MDA6MQ==") == "MTY5Om51bGw6ODY0MDA6MQ=="
    assert segment("1,436,684,400,000") == "1,436,684,400,000"
    assert segment("a/b?c#d%e f") == "a%2Fb%3Fc%23d%25e%20f"
    for bad in ("", ".", "..", "a\nb"):
        with pytest.raises(ValueError):
            segment(bad)


def test_paths_templates() -> None:
    p = Paths(BASE + "/")
    assert p.batch_usage_point("5", "1") == f"{BASE}/Batch/Subscription/5/UsagePoint/1"
    assert p.interval_blocks("5", "1", "Zm9v+/=", "1440") == (
        f"{BASE}/Subscription/5/UsagePoint/1/MeterReading/Zm9v+%2F=/IntervalBlock/1440"
    )
    assert p.reading_types() == f"{BASE}/ReadingType"
    assert p.same_origin(f"{BASE}/Batch/Bulk/1?correlationID=abc")
    assert not p.same_origin("https://evil.example/GreenButtonConnect/espi/1_1/resource/x")
    assert not p.same_origin(f"{BASE}/../../../admin")
    assert not p.same_origin("http://api.example/GreenButtonConnect/espi/1_1/resource/x")


def test_format_time() -> None:
    when = datetime(2024, 3, 10, 10, 0, tzinfo=UTC)
    assert format_time(when, "epoch") == "1710064800"
    assert format_time(when, "datetime") == "2024-03-10T10:00:00Z"
    with pytest.raises(ValueError):
        format_time(datetime(2024, 3, 10), "epoch")


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(min_value=0, max_value=400 * 86400),
    st.integers(min_value=1, max_value=40),
)
def test_windows_cover_the_range_exactly(start: datetime, length: int, days: int) -> None:
    end = start + timedelta(seconds=length)
    windows = list(split_windows(start, end, days))
    if length == 0:
        assert windows == []
        return
    assert windows[0][0] == start and windows[-1][1] == end
    for (_a, b), (c, _) in zip(windows, windows[1:], strict=False):
        assert b == c
    assert all(timedelta(0) < b - a <= timedelta(days=days) for a, b in windows)
    for a, b in windows:  # R26: min <= max, always in the strict format
        assert format_time(a, "datetime") <= format_time(b, "datetime")


# -- flows over MockTransport ------------------------------------------------------------------


class Server:
    """A scripted custodian: counts requests by kind, answers from a handler."""

    def __init__(self, handler: Callable[[httpx2.Request], httpx2.Response]):
        self.handler = handler
        self.requests: list[httpx2.Request] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        with self.lock:
            self.requests.append(request)
        return self.handler(request)

    def count(self, grant: str | None = None, path: str | None = None) -> int:
        n = 0
        for r in self.requests:
            body = r.content.decode()
            if grant is not None and f"grant_type={grant}" in body:
                n += 1
            elif path is not None and r.url.path.endswith(path):
                n += 1
        return n


def token_json(name: str = "access_token", value: str = "AT2", **extra: Any) -> httpx2.Response:
    return httpx2.Response(
        200,
        json={name: value, "token_type": "Bearer", "expires_in": 3600, **extra},
    )


def store_with(expires_in: float = 3600, access: str = "AT1") -> InMemoryTokenStore:
    import time

    store = InMemoryTokenStore()
    store.save(
        KEY,
        Token(
            kind="access",
            access_token=Secret(access),
            refresh_token=Secret("RT1"),
            expires_at=time.time() + expires_in,
            resource_uri=f"{BASE}/Batch/Subscription/5",
            authorization_uri=KEY,
        ),
    )
    return store


def sync_client(server: Server, store: InMemoryTokenStore | None = None, **kw: Any) -> Client:
    sleeps: list[float] = kw.pop("sleeps", [])
    return Client(
        PROFILE,
        CREDS,
        token_store=store or store_with(),
        transport=httpx2.MockTransport(server),
        sleep=sleeps.append,
        **kw,
    )


def resource_handler(request: httpx2.Request) -> httpx2.Response:
    if request.url.path.endswith("/token"):
        body = request.content.decode()
        if "client_credentials" in body:
            return token_json("client_access_token", "CAT")
        return token_json(refresh_token="RT2")
    if request.url.path.endswith("ReadServiceStatus"):
        return httpx2.Response(200, content=STATUS, headers={"content-type": "application/xml"})
    return httpx2.Response(200, content=FEED, headers={"content-type": "application/atom+xml"})


def test_503_503_200_succeeds_on_the_third_attempt() -> None:
    statuses = iter([503, 503, 200])

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(next(statuses), content=FEED)

    server = Server(handler)
    sleeps: list[float] = []
    with sync_client(server, sleeps=sleeps) as client:
        assert isinstance(client.usage_points(KEY), Document)
    assert len(server.requests) == 3 and len(sleeps) == 2


def test_502_forever_stops_at_max_attempts() -> None:
    server = Server(lambda r: httpx2.Response(502, text="boom"))
    with sync_client(server) as client, pytest.raises(ServerError) as info:
        client.usage_points(KEY)
    assert len(server.requests) == 4 and info.value.status_code == 502


def test_429_retry_after_is_honoured_and_a_day_is_deferred() -> None:
    answers = iter([httpx2.Response(429, headers={"Retry-After": "2"}), httpx2.Response(200)])
    server = Server(lambda r: next(answers))
    sleeps: list[float] = []
    with sync_client(server, sleeps=sleeps) as client:
        client.usage_points(KEY)
    assert sleeps == [2.0]
    server = Server(lambda r: httpx2.Response(429, headers={"Retry-After": "86400"}))
    sleeps = []
    with sync_client(server, sleeps=sleeps) as client, pytest.raises(ServerError) as info:
        client.usage_points(KEY)
    assert sleeps == [] and len(server.requests) == 1 and info.value.retry_after == 86400


def test_401_refresh_401_stops_with_one_refresh() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/token"):
            return token_json(refresh_token="RT2")
        return httpx2.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    server = Server(handler)
    store = store_with()
    with sync_client(server, store) as client, pytest.raises(AuthorizationError):
        client.usage_points(KEY)
    assert server.count(grant="refresh_token") == 1
    assert server.count(path="/UsagePoint") == 2
    saved = store.load(KEY)
    assert saved is not None and saved.refresh_token == Secret("RT2")  # rotation kept (R20)


def test_403_is_not_refreshed() -> None:
    server = Server(lambda r: httpx2.Response(403, text="insufficient_scope"))
    with sync_client(server) as client, pytest.raises(AuthorizationError):
        client.usage_points(KEY)
    assert len(server.requests) == 1


def test_bearer_only_in_the_header_and_right_class_per_resource() -> None:
    server = Server(resource_handler)
    with sync_client(server) as client:
        client.usage_points(KEY)
        client.service_status()
        client.authorizations()
        client.reading_types(KEY)
    by_path = {
        r.url.path.rsplit("/", 1)[-1]: r.headers.get("authorization") for r in server.requests
    }
    assert by_path["UsagePoint"] == "Bearer AT1"
    assert by_path["ReadServiceStatus"] == "Bearer CAT"
    assert by_path["Authorization"] == "Bearer CAT"
    assert by_path["ReadingType"] == "Bearer AT1"
    assert all("AT1" not in str(r.url) and "CAT" not in str(r.url) for r in server.requests)


def test_client_token_is_cached() -> None:
    server = Server(resource_handler)
    with sync_client(server) as client:
        for _ in range(100):
            client.service_status()
    assert server.count(grant="client_credentials") == 1


def test_redirects_are_not_followed() -> None:
    server = Server(
        lambda r: httpx2.Response(302, headers={"Location": "https://evil.example/?t=1"})
    )
    with sync_client(server) as client, pytest.raises(APIStatusError) as info:
        client.usage_points(KEY)
    assert len(server.requests) == 1 and "evil" not in str(info.value)


def test_html_200_is_not_data_and_404_is_typed() -> None:
    server = Server(lambda r: httpx2.Response(200, html="<html>login</html>"))
    with sync_client(server) as client, pytest.raises(ParseError):
        client.usage_points(KEY)
    server = Server(lambda r: httpx2.Response(404, text="nope"))
    with sync_client(server) as client, pytest.raises(NotFoundError):
        client.usage_points(KEY)


def test_body_cap() -> None:
    import dataclasses

    server = Server(lambda r: httpx2.Response(200, content=b"x" * 5000))
    profile = dataclasses.replace(PROFILE, max_body_bytes=1000)
    client = Client(
        profile, CREDS, token_store=store_with(), transport=httpx2.MockTransport(server)
    )
    with client, pytest.raises(TransportError, match="larger than 1000"):
        client.usage_points(KEY, raw=True)


def test_date_windows_in_epoch_and_merged() -> None:
    server = Server(resource_handler)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with sync_client(server) as client:
        client.usage_point(KEY, "1", start=start, end=start + timedelta(days=25))
    queries = [dict(r.url.params) for r in server.requests]
    assert queries == [
        {"published-min": "1704067200", "published-max": "1704931200"},
        {"published-min": "1704931200", "published-max": "1705795200"},
        {"published-min": "1705795200", "published-max": "1706227200"},
    ]


def test_notified_uri_keeps_correlation_and_refuses_foreign_hosts() -> None:
    server = Server(resource_handler)
    with sync_client(server) as client:
        client.get(f"{BASE}/Batch/Bulk/9?correlationID=abc-1")
        with pytest.raises(greenbutton.ConfigurationError):
            client.get("https://evil.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/9")
    assert str(server.requests[-1].url).endswith("/Batch/Bulk/9?correlationID=abc-1")
    assert server.requests[-1].headers["authorization"] == "Bearer CAT"


def test_sync_threads_share_one_refresh() -> None:
    server = Server(resource_handler)
    with sync_client(server, store_with(expires_in=-10)) as client:
        threads = [threading.Thread(target=client.usage_points, args=(KEY,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert server.count(grant="refresh_token") == 1
    assert server.count(path="/UsagePoint") == 8


@pytest.mark.anyio
async def test_fifty_coroutines_one_refresh() -> None:
    server = Server(resource_handler)
    client = AsyncClient(
        PROFILE,
        CREDS,
        token_store=store_with(expires_in=-10),
        transport=httpx2.MockTransport(server),
    )
    async with client, anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(client.usage_points, KEY)
    assert server.count(grant="refresh_token") == 1
    assert server.count(path="/UsagePoint") == 50


@pytest.mark.anyio
async def test_one_401_among_fifty_gives_one_refresh() -> None:
    first = threading.Event()

    def handler(request: httpx2.Request) -> httpx2.Response:
        if (
            not request.url.path.endswith("/token")
            and request.headers["authorization"] == "Bearer AT1"
            and not first.is_set()
        ):
            first.set()
            return httpx2.Response(401)
        return resource_handler(request)

    server = Server(handler)
    client = AsyncClient(
        PROFILE, CREDS, token_store=store_with(), transport=httpx2.MockTransport(server)
    )
    async with client, anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(client.usage_points, KEY)
    assert server.count(grant="refresh_token") == 1


def test_merge_documents_joins_windows() -> None:
    a = greenbutton.parse(_fixture_feed())
    b = greenbutton.parse(_fixture_feed())
    merged = merge_documents([a, b])
    assert len(merged.usage_points) == len(a.usage_points)
    assert merged.reading_count == a.reading_count  # the same blocks twice count once


def _fixture_feed() -> bytes:
    from tests.conftest import FIXTURES

    return sorted(FIXTURES.glob("pge_smd_bulk_day_*.xml"))[0].read_bytes()


# -- the real simulator over mutual TLS ---------------------------------------------------------


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(tmp_path / "sim", auto_approve="alice", customers=2) as handle:
        yield handle


def authorize(gb: SimulatorHandle, client: Client) -> str:
    pending = client.authorization_url()
    with gb.portal_client() as browser:
        r = browser.get(pending.url)
    assert r.status_code == 302
    key, token = client.exchange_code(r.headers["location"], pending)
    assert token.subscription_id and key == f"simulator/Subscription/{token.subscription_id}"
    return key


def sim_client(gb: SimulatorHandle, **kw: Any) -> Client:
    return Client.for_simulator(gb.state_dir / "registration.json", **kw)


def test_code_flow_refresh_and_every_resource(gb: SimulatorHandle) -> None:
    with sim_client(gb) as client:
        key = authorize(gb, client)
        points = client.usage_points(key)
        assert isinstance(points, Document) and len(points.usage_points) >= 1
        up = points.usage_points[0].id
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        doc = client.subscription(key, start=end - timedelta(days=45), end=end)
        assert isinstance(doc, Document) and doc.reading_count > 0
        one = client.usage_point(key, up, start=end - timedelta(days=3), end=end)
        assert isinstance(one, Document) and one.usage_points[0].id == up
        raw = client.usage_point(key, up, start=end - timedelta(days=3), end=end, raw=True)
        assert isinstance(raw, list) and raw[0].startswith(b"<?xml")
        mrs = client.meter_readings(key, up)
        assert isinstance(mrs, Document)
        mr = mrs.meter_readings[0].id
        blocks = client.interval_blocks(key, up, mr, start=end - timedelta(days=2), end=end)
        assert isinstance(blocks, Document)
        assert isinstance(client.usage_summaries(key, up), Document)
        types = client.reading_types(key)
        assert isinstance(types, Document) and types.reading_types
        assert isinstance(client.local_time_parameters(key), Document)
        customer = client.retail_customer(key)
        assert isinstance(customer, Document) and customer.customer_resources
        assert client.request_subscription_async(key).status_code == 202
        assert client.bulk().status_code == 202
        status = client.service_status()
        assert not isinstance(status, bytes) and status.available
        auths = client.authorizations()
        assert isinstance(auths, Document)
        customers = [a for a in auths.authorizations if "Subscription" in (a.resource_uri or "")]
        assert len(customers) == 1  # plus the third party's bulk and registration ones
        auth_id = gb.authorization_id(client.token_store, key)
        assert isinstance(client.authorization(auth_id), Document)
        reg = gb.sim.state.registration
        info = client.application_information(
            reg.application_information_id, reg.registration_access_token
        )
        assert isinstance(info, Document) and info.application_information
        old = client.token_store.load(key)
        new = client.refresh(key)
        assert old is not None and new.access_token != old.access_token
        assert isinstance(client.usage_points(key), Document)
        client.revoke(key)  # by its store key: the DELETE goes to its authorization id
        assert client.token_store.load(key) is None


def test_client_credentials_cached_against_the_simulator(gb: SimulatorHandle) -> None:
    with sim_client(gb) as client:
        before = len(token_calls(gb.sim))
        for _ in range(5):
            client.service_status()
        assert len(token_calls(gb.sim)) - before == 1


def test_notified_uri_fetched_verbatim(gb: SimulatorHandle) -> None:
    from tests.simulator_harness import notification_receiver

    with (
        notification_receiver() as inbox,
        start_simulator(
            gb.state_dir.parent / "sim2", auto_approve="alice", third_party_url=inbox.base_url
        ) as gb2,
        sim_client(gb2) as client,
    ):
        key = authorize(gb2, client)
        assert client.request_subscription_async(key).pending
        batch = greenbutton.parse(inbox.wait(timeout=10)).batch_list
        assert batch is not None and "correlationID=" in batch.resources[0]
        doc = client.get(batch.resources[0], key)
        assert isinstance(doc, Document) and doc.usage_points


def test_faults_bursts_latency_and_rate_limit(gb: SimulatorHandle) -> None:
    with sim_client(gb) as client:
        key = authorize(gb, client)
        client.usage_points(key)
        gb.sim.faults.status_burst = 2
        gb.sim.faults.retry_after = 0
        client.usage_points(key)  # 503, 503, 200
        assert gb.sim.faults.status_burst == 0
        gb.sim.faults.status_burst = 10
        gb.sim.faults.burst_status = 502
        with pytest.raises(ServerError):
            client.usage_points(key)
        assert gb.sim.faults.status_burst == 6  # exactly 4 attempts
        gb.sim.faults.burst_status = 500
        with pytest.raises(ServerError):
            client.usage_points(key)
        assert gb.sim.faults.status_burst == 5  # 500 is not retried (R57)
        gb.sim.faults.status_burst = 0
        gb.sim.faults.latency_ms = 50
        assert isinstance(client.usage_points(key), Document)
        gb.sim.faults.latency_ms = 0
        gb.sim.faults.rate_limit_per_s = 2
        gb.sim.faults.retry_after = 1
        for _ in range(4):  # 429 + Retry-After: 1 are waited out, never surfaced
            assert isinstance(client.usage_points(key), Document)


def test_malformed_xml_is_a_parse_error(gb: SimulatorHandle) -> None:
    with sim_client(gb) as client:
        key = authorize(gb, client)
        gb.sim.faults.malformed_xml = True
        with pytest.raises(ParseError):
            client.usage_points(key)


def test_expired_and_revoked_tokens(gb: SimulatorHandle) -> None:
    with sim_client(gb) as client:
        key = authorize(gb, client)
        gb.sim.faults.expire_tokens = True
        before = [c.grant_type for c in token_calls(gb.sim)].count("refresh_token")
        with pytest.raises(AuthorizationError):
            client.usage_points(key)
        after = [c.grant_type for c in token_calls(gb.sim)].count("refresh_token")
        assert after - before == 1  # R24: one refresh, one retry
        gb.sim.faults.expire_tokens = False
        assert isinstance(client.usage_points(key), Document)
        gb.sim.state.revoke_authorization(gb.authorization_id(client.token_store, key))
        with pytest.raises(AuthorizationError, match="authorize again"):
            client.usage_points(key)


def test_wrong_or_missing_client_certificate(gb: SimulatorHandle, tmp_path: Path) -> None:
    import dataclasses

    from greenbutton.client._config import credentials_from_registration

    creds = credentials_from_registration(gb.state_dir / "registration.json")
    profile = UtilityProfile.simulator(gb.state_dir / "registration.json")
    with start_simulator(tmp_path / "other") as other:
        foreign = credentials_from_registration(other.state_dir / "registration.json")
    wrong = dataclasses.replace(
        creds, client_cert=foreign.client_cert, client_key=foreign.client_key
    )
    with Client(profile, wrong, max_attempts=1) as client, pytest.raises(ConnectError):
        client.service_status()


@pytest.mark.anyio
async def test_async_client_against_the_simulator(gb: SimulatorHandle) -> None:
    reg_path = gb.state_dir / "registration.json"
    with sim_client(gb) as sync:
        key = authorize(gb, sync)
        token = sync.token_store.load(key)
    assert token is not None
    async with AsyncClient.for_simulator(reg_path) as client:
        points = await client.usage_points(token)
        assert isinstance(points, Document) and points.usage_points
        end = datetime.now(UTC)
        doc = await client.subscription(token, start=end - timedelta(days=5), end=end)
        assert isinstance(doc, Document) and doc.reading_count > 0
        status = await client.service_status()
        assert not isinstance(status, bytes) and status.available
        assert (await client.bulk()).status_code == 202
        gb.sim.faults.expire_tokens = True
        before = [c.grant_type for c in token_calls(gb.sim)].count("refresh_token")
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                with pytest.raises(AuthorizationError):
                    await client.usage_points(token)

            for _ in range(10):
                tg.start_soon(call)
        after = [c.grant_type for c in token_calls(gb.sim)].count("refresh_token")
        assert after - before == 1


@pytest.mark.anyio
async def test_fifty_coroutines_one_refresh_at_the_simulator(gb: SimulatorHandle) -> None:
    import dataclasses

    with sim_client(gb) as sync:
        key = authorize(gb, sync)
        token = sync.token_store.load(key)
    assert token is not None
    store = InMemoryTokenStore()
    store.save(key, dataclasses.replace(token, expires_at=0.0))
    before = [c.grant_type for c in token_calls(gb.sim)].count("refresh_token")
    async with (
        AsyncClient.for_simulator(gb.state_dir / "registration.json", token_store=store) as client,
        anyio.create_task_group() as tg,
    ):
        for _ in range(50):
            tg.start_soon(client.usage_points, key)
    after = [c.grant_type for c in token_calls(gb.sim)].count("refresh_token")
    assert after - before == 1


# -- streamed, capped downloads (R27) -----------------------------------------------------------

MiB = 1024 * 1024


def _chunks(total: int, sent: list[int] | None = None, size: int = MiB) -> Iterator[bytes]:
    """``total`` bytes in ``size`` chunks, counting what was taken in ``sent``."""
    block = b"x" * size
    done = 0
    while done < total:
        n = min(size, total - done)
        if sent is not None:
            sent.append(n)
        yield block[:n]
        done += n


def _big_feed(blocks: int, per_block: int = 96) -> Iterator[bytes]:
    """A valid ESPI feed of ``blocks`` IntervalBlocks (about 17.5 kB each), generated."""
    up = f"{BASE}/Subscription/5/UsagePoint/1"
    mr = f"{up}/MeterReading/1"
    rt = f"{BASE}/ReadingType/1"
    yield (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:espi="http://naesb.org/espi">'
        "<id>big</id><title>t</title><updated>2024-01-01T00:00:00Z</updated>"
        f'<entry><id>up</id><link rel="self" href="{up}"/>'
        f'<link rel="up" href="{BASE}/Subscription/5/UsagePoint"/>'
        f'<link rel="related" href="{up}/MeterReading"/><title>up</title>'
        "<content><espi:UsagePoint><espi:ServiceCategory><espi:kind>0</espi:kind>"
        "</espi:ServiceCategory></espi:UsagePoint></content></entry>"
        f'<entry><id>mr</id><link rel="self" href="{mr}"/>'
        f'<link rel="up" href="{up}/MeterReading"/>'
        f'<link rel="related" href="{mr}/IntervalBlock"/><link rel="related" href="{rt}"/>'
        "<content><espi:MeterReading/></content></entry>"
        f'<entry><id>rt</id><link rel="self" href="{rt}"/>'
        f'<link rel="up" href="{BASE}/ReadingType"/>'
        "<content><espi:ReadingType><espi:intervalLength>900</espi:intervalLength>"
        "<espi:uom>72</espi:uom></espi:ReadingType></content></entry>"
    ).encode()
    t0 = 1_704_067_200
    for i in range(blocks):
        start = t0 + i * 900 * per_block
        readings = "".join(
            "<espi:IntervalReading><espi:timePeriod><espi:duration>900</espi:duration>"
            f"<espi:start>{start + 900 * j}</espi:start></espi:timePeriod>"
            f"<espi:value>{j}</espi:value></espi:IntervalReading>"
            for j in range(per_block)
        )
        yield (
            f'<entry><id>b{i}</id><link rel="self" href="{mr}/IntervalBlock/{i}"/>'
            f'<link rel="up" href="{mr}/IntervalBlock"/><content><espi:IntervalBlock>'
            f"<espi:interval><espi:duration>{900 * per_block}</espi:duration>"
            f"<espi:start>{start}</espi:start></espi:interval>{readings}"
            "</espi:IntervalBlock></content></entry>"
        ).encode()
    yield b"</feed>"


class _Spools:
    """Records every SpooledTemporaryFile the driver makes (patched into ``tempfile``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import tempfile

        self.made: list[Any] = []
        real = tempfile.SpooledTemporaryFile
        made = self.made

        def spool(*args: Any, **kwargs: Any) -> Any:
            f = real(*args, **kwargs)
            made.append(f)
            return f

        monkeypatch.setattr(tempfile, "SpooledTemporaryFile", spool)

    def rolled(self) -> list[bool]:
        return [bool(f._rolled) for f in self.made]

    def all_closed(self) -> bool:
        return all(f.closed for f in self.made)


def test_download_streams_to_disk_without_holding_the_body() -> None:
    """A 48 MiB body: spooled in memory up to 8 MiB, then on disk; at no point is the whole
    body in memory (traced peak well under the body), and it arrives intact."""
    import hashlib
    import tracemalloc

    from greenbutton.client._flows import (
        SPOOL_MEMORY_BYTES,
        Download,
        Downloaded,
        Flow,
        Locks,
        Policy,
        run_sync,
    )

    total = 48 * MiB
    http = httpx2.Client(
        transport=httpx2.MockTransport(lambda r: httpx2.Response(200, content=_chunks(total)))
    )

    def flow() -> Flow[tuple[bool, int, bytes, str, Downloaded]]:
        got = yield Download(httpx2.Request("GET", f"{BASE}/Batch/Bulk/1"))
        assert isinstance(got, Downloaded) and got.file is not None
        digest = hashlib.sha256()
        while chunk := got.file.read(MiB):
            digest.update(chunk)
        return got.on_disk, got.size, got.response.content, digest.hexdigest(), got

    tracemalloc.start()
    try:
        on_disk, size, content, digest, got = run_sync(flow(), http, policy=Policy(), locks=Locks())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        http.close()
    assert on_disk and size == total and content == b""
    assert digest == hashlib.sha256(b"x" * total).hexdigest()
    assert peak < 2 * SPOOL_MEMORY_BYTES + 4 * MiB < total
    assert got.file is not None and got.file.closed  # the driver closed it at the end


def test_large_feed_is_parsed_from_the_spool(monkeypatch: pytest.MonkeyPatch) -> None:
    """A feed larger than the in-memory part (about 10.5 MiB) parses, through the sync
    client, from a spool that rolled to disk; the spool is closed afterwards."""
    spools = _Spools(monkeypatch)
    blocks = 630
    body = b"".join(_big_feed(blocks))
    assert len(body) > 8 * MiB

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, content=_big_feed(blocks), headers={"content-type": "application/atom+xml"}
        )

    server = Server(handler)
    with sync_client(server) as client:
        doc = client.usage_point(KEY, "1")
        assert isinstance(doc, Document) and doc.reading_count == blocks * 96
        raw = client.usage_point(KEY, "1", raw=True)
        assert raw == [body]
    assert spools.rolled() == [True, True] and spools.all_closed()


@pytest.mark.anyio
async def test_large_feed_async(monkeypatch: pytest.MonkeyPatch) -> None:
    """The async driver streams (``aiter_bytes``) into the same spool."""
    spools = _Spools(monkeypatch)
    blocks = 630

    async def stream() -> Any:
        for chunk in _big_feed(blocks):
            yield chunk

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, content=stream(), headers={"content-type": "application/atom+xml"}
        )

    client = AsyncClient(
        PROFILE, CREDS, token_store=store_with(), transport=httpx2.MockTransport(handler)
    )
    async with client:
        doc = await client.usage_point(KEY, "1")
    assert isinstance(doc, Document) and doc.reading_count == blocks * 96
    assert spools.rolled() == [True] and spools.all_closed()


def test_body_above_the_cap_is_aborted_while_streaming(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cap 3 MiB, body 64 MiB: TransportError after about 4 MiB was read, one request (not
    retried), the spool closed."""
    import dataclasses

    spools = _Spools(monkeypatch)
    sent: list[int] = []
    server = Server(lambda r: httpx2.Response(200, content=_chunks(64 * MiB, sent)))
    profile = dataclasses.replace(PROFILE, max_body_bytes=3 * MiB)
    client = Client(
        profile, CREDS, token_store=store_with(), transport=httpx2.MockTransport(server)
    )
    with client, pytest.raises(TransportError, match=f"larger than {3 * MiB}"):
        client.usage_point(KEY, "1")
    assert sum(sent) <= 5 * MiB and len(server.requests) == 1
    assert spools.made and spools.all_closed()


@pytest.mark.anyio
async def test_body_above_the_cap_async() -> None:
    import dataclasses

    sent: list[int] = []

    async def stream() -> Any:
        for chunk in _chunks(64 * MiB, sent):
            yield chunk

    profile = dataclasses.replace(PROFILE, max_body_bytes=3 * MiB)
    client = AsyncClient(
        profile,
        CREDS,
        token_store=store_with(),
        transport=httpx2.MockTransport(lambda r: httpx2.Response(200, content=stream())),
    )
    async with client:
        with pytest.raises(TransportError, match="larger than"):
            await client.usage_point(KEY, "1")
    assert sum(sent) <= 5 * MiB
