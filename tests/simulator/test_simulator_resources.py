"""The simulator's ESPI resource server, data, notifications and faults, in process
(``httpx2.ASGITransport``) on a Starlette app built from the same pieces ``_apps`` uses,
plus one end-to-end call over real TLS."""

from __future__ import annotations

import asyncio
import secrets
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
import xmlschema
from starlette.applications import Starlette
from starlette.routing import Mount

import greenbutton
from greenbutton.models import ReadingColumns
from greenbutton.simulator import PATHS, Simulator, SimulatorConfig
from greenbutton.simulator._data import SyntheticData, Window, local_midnight
from greenbutton.simulator._faults import fault_middleware
from greenbutton.simulator._notify import Notifier
from greenbutton.simulator._resources import resource_routes
from greenbutton.simulator._state import (
    CLIENT_SCOPE,
    DEFAULT_SCOPE,
    AuthorizationGrant,
    Customer,
    Registration,
    SimulatorState,
    UsagePointSpec,
)
from greenbutton.table._espi import iter_feed_chunks
from tests.conftest import XSD_DIR
from tests.xsd_support import espi_schema_errors

A = "{http://www.w3.org/2005/Atom}"
# 2024-03-20 12:00 UTC: the history holds the DST days 2023-11-05 (25 h) and 2024-03-10 (23 h).
NOW = datetime(2024, 3, 20, 12, tzinfo=UTC).timestamp()
BASE = "https://sim.test"
RES = PATHS.RESOURCE
SUB_A, SUB_B = "500100", "600200"
UP_15, UP_SOLAR, UP_GAS, UP_HOURLY = "11", "12", "13", "14"


def _state() -> SimulatorState:
    alice = Customer(
        username="alice",
        password=secrets.token_urlsafe(8),
        retail_customer_id="900100",
        subscription_id=SUB_A,
        name="Alice Example",
        usage_points=(
            UsagePointSpec(id=UP_15, profile="electric_15min", with_cost=True, seed=1),
            UsagePointSpec(id=UP_SOLAR, profile="solar_net", seed=2),
            UsagePointSpec(id=UP_GAS, profile="gas_daily", with_cost=True, seed=3),
            UsagePointSpec(id=UP_HOURLY, profile="electric_hourly", seed=4),
        ),
    )
    bob = Customer(
        username="bob",
        password=secrets.token_urlsafe(8),
        retail_customer_id="900200",
        subscription_id=SUB_B,
        usage_points=(UsagePointSpec(id="21", profile="electric_hourly", seed=5),),
    )
    reg = Registration(
        client_id="client-1",
        client_secret=secrets.token_urlsafe(16),
        redirect_uri="https://tp.test/OAuthCallback",
        notification_uri="https://tp.test/espi/1_1/Notification",
        bulk_id="77",
        registration_access_token=secrets.token_urlsafe(16),
        application_information_id="42",
    )
    return SimulatorState(reg, [alice, bob])


