"""SECURITY R49: secrets never logged, at any level, by the SDK or by the simulator.

:func:`test_whole_flow_at_debug_logs_no_secret_and_no_query` runs authorize -> token ->
client token -> refresh -> fetch -> notification -> registration-token call -> error paths
-> revoke against the real simulator with *every* logger at DEBUG and a plain root handler
(no filter of its own), after removing every filter greenbutton had attached, so what is
checked is what the SDK and the simulator set up themselves. The other tests pin the pieces
that make it hold: masked dataclass reprs, the simulator's own logging set-up, the query
stripping of URLs.
"""

# ruff: noqa: S106  (fixed fake secrets)

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import greenbutton
from greenbutton import Client
from greenbutton._errors import GreenButtonError
from greenbutton.client._redact import DropDebugFilter, RedactingFilter, redact
from greenbutton.oauth import InMemoryTokenStore
from greenbutton.simulator import SimulatorConfig
from greenbutton.simulator._oauth import _Ledger
from greenbutton.simulator._server import run_in_thread
from greenbutton.simulator._state import (
    AuthorizationGrant,
    Customer,
    IssuedCode,
    Registration,
    Token,
)
from tests.conftest import LogLines
from tests.simulator_harness import SimulatorHandle, notification_receiver

#: A query string in a logged URL or request line: "?name=" (R49: URLs without query).
QUERY = re.compile(r"\?[A-Za-z_][\w.-]*=")


def _ours(f: object) -> bool:
    return isinstance(f, RedactingFilter | DropDebugFilter)


@pytest.fixture
def bare_logging() -> Iterator[LogLines]:
    """Every logger at DEBUG, propagating and enabled, with none of greenbutton's filters: as
    in a fresh process whose application turned all logging up (uvicorn turns its access
    logger's propagation off when a server runs without one). Restored afterwards."""
    loggers = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)]
    loggers.append(logging.getLogger())
    saved = {lg: (lg.level, list(lg.filters), lg.propagate, lg.disabled) for lg in loggers}
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.propagate, lg.disabled = True, False
        for f in [f for f in lg.filters if _ours(f)]:
            lg.removeFilter(f)
    handler = LogLines()
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
        for lg, (level, filters, propagate, disabled) in saved.items():
            lg.setLevel(level)
            lg.filters[:] = filters
            lg.propagate, lg.disabled = propagate, disabled


@contextmanager
def simulator_at_debug(state_dir: Path, **config: Any) -> Iterator[SimulatorHandle]:
    """The real simulator with uvicorn at DEBUG and its access log on."""
    cfg = SimulatorConfig(state_dir=state_dir, **config)
    with run_in_thread(cfg, log_level="debug", access_log=True) as running:
        yield SimulatorHandle(running, dict(running.registration))


def test_simulator_sets_up_its_own_redaction(tmp_path: Path, bare_logging: LogLines) -> None:
    """R49: starting the simulator (no SDK client anywhere) filters oauthlib's DEBUG chatter
    and redacts its own, uvicorn's and httpx2's loggers: an embedding process is covered."""
    with simulator_at_debug(tmp_path / "sim"):
        oauthlib = logging.getLogger("oauthlib.oauth2.rfc6749.grant_types.authorization_code")
        assert any(isinstance(f, DropDebugFilter) for f in oauthlib.filters)
        for name in ("uvicorn.access", "httpx2", "httpcore2.http11", "greenbutton.simulator"):
            assert any(isinstance(f, RedactingFilter) for f in logging.getLogger(name).filters)


def test_simulator_reprs_mask_secrets() -> None:
    """R49: oauthlib logs ``request.client`` (our Registration) with %r, and a traceback
    shows reprs: none of the simulator's records print a secret value."""
    values = {
        "client_secret": "CLIENT-SECRET-VALUE",
        "registration_access_token": "REGISTRATION-TOKEN-VALUE",
    }
    reg = Registration(
        client_id="cid",
        redirect_uri="https://tp.example/cb",
        notification_uri="https://tp.example/n",
        **values,
    )
    shown = [
        repr(reg),
        repr(
            Customer(
                username="alice",
                password="PASSWORD-VALUE",
                retail_customer_id="1",
                subscription_id="2",
            )
        ),
        repr(
            IssuedCode(
                code="CODE-VALUE",
                client_id="cid",
                customer="alice",
                redirect_uri="https://tp.example/cb",
                scope="s",
                expires_at=0.0,
            )
        ),
        repr(
            AuthorizationGrant(
                id="1",
                customer="alice",
                subscription_id="2",
                scope="s",
                refresh_token="REFRESH-VALUE",
            )
        ),
        repr(Token(value="ACCESS-VALUE", kind="access", scope="s", expires_at=0.0)),
        repr(_Ledger(code_grants={"CODE-VALUE": "1"}, retired_refresh={"REFRESH-VALUE": "1"})),
    ]
    text = "\n".join(shown)
    assert "cid" in text and "alice" in text  # the reprs still say what they are
    for secret in (
        *values.values(),
        "PASSWORD-VALUE",
        "CODE-VALUE",
        "REFRESH-VALUE",
        "ACCESS-VALUE",
    ):
        assert secret not in text, secret


