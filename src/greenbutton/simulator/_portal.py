"""The customer-facing portal: the authorize endpoint ``/myAuthorization``, the login page,
the consent page, and ``/myAuthorizations`` where a signed-in customer sees and revokes their
authorizations, which notifies the third party (GBA PSH002) (DESIGN 4, SECURITY R68).

The authorize request is validated by oauthlib (:mod:`._oauth`), which also issues the code.
Errors follow the GBA table: unknown ``client_id`` → 401 page and a missing or unregistered
``redirect_uri`` → 400 page (never a redirect to an unvalidated URI); everything else, such
as a missing ``response_type`` or a bad scope, → 302 back to the registered URI with
``error=...``.

A valid request then needs a signed-in customer (login form) and their consent (Approve /
Deny form), unless ``config.auto_approve`` names the customer, which skips both. The browser
session is Starlette's signed-cookie session (``portal_middleware``) keyed by a secret drawn
at each start, so a restart signs everyone out, like the codes and tokens it forgets. Both
forms carry a per-session CSRF token (403 when wrong) on top of ``SameSite=Lax``. The request
being consented to is kept in the session, never re-read from the form, so a forged POST
cannot change what the customer approves.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader
from oauthlib.common import add_params_to_uri  # type: ignore[import-untyped]
from oauthlib.oauth2.rfc6749 import errors  # type: ignore[import-untyped]
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..client import get_logger
from ._config import PATHS
from ._notify import Notifier
from ._oauth import OAuthServer, oauth_server
from ._simulator import Simulator
from ._state import Customer, new_secret

__all__ = ["SESSION_COOKIE", "portal_middleware", "portal_routes"]

log = get_logger(__name__)

SESSION_COOKIE = "gb_portal_session"
_SESSION_MAX_AGE = 3600
_MAX_FIELD = 4096  # form fields and query strings beyond this are refused

_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    ),
}

_PROFILE_LABELS = {
    "electric_15min": "Electricity, 15-minute intervals",
    "electric_hourly": "Electricity, hourly intervals",
    "solar_net": "Electricity, net metered (solar): delivered and received",
    "gas_daily": "Natural gas, daily (therms)",
}

_STATUS = {0: "revoked", 1: "active", 2: "denied"}  # ESPI AuthorizationStatus

_templates = Environment(
    loader=PackageLoader("greenbutton.simulator", "templates"),
    autoescape=True,
    auto_reload=False,
)


def portal_middleware(sim: Simulator) -> list[Middleware]:
    """Middleware the portal app must install (outermost first): the signed session cookie,
    ``HttpOnly; SameSite=Lax; Secure``, its key fresh at every start."""
    return [
        Middleware(
            SessionMiddleware,
            secret_key=new_secret(32),
            session_cookie=SESSION_COOKIE,
            max_age=_SESSION_MAX_AGE,
            same_site="lax",
            https_only=True,
        )
    ]


def portal_routes(sim: Simulator) -> list[BaseRoute]:
    """``GET/POST PATHS.AUTHORIZE`` (request, consent) and ``GET/POST PATHS.LOGIN``.
    Needs :func:`portal_middleware` on the same app."""
    portal = _Portal(sim, oauth_server(sim))
    return [
        Route(PATHS.AUTHORIZE, portal.authorize, methods=["GET", "POST"], name="authorize"),
        Route(PATHS.LOGIN, portal.login, methods=["GET", "POST"], name="login"),
        Route(
            PATHS.MY_AUTHORIZATIONS,
            portal.authorizations,
            methods=["GET", "POST"],
            name="authorizations",
        ),
    ]


class _Invalid(Exception):
    """An authorize request that must not be redirected: answer with this page."""

    def __init__(self, response: Response):
        super().__init__(response.status_code)
        self.response = response


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)


def _message(status: int, heading: str, message: str, *, error: bool = True) -> HTMLResponse:
    return _page("message.html", status, heading=heading, message=message, error=error)


def _redirect(location: str, status: int) -> Response:
    return RedirectResponse(
        location,
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _same(a: object, b: object) -> bool:
    return isinstance(a, str) and isinstance(b, str) and hmac.compare_digest(a.encode(), b.encode())


def _csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = new_secret()
        request.session["csrf"] = token
    return token


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if isinstance(value, str) and len(value) <= _MAX_FIELD and len(form.getlist(name)) == 1:
        return value
    return None


def _scope_items(scope: str) -> list[tuple[str, str]]:
    """The ESPI scope's ``key=value`` pairs, for display only (ESPI_NOTES 2.3)."""
    items = []
    for piece in scope.split(";"):
        key, _, value = piece.strip().partition("=")
        if key:
            items.append((key.strip(), value.strip()))
    return items


