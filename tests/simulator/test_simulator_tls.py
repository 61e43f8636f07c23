"""The simulator's listeners, PKI and state folder, over real sockets with real TLS.

The apps behind the listeners are placeholders here: what is under test is who gets through
the TLS handshake (SECURITY R68/R69, b6), not what the apps answer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from greenbutton import ConfigurationError
from greenbutton.cli import cli
from greenbutton.simulator import SimulatorConfig
from greenbutton.simulator._bootstrap import bootstrap, demo_customer, is_loopback
from greenbutton.simulator._pki import (
    PKIFiles,
    ensure_pki,
    issue_certificate,
    load_pair,
    new_ca,
    write_cert,
    write_key,
)
from greenbutton.simulator._server import SimulatorServer, server_ssl_context
from tests.simulator_harness import (
    SimulatorHandle,
    notification_receiver,
    placeholder_app,
    start_simulator,
)

CONTRACT_KEYS = {
    "registration_access_token",  # DESIGN 3.7: a third party need not read state.json
    "application_information_id",
    "bulk_id",
    "client_id",
    "client_secret",
    "client_cert",
    "client_key",
    "ca_cert",
    "authorize_url",
    "token_url",
    "resource_url",
    "redirect_uri",
    "notification_uri",
    "scope",
    "customers",
}


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(
        tmp_path / "state", portal_app=placeholder_app, api_app=placeholder_app
    ) as handle:
        yield handle


def _mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _no_http_answer(client: httpx2.Client, url: str) -> None:
    """The request must die in TLS: under TLS 1.2 at the handshake (ConnectError); under
    TLS 1.3 the client finishes first and the server's rejection surfaces on the first read.
    Either way, no HTTP response may come back."""
    with pytest.raises(httpx2.TransportError) as info:
        client.get(url)
    assert isinstance(
        info.value, httpx2.ConnectError | httpx2.ReadError | httpx2.RemoteProtocolError
    )


# -- registration.json and the state folder ----------------------------------------------------


def test_registration_json_is_the_contract(gb: SimulatorHandle) -> None:
    reg = gb.registration
    assert set(reg) == CONTRACT_KEYS
    for key in ("client_cert", "client_key", "ca_cert"):
        assert Path(reg[key]).is_absolute() and Path(reg[key]).is_file()
    assert _mode(reg["client_key"]) == 0o600
    assert _mode(gb.state_dir / "registration.json") == 0o600  # it holds the client secret
    assert _mode(gb.state_dir / "state.json") == 0o600
    assert reg["authorize_url"] == gb.portal_url + "/myAuthorization"
    assert reg["token_url"] == gb.api_url + "/datacustodian/oauth/v2/token"
    assert reg["resource_url"] == gb.api_url + "/GreenButtonConnect/espi/1_1/resource"
    assert reg["redirect_uri"] == "http://127.0.0.1:3000/OAuthCallback"
    assert reg["notification_uri"] == "http://127.0.0.1:3000/espi/1_1/Notification"
    assert [c["username"] for c in reg["customers"]] == ["alice", "bob", "carol"]
    assert all(set(c) == {"username", "password"} for c in reg["customers"])
    assert len(reg["client_secret"]) >= 22  # >= 128 bits (R69)
    assert gb.portal_url != gb.api_url


def test_client_key_meets_gba_tc008(gb: SimulatorHandle) -> None:
    cert = x509.load_pem_x509_certificate(Path(gb.registration["client_cert"]).read_bytes())
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku


def test_server_key_meets_gba_tc008_and_an_old_ec_one_is_reissued(tmp_path: Path) -> None:
    """Issue 14 / GBA TC008: the custodian's own key is RSA >= 2048 (it was EC P-256); a
    state folder holding an EC server certificate of an older version gets a new one, the
    CA and the client certificate kept."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from greenbutton.simulator._pki import (
        LOOPBACK_NAMES,
        PKIFiles,
        ensure_pki,
        issue_certificate,
        load_pair,
        write_cert,
        write_key,
    )

    files = ensure_pki(tmp_path)
    key = x509.load_pem_x509_certificate(files.server_cert.read_bytes()).public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048
    ca = load_pair(files.ca_cert, files.ca_key)
    assert ca is not None
    old = issue_certificate(ca, "greenbutton simulator", server_names=LOOPBACK_NAMES, client=True)
    assert isinstance(old.cert.public_key(), ec.EllipticCurvePublicKey)
    write_key(files.server_key, old)
    write_cert(files.server_cert, old)
    client_before = files.client_cert.read_bytes()
    again = ensure_pki(tmp_path)
    assert isinstance(again, PKIFiles)
    key = x509.load_pem_x509_certificate(again.server_cert.read_bytes()).public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048
    assert again.client_cert.read_bytes() == client_before