class _InProcess:
    """A blocking client for an ASGI app (httpx2's ASGITransport is async-only)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        async def call() -> httpx2.Response:
            transport = httpx2.ASGITransport(app=self.app)
            async with httpx2.AsyncClient(transport=transport, base_url=BASE) as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(call())

    def get(self, url: str, **kwargs: Any) -> httpx2.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx2.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx2.Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        pass


class Env:
    """A simulator in process: app, client, tokens, and what the notifier POSTed."""

    def __init__(self, tmp_path: Path, history_days: int = 400) -> None:
        state = _state()
        config = SimulatorConfig(state_dir=tmp_path, seed=7, history_days=history_days)
        self.sim = Simulator(
            config=config,
            state=state,
            faults=replace(config.faults),
            ca_cert=tmp_path / "ca.pem",
            server_cert=tmp_path / "server.pem",
            server_key=tmp_path / "server-key.pem",
            client_cert=tmp_path / "client.pem",
            client_key=tmp_path / "client-key.pem",
            api_url=BASE,
        )
        self.data = SyntheticData(state, seed=7, history_days=history_days, clock=lambda: NOW)
        self.sim.data = self.data
        self.posts: list[httpx2.Request] = []
        self.post_status = 200

        def receive(request: httpx2.Request) -> httpx2.Response:
            request.read()
            self.posts.append(request)
            return httpx2.Response(self.post_status)

        self.notifier = Notifier(
            self.sim, transport=httpx2.MockTransport(receive), delay=0, backoff=0.01
        )
        self.sim.notifier = self.notifier
        for gid, user, sub in (("g-a", "alice", SUB_A), ("g-b", "bob", SUB_B)):
            state.grants[gid] = AuthorizationGrant(
                id=gid, customer=user, subscription_id=sub, scope=DEFAULT_SCOPE
            )
        self.access = state.issue_token("access", DEFAULT_SCOPE, 3600, "g-a").value
        self.access_b = state.issue_token("access", DEFAULT_SCOPE, 3600, "g-b").value
        self.client_token = state.issue_token("client", CLIENT_SCOPE, 3600).value
        self.registration = state.registration.registration_access_token
        self.tokens = {
            "access": self.access,
            "client": self.client_token,
            "registration": self.registration,
        }
        app = Starlette(
            routes=[Mount(RES, routes=resource_routes(self.sim))],
            middleware=[fault_middleware(self.sim)],
        )
        self.http = _InProcess(app)

    def get(self, path: str, token: str | None = None, **params: str | int) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = path if path.startswith("/") else f"{RES}/{path}"
        return self.http.get(url, headers=headers, params=params)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.http.close()
    e.notifier.close()


def _last() -> date:
    return date(2024, 3, 19)


def _mr(env: Env, up: str, flow: int = 1) -> str:
    point = env.data.usage_point(SUB_A, up)
    assert point is not None
    return next(
        m.id
        for m in point.meter_readings
        if m.reading_type is not None and m.reading_type.flow_direction == flow
    )


# --------------------------------------------------------------------------------------------
# token classes (R23)


def _resources(env: Env) -> list[tuple[str, str, int]]:
    """(path, token kind that may call it, its success status)."""
    up = f"Subscription/{SUB_A}/UsagePoint/{UP_15}"
    mr = f"{up}/MeterReading/{_mr(env, UP_15)}"
    block = local_midnight(_last())
    rt = env.data.usage_point(SUB_A, UP_15).meter_readings[0].reading_type.href  # type: ignore[union-attr]
    summary = env.data.usage_summaries(SUB_A, UP_15, Window())[-1].href
    return [
        (f"Batch/Subscription/{SUB_A}", "access", 202),
        (f"Batch/Subscription/{SUB_A}/UsagePoint", "access", 200),
        (f"Batch/Subscription/{SUB_A}/UsagePoint/{UP_15}", "access", 200),
        ("Batch/Bulk/77", "client", 202),
        (f"Batch/RetailCustomer/{SUB_A}", "access", 200),
        (f"Subscription/{SUB_A}/UsagePoint", "access", 200),
        (up, "access", 200),
        (f"{up}/MeterReading", "access", 200),
        (mr, "access", 200),
        (f"{mr}/IntervalBlock", "access", 200),
        (f"{mr}/IntervalBlock/{block}", "access", 200),
        (f"{up}/UsageSummary", "access", 200),
        (str(summary), "access", 200),
        ("ReadingType", "access", 200),
        (str(rt), "access", 200),
        ("LocalTimeParameters", "access", 200),
        ("LocalTimeParameters/1", "access", 200),
        ("Authorization", "client", 200),
        ("Authorization/g-a", "client", 200),
        ("ApplicationInformation/42", "registration", 200),
        ("ReadServiceStatus", "client", 200),
    ]


def test_every_resource_answers_per_token_class(env: Env) -> None:
    for path, kind, ok in _resources(env):
        for other, token in env.tokens.items():
            r = env.get(path, token)
            want = ok if other == kind else 403
            assert r.status_code == want, (path, other, r.text)
            if want == 403:
                assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
        r = env.get(path)
        assert r.status_code == 401 and "error=" not in r.headers["www-authenticate"]
        r = env.get(path, "not-a-token")
        assert r.status_code == 401
        assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_expired_and_foreign_tokens(env: Env) -> None:
    expired = env.sim.state.issue_token("access", DEFAULT_SCOPE, -1, "g-a").value
    path = f"Batch/Subscription/{SUB_A}/UsagePoint/{UP_15}"
    assert env.get(path, expired).status_code == 401
    # bob's token does not reach alice's subscription, in any resource under it
    assert env.get(path, env.access_b).status_code == 403
    assert env.get(f"Subscription/{SUB_A}/UsagePoint", env.access_b).status_code == 403
    assert env.get(f"Batch/RetailCustomer/{SUB_A}", env.access_b).status_code == 403
    assert env.get("ApplicationInformation/43", env.registration).status_code == 403
    assert env.get(f"Subscription/{SUB_A}/UsagePoint/nope", env.access).status_code == 404


# --------------------------------------------------------------------------------------------
# documents


def _assert_valid(schema: xmlschema.XMLSchema, body: bytes) -> None:
    root = xmlschema.XMLResource(body).root
    if root.tag == A + "feed":
        problems = espi_schema_errors(schema, body)
    else:
        problems = [e.reason or "" for e in schema.iter_errors(body)]
    assert not problems, "\n".join(problems[:10])


def test_every_document_validates_and_parses(env: Env, schema: xmlschema.XMLSchema) -> None:
    customer_schema = xmlschema.XMLSchema(
        [
            str(XSD_DIR / "naesb-espi-4.0" / "customer.xsd"),
            str(XSD_DIR / "naesb-espi-4.0" / "atom.xsd"),
        ],
        allow="local",
    )
    for path, kind, ok in _resources(env):
        if ok != 200:
            continue
        r = env.get(path, env.tokens[kind])
        assert r.headers["content-type"].startswith(
            "application/xml" if path == "ReadServiceStatus" else "application/atom+xml"
        )
        if "RetailCustomer" in path:
            problems = [e.reason for e in customer_schema.iter_errors(r.content)]
            assert not problems, problems[:5]
            continue
        _assert_valid(schema, r.content)
        greenbutton.parse(r.content)
    status = greenbutton.parse(env.get("ReadServiceStatus", env.client_token).content)
    assert status.service_status is not None and status.service_status.available


def _expected(env: Env, up: str, mr_id: str, start: int, end: int) -> ReadingColumns:
    blocks = env.data.interval_blocks(
        SUB_A, up, mr_id, Window(published_min=start, published_max=end)
    )
    cols = ReadingColumns()
    for block in blocks:
        cols.extend(block.readings)
    return cols


def test_sync_feed_round_trips_to_the_data_source(env: Env, schema: xmlschema.XMLSchema) -> None:
    start, end = local_midnight(date(2024, 3, 1)), local_midnight(date(2024, 3, 15))
    for up in (UP_15, UP_SOLAR, UP_GAS, UP_HOURLY):
        r = env.get(f"Batch/Subscription/{SUB_A}/UsagePoint/{up}", env.access,
                    **{"published-min": start, "published-max": end})  # fmt: skip
        assert r.status_code == 200
        _assert_valid(schema, r.content)
        doc = greenbutton.parse(r.content)
        (point,) = doc.usage_points
        assert point.href == f"Subscription/{SUB_A}/UsagePoint/{up}"
        assert point.local_time_parameters is not None
        assert point.local_time_parameters.tz_offset == -28800
        assert point.local_time_parameters.dst_start_rule == "360E2000"
        for mr in point.meter_readings:
            got = mr.readings
            want = _expected(env, up, mr.id, start, end)
            assert len(got) == len(want) > 0
            for name in ("start", "duration", "value", "cost", "quality", "tou"):
                assert list(getattr(got, name)) == list(getattr(want, name)), name
            assert len(mr.interval_blocks) == 14
        assert point.usage_summaries == () or all(s.billing_period for s in point.usage_summaries)


def test_both_time_formats_filter_blocks(env: Env) -> None:
    mr = f"Subscription/{SUB_A}/UsagePoint/{UP_HOURLY}/MeterReading/{_mr(env, UP_HOURLY)}"
    lo, hi = local_midnight(date(2024, 2, 1)), local_midnight(date(2024, 2, 4))
    as_epoch = env.get(f"{mr}/IntervalBlock", env.access,
                       **{"published-min": lo, "published-max": hi})  # fmt: skip
    iso = {
        "published-min": datetime.fromtimestamp(lo, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "published-max": datetime.fromtimestamp(hi, UTC).isoformat(),
    }
    as_iso = env.get(f"{mr}/IntervalBlock", env.access, **iso)
    for r in (as_epoch, as_iso):
        assert r.status_code == 200
        assert r.content.count(b"<IntervalBlock ") == 3
        assert f"IntervalBlock/{lo}".encode() in r.content
    # no data in the window: 204, as PG&E
    future = int(NOW) + 10 * 86400
    r = env.get(f"Batch/Subscription/{SUB_A}/UsagePoint/{UP_15}", env.access,
                **{"published-min": future})  # fmt: skip
    assert r.status_code == 204
    assert env.get(f"Batch/Subscription/{SUB_A}", env.access,
                   **{"published-min": future}).status_code == 204  # fmt: skip


@pytest.mark.parametrize(
    "params",
    [
        {"published-min": "yesterday"},
        {"published-min": "2024-02-30T00:00:00Z"},
        {"published-max": "2024-02-01T00:00:00"},  # no zone
        {"published-min": "1700000000", "published-max": "1600000000"},
        {"updated-min": "-5"},
        {"max-results": "0"},
        {"start-index": "-1"},
        {"max-results": "ten"},
    ],
)
def test_bad_query_parameters_are_400(env: Env, params: dict[str, str]) -> None:
    r = env.get(f"Batch/Subscription/{SUB_A}/UsagePoint/{UP_15}", env.access, **params)
    assert r.status_code == 400


def test_paging(env: Env) -> None:
    mr = f"Subscription/{SUB_A}/UsagePoint/{UP_HOURLY}/MeterReading/{_mr(env, UP_HOURLY)}"
    lo, hi = local_midnight(date(2024, 2, 1)), local_midnight(date(2024, 2, 11))
    window = {"published-min": lo, "published-max": hi}
    r = env.get(f"{mr}/IntervalBlock", env.access, **window, **{"max-results": 4})
    assert r.content.count(b"<IntervalBlock ") == 4
    r = env.get(f"{mr}/IntervalBlock", env.access, **window, **{"start-index": 9})
    assert r.content.count(b"<IntervalBlock ") == 2
    assert f"IntervalBlock/{local_midnight(date(2024, 2, 9))}".encode() in r.content


# --------------------------------------------------------------------------------------------
# data


def _blocks(env: Env, up: str, day: date, flow: int = 1) -> list[tuple[int, int]]:
    w = Window(published_min=local_midnight(day), published_max=local_midnight(day) + 1)
    return [
        (b.interval.duration or 0, len(b.readings))
        for b in env.data.interval_blocks(SUB_A, up, _mr(env, up, flow), w)
    ]


def test_dst_days_have_23_and_25_hours(env: Env) -> None:
    assert _blocks(env, UP_HOURLY, date(2024, 3, 10)) == [(82800, 23)]
    assert _blocks(env, UP_HOURLY, date(2023, 11, 5)) == [(90000, 25)]
    assert _blocks(env, UP_15, date(2024, 3, 10)) == [(82800, 92)]
    assert _blocks(env, UP_15, date(2023, 11, 5)) == [(90000, 100)]
    assert _blocks(env, UP_GAS, date(2023, 11, 5)) == [(90000, 1)]
    assert _blocks(env, UP_15, date(2024, 3, 11)) == [(86400, 96)]
    # blocks start at local midnight
    midnight = local_midnight(date(2024, 1, 15))
    window = Window(published_min=midnight, published_max=midnight + 1)
    (block,) = env.data.interval_blocks(SUB_A, UP_HOURLY, _mr(env, UP_HOURLY), window)
    assert block.interval.start == int(datetime(2024, 1, 15, 8, tzinfo=UTC).timestamp())


def test_net_metered_gas_and_cost(env: Env) -> None:
    doc = greenbutton.parse(
        env.get(f"Batch/Subscription/{SUB_A}/UsagePoint/{UP_SOLAR}", env.access).content
    )
    flows = {mr.reading_type.flow_direction: mr for mr in doc.meter_readings}  # type: ignore[union-attr]
    assert set(flows) == {1, 19}
    assert sum(flows[19].readings.value) > 0 and sum(flows[1].readings.value) > 0
    gas = greenbutton.parse(
        env.get(f"Batch/Subscription/{SUB_A}/UsagePoint/{UP_GAS}", env.access).content
    )
    (mr,) = gas.meter_readings
    rt = mr.reading_type
    assert rt is not None and rt.unit == "therm" and rt.uom == 169
    assert rt.interval_length == 86400 and rt.currency == 840
    assert len(mr.readings) == 30  # the default window: the last 30 days
    assert all(c > 0 for c in mr.readings.cost)
    assert gas.usage_points[0].service_kind == 1
    electric = greenbutton.parse(
        env.get(f"Batch/Subscription/{SUB_A}/UsagePoint/{UP_15}", env.access).content
    )
    readings = electric.meter_readings[0].readings
    # PG&E's winter peak / off-peak codes (the window ends 2024-03-19; ProgramIdMappings)
    assert set(readings.tou) == {4, 6} and 19 in set(readings.quality)


def test_data_is_deterministic_per_seed(env: Env) -> None:
    state = env.sim.state
    day = date(2024, 1, 10)
    w = Window(published_min=local_midnight(day), published_max=local_midnight(day) + 1)

    def values(seed: int) -> list[int]:
        data = SyntheticData(state, seed=seed, history_days=400, clock=lambda: NOW)
        point = data.usage_point(SUB_A, UP_15)
        assert point is not None
        (block,) = data.interval_blocks(SUB_A, UP_15, point.meter_readings[0].id, w)
        return list(block.readings.value)

    assert (
        values(7) == values(7) == list(_expected(env, UP_15, _mr(env, UP_15), *w_bounds(w)).value)
    )
    assert values(7) != values(8)
    # a later clock does not change past days
    later = SyntheticData(state, seed=7, history_days=400, clock=lambda: NOW + 40 * 86400)
    point = later.usage_point(SUB_A, UP_15)
    assert point is not None
    (block,) = later.interval_blocks(SUB_A, UP_15, point.meter_readings[0].id, w)
    assert list(block.readings.value) == values(7)


def w_bounds(w: Window) -> tuple[int, int]:
    assert w.published_min is not None and w.published_max is not None
    return w.published_min, w.published_max


def test_five_year_15min_history_is_generated_lazily(tmp_path: Path) -> None:
    env = Env(tmp_path, history_days=5 * 365)
    data = env.data
    doc = data.document(SUB_A, Window(), usage_point_id=UP_15, summaries=False)
    assert len(doc.meter_readings[0].interval_blocks) == 5 * 365
    assert data.days_generated == 0  # a Document of 5 years, and not one reading made
    # (monthly summaries need their month's readings: 13 months at most, cached)
    chunks = iter_feed_chunks(doc, base_url=BASE + RES)
    for _ in range(20):
        next(chunks)
    assert data.days_generated < 25  # readings are made as the writer reaches them
    # writing a year holds one block at a time, not the year
    year = data.document(SUB_A, Window(published_min=int(NOW) - 365 * 86400),
                         usage_point_id=UP_15, summaries=False)  # fmt: skip
    tracemalloc.start()
    try:
        size = sum(len(c) for c in iter_feed_chunks(year, base_url=BASE + RES))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > 5_000_000 and peak < size / 20  # ~one block, not the year
    # and the resource server streams the same way
    r = env.get(f"Batch/Subscription/{SUB_A}/UsagePoint/{UP_15}", env.access,
                **{"published-min": 0, "max-results": 10})  # fmt: skip
    assert r.status_code == 200 and r.content.count(b"<entry>") == 10
    env.http.close()
    env.notifier.close()


# --------------------------------------------------------------------------------------------
# asynchronous calls and notifications


def _notified(env: Env, count: int = 1) -> list[str]:
    assert env.notifier.wait_idle(5)
    assert len(env.posts) == count
    doc = greenbutton.parse(env.posts[-1].content)
    assert doc.batch_list is not None
    return list(doc.batch_list.resources)


def test_async_subscription_202_then_notification(env: Env, schema: xmlschema.XMLSchema) -> None:
    lo = local_midnight(date(2024, 3, 1))
    r = env.get(f"Batch/Subscription/{SUB_A}", env.access, **{"published-min": lo})
    assert r.status_code == 202
    (uri,) = _notified(env)
    assert str(env.posts[0].url) == env.sim.state.registration.notification_uri
    assert env.posts[0].content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<BatchList')
    assert uri.startswith(f"{BASE}{RES}/Batch/Subscription/{SUB_A}?correlationID=")
    feed = env.http.get(uri, headers={"Authorization": f"Bearer {env.access}"})
    assert feed.status_code == 200
    _assert_valid(schema, feed.content)
    doc = greenbutton.parse(feed.content)
    assert {up.id for up in doc.usage_points} == {UP_15, UP_SOLAR, UP_GAS, UP_HOURLY}
    assert min(b.interval.start or 0 for mr in doc.meter_readings for b in mr.interval_blocks) == lo
    assert env.notifier.sent[0].status == 200
    # the notified URI belongs to that subscription; a made-up correlation id is unknown
    bad = uri.split("correlationID=")[0] + "correlationID=nope"
    assert env.http.get(bad, headers={"Authorization": f"Bearer {env.access}"}).status_code == 404
    assert env.http.get(uri, headers={"Authorization": f"Bearer {env.access_b}"}).status_code == 403


def test_bulk_202_then_notification_with_correlation_id(env: Env) -> None:
    assert env.get("Batch/Bulk/78", env.client_token).status_code == 403
    assert env.get("Batch/Bulk/77", env.client_token).status_code == 202
    (uri,) = _notified(env)
    assert uri.startswith(f"{BASE}{RES}/Batch/Bulk/77?correlationID=")
    env.sim.state.revoke_authorization("g-b")  # only active authorizations are in the bulk
    feed = env.http.get(uri, headers={"Authorization": f"Bearer {env.client_token}"})
    assert feed.status_code == 200
    ids = {up.href for up in greenbutton.parse(feed.content).usage_points}
    assert ids == {
        f"Subscription/{SUB_A}/UsagePoint/{u}" for u in (UP_15, UP_SOLAR, UP_GAS, UP_HOURLY)
    }


def test_daily_notifications_and_notification_faults(env: Env) -> None:
    uris = env.notifier.new_data()
    assert len(uris) == 2 and all("correlationID=" in u for u in uris)
    assert _notified(env) == uris
    env.sim.faults.drop_notifications = True
    env.notifier.new_data()
    assert env.notifier.wait_idle(5) and len(env.posts) == 1
    assert env.notifier.sent[-1].dropped
    env.sim.faults.drop_notifications = False
    env.sim.faults.duplicate_notifications = True
    env.notifier.new_data()
    _notified(env, 3)
    assert env.posts[1].content == env.posts[2].content
    # a failing receiver is retried, a few times only
    env.sim.faults.duplicate_notifications = False
    env.post_status = 503
    env.notifier.new_data()
    _notified(env, 6)
    assert env.notifier.sent[-1].attempts == 3 and env.notifier.sent[-1].status == 503


def test_notifier_refuses_plain_http_off_loopback(env: Env) -> None:
    reg = env.sim.state.registration
    env.sim.state.registration = replace(reg, notification_uri="http://tp.test/n")
    env.notifier.new_data()
    assert env.notifier.wait_idle(5) and env.posts == []
    assert "https" in (env.notifier.sent[-1].error or "")


def test_daily_clock_runs(tmp_path: Path) -> None:
    env = Env(tmp_path)
    env.sim.config = replace(env.sim.config, notification_interval=0.05)
    env.notifier.start()
    try:
        deadline = time.monotonic() + 5
        while len(env.posts) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(env.posts) >= 2
    finally:
        env.notifier.close()
        env.http.close()


# --------------------------------------------------------------------------------------------
# third-party administration


def test_authorization_list_get_and_revoke(env: Env) -> None:
    feed = greenbutton.parse(env.get("Authorization", env.client_token).content)
    assert {a.status for a in feed.authorizations} == {1}
    customers = [a for a in feed.authorizations if "/Batch/Subscription/" in (a.resource_uri or "")]
    assert len(customers) == 2
    # issue 14: the third party's own authorizations are listed too, as at PG&E: the bulk
    # one (how pgesmd finds the bulk id) and the registration one
    admin = {a.resource_uri: a for a in feed.authorizations}
    bulk = admin[f"{BASE}{RES}/Batch/Bulk/77"]
    assert bulk.scope is not None and bulk.scope.endswith(";BR=77")
    assert f"{BASE}{RES}/ApplicationInformation/42" in admin
    assert len(feed.authorizations) == 4
    (again_bulk,) = greenbutton.parse(
        env.get(str(bulk.authorization_uri).removeprefix(f"{BASE}{RES}/"), env.client_token).content
    ).authorizations
    assert again_bulk.resource_uri == bulk.resource_uri
    one = greenbutton.parse(env.get("Authorization/g-a", env.client_token).content)
    (auth,) = one.authorizations
    assert auth.resource_uri == f"{BASE}{RES}/Batch/Subscription/{SUB_A}"
    assert env.get("Authorization/nope", env.client_token).status_code == 404
    r = env.http.delete(
        f"{RES}/Authorization/g-a", headers={"Authorization": f"Bearer {env.client_token}"}
    )
    assert r.status_code == 200  # GBA MGA002
    assert env.get(f"Subscription/{SUB_A}/UsagePoint", env.access).status_code == 401
    again = greenbutton.parse(env.get("Authorization/g-a", env.client_token).content)
    assert again.authorizations[0].status == 0


def test_application_information(env: Env) -> None:
    doc = greenbutton.parse(env.get("ApplicationInformation/42", env.registration).content)
    (app,) = doc.application_information
    assert app.client_id == "client-1"
    assert app.data_custodian_resource_endpoint == BASE + RES


# --------------------------------------------------------------------------------------------
# faults


def test_faults_switch_at_run_time_via_admin_route(env: Env) -> None:
    path = f"Subscription/{SUB_A}/UsagePoint"
    assert env.http.get(PATHS.ADMIN_FAULTS).json()["status_burst"] == 0
    r = env.http.post(PATHS.ADMIN_FAULTS, json={"status_burst": 2, "retry_after": 7})
    assert r.status_code == 200 and r.json()["status_burst"] == 2
    for _ in range(2):
        r = env.get(path, env.access)
        assert r.status_code == 503 and r.headers["retry-after"] == "7"
    assert env.get(path, env.access).status_code == 200
    env.http.post(PATHS.ADMIN_FAULTS, json={"status_burst": 1, "burst_status": 500})
    r = env.get(path, env.access)
    assert r.status_code == 500 and "retry-after" not in r.headers
    # bad updates change nothing
    for bad in ({"nope": 1}, {"latency_ms": "fast"}, {"malformed_xml": 1}, [1]):
        assert env.http.post(PATHS.ADMIN_FAULTS, json=bad).status_code == 400
    assert env.http.post(PATHS.ADMIN_FAULTS, content=b"{").status_code == 400
    assert env.http.delete(PATHS.ADMIN_FAULTS).status_code == 405

    env.http.post(PATHS.ADMIN_FAULTS, json={"rate_limit_per_s": 3})
    statuses = [env.get(path, env.access).status_code for _ in range(6)]
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]
    r = env.get(path, env.access)
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    env.http.post(PATHS.ADMIN_FAULTS, json={"rate_limit_per_s": 0, "latency_ms": 150})
    t = time.monotonic()
    assert env.get(path, env.access).status_code == 200
    assert time.monotonic() - t >= 0.15
    env.http.post(PATHS.ADMIN_FAULTS, json={"latency_ms": 0, "malformed_xml": True})
    for p in (path, f"Batch/Subscription/{SUB_A}/UsagePoint/{UP_15}"):
        r = env.get(p, env.access)
        assert r.status_code == 200
        with pytest.raises(greenbutton.ParseError):
            greenbutton.parse(r.content)
    env.http.post(PATHS.ADMIN_FAULTS, json={"malformed_xml": False, "expire_tokens": True})
    r = env.get(path, env.access)
    assert r.status_code == 401 and "expired" in r.headers["www-authenticate"]
    assert env.get("ReadServiceStatus", env.client_token).status_code == 401
    env.http.post(PATHS.ADMIN_FAULTS, json={"expire_tokens": False, "revoke_all": True})
    assert env.get(path, env.access).status_code == 401
    assert env.get("ReadServiceStatus", env.client_token).status_code == 200
    env.http.post(PATHS.ADMIN_FAULTS, json={"revoke_all": False})
    assert env.get(path, env.access).status_code == 200


def test_connect_latency_is_charged_once_per_new_connection(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``connect_latency_ms`` delays the first request of each client (host, port) pair,
    i.e. of each new TCP connection; later requests on it pay ``latency_ms`` only. The set of
    pairs seen is bounded (oldest forgotten first)."""
    import anyio

    from greenbutton.simulator import _faults

    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = _faults.FaultMiddleware(ok, env.sim)

    async def call(port: int | None) -> float:
        scope: dict[str, Any] = {"type": "http", "path": "/x", "method": "GET", "headers": []}
        if port is not None:
            scope["client"] = ("127.0.0.1", port)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            pass

        t = time.monotonic()
        await middleware(scope, receive, send)
        return time.monotonic() - t

    def timed(port: int | None) -> float:
        return anyio.run(call, port)

    assert timed(40000) < 0.1  # off by default; the pair is remembered all the same
    env.sim.faults.connect_latency_ms = 150
    assert timed(40000) < 0.1  # a kept-alive connection opened earlier: not new
    assert timed(40001) >= 0.15  # new connection
    assert timed(40001) < 0.1  # same connection again
    assert timed(None) < 0.1  # no peer address: cannot tell, not charged
    env.sim.faults.latency_ms = 50
    assert 0.2 <= timed(40002) < 0.35  # both: request RTT + set-up
    assert 0.05 <= timed(40002) < 0.15
    env.sim.faults.latency_ms = 0
    monkeypatch.setattr(_faults, "SEEN_CONNECTIONS", 2)
    timed(40003)
    timed(40004)  # 40001, 40002 forgotten (40000 was already)
    assert timed(40001) >= 0.15
    env.sim.faults.connect_latency_ms = 0
    r = env.http.post(PATHS.ADMIN_FAULTS, json={"connect_latency_ms": 20})
    assert r.status_code == 200 and r.json()["connect_latency_ms"] == 20


