"""``/healthz``, ``/readyz`` and ``/metrics`` (DESIGN 3.7) on the web app, against the
real simulator over mutual TLS: readiness follows the database and the utility's token
endpoint, the metrics follow the database (jobs, authorizations) and the client (circuit,
certificate expiry) in the Prometheus text format."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import httpx2
import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from greenbutton.web import WebConfig, create_app
from tests.simulator_harness import SimulatorHandle
from tests.web_harness import BASE, Counting, connect, running


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.mark.anyio
async def test_health_ready_and_metrics(gb: SimulatorHandle, tmp_path: Path) -> None:
    async with running(gb, tmp_path) as (web, browser, counting):
        r = await browser.get("/healthz")
        assert r.status_code == 200 and r.text == "ok\n"
        r = await browser.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json() == {"ready": True, "database": "ok", "utility": "ok"}
        assert counting.urls == []  # a connection, not a request: no quota spent

        r = await browser.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain; version=")
        before = _samples(r.text)
        assert before[("greenbutton_jobs", (("state", "pending"),))] == 0
        assert before[("greenbutton_authorizations", (("status", "active"),))] == 0
        assert before[("greenbutton_circuit_state", (("state", "closed"),))] == 1
        assert before[("greenbutton_circuit_state", (("state", "open"),))] == 0
        cert = x509.load_pem_x509_certificate(Path(gb.registration["client_cert"]).read_bytes())
        expiry = before[("greenbutton_client_certificate_expiry_seconds", ())]
        assert expiry == cert.not_valid_after_utc.timestamp()
        assert all(name.startswith("greenbutton_") for name, _ in before)

        _, done = await connect(gb, browser)  # a customer connects: first pull as jobs
        assert done.status_code == 303
        after = _samples((await browser.get("/metrics")).text)
        assert after[("greenbutton_authorizations", (("status", "active"),))] == 1
        assert after[("greenbutton_jobs", (("state", "done"),))] >= 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: connections are refused


@pytest.mark.anyio
async def test_not_ready_when_the_utility_is_unreachable(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    config = WebConfig.for_simulator(gb.state_dir, database_url=f"sqlite:///{tmp_path / 'w.db'}")
    closed = f"https://127.0.0.1:{_closed_port()}/datacustodian/oauth/v2/token"
    config = config.replace(profile=dataclasses.replace(config.profile, token_url=closed))
    app = create_app(config)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE) as browser,
    ):
        r = await browser.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["ready"] is False and body["database"] == "ok"
        assert body["utility"].startswith("token endpoint 127.0.0.1:")
        assert (await browser.get("/healthz")).status_code == 200  # still alive


@pytest.mark.anyio
async def test_quota_use_is_read_from_the_shared_limiter(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    """A profile with quotas (PG&E-like): what the client sent is what the metrics count."""
    config = WebConfig.for_simulator(gb.state_dir, database_url=f"sqlite:///{tmp_path / 'w.db'}")
    profile = dataclasses.replace(config.profile, quota_per_hour=500, quota_per_day=5000)
    counting = Counting(gb)
    app = create_app(config.replace(profile=profile, transport=counting))
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE) as browser,
    ):
        _, done = await connect(gb, browser)
        assert done.status_code == 303
        sent = len(counting.urls)
        assert sent > 0
        samples = _samples((await browser.get("/metrics")).text)
        assert samples[("greenbutton_quota_limit", (("period", "hour"),))] == 500
        assert samples[("greenbutton_quota_limit", (("period", "day"),))] == 5000
        assert samples[("greenbutton_quota_used", (("period", "hour"),))] == sent
        assert samples[("greenbutton_quota_used", (("period", "day"),))] == sent
