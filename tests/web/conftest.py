"""Fixtures of the real-browser tests (``test_browser*.py``): Debian's Chromium driven by
Playwright, and the simulator plus the web app on real loopback sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.simulator_harness import SimulatorHandle
from tests.web_harness import CHROMIUM, CHROMIUM_ARGS, site_on_loopback, unavailable


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
    with site_on_loopback(tmp_path) as running:
        yield running