def test_registration_json_removed_after_stop(tmp_path: Path) -> None:
    with start_simulator(tmp_path, portal_app=placeholder_app, api_app=placeholder_app) as gb:
        path = gb.state_dir / "registration.json"
        assert path.exists()
    assert not path.exists()


# -- the portal: server TLS only -----------------------------------------------------------


def test_portal_answers_without_client_certificate(gb: SimulatorHandle) -> None:
    with gb.portal_client() as client:
        r = client.get("/myAuthorization")
    assert r.status_code == 200
    assert r.json()["scheme"] == "https"


def test_portal_certificate_names_every_loopback_address(gb: SimulatorHandle) -> None:
    cert = x509.load_pem_x509_certificate(gb.sim.server_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(san.get_values_for_type(x509.DNSName))
    names |= {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    assert {"localhost", "127.0.0.1", "::1"} <= names
    with gb.portal_client() as client:  # and hostname checking passes via "localhost"
        url = gb.portal_url.replace("127.0.0.1", "localhost")
        assert client.get(url + "/").status_code == 200


# -- the API: mutual TLS -------------------------------------------------------------------


def test_api_without_client_certificate_fails_in_tls(gb: SimulatorHandle) -> None:
    with gb.client(client_cert=False) as client:
        _no_http_answer(client, gb.registration["resource_url"] + "/ReadServiceStatus")


def test_api_without_client_certificate_fails_at_tls12_handshake(gb: SimulatorHandle) -> None:
    ctx = gb.ssl_context(client_cert=False)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        httpx2.Client(verify=ctx, trust_env=False, timeout=10) as client,
        pytest.raises(httpx2.ConnectError),
    ):
        client.get(gb.registration["token_url"])


def _foreign_client(tmp_path: Path, gb: SimulatorHandle) -> ssl.SSLContext:
    """A good-looking client certificate from another CA (b6: unknown issuer)."""
    other = issue_certificate(new_ca("someone else's CA"), "impostor", client=True, rsa_bits=2048)
    cert, key = tmp_path / "other-cert.pem", tmp_path / "other-key.pem"
    write_cert(cert, other)
    write_key(key, other)
    ctx = gb.ssl_context(client_cert=False)
    ctx.load_cert_chain(cert, key)
    return ctx


def test_api_rejects_client_certificate_from_another_ca(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    with httpx2.Client(verify=_foreign_client(tmp_path, gb), trust_env=False) as client:
        _no_http_answer(client, gb.registration["token_url"])


def test_api_rejects_self_signed_client_certificate(gb: SimulatorHandle, tmp_path: Path) -> None:
    ca = new_ca("greenbutton simulator CA")  # same name as ours, different key
    cert, key = tmp_path / "self-cert.pem", tmp_path / "self-key.pem"
    write_cert(cert, ca)
    write_key(key, ca)
    ctx = gb.ssl_context(client_cert=False)
    ctx.load_cert_chain(cert, key)
    with httpx2.Client(verify=ctx, trust_env=False) as client:
        _no_http_answer(client, gb.registration["token_url"])


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_api_accepts_the_registered_client_certificate(
    gb: SimulatorHandle, version: ssl.TLSVersion
) -> None:
    ctx = gb.ssl_context()
    ctx.minimum_version = ctx.maximum_version = version
    with httpx2.Client(verify=ctx, trust_env=False, timeout=10) as client:
        r = client.post(gb.registration["token_url"])
        missing = client.get(gb.registration["resource_url"].replace("/GreenButton", "/missing"))
    assert r.status_code == 200 and r.json()["path"] == "/datacustodian/oauth/v2/token"
    assert missing.status_code == 404  # any HTTP answer proves the handshake passed


# -- protocol floor (GBA TC003/TC005) ------------------------------------------------------


def _old_tls_client(ca_cert: str, version: ssl.TLSVersion) -> ssl.SSLContext:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        ctx.minimum_version = ctx.maximum_version = version
    ctx.load_verify_locations(ca_cert)
    return ctx


def _memory_handshake(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext) -> None:
    """Run a TLS handshake between two contexts through memory buffers (no sockets)."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    pending = {"client": True, "server": True}
    for _ in range(20):
        for name, obj, out, peer in (
            ("client", client, c_out, s_in),
            ("server", server, s_out, c_in),
        ):
            if pending[name]:
                try:
                    obj.do_handshake()
                    pending[name] = False
                except ssl.SSLWantReadError:
                    pass
            if data := out.read():
                peer.write(data)
        if not any(pending.values()):
            return
    raise AssertionError("handshake did not finish")


def _client_can_speak(version: ssl.TLSVersion, gb: SimulatorHandle) -> bool:
    """Whether this OpenSSL can do ``version`` at all (so a refusal is the server's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        lenient = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        lenient.set_ciphers("ALL:@SECLEVEL=0")
        lenient.minimum_version = version
    lenient.load_cert_chain(gb.sim.server_cert, gb.sim.server_key)
    try:
        _memory_handshake(_old_tls_client(gb.registration["ca_cert"], version), lenient)
    except ssl.SSLError:
        return False
    return True


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
@pytest.mark.parametrize("listener", ["portal", "api"])
def test_tls_below_1_2_is_refused(
    gb: SimulatorHandle, version: ssl.TLSVersion, listener: str
) -> None:
    for ctx in (
        server_ssl_context(gb.sim, require_client_cert=False),
        server_ssl_context(gb.sim, require_client_cert=True),
    ):
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
        assert not any("NULL" in c["name"] or "EXP" in c["name"] for c in ctx.get_ciphers())
    if not _client_can_speak(version, gb):
        pytest.skip(f"this OpenSSL cannot speak {version.name} even to a lenient server")
    ctx = _old_tls_client(gb.registration["ca_cert"], version)
    if listener == "api":
        ctx.load_cert_chain(gb.registration["client_cert"], gb.registration["client_key"])
    url = gb.portal_url if listener == "portal" else gb.api_url
    with httpx2.Client(verify=ctx, trust_env=False, timeout=10) as client:
        with pytest.raises(httpx2.ConnectError):
            client.get(url + "/")


# -- state folder reuse and safety (R69) ---------------------------------------------------


def test_restart_reuses_credentials_and_certificates(tmp_path: Path) -> None:
    apps = {"portal_app": placeholder_app, "api_app": placeholder_app}
    with start_simulator(tmp_path, **apps) as first:
        reg1 = first.registration
        pems = {k: Path(reg1[k]).read_bytes() for k in ("client_cert", "client_key", "ca_cert")}
        server_pem = first.sim.server_cert.read_bytes()
    with start_simulator(tmp_path, **apps) as second:
        reg2 = second.registration
        for key in ("client_id", "client_secret", "customers", "scope", "redirect_uri"):
            assert reg2[key] == reg1[key]
        assert {k: Path(reg2[k]).read_bytes() for k in pems} == pems
        assert second.sim.server_cert.read_bytes() == server_pem
        assert second.sim.state.registration == first.sim.state.registration
        with second.api_client() as client:  # the old certificate still opens the API
            assert client.get("/").status_code == 200


def test_more_customers_extend_the_list(tmp_path: Path) -> None:
    three = bootstrap(SimulatorConfig(state_dir=tmp_path, customers=3)).state.customers
    five = bootstrap(SimulatorConfig(state_dir=tmp_path, customers=5)).state.customers
    assert list(five) == ["alice", "bob", "carol", "dave", "erin"]
    assert [five[n] for n in three] == list(three.values())  # passwords kept
    again = bootstrap(SimulatorConfig(state_dir=tmp_path, customers=2)).state.customers
    assert list(again) == ["alice", "bob"]
    assert bootstrap(SimulatorConfig(state_dir=tmp_path, customers=5)).state.customers == five


def test_customers_are_deterministic_but_passwords_are_not(tmp_path: Path) -> None:
    a = bootstrap(SimulatorConfig(state_dir=tmp_path / "a", customers=12)).state.customers
    b = bootstrap(SimulatorConfig(state_dir=tmp_path / "b", customers=12)).state.customers
    assert list(a)[-2:] == ["customer011", "customer012"]
    for name in a:
        assert dataclasses.replace(a[name], password="") == dataclasses.replace(
            b[name], password=""
        )
        assert a[name].password != b[name].password
        assert 1 <= len(a[name].usage_points) <= 3
    profiles = {u.profile for c in a.values() for u in c.usage_points}
    assert profiles == {"electric_15min", "electric_hourly", "solar_net", "gas_daily"}
    assert any(u.with_cost for c in a.values() for u in c.usage_points)
    ids = [c.subscription_id for c in a.values()] + [
        u.id for c in a.values() for u in c.usage_points
    ]
    assert len(ids) == len(set(ids))
    other_seed = demo_customer(7, 0)
    assert (
        other_seed.username == "alice" and other_seed.subscription_id != a["alice"].subscription_id
    )


def test_third_party_url_change_keeps_secrets(tmp_path: Path) -> None:
    first = bootstrap(SimulatorConfig(state_dir=tmp_path)).state.registration
    second = bootstrap(
        SimulatorConfig(state_dir=tmp_path, third_party_url="https://tp.example:8443/")
    ).state.registration
    assert second.client_secret == first.client_secret
    assert second.redirect_uri == "https://tp.example:8443/OAuthCallback"
    assert second.notification_uri == "https://tp.example:8443/espi/1_1/Notification"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_non_loopback_host_is_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigurationError, match="--allow-non-loopback"):
        bootstrap(SimulatorConfig(state_dir=tmp_path / "s", host=host))
    assert not (tmp_path / "s").exists()  # refused before anything was written


def test_loopback_secrets_are_not_reused_on_the_network(tmp_path: Path) -> None:
    local = bootstrap(SimulatorConfig(state_dir=tmp_path))
    exposed = bootstrap(
        SimulatorConfig(state_dir=tmp_path, host="0.0.0.0", allow_insecure_bind=True)
    )
    old, new = local.state.registration, exposed.state.registration
    assert new.client_id != old.client_id
    assert new.client_secret != old.client_secret
    assert new.registration_access_token != old.registration_access_token
    assert exposed.state.customers["alice"].password != local.state.customers["alice"].password
    # Secrets made for the network bind are kept for the next network start.
    again = bootstrap(SimulatorConfig(state_dir=tmp_path, host="0.0.0.0", allow_insecure_bind=True))
    assert again.state.registration == new


def test_loopback_secrets_regenerate_the_pki_for_the_network(tmp_path: Path) -> None:
    bootstrap(SimulatorConfig(state_dir=tmp_path))
    files = PKIFiles.in_dir(tmp_path)
    before = {p: p.read_bytes() for p in (files.ca_key, files.client_key, files.server_key)}
    bootstrap(SimulatorConfig(state_dir=tmp_path, host="0.0.0.0", allow_insecure_bind=True))
    assert all(p.read_bytes() != old for p, old in before.items())


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.5.5.5", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("localhost.evil", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_auto_approve_must_name_a_customer(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not a customer"):
        bootstrap(SimulatorConfig(state_dir=tmp_path, auto_approve="mallory"))
    assert bootstrap(SimulatorConfig(state_dir=tmp_path, auto_approve="bob")).config.auto_approve


# -- PKI renewal (b6) ----------------------------------------------------------------------


def _expired_client(files: PKIFiles) -> None:
    ca = load_pair(files.ca_cert, files.ca_key)
    assert ca is not None
    old = issue_certificate(
        ca,
        "greenbutton third party",
        client=True,
        rsa_bits=2048,
        days=30,
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=31),
    )
    write_cert(files.client_cert, old)
    write_key(files.client_key, old)


