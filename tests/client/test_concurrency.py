"""Time and concurrency faults against the real simulator (SECURITY H: R52-R55, R24; b10).

Everything runs over mutual TLS on real sockets, with real SQLite files, real PostgreSQL
(``GREENBUTTON_TEST_POSTGRES_URL``) and real OS processes. What is counted, never timed:
refresh requests at the simulator's token endpoint, API requests (a ``status_burst`` of
503s counts down by one per request that reaches the API listener), the bearer token each
resource request carried (recorded by the client's transport), the backoff sleeps the
client asked for, and how often an unrelated coroutine ran while another one waited.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")


import greenbutton
from greenbutton import AsyncClient, Client
from greenbutton._errors import (
    AuthorizationError,
    GreenButtonError,
    InvalidGrantError,
)
from greenbutton.models import Document
from greenbutton.oauth import (
    REAUTH_REQUIRED,
    InMemoryTokenStore,
    SupportsLockedRefresh,
    SupportsStatus,
)
from greenbutton.simulator._oauth import token_calls
from greenbutton.storage import DatabaseTokenStore, Store
from tests.simulator_harness import SimulatorHandle, notification_receiver, start_simulator

ROOT = Path(__file__).resolve().parents[2]
COROUTINES, THREADS, PROCESSES = 50, 8, 2
TICKS = 100  # ticks of an unrelated coroutine (5 ms apart) while a task waits for a lock


@pytest.fixture
def store(keyed_store: Store) -> Store:
    return keyed_store


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(tmp_path / "sim", auto_approve="alice") as handle:
        yield handle


def _registration(gb: SimulatorHandle) -> Path:
    return gb.state_dir / "registration.json"


def _grants(gb: SimulatorHandle, grant_type: str = "refresh_token") -> list[int]:
    """Status of every token request of ``grant_type`` the simulator answered."""
    return [c.status for c in token_calls(gb.sim) if c.grant_type == grant_type]


def _fingerprint(bearer: str) -> str:
    return hashlib.sha256(bearer.encode()).hexdigest()[:16]


class _Bearers:
    """The bearer tokens resource requests carried (fingerprints, never the values)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[str] = []

    def record(self, request: httpx2.Request) -> None:
        header = request.headers.get("authorization", "")
        if request.method == "GET" and header.startswith("Bearer "):
            with self.lock:
                self.seen.append(_fingerprint(header.removeprefix("Bearer ")))