def test_urls_lose_their_query_in_log_messages() -> None:
    """R49: httpx2's INFO line, a Location header in httpcore2's trace and uvicorn's
    access-log request line keep the URL or path, never the query."""
    cases = {
        "HTTP Request: GET https://dc.example:8443/myAuthorization?client_id=c&scope=FB%3D1 "
        '"HTTP/1.1 302 Found"': "HTTP Request: GET https://dc.example:8443/myAuthorization "
        '"HTTP/1.1 302 Found"',
        "(b'location', b'https://tp.example/cb?code=C0DE&state=S')": (
            "(b'location', b'https://tp.example/cb')"
        ),
        '127.0.0.1:5 - "GET /resource/Batch/Subscription/1?correlationID=9 HTTP/1.1" 200': (
            '127.0.0.1:5 - "GET /resource/Batch/Subscription/1 HTTP/1.1" 200'
        ),
        "no URL here: a=b": "no URL here: a=b",
    }
    for text, expected in cases.items():
        assert redact(text) == expected, text


def test_uvicorn_access_records_stay_formattable() -> None:
    """R49 without breaking uvicorn: its AccessFormatter (``greenbutton serve``'s default log
    config) unpacks the record's arguments, so the filter keeps them a tuple and drops only
    the query of the path."""
    from uvicorn.logging import AccessFormatter

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/OAuthCallback?code=C0DE-VALUE&state=S-VALUE", "1.1", 303),
        None,
    )
    assert RedactingFilter().filter(record)
    for formatter in (
        AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'),
        logging.Formatter("%(message)s"),
    ):
        line = formatter.format(record)
        assert "GET /OAuthCallback HTTP/1.1" in line and "VALUE" not in line, line


def test_whole_flow_at_debug_logs_no_secret_and_no_query(
    tmp_path: Path, bare_logging: LogLines
) -> None:
    """R49: the whole third-party loop against the simulator, every logger at DEBUG: no
    client secret, registration access token, client/access/refresh token, code, state or
    PKCE verifier in any record, tracebacks included, and no URL with its query."""
    handler = bare_logging
    seen: set[str] = set()
    with (
        notification_receiver() as inbox,
        simulator_at_debug(
            tmp_path / "sim", customers=1, auto_approve="alice", third_party_url=inbox.base_url
        ) as gb,
    ):
        store = InMemoryTokenStore()
        with Client.for_simulator(gb.state_dir / "registration.json", token_store=store) as c:
            pending = c.authorization_url()
            seen |= {pending.state, pending.code_verifier}
            with gb.portal_client() as browser:
                r = browser.get(pending.url)  # auto-approve: 302 to the callback with a code
            assert r.status_code == 302
            key, token = c.exchange_code(r.headers["location"], pending)
            seen |= {token.access_token.reveal(), token.refresh_token.reveal()}  # type: ignore[union-attr]
            assert isinstance(c.usage_points(key), greenbutton.Document)
            seen.add(c.client_token().access_token.reveal())
            assert c.request_subscription_async(key).pending
            batch = greenbutton.parse(inbox.wait(timeout=10)).batch_list
            assert batch is not None and "correlationID=" in batch.resources[0]
            assert isinstance(c.get(batch.resources[0], key), greenbutton.Document)
            old_refresh = token.refresh_token.reveal()  # type: ignore[union-attr]
            new = c.refresh(key)
            seen |= {new.access_token.reveal(), new.refresh_token.reveal()}  # type: ignore[union-attr]
            reg = gb.sim.state.registration
            c.application_information(reg.application_information_id, reg.registration_access_token)
            # Error paths: a bad code, and (through the SDK) a revoked authorization.
            with pytest.raises(GreenButtonError) as bad_code:
                c.exchange_code("NOT-A-REAL-CODE-1234567890", code_verifier="v" * 43)
            logging.getLogger("greenbutton.test").exception("expected: %s", bad_code.value)
            assert token.authorization_uri
            c.revoke(token.authorization_uri.rsplit("/", 1)[1])
            with pytest.raises(GreenButtonError) as revoked:
                c.usage_points(key)
            logging.getLogger("greenbutton.test").error("expected", exc_info=revoked.value)
        seen |= {reg.client_secret, reg.registration_access_token, old_refresh}
        seen |= {code.code for code in gb.sim.state.codes.values()}
        seen |= set(gb.sim.state.tokens)  # every token the simulator issued
        seen |= {g.refresh_token for g in gb.sim.state.grants.values() if g.refresh_token}
    seen.discard("")
    text = "\n".join(handler.lines)
    for name in ("httpx2", "uvicorn.access", "greenbutton.simulator", "greenbutton.test"):
        assert name in text, f"the run did not log through {name}"
    leaked = sorted(s for s in seen if s in text)
    bad = [line[:200] for line in handler.lines if any(s in line for s in leaked)]
    assert not leaked, f"{len(leaked)} secrets in the logs: {bad}"
    queries = [line[:200] for line in handler.lines if QUERY.search(line)]
    assert not queries, f"URLs logged with their query: {queries}"