def test_expired_or_missing_files_are_regenerated_others_kept(tmp_path: Path) -> None:
    files = ensure_pki(tmp_path)
    ca_pem = files.ca_cert.read_bytes()
    server_pem = files.server_cert.read_bytes()
    _expired_client(files)
    ensure_pki(tmp_path)
    client = x509.load_pem_x509_certificate(files.client_cert.read_bytes())
    assert client.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=300)
    assert files.ca_cert.read_bytes() == ca_pem and files.server_cert.read_bytes() == server_pem

    files.ca_key.unlink()  # a new CA must re-issue both leaves
    ensure_pki(tmp_path)
    assert files.ca_cert.read_bytes() != ca_pem
    assert files.server_cert.read_bytes() != server_pem
    assert all(_mode(p) == 0o600 for p in (files.ca_key, files.server_key, files.client_key))


def test_loosened_key_mode_is_tightened(tmp_path: Path) -> None:
    files = ensure_pki(tmp_path)
    os.chmod(files.client_key, 0o644)
    ensure_pki(tmp_path)
    assert _mode(files.client_key) == 0o600


# -- CLI -----------------------------------------------------------------------------------


def test_cli_refuses_non_loopback_with_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["simulator", "--state-dir", str(tmp_path), "--host", "0.0.0.0"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: refusing to listen on '0.0.0.0'")
    assert result.stderr.count("\n") == 1 and not result.stdout


def test_cli_help_lists_the_contract_options() -> None:
    result = CliRunner().invoke(cli, ["simulator", "--help"])
    assert result.exit_code == 0
    for option in (
        "--state-dir",
        "--host",
        "--portal-port",
        "--api-port",
        "--auto-approve",
        "--third-party-url",
        "--customers",
        "--allow-non-loopback",
    ):
        assert option in result.output


def _interrupt_when_ready(argv: list[str], state_dir: Path) -> tuple[int, str, str, dict[str, Any]]:
    """Run ``argv`` until ``registration.json`` appears, then Ctrl-C it."""
    proc = subprocess.Popen(
        argv,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (state_dir / "registration.json").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        reg = json.loads((state_dir / "registration.json").read_text())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert not (state_dir / "registration.json").exists()  # removed on a clean stop
    return proc.returncode, out, err, reg


# The CLI as a user runs it, with the placeholder apps standing in for the real ones.
_CLI_WITH_PLACEHOLDERS = """
import sys
from greenbutton.cli import main
from greenbutton.simulator import _server
from tests.simulator_harness import placeholder_app

_server._default_factories = lambda: (placeholder_app, placeholder_app)
main(sys.argv[1:])
"""


def test_cli_prints_next_steps_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    args = ["simulator", "--state-dir", str(tmp_path), "--customers", "7"]
    args += ["--auto-approve", "bob", "--latency-ms", "5", "--third-party-url", "http://[::1]:4000"]
    code, out, err, reg = _interrupt_when_ready(
        [sys.executable, "-c", _CLI_WITH_PLACEHOLDERS, *args], tmp_path
    )
    assert code == 0, err
    assert err == "Simulator stopped.\n"
    assert out.startswith("Green Button data custodian simulator is running.\n")
    assert out.endswith("Press Ctrl-C to stop.\n")
    for key in ("authorize_url", "token_url", "client_id", "client_cert", "client_key", "ca_cert"):
        assert reg[key] in out, key
    assert reg["client_secret"] not in out  # the secret stays in the 0600 file
    assert reg["redirect_uri"] == "http://[::1]:4000/OAuthCallback"
    for customer in reg["customers"][:5]:
        assert re.search(rf"\n +{customer['username']} +{re.escape(customer['password'])}\n", out)
    assert "... and 2 more in registration.json" in out
    assert "Auto-approve is on for bob" in out
    assert f"curl --cacert {reg['ca_cert']}" in out


def test_cli_runs_with_the_real_apps(tmp_path: Path) -> None:
    pytest.importorskip("greenbutton.simulator._apps", reason="the lead's _apps.py is not in yet")
    code, out, err, reg = _interrupt_when_ready(
        [sys.executable, "-m", "greenbutton", "simulator", "--state-dir", str(tmp_path)], tmp_path
    )
    assert code == 0, err
    assert reg["client_id"] in out and "alice" in out


def test_busy_port_is_a_configuration_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"cannot listen on 127.0.0.1 port {port}"):
            SimulatorServer(
                SimulatorConfig(state_dir=tmp_path, api_port=port),
                portal_app=placeholder_app,
                api_app=placeholder_app,
            )


def test_notification_receiver_records_posts() -> None:
    with notification_receiver() as inbox:
        r = httpx2.post(inbox.base_url + "/espi/1_1/Notification", content=b"<BatchList/>")
        assert r.status_code == 200
        assert inbox.wait(5) == b"<BatchList/>"


def test_ipv6_loopback_listeners(tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    apps = {"portal_app": placeholder_app, "api_app": placeholder_app}
    with start_simulator(tmp_path, host="::1", **apps) as gb:
        assert gb.api_url.startswith("https://[::1]:")
        with gb.api_client() as client:
            assert client.get("/").status_code == 200
        with gb.client(client_cert=False) as client:
            _no_http_answer(client, gb.api_url + "/")


# -- certificate-bound tokens (R31, RFC 8705 §3) -------------------------------------------------


def _client_token(http: httpx2.Client, reg: dict[str, Any]) -> str:
    r = http.post(
        reg["token_url"],
        data={"grant_type": "client_credentials"},
        auth=(reg["client_id"], reg["client_secret"]),
    )
    assert r.status_code == 200, r.text
    token = r.json()["client_access_token"]
    assert isinstance(token, str)
    return token


def _second_client_cert(gb: SimulatorHandle, tmp_path: Path) -> tuple[httpx2.Client, str]:
    """An API client presenting another certificate from the simulator's CA, and its
    x5t#S256 thumbprint."""
    from greenbutton.simulator._binding import thumbprint

    files = PKIFiles.in_dir(gb.state_dir)
    ca = load_pair(files.ca_cert, files.ca_key)
    assert ca is not None
    other = issue_certificate(ca, "another third party", client=True)
    cert, key = tmp_path / "other-cert.pem", tmp_path / "other-key.pem"
    write_cert(cert, other)
    write_key(key, other)
    ctx = ssl.create_default_context(cafile=gb.registration["ca_cert"])
    ctx.load_cert_chain(cert, key)
    http = httpx2.Client(verify=ctx, trust_env=False, timeout=10.0)
    return http, thumbprint(other.cert.public_bytes(serialization.Encoding.DER))


@pytest.mark.parametrize("bind", [False, True])
def test_bound_token_is_refused_over_another_certificate(tmp_path: Path, bind: bool) -> None:
    from greenbutton.simulator._binding import thumbprint
    from greenbutton.simulator._oauth import token_calls

    with start_simulator(tmp_path / "sim", customers=1, bind_tokens=bind) as sim:
        reg = sim.registration
        cert = x509.load_pem_x509_certificate(Path(reg["client_cert"]).read_bytes())
        ours = thumbprint(cert.public_bytes(serialization.Encoding.DER))
        with sim.api_client() as http:
            token = _client_token(http, reg)
            url = f"{reg['resource_url']}/ReadServiceStatus"
            auth = {"Authorization": f"Bearer {token}"}
            assert http.get(url, headers=auth).status_code == 200
        assert token_calls(sim.sim)[-1].client_cert_sha256 == ours  # what the endpoint saw
        assert sim.sim.token_bindings == ({token: ours} if bind else {})
        other, theirs = _second_client_cert(sim, tmp_path)
        with other:
            r = other.get(url, headers=auth)
        if not bind:  # default: any certificate of the CA may carry any token, as before
            assert r.status_code == 200
            assert sim.sim.binding_rejections == []
            return
        assert r.status_code == 401
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        assert [(x.presented, x.bound) for x in sim.sim.binding_rejections] == [(theirs, ours)]


def test_issue_client_certificate_replaces_the_registered_files(tmp_path: Path) -> None:
    from greenbutton.simulator._binding import issue_client_certificate

    with start_simulator(
        tmp_path / "sim", portal_app=placeholder_app, api_app=placeholder_app
    ) as sim:
        reg = sim.registration
        before = load_pair(Path(reg["client_cert"]), Path(reg["client_key"]))
        assert before is not None
        issue_client_certificate(sim.sim, rsa_bits=None)
        after = load_pair(Path(reg["client_cert"]), Path(reg["client_key"]))
        assert after is not None  # a matching pair
        assert after.cert.serial_number != before.cert.serial_number
        assert after.cert.subject == before.cert.subject  # the same third party
        assert after.cert.issuer == before.cert.issuer
        assert _mode(reg["client_key"]) == 0o600
        with sim.api_client() as http:  # the CA trusts it at the handshake
            assert http.get("/ok").status_code == 200


def test_cli_help_lists_bind_tokens() -> None:
    result = CliRunner().invoke(cli, ["simulator", "--help"])
    assert result.exit_code == 0
    assert "--bind-tokens" in result.output
