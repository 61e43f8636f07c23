"""The operator console in a real browser (issue 11.5, 11.6): headless Chromium signs in at
``/admin/login`` as an operator made by ``greenbutton admin add-user`` and reads the console
after a customer connected through the simulator's portal and a job failed. At 1280 px and
at 390 px the page is no wider than the window (no sideways scroll), the failure's reason
and the authorization are on it, and both are kept as screenshots in
``test-artifacts/admin-1280.png`` and ``admin-390.png``. Same browser and servers as
``test_browser`` (real loopback sockets, the simulator over TLS)."""

# ruff: noqa: S105  (a fixed test password)

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from greenbutton.cli import cli
from greenbutton.storage import create_job, fail_job
from tests.simulator_harness import SimulatorHandle
from tests.web_harness import ARTIFACTS

PASSWORD = "operator passphrase 1"


def _width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def test_admin_console_in_a_real_browser(
    chromium: Any,
    loop: tuple[str, SimulatorHandle, Any],
    tmp_path: Path,
) -> None:
    base, gb, web = loop
    customer = gb.registration["customers"][0]
    context = chromium.new_context(
        ignore_https_errors=True, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        # a customer connects (portal sign-in and consent), so there is something to see
        page.goto(base + "/connect")
        page.wait_for_url(gb.portal_url + "/**")
        page.get_by_label("Username").fill(customer["username"])
        page.get_by_label("Password").fill(customer["password"])
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Approve").click()
        page.wait_for_url(base + "/account", timeout=20_000)
        uri = web.resource_url + "/Batch/Subscription/77/UsagePoint/1"
        fail_job(web.store, create_job(web.store, uri), "HTTPStatusError: 503 from the custodian")

        r = CliRunner().invoke(
            cli,
            ["admin", "add-user", "ops", "--database", str(web.store.engine.url)],
            input=PASSWORD + "\n",
        )
        assert r.exit_code == 0, r.output

        page.goto(base + "/admin")
        page.wait_for_url(base + "/admin/login")
        page.get_by_role("heading", name="Operator sign-in").wait_for()
        page.get_by_label("Name").fill("ops")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/admin")
        page.get_by_role("heading", name="Operator console").wait_for()
        text = page.locator("main").inner_text()
        assert "HTTPStatusError: 503 from the custodian" in text
        assert "/Subscription/" in text and "fresh" in text
        assert page.get_by_role("button", name="Retry job").count() == 1
        assert _width(page) <= 1280
        page.screenshot(path=str(ARTIFACTS / "admin-1280.png"), full_page=True)

        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        page.get_by_role("heading", name="Operator console").wait_for()
        assert _width(page) <= 390, "the console scrolls sideways on a phone"
        page.screenshot(path=str(ARTIFACTS / "admin-390.png"), full_page=True)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "admin-failure.png"), full_page=True)
        raise
    finally:
        context.close()
