"""SECURITY R58: one request rate per data custodian and client id for the whole machine.

The main test runs two real OS processes against the real simulator over mutual TLS: one
drives a blocking ``Client`` from threads, the other an ``AsyncClient`` from coroutines,
both with the profile's limit at 8/s and their state in one ``GREENBUTTON_RATE_DIR``. The
simulator records when each request arrived (``sim.state.arrivals``, monotonic), and no
one-second window may hold more than 8. The limiter's burst is 1 (its default), so no
burst allowance is needed: its slots are ``1.1 / rate`` apart (10 % headroom for jitter).
Without sharing, the two processes would send at 16/s together.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenbutton import Client
from greenbutton._secret import Secret
from greenbutton.client._config import credentials_from_registration
from greenbutton.client._ratelimit import RATE_DIR_ENV, SharedRateLimiter, make_limiter
from greenbutton.client._transport import RateLimiter
from greenbutton.models import Document
from greenbutton.models._profile import UtilityProfile
from greenbutton.oauth import Token
from tests.simulator_harness import SimulatorHandle, start_simulator

ROOT = Path(__file__).resolve().parents[2]
# Low enough that the 2 shared cores leave the simulator idle between requests: a CPU-starved
# server stamps queued requests together, which says nothing about the sender's spacing.
RATE = 8.0
PER_PROCESS = 20


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    # Tokens outlive the wall-clock jumps below, so no refresh muddies the request count.
    with start_simulator(
        tmp_path / "sim", auto_approve="alice", customers=1, access_token_ttl=7 * 86400
    ) as handle:
        yield handle


def _registration(gb: SimulatorHandle) -> Path:
    return gb.state_dir / "registration.json"


def _authorize(gb: SimulatorHandle) -> dict[str, object]:
    """A real grant; the access token's fields, for the child processes."""
    with Client.for_simulator(_registration(gb)) as client:
        pending = client.authorization_url()
        with gb.portal_client() as browser:
            r = browser.get(pending.url)
        _, token = client.exchange_code(r.headers["location"], pending)
    return {
        "access_token": token.access_token.reveal(),
        "expires_at": token.expires_at,
        "scope": token.scope,
        "resource_uri": token.resource_uri,
        "authorization_uri": token.authorization_uri,
    }


def _windows(times: list[float]) -> int:
    """The most arrivals in any half-open one-second window [t, t + 1)."""
    times = sorted(times)
    most, j = 0, 0
    for i, start in enumerate(times):
        j = max(j, i)
        while j < len(times) and times[j] < start + 1.0:
            j += 1
        most = max(most, j - i)
    return most


CHILD = r"""
import anyio, dataclasses, json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from greenbutton import AsyncClient, Client
from greenbutton.client._config import credentials_from_registration
from greenbutton.models._profile import UtilityProfile
from greenbutton._secret import Secret
from greenbutton.models import Document
from greenbutton.oauth import Token

registration, token_file, mode, count, rate, ready, go = sys.argv[1:8]
count, rate = int(count), float(rate)
fields = json.loads(Path(token_file).read_text())
token = Token(kind="access", **{**fields, "access_token": Secret(fields["access_token"])})
profile = dataclasses.replace(UtilityProfile.simulator(registration), rate_limit_per_s=rate)
creds = credentials_from_registration(registration)


def wait_for_go():
    Path(ready).touch()
    deadline = time.monotonic() + 30
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.002)


if mode == "threads":
    with Client(profile, creds) as client:
        limiter = type(client._policy.limiter).__name__
        wait_for_go()
        with ThreadPoolExecutor(5) as pool:
            docs = list(pool.map(lambda _: client.usage_points(token), range(count)))
else:
    async def main():
        async with AsyncClient(profile, creds) as client:
            wait_for_go()
            docs = []

            async def one():
                docs.append(await client.usage_points(token))

            async with anyio.create_task_group() as tg:
                for _ in range(count):
                    tg.start_soon(one)
            return type(client._policy.limiter).__name__, docs

    limiter, docs = anyio.run(main)
ok = sum(isinstance(d, Document) and bool(d.usage_points) for d in docs)
print(json.dumps({"ok": ok, "limiter": limiter}))
"""


def test_two_processes_share_one_rate(gb: SimulatorHandle, tmp_path: Path) -> None:
    """40 fetches queued at once by 2 processes (threads / coroutines) at 8/s: the
    simulator never sees more than 8 requests in a second, and all 40 succeed."""
    token_file = tmp_path / "token.json"
    token_file.write_text(json.dumps(_authorize(gb)))
    token_file.chmod(0o600)
    rate_dir, go = tmp_path / "rate", tmp_path / "go"
    env = {**os.environ, RATE_DIR_ENV: str(rate_dir)}
    procs = []
    try:
        for mode in ("threads", "tasks"):
            ready = tmp_path / f"ready-{mode}"
            args = [str(_registration(gb)), str(token_file), mode, str(PER_PROCESS), str(RATE)]
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", CHILD, *args, str(ready), str(go)],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            deadline = time.monotonic() + 30
            while not ready.exists() and procs[-1].poll() is None:
                assert time.monotonic() < deadline, "a child process did not start"
                time.sleep(0.01)
        gb.sim.state.arrivals.clear()  # from here on, only the children's requests
        go.touch()
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [p.returncode for p in procs] == [0, 0], outputs
    results = [json.loads(out) for out, _ in outputs]
    assert results == [{"ok": PER_PROCESS, "limiter": "SharedRateLimiter"}] * 2
    arrivals = [t for t, method, _ in gb.sim.state.arrivals if method == "GET"]
    assert len(arrivals) == len(gb.sim.state.arrivals) == 2 * PER_PROCESS  # tokens were fresh
    assert _windows(arrivals) <= RATE
    assert [p.name for p in rate_dir.iterdir()] == [next(rate_dir.iterdir()).name]  # one file


