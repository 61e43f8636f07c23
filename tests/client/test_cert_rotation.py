"""Client certificate rotation against certificate-bound tokens (SECURITY R31, RFC 8705).

Real simulator, real TLS: the simulator binds every access token to the thumbprint of the
certificate it was issued over and refuses it over a connection with another certificate;
the simulator's CA issues the third party a new certificate mid-run, written over the files
the client uses (or beside them), and the client must carry on without manual steps.
"""

from __future__ import annotations

import logging
import os
import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from greenbutton import AsyncClient, Client, ConfigurationError
from greenbutton.oauth import InMemoryTokenStore
from greenbutton.simulator._binding import issue_client_certificate, thumbprint
from greenbutton.simulator._oauth import TokenCall, token_calls
from tests.simulator_harness import SimulatorHandle, start_simulator


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(
        tmp_path / "sim", customers=1, auto_approve="alice", bind_tokens=True
    ) as handle:
        yield handle


def _print_of(cert_path: str | Path) -> str:
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    return thumbprint(cert.public_bytes(serialization.Encoding.DER))


def _refreshes(calls: list[TokenCall]) -> list[tuple[int, str | None]]:
    return [(c.status, c.client_cert_sha256) for c in calls if c.grant_type == "refresh_token"]


def _keep_copy(gb: SimulatorHandle, folder: Path) -> tuple[Path, Path]:
    """The third party's current certificate and key, copied aside (key mode kept)."""
    folder.mkdir()
    cert, key = folder / "cert.pem", folder / "key.pem"
    shutil.copy2(gb.registration["client_cert"], cert)
    shutil.copy2(gb.registration["client_key"], key)
    return cert, key


def _replay(gb: SimulatorHandle, cert: Path, key: Path, url: str, token: str) -> httpx2.Response:
    ctx = ssl.create_default_context(cafile=gb.registration["ca_cert"])
    ctx.load_cert_chain(cert, key)
    with httpx2.Client(verify=ctx, trust_env=False, timeout=10.0) as http:
        return http.get(url, headers={"Authorization": f"Bearer {token}"})


def _assert_bound_to_new_certificate(
    gb: SimulatorHandle, store: InMemoryTokenStore, key: str, old: tuple[Path, Path]
) -> None:
    """The token now stored works over the new certificate and is refused over the old."""
    token = store.load(key)
    assert token is not None and token.subscription_id is not None
    value = token.access_token.reveal()
    url = f"{gb.registration['resource_url']}/Subscription/{token.subscription_id}/UsagePoint"
    rejected = len(gb.sim.binding_rejections)
    replayed = _replay(gb, *old, url, value)
    assert replayed.status_code == 401
    assert 'error="invalid_token"' in replayed.headers["www-authenticate"]
    assert len(gb.sim.binding_rejections) == rejected + 1
    assert gb.sim.binding_rejections[-1].presented == _print_of(old[0])
    with gb.api_client() as http:  # the files the registration names: the new certificate
        assert http.get(url, headers={"Authorization": f"Bearer {value}"}).status_code == 200


