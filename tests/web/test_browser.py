"""A real browser through the whole connect loop (issue 5).

Headless Chromium (Debian's ``chromium``, driven by Playwright through ``executable_path``;
Playwright's own browser downloads are not used) opens the web app's home page, clicks
"Connect your utility account", signs in on the simulator's portal as its first demo
customer, approves on the consent page and lands back on the account page, which must show
a usage point and an inline SVG chart. No token may reach the browser (SECURITY R51): not in
the page, not in a cookie, and the cookies are HttpOnly. The account page is kept as a
screenshot in ``test-artifacts/browser-account.png``.

Both servers listen on real loopback sockets: the simulator (portal over HTTPS, API over
mutual TLS) and the web app (uvicorn in a thread, plain HTTP on loopback, temporary SQLite
database and secret key). Without ``/usr/bin/chromium`` (another path: set
``GREENBUTTON_TEST_CHROMIUM``) or the ``playwright`` package the test skips with the reason,
except under ``CI``, where it fails instead.
"""

from __future__ import annotations

from typing import Any

from tests.simulator_harness import SimulatorHandle
from tests.web_harness import ARTIFACTS


def test_connect_in_a_real_browser(chromium: Any, loop: tuple[str, SimulatorHandle, Any]) -> None:
    base, gb, web = loop
    customer = gb.registration["customers"][0]
    ARTIFACTS.mkdir(exist_ok=True)
    # The portal's certificate is issued by the simulator's private CA, which this throwaway
    # profile does not trust; a real utility's portal has a publicly trusted certificate.
    context = chromium.new_context(
        ignore_https_errors=True, viewport={"width": 1100, "height": 800}
    )
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(base + "/")
        page.get_by_role("link", name="Connect your utility account").click()

        # the utility's portal: sign in
        page.wait_for_url(gb.portal_url + "/**")
        page.get_by_label("Username").fill(customer["username"])
        page.get_by_label("Password").fill(customer["password"])
        page.get_by_role("button", name="Sign in").click()

        # consent: what is shared, then Approve
        page.get_by_role("heading", name="Share your energy data?").wait_for()
        page.get_by_role("button", name="Approve").click()

        # back at the app: callback, first data pull, 303 to the account page
        page.wait_for_url(base + "/account", timeout=20_000)
        page.get_by_role("heading", name="Your energy").wait_for()
        assert page.locator("article.usage-point").count() > 0
        assert "Use: " in page.locator("article.usage-point").first.inner_text()
        assert page.locator("figure.chart svg").count() > 0
        html = page.content()
        assert "<svg" in html
        page.screenshot(path=str(ARTIFACTS / "browser-account.png"), full_page=True)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "browser-failure.png"), full_page=True)
        raise
    finally:
        cookies = context.cookies()
        context.close()

    # no code or token in the app's URL, no token in the page or the cookies (R10, R51)
    assert page.url == base + "/account"
    (key,) = [k for k in web.tokens.keys() if "/Subscription/" in k]
    token = web.tokens.load(key)
    secrets = [token.access_token.reveal(), token.refresh_token.reveal()]
    assert all(s and s not in html for s in secrets)
    assert cookies and all(c["httpOnly"] for c in cookies)
    assert not any(s in c["value"] for s in secrets for c in cookies)
    # every request the browser made stayed on loopback: assets are local, no CDN
    assert requested and all(
        u.startswith(("http://127.0.0.1:", "https://127.0.0.1:")) for u in requested
    )