class _Portal:
    def __init__(self, sim: Simulator, server: OAuthServer):
        self.sim = sim
        self.server = server

    # -- authorize ------------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._consent_post(request)
        query = request.url.query
        try:
            scopes, info = self._validate(query)
        except _Invalid as invalid:
            return invalid.response
        auto = self.sim.config.auto_approve
        if auto is not None:
            return self._approve(query, scopes, auto, status=302)
        request.session["pending"] = {"id": new_secret(), "query": query}
        customer = self._signed_in(request)
        if customer is None:
            return _redirect(PATHS.LOGIN, 303)
        return self._consent_page(request, customer, info)

    def _validate(self, query: str) -> tuple[list[str], dict[str, Any]]:
        """oauthlib's checks; raises :class:`_Invalid` with the page or redirect to send."""
        if len(query) > 4 * _MAX_FIELD:
            raise _Invalid(_message(400, "Invalid request", "The request is too long."))
        try:
            scopes, info = self.server.validate_authorization_request(
                f"{self.sim.authorize_url}?{query}", http_method="GET"
            )
        except errors.InvalidClientIdError:
            # GBA: an unknown client is 401 and never redirected.
            raise _Invalid(
                _message(401, "Unknown application", "This application is not registered.")
            ) from None
        except errors.FatalClientError as exc:
            raise _Invalid(
                _message(400, "Invalid request", exc.description or "Invalid request.")
            ) from None
        except errors.OAuth2Error as exc:
            # Fatal checks (client, redirect URI) pass before any redirectable error.
            if exc.redirect_uri != self.sim.state.registration.redirect_uri:
                raise _Invalid(_message(400, "Invalid request", "Invalid redirect_uri.")) from None
            raise _Invalid(_redirect(exc.in_uri(exc.redirect_uri), 302)) from None
        except ValueError:
            raise _Invalid(_message(400, "Invalid request", "Malformed query string.")) from None
        return scopes, info

    def _approve(self, query: str, scopes: list[str], username: str, *, status: int) -> Response:
        """Issue the code (oauthlib) and create the Authorization; redirect to the client."""
        if username not in self.sim.state.customers:
            return _message(500, "Configuration error", "The auto-approve customer is unknown.")
        try:
            headers, _, _ = self.server.create_authorization_response(
                f"{self.sim.authorize_url}?{query}",
                http_method="GET",
                scopes=scopes,
                credentials={"customer": username},
            )
        except errors.FatalClientError as exc:
            return _message(400, "Invalid request", exc.description or "Invalid request.")
        return _redirect(headers["Location"], status)

    # -- consent --------------------------------------------------------------------------------

    def _consent_page(
        self, request: Request, customer: Customer, info: dict[str, Any]
    ) -> HTMLResponse:
        scope = " ".join(info["request"].scopes)
        return _page(
            "consent.html",
            customer_name=customer.name or customer.username,
            username=customer.username,
            client_id=info["client_id"],
            redirect_uri=info["redirect_uri"],
            usage_points=[
                {"id": up.id, "label": _PROFILE_LABELS.get(up.profile, up.profile)}
                for up in customer.usage_points
            ],
            scope=scope,
            scope_items=_scope_items(scope),
            csrf_token=_csrf_token(request),
            request_id=request.session["pending"]["id"],
            action=PATHS.AUTHORIZE,
        )

    async def _consent_post(self, request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=8)
        if not _same(_field(form, "csrf_token"), request.session.get("csrf")):
            return _message(403, "Forbidden", "The form has expired or was not sent by this site.")
        customer = self._signed_in(request)
        if customer is None:
            return _message(403, "Forbidden", "Sign in first.")
        pending = request.session.pop("pending", None)
        if not isinstance(pending, dict) or not _same(
            _field(form, "request_id"), pending.get("id")
        ):
            return _message(400, "No pending request", "This request was already answered.")
        query = pending.get("query")
        if not isinstance(query, str):  # pragma: no cover - the session is signed by us
            return _message(400, "No pending request", "This request was already answered.")
        try:
            scopes, info = self._validate(query)
        except _Invalid as invalid:
            return invalid.response
        decision = _field(form, "decision")
        if decision == "approve":
            return self._approve(query, scopes, customer.username, status=303)
        if decision == "deny":
            params = [
                ("error", "access_denied"),
                ("error_description", "The customer denied access."),
            ]
            if info.get("state"):
                params.append(("state", info["state"]))
            log.info("customer %s denied access", customer.username)
            return _redirect(add_params_to_uri(info["redirect_uri"], params), 303)
        return _message(400, "Invalid request", "Choose Approve or Deny.")

    # -- the customer's authorizations (GBA PSH002) ------------------------------------------

    async def authorizations(self, request: Request) -> Response:
        """GET: the signed-in customer's authorizations; POST: revoke one. A revocation ends
        its tokens at once (401, like any revoked token) and notifies the third party with
        a BatchList naming the Authorization URI, as a custodian notifies new data."""
        customer = self._signed_in(request)
        if request.method == "GET":
            if customer is None:
                request.session["next"] = PATHS.MY_AUTHORIZATIONS
                return _redirect(PATHS.LOGIN, 303)
            notice = request.session.pop("notice", "")
            return self._authorizations_page(request, customer, notice=notice)
        form = await request.form(max_files=0, max_fields=8)
        if not _same(_field(form, "csrf_token"), request.session.get("csrf")):
            return _message(403, "Forbidden", "The form has expired or was not sent by this site.")
        if customer is None:
            return _message(403, "Forbidden", "Sign in first.")
        auth_id = _field(form, "authorization_id") or ""
        state = self.sim.state
        with state.lock:
            grant = state.grants.get(auth_id)
            mine = grant is not None and grant.customer == customer.username
            active = mine and grant is not None and grant.status == 1
        if not mine:
            return _message(404, "Not found", "You have no such authorization.")
        if active and state.revoke_authorization(auth_id):
            log.info("customer %s revoked authorization %s", customer.username, auth_id)
            self._notify_change(auth_id)
            request.session["notice"] = "The authorization was revoked."
        return _redirect(PATHS.MY_AUTHORIZATIONS, 303)

    def _notify_change(self, auth_id: str) -> None:
        notifier = self.sim.notifier
        if notifier is None:  # a portal without the API app (tests): start one
            notifier = self.sim.notifier = Notifier(self.sim)
        notifier.notify([f"{self.sim.resource_url.rstrip('/')}/Authorization/{auth_id}"])

    def _authorizations_page(
        self, request: Request, customer: Customer, *, notice: str = ""
    ) -> HTMLResponse:
        with self.sim.state.lock:
            grants = sorted(
                (g for g in self.sim.state.grants.values() if g.customer == customer.username),
                key=lambda g: (g.created_at, g.id),
            )
        rows = [
            {
                "id": g.id,
                "since": datetime.fromtimestamp(g.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "status": _STATUS.get(g.status, str(g.status)),
                "active": g.status == 1,
            }
            for g in grants
        ]
        return _page(
            "authorizations.html",
            customer_name=customer.name or customer.username,
            username=customer.username,
            client_id=self.sim.state.registration.client_id,
            grants=rows,
            notice=notice,
            csrf_token=_csrf_token(request),
            action=PATHS.MY_AUTHORIZATIONS,
        )

    # -- login ----------------------------------------------------------------------------------

    def _signed_in(self, request: Request) -> Customer | None:
        username = request.session.get("user")
        if isinstance(username, str):
            return self.sim.state.customers.get(username)
        return None

    async def login(self, request: Request) -> Response:
        pending = request.session.get("pending") is not None
        if request.method == "GET":
            return self._login_page(request, pending=pending)
        form = await request.form(max_files=0, max_fields=8)
        if not _same(_field(form, "csrf_token"), request.session.get("csrf")):
            return _message(403, "Forbidden", "The form has expired or was not sent by this site.")
        username = _field(form, "username") or ""
        password = _field(form, "password")
        customer = self.sim.state.customers.get(username)
        # Compare against something even for an unknown user, so timing does not tell.
        expected = customer.password if customer is not None else new_secret()
        if customer is None or not _same(password, expected):
            return self._login_page(
                request,
                pending=pending,
                status=401,
                error="Unknown username or wrong password.",
                username=username,
            )
        request.session["user"] = customer.username
        request.session["csrf"] = new_secret()  # a new token once signed in
        log.info("customer %s signed in", customer.username)
        stored = request.session.get("pending")
        if isinstance(stored, dict) and isinstance(stored.get("query"), str):
            return _redirect(f"{PATHS.AUTHORIZE}?{stored['query']}", 303)
        if request.session.pop("next", None) == PATHS.MY_AUTHORIZATIONS:
            return _redirect(PATHS.MY_AUTHORIZATIONS, 303)
        return _message(
            200,
            "Signed in",
            f"You are signed in as {customer.username}. Applications you use will send you "
            "here to ask for your consent.",
            error=False,
        )

    def _login_page(
        self,
        request: Request,
        *,
        pending: bool,
        status: int = 200,
        error: str = "",
        username: str = "",
    ) -> HTMLResponse:
        return _page(
            "login.html",
            status,
            pending=pending,
            error=error,
            username=username,
            csrf_token=_csrf_token(request),
            action=PATHS.LOGIN,
        )
