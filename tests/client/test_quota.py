"""SECURITY R58: PG&E's hourly and daily request quotas, counted by every process together.

The quotas live in the shared rate-limit state (one file per profile and client id, under
the same flock). Clocks are injected: no test waits for an hour to pass. A request over a
quota is never sent and never slept for: ``QuotaExhaustedError`` (a ``RequestDeferred``)
carries the seconds until the window frees one.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

import greenbutton
from greenbutton import (
    AsyncClient,
    CircuitOpenError,
    Client,
    QuotaExhaustedError,
    RequestDeferred,
    ServerError,
    TransportError,
)
from greenbutton.client._breaker import CircuitBreaker
from greenbutton.client._config import credentials_from_registration
from greenbutton.client._ratelimit import (
    RATE_DIR_ENV,
    LocalQuotaLimiter,
    Quota,
    SharedRateLimiter,
    make_limiter,
    profile_quotas,
)
from greenbutton.models import Document
from greenbutton.models._profile import PGE, UtilityProfile
from greenbutton.oauth import InMemoryTokenStore
from tests.simulator_harness import SimulatorHandle, start_simulator

ROOT = Path(__file__).resolve().parents[2]
PACIFIC = ("America/Los_Angeles", 17)


def utc(year: int, month: int, day: int, hour: int = 0) -> float:
    return datetime(year, month, day, hour, tzinfo=UTC).timestamp()


class Wall:
    """An injected wall clock (and a monotonic one that never moves: no rate slots here)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(path: Path, wall: Wall, *quotas: Quota) -> SharedRateLimiter:
    return SharedRateLimiter(None, path, quotas=quotas, clock=lambda: 0.0, wall_clock=wall)


def refused(lim: SharedRateLimiter | LocalQuotaLimiter) -> QuotaExhaustedError:
    with pytest.raises(QuotaExhaustedError) as info:
        lim.acquire()
    return info.value


def test_error_tree() -> None:
    """Both ways of "not sent, try later" share one base a job runner can catch; the
    circuit breaker's error keeps its constructor and attributes."""
    assert issubclass(QuotaExhaustedError, RequestDeferred)
    assert issubclass(CircuitOpenError, RequestDeferred)
    assert issubclass(RequestDeferred, TransportError)
    err = CircuitOpenError("open", url="https://x/y", retry_after=3.0, failures=5)
    assert (err.url, err.retry_after, err.failures, str(err)) == ("https://x/y", 3.0, 5, "open")
    assert {"QuotaExhaustedError", "RequestDeferred"} <= set(greenbutton.__all__)


def test_pge_profile_declares_its_quotas() -> None:
    assert profile_quotas(PGE) == (
        Quota("hour", 2000),
        Quota("day", 20000, "America/Los_Angeles", 17),
    )


def test_hourly_quota_shared_by_two_limiters_slides(tmp_path: Path) -> None:
    """Two limiters on one state file (as two processes have) let exactly 5 requests
    through per sliding hour together; the 6th is refused with the seconds until the
    oldest minute leaves the 61-minute window, and nothing is counted for it."""
    minute = 28_000_000  # an epoch minute; requests at 30 s into it
    wall = Wall(minute * 60 + 30.0)
    path = tmp_path / "one.rate"
    a, b = (limiter(path, wall, Quota("hour", 5)) for _ in range(2))
    for lim in (a, b, a):
        assert lim.acquire() == 0.0
    wall.now += 30 * 60  # 30 minutes later: 2 more, 3 of them still in the window
    for lim in (b, a):
        lim.acquire()
    err = refused(b)
    assert (err.quota, err.limit) == ("hour", 5)
    # The first 3 leave when minute + 61 begins: 61 min after them, 31 min from now.
    assert err.retry_after == pytest.approx((minute + 61) * 60 - wall.now)
    assert err.retry_after == pytest.approx(31 * 60 - 30)
    assert refused(a).retry_after == err.retry_after  # refusals counted nothing
    wall.now += err.retry_after - 1
    refused(a)
    wall.now += 1  # the first 3 are out; the 2 from the half hour are not
    for lim in (a, b, a):
        lim.acquire()
    assert refused(b).retry_after == pytest.approx(30 * 60)  # until those 2 leave


