"""The operator console at ``/admin`` (DESIGN 3.7): who is connected and how fresh their
data is, which jobs failed and why, the utility's limits, the client certificate's expiry.

Only operators created with ``greenbutton admin add-user`` get in (``storage._admin``:
scrypt hashes, failures counted in the database). The login form is CSRF-protected before
anyone is signed in: the form's token is an HMAC of a random value in a short-lived cookie
(a forged cross-site POST has neither). A login makes a new session id every time (the
id someone could have planted before it opens nothing); the cookie holds that id signed,
``HttpOnly``, ``SameSite=Strict``, ``Secure`` and ``__Host-`` prefixed over HTTPS. Every
POST after login carries an HMAC of the session id. Failed logins are limited twice: per
operator in the database (locked after 5 in a row, every process sees it) and per client
address in this process (``ADDRESS_FAILURES`` per ``ADDRESS_WINDOW``), and at most
``HASHES_AT_ONCE`` scrypt checks run at once (each takes 128 MiB), so a flood of logins
costs neither the memory nor the event loop. No customer token is ever read here: the pages
show keys, states and times.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from itsdangerous import BadSignature, TimestampSigner
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from ..client import certificate_expiry, client_limits
from ..models import Credentials, UtilityProfile
from ..storage import (
    Store,
    accounts,
    admin_logout,
    admin_session,
    check_admin_login,
    open_jobs,
    retry_job,
)
from ._config import WebConfig
from ._sessions import derived_cookie_key

__all__ = ["ADDRESS_FAILURES", "ADDRESS_WINDOW", "Admin"]

_HERE = Path(__file__).resolve().parent
ADDRESS_FAILURES = 20  # failed logins from one address ...
ADDRESS_WINDOW = 900.0  # ... per this many seconds
HASHES_AT_ONCE = 2
SESSION_IDLE = 3600.0  # s: an operator's session ends an hour after its last use
SESSION_LIFETIME = 12 * 3600.0  # s: and twelve hours after login
LOGIN_FORM_TTL = 1800  # s a login form stays valid
STALE_AFTER = 2 * 86400  # s without new data before an authorization is "stale"
CERT_WARN_DAYS = 30


def _ago(seconds: float) -> str:
    if seconds < 3600:
        return f"{max(0, int(seconds // 60))} min ago"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "–"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True, slots=True)
class _AuthRow:
    key: str
    status: str
    points: int
    readings: int
    last_data: str
    freshness: str  # fresh, stale, none, reauth
    age: str
    updated: str
    pending: int
    failed: int
    abandoned: int


class Admin:
    """The console of one app: ``routes`` to mount."""

    def __init__(
        self,
        store: Store,
        client: Any,
        profile: UtilityProfile,
        credentials: Credentials,
        *,
        cookie_key: bytes,
        secure: bool,
        source: Callable[[Request, Any], Any] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.profile = profile
        self.credentials = credentials
        self.secure = secure
        self._source = source
        self.cookie = "__Host-gb_admin" if secure else "gb_admin"
        self.login_cookie = "__Host-gb_admin_login" if secure else "gb_admin_login"
        self._key = hmac.new(cookie_key, b"greenbutton.web.admin", hashlib.sha256).digest()
        self._signer = TimestampSigner(self._key, salt="greenbutton.web.admin.session")
        self.templates = Jinja2Templates(directory=str(_HERE / "templates"))
        self._failures: dict[str, deque[float]] = {}
        self._hashing = anyio.CapacityLimiter(HASHES_AT_ONCE)

    @classmethod
    def for_app(cls, web: Any, config: WebConfig) -> Admin:
        """The console of the app instance ``web`` (its store, client and cookie policy);
        cookies are signed with a key derived from the session key."""
        return cls(
            web.store,
            web.client,
            config.profile,
            config.credentials,
            cookie_key=config.session_key or derived_cookie_key(web.store),
            secure=bool(web.secure_cookies),
            source=getattr(web, "_source", None),  # the app's one trusted-proxy rule
        )

    @property
    def routes(self) -> list[Route]:
        return [
            Route("/admin", self.overview, name="admin"),
            Route("/admin/login", self.login, methods=["GET", "POST"], name="admin_login"),
            Route("/admin/logout", self.logout, methods=["POST"], name="admin_logout"),
            Route(
                "/admin/jobs/{job_id:int}/retry",
                self.retry,
                methods=["POST"],
                name="admin_retry",
            ),
        ]

    # -- tokens and cookies ---------------------------------------------------------------

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def _set(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name, value, max_age=max_age, httponly=True, samesite="strict",
            secure=self.secure, path="/",
        )  # fmt: skip

    def _unsign(self, value: str | None, max_age: float) -> str | None:
        if not value or len(value) > 512:
            return None
        try:
            return self._signer.unsign(value, max_age=int(max_age)).decode()
        except (BadSignature, UnicodeDecodeError):
            return None

    async def _operator(self, request: Request) -> tuple[str, str] | None:
        """(session id, operator name) of a signed-in operator, or None."""
        sid = self._unsign(request.cookies.get(self.cookie), SESSION_LIFETIME)
        if sid is None:
            return None
        look = partial(admin_session, self.store, sid, idle=SESSION_IDLE, lifetime=SESSION_LIFETIME)
        name = await anyio.to_thread.run_sync(look)
        return None if name is None else (sid, name)

    async def _form(self, request: Request) -> dict[str, str] | None:
        try:
            form = await request.form(max_files=0, max_fields=8, max_part_size=4096)
        except (ClientDisconnect, ValueError):
            return None
        return {k: v for k, v in form.items() if isinstance(v, str)}

    def _page(
        self, request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        return self.templates.TemplateResponse(
            request, name, {"utility": self.profile.name, **context}, status_code=status
        )

    # -- login ----------------------------------------------------------------------------

    def _address(self, request: Request) -> str:
        """The client's address as the app sees it (behind a trusted proxy, the forwarded
        one: else every operator behind it would share one failure count)."""
        host = request.client.host if request.client else ""
        if self._source is None:
            return host or "unknown"
        try:
            peer = ipaddress.ip_address(host)
        except ValueError:
            return host or "unknown"
        return str(self._source(request, peer) or host)

    def _address_blocked(self, address: str, now: float) -> float | None:
        """Seconds until ``address`` may try again, or None."""
        seen = self._failures.get(address)
        if not seen:
            return None
        while seen and seen[0] <= now - ADDRESS_WINDOW:
            seen.popleft()
        if not seen:
            del self._failures[address]
            return None
        return seen[0] + ADDRESS_WINDOW - now if len(seen) >= ADDRESS_FAILURES else None

    def _login_form(
        self, request: Request, *, error: str | None = None, status: int = 200,
        retry_after: float | None = None,
    ) -> Response:  # fmt: skip
        nonce = secrets.token_urlsafe(32)
        response = self._page(
            request,
            "admin_login.html",
            {"csrf": self._mac("login", nonce), "error": error},
            status,
        )
        self._set(response, self.login_cookie, self._signer.sign(nonce).decode(), LOGIN_FORM_TTL)
        if retry_after is not None:
            response.headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
        return response

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            if await self._operator(request) is not None:
                return RedirectResponse("/admin", status_code=303)
            return self._login_form(request)
        form = await self._form(request)
        nonce = self._unsign(request.cookies.get(self.login_cookie), LOGIN_FORM_TTL)
        token = (form or {}).get("csrf", "")
        if (
            form is None
            or nonce is None
            or not hmac.compare_digest(token.encode(), self._mac("login", nonce).encode())
        ):
            return self._login_form(
                request, error="The form expired. Please sign in again.", status=403
            )
        now = time.monotonic()
        address = self._address(request)
        wait = self._address_blocked(address, now)
        if wait is not None:
            return self._login_form(
                request, error="Too many failed sign-ins. Try again later.", status=429,
                retry_after=wait,
            )  # fmt: skip
        name, password = form.get("username", "").strip(), form.get("password", "")
        check = partial(check_admin_login, self.store, name, password)
        result = await anyio.to_thread.run_sync(check, limiter=self._hashing)
        if result.retry_after is not None:
            self._failures.setdefault(address, deque()).append(now)
            return self._login_form(
                request, error="Too many failed sign-ins. Try again later.", status=429,
                retry_after=result.retry_after,
            )  # fmt: skip
        if result.session is None:
            self._failures.setdefault(address, deque()).append(now)
            return self._login_form(request, error="Wrong name or password.", status=401)
        old = self._unsign(request.cookies.get(self.cookie), SESSION_LIFETIME)
        if old is not None:  # whatever session this browser had ends here
            await anyio.to_thread.run_sync(admin_logout, self.store, old)
        response = RedirectResponse("/admin", status_code=303)
        self._set(
            response, self.cookie, self._signer.sign(result.session).decode(),
            int(SESSION_LIFETIME),
        )  # fmt: skip
        response.delete_cookie(self.login_cookie, path="/", secure=self.secure, httponly=True)
        return response

    async def _checked_post(self, request: Request) -> tuple[str, str] | Response:
        operator = await self._operator(request)
        if operator is None:
            return RedirectResponse("/admin/login", status_code=303)
        form = await self._form(request)
        token = (form or {}).get("csrf", "")
        if not hmac.compare_digest(token.encode(), self._mac("admin", operator[0]).encode()):
            return self._page(
                request, "admin_login.html",
                {"csrf": "", "error": "The form expired. Reload the console and retry."}, 403,
            )  # fmt: skip
        return operator

    async def logout(self, request: Request) -> Response:
        checked = await self._checked_post(request)
        if isinstance(checked, Response):
            return checked
        await anyio.to_thread.run_sync(admin_logout, self.store, checked[0])
        response = RedirectResponse("/admin/login", status_code=303)
        response.delete_cookie(self.cookie, path="/", secure=self.secure, httponly=True)
        return response

    async def retry(self, request: Request) -> Response:
        checked = await self._checked_post(request)
        if isinstance(checked, Response):
            return checked
        job_id = int(request.path_params["job_id"])
        done = await anyio.to_thread.run_sync(retry_job, self.store, job_id)
        return RedirectResponse(f"/admin?retried={job_id if done else 0}#jobs", status_code=303)

    # -- the console ----------------------------------------------------------------------

    def _authorizations(self, now: float) -> list[_AuthRow]:
        rows = []
        for account in accounts(self.store):
            if account.key is None:  # readings from files, no authorization
                continue
            lasts = [s.last for p in account.usage_points for s in p.series if s.last]
            last = max(lasts) if lasts else None
            if account.status == "reauth_required":
                freshness = "reauth"
            elif last is None:
                freshness = "none"
            else:
                freshness = "fresh" if now - last < STALE_AFTER else "stale"
            rows.append(
                _AuthRow(
                    key=account.key,
                    status=account.status or "–",
                    points=len(account.usage_points),
                    readings=sum(p.readings for p in account.usage_points),
                    last_data=_when(last),
                    freshness=freshness,
                    age="" if last is None else _ago(now - last),
                    updated=_when(account.updated_at),
                    pending=account.pending_jobs,
                    failed=account.failed_jobs,
                    abandoned=len(account.abandoned),
                )
            )
        order = {"reauth": 0, "stale": 1, "none": 2, "fresh": 3}
        return sorted(rows, key=lambda r: (order[r.freshness], r.key))

    def _context(self, now: float) -> dict[str, Any]:
        auths = self._authorizations(now)
        jobs = open_jobs(self.store, limit=200)
        limits = client_limits(self.client, now=now)
        expiry = certificate_expiry(self.credentials.client_cert)
        days = None if expiry is None else (expiry.timestamp() - now) / 86400
        return {
            "authorizations": auths,
            "counts": {
                f: sum(1 for a in auths if a.freshness == f)
                for f in ("fresh", "stale", "none", "reauth")
            },
            "jobs": [
                {"job": j, "updated": _when(j.updated_at), "age": _ago(now - j.updated_at)}
                for j in jobs
            ],
            "limits": limits,
            "certificate": {
                "path": str(self.credentials.client_cert),
                "expires": None if expiry is None else expiry.strftime("%Y-%m-%d %H:%M UTC"),
                "days": None if days is None else int(days),
                "warn": days is not None and days < CERT_WARN_DAYS,
            },
            "now": _when(now),
        }

    async def overview(self, request: Request) -> Response:
        operator = await self._operator(request)
        if operator is None:
            return RedirectResponse("/admin/login", status_code=303)
        context = await anyio.to_thread.run_sync(self._context, time.time())
        retried = request.query_params.get("retried")
        notice = None
        if retried is not None:
            notice = (
                f"Job {int(retried)} will be tried again."
                if retried.isdigit() and int(retried) > 0
                else "That job cannot be retried (done, running or gone)."
            )
        return self._page(
            request,
            "admin.html",
            {**context, "operator": operator[1], "csrf": self._mac("admin", operator[0]),
             "notice": notice},
        )  # fmt: skip
