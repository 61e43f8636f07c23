"""The ``greenbutton_*`` series of ``/metrics`` beyond the job counts (issue 10.5), scraped
from a real ``greenbutton worker --metrics-port`` process after it fetched from the
simulator over mutual TLS, parsed with ``prometheus_client.parser``:

* ``greenbutton_fetch_seconds``: a histogram of the worker's resource requests (each
  attempt), recorded by the client's exchange loop;
* ``greenbutton_rate_limit_wait_seconds``: a histogram of its waits for the rate limit
  (the simulator advertises one), recorded by the limiter, one per request that went;
* ``greenbutton_rows_ingested_total``: a counter equal to the rows the done jobs stored;
* ``greenbutton_quota_remaining{period}``: the quota less what the requests used;

and the same process, started with ``--log-format json --log-level info``, writes one JSON
object per line to stderr, httpx2's request lines among them, with no query string; so
does ``serve``, uvicorn's records and access log included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from greenbutton.storage import DatabaseTokenStore, Store, sync
from tests.simulator_harness import SimulatorHandle, start_simulator
from tests.worker_harness import free_port

pytestmark = pytest.mark.usefixtures("secret_key")

RATE = 5.0
UNTIL = datetime(2026, 6, 1, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=120)  # a few of the simulator's 28-day windows
SIM_NOW = datetime(2026, 12, 3, 11, 34, tzinfo=UTC).timestamp()  # its history: 730 days back


@pytest.fixture
def gb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorHandle]:
    monkeypatch.setenv("GREENBUTTON_RATE_DIR", str(tmp_path / "rate-test"))
    config: dict[str, Any] = {"auto_approve": "alice", "customers": 1, "rate_limit": RATE}
    with start_simulator(tmp_path / "sim", **config) as handle:
        handle.sim.data.clock = lambda: SIM_NOW
        yield handle


def _scrape(port: int) -> dict[str, Any] | None:
    """``{family name: family}`` from the worker's /metrics, None until it serves."""
    try:
        with httpx2.Client(trust_env=False, timeout=5) as http:
            body = http.get(f"http://127.0.0.1:{port}/metrics").text
    except httpx2.TransportError:
        return None
    return {family.name: family for family in text_string_to_metric_families(body)}


def _samples(family: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}


def _histogram(family: Any) -> tuple[list[tuple[float, float]], float, float]:
    """(cumulative buckets by bound, count, sum) of a histogram family without labels."""
    assert family.type == "histogram", family
    buckets = sorted(
        (float(s.labels["le"]), s.value) for s in family.samples if s.name.endswith("_bucket")
    )
    values = {s.name: s.value for s in family.samples if not s.name.endswith("_bucket")}
    return buckets, values[f"{family.name}_count"], values[f"{family.name}_sum"]


def test_a_worker_serves_fetch_latency_limit_waits_and_rows_ingested(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'gb.db'}"
    store = Store.open(url, data_dir=tmp_path / "db")
    gb.authorize(DatabaseTokenStore(store))
    with gb.sdk_client(DatabaseTokenStore(store)) as client:
        report = sync(store, client, since=SINCE, until=UNTIL, enqueue_only=True)
    assert report.planned is not None and report.planned >= 3
    with store.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM ingest_jobs")).scalar_one()

    port = free_port()
    env = {**os.environ, "GREENBUTTON_HOST_ID": "one",
           "GREENBUTTON_RATE_DIR": str(tmp_path / "rate-one")}  # fmt: skip
    command = [sys.executable, "-m", "greenbutton", "--log-format", "json", "worker",
               "--database", url, "--simulator", str(gb.state_dir),
               "--metrics-port", str(port), "--log-level", "info"]  # fmt: skip
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        families = None
        while True:
            assert time.monotonic() < deadline and proc.poll() is None, "worker stopped early"
            families = _scrape(port)
            jobs = {} if families is None else _samples(families["greenbutton_jobs"])
            if jobs.get(("greenbutton_jobs", (("state", "done"),))) == total:
                break
            time.sleep(0.2)
        families = _scrape(port)  # after the last job: its rows are in the database
        assert families is not None
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
    assert proc.returncode == 0, err

    fetches, fetch_count, fetch_sum = _histogram(families["greenbutton_fetch_seconds"])
    assert fetch_count >= total > 0  # at least one resource request per job
    assert fetch_sum > 0
    assert fetches[-1] == (float("inf"), fetch_count)
    assert [n for _, n in fetches] == sorted(n for _, n in fetches)  # cumulative

    waits, wait_count, wait_sum = _histogram(families["greenbutton_rate_limit_wait_seconds"])
    # every request that went, token refreshes included, reserved a slot first
    assert wait_count >= fetch_count
    assert wait_sum >= 0 and waits[-1] == (float("inf"), wait_count)
    assert [n for _, n in waits] == sorted(n for _, n in waits)

    rows = families["greenbutton_rows_ingested"]  # the parser drops the _total suffix
    assert rows.type == "counter"
    with store.connect() as conn:
        stored = conn.execute(
            text("SELECT sum(rows) FROM ingest_jobs WHERE state = 'done'")
        ).scalar_one()
        readings = conn.execute(text("SELECT count(*) FROM readings")).scalar_one()
    assert readings > 0
    assert _samples(rows) == {("greenbutton_rows_ingested_total", ()): float(stored)}
    assert stored >= readings  # each reading stored by at least one done job
    store.close()

    # the same process's logs: one JSON object per line, the command's own lines too
    lines = [json.loads(line) for line in err.splitlines()]
    assert lines, err
    signalled, tally = lines[-2:]
    assert (signalled["logger"], signalled["message"]) == (
        "greenbutton.cli",
        "SIGINT: finishing running jobs",
    )
    assert tally["message"].startswith(f"attempts made here: {total} done")
    assert tally["level"] == "info"
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    assert all(line["ts"].endswith("Z") for line in lines)
    requests = [line for line in lines if line["logger"] == "httpx2"]
    assert requests, [line["logger"] for line in lines]  # httpx2 logs each request at info
    assert all("?" not in line["message"] for line in requests)
    assert "access_token" not in err and "code=" not in err


