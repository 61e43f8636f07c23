"""The notification endpoint behind a TLS-terminating reverse proxy (SECURITY R32) and its
source-address allowlist (R40), over real sockets.

The app is served by uvicorn on 127.0.0.1; the trusted proxy is the loopback address
127.0.0.1 and a "direct" caller connects from 127.0.0.2 (a separate TCP peer on the same
machine), so the app sees two different peers without any header saying so.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.serialization import Encoding

from greenbutton.simulator._data import Window
from greenbutton.simulator._notify import batch_list_xml
from greenbutton.simulator._pki import new_ca
from greenbutton.web import WebConfig, create_app, uvicorn_config
from tests.conftest import notified_jobs
from tests.simulator_harness import SimulatorHandle, start_simulator
from tests.web.test_web_tls import NOTIFY, XML, _pair, _socket, serving

PROXY, DIRECT = "127.0.0.1", "127.0.0.2"


@dataclass
class Proxied:
    gb: SimulatorHandle
    web: Any
    base: str
    body: bytes
    tmp: Path

    def post(self, peer: str, headers: dict[str, str], base: str | None = None) -> int:
        transport = httpx2.HTTPTransport(local_address=peer)
        with httpx2.Client(transport=transport, base_url=base or self.base, timeout=10) as c:
            return c.post(NOTIFY, content=self.body, headers=XML | headers).status_code

    def jobs(self) -> int:
        return len(notified_jobs(self.web.store))


def _header(pem: Path) -> str:
    der = x509.load_pem_x509_certificate(pem.read_bytes()).public_bytes(Encoding.DER)
    return ":" + base64.b64encode(der).decode() + ":"


@pytest.fixture
def proxied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxied]:
    monkeypatch.setenv("GREENBUTTON_SECRET_KEY", Fernet.generate_key().decode())
    sock = _socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with start_simulator(tmp_path / "sim", auto_approve="alice", third_party_url=base) as gb:
        config = WebConfig.for_simulator(
            gb.state_dir,
            database_url=f"sqlite:///{tmp_path / 'web.db'}",
            client_ca=Path(gb.registration["ca_cert"]),
            trusted_proxies=(f"{PROXY}/32",),
            client_cert_header="Client-Cert",
            notify_allow=("10.9.8.0/24",),
            job_poll_seconds=60,
        )
        app = create_app(config)
        with serving(uvicorn_config(app, config, log_config=None), sock):
            web = app.state.greenbutton
            with httpx2.Client(base_url=base, timeout=10) as browser:
                r = browser.get("/connect")
                with gb.portal_client() as portal:
                    callback = portal.get(r.headers["location"]).headers["location"]
                assert browser.get(callback).status_code == 303
            (grant,) = gb.sim.state.grants.values()
            uri = gb.sim.notifier.prepare(
                f"Batch/Subscription/{grant.subscription_id}",
                Window(published_min=1_600_000_000, published_max=1_600_086_400),
            )
            yield Proxied(gb, web, base, batch_list_xml([uri]), tmp_path)


def test_forwarded_certificate_only_from_the_trusted_proxy(proxied: Proxied) -> None:
    p = proxied
    good = _header(p.gb.sim.server_cert)  # issued by the configured client CA
    stranger_cert, _ = _pair(p.tmp, "greenbutton simulator", new_ca("another CA"), client=True)
    other = _header(stranger_cert)
    allowed = {"X-Forwarded-For": "10.9.8.7"}
    refused: list[tuple[str, dict[str, str]]] = [
        # R32: a direct peer with a forged certificate header or forwarding header
        (DIRECT, {"Client-Cert": good} | allowed),
        (DIRECT, {"Client-Cert": good}),
        (DIRECT, allowed),
        # R40: the allowlist is not bypassed by a forged X-Forwarded-For from a direct peer,
        # and behind the proxy the rightmost untrusted address is the caller
        (PROXY, {"Client-Cert": good, "X-Forwarded-For": "203.0.113.5"}),
        (PROXY, {"Client-Cert": good, "X-Forwarded-For": "10.9.8.7, 203.0.113.5"}),
        (PROXY, {"Client-Cert": good, "X-Forwarded-For": "not-an-ip"}),
        (PROXY, {"Client-Cert": good}),  # the proxy's own address is not allowlisted
        # via the proxy: no certificate, another CA's, garbage
        (PROXY, allowed),
        (PROXY, {"Client-Cert": other} | allowed),
        (PROXY, {"Client-Cert": ":bm90IGEgY2VydA==:"} | allowed),
        (PROXY, {"Client-Cert": good.strip(":")} | allowed),
    ]
    for peer, headers in refused:
        assert p.post(peer, headers) == 403, (peer, headers)
    assert p.jobs() == 0

    # the proxy forwarding the custodian's certificate for an allowlisted caller: queued
    forwarded = {"Client-Cert": good, "X-Forwarded-For": f"203.0.113.5, 10.9.8.7, {PROXY}"}
    assert p.post(PROXY, forwarded) == 200
    assert p.jobs() == 1


def test_allowlist_applies_to_the_tcp_peer_without_a_proxy(
    proxied: Proxied, tmp_path: Path
) -> None:
    """No trusted proxy: X-Forwarded-For is ignored, the TCP peer alone decides (R40)."""
    p = proxied
    sock = _socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = WebConfig.for_simulator(
        p.gb.state_dir,
        database_url=f"sqlite:///{p.tmp / 'web.db'}",
        notify_allow=(f"{PROXY}/32",),
        job_poll_seconds=60,
    )
    app = create_app(config)
    with serving(uvicorn_config(app, config, log_config=None), sock):
        assert p.post(DIRECT, {"X-Forwarded-For": PROXY}, base) == 403
        assert p.jobs() == 0
        assert p.post(PROXY, {}, base) == 200
        assert p.jobs() == 1
