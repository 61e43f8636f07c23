"""The web app served over HTTPS by uvicorn on a real socket, with the inbound client-certificate
check of the notification endpoint (SECURITY R32, R40, b6 inbound cases).

The web app's certificate is issued by the simulator's CA (so the simulator's notifier
trusts it) and its client CA is the simulator's CA (whose server certificate the notifier
presents). Browsers present no certificate and still get every page.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from greenbutton._errors import ConfigurationError
from greenbutton.client._client import Client
from greenbutton.simulator._notify import batch_list_xml
from greenbutton.simulator._pki import (
    PKIFiles,
    issue_certificate,
    load_pair,
    new_ca,
    write_cert,
    write_key,
)
from greenbutton.storage import DatabaseTokenStore, Store
from greenbutton.storage._schema import readings
from greenbutton.web import WebConfig, create_app, uvicorn_config
from greenbutton.web._tls import client_certificate
from tests.conftest import notified_jobs
from tests.simulator_harness import SimulatorHandle, start_simulator

XML = {"Content-Type": "application/xml"}
NOTIFY = "/espi/1_1/Notification"


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def serving(config: uvicorn.Config, sock: socket.socket) -> Iterator[None]:
    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    server = Server(config)
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert not failure and thread.is_alive() and time.monotonic() < deadline, failure
            time.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


class Served:
    def __init__(self, gb: SimulatorHandle, app: Any, base: str, tmp: Path) -> None:
        self.gb, self.app, self.base, self.tmp = gb, app, base, tmp

    @property
    def web(self) -> Any:
        return self.app.state.greenbutton

    def ctx(self, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.gb.registration["ca_cert"])
        if cert is not None:
            ctx.load_cert_chain(*cert)
        return ctx

    def client(self, cert: tuple[Path, Path] | None = None) -> httpx2.Client:
        return httpx2.Client(
            verify=self.ctx(cert), base_url=self.base, trust_env=False, timeout=10.0
        )

    def jobs(self) -> list[tuple[str, str]]:
        return notified_jobs(self.web.store)

    def readings(self) -> int:
        with self.web.store.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(readings)).scalar_one())


def _pair(tmp: Path, name: str, ca: Any, **kw: Any) -> tuple[Path, Path]:
    pair = issue_certificate(ca, name, **kw)
    cert, key = tmp / f"{name}.pem", tmp / f"{name}.key"
    write_cert(cert, pair)
    write_key(key, pair)
    return cert, key


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setenv("GREENBUTTON_SECRET_KEY", Fernet.generate_key().decode())
    sock = _socket()
    base = f"https://127.0.0.1:{sock.getsockname()[1]}"
    with start_simulator(tmp_path / "sim", auto_approve="alice", third_party_url=base) as gb:
        files = PKIFiles.in_dir(gb.state_dir)
        ca = load_pair(files.ca_cert, files.ca_key)
        assert ca is not None
        cert, key = _pair(tmp_path, "web", ca, server_names=["127.0.0.1"])
        config = WebConfig.for_simulator(
            gb.state_dir,
            database_url=f"sqlite:///{tmp_path / 'web.db'}",
            tls_cert=cert,
            tls_key=key,
            client_ca=Path(gb.registration["ca_cert"]),
            job_poll_seconds=60,
        )
        app = create_app(config)
        with serving(uvicorn_config(app, config, log_config=None), sock):
            try:
                yield Served(gb, app, base, tmp_path)
            finally:
                # the notifier's kept-alive connection ends before the web app stops, so
                # the server's TLS shutdown need not outlive its event loop
                gb.sim.notifier.close()


def _connect(s: Served, browser: httpx2.Client) -> str:
    r = browser.get("/connect")
    assert r.status_code == 302
    cookie = r.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie
    with s.gb.portal_client() as portal:
        consent = portal.get(r.headers["location"])
    assert consent.status_code == 302
    callback = str(consent.headers["location"])
    assert callback.startswith(s.base + "/OAuthCallback?")
    done = browser.get(callback)
    assert done.status_code == 303 and done.headers["location"] == "/account"
    (key,) = [k for k in s.web.tokens.keys() if "/Subscription/" in k]
    return str(key)


def test_https_browser_and_authenticated_notifications(served: Served) -> None:
    s = served
    with s.client() as browser:  # a browser: no client certificate
        home = browser.get("/")
        assert home.status_code == 200 and "Connect your utility account" in home.text
        key = _connect(s, browser)
        page = browser.get("/account")
        # charts and times in the usage point's local time, totals in kWh (issue 5)
        assert page.status_code == 200 and "<svg" in page.text
        assert "local time America/Los_Angeles" in page.text
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d P[SD]T", page.text)
        assert re.search(r"Use: [\d,]+\.\d kWh", page.text), page.text
        assert not re.search(r"[\d.] Wh\b", page.text)
    before = s.readings()
    assert before > 0

    # a real notification: the async call, then the simulator's notifier POSTs a BatchList
    # over mTLS with its CA-issued certificate; the worker fetches and stores the data
    with Store.open(f"sqlite:///{s.tmp / 'web.db'}") as store:
        client = Client.for_simulator(
            s.gb.state_dir / "registration.json", token_store=DatabaseTokenStore(store)
        )
        with client:
            end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            end -= timedelta(days=40)
            accepted = client.request_subscription_async(
                key, start=end - timedelta(days=5), end=end
            )
    assert accepted.status_code == 202
    deadline = time.monotonic() + 30
    while not (s.jobs() and all(state == "done" for _, state in s.jobs())):
        assert time.monotonic() < deadline, (s.jobs(), s.gb.sim.notifier.sent)
        time.sleep(0.05)
    assert s.gb.sim.notifier.wait_idle(timeout=10)
    assert [n.status for n in s.gb.sim.notifier.sent] == [200]
    assert s.readings() > before
    uri = s.jobs()[0][0]
    fresh = re.sub(r"correlationID=[^&]+", f"correlationID={uuid.uuid4()}", uri)
    assert fresh != uri
    body = batch_list_xml([fresh])

    # no client certificate: 403, nothing queued, even with forged forwarding headers
    with s.client() as anonymous:
        for headers in (
            {},
            {"Client-Cert": ":MIIB:", "X-Forwarded-For": "127.0.0.1"},
            {"X-SSL-Client-Verify": "SUCCESS", "X-Client-Cert": "x"},
        ):
            r = anonymous.post(NOTIFY, content=body, headers=XML | headers)
            assert r.status_code == 403, headers
    # a certificate from another CA: the handshake fails (or at the latest, a 403)
    stranger = _pair(s.tmp, "greenbutton simulator", new_ca("another CA"), client=True)
    with s.client(stranger) as other:
        try:
            r = other.post(NOTIFY, content=body, headers=XML)
        except httpx2.TransportError:
            pass
        else:
            assert r.status_code == 403
    assert len(s.jobs()) == 1

    # a certificate from the configured CA (the simulator's server certificate) passes
    sim_pair = (s.gb.sim.server_cert, s.gb.sim.server_key)
    with s.client(sim_pair) as custodian:
        r = custodian.post(NOTIFY, content=body, headers=XML)
        assert r.status_code == 200 and "queued 1" in r.text
        assert custodian.get("/").status_code == 200


def _scope(name: str | None, *, chain: bool = True, error: str | None = None) -> dict[str, Any]:
    tls = {"client_cert_chain": ["PEM"] if chain else [], "client_cert_name": name}
    return {"extensions": {"tls": tls | {"client_cert_error": error}}}


def test_client_certificate_from_scope() -> None:
    subject = "CN=greenbutton simulator,O=greenbutton simulator"
    assert client_certificate(_scope(subject)) == subject
    assert client_certificate(_scope(subject), "greenbutton simulator") == subject
    assert client_certificate(_scope(subject), subject) == subject
    assert client_certificate(_scope(subject), "someone else") is None  # b6: wrong subject
    assert client_certificate(_scope(subject, chain=False)) is None
    assert client_certificate(_scope(subject, error="unverified")) is None
    assert client_certificate({}) is None
    assert client_certificate({"extensions": {}}) is None


def test_config_and_cli_validation(tmp_path: Path) -> None:
    pem = tmp_path / "x.pem"
    pem.write_text("x")
    with pytest.raises(ConfigurationError):
        WebConfig(profile=None, credentials=None, tls_cert=pem)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        WebConfig(profile=None, credentials=None, client_ca=pem)  # type: ignore[arg-type]

    from greenbutton.cli import cli

    runner = CliRunner()
    r = runner.invoke(cli, ["serve", "--https"])
    assert r.exit_code == 2 and "--cert and --key" in r.output
    r = runner.invoke(cli, ["serve", "--client-ca", str(pem)])
    assert r.exit_code == 2 and "--client-ca needs --https" in r.output
    # R32 proxy mode: inconsistent combinations are one clear line each
    for args, message in (
        (["--client-subject", "x"], "--client-subject needs --client-ca"),
        (["--trusted-proxy", "10.0.0.1"], "--trusted-proxy needs --client-cert-header"),
        (["--client-cert-header", "Client-Cert"], "needs --trusted-proxy and --client-ca"),
        (
            ["--client-cert-header", "Client-Cert", "--trusted-proxy", "10.0.0.1"],
            "needs --trusted-proxy and --client-ca",
        ),
    ):
        r = runner.invoke(cli, ["serve", *args])
        assert r.exit_code == 2 and message in r.output, (args, r.output)
    for bad in (
        {"trusted_proxies": ("10.0.0.1",)},  # a proxy for nothing
        {"trusted_proxies": ("not-an-ip",), "notify_allow": ("10.0.0.0/8",)},
        {"notify_allow": ("10.0.0.0/33",)},
        {"client_cert_header": "Client-Cert", "client_ca": pem},  # no trusted proxy
        {"client_cert_header": "Bad Header", "client_ca": pem, "trusted_proxies": ("::1",)},
    ):
        with pytest.raises(ConfigurationError):
            WebConfig(profile=None, credentials=None, **bad)  # type: ignore[arg-type]


def test_zone_records_and_totals() -> None:
    from greenbutton.analysis import flow_words
    from greenbutton.models import Document, LocalTimeParameters, UsagePoint
    from greenbutton.storage import local_time_record, time_zone_of
    from greenbutton.web._views import _amount

    ltp = LocalTimeParameters(
        tz_offset=-18000, dst_offset=3600, dst_start_rule="360E2000", dst_end_rule="B40E2000"
    )
    doc = Document(usage_points=(UsagePoint(id="1", href="https://dc/UsagePoint/1"),))
    (up,) = doc.usage_points
    assert local_time_record(doc, up) is None  # no LocalTimeParameters: charts stay in UTC
    doc = Document(usage_points=doc.usage_points, local_time_parameters=(ltp,))
    raw = local_time_record(doc, up)  # the document's only one is lent to the point
    tz, label = time_zone_of(raw)
    assert label == "America/New_York" and str(tz) == "America/New_York"
    assert time_zone_of(None)[1] == "UTC" and time_zone_of("not json")[1] == "UTC"
    # the page's words: "use" and "exported to the grid", never "import" (issue 11.3)
    assert (flow_words("forward"), flow_words("reverse")) == ("use", "export")
    assert _amount(531.0026, "kWh") == "531.0 kWh" and _amount(12.34, "therm") == "12.3 therms"
