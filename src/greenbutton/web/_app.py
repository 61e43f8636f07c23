"""The third-party web app: connect an account, see its data, receive notifications.

Routes (DESIGN 3.2, 3.6, 5): ``/`` home; ``/connect`` and ``/Goto_login`` redirect to the
utility's authorize URL; ``/get_auth_code`` returns it; ``/OAuthCallback`` is the
registered redirect URI; ``/account`` shows the accounts this browser connected;
``/signin`` is ``/connect`` for a returning customer (the utility's authorization again
lands on the same stored account); ``POST /signout`` ends the session;
``POST /disconnect`` revokes one; ``POST /espi/1_1/Notification`` takes BatchLists.

The notification route only validates and enqueues (STYLE 8, SECURITY R44): jobs are
committed before the 2xx, and a background task started by the lifespan fetches them.
Blocking database work runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import importlib.util
import io
import ipaddress
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.to_thread
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.datastructures import FormData, MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import analysis
from .._errors import CallbackError, GreenButtonError, ParseError
from ..analysis import Bill, CustomerFacts
from ..client import AsyncClient
from ..oauth import parse_callback
from ..parse import Limits, parse
from ..storage import (
    DatabaseTokenStore,
    JobRunner,
    StorageError,
    Store,
    abandon,
    active_subscriptions,
    adopt_authorizations,
    authorization_points,
    due_jobs,
    enqueue,
    export_readings,
    load_fernet,
    local_time_of,
    shared_limits,
    time_zone_of,
    window_uri,
)
from ._admin import Admin
from ._config import WebConfig
from ._notify import NotifiedURI, RejectedURI, validate_notified_uri
from ._ops import Ops
from ._revoke import Revocations
from ._sessions import (
    COOKIE_NAME,
    SECURE_COOKIE_NAME,
    Session,
    Sessions,
    derived_cookie_key,
)
from ._tls import client_certificate, forwarded_certificate, load_client_cas
from ._views import AccountView, account_view, page_context, point_view, range_choice

__all__ = ["create_app"]

log = logging.getLogger("greenbutton.web")

_HERE = Path(__file__).resolve().parent
_XML_TYPES = frozenset({"application/atom+xml", "application/xml"})
_RESOURCES_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?resources[\s>/]")
_DUPLICATE_WINDOW = 86400.0  # a done job absorbs the same URI for a day (R45)
_FORWARDING = ("x-forwarded-for", "forwarded", "x-real-ip", "client-cert", "client-cert-chain")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class _SecurityHeaders:
    """Headers every response carries: no referrer (the callback URL holds a code, R10),
    no caching of pages (R10, R51), a CSP allowing local assets only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Content-Security-Policy"] = _CSP
                if not static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_headers)


#: What the home page says after a disconnect (``/?disconnected=...``, R22) or a sign-out
#: (``/?signedout=1``): fixed messages chosen by a fixed word.
_DISCONNECTED = {
    "confirmed": "Disconnected. Your tokens are deleted here and the utility confirmed it.",
    "pending": (
        "Disconnected. Your tokens are deleted here; the utility did not answer yet and "
        "will be told again shortly."
    ),
}
_SIGNED_OUT = (
    "You are signed out. Your account stays connected: sign in with your utility again to see it."
)
#: What the account page says after a callback (``/account?notice=...``).
_ACCOUNT_NOTICES = {
    "welcome": "Welcome back. You are signed in and your stored data is below.",
    "same": (
        "Your utility gave access to the account already shown here again, so nothing was "
        "added: you were still signed in on the utility's site. To connect a different "
        "account, sign out on the utility's site first, then choose Connect another account."
    ),
}

#: The customer's download formats and their media types (Parquet only with pyarrow).
_DOWNLOADS = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
_FACTS_TTL = 3600.0  # s: the customer's name, address and bills are fetched again after this
_FACTS_TIMEOUT = 10.0  # s: a page waits this long for them, then shows what it has


