"""The simulator's authorization server: oauthlib's framework-independent grant types, backed
by ``sim.state``, behind a Starlette token endpoint (the portal's authorize pages are in
``_portal``).

oauthlib does the protocol work: parameter parsing, duplicate-parameter checks, the order of
the RFC 6749 checks, PKCE S256 verification, refresh-scope checks and the error bodies. Only
``authorization_code``, ``refresh_token`` and ``client_credentials`` are wired (no implicit,
no password grant: SECURITY R13). What is added here, and why:

* **GBA status table (R68, R14).** Client authentication is ``client_secret_basic`` only
  (the one value in the ESPI XSD). A request without Basic answers 401 ``invalid_client``
  with ``WWW-Authenticate: Basic`` (oauthlib would say ``Bearer``, RFC 6749 §5.2 wants the
  scheme the client should use); Basic *and* a body ``client_id``/``client_secret`` answers
  400 ``invalid_request`` (GBA OAD003; oauthlib would answer 500 for a mismatch).
* **PKCE downgrade, both directions (R04).** A verifier for a code issued without a
  challenge, and a missing verifier for a code issued with one, are both ``invalid_grant``
  (oauthlib ignores the first and calls the second ``invalid_request``). Only S256 is
  accepted at the authorize endpoint; ``plain`` (also the RFC 7636 default when the method is
  omitted) is refused with ``invalid_request`` so no client can weaken PKCE (R03).
* **Codes** are single-use, bound to client, redirect URI and challenge, and live
  ``config.code_ttl`` seconds; presenting a used code revokes the authorization and every
  token issued from it (RFC 6749 §4.1.2, R11).
* **Refresh rotation with reuse detection (R20, R21, GBA OAD013).** Every refresh returns a
  new refresh token, kills the old one and every older access token of the authorization;
  presenting a retired refresh token revokes the whole authorization (RFC 9700 §4.14.2).
* **ESPI and PG&E response members.** ``resourceURI`` and ``authorizationURI`` on every
  token response (ESPI_NOTES 2.1); client-credentials tokens carry scope ``CLIENT_SCOPE`` and
  come under the key ``client_access_token`` as PG&E sends them (ESPI_NOTES 2.2).
* ``Cache-Control: no-store`` and ``Pragma: no-cache`` on every token response, errors too
  (R69); token values come from ``SimulatorState.issue_token`` (>= 128 bits).
* **Certificate-bound access tokens (R31, RFC 8705 §3)** with ``config.bind_tokens``: each
  access or client token is bound to the thumbprint of the certificate on the connection
  that asked for it (the token endpoint is on the mutual-TLS API listener, so there always
  is one); refresh tokens are not bound (RFC 8705 §7.1, see ``_binding``).

The server never fetches a URL it is given (R69): redirect URIs are compared as strings and
only ever used as a ``Location``.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextvars
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from oauthlib.common import urldecode  # type: ignore[import-untyped]
from oauthlib.oauth2 import (  # type: ignore[import-untyped]
    AuthorizationCodeGrant,
    BearerToken,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    RequestValidator,
)
from oauthlib.oauth2.rfc6749 import errors  # type: ignore[import-untyped]
from oauthlib.oauth2.rfc6749.endpoints import (  # type: ignore[import-untyped]
    AuthorizationEndpoint,
    TokenEndpoint,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..client import get_logger, quiet_debug
from ._binding import peer_thumbprint
from ._config import PATHS
from ._simulator import Simulator
from ._state import (
    CLIENT_SCOPE,
    AuthorizationGrant,
    IssuedCode,
    Registration,
    new_id,
    new_secret,
)

__all__ = ["OAuthServer", "TokenCall", "oauth_server", "token_calls", "token_route"]

log = get_logger(__name__)

#: RFC 7636 §4.1/§4.2: a verifier is 43-128 unreserved characters; an S256 challenge is the
#: 43-character unpadded base64url of a SHA-256 digest.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")
_MAX_BODY = 64 * 1024  # a token request is a few hundred bytes
_BASIC_CHALLENGE = 'Basic realm="greenbutton-simulator", charset="UTF-8"'
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
#: x5t#S256 of the client certificate of the token request being answered (None: no TLS).
_PEER: contextvars.ContextVar[str | None] = contextvars.ContextVar("_PEER", default=None)


@dataclass(frozen=True, slots=True)
class TokenCall:
    """One request seen by the token endpoint (SECURITY R01/R15: tests count and inspect them)."""

    method: str
    content_type: str
    query: str
    grant_type: str | None
    status: int
    at: float = field(default_factory=time.time)
    client_cert_sha256: str | None = None  # x5t#S256 of the connection's certificate
    #: The parameters came in the query string, not a form body: PG&E accepts that (and
    #: some production clients send it, ESPI_NOTES 2.1), so the simulator does too unless
    #: ``strict_token_requests``; our own SDK never does (R15).
    from_query: bool = False


@dataclass(slots=True)
class _Ledger:
    """What the authorization server remembers besides ``SimulatorState``: which grant a code
    created, which refresh tokens were retired (for reuse detection), recent token calls."""

    # code -> authorization id, refresh token -> authorization id: secrets as keys (R49)
    code_grants: dict[str, str] = field(default_factory=dict, repr=False)
    retired_refresh: dict[str, str] = field(default_factory=dict, repr=False)
    calls: collections.deque[TokenCall] = field(
        default_factory=lambda: collections.deque(maxlen=1000)
    )


def _same(a: str | None, b: str | None) -> bool:
    """Constant-time string equality (credentials, codes)."""
    if a is None or b is None:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


def _parse_basic(header: str | None) -> tuple[str, str] | None:
    """``client_id`` and ``client_secret`` from an HTTP Basic header, each form-urldecoded
    after base64 as RFC 6749 §2.3.1 prescribes (R14); None unless well-formed Basic."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