def test_rotation_on_disk_refreshes_over_the_new_certificate_before_the_next_call(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    store = InMemoryTokenStore()
    key, first = gb.authorize(store)
    old_print = _print_of(gb.registration["client_cert"])
    assert gb.sim.token_bindings[first.access_token.reveal()] == old_print
    with Client.for_simulator(
        gb.state_dir / "registration.json", token_store=store, cert_check_interval=0
    ) as client:
        assert client.usage_points(key, raw=True)
        old = _keep_copy(gb, tmp_path / "old")
        new_print = issue_client_certificate(gb.sim)  # over the files the client reads
        assert new_print != old_print
        seen = len(token_calls(gb.sim))

        assert b"<feed" in client.usage_points(key, raw=True)  # type: ignore[operator]

        assert _refreshes(token_calls(gb.sim)[seen:]) == [(200, new_print)]
        assert gb.sim.binding_rejections == []  # refreshed before the resource call, no 401
        assert client.usage_points(key, raw=True)
        assert _refreshes(token_calls(gb.sim)[seen:]) == [(200, new_print)]  # just the one
    _assert_bound_to_new_certificate(gb, store, key, old)


def test_async_client_rotation_on_disk(gb: SimulatorHandle, tmp_path: Path) -> None:
    store = InMemoryTokenStore()
    key, _ = gb.authorize(store)

    async def main() -> tuple[str, int]:
        async with AsyncClient.for_simulator(
            gb.state_dir / "registration.json", token_store=store, cert_check_interval=0
        ) as client:
            assert await client.usage_points(key, raw=True)
            _keep_copy(gb, tmp_path / "old")
            new_print = issue_client_certificate(gb.sim, rsa_bits=None)
            seen = len(token_calls(gb.sim))
            assert await client.usage_points(key, raw=True)
            assert await client.usage_points(key, raw=True)
            return new_print, seen

    new_print, seen = anyio.run(main)
    assert _refreshes(token_calls(gb.sim)[seen:]) == [(200, new_print)]
    assert gb.sim.binding_rejections == []
    old = (tmp_path / "old" / "cert.pem", tmp_path / "old" / "key.pem")
    _assert_bound_to_new_certificate(gb, store, key, old)


def test_new_process_after_rotation_recovers_through_one_401(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    """A client that never saw the old certificate (a restart after the rotation) still
    holds a token bound to it: R24's one refresh and one retry recover."""
    store = InMemoryTokenStore()
    key, _ = gb.authorize(store)
    old_print = _print_of(gb.registration["client_cert"])
    new_print = issue_client_certificate(gb.sim, rsa_bits=None)
    seen = len(token_calls(gb.sim))
    with Client.for_simulator(gb.state_dir / "registration.json", token_store=store) as client:
        assert client.usage_points(key, raw=True)
    assert _refreshes(token_calls(gb.sim)[seen:]) == [(200, new_print)]
    assert [(r.presented, r.bound) for r in gb.sim.binding_rejections] == [(new_print, old_print)]


def test_explicit_reload_with_new_paths_and_start_up_checks(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    store = InMemoryTokenStore()
    key, _ = gb.authorize(store)
    new_cert, new_key = tmp_path / "new-cert.pem", tmp_path / "new-key.pem"
    registered = (Path(gb.registration["client_cert"]), Path(gb.registration["client_key"]))
    backup = _keep_copy(gb, tmp_path / "registered")
    new_print = issue_client_certificate(gb.sim, new_cert, new_key, rsa_bits=None)
    # The simulator wrote the new pair beside, not over, the registered files.
    shutil.copy2(backup[0], registered[0])
    shutil.copy2(backup[1], registered[1])
    with Client.for_simulator(
        gb.state_dir / "registration.json", token_store=store, cert_check_interval=None
    ) as client:
        assert client.usage_points(key, raw=True)
        seen = len(token_calls(gb.sim))
        with pytest.raises(ConfigurationError, match="does not match"):
            client.reload_certificate(new_cert)  # new certificate, old key: refused
        os.chmod(new_key, 0o644)
        with pytest.raises(ConfigurationError, match="readable by group or others"):
            client.reload_certificate(new_cert, new_key)  # R29 checks run again
        os.chmod(new_key, 0o600)
        assert client.usage_points(key, raw=True)  # still the old certificate, nothing stale
        assert _refreshes(token_calls(gb.sim)[seen:]) == []

        client.reload_certificate(new_cert, new_key)
        assert client.credentials.client_cert == new_cert
        assert client.usage_points(key, raw=True)
    assert _refreshes(token_calls(gb.sim)[seen:]) == [(200, new_print)]
    assert gb.sim.binding_rejections == []


def test_half_written_rotation_keeps_the_old_certificate_until_the_key_arrives(
    gb: SimulatorHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = InMemoryTokenStore()
    key, _ = gb.authorize(store)
    staged_cert, staged_key = tmp_path / "cert.pem", tmp_path / "key.pem"
    new_print = issue_client_certificate(gb.sim, staged_cert, staged_key, rsa_bits=None)
    # issue_client_certificate wrote beside the registered files; nothing changed there yet.
    with Client.for_simulator(
        gb.state_dir / "registration.json", token_store=store, cert_check_interval=0
    ) as client:
        assert client.usage_points(key, raw=True)
        seen = len(token_calls(gb.sim))
        os.replace(staged_cert, gb.registration["client_cert"])  # the key is not there yet
        with caplog.at_level(logging.WARNING, logger="greenbutton"):
            assert client.usage_points(key, raw=True)
        assert "cannot be used yet" in caplog.text
        assert _refreshes(token_calls(gb.sim)[seen:]) == []  # old context, old token: fine

        os.replace(staged_key, gb.registration["client_key"])
        assert client.usage_points(key, raw=True)
    assert _refreshes(token_calls(gb.sim)[seen:]) == [(200, new_print)]
    assert gb.sim.binding_rejections == []


def test_files_are_checked_at_most_once_per_interval(gb: SimulatorHandle) -> None:
    store = InMemoryTokenStore()
    key, _ = gb.authorize(store)
    with Client.for_simulator(
        gb.state_dir / "registration.json", token_store=store, cert_check_interval=3600
    ) as client:
        assert client.usage_points(key, raw=True)
        seen = len(token_calls(gb.sim))
        issue_client_certificate(gb.sim, rsa_bits=None)
        # Not due yet: the old context (still accepted by the CA) and its token go on.
        assert client.usage_points(key, raw=True)
        assert _refreshes(token_calls(gb.sim)[seen:]) == []
        assert gb.sim.binding_rejections == []


def test_rotation_with_a_database_token_store(gb: SimulatorHandle, tmp_path: Path) -> None:
    """The refresh after a rotation goes through the store's row lock (R52) like any other:
    one refresh, saved, and the saved token is the one bound to the new certificate."""
    from greenbutton.oauth import SupportsLockedRefresh
    from greenbutton.storage import DatabaseTokenStore, Store

    store = Store.open(f"sqlite:///{tmp_path / 'gb.db'}")
    tokens = DatabaseTokenStore(store)
    assert isinstance(tokens, SupportsLockedRefresh)
    key, _ = gb.authorize(tokens)
    with Client.for_simulator(
        gb.state_dir / "registration.json", token_store=tokens, cert_check_interval=0
    ) as client:
        assert client.usage_points(key, raw=True)
        new_print = issue_client_certificate(gb.sim, rsa_bits=None)
        seen = len(token_calls(gb.sim))
        assert client.usage_points(key, raw=True)
        assert client.usage_points(key, raw=True)
    assert _refreshes(token_calls(gb.sim)[seen:]) == [(200, new_print)]
    assert gb.sim.binding_rejections == []
    saved = tokens.load(key)
    assert saved is not None
    assert gb.sim.token_bindings[saved.access_token.reveal()] == new_print
    store.close()


def test_reload_while_a_call_runs_lets_it_finish_on_the_old_pool(gb: SimulatorHandle) -> None:
    import threading
    import time

    store = InMemoryTokenStore()
    key, _ = gb.authorize(store)
    client = Client.for_simulator(
        gb.state_dir / "registration.json", token_store=store, cert_check_interval=None
    )
    old_http = client._http
    results: list[object] = []
    gb.sim.faults.latency_ms = 300  # keeps the running call on its connection a while
    worker = threading.Thread(target=lambda: results.append(client.usage_points(key, raw=True)))
    worker.start()
    while worker.is_alive() and client._rotation.leases.current is old_http:
        if client._rotation.leases._users:  # the call holds the old pool: reload now
            new_print = issue_client_certificate(gb.sim, rsa_bits=None)
            client.reload_certificate()
            break
        time.sleep(0.001)
    worker.join(10)
    gb.sim.faults.latency_ms = 0
    assert results and isinstance(results[0], bytes)  # finished, not cut off by the reload
    assert old_http.is_closed  # closed once its last call ended
    assert client._http is not old_http and not client._http.is_closed
    seen = len(token_calls(gb.sim))
    assert client.usage_points(key, raw=True)
    assert _refreshes(token_calls(gb.sim)[seen:]) == [(200, new_print)]
    client.close()
    assert client._http.is_closed