def test_a_request_is_counted_and_rate_checked_where_it_reaches_the_custodian(env: Env) -> None:
    """With modelled latency a request reaches the custodian after its connection's set-up
    and half the round trip: it is recorded in ``arrivals`` and checked against the rate
    limit at that instant, so /_simulator/stats and the 429s agree. A request sent later on
    a kept-alive connection can arrive first and take the second's place in the window."""
    import anyio

    from greenbutton.simulator import _faults

    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = _faults.FaultMiddleware(ok, env.sim)
    statuses: dict[str, int] = {}

    async def call(port: int, name: str, after: float) -> None:
        await anyio.sleep(after)
        scope: dict[str, Any] = {"type": "http", "path": "/" + name, "method": "GET"}
        scope |= {"headers": [], "client": ("127.0.0.1", port)}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.start":
                statuses[name] = message["status"]

        await middleware(scope, receive, send)

    async def both() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, 41001, "new", 0.0)  # arrives at 0.3 + 0.05
            tg.start_soon(call, 41000, "kept", 0.1)  # arrives at 0.1 + 0.05

    anyio.run(call, 41000, "warm-up", 0.0)  # 41000 is a kept-alive connection from now on
    env.sim.faults.latency_ms = 100
    env.sim.faults.connect_latency_ms = 300
    env.sim.faults.rate_limit_per_s = 1
    time.sleep(1.1)  # the warm-up leaves the window
    start = time.monotonic()
    anyio.run(both)
    env.sim.faults.latency_ms = env.sim.faults.connect_latency_ms = 0
    env.sim.faults.rate_limit_per_s = 0
    arrived = {path: at - start for at, _, path in list(env.sim.state.arrivals)[-2:]}
    assert list(arrived) == ["/kept", "/new"]
    assert 0.15 <= arrived["/kept"] < 0.25 and 0.35 <= arrived["/new"] < 0.45
    assert statuses == {"warm-up": 204, "kept": 204, "new": 429}


