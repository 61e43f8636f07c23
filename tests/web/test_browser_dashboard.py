"""The account page in a real browser at desktop and phone width (issue 11.3, 11.4).

Headless Debian Chromium (Playwright, as ``test_browser``) connects through the simulator's
portal with two years pulled at once, then checks what a customer sees: the customer's name
and address instead of ids, the range control, monthly bars for twelve months, cost, bills,
the download of their own readings, the accessible name of every chart, no horizontal
scroll at 390 px, no console error, a styled 404 and a disconnect that asks first and says
what it did. Screenshots go to ``test-artifacts/`` (and ``$GREENBUTTON_SCREENSHOTS`` when
set) for a person to look at.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from greenbutton.models import COLUMNS
from tests.simulator_harness import SimulatorHandle
from tests.web_harness import ARTIFACTS, site_on_loopback

SHOTS = [ARTIFACTS, *([Path(p)] if (p := os.environ.get("GREENBUTTON_SCREENSHOTS")) else [])]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def _shot(page: Any, name: str) -> None:
    for folder in SHOTS:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / name), full_page=True)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, SimulatorHandle]]:
    """The web app (uvicorn, loopback) and the simulator; the first pull takes two years."""
    monkeypatch.setenv("GREENBUTTON_SECRET_KEY", Fernet.generate_key().decode())
    with site_on_loopback(tmp_path, first_pull_days=730) as (base, gb, _web):
        yield base, gb


def _watch(page: Any) -> list[str]:
    """Console errors and uncaught page errors, as they happen."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return errors


def _connect(page: Any, base: str, gb: SimulatorHandle) -> None:
    """Connect through the portal; the callback's page says it is fetching, then opens
    the account page by itself."""
    customer = gb.registration["customers"][0]
    callbacks: list[Any] = []
    page.on("response", lambda r: callbacks.append(r) if "/OAuthCallback" in r.url else None)
    page.goto(base + "/")
    page.get_by_role("link", name="Connect your utility account").click()
    page.wait_for_url(gb.portal_url + "/**")
    page.get_by_label("Username").fill(customer["username"])
    page.get_by_label("Password").fill(customer["password"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("status").filter(has_text="Fetching your data").wait_for()
    _shot(page, "loading-1280.png")
    page.wait_for_url(base + "/account", timeout=60_000)
    (callback,) = callbacks
    assert callback.status == 200  # the loading page, not a redirect after the pull


def _no_overflow(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page is {width} px wide"


def _charts_are_named(page: Any) -> None:
    svgs = page.locator("figure.chart svg")
    assert svgs.count() > 0
    for i in range(svgs.count()):
        svg = svgs.nth(i)
        assert svg.get_attribute("role") == "img"
        label = svg.get_attribute("aria-label") or ""
        assert label.startswith(("Daily use", "Monthly use")) and " in total" in label
        assert svg.locator("title").count() == 1


def test_dashboard_desktop_and_phone(chromium: Any, site: tuple[str, SimulatorHandle]) -> None:
    base, gb = site
    context = chromium.new_context(
        ignore_https_errors=True, viewport=DESKTOP, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors = _watch(page)
    try:
        _connect(page, base, gb)
        body = page.locator("main").inner_text()
        # the customer's name and address, never an ESPI id in a heading or a chart title
        heading = page.locator("section.account h2").first.inner_text()
        assert heading and "Authorization" not in heading and "Subscription" not in heading
        assert "Simulated Way" in page.locator("p.address").first.inner_text()
        for title in page.locator("h3, svg title").all_text_contents():
            assert "Subscription/" not in title and "UsagePoint" not in title
        assert "Cost of the energy used: $" in body
        assert "Compared with before" in body and "Same dates last year" in body
        assert "Your bills" in body and "import" not in body.lower()
        _charts_are_named(page)
        _no_overflow(page)
        _shot(page, "dashboard-1280-30d.png")

        page.get_by_role("link", name="12 months").click()
        page.wait_for_url(base + "/account?range=12m")
        assert page.get_by_role("link", name="12 months").get_attribute("aria-current") == "page"
        assert "month by month" in page.locator("p.span").first.inner_text()
        label = page.locator(".chart-desktop svg").first.get_attribute("aria-label") or ""
        assert label.startswith("Monthly use")
        _shot(page, "dashboard-1280-12m.png")

        with page.expect_download() as info:
            page.get_by_role("link", name="Download your readings (CSV)").first.click()
        path = info.value.path()
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        assert tuple(rows[0]) == COLUMNS and len(rows) > 1000

        phone = chromium.new_context(
            ignore_https_errors=True, viewport=PHONE, storage_state=context.storage_state()
        )
        small = phone.new_page()
        small_errors = _watch(small)
        for range_ in ("30d", "12m", "all"):
            small.goto(f"{base}/account?range={range_}")
            _no_overflow(small)
            chart = small.locator(".chart-phone svg").first
            assert chart.is_visible() and not small.locator(".chart-desktop svg").first.is_visible()
            box = chart.bounding_box()
            assert box is not None and box["width"] >= 330  # the phone drawing, full width
            _charts_are_named(small)
            _shot(small, f"dashboard-390-{range_}.png")
        assert small_errors == []
        missing = small.goto(base + "/nope")
        assert missing is not None and missing.status == 404
        assert small.get_by_role("heading", name="Page not found").is_visible()
        assert small.locator("header .brand").is_visible()  # the site's own page, styled
        _no_overflow(small)
        _shot(small, "404-390.png")
        phone.close()

        # a returning customer in a new browser: Sign in goes through the utility again
        fresh = chromium.new_context(ignore_https_errors=True, viewport=PHONE)
        again = fresh.new_page()
        again.set_default_timeout(20_000)
        again_errors = _watch(again)
        again.goto(base + "/")
        _no_overflow(again)
        _shot(again, "home-390.png")
        again.get_by_role("link", name="Sign in with your utility").click()
        customer = gb.registration["customers"][0]
        again.get_by_label("Username").fill(customer["username"])
        again.get_by_label("Password").fill(customer["password"])
        again.get_by_role("button", name="Sign in").click()
        again.get_by_role("button", name="Approve").click()
        again.wait_for_url(base + "/account?notice=welcome", timeout=60_000)
        assert "Welcome back" in again.locator("p.notice").inner_text()
        assert again.locator("section.account").count() == 1
        _no_overflow(again)
        again.get_by_role("button", name="Sign out").click()
        again.wait_for_url(base + "/?signedout=1")
        assert "You are signed out" in again.locator("p.notice").inner_text()
        fresh.close()
        assert again_errors == []

        # disconnect asks first, then says what happened
        page.goto(base + "/account")
        page.get_by_role("link", name="Disconnect this account…").first.click()
        page.get_by_role("heading", name="Disconnect").wait_for()
        _shot(page, "disconnect-confirm-1280.png")
        page.get_by_role("button", name="Yes, disconnect").click()
        page.wait_for_url(base + "/?disconnected=*")
        assert "Disconnected." in page.locator("p.notice").inner_text()
    except Exception:
        _shot(page, "dashboard-failure.png")
        raise
    finally:
        context.close()
    assert errors == []