def test_quota_remaining_and_fetch_count_follow_the_requests_made(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    """A client whose profile has an hourly quota: after three resource requests,
    ``greenbutton_quota_remaining{period="hour"}`` is the quota less what it used, and the
    fetch histogram counted exactly those requests (in-process: the same collector as
    ``serve`` and ``worker`` register)."""
    from prometheus_client import CollectorRegistry, generate_latest

    from greenbutton import Client
    from greenbutton.oauth import InMemoryTokenStore
    from greenbutton.storage import ClientCollector

    tokens = InMemoryTokenStore()
    key, _token = gb.authorize(tokens)
    with gb.sdk_client(tokens) as plain:
        profile = replace(plain.profile, quota_per_hour=50)
        credentials = plain.credentials
    with Client(
        profile, credentials, token_store=tokens, rate_limit_dir=tmp_path / "rate-q"
    ) as client:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ClientCollector(client, credentials))
        gb.sim.state.arrivals.clear()  # from here on, only this client's requests
        for _ in range(3):
            assert client.usage_points(key).usage_points
        gets = [a for a in gb.sim.state.arrivals if a[1] == "GET"]
        families = {
            f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())
        }
    assert len(gets) == 3
    _buckets, count, _sum = _histogram(families["greenbutton_fetch_seconds"])
    assert count == 3
    used = _samples(families["greenbutton_quota_used"])
    remaining = _samples(families["greenbutton_quota_remaining"])
    hour = (("period", "hour"),)
    assert used[("greenbutton_quota_used", hour)] >= 3  # token requests count too
    assert remaining == {
        ("greenbutton_quota_remaining", hour): 50 - used[("greenbutton_quota_used", hour)]
    }


def test_serve_writes_uvicorns_records_as_json_and_shows_the_series(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    """``greenbutton --log-format json serve --log-level info``: uvicorn's own records and
    its access log are JSON lines through the same handler (the request target without
    its query), and serve's /metrics has the new families too."""
    port = free_port()
    command = [sys.executable, "-m", "greenbutton", "--log-format", "json", "serve",
               "--log-level", "info", "--simulator", str(gb.state_dir), "--port", str(port),
               "--database", f"sqlite:///{tmp_path / 'web.db'}"]  # fmt: skip
    env = {**os.environ, "GREENBUTTON_RATE_DIR": str(tmp_path / "rate-web")}
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        with httpx2.Client(trust_env=False, timeout=5) as http:
            while True:
                assert time.monotonic() < deadline and proc.poll() is None, "serve stopped"
                try:
                    health = http.get(f"http://127.0.0.1:{port}/healthz?code=abc123&state=s1")
                    break
                except httpx2.TransportError:
                    time.sleep(0.1)
            body = http.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        proc.terminate()
        try:
            _out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
    assert health.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(body)}
    for name in ("greenbutton_fetch_seconds", "greenbutton_rate_limit_wait_seconds"):
        assert families[name].type == "histogram"
    assert families["greenbutton_rows_ingested"].type == "counter"

    lines = [json.loads(line) for line in err.splitlines()]  # every line, serve's own too
    warnings = [line for line in lines if line["logger"] == "greenbutton.cli"]
    assert warnings and {w["level"] for w in warnings} == {"warning"}
    assert any("without --client-ca" in w["message"] for w in warnings), warnings
    loggers = {line["logger"] for line in lines}
    assert {"uvicorn.error", "uvicorn.access"} <= loggers, err
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert {(a["method"], a["path"], a["status"]) for a in access} == {
        ("GET", "/healthz", 200),
        ("GET", "/metrics", 200),
    }
    assert "abc123" not in err and "?" not in "".join(a["message"] for a in access)