# --------------------------------------------------------------------------------------------
# end to end over real TLS


def test_sync_call_over_mutual_tls(tmp_path: Path) -> None:
    harness = pytest.importorskip("tests.simulator_harness")
    from greenbutton.simulator._oauth import token_route

    def api_app(sim: Simulator) -> Starlette:
        return Starlette(
            routes=[token_route(sim), Mount(RES, routes=resource_routes(sim))],
            middleware=[fault_middleware(sim)],
        )

    with harness.start_simulator(
        tmp_path / "sim", portal_app=harness.placeholder_app, api_app=api_app, customers=2
    ) as gb:
        reg = gb.registration
        sim = gb.sim
        customer = next(iter(sim.state.customers.values()))
        with gb.api_client() as client:
            r = client.post(reg["token_url"], data={"grant_type": "client_credentials"},
                            auth=(reg["client_id"], reg["client_secret"]))  # fmt: skip
            assert r.status_code == 200, r.text
            body = r.json()
            client_token = body.get("client_access_token") or body["access_token"]
            status = client.get(f"{reg['resource_url']}/ReadServiceStatus",
                                headers={"Authorization": f"Bearer {client_token}"})  # fmt: skip
            assert status.status_code == 200 and b"<currentStatus>1<" in status.content
            sim.state.grants["e2e"] = AuthorizationGrant(
                id="e2e", customer=customer.username,
                subscription_id=customer.subscription_id, scope=DEFAULT_SCOPE,
            )  # fmt: skip
            token = sim.state.issue_token("access", DEFAULT_SCOPE, 600, "e2e").value
            up = customer.usage_points[0].id
            sub = customer.subscription_id
            url = f"{reg['resource_url']}/Batch/Subscription/{sub}/UsagePoint/{up}"
            with client.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("application/atom+xml")
                content = r.read()
            doc = greenbutton.parse(content)
            assert doc.usage_points[0].href == (
                f"Subscription/{customer.subscription_id}/UsagePoint/{up}"
            )
            assert doc.reading_count > 0


def test_data_dir_serves_real_files(tmp_path: Path) -> None:
    from greenbutton.simulator._data import FileData
    from tests.conftest import FIXTURES

    files = tmp_path / "data"
    files.mkdir()
    (files / "a.xml").write_bytes((FIXTURES / "gba_demo_hourly_32days.xml").read_bytes())
    env = Env(tmp_path)
    env.sim.data = data = FileData(env.sim.state, files)
    (point,) = data.usage_points(SUB_A)
    original = greenbutton.parse(FIXTURES / "gba_demo_hourly_32days.xml")
    r = env.get(f"Batch/Subscription/{SUB_A}/UsagePoint/{point.id}", env.access)
    assert r.status_code == 200
    served = greenbutton.parse(r.content)
    assert served.reading_count == original.reading_count > 0
    assert env.get(f"Batch/Subscription/{SUB_B}/UsagePoint", env.access_b).status_code == 204
    env.notifier.close()