CHILD = r"""
import json, sys
from pathlib import Path
from greenbutton import QuotaExhaustedError
from greenbutton.client._ratelimit import Quota, SharedRateLimiter
path, go, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
lim = SharedRateLimiter(None, path, quotas=[Quota("hour", 10)])
while not go.exists():
    pass
ok = refused = 0
for _ in range(n):
    try:
        lim.acquire()
        ok += 1
    except QuotaExhaustedError as exc:
        assert exc.quota == "hour" and 0 < exc.retry_after <= 3660, exc.retry_after
        refused += 1
print(json.dumps([ok, refused]))
"""


def test_two_processes_share_the_hourly_quota(tmp_path: Path) -> None:
    """Two real processes racing for a quota of 10/hour (real wall clock): 10 requests
    granted between them, the other 6 refused."""
    path, go = tmp_path / "rate" / "one.rate", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(go), "8"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    go.touch()
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    counts = [json.loads(out) for out, _ in outputs]
    assert sum(ok for ok, _ in counts) == 10 and sum(no for _, no in counts) == 6


def test_daily_window_resets_at_5pm_pacific_across_dst(tmp_path: Path) -> None:
    """The day runs from 17:00 to 17:00 in Los Angeles: on 8 March 2026 (clocks spring
    forward) that window is 23 hours long, on 1 November 2026 (fall back) 25."""
    quota = Quota("day", 3, *PACIFIC)
    # Sat 7 Mar 18:00 PST = 8 Mar 02:00Z; the window started 17:00 PST (01:00Z) and ends
    # Sun 8 Mar 17:00 PDT = 9 Mar 00:00Z: 22 hours away (a fixed UTC-8 reset says 23).
    wall = Wall(utc(2026, 3, 8, 2))
    lim = limiter(tmp_path / "one.rate", wall, quota)
    for _ in range(3):
        lim.acquire()
    err = refused(lim)
    assert (err.quota, err.limit, err.retry_after) == ("day", 3, 22 * 3600)
    assert quota.day_window(wall.now) == (utc(2026, 3, 8, 1), utc(2026, 3, 9, 0))  # 23 h
    wall.now = utc(2026, 3, 9, 0) - 1  # 16:59:59 PDT
    assert refused(lim).retry_after == 1
    wall.now = utc(2026, 3, 9, 0)  # 17:00 PDT: a new day at the custodian
    for _ in range(3):
        lim.acquire()
    assert refused(lim).retry_after == 24 * 3600  # 9 to 10 March: an ordinary day
    # Autumn: Sat 31 Oct 17:00 PDT (1 Nov 00:00Z) to Sun 1 Nov 17:00 PST (2 Nov 01:00Z).
    wall.now = utc(2026, 11, 1, 12)
    assert quota.day_window(wall.now) == (utc(2026, 11, 1, 0), utc(2026, 11, 2, 1))  # 25 h
    for _ in range(3):
        lim.acquire()  # the March window is long past: a fresh count
    assert refused(lim).retry_after == 13 * 3600


def test_wall_clock_jumps_grant_no_fresh_quota(tmp_path: Path) -> None:
    """Counts stamped with a window that lies in the future (the clock was set back) are
    moved into the current window: the requests were made, so no fresh quota, and the wait
    ends with the current window, not with the future one. A forward jump inside the
    window changes nothing; past its end it starts a new one, as at the custodian."""
    day, hour = Quota("day", 4, *PACIFIC), Quota("hour", 3)
    start = utc(2026, 6, 10, 12)  # 05:00 PDT; this day window ends at 11 Jun 00:00Z
    wall = Wall(start)
    lim = limiter(tmp_path / "one.rate", wall, day, hour)
    for _ in range(3):
        lim.acquire()
    assert refused(lim).quota == "hour"
    wall.now = start - 2 * 86400  # set back two days: both windows now lie in the future
    err = refused(lim)  # 3 in the (re-labelled) current minute: the hour is still used up
    assert err.quota == "hour" and err.retry_after == pytest.approx(61 * 60)
    wall.now += err.retry_after  # an hour on (in the earlier day): the day still counts 3
    lim.acquire()
    err = refused(lim)
    assert err.quota == "day"  # 3 before the jump + 1 after, in the current day window
    assert err.retry_after == utc(2026, 6, 9, 0) - wall.now  # its end, not 11 Jun's
    wall.now = utc(2026, 6, 9, 0) - 3600 + 5 * 3600  # forward 4 h, past the day's end
    for _ in range(3):
        lim.acquire()  # a new day at the custodian too: a fresh count
    wall.now += 600  # forward within the hour and the day: the counts stay
    assert refused(lim).quota == "hour"