class WallClock:
    """``time.time`` for the whole process (simulator included) plus an offset we move."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0.0
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + self.offset)


def test_wall_clock_jumps_while_limiting_change_nothing(
    gb: SimulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wall clock jumps an hour ahead, then back, while 8 threads queue 24 fetches at
    8/s: the limit holds across both jumps (a wall-clock slot would let a burst through
    after the first and stall for an hour after the second), and all 40 succeed."""
    token = _authorize(gb)
    wall = WallClock(monkeypatch)
    profile = dataclasses.replace(
        UtilityProfile.simulator(_registration(gb)), rate_limit_per_s=RATE
    )
    creds = credentials_from_registration(_registration(gb))
    client = Client(profile, creds, rate_limit_dir=tmp_path / "rate")
    assert isinstance(client._policy.limiter, SharedRateLimiter)
    key = str(token["authorization_uri"])
    fields = {**token, "access_token": Secret(str(token["access_token"]))}
    client.token_store.save(key, Token(kind="access", **fields))  # type: ignore[arg-type]
    gb.sim.state.arrivals.clear()
    results: list[object] = []
    jumps: list[float] = []
    stop = threading.Event()

    def fetch() -> None:
        for _ in range(3):
            try:
                results.append(client.usage_points(key))
            except Exception as exc:  # reported by the assertions below
                results.append(exc)

    def jumper() -> None:
        for at, offset in ((6, 3600.0), (14, 0.0)):
            while len(gb.sim.state.arrivals) < at and not stop.is_set():
                time.sleep(0.005)
            if not stop.is_set():
                wall.offset = offset
                jumps.append(offset)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    jumping = threading.Thread(target=jumper)
    with client:
        jumping.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)  # a guard against an hour-long stall, not a timing assertion
        stop.set()
        jumping.join(5)
        assert not any(t.is_alive() for t in threads), "requests stalled after the jump"
    assert jumps == [3600.0, 0.0]  # both jumps happened while requests were still queued
    assert len(results) == 24 and all(isinstance(r, Document) for r in results), results
    arrivals = [t for t, _, _ in gb.sim.state.arrivals]
    assert len(arrivals) == 24 and _windows(arrivals) <= RATE


# -- the limiter itself, clock injected ----------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))


def test_two_limiters_on_one_file_hand_out_successive_slots(tmp_path: Path) -> None:
    """Two limiters (as two processes would have) on one state file: slots interleave at
    1.1 / rate, and an idle period lets the next request go at once (burst 1)."""
    clock = FakeClock()
    path = tmp_path / "one.rate"
    a, b = (SharedRateLimiter(2.0, path, clock=clock, sleep=clock.sleep) for _ in range(2))
    assert [a.acquire(), b.acquire(), a.acquire(), b.acquire()] == pytest.approx(
        [0.0, 0.55, 1.1, 1.65]
    )
    clock.now += 10.0
    assert b.acquire() == 0.0
    assert clock.slept == [0.55, 1.1, 1.65]


def test_state_from_another_boot_or_torn_is_ignored(tmp_path: Path) -> None:
    """A slot written under another boot id (monotonic time restarted) or a torn write does
    not make callers wait; a state folder removed meanwhile is made again."""
    clock = FakeClock()
    path = tmp_path / "rate" / "one.rate"
    limiter = SharedRateLimiter(1.0, path, clock=clock, sleep=clock.sleep)
    path.write_text(json.dumps({"boot": "another boot", "tat": clock.now + 500}))
    assert limiter.acquire() == 0.0
    path.write_text('{"boot": ')
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(1.1)  # and the state written is used again
    shutil.rmtree(tmp_path / "rate")  # a cache clean-up while the client lives
    clock.now += 10.0
    assert limiter.acquire() == 0.0 and path.exists()


def test_make_limiter_opt_out_and_fallback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``shared=False`` is the in-process limiter; an unusable folder falls back to it with a
    warning; the folder defaults to GREENBUTTON_RATE_DIR; the file is private."""
    assert isinstance(make_limiter(1.0, profile_name="p", client_id="c", shared=False), RateLimiter)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger="greenbutton.ratelimit"):
        limiter = make_limiter(1.0, profile_name="p", client_id="c", directory=blocker / "x")
    assert isinstance(limiter, RateLimiter) and "limiting this process only" in caplog.text
    monkeypatch.setenv(RATE_DIR_ENV, str(tmp_path / "env"))
    shared = make_limiter(1.0, profile_name="p", client_id="c/../x")
    assert isinstance(shared, SharedRateLimiter)
    assert shared.path.parent == tmp_path / "env" and shared.path.suffix == ".rate"
    assert shared.path.stat().st_mode & 0o077 == 0
    other = make_limiter(1.0, profile_name="p", client_id="another")
    assert isinstance(other, SharedRateLimiter) and other.path != shared.path
