"""``--notification-path`` and ``--server-key`` (issue 14), over real sockets and real TLS:
the notification URI a third party registers follows the path and the BatchLists arrive
there; the server key is RSA 2048 by default or EC P-256 when asked, and a state folder keeps
the kind it was given until told otherwise."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import greenbutton
from greenbutton import ConfigurationError
from greenbutton.cli import cli
from greenbutton.oauth import InMemoryTokenStore
from greenbutton.simulator import PATHS
from greenbutton.simulator._pki import (
    LOOPBACK_NAMES,
    PKIFiles,
    issue_certificate,
    load_pair,
    write_cert,
    write_key,
)
from tests.simulator_harness import SimulatorHandle, notification_receiver, start_simulator


def _served_key(gb: SimulatorHandle) -> tuple[bytes, object]:
    """The certificate the portal presents in a real handshake (DER) and its public key."""
    host, port = gb.portal_url.removeprefix("https://").rsplit(":", 1)
    ctx = gb.ssl_context(client_cert=False)
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der, x509.load_der_x509_certificate(der).public_key()


# -- --notification-path --------------------------------------------------------------------------


def test_notifications_go_to_the_configured_path(tmp_path: Path) -> None:
    with notification_receiver() as inbox:
        with start_simulator(
            tmp_path / "sim",
            auto_approve="alice",
            third_party_url=inbox.base_url,
            notification_path="/hooks/green-button",
        ) as gb:
            assert gb.registration["notification_uri"] == inbox.base_url + "/hooks/green-button"
            tokens = InMemoryTokenStore()
            _, token = gb.authorize(tokens)
            with gb.api_client() as api:
                bearer = {"Authorization": f"Bearer {token.access_token.reveal()}"}  # type: ignore[union-attr]
                assert api.get(str(token.resource_uri), headers=bearer).status_code == 202
                app = api.get(
                    f"{gb.registration['resource_url']}/ApplicationInformation/"
                    f"{gb.registration['application_information_id']}",
                    headers={
                        "Authorization": f"Bearer {gb.registration['registration_access_token']}"
                    },
                )
            path, _, body = inbox.posts.get(timeout=10)
            assert path == "/hooks/green-button"
            assert greenbutton.parse(body).batch_list is not None
            notify_uri = f"<thirdPartyNotifyUri>{inbox.base_url}/hooks/green-button<"
            assert notify_uri.encode() in app.content
            secret = gb.registration["client_secret"]
        # a restart without the option goes back to the default path, secrets kept
        with start_simulator(tmp_path / "sim", third_party_url=inbox.base_url) as again:
            assert again.registration["notification_uri"] == (
                inbox.base_url + PATHS.THIRD_PARTY_NOTIFY
            )
            assert again.registration["client_secret"] == secret


@pytest.mark.parametrize(
    "path", ["espi/Notification", "/n?x=1", "/n#top", "//evil.example/n", "/a b", ""]
)
def test_a_bad_notification_path_is_refused_before_anything_is_written(
    tmp_path: Path, path: str
) -> None:
    with pytest.raises(ConfigurationError, match="--notification-path must be a path"):
        with start_simulator(tmp_path / "sim", notification_path=path):
            pass
    assert not (tmp_path / "sim").exists()


def test_cli_refuses_a_bad_notification_path_with_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["simulator", "--state-dir", str(tmp_path), "--notification-path", "hook"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --notification-path must be a path")
    assert result.stderr.count("\n") == 1


# -- --server-key ------------------------------------------------------------------------------


def test_server_key_kind_is_kept_until_told_otherwise(tmp_path: Path) -> None:
    state = tmp_path / "sim"
    with start_simulator(state, server_key="ec") as gb:
        ec_cert, key = _served_key(gb)
        assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
        ca = Path(gb.registration["ca_cert"]).read_bytes()
    with start_simulator(state) as gb:  # not told: the folder keeps its EC key
        assert _served_key(gb)[0] == ec_cert
    with start_simulator(state, server_key="rsa") as gb:
        rsa_cert, key = _served_key(gb)
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
        assert Path(gb.registration["ca_cert"]).read_bytes() == ca  # only the leaf changed
    with start_simulator(state) as gb:  # and now keeps the RSA one
        assert _served_key(gb)[0] == rsa_cert


def test_an_ec_key_of_an_older_version_becomes_rsa(tmp_path: Path) -> None:
    """A folder whose EC key nobody asked for (made before RSA was the default) is
    re-issued as RSA 2048 (GBA TC008); one told ``ec`` is not (the test above)."""
    state = tmp_path / "sim"
    with start_simulator(state):
        pass
    files = PKIFiles.in_dir(state)
    ca = load_pair(files.ca_cert, files.ca_key)
    assert ca is not None
    old = issue_certificate(ca, "greenbutton simulator", server_names=LOOPBACK_NAMES, client=True)
    write_key(files.server_key, old)
    write_cert(files.server_cert, old)
    meta = json.loads((state / "meta.json").read_text())
    del meta["server_key"]  # an older version wrote none
    (state / "meta.json").write_text(json.dumps(meta))
    with start_simulator(state) as gb:
        _, key = _served_key(gb)
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048


def test_cli_notification_path_and_ec_server_key(tmp_path: Path) -> None:
    """Both options as a user passes them, to a real process."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenbutton", "simulator", "--state-dir", str(tmp_path),
         "--server-key", "ec", "--notification-path", "/gb/notify",
         "--third-party-url", "http://127.0.0.1:3999"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        path = tmp_path / "registration.json"
        deadline = time.monotonic() + 60
        while not path.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        reg = json.loads(path.read_text())
        assert reg["notification_uri"] == "http://127.0.0.1:3999/gb/notify"
        host, port = reg["authorize_url"].removeprefix("https://").split("/")[0].rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=reg["ca_cert"])
        with (
            socket.create_connection((host, int(port)), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        assert isinstance(
            x509.load_der_x509_certificate(der).public_key(), ec.EllipticCurvePublicKey
        )
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_cli_help_names_both_options() -> None:
    result = CliRunner().invoke(cli, ["simulator", "--help"])
    assert result.exit_code == 0
    assert "--notification-path PATH" in result.stdout
    assert f"[default: {PATHS.THIRD_PARTY_NOTIFY}]" in " ".join(result.stdout.split())
    assert "--server-key [rsa|ec]" in result.stdout
    assert "Examples:" in result.stdout
