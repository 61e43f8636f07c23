"""The account page's content over the app's HTTP interface (issue 11.3, 11.4): names
instead of ids, the range control, accessible charts, the CSV download, the loading page
after consent, the disconnect confirmation, the 404 page and the favicon.

The app runs in-process (ASGITransport) against a real simulator over mutual TLS; alice
(electricity with cost and gas) has no solar, bob's home is net-metered.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import httpx2
import pyarrow.parquet as pq
import pytest

from greenbutton.models import COLUMNS
from greenbutton.storage import authorization_points
from tests.conftest import WEB_BASE
from tests.simulator_harness import SimulatorHandle, start_simulator
from tests.web_harness import BASE, connect, consent, running

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}  # what a browser sends


def _headings(page: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<h[1-4][^>]*>(.*?)</h[1-4]>", page)]


@pytest.mark.anyio
async def test_account_page_names_ranges_and_accessible_charts(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    async with running(gb, tmp_path, first_pull_days=400) as (_, browser, _c):
        await connect(gb, browser)
        page = (await browser.get("/account")).text
        heads = _headings(page)
        assert "Alice Anderson" in heads
        assert not [h for h in heads if "Subscription/" in h or "Authorization " in h]
        assert "Service address: 1 Simulated Way, San Francisco CA 94000" in page
        assert "Cost of the energy used: $" in page and "therms" in page
        assert "<li>Use: " in page and "from the grid" not in page.lower()
        assert "Exported to the grid" not in page and "import" not in page.lower()
        # every chart: role, title, a summary as its accessible name
        svgs = re.findall(r"<svg [^>]*>", page)
        assert svgs and all('role="img"' in s and 'aria-label="Daily use, ' in s for s in svgs)
        assert page.count("<title>") == len(svgs) + 1  # + the page's own
        assert '<a href="/account?range=30d" aria-current="page"' in page
        assert "day by day" in page and "Same dates last year" in page
        levels = [int(n) for n in re.findall(r"<h([1-6])[ >]", page)]
        assert levels[0] == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False))
        week = (await browser.get("/account?range=7d")).text
        assert '<a href="/account?range=7d" aria-current="page"' in week

        year = (await browser.get("/account?range=12m")).text
        assert "month by month" in year and 'aria-label="Monthly use, ' in year
        assert '<a href="/account?range=12m" aria-current="page"' in year
        odd = (await browser.get("/account?range=%3Cscript%3E")).text  # unknown: the default
        assert '<a href="/account?range=30d" aria-current="page"' in odd and "<script" not in odd


@pytest.mark.anyio
async def test_download_of_the_customers_own_readings(gb: SimulatorHandle, tmp_path: Path) -> None:
    async with running(gb, tmp_path) as (web, browser, _c):
        await connect(gb, browser)
        (key,) = [k for k in web.tokens.keys() if "/Subscription/" in k]
        found = authorization_points(web.store, key, web.namespace)
        assert found is not None
        stored = sum(p.readings for p in found[1])
        got = await browser.get("/account/0/readings.csv")
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        assert got.headers["content-disposition"].startswith("attachment;")
        rows = list(csv.reader(io.StringIO(got.text)))
        assert tuple(rows[0]) == COLUMNS and len(rows) - 1 == stored > 0
        parquet = await browser.get("/account/0/readings.parquet")
        assert parquet.status_code == 200 and parquet.content[:4] == b"PAR1"
        frame = pq.read_table(io.BytesIO(parquet.content))
        assert tuple(frame.column_names) == COLUMNS and frame.num_rows == stored
        assert (await browser.get("/account/7/readings.csv")).status_code == 404
        assert (await browser.get("/account/0/readings.xlsx")).status_code == 404
        async with httpx2.AsyncClient(transport=browser._transport, base_url=BASE) as other:
            assert (await other.get("/account/0/readings.csv")).status_code == 303


@pytest.mark.anyio
async def test_loading_page_confirmation_404_and_favicon(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    async with running(gb, tmp_path) as (web, browser, _c):
        start = await browser.get("/connect", headers=HTML)
        back = await browser.get(await consent(gb, start.headers["location"]), headers=HTML)
        # a browser gets the loading page at once and is sent on when the pull is done
        assert back.status_code == 200 and "set-cookie" in back.headers
        text = back.text
        refresh = text.index('<meta http-equiv="refresh" content="0;url=/account">')
        assert 'role="status"' in text and text.index("Fetching your data") < refresh
        page = await browser.get("/account")
        assert page.status_code == 200 and "<svg" in page.text

        (grant,) = gb.sim.state.grants.values()
        ask = await browser.get("/disconnect?account=0")
        assert ask.status_code == 200 and "Disconnect Alice Anderson?" in ask.text
        assert 'method="post" action="/disconnect"' in ask.text and grant.status == 1
        assert (await browser.get("/disconnect?account=3")).status_code == 404

        missing = await browser.get("/nope")
        assert missing.status_code == 404 and "Page not found" in missing.text
        assert 'href="/static/style.css"' in missing.text
        icon = await browser.get("/favicon.ico")
        assert icon.status_code == 301 and icon.headers["location"] == "/static/favicon.svg"
        svg = await browser.get("/static/favicon.svg")
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"


@pytest.mark.anyio
async def test_a_net_metered_home_says_exported_to_the_grid(
    tmp_path: Path, secret_key: str
) -> None:
    with start_simulator(tmp_path / "sim", auto_approve="bob", third_party_url=WEB_BASE) as gb:
        async with running(gb, tmp_path) as (_, browser, _c):
            await connect(gb, browser)
            page = (await browser.get("/account")).text
            assert "Bob Baker" in _headings(page)
            assert "Exported to the grid: " in page and "Net from the grid: " in page
            assert "Delivered from the grid: " in page and "<li>Use: " not in page
            labels = re.findall(r'<svg [^>]*aria-label="([^"]+)"', page)
            assert labels and all("Exported to the grid:" in label for label in labels)
            assert "import" not in page.lower()


@pytest.mark.anyio
async def test_a_failure_of_ours_is_a_styled_500_without_details(
    gb: SimulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(gb, tmp_path, raise_app_exceptions=False) as (web, browser, _c):

        async def broken(_request: object) -> None:
            raise RuntimeError("secret detail of the failure")

        monkeypatch.setattr(web, "session_of", broken)
        page = await browser.get("/", headers=HTML)
    assert page.status_code == 500
    assert "Something went wrong on our side" in page.text
    assert 'href="/static/style.css"' in page.text
    assert "secret detail" not in page.text and "Traceback" not in page.text
