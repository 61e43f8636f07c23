"""The web boundary against hostile input: never a 500, never a traceback (SECURITY R37, R39,
R44), notified times checked as real instants (R41), and no open redirector (R09).

The app runs in-process (``ASGITransport``) against a real simulator. Where a failure cannot
be produced with real input today (the parser maps every hostile value we know of to
``ParseError``; the database is up), the failing part is replaced by one that raises, standing
for the next bug of that kind.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from sqlalchemy.exc import OperationalError

from greenbutton.simulator._data import Window
from greenbutton.simulator._notify import batch_list_xml
from greenbutton.web._notify import RejectedURI, validate_notified_uri
from tests.simulator_harness import SimulatorHandle
from tests.web_harness import XML, _jobs, connect, running

NOTIFY = "/espi/1_1/Notification"
RESOURCE = "https://dc.example/espi/1_1/resource"
SUB = f"{RESOURCE}/Batch/Subscription/5"


def _no_traceback(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()
        assert "Traceback" not in record.getMessage()
        for text in texts:
            assert text not in record.getMessage()


# -- R41: notified times are real instants in a sane range -------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "published-min=9999-99-99T99:99:99Z",  # the shape is right, the time does not exist
        "published-max=2024-02-30T00:00:00Z",
        "published-min=2024-01-01T24:00:00Z",
        "updated-min=2024-13-01T00:00:00Z",
        "published-min=2101-01-01T00:00:00Z",  # after 2100
        "published-max=1969-12-31T23:59:59Z",  # before 1970
        "published-min=99999999999",  # epoch seconds in the year 5138
        "published-min=2024-02-01T00:00:00Z&published-max=2024-01-01T00:00:00Z",  # min > max
        "updated-min=1706745600&updated-max=1704067200",
    ],
)
def test_notified_times_must_be_real_and_sane(query: str) -> None:
    """R41: ``published-min/max`` and ``updated-min/max`` are parsed as instants, not only
    matched by shape; a window that cannot exist is rejected before any job is queued."""
    with pytest.raises(RejectedURI):
        validate_notified_uri(f"{SUB}?{query}", RESOURCE)


def test_real_notified_times_are_kept() -> None:
    for query in (
        "published-min=2024-01-01T00:00:00Z&published-max=2024-02-01T00:00:00Z",
        "published-min=1704067200&published-max=1706745600",
        "updated-min=2024-01-01T00:00:00.123456789-08:00",
        "published-min=2024-01-01T00:00:00",  # no offset: read as UTC
    ):
        got = validate_notified_uri(f"{SUB}?{query}", RESOURCE)
        assert got.url.startswith(SUB + "?")


# -- R37/R39/R44: hostile input or a broken part answers 4xx/503, never 500 ---------------------


@pytest.mark.anyio
async def test_notification_never_answers_500(
    gb: SimulatorHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Whatever the parser, the validator or storage raises on a notification becomes a
    4xx (input) or a 503 without internals (storage: nothing acknowledged, the custodian
    retries, R44); nothing is logged with a traceback and nothing is queued."""
    import greenbutton.web._app as app_module

    caplog.set_level(logging.DEBUG)
    async with running(gb, tmp_path, job_poll_seconds=60) as (web, browser, counting):
        _, done = await connect(gb, browser)
        assert done.status_code == 303
        (grant,) = gb.sim.state.grants.values()
        end = int(time.time()) // 86400 * 86400
        uri = gb.sim.notifier.prepare(
            f"Batch/Subscription/{grant.subscription_id}",
            Window(published_min=end - 60 * 86400, published_max=end - 50 * 86400),
        )
        body = batch_list_xml([uri])
        sent = len(counting.urls)
        caplog.clear()

        # a notified window that cannot exist: 400, nothing queued (R41)
        for bad in ("9999-99-99T99:99:99Z", "2101-01-01T00:00:00Z"):
            hostile = batch_list_xml([f"{uri}&published-min={bad}"])
            r = await browser.post(NOTIFY, content=hostile, headers=XML)
            assert r.status_code == 400 and r.text == "rejected resource URI\n"

        def raising(exc: Exception) -> Any:
            def broken(*args: Any, **kwargs: Any) -> Any:
                raise exc

            return broken

        # the parser raising something that is not a ParseError
        with monkeypatch.context() as m:
            m.setattr(app_module, "parse", raising(OverflowError("secret-internal-detail")))
            r = await browser.post(NOTIFY, content=body, headers=XML)
        assert r.status_code == 400 and r.text == "malformed BatchList\n"

        # the validator raising something that is not a RejectedURI
        with monkeypatch.context() as m:
            m.setattr(
                app_module, "validate_notified_uri", raising(UnicodeError("secret-internal-detail"))
            )
            r = await browser.post(NOTIFY, content=body, headers=XML)
        assert r.status_code == 400 and r.text == "rejected resource URI\n"

        # storage down, or storage failing in a way nobody foresaw: 503, no internals
        for failure in (
            OperationalError("INSERT secret-internal-detail", {}, Exception("db down")),
            RuntimeError("secret-internal-detail"),
        ):
            with monkeypatch.context() as m:
                m.setattr(web, "_enqueue", raising(failure))
                r = await browser.post(NOTIFY, content=body, headers=XML)
            assert r.status_code == 503 and r.text == "try again later\n"
            assert r.headers["retry-after"] == "30"

        # a Content-Length that str.isdigit() takes for a number but int() does not
        for declared in (b"\xb2", b"\xd9\xa3"):  # "²", and a latin-1 reading of Arabic 3
            headers = [(b"content-type", b"application/xml"), (b"content-length", declared)]
            r = await browser.post(NOTIFY, content=body, headers=headers)
            assert r.status_code == 413, declared

        assert _jobs(web) == [] and counting.urls[sent:] == []
        _no_traceback(caplog, "secret-internal-detail")

        # and once everything works again, the same BatchList is queued
        ok = await browser.post(NOTIFY, content=body, headers=XML)
        assert ok.status_code == 200 and "queued 1" in ok.text


