"""From ``config init`` to a connected customer with no edit to code (issue 11): a profile
written for the simulator, ``greenbutton serve --config FILE --profile NAME`` as a real
process on a real socket, the customer's consent at the simulator's portal, the account
page. And ``greenbutton status`` with nothing configured says what to do next."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from greenbutton.cli import cli
from tests.simulator_harness import SimulatorHandle, start_simulator
from tests.worker_harness import free_port


def test_status_with_nothing_configured_names_the_next_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("GREENBUTTON_CONFIG", "GREENBUTTON_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    r = CliRunner().invoke(cli, ["status"])
    assert r.exit_code == 1
    assert "nothing is configured yet" in r.output
    assert "greenbutton config init --profile NAME" in r.output


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, SimulatorHandle]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with start_simulator(tmp_path / "sim", auto_approve="alice", third_party_url=base) as gb:
        config = tmp_path / "config.toml"
        r = CliRunner().invoke(
            cli,
            ["config", "init", "--profile", "lab", "--config", str(config),
             "--simulator", str(gb.state_dir)],
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        env = {**os.environ, "GREENBUTTON_SECRET_KEY": Fernet.generate_key().decode()}
        proc = subprocess.Popen(
            [sys.executable, "-m", "greenbutton", "serve", "--config", str(config),
             "--profile", "lab", "--port", str(port),
             "--database", f"sqlite:///{tmp_path / 'web.db'}"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx2.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    raise AssertionError(f"serve did not start:\n{out}")
                time.sleep(0.1)
            yield base, gb
        finally:
            proc.terminate()
            proc.wait(15)
            if proc.stdout is not None:
                proc.stdout.close()


def test_serve_a_profile_written_by_config_init(served: tuple[str, SimulatorHandle]) -> None:
    base, gb = served
    with httpx2.Client(base_url=base, timeout=30) as browser:
        ready = browser.get("/readyz")
        assert ready.status_code == 200, ready.text
        r = browser.get("/connect")
        assert r.status_code == 302
        with gb.portal_client() as portal:  # alice approves at the utility
            back = portal.get(r.headers["location"])
        assert back.status_code == 302
        callback = back.headers["location"]
        assert callback.startswith(base + "/OAuthCallback?")
        done = browser.get(callback)
        assert done.status_code == 303 and done.headers["location"] == "/account"
        page = browser.get("/account")
        assert page.status_code == 200
        assert "usage-point" in page.text  # the first pull's data is on the page
        metrics = browser.get("/metrics").text
        assert 'greenbutton_authorizations{status="active"} 1.0' in metrics