@dataclass(slots=True)
class _Facts:
    """What the utility says about one authorization beyond readings, cached per process:
    the customer (name, service address) and each usage point's bills."""

    fetched: float
    customer: CustomerFacts | None = None
    bills: dict[str, list[Bill]] = field(default_factory=dict)


class _Web:
    """One app instance's state and handlers (no module-level state, STYLE 8)."""

    def __init__(self, config: WebConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.tokens = DatabaseTokenStore(store)
        with shared_limits(store):  # PostgreSQL: one rate limit with every worker (DESIGN 3.7)
            self.client = AsyncClient(
                config.profile,
                config.credentials,
                token_store=self.tokens,
                transport=config.transport,
            )
        fernet = load_fernet(store.data_dir)  # the token store's key material (R48)
        self.sessions = Sessions(
            store,
            fernet,
            config.session_key or derived_cookie_key(store),
            idle_timeout=config.session_idle_seconds,
            absolute_timeout=config.session_lifetime_seconds,
        )
        # R51: over HTTPS (ours or a TLS proxy's) the cookie is Secure and __Host- prefixed
        self.secure_cookies = config.https or config.secure_cookies
        self.cookie_name = SECURE_COOKIE_NAME if self.secure_cookies else COOKIE_NAME
        self.revocations = Revocations(
            store, self.client, config.profile.name, config.revoke_timeout
        )
        self.templates = Jinja2Templates(directory=str(_HERE / "templates"))
        self.namespace = config.profile.name
        self.resource_url = config.profile.resource_url.rstrip("/")
        self.redirect_uri = config.redirect_uri or config.credentials.redirect_uri
        self._wake: anyio.Event | None = None
        self._facts: dict[str, _Facts] = {}
        self.parquet = importlib.util.find_spec("pyarrow") is not None
        self.jobs = JobRunner.for_client(store, self.client)  # the one job engine
        self.proxies = config.proxy_networks
        self.allow = config.allow_networks
        self.cert_header = (config.client_cert_header or "").lower()
        self.client_cas = (
            load_client_cas(config.client_ca)
            if config.client_ca is not None and config.client_cert_header
            else []
        )

    # -- sessions and pages ---------------------------------------------------------------

    async def session_of(self, request: Request) -> Session | None:
        cookie = request.cookies.get(self.cookie_name)
        return await anyio.to_thread.run_sync(self.sessions.get, cookie)

    async def _session(self, request: Request) -> tuple[Session, str | None]:
        session = await self.session_of(request)
        if session is not None:
            return session, None
        return await anyio.to_thread.run_sync(self.sessions.create)

    def _set_cookie(self, request: Request, response: Response, cookie: str | None) -> None:
        if cookie is not None:
            response.set_cookie(
                self.cookie_name,
                cookie,
                max_age=int(self.sessions.absolute_timeout),
                httponly=True,
                samesite="lax",
                secure=self.secure_cookies or request.url.scheme == "https",
                path="/",
            )

    def page(
        self, request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    def error(self, request: Request, status: int, title: str, detail: str) -> Response:
        return self.page(request, "error.html", {"title": title, "detail": detail}, status)

    async def home(self, request: Request) -> Response:
        session = await self.session_of(request)
        connected = bool(session and session.accounts)
        # a fixed message chosen by a fixed word: nothing of the query reaches the page
        notice = _DISCONNECTED.get(request.query_params.get("disconnected", ""))
        if request.query_params.get("signedout") == "1":
            notice = _SIGNED_OUT
        return self.page(request, "home.html", {"connected": connected, "notice": notice})

    # -- authorization (R01-R11) ----------------------------------------------------------

    async def _start(self, request: Request) -> tuple[str, str | None]:
        session, cookie = await self._session(request)
        pending = self.client.authorization_url(self.redirect_uri)
        # replaces an older flow of this browser
        await anyio.to_thread.run_sync(self.sessions.set_pending, session.id, pending)
        return pending.url, cookie

    async def connect(self, request: Request) -> Response:
        url, cookie = await self._start(request)
        response = RedirectResponse(url, status_code=302)
        self._set_cookie(request, response, cookie)
        return response

    async def get_auth_code(self, request: Request) -> Response:
        url, cookie = await self._start(request)
        wants_json = "application/json" in request.headers.get("accept", "")
        response: Response = (
            JSONResponse({"url": url}) if wants_json else PlainTextResponse(url + "\n")
        )
        self._set_cookie(request, response, cookie)
        return response

    async def callback(self, request: Request) -> Response:
        session = await self.session_of(request)
        pending = None
        if session is not None:  # state is single-use whatever the outcome (R01, R11)
            pending = await anyio.to_thread.run_sync(self.sessions.take_pending, session.id)
        if session is None or pending is None:
            return self.error(
                request,
                400,
                "No authorization is waiting in this browser",
                "The link was already used or belongs to another browser. Start again.",
            )
        try:
            code = parse_callback(
                "?" + request.url.query,
                pending,
                now=time.time(),
                max_age=self.config.pending_ttl,
            )
        except CallbackError as exc:
            log.info("callback rejected: %s", exc.error)
            if exc.from_server:
                detail = f"The utility answered {exc.error}"
                detail += f": {exc.description}" if exc.description else "."
                return self.error(request, 400, "The account was not connected", detail)
            return self.error(
                request, 400, "This authorization cannot be completed", "Please start again."
            )
        try:
            key, token = await self.client.exchange_code(
                code, redirect_uri=pending.redirect_uri, code_verifier=pending.code_verifier
            )
        except GreenButtonError as exc:
            log.warning("code exchange failed: %s", type(exc).__name__)
            return self.error(
                request,
                502,
                "The utility did not accept the authorization",
                "Please try connecting again.",
            )
        # the same grant again: a revocation still owed for it is not owed any more (R22)
        await self.revocations.reconnected(token.authorization_uri)
        # One customer, one key (utility, subscription): signing in again updated the stored
        # authorization in place. Say which case this was; never add an account twice.
        already = key in session.accounts
        returning = not already and await anyio.to_thread.run_sync(self._has_data, key)
        # a privilege change: the session moves to a new id, the old one is dead (fixation)
        rotated = await anyio.to_thread.run_sync(self.sessions.add_account, session.id, key)
        if rotated is None:
            return self.error(
                request, 400, "This browser's session ended", "Please start connecting again."
            )
        notice = "same" if already else "welcome" if returning else None
        target = "/account" if notice is None else f"/account?notice={notice}"
        response: Response
        if "text/html" in request.headers.get("accept", ""):
            # a browser: "fetching your data" at once, then on to the account page
            response = StreamingResponse(self._loading(request, key, target),
                                         media_type="text/html; charset=utf-8")  # fmt: skip
        else:
            await self._first_pull_logged(key)
            response = RedirectResponse(target, status_code=303)
        self._set_cookie(request, response, rotated[1])
        return response

    async def _first_pull_logged(self, key: str) -> None:
        """The first pull, then the customer's name, address and bills read afresh (the
        account page only reads them from the cache while they are fresh)."""
        try:
            await self.first_pull(key)
        except Exception as exc:  # the account stays connected (new session); data can follow
            log.warning("first data pull failed: %s", type(exc).__name__)
        try:
            await self.facts(key, refresh=True)
        except Exception as exc:  # names and bills are extras: the readings are shown anyway
            log.warning("customer facts not read: %s", type(exc).__name__)

    async def _loading(self, request: Request, key: str, target: str) -> AsyncIterator[bytes]:
        """The page a browser sees while the first pull runs (1-4 s at a real utility): its
        top half streams at once (the browser renders it), the bottom half after the pull,
        with a ``<meta http-equiv=refresh>`` to ``target``. No script: the CSP allows none."""
        template = self.templates.get_template("loading.html")
        head, _, tail = template.render(request=request, target=target).partition("<!--pull-->")
        yield head.encode()
        await self._first_pull_logged(key)
        yield tail.encode()

    def _has_data(self, key: str) -> bool:
        """Readings are stored for ``key`` already: a returning customer."""
        found = authorization_points(self.store, key, self.namespace)
        return found is not None and any(p.readings for p in found[1])

    async def _checked_form(self, request: Request) -> tuple[Session, FormData] | Response:
        """The session and the posted form of a CSRF-protected POST, or the answer that
        refuses it (400 for a body cut short, 403 for a missing or stale token)."""
        session = await self.session_of(request)
        try:
            form = await request.form(max_files=0, max_fields=8)
        except ClientDisconnect:
            return PlainTextResponse("incomplete body\n", status_code=400)
        token = form.get("csrf")
        if session is None or not session.csrf_ok(token if isinstance(token, str) else None):
            return self.error(request, 403, "This form has expired", "Reload the page and retry.")
        return session, form

    async def signout(self, request: Request) -> Response:
        """End this browser's session (CSRF-checked POST); the accounts stay connected."""
        checked = await self._checked_form(request)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        await anyio.to_thread.run_sync(self.sessions.end, session.id)
        response = RedirectResponse("/?signedout=1", status_code=303)
        response.delete_cookie(
            self.cookie_name,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure_cookies or request.url.scheme == "https",
        )
        return response

    async def first_pull(self, key: str) -> None:
        """The last ``first_pull_days`` of each usage point, stored at once: window jobs
        like those ``sync`` plans, run by the job engine (same URIs, same rules)."""
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=self.config.first_pull_days)
        listing = await self.client.usage_points(key)
        subs = await anyio.to_thread.run_sync(active_subscriptions, self.store, self.namespace)
        found = next(((sub, aid) for sub, (aid, k) in subs.items() if k == key), None)
        if found is None:
            return
        sub, auth_id = found
        for up in listing.usage_points:
            if not up.id:
                continue
            uri = window_uri(self.client, sub, up.id, start, end)
            plan = partial(enqueue, self.store, uri, authorization_id=auth_id, authorization=key)
            job = await anyio.to_thread.run_sync(plan)
            if job is not None:
                await self.jobs.arun(self.client, job)

    def _zone(self, key: str) -> tuple[tzinfo, str]:
        """The usage point's local time as ingest stored it (UTC without one)."""
        return time_zone_of(local_time_of(self.store, self.namespace, key))

    # -- account pages --------------------------------------------------------------------

    async def account(self, request: Request) -> Response:
        session = await self.session_of(request)
        if session is None or not session.accounts:
            return RedirectResponse("/", status_code=303)
        choice = range_choice(request.query_params.get("range"))
        keys = list(session.accounts)
        facts = {key: await self.facts(key) for key in keys}
        views = await anyio.to_thread.run_sync(self._account_views, keys, facts, choice)
        notice = _ACCOUNT_NOTICES.get(request.query_params.get("notice", ""))
        page = {"accounts": views, "csrf": session.csrf, "notice": notice, "parquet": self.parquet}
        return self.page(request, "account.html", {**page, **page_context(choice)})

    async def facts(self, key: str, *, refresh: bool = False) -> _Facts:
        """The customer's name and address (RetailCustomer feed) and each stored usage
        point's bills (UsageSummary), from this process's cache or the utility. Whatever
        the utility refuses or does not answer in time is left out: the page shows
        readings without it."""
        cached = self._facts.get(key)
        if cached is not None and not refresh and time.time() - cached.fetched < _FACTS_TTL:
            return cached
        # a failed fetch keeps what was known and waits out the TTL too: a page view never
        # hammers a utility that is down (its breaker, R59, is the revocations' as well)
        facts = _Facts(fetched=time.time())
        if cached is not None:
            facts.customer, facts.bills = cached.customer, dict(cached.bills)
        self._facts[key] = facts
        with anyio.move_on_after(_FACTS_TIMEOUT):
            try:
                doc = await self.client.retail_customer(key)
                facts.customer = analysis.customer_facts(doc)
            except Exception as exc:  # not in the grant's scope, refused, malformed
                log.info("no customer facts: %s", type(exc).__name__)
            found = await anyio.to_thread.run_sync(
                authorization_points, self.store, key, self.namespace
            )
            for up in found[1] if found is not None else []:
                point_id = up.key.rstrip("/").rpartition("/")[2]
                try:
                    doc = await self.client.usage_summaries(key, point_id)
                except Exception as exc:
                    log.info("no usage summaries: %s", type(exc).__name__)
                    continue
                summaries = [*doc.usage_summaries]
                summaries += [u for p in doc.usage_points for u in p.usage_summaries]
                facts.bills[up.key] = analysis.bills(summaries, self.config.profile.cost_scale)
        return facts

    def _account_views(
        self, keys: Sequence[str], facts: dict[str, _Facts], choice: analysis.RangeChoice
    ) -> list[AccountView]:
        views = []
        for index, key in enumerate(keys):
            found = authorization_points(self.store, key, self.namespace)
            if found is None:
                continue
            status, stored = found
            known = facts.get(key)
            points = []
            for number, up in enumerate(stored, 1):
                tz, zone = self._zone(up.key)
                bills = known.bills.get(up.key, []) if known else []
                points.append(
                    point_view(
                        self.store,
                        self.namespace,
                        up,
                        index=index,
                        number=number,
                        many=len(stored) > 1,
                        tz=tz,
                        zone=zone,
                        choice=choice,
                        bills=bills,
                    )  # fmt: skip
                )
            customer = known.customer if known else None
            views.append(account_view(index, status, customer, points, len(keys)))
        return views

    async def download(self, request: Request) -> Response:
        """The customer's own readings of one connected account as CSV or Parquet (the
        readings table, DESIGN 3.3, by ``table.write_readings``); only an account of this
        browser's session."""
        session = await self.session_of(request)
        if session is None or not session.accounts:
            return RedirectResponse("/", status_code=303)
        fmt = request.path_params["fmt"]
        try:
            key = session.accounts[int(request.path_params["index"])]
        except (ValueError, IndexError):
            key = None
        if key is None or fmt not in _DOWNLOADS or (fmt == "parquet" and not self.parquet):
            return self.error(request, 404, "No such download", "Go back to your account.")
        body = await anyio.to_thread.run_sync(self._readings_file, key, fmt)
        name = f"energy-readings.{fmt}"
        return Response(
            body,
            media_type=_DOWNLOADS[fmt],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    def _readings_file(self, key: str, fmt: Literal["csv", "parquet"]) -> bytes:
        from ..table import write_readings

        found = authorization_points(self.store, key, self.namespace)
        out = io.BytesIO()
        rows = (
            row
            for up in (found[1] if found is not None else [])
            for row in export_readings(self.store, usage_point=up.key, namespace=self.namespace)
        )
        write_readings(rows, out, format=fmt)
        return out.getvalue()

    async def disconnect(self, request: Request) -> Response:
        if request.method == "GET":
            return await self.confirm_disconnect(request)
        checked = await self._checked_form(request)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        try:
            key = session.accounts[int(str(form.get("account", "")))]
        except (ValueError, IndexError):
            return self.error(request, 400, "No such account", "Reload the page and retry.")
        # R22: the local tokens go now whatever the utility answers; a revocation it does
        # not confirm is retried by the worker
        confirmed = await self.revocations.disconnect(key)
        rotated = await anyio.to_thread.run_sync(self.sessions.remove_account, session.id, key)
        word = "confirmed" if confirmed else "pending"
        response = RedirectResponse(f"/?disconnected={word}", status_code=303)
        self._set_cookie(request, response, None if rotated is None else rotated[1])
        return response

    async def confirm_disconnect(self, request: Request) -> Response:
        """``GET /disconnect?account=N``: what disconnecting does, and the POST form that
        does it (no script: the page is the confirmation)."""
        session = await self.session_of(request)
        if session is None or not session.accounts:
            return RedirectResponse("/", status_code=303)
        try:
            index = int(request.query_params.get("account", ""))
            key = session.accounts[index]
        except (ValueError, IndexError):
            return self.error(request, 404, "No such account", "Go back to your account.")
        known = await self.facts(key)
        title = known.customer.name if known.customer and known.customer.name else "this account"
        context = {"title": title, "index": index, "csrf": session.csrf}
        return self.page(request, "confirm_disconnect.html", context)

    async def not_found(self, request: Request, exc: Exception) -> Response:
        """A page for any unknown path, in the site's style (not Starlette's bare text)."""
        return self.error(
            request, 404, "Page not found", "There is nothing at this address on this site."
        )

    async def server_error(self, request: Request, exc: Exception) -> Response:
        """A page for a failure of ours, in the site's style; no detail of the error reaches
        the browser (Starlette logs the traceback after this answer)."""
        try:
            return self.error(
                request,
                500,
                "Something went wrong on our side",
                "Your account and data are safe. Try again in a minute; if it keeps "
                "happening, tell us what you were doing.",
            )
        except Exception:  # the page itself failed (the database is down): plain text
            return PlainTextResponse("Something went wrong on our side.", status_code=500)

    async def favicon(self, request: Request) -> Response:
        return RedirectResponse("/static/favicon.svg", status_code=301)

    # -- notifications (R39-R45) ----------------------------------------------------------

    def _trusted(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in net for net in self.proxies)

    def _source(self, request: Request, peer: IPAddress | None) -> IPAddress | None:
        """The caller's address: the TCP peer, or behind a trusted proxy the rightmost
        X-Forwarded-For entry that is not a trusted proxy (None if malformed)."""
        if not self._trusted(peer):
            return peer
        hops = [h.strip() for v in request.headers.getlist("x-forwarded-for") for h in v.split(",")]
        for hop in reversed(hops):
            try:
                address = ipaddress.ip_address(hop)
            except ValueError:
                return None
            if not self._trusted(address):
                return address
        return peer

    def _refusal(self, request: Request) -> str | None:
        """Why the caller may not notify (R32, R40), or None: the channel is the only
        origin proof of an unsigned BatchList."""
        try:
            peer = ipaddress.ip_address(request.client.host) if request.client else None
        except ValueError:
            peer = None
        via_proxy = self._trusted(peer)
        if self.proxies and not via_proxy:
            names = {*_FORWARDING, self.cert_header} - {""}
            if any(name in request.headers for name in names):
                return "forwarding headers from a peer that is not a trusted proxy"
        if self.allow:
            source = self._source(request, peer)
            if source is None or not any(source in net for net in self.allow):
                return "source address not in the notification allowlist"
        if self.config.client_ca is None:
            return None
        if via_proxy and self.cert_header:
            subject = forwarded_certificate(
                request.headers.get(self.cert_header),
                self.client_cas,
                datetime.now(UTC),
                self.config.client_subject,
            )
        else:
            subject = client_certificate(request.scope, self.config.client_subject)
        return None if subject is not None else "no verified client certificate"

    async def notification(self, request: Request) -> Response:
        refusal = self._refusal(request)
        if refusal is not None:
            log.warning("notification refused: %s", refusal)
            return PlainTextResponse("forbidden\n", status_code=403)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in _XML_TYPES:
            return PlainTextResponse("unsupported media type\n", status_code=415)
        cap = self.config.max_notification_bytes
        declared = request.headers.get("content-length")
        # ASCII digits only: str.isdigit() also accepts "²", which int() then refuses
        digits = declared is not None and declared.isascii() and declared.isdigit()
        if declared is not None and (not digits or int(declared) > cap):
            return PlainTextResponse("body too large\n", status_code=413)
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > cap:
                    return PlainTextResponse("body too large\n", status_code=413)
        except ClientDisconnect:  # gone (or cut off by the server's body timeout): no answer
            return PlainTextResponse("incomplete body\n", status_code=400)
        limit = self.config.max_notification_uris
        if len(_RESOURCES_TAG.findall(body)) > limit:
            return PlainTextResponse("too many resources\n", status_code=413)
        # The web boundary never answers 500 on input (SECURITY R37, R39): whatever parsing
        # or validating hostile bytes raises is the sender's 4xx, logged by type only.
        try:
            doc = parse(bytes(body), limits=Limits(max_batch_resources=limit), name="BatchList")
        except ParseError:
            return PlainTextResponse("malformed BatchList\n", status_code=400)
        except Exception as exc:  # a parser bug on hostile input is still the input's fault
            log.error("notification body broke the parser: %s", type(exc).__name__)
            return PlainTextResponse("malformed BatchList\n", status_code=400)
        if doc.batch_list is None or not doc.batch_list.resources:
            return PlainTextResponse("not a BatchList\n", status_code=400)
        try:
            targets = [
                validate_notified_uri(u, self.resource_url) for u in doc.batch_list.resources
            ]
        except RejectedURI as exc:
            log.warning("notification rejected: %s", exc)
            return PlainTextResponse("rejected resource URI\n", status_code=400)
        except Exception as exc:
            log.error("notified URI broke the validator: %s", type(exc).__name__)
            return PlainTextResponse("rejected resource URI\n", status_code=400)
        try:
            created, unmatched = await anyio.to_thread.run_sync(self._enqueue, targets)
        except Exception as exc:  # storage outage or bug: nothing acknowledged (R44)
            log.error("notification not queued: %s", type(exc).__name__)
            return PlainTextResponse(
                "try again later\n", status_code=503, headers={"Retry-After": "30"}
            )
        if self._wake is not None:
            self._wake.set()
        return PlainTextResponse(f"queued {created}, unmatched {unmatched}\n", status_code=200)

    def _enqueue(self, targets: Sequence[NotifiedURI]) -> tuple[int, int]:
        """Commit one job per new URI (the job engine's ``enqueue``); our records pick the
        authorization (R42), a known URI collapses into its job (R45). Returns (created,
        unmatched)."""
        created = unmatched = 0
        by_sub = active_subscriptions(self.store, self.namespace)
        for target in {t.url: t for t in targets}.values():
            auth: tuple[int, str] | None = None
            if target.kind == "subscription":
                auth = by_sub.get(target.resource_id)
                if auth is None:
                    log.warning("notification for an unknown subscription: not fetched")
                    unmatched += 1
                    continue
            job = enqueue(
                self.store,
                target.url,
                authorization_id=None if auth is None else auth[0],
                authorization=None if auth is None else auth[1],
                fresh_for=_DUPLICATE_WINDOW,
            )
            created += job is not None and job.new
        return created, unmatched

    # -- background ingest: the job engine's async driver ------------------------------------

    async def run_jobs(self) -> int:
        """Run every due job of this custodian once (whoever planned it: a notification,
        ``greenbutton sync``); returns how many were tried.

        Same rules as every runner (``storage.JobRunner``): a job out of attempts is
        abandoned; an authorization the custodian refuses waits for the next round; when
        the client will not send (open circuit R59, used-up quota R58) the round stops, the
        refused job keeps its attempt and the rest wait, unattempted. Whatever one job
        raises, it is recorded on the job and the loop goes on; only the database failing
        ends the round."""
        limit = self.config.job_attempts
        jobs = await anyio.to_thread.run_sync(
            partial(
                due_jobs,
                self.store,
                resource_url=self.resource_url,
                utility=self.namespace,
                max_attempts=limit,
            )  # fmt: skip
        )
        refused: set[int] = set()
        for tried, job in enumerate(jobs, 1):
            if job.authorization_id in refused:
                continue
            try:
                outcome = await self.jobs.arun(self.client, job)
            except StorageError:
                raise
            except Exception as exc:
                log.error("ingest job %d failed: %s", job.id, type(exc).__name__)
                continue
            if outcome is None:  # another worker or a sync holds it
                continue
            if outcome.deferred is not None:
                log.warning("ingest paused for %.0f s: %s", outcome.deferred.retry_after,
                            type(outcome.deferred).__name__)  # fmt: skip
                return tried
            if outcome.error is not None:
                log.warning("ingest job %d failed: %s", job.id, outcome.error.split(":")[0])
                if outcome.refused and job.authorization_id is not None:
                    refused.add(job.authorization_id)
                if job.attempts + 1 >= limit:
                    await anyio.to_thread.run_sync(partial(abandon, self.store, job.id))
        return len(jobs)

    async def worker(self) -> None:
        """Run due jobs when a notification arrives, and every ``job_poll_seconds``.

        First, grants stored by older versions get this utility's identity (DESIGN 3.7)."""
        try:
            adopt = partial(adopt_authorizations, self.store, self.namespace, self.resource_url)
            await anyio.to_thread.run_sync(adopt)
        except (StorageError, SQLAlchemyError) as exc:
            log.error("stored authorizations not adopted: %s", type(exc).__name__)
        while True:
            self._wake = anyio.Event()
            try:
                await self.run_jobs()
            except Exception as exc:  # the database, or a bug: this round ends, the loop goes on
                log.error("ingest round failed: %s", type(exc).__name__)
            try:  # R22: revocations the utility has not confirmed yet
                await self.revocations.run_due()
            except Exception as exc:
                log.error("revocation round failed: %s", type(exc).__name__)
            with anyio.move_on_after(self.config.job_poll_seconds):
                await self._wake.wait()


def create_app(config: WebConfig, store: Store | None = None) -> Starlette:
    """The web app for ``config``; ``store`` defaults to ``Store.open(config.database_url)``.

    The lifespan runs the ingest worker and closes the client (and a store it opened).
    ``app.state.greenbutton`` is the instance (tests call its ``run_jobs``).
    """
    owned = store is None
    web = _Web(config, store if store is not None else Store.open(config.database_url))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(web.worker)
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()
        finally:
            await web.client.aclose()
            if owned:
                web.store.close()

    routes = [
        *Ops(web.store, web.client, config.profile, config.credentials).routes,
        *Admin.for_app(web, config).routes,
        Route("/", web.home, name="home"),
        Route("/connect", web.connect, name="connect"),
        Route("/Goto_login", web.connect, name="goto_login"),
        Route("/signin", web.connect, name="signin"),  # the same flow: the utility says who
        Route("/signout", web.signout, methods=["POST"], name="signout"),
        Route("/get_auth_code", web.get_auth_code, name="get_auth_code"),
        Route("/OAuthCallback", web.callback, name="callback"),
        Route("/account", web.account, name="account"),
        Route("/account/{index:int}/readings.{fmt}", web.download, name="download"),
        Route("/disconnect", web.disconnect, methods=["GET", "POST"], name="disconnect"),
        Route("/favicon.ico", web.favicon, name="favicon"),
        Route("/espi/1_1/Notification", web.notification, methods=["POST"], name="notification"),
        Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_SecurityHeaders)],
        lifespan=lifespan,
        exception_handlers={404: web.not_found, 500: web.server_error},
    )
    app.state.greenbutton = web
    return app