def _normalise_scope(scope: str) -> str:
    """An ESPI scope without the trailing ``;`` many DCs and clients add (ESPI_NOTES 2.3)."""
    return scope.strip().rstrip(";")


class _Validator(RequestValidator):  # type: ignore[misc]
    """oauthlib's storage and policy hooks, answered from ``sim.state``.

    Called by oauthlib with ``sim.state.lock`` held (see :meth:`OAuthServer.token_response`),
    so the check-then-consume of codes and refresh tokens is atomic.
    """

    def __init__(self, sim: Simulator, ledger: _Ledger):
        super().__init__()
        self.sim = sim
        self.ledger = ledger

    @property
    def reg(self) -> Registration:
        return self.sim.state.registration

    # -- clients ------------------------------------------------------------------------------

    def client_authentication_required(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        return True

    def authenticate_client(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        creds = _parse_basic(request.headers.get("Authorization"))
        if creds is None:
            return False
        client_id, secret = creds
        # Evaluate both comparisons: no early exit that would time the id check alone.
        ok = _same(client_id, self.reg.client_id) & _same(secret, self.reg.client_secret)
        if not ok:
            return False
        request.client = self.reg
        return True

    def authenticate_client_id(self, client_id: str, request: Any, *a: Any, **k: Any) -> bool:
        return False  # no public clients

    def validate_client_id(self, client_id: str, request: Any, *a: Any, **k: Any) -> bool:
        return _same(client_id, self.reg.client_id)

    def validate_grant_type(
        self, client_id: str, grant_type: str, client: Any, request: Any, *a: Any, **k: Any
    ) -> bool:
        return grant_type in _GRANT_TYPES

    def validate_response_type(
        self, client_id: str, response_type: str, client: Any, request: Any, *a: Any, **k: Any
    ) -> bool:
        return response_type == "code"

    # -- redirect URIs (R05: exact string match, no default) -----------------------------------

    def validate_redirect_uri(
        self, client_id: str, redirect_uri: str, request: Any, *a: Any, **k: Any
    ) -> bool:
        return redirect_uri == self.reg.redirect_uri

    def get_default_redirect_uri(self, client_id: str, request: Any, *a: Any, **k: Any) -> None:
        return None  # redirect_uri is required at both endpoints

    def confirm_redirect_uri(
        self,
        client_id: str,
        code: str,
        redirect_uri: str,
        client: Any,
        request: Any,
        *a: Any,
        **k: Any,
    ) -> bool:
        issued = self.sim.state.codes.get(code)
        return issued is not None and redirect_uri == issued.redirect_uri

    # -- scopes --------------------------------------------------------------------------------

    def get_default_scopes(self, client_id: str, request: Any, *a: Any, **k: Any) -> list[str]:
        if request.grant_type == "client_credentials":
            return [CLIENT_SCOPE]
        return [self.reg.scope]

    def validate_scopes(
        self, client_id: str, scopes: list[str], client: Any, request: Any, *a: Any, **k: Any
    ) -> bool:
        """One ESPI scope token: the registered one (authorization code), or for client
        credentials the admin scope or the registered one (R19 sends the latter), granted as
        ``CLIENT_SCOPE``."""
        if len(scopes) != 1:
            return False
        (scope,) = scopes
        registered = _normalise_scope(self.reg.scope)
        if request.grant_type == "client_credentials":
            if scope == CLIENT_SCOPE or _normalise_scope(scope) == registered:
                request.scopes = [CLIENT_SCOPE]
                return True
            return False
        return _normalise_scope(scope) == registered

    def get_original_scopes(self, refresh_token: str, request: Any, *a: Any, **k: Any) -> list[str]:
        grant = self._grant_of_refresh(refresh_token)
        return [grant.scope] if grant is not None else []

    def is_within_original_scope(
        self, request_scopes: list[str], refresh_token: str, request: Any, *a: Any, **k: Any
    ) -> bool:
        # GBA OAD011: a refresh asking for another scope is refused (400 invalid_scope).
        grant = self._grant_of_refresh(refresh_token)
        return grant is not None and [_normalise_scope(s) for s in request_scopes] == [
            _normalise_scope(grant.scope)
        ]

    # -- PKCE ----------------------------------------------------------------------------------

    def is_pkce_required(self, client_id: str, request: Any) -> bool:
        return False  # enforced whenever a challenge was sent (DESIGN 4), not demanded

    def get_code_challenge(self, code: str, request: Any) -> str | None:
        issued = self.sim.state.codes.get(code)
        return issued.code_challenge if issued is not None else None

    def get_code_challenge_method(self, code: str, request: Any) -> str | None:
        issued = self.sim.state.codes.get(code)
        return issued.code_challenge_method if issued is not None else None

    # -- authorization codes -------------------------------------------------------------------

    def save_authorization_code(
        self, client_id: str, code: dict[str, str], request: Any, *a: Any, **k: Any
    ) -> None:
        """The customer approved: create the Authorization (ESPI) and the code bound to it."""
        state = self.sim.state
        customer = state.customers[request.customer]
        scope = " ".join(request.scopes)
        now = time.time()
        with state.lock:
            self._purge_codes(now)
            grant = AuthorizationGrant(
                id=_new_grant_id(state.grants),
                customer=customer.username,
                subscription_id=customer.subscription_id,
                scope=scope,
            )
            state.grants[grant.id] = grant
            state.codes[code["code"]] = IssuedCode(
                code=code["code"],
                client_id=client_id,
                customer=customer.username,
                redirect_uri=request.redirect_uri,
                scope=scope,
                expires_at=now + self.sim.config.code_ttl,
                code_challenge=request.code_challenge,
                code_challenge_method=request.code_challenge_method
                if request.code_challenge
                else None,
            )
            self.ledger.code_grants[code["code"]] = grant.id
            state.persist_grants()
        log.info("authorization %s granted by customer %s", grant.id, customer.username)

    def validate_code(
        self, client_id: str, code: str, client: Any, request: Any, *a: Any, **k: Any
    ) -> bool:
        state = self.sim.state
        issued = state.codes.get(code)
        if issued is None or not _same(issued.client_id, client_id):
            return False
        grant_id = self.ledger.code_grants.get(code)
        if issued.used:
            # RFC 6749 §4.1.2: deny, and revoke what was issued from this code.
            if grant_id is not None:
                state.revoke_authorization(grant_id)
            log.warning("authorization code reused; authorization %s revoked", grant_id)
            return False
        if issued.expires_at <= time.time():
            return False
        # R04: no downgrade in either direction.
        if issued.code_challenge is None and request.code_verifier is not None:
            return False
        if issued.code_challenge is not None:
            if request.code_verifier is None or not _VERIFIER.fullmatch(request.code_verifier):
                return False
        grant = state.grants.get(grant_id) if grant_id is not None else None
        if grant is None or not self._grant_active(grant):
            return False
        request.user = issued.customer
        request.scopes = [issued.scope]
        request.authorization_id = grant.id
        return True

    def invalidate_authorization_code(
        self, client_id: str, code: str, request: Any, *a: Any, **k: Any
    ) -> None:
        issued = self.sim.state.codes.get(code)
        if issued is not None:
            issued.used = True  # kept until it expires, to recognise a replay

    # -- refresh tokens ------------------------------------------------------------------------

    def validate_refresh_token(
        self, refresh_token: str, client: Any, request: Any, *a: Any, **k: Any
    ) -> bool:
        grant = self._grant_of_refresh(refresh_token)
        if grant is not None:
            if not self._grant_active(grant):
                return False
            request.user = grant.customer
            request.authorization_id = grant.id
            return True
        retired = self.ledger.retired_refresh.get(refresh_token)
        if retired is not None:
            # RFC 9700 §4.14.2: a rotated-out refresh token came back; someone has a copy.
            self.sim.state.revoke_authorization(retired)
            log.warning("retired refresh token reused; authorization %s revoked", retired)
        return False

    def rotate_refresh_token(self, request: Any) -> bool:
        return True

    # -- tokens --------------------------------------------------------------------------------

    def save_bearer_token(self, token: dict[str, Any], request: Any, *a: Any, **k: Any) -> None:
        """Record the refresh token on its authorization; on refresh, retire the old refresh
        token and kill every older access token of the authorization (GBA OAD013)."""
        grant_id = getattr(request, "authorization_id", None)
        if grant_id is None:  # client credentials: the token is already in state.tokens
            return
        state = self.sim.state
        with state.lock:
            grant = state.grants[grant_id]
            if request.grant_type == "refresh_token":
                self.ledger.retired_refresh[request.refresh_token] = grant.id
                for other in state.tokens.values():
                    if (
                        other.authorization_id == grant.id
                        and other.kind == "access"
                        and other.value != token["access_token"]
                    ):
                        other.revoked = True
            grant.refresh_token = token.get("refresh_token")
            state.persist_grants()

    # -- helpers -------------------------------------------------------------------------------

    def _grant_of_refresh(self, refresh_token: str) -> AuthorizationGrant | None:
        for grant in self.sim.state.grants.values():
            if grant.refresh_token is not None and _same(grant.refresh_token, refresh_token):
                return grant
        return None

    def _grant_active(self, grant: AuthorizationGrant) -> bool:
        return grant.status == 1 and not self.sim.faults.revoke_all

    def _purge_codes(self, now: float) -> None:
        """Forget codes well past their expiry (a replay after that is just an unknown code)."""
        horizon = now - self.sim.config.code_ttl
        codes = self.sim.state.codes
        for value in [c for c, issued in codes.items() if issued.expires_at < horizon]:
            del codes[value]
            self.ledger.code_grants.pop(value, None)


def _new_grant_id(existing: dict[str, AuthorizationGrant]) -> str:
    while True:
        value = new_id()
        if value not in existing:
            return value


def _require_s256(request: Any) -> dict[str, Any]:
    """Authorize-time PKCE policy: S256 only, with a well-formed challenge (R03)."""
    if request.code_challenge is None:
        if request.code_challenge_method is not None:
            raise errors.InvalidRequestError(
                description="code_challenge_method without code_challenge.", request=request
            )
        return {}
    if request.code_challenge_method != "S256":
        raise errors.UnsupportedCodeChallengeMethodError(
            description="Only code_challenge_method=S256 is supported.", request=request
        )
    if not _S256_CHALLENGE.fullmatch(request.code_challenge):
        raise errors.InvalidRequestError(
            description="Malformed S256 code_challenge.", request=request
        )
    return {}


class OAuthServer(AuthorizationEndpoint, TokenEndpoint):  # type: ignore[misc]
    """oauthlib authorization and token endpoints for one :class:`Simulator`."""

    def __init__(self, sim: Simulator):
        # oauthlib's DEBUG lines carry codes, tokens and our Registration (R49): dropped.
        quiet_debug("oauthlib")
        self.sim = sim
        self.ledger = _Ledger()
        self.validator = _Validator(sim, self.ledger)
        self.auth_grant = AuthorizationCodeGrant(self.validator, post_auth=[_require_s256])
        self.refresh_grant = RefreshTokenGrant(self.validator, issue_new_refresh_tokens=True)
        self.credentials_grant = ClientCredentialsGrant(self.validator)
        for grant in (self.auth_grant, self.refresh_grant):
            grant.register_token_modifier(self._espi_members)
        self.bearer = BearerToken(
            self.validator,
            token_generator=self._access_token,
            expires_in=lambda _request: sim.config.access_token_ttl,
            refresh_token_generator=self._refresh_token,
        )
        AuthorizationEndpoint.__init__(
            self,
            default_response_type="code",
            response_types={"code": self.auth_grant},
            default_token_type=self.bearer,
        )
        TokenEndpoint.__init__(
            self,
            default_grant_type="authorization_code",
            grant_types={
                "authorization_code": self.auth_grant,
                "refresh_token": self.refresh_grant,
                "client_credentials": self.credentials_grant,
            },
            default_token_type=self.bearer,
        )

    # -- token values --------------------------------------------------------------------------

    def _access_token(self, request: Any) -> str:
        """Issue through ``SimulatorState`` so the resource server sees the token; with the
        ``expire_tokens`` fault it is dead on arrival (GBA OAD016) while ``expires_in`` still
        promises the configured lifetime, which is what a client must cope with."""
        client = request.grant_type == "client_credentials"
        ttl = 0.0 if self.sim.faults.expire_tokens else float(self.sim.config.access_token_ttl)
        token = self.sim.state.issue_token(
            "client" if client else "access",
            " ".join(request.scopes),
            ttl,
            authorization_id=None if client else request.authorization_id,
        )
        peer = _PEER.get()
        if self.sim.config.bind_tokens and peer is not None:
            with self.sim.state.lock:
                self.sim.token_bindings[token.value] = peer
        return token.value

    def _refresh_token(self, request: Any) -> str:
        return new_secret()

    def _espi_members(self, token: dict[str, Any], token_handler: Any, request: Any) -> Any:
        grant = self.sim.state.grants[request.authorization_id]
        base = self.sim.resource_url
        token["resourceURI"] = f"{base}/Batch/Subscription/{grant.subscription_id}"
        token["authorizationURI"] = f"{base}/Authorization/{grant.id}"
        return token

    # -- the HTTP-facing call ------------------------------------------------------------------

    def token_response(
        self,
        uri: str,
        body: str,
        headers: dict[str, str],
        grant_type: str,
        client_cert_sha256: str | None = None,
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Status, headers and JSON body for one token request (after the checks of
        :func:`token_route`). Runs under the state lock: redemption is atomic.
        ``client_cert_sha256`` is the connection's certificate, for binding (R31)."""
        peer = _PEER.set(client_cert_sha256)
        try:
            with self.sim.state.lock:
                _, out_body, status = self.create_token_response(
                    uri, http_method="POST", body=body, headers=headers
                )
        except errors.OAuth2Error as exc:  # raised before dispatch, e.g. a query string (R15)
            out_body, status = exc.json, exc.status_code
        finally:
            _PEER.reset(peer)
        data: dict[str, Any] = json.loads(out_body) if out_body else {}
        result_headers = {"Content-Type": "application/json", **_NO_STORE}
        if status == 401:
            result_headers["WWW-Authenticate"] = _BASIC_CHALLENGE
        if status == 200 and grant_type == "client_credentials":
            data = self._client_credentials_shape(data)
        return status, result_headers, data

    def _client_credentials_shape(self, data: dict[str, Any]) -> dict[str, Any]:
        """PG&E's client-credentials answer: ``client_access_token``, plus the bulk resource
        and the Authorization collection the admin token may read (ESPI_NOTES 2.2, 2.6)."""
        reg = self.sim.state.registration
        base = self.sim.resource_url
        shaped = {"client_access_token": data.pop("access_token"), **data}
        shaped.pop("refresh_token", None)
        shaped["resourceURI"] = f"{base}/Batch/Bulk/{reg.bulk_id}"
        shaped["authorizationURI"] = f"{base}/Authorization"
        return shaped


def oauth_server(sim: Simulator) -> OAuthServer:
    """The simulator's one authorization server (created on first use, kept in ``sim.extra``)."""
    server = sim.extra.get("oauth")
    if server is None:
        server = OAuthServer(sim)
        sim.extra["oauth"] = server
    assert isinstance(server, OAuthServer)
    return server


def token_calls(sim: Simulator) -> list[TokenCall]:
    """The most recent token-endpoint requests, oldest first (at most 1000)."""
    return list(oauth_server(sim).ledger.calls)


def _error(status: int, error: str, description: str, **headers: str) -> Response:
    body = json.dumps({"error": error, "error_description": description})
    return Response(
        body,
        status_code=status,
        media_type="application/json",
        headers={**_NO_STORE, **headers},
    )


async def _read_body(request: Request) -> bytes | None:
    """The request body, or None past ``_MAX_BODY`` (no 10 MB token requests)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def token_route(sim: Simulator) -> Route:
    """``POST PATHS.TOKEN`` for the API app (mutual TLS is the listener's job, not this one's).

    Other methods get Starlette's 405 with ``Allow: POST``.
    """
    server = oauth_server(sim)

    async def token(request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        response = await _token(request, content_type)
        grant_type = request.scope.get("greenbutton.grant_type")
        server.ledger.calls.append(
            TokenCall(
                method=request.method,
                content_type=content_type,
                query=request.url.query,
                grant_type=grant_type if isinstance(grant_type, str) else None,
                status=response.status_code,
                client_cert_sha256=peer_thumbprint(request.scope),
                from_query=bool(request.scope.get("greenbutton.from_query")),
            )
        )
        return response

    async def _token(request: Request, content_type: str) -> Response:
        raw = await _read_body(request)
        if raw is None:
            return _error(413, "invalid_request", "Request body too large.")
        uri = str(request.url)
        if not raw.strip() and request.url.query and not sim.config.strict_token_requests:
            # PG&E answers parameters sent in the query string of the POST as if they were
            # the form body (Open Energy View's refresh and client-credentials calls);
            # recorded, so a test can tell such a client from one that follows RFC 6749.
            raw, uri = request.url.query.encode(), str(request.url.replace(query=""))
            content_type = "application/x-www-form-urlencoded"
            request.scope["greenbutton.from_query"] = True
        if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
            return _error(
                400, "invalid_request", "Use Content-Type application/x-www-form-urlencoded."
            )
        try:
            body = raw.decode("utf-8")
            params = urldecode(body)
        except (UnicodeDecodeError, ValueError):
            return _error(400, "invalid_request", "Malformed form body.")
        names = [name for name, _ in params]
        if len(set(names)) != len(names):  # RFC 6749 §3.2
            return _error(400, "invalid_request", "Repeated parameter.")
        grant_types = [value for name, value in params if name == "grant_type"]
        if len(grant_types) == 1:
            request.scope["greenbutton.grant_type"] = grant_types[0]
        if not request.headers.get("authorization", "").lower().startswith("basic "):
            return _error(
                401,
                "invalid_client",
                "Client authentication must use HTTP Basic.",
                **{"WWW-Authenticate": _BASIC_CHALLENGE},
            )
        if {"client_id", "client_secret"} & set(names):
            return _error(
                400,
                "invalid_request",
                "Send client credentials in the Authorization header only, not in the body.",
            )
        if not grant_types:
            return _error(400, "invalid_request", "Missing grant_type parameter.")
        try:
            status, headers, data = server.token_response(
                uri,
                body,
                dict(request.headers),
                grant_types[0],
                peer_thumbprint(request.scope),
            )
        except ValueError:  # oauthlib refuses to decode the query string
            return _error(400, "invalid_request", "Malformed query string.")
        return Response(json.dumps(data), status_code=status, headers=headers)

    return Route(PATHS.TOKEN, token, methods=["POST"], name="token")