@pytest.mark.anyio
async def test_the_worker_survives_a_failing_round(
    gb: SimulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round of the background worker raising anything (a bug, not only the database)
    is logged and the loop goes on: the app keeps serving and later rounds run."""
    async with running(gb, tmp_path, job_poll_seconds=0.05) as (web, browser, _):
        rounds: list[int] = []

        async def broken_round() -> int:
            rounds.append(1)
            raise RuntimeError("a bug in one round")

        monkeypatch.setattr(web, "run_jobs", broken_round)
        with anyio.fail_after(10):
            while len(rounds) < 3:
                await anyio.sleep(0.02)
        assert (await browser.get("/")).status_code == 200


# -- R09: no open redirector ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_no_redirect_target_comes_from_the_request(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    """R09: the app has no ``next``/``return_to``; whatever a request carries (query
    parameters, a Referer, a Host header), every redirect goes to one of our own paths or
    to the configured utility's authorize URL, never to ``evil.example``."""
    evil = ("https://evil.example/", "//evil.example/x", "/\\evil.example", "https:evil.example")
    params = [
        {name: target}
        for name in ("next", "return_to", "returnTo", "redirect", "redirect_uri", "url")
        for target in evil
    ]
    headers = {"Referer": "https://evil.example/", "X-Forwarded-Host": "evil.example"}
    authorize = str(gb.registration["authorize_url"])
    async with running(gb, tmp_path, job_poll_seconds=60) as (web, browser, _):
        locations: list[str] = []

        async def visit(method: str, path: str, query: dict[str, str], **kw: Any) -> None:
            r = await browser.request(method, path, params=query, headers=headers, **kw)
            if 300 <= r.status_code < 400:
                locations.append(r.headers["location"])

        for query in params:
            for path in ("/", "/connect", "/Goto_login", "/account", "/OAuthCallback"):
                await visit("GET", path, query)
        _, done = await connect(gb, browser)  # signed in: /account and the callback's 303
        locations.append(done.headers["location"])
        for query in params:
            await visit("GET", "/account", query)
            await visit("POST", "/disconnect", query, data={"account": "0", "csrf": "x"})
        assert locations
        for location in locations:
            if location.startswith(authorize):
                parts = urlsplit(location)
                assert "evil" not in parts.query
                continue
            assert location.startswith("/") and not location.startswith(("//", "/\\"))
            assert "evil" not in location