def test_quota_survives_a_lost_rate_slot(tmp_path: Path) -> None:
    """With a rate too, a refused request reserves no slot; a state from another boot
    drops the monotonic slot but keeps the wall-clock counts (a reboot must not reset the
    custodian's hour)."""
    wall = Wall(utc(2026, 6, 10, 12))
    path = tmp_path / "one.rate"
    slept: list[float] = []
    lim = SharedRateLimiter(
        1.0,
        path,
        quotas=[Quota("hour", 2)],
        clock=lambda: 50.0,
        wall_clock=wall,
        sleep=slept.append,
    )
    assert [lim.acquire(), lim.acquire()] == pytest.approx([0.0, 1.1])
    assert refused(lim).retry_after == pytest.approx(61 * 60)  # from now, the slot wait included
    state = json.loads(path.read_text())
    assert state["tat"] == pytest.approx(50.0 + 2.2)  # refused: no slot reserved
    path.write_text(json.dumps({**state, "boot": "another boot", "tat": 1e9}))
    assert refused(lim).retry_after == pytest.approx(61 * 60)
    assert slept == pytest.approx([1.1])


def test_make_limiter_quotas_only_and_fallback(tmp_path: Path) -> None:
    """A profile with quotas and no rate still gets a limiter; where the state cannot be
    shared, the quotas are counted in the process."""
    assert make_limiter(None, profile_name="p", client_id="c", directory=tmp_path) is None
    shared = make_limiter(None, profile_name="p", client_id="c", quotas=[Quota("hour", 1)])
    assert isinstance(shared, SharedRateLimiter) and shared.rate_per_s is None
    local = make_limiter(
        None, profile_name="p", client_id="c", shared=False, quotas=[Quota("hour", 1)]
    )
    assert isinstance(local, LocalQuotaLimiter)
    local.acquire()
    assert refused(local).quota == "hour"


# -- end to end, against the simulator over mutual TLS ------------------------------------


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(tmp_path / "sim", auto_approve="alice", customers=1) as handle:
        yield handle


def test_quota_of_3_per_hour_against_the_simulator(
    gb: SimulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A profile allowing 3 requests an hour: 3 calls reach the simulator, the 4th raises
    QuotaExhaustedError without a request and without opening the circuit, and a second
    client and an AsyncClient on the same state folder are refused too. A 429 whose
    Retry-After is beyond the retry cap stays a ServerError (it was sent, and counted)."""
    registration = gb.state_dir / "registration.json"
    tokens = InMemoryTokenStore()
    key, _ = gb.authorize(tokens)  # its token request goes without a quota
    monkeypatch.setenv(RATE_DIR_ENV, str(tmp_path / "rate"))
    profile = dataclasses.replace(UtilityProfile.simulator(registration), quota_per_hour=3)
    creds = credentials_from_registration(registration)
    breaker = CircuitBreaker(name="sim")
    client = Client(profile, creds, token_store=tokens, circuit_breaker=breaker)
    gb.sim.state.arrivals.clear()
    with client:
        for _ in range(3):
            assert isinstance(client.usage_points(key), Document)
        with pytest.raises(QuotaExhaustedError) as info:
            client.usage_points(key)
    assert len(gb.sim.state.arrivals) == 3
    err = info.value
    assert err.quota == "hour" and err.limit == 3 and 3540 < err.retry_after <= 3660
    assert err.url is not None and err.url.startswith(gb.api_url) and "token" not in err.url
    assert breaker.state == "closed" and breaker.failures == 0
    with Client(profile, creds, token_store=tokens) as other, pytest.raises(RequestDeferred):
        other.usage_points(key)

    async def from_a_coroutine() -> None:
        async with AsyncClient(profile, creds, token_store=tokens) as aclient:
            with pytest.raises(QuotaExhaustedError):
                await aclient.usage_points(key)

    anyio.run(from_a_coroutine)
    assert len(gb.sim.state.arrivals) == 3

    # A server-side quota: 429 with Retry-After above the retry cap is not slept for.
    fresh = dataclasses.replace(profile, name="sim-429", quota_per_hour=None)
    gb.sim.faults.burst_status, gb.sim.faults.retry_after = 429, 7200
    gb.sim.faults.status_burst = 1
    with Client(fresh, creds, token_store=tokens) as c, pytest.raises(ServerError) as srv:
        c.usage_points(key)
    assert srv.value.status_code == 429 and srv.value.retry_after == 7200
    assert len(gb.sim.state.arrivals) == 4  # one request, no retry