class _RecordingTransport(httpx2.HTTPTransport):
    def __init__(self, bearers: _Bearers, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bearers = bearers

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.bearers.record(request)
        return super().handle_request(request)


class _AsyncRecordingTransport(httpx2.AsyncHTTPTransport):
    def __init__(self, bearers: _Bearers, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bearers = bearers

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.bearers.record(request)
        return await super().handle_async_request(request)


# -- 1. the event loop keeps running while a task waits for another process's row lock --------

# Holds the token row lock of `key` until told to let go (or 10 s), like a process that is
# refreshing; on PostgreSQL it also reports how many backends were waiting for a lock then.
HOLDER = r"""
import sys, time
from pathlib import Path

from sqlalchemy import text

from greenbutton.storage import DatabaseTokenStore, Store

url, key, held, release, released = sys.argv[1:6]
store = Store.open(url, migrate=False)
tokens = DatabaseTokenStore(store)
waiting = -1
with tokens.locked(key) as row:
    row.load()  # PostgreSQL takes the row lock here (FOR UPDATE); SQLite at BEGIN IMMEDIATE
    Path(held).touch()
    deadline = time.monotonic() + 10
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as other:
            waiting = other.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )).scalar()
Path(released).write_text(str(waiting))
"""


def _wait_for(path: Path, proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _hold_row(url: str, key: str, tmp_path: Path) -> tuple[subprocess.Popen[str], Path, Path]:
    """Start a HOLDER process and wait until it has the row: (process, release, released)."""
    held, release, released = tmp_path / "held", tmp_path / "release", tmp_path / "released"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, key, str(held), str(release), str(released)],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(held, holder, "the holder did not take the row lock")
    return holder, release, released


@pytest.mark.anyio
async def test_async_client_waits_for_the_row_lock_off_the_event_loop(
    gb: SimulatorHandle, store: Store, store_url: str, tmp_path: Path
) -> None:
    """Another process holds the token row (as while it refreshes); an AsyncClient task that
    needs a refresh waits for it in a worker thread, so an unrelated coroutine keeps
    running all along, and the task then refreshes once."""
    tokens = DatabaseTokenStore(store)
    key = gb.authorize_expired(tokens)
    holder, release, released = _hold_row(store_url, key, tmp_path)
    try:
        ticks_while_waiting = 0
        call_done = False

        async def ticker() -> None:
            nonlocal ticks_while_waiting
            while not call_done:
                ticks_while_waiting += 1
                if ticks_while_waiting == TICKS:
                    release.touch()  # the holder lets go only after this many ticks
                await anyio.sleep(0.005)

        async with AsyncClient.for_simulator(_registration(gb), token_store=tokens) as client:

            async def call() -> Document | bytes:
                nonlocal call_done
                try:
                    return await client.usage_points(key)
                finally:
                    call_done = True

            async with anyio.create_task_group() as tg:
                tg.start_soon(ticker)
                doc = await call()
        _, err = holder.communicate(timeout=30)
        assert holder.returncode == 0, err
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate()
    assert isinstance(doc, Document) and doc.usage_points
    # The call could only finish after the holder let go, which it did once the ticker had
    # run TICKS times while the call was outstanding: the wait never blocked the loop.
    # (Were it blocked, the ticker would stall, the holder would hold on for 10 s and the
    # count would stay below TICKS.)
    assert ticks_while_waiting >= TICKS
    waiting = int(released.read_text())
    if store.engine.dialect.name == "postgresql":
        assert waiting >= 1  # our task really was queued on the row lock when it let go
    assert _grants(gb) == [200]  # and the waiting task refreshed exactly once
    assert tokens.status(key) == "active"


@pytest.mark.anyio
async def test_task_cancelled_while_waiting_for_the_row_lock_sends_nothing(
    gb: SimulatorHandle, store: Store, store_url: str, tmp_path: Path
) -> None:
    """A task cancelled while its worker thread waits for the row: once the thread has the
    lock the task stops before sending the refresh, and closing the flow (off the loop,
    shielded) rolls back and releases the row, so the next call refreshes normally."""
    tokens = DatabaseTokenStore(store)
    key = gb.authorize_expired(tokens)
    holder, release, released = _hold_row(store_url, key, tmp_path)
    try:
        async with AsyncClient.for_simulator(_registration(gb), token_store=tokens) as client:
            with anyio.CancelScope() as scope:

                async def cancel_later() -> None:
                    for _ in range(TICKS):
                        await anyio.sleep(0.005)
                    scope.cancel()  # the call is waiting for the row now
                    release.touch()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(cancel_later)
                    await client.usage_points(key)
            assert scope.cancelled_caught
            _, err = holder.communicate(timeout=30)
            assert holder.returncode == 0, err
            assert _grants(gb) == []  # the cancelled task sent no refresh

            with anyio.fail_after(30):  # a row left locked would make this wait, then fail
                doc = await client.usage_points(key)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate()
    assert isinstance(doc, Document) and doc.usage_points
    assert _grants(gb) == [200] and tokens.status(key) == "active"


# -- 2. R52: 50 coroutines + 8 threads + 2 processes, one refresh -------------------------------

# One data call by a separate process with its own client; prints the fingerprints of the
# bearer tokens its resource requests carried.
CALLER = r"""
import hashlib, json, os, ssl, sys, time
from pathlib import Path

import httpx2

from greenbutton import Client
from greenbutton.storage import DatabaseTokenStore, Store

registration, url, key, ca, cert, client_key, ready, go = sys.argv[1:9]
seen = []


class Recording(httpx2.HTTPTransport):
    def handle_request(self, request):
        header = request.headers.get("authorization", "")
        if request.method == "GET" and header.startswith("Bearer "):
            seen.append(hashlib.sha256(header[7:].encode()).hexdigest()[:16])
        return super().handle_request(request)


ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, client_key)
tokens = DatabaseTokenStore(Store.open(url, migrate=False))
client = Client.for_simulator(registration, token_store=tokens, transport=Recording(verify=ctx))
Path(ready).touch()
deadline = time.monotonic() + 30
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.002)
doc = client.usage_points(key)
print(json.dumps({"usage_points": len(doc.usage_points), "bearers": seen}))
"""


def _start_callers(
    gb: SimulatorHandle, url: str, key: str, tmp_path: Path, go: Path
) -> list[subprocess.Popen[str]]:
    reg = gb.registration
    procs = []
    for i in range(PROCESSES):
        ready = tmp_path / f"ready-{i}"
        args = [
            str(_registration(gb)), url, key, reg["ca_cert"], reg["client_cert"],
            reg["client_key"], str(ready), str(go),
        ]  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-c", CALLER, *args],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        _wait_for(ready, proc, "a caller process did not start")
    return procs


def test_coroutines_threads_and_processes_refresh_exactly_once(
    gb: SimulatorHandle, store: Store, store_url: str, tmp_path: Path
) -> None:
    """SECURITY R52 as written: an expired token in the database; 50 coroutines (one
    AsyncClient), 8 threads (one Client) and 2 OS processes (their own clients) each make a
    resource call at once -> the simulator answered exactly one refresh, every call
    succeeded, and every resource request carried the same new token."""
    tokens = DatabaseTokenStore(store)
    key = gb.authorize_expired(tokens)
    before = tokens.load(key)
    assert before is not None
    gb.sim.faults.latency_ms = 150  # the refresh stays in flight while everyone piles up

    bearers = _Bearers()
    ctx = gb.ssl_context()
    go, start = tmp_path / "go", threading.Event()
    procs = _start_callers(gb, store_url, key, tmp_path, go)
    thread_results: list[object] = []

    # Separate Store objects: in this process the two clients meet only at the row lock.
    sync_store, async_store = (
        Store.open(store_url, migrate=False),
        Store.open(store_url, migrate=False),
    )
    sync_client = Client.for_simulator(
        _registration(gb),
        token_store=DatabaseTokenStore(sync_store),
        transport=_RecordingTransport(bearers, verify=ctx),
    )

    def in_thread() -> None:
        start.wait(30)
        try:
            thread_results.append(sync_client.usage_points(key))
        except Exception as exc:  # reported by the assertions below
            thread_results.append(exc)

    async def coroutines() -> list[object]:
        async with AsyncClient.for_simulator(
            _registration(gb),
            token_store=DatabaseTokenStore(async_store),
            transport=_AsyncRecordingTransport(bearers, verify=ctx),
        ) as client:
            results: list[object] = []

            async def one() -> None:
                results.append(await client.usage_points(key))

            async with anyio.create_task_group() as tg:
                for _ in range(COROUTINES):
                    tg.start_soon(one)
            return results

    threads = [threading.Thread(target=in_thread) for _ in range(THREADS)]
    try:
        for t in threads:
            t.start()
        go.touch()  # all at once: processes, threads, coroutines
        start.set()
        async_results = anyio.run(coroutines)
        for t in threads:
            t.join(60)
        outputs = [p.communicate(timeout=60) for p in procs]
        codes = [p.returncode for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
        sync_client.close()
        sync_store.close()
        async_store.close()
    gb.sim.faults.latency_ms = 0

    assert codes == [0] * PROCESSES, outputs
    children = [json.loads(out) for out, _ in outputs]
    assert all(c["usage_points"] >= 1 for c in children)
    assert len(async_results) == COROUTINES and len(thread_results) == THREADS
    for result in [*async_results, *thread_results]:
        assert isinstance(result, Document) and result.usage_points, result

    assert _grants(gb) == [200]  # exactly one refresh, seen by the custodian
    after = tokens.load(key)
    assert after is not None and after.access_token != before.access_token
    new = _fingerprint(after.access_token.reveal())
    used = bearers.seen + [b for c in children for b in c["bearers"]]
    assert len(used) == COROUTINES + THREADS + PROCESSES
    assert set(used) == {new}  # everyone used the one new token, nobody the old one


# -- 3. wall-clock jumps (R54, R55, R24) ---------------------------------------------------------


class WallClock:
    """``time.time`` for the whole process (simulator included) plus an offset we move."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0.0
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + self.offset)

    def jump(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> WallClock:
    return WallClock(monkeypatch)


def _burst(gb: SimulatorHandle, status: int, n: int, retry_after: int = 0) -> None:
    faults = gb.sim.faults
    faults.burst_status, faults.retry_after, faults.status_burst = status, retry_after, n


@pytest.mark.parametrize("jump", [3600.0, -3600.0], ids=["plus-1h", "minus-1h"])
def test_wall_clock_jump_mid_backoff_keeps_the_advertised_delays(
    tmp_path: Path, wall: WallClock, jump: float
) -> None:
    """``[429 Retry-After: 1] x 2, 200`` while the wall clock jumps an hour during the
    first backoff sleep: the client still asks for exactly the advertised waits (the sleep
    and the overall deadline are monotonic), retries exactly twice, and neither a deadline
    nor an expiry check misfires (no extra refresh, no RequestTimeout)."""
    with start_simulator(tmp_path / "sim", auto_approve="alice", access_token_ttl=86400) as gb:
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            if not sleeps:
                wall.jump(jump)  # the jump happens while we are backing off
            sleeps.append(seconds)

        with Client.for_simulator(_registration(gb), sleep=sleep, deadline=30.0) as client:
            key, _ = client.exchange_code(*_code(gb, client))
            assert isinstance(client.usage_points(key), Document)
            _burst(gb, 429, 2, retry_after=1)
            assert isinstance(client.usage_points(key), Document)
        assert gb.sim.faults.status_burst == 0 and sleeps == [1.0, 1.0]
        assert _grants(gb) == []  # the jump did not make a fresh token look expired

        # 502 (no Retry-After): jittered backoff, still exactly four attempts
        sleeps.clear()
        wall.jump(-jump)
        with Client.for_simulator(_registration(gb), sleep=sleep, deadline=30.0) as client:
            key, _ = client.exchange_code(*_code(gb, client))
            _burst(gb, 502, 10)
            with pytest.raises(GreenButtonError):
                client.usage_points(key)
        assert gb.sim.faults.status_burst == 6 and len(sleeps) == 3
        assert all(0.0 <= s <= 30.0 for s in sleeps)


def _code(gb: SimulatorHandle, client: Client) -> tuple[str, Any]:
    pending = client.authorization_url()
    with gb.portal_client() as browser:
        r = browser.get(pending.url)
    return r.headers["location"], pending


def test_wall_clock_jump_forward_refreshes_once_not_in_a_loop(
    gb: SimulatorHandle, wall: WallClock
) -> None:
    """+1 h (past ``expires_in`` = 3600): the token now looks expired, so the next call
    refreshes once; the new token's expiry is local receipt time + expires_in on the jumped
    clock, so the calls after it refresh nothing."""
    tokens = InMemoryTokenStore()
    with Client.for_simulator(_registration(gb), token_store=tokens) as client:
        key, _ = client.exchange_code(*_code(gb, client))
        assert isinstance(client.usage_points(key), Document)
        wall.jump(3600 + 5)
        for _ in range(4):
            assert isinstance(client.usage_points(key), Document)
    assert _grants(gb) == [200]


def test_wall_clock_jump_back_then_server_401_refreshes_once(
    gb: SimulatorHandle, wall: WallClock
) -> None:
    """-1 h: a token the custodian already expired looks fresh locally; the server's 401
    leads to one refresh and one retry (R24, R54), which succeeds; later calls reuse it."""
    tokens = InMemoryTokenStore()
    with Client.for_simulator(_registration(gb), token_store=tokens) as client:
        key, token = client.exchange_code(*_code(gb, client))
        wall.jump(-3600)
        server_token = gb.sim.state.tokens[token.access_token.reveal()]
        server_token.expires_at = time.time() - 1  # expired by the custodian's clock
        stored = tokens.load(key)
        assert stored is not None and not stored.expires_within(60, time.time())
        for _ in range(3):
            assert isinstance(client.usage_points(key), Document)
    assert _grants(gb) == [200]


# -- 4. a token that expires while a Bulk body streams -------------------------------------------


def test_token_expiring_during_a_long_bulk_download(tmp_path: Path) -> None:
    """The client token expires (locally and at the custodian) while a Bulk body streams:
    the token is checked once, when the request starts, so the download completes; the next
    call gets a new client token, once."""
    with (
        notification_receiver() as inbox,
        start_simulator(
            tmp_path / "sim",
            auto_approve="alice",
            third_party_url=inbox.base_url,
            access_token_ttl=2,
        ) as gb,
    ):
        tokens = InMemoryTokenStore()
        gb.authorize(tokens)  # an active grant, so the Bulk has data
        with Client.for_simulator(_registration(gb), token_store=tokens, leeway=0.5) as client:
            assert client.bulk().pending
            batch = greenbutton.parse(inbox.wait(timeout=10)).batch_list
            assert batch is not None and "/Batch/Bulk/" in batch.resources[0]
            tokens.delete("client")  # start the download with a brand-new 2 s token
            calls = len(_grants(gb, "client_credentials"))
            client.client_token()
            gb.sim.faults.body_stall_ms = 2500
            body = client.get(batch.resources[0], raw=True)
            gb.sim.faults.body_stall_ms = 0
            assert len(_grants(gb, "client_credentials")) == calls + 1  # none mid-download
            token = tokens.load("client")
            assert token is not None and token.expires_within(0, time.time())  # expired now
            assert isinstance(body, bytes) and body.rstrip().endswith(b"</feed>")
            doc = greenbutton.parse(body)
            assert doc.usage_points and doc.reading_count > 0

            assert client.service_status() is not None  # the next call: one new token
            assert client.service_status() is not None
            assert len(_grants(gb, "client_credentials")) == calls + 2


# -- 5. revocation while a fetch is in flight -------------------------------------------------


def test_revocation_while_a_fetch_is_in_flight(gb: SimulatorHandle, store: Store) -> None:
    """The customer revokes while a slow call is on the wire: that call ends with our typed
    error (or its data) and never hangs; at most one refresh is attempted, the database
    marks the grant ``reauth_required``, and later calls fail at once with no request."""
    tokens = DatabaseTokenStore(store)
    key, _ = gb.authorize(tokens)
    outcome: list[object] = []
    with gb.sdk_client(tokens) as client:
        assert isinstance(client.usage_points(key), Document)
        gb.sim.faults.latency_ms = 1500

        def slow_fetch() -> None:
            try:
                outcome.append(client.usage_points(key))
            except BaseException as exc:  # the assertions say which kinds are fine
                outcome.append(exc)

        fetch = threading.Thread(target=slow_fetch)
        fetch.start()
        time.sleep(0.3)  # the request is waiting at the custodian
        assert gb.sim.state.revoke_authorization(gb.authorization_id(tokens, key))
        fetch.join(30)
        assert not fetch.is_alive()
        gb.sim.faults.latency_ms = 0
        [result] = outcome
        assert isinstance(result, Document | AuthorizationError | InvalidGrantError), result
        if isinstance(result, Document):  # answered before the revocation took hold
            with pytest.raises(AuthorizationError):
                client.usage_points(key)
        assert _grants(gb) == [400]  # exactly one refresh attempt, refused
        assert tokens.status(key) == REAUTH_REQUIRED

        _burst(gb, 503, 100)  # counts every request that reaches the API listener
        for _ in range(3):
            with pytest.raises(InvalidGrantError, match="needs re-authorization"):
                client.usage_points(key)
        assert gb.sim.faults.status_burst == 100 and _grants(gb) == [400]


# -- 6. reauth_required is read before anything is sent ------------------------------------------


@pytest.mark.anyio
async def test_reauth_required_raises_before_any_request(gb: SimulatorHandle, store: Store) -> None:
    """A grant the store marks ``reauth_required`` (here: a refresh refused after the
    customer revoked) is refused by both clients at once: no token request, no resource
    request, whatever the call. An in-memory store has no such flag and is unaffected."""
    tokens = DatabaseTokenStore(store)
    assert isinstance(tokens, SupportsStatus) and isinstance(tokens, SupportsLockedRefresh)
    assert not isinstance(InMemoryTokenStore(), SupportsStatus)
    key, _ = gb.authorize(tokens)
    assert gb.sim.state.revoke_authorization(gb.authorization_id(tokens, key))
    with gb.sdk_client(tokens) as client, pytest.raises(InvalidGrantError):
        client.refresh(key)
    assert tokens.status(key) == REAUTH_REQUIRED
    refused = _grants(gb)
    assert refused == [400]

    _burst(gb, 503, 100)
    calls: list[Callable[[Client], object]] = [
        lambda c: c.usage_points(key),
        lambda c: c.refresh(key),
        lambda c: c.meter_readings(key, "1"),
        lambda c: c.reading_types(key),
    ]
    with gb.sdk_client(tokens) as client:
        for call in calls:
            with pytest.raises(InvalidGrantError, match="needs re-authorization"):
                call(client)
    async with AsyncClient.for_simulator(_registration(gb), token_store=tokens) as aclient:
        with pytest.raises(InvalidGrantError, match="needs re-authorization"):
            await aclient.usage_points(key)
        with pytest.raises(InvalidGrantError, match="needs re-authorization"):
            await aclient.refresh(key)
    assert gb.sim.faults.status_burst == 100 and _grants(gb) == refused  # nothing was sent

    # a new authorization clears the flag (the store saves it as active)
    gb.sim.faults.status_burst = 0
    key2, _ = gb.authorize(tokens)
    assert key2 == key and tokens.status(key) == "active"  # the same grant, updated (3.7)
    with gb.sdk_client(tokens) as client:
        assert isinstance(client.usage_points(key2), Document)
