"""Fixtures of the real-browser tests (``test_browser*.py``): Debian's Chromium driven by
Playwright, and the simulator plus the web app on real loopback sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from greenbutton.web import WebConfig
from tests.simulator_harness import SimulatorHandle, start_simulator
from tests.web_harness import CHROMIUM, CHROMIUM_ARGS, serve_web_app, unavailable


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Debian's Chromium, launched headless by Playwright with a new empty profile."""
    if not CHROMIUM.is_file():
        unavailable(f"{CHROMIUM} is missing (Debian package `chromium`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the `playwright` package is not installed (dev dependency group)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=20_000
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, SimulatorHandle, Any]]:
    """(web app URL, simulator, web app state): both on real loopback sockets."""
    monkeypatch.setenv("GREENBUTTON_SECRET_KEY", Fernet.generate_key().decode())
    # Bound first so the simulator can register the app's real address as its redirect URI.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with start_simulator(tmp_path / "sim", third_party_url=base) as gb:
            config = WebConfig.for_simulator(
                gb.state_dir, database_url=f"sqlite:///{tmp_path / 'web.db'}"
            )
            with serve_web_app(config, sock) as web:
                yield base, gb, web
    finally:
        sock.close()
