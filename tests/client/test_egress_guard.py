"""SECURITY R47: the egress guard. Before connecting, the client resolves the custodian host
once, refuses unless every address is public (or the profile is marked ``local``), and
connects to the checked address, so DNS rebinding cannot redirect it; TLS still verifies
the host name.

DNS is a stub (``resolver=``); a loopback listener and a counter on
``socket.create_connection`` prove that a refusal makes no connection at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpcore2
import httpx2
import pytest

from greenbutton import Client
from greenbutton._errors import ConnectError, GreenButtonError
from greenbutton._secret import Secret
from greenbutton.client._config import credentials_from_registration, load_config
from greenbutton.client._transport import (
    EgressDenied,
    EgressGuard,
    GuardedBackend,
    address_problem,
    make_async_client,
    make_client,
)
from greenbutton.models._profile import PGE, Credentials, UtilityProfile
from greenbutton.simulator._pki import issue_certificate, new_ca, write_cert, write_key
from tests.simulator_harness import SimulatorHandle, start_simulator

NAME = "dc.example.com"  # a public-looking custodian host
PUBLIC = "93.184.215.14"


class Listener:
    """A loopback TCP listener that counts the connections it accepts and drops them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ``socket.create_connection`` call (httpcore2's sync backend connects with it)."""
    calls: list[Any] = []
    real = socket.create_connection

    def counting(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        calls.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", counting)
    return calls


@pytest.fixture(scope="module")
def creds(tmp_path_factory: pytest.TempPathFactory) -> Credentials:
    """A real client certificate (make_client reads it); no custodian will ever see it."""
    folder = tmp_path_factory.mktemp("certs")
    pair = issue_certificate(new_ca("egress test CA"), "tp", client=True, rsa_bits=None)
    cert, key = folder / "cert.pem", folder / "key.pem"
    write_cert(cert, pair)
    write_key(key, pair)
    os.chmod(key, 0o600)
    return Credentials(client_id="tp", client_secret=Secret("s"), client_cert=cert, client_key=key)


def profile_for(port: int, *, local: bool = False, host: str = NAME) -> UtilityProfile:
    base = f"https://{host}:{port}"
    return UtilityProfile(
        name="remote",
        authorize_url=base + "/authorize",
        token_url=base + "/token",
        resource_url=base + "/espi/1_1/resource",
        local=local,
    )


class Stub:
    """DNS: each lookup of ``NAME`` gets the next answer (the last one repeats)."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host != NAME and host != "localhost":
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        return list(self.answers.pop(0) if len(self.answers) > 1 else self.answers[0])


@pytest.mark.parametrize(
    "answer",
    [
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["::ffff:10.0.0.1"],
        [PUBLIC, "127.0.0.1"],  # every address is checked, not only the first
        ["::ffff:127.0.0.1"],
    ],
)
def test_private_answers_are_refused_without_a_connection(
    answer: list[str], creds: Credentials, listener: Listener, connects: list[Any]
) -> None:
    """R47: a public name resolving to loopback, cloud metadata or IPv4-mapped RFC 1918 is
    refused with a typed error, and no socket is opened (the listener accepts nothing)."""
    stub = Stub(answer)
    with make_client(profile_for(listener.port), creds, resolver=stub) as client:
        with pytest.raises(EgressDenied) as info:
            client.post(profile_for(listener.port).token_url, data={"grant_type": "x"})
    error = info.value
    assert isinstance(error, ConnectError) and isinstance(error, GreenButtonError)
    assert NAME in str(error) and "R47" in str(error) and "local" in str(error)
    assert any(a in str(error) for a in answer if a != PUBLIC)
    assert stub.lookups == [NAME]  # resolved once
    assert connects == [] and listener.accepted == 0


def test_sdk_client_refuses_and_does_not_retry(
    creds: Credentials, listener: Listener, connects: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """R47 through the SDK: the refusal reaches the caller as EgressDenied, unretried (a
    retry would resolve again)."""
    import greenbutton.client._transport as transport

    stub = Stub(["169.254.169.254"])
    monkeypatch.setattr(transport, "resolve", stub)
    with Client(profile_for(listener.port), creds) as client, pytest.raises(EgressDenied):
        client.client_token()
    assert stub.lookups == [NAME] and connects == [] and listener.accepted == 0


def test_async_client_refuses(creds: Credentials, listener: Listener) -> None:
    """R47 for ``make_async_client`` (the AsyncClient's transport)."""
    stub = Stub(["::ffff:10.0.0.1"])

    async def main() -> None:
        profile = profile_for(listener.port)
        async with make_async_client(profile, creds, resolver=stub) as client:
            with pytest.raises(EgressDenied):
                await client.get(profile.resource_url + "/ReadServiceStatus")

    asyncio.run(main())
    assert stub.lookups == [NAME] and listener.accepted == 0


def test_local_profile_may_reach_loopback(creds: Credentials, listener: Listener) -> None:
    """R47: a profile marked local (the simulator) connects to loopback; the listener drops
    the connection, so the request fails later, at TLS, not at the guard."""
    stub = Stub(["127.0.0.1"])
    profile = profile_for(listener.port, local=True)
    with make_client(profile, creds, resolver=stub) as client:
        with pytest.raises(httpx2.TransportError):
            client.get(profile.resource_url)
    assert listener.accepted == 1


def test_unspecified_and_multicast_are_refused_even_when_local() -> None:
    """Neither 0.0.0.0 nor a multicast group is ever a custodian, local or not."""
    for address in ("0.0.0.0", "::", "224.0.0.1", "ff02::1"):
        guard = EgressGuard(allow_local=True, resolver=lambda h, p, a=address: [a])
        with pytest.raises(EgressDenied):
            guard.addresses(NAME, 443)


class Recorder(httpcore2.NetworkBackend):
    """Records what the guarded backend asks the real backend to connect to."""

    def __init__(self) -> None:
        self.hosts: list[str] = []

    def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.hosts.append(host)
        raise httpcore2.ConnectError("recorded, not connected")


def test_connection_is_pinned_to_the_checked_address() -> None:
    """R47, no check-then-resolve gap: the real backend is handed the checked IP literal,
    never the name, so a DNS answer that changes after the check (rebinding) is not used;
    the next connection resolves and checks again and is refused."""
    stub = Stub([PUBLIC], ["127.0.0.1"])
    inner = Recorder()
    backend = GuardedBackend(EgressGuard(resolver=stub), inner=inner)
    with pytest.raises(httpcore2.ConnectError):
        backend.connect_tcp(NAME, 443)
    assert inner.hosts == [PUBLIC] and stub.lookups == [NAME]
    with pytest.raises(EgressDenied):
        backend.connect_tcp(NAME, 443)
    assert inner.hosts == [PUBLIC] and stub.lookups == [NAME, NAME]


def test_tls_still_checks_the_host_name(tmp_path: Path) -> None:
    """R47 + R28: pinned to 127.0.0.1, the simulator answers a name on its certificate
    (``localhost``) and fails the handshake for one that is not (``dc.example.com``)."""
    with start_simulator(tmp_path / "sim") as gb:
        reg = gb.registration
        creds = credentials_from_registration(reg)
        port = int(reg["token_url"].split(":")[2].split("/")[0])
        for host, ok in (("localhost", True), (NAME, False)):
            profile = dataclasses.replace(
                UtilityProfile.simulator(reg), token_url=f"https://{host}:{port}/x"
            )
            stub = Stub(["127.0.0.1"])
            with make_client(profile, creds, resolver=stub) as client:
                if ok:
                    assert client.get(profile.token_url).status_code in (404, 405)
                else:
                    with pytest.raises(httpx2.ConnectError, match="(?i)hostname|certificate"):
                        client.get(profile.token_url)
            assert stub.lookups == [host]


def test_simulator_profile_still_works(tmp_path: Path) -> None:
    """The simulator profile is local (R47) and the real DNS-free path (IP literal) works."""
    with start_simulator(tmp_path / "sim", auto_approve="alice") as gb:
        sim: SimulatorHandle = gb
        assert UtilityProfile.simulator(sim.registration).local
        with Client.for_simulator(sim.state_dir / "registration.json") as client:
            assert client.client_token().access_token


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "192.0.2.1",  # documentation
        "::",
        "::1",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd12:3456::1",  # unique local
        "ff02::1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2001:db8::1",
        "not-an-address",
    ],
)
def test_address_problem_refuses(address: str) -> None:
    """R47: the ranges the guard refuses, IPv4 inside IPv6 judged by its IPv4."""
    assert address_problem(address) is not None


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_address_problem_accepts_public(address: str) -> None:
    assert address_problem(address) is None


def test_profiles_local_flag(tmp_path: Path, creds: Credentials) -> None:
    """R47: ``local`` is False unless marked; the config file marks a table local when its
    three endpoints are loopback IP literals or when it says ``local = true``."""
    assert not PGE.local
    tables = {
        "loop": ("https://127.0.0.1:1/a", "https://[::1]:1/t", "https://127.0.0.1:1/r", ""),
        "named": ("https://localhost:1/a", "https://localhost:1/t", "https://localhost:1/r", ""),
        "lan": ("https://dc.lan/a", "https://dc.lan/t", "https://dc.lan/r", "local = true"),
        "mixed": ("https://127.0.0.1/a", "https://dc.example.com/t", "https://127.0.0.1/r", ""),
    }
    text = "".join(
        f"""
[profile.{name}]
authorize_url = "{a}"
token_url = "{t}"
resource_url = "{r}"
client_id = "tp"
client_secret_env = "SECRET"
client_cert = "{creds.client_cert}"
client_key = "{creds.client_key}"
{extra}
"""
        for name, (a, t, r, extra) in tables.items()
    )
    config = tmp_path / "config.toml"
    config.write_text(text)
    local = {
        name: load_config(config, profile=name, env={"SECRET": "x"})[0].local for name in tables
    }
    assert local == {"loop": True, "named": False, "lan": True, "mixed": False}
