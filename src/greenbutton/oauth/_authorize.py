"""The authorization request and its callback (RFC 6749 4.1.1-4.1.2, RFC 7636), sans-IO.

:func:`authorization_request` makes the URL to send the customer to, with a fresh ``state``
and PKCE S256 verifier (R01, R03); the caller keeps the returned :class:`AuthorizationRequest`
for exactly one flow. :func:`parse_callback` checks the redirect back against it and returns
the code, or raises :class:`~greenbutton.CallbackError` (R06, R07). The caller discards the
pending request after the first callback, whatever the outcome: state is single-use (R01).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._errors import CallbackError, ConfigurationError
from .._urls import check_url
from ..models import UtilityProfile

__all__ = ["AuthorizationRequest", "authorization_request", "code_challenge_s256", "parse_callback"]

#: RFC 7636 4.1: 43-128 characters of ALPHA / DIGIT / "-" / "." / "_" / "~".
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
#: RFC 6749 A.5: state = 1*VSCHAR; we make >= 22 url-safe characters (>= 128 bits).
_STATE = re.compile(r"[A-Za-z0-9\-._~]{22,512}")
#: RFC 6749 A.7: error = 1*( %x20-21 / %x23-5B / %x5D-7E ); capped.
_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}")
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_MAX_PARAM = 4096  # R07: a longer callback parameter is refused
_MAX_QUERY = 16 * 1024
_MAX_DESCRIPTION = 300  # R06: error_description is shown and logged capped
_STANDARD = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationRequest:
    """One pending authorization: keep it (server-side, bound to the session or CLI run)
    until the callback, then discard it. The verifier is for the token request only (R03);
    the repr shows neither it nor ``state``."""

    url: str = field(repr=False)
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)
    code_challenge: str = field(repr=False)
    redirect_uri: str
    created_at: float
    scope: str | None = None
    profile_name: str = ""  # the data custodian this flow targets (mix-up defence, R08)


def code_challenge_s256(verifier: str) -> str:
    """RFC 7636 4.2: ``BASE64URL(SHA256(ASCII(verifier)))`` without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def authorization_request(
    profile: UtilityProfile,
    client_id: str,
    redirect_uri: str,
    *,
    scope: str | None = None,
    rng: Callable[[int], str] = secrets.token_urlsafe,
    now: float | None = None,
) -> AuthorizationRequest:
    """Build the authorization URL (RFC 6749 4.1.1) with fresh ``state`` and PKCE S256
    (RFC 7636 4.1-4.3), then the profile's extra parameters in order (PG&E, ESPI_NOTES 2.6).

    ``scope`` defaults to ``profile.scope``; None on both leaves it out (the registered
    default). ESPI scopes contain ``;`` and ``=`` and are form-encoded so they come back
    byte-exact (R17). ``rng(n)`` returns a url-safe string of ``n`` random bytes.
    """
    check_url(profile.authorize_url, what="the authorize URL")
    if not client_id:
        raise ConfigurationError("client_id is empty")
    if not redirect_uri:
        raise ConfigurationError("redirect_uri is empty")
    clash = sorted({name for name, _ in profile.authorize_params} & _STANDARD)
    if clash:
        # RFC 6749 3.1: a parameter must not appear twice; the profile cannot override ours.
        raise ConfigurationError(f"authorize_params may not set {', '.join(clash)}")
    state = rng(32)  # 256 bits
    verifier = rng(32)  # 43 characters, the RFC 7636 minimum length with 256 bits
    if not _STATE.fullmatch(state) or not _VERIFIER.fullmatch(verifier) or state == verifier:
        raise ValueError("rng must return distinct url-safe strings of >= 32 random bytes")
    challenge = code_challenge_s256(verifier)
    scope = scope if scope is not None else profile.scope
    params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        *([("scope", scope)] if scope else []),
        ("state", state),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        *profile.authorize_params,
    ]
    parts = urlsplit(profile.authorize_url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    return AuthorizationRequest(
        url=url,
        state=state,
        code_verifier=verifier,
        code_challenge=challenge,
        redirect_uri=redirect_uri,
        created_at=time.time() if now is None else now,
        scope=scope or None,
        profile_name=profile.name,
    )


def _printable(text: str, limit: int) -> str:
    """Plain text for a message or log line: no control characters, capped (R06)."""
    clean = "".join(ch if ch.isprintable() else " " for ch in text)
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def _query_of(url_or_query: str, pending: AuthorizationRequest) -> str:
    """The query of a full callback URL, a request target (``/cb?...``) or a bare query.

    For a URL or target, its location must be the pending request's redirect URI (a
    callback on another DC's redirect path is refused, R08)."""
    text = url_or_query.strip()
    if text.startswith("?"):
        return text[1:]
    if not _ABSOLUTE.match(text) and not text.startswith("/"):
        return text
    got = urlsplit(text)
    want = urlsplit(pending.redirect_uri)
    if got.scheme or got.netloc:
        same = (
            got.scheme.lower() == want.scheme.lower()
            and got.netloc.lower() == want.netloc.lower()
            and got.path == want.path
        )
    else:
        same = got.path == want.path
    if not same:
        raise CallbackError("redirect_mismatch", "the callback is not at the redirect URI")
    return got.query


def parse_callback(
    url_or_query: str,
    pending: AuthorizationRequest,
    *,
    now: float,
    max_age: float = 600,
) -> str:
    """The authorization code from the redirect back (RFC 6749 4.1.2), after every check.

    Raises :class:`CallbackError` (no token request may follow) for: a malformed query,
    a repeated parameter or one over 4 KiB (R07, RFC 6749 3.1); a pending request older than
    ``max_age`` seconds (R02); a missing or wrong ``state`` (R01, compared in constant time);
    ``code`` and ``error`` together (R07); an ``error=`` answer (``from_server=True``, with the
    server's code and a capped plain-text description, R06); a missing code.
    """
    query = _query_of(url_or_query, pending)
    if len(query) > _MAX_QUERY:
        raise CallbackError("invalid_callback", "the callback query is too long")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict", max_num_fields=32)
    except (ValueError, UnicodeDecodeError):
        raise CallbackError("invalid_callback", "the callback query is malformed") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise CallbackError("invalid_callback", f"repeated parameter {_printable(name, 40)}")
        if len(value) > _MAX_PARAM:
            raise CallbackError("invalid_callback", f"parameter {_printable(name, 40)} too long")
        params[name] = value
    if now - pending.created_at > max_age:
        raise CallbackError("expired", "the authorization request expired; start again")
    state = params.get("state")
    if state is None or not hmac.compare_digest(state.encode(), pending.state.encode()):
        raise CallbackError("state_mismatch", "the callback state does not match this flow")
    code, error = params.get("code"), params.get("error")
    if code is not None and error is not None:
        raise CallbackError("invalid_callback", "the callback has both code and error")
    if error is not None:
        description = params.get("error_description")
        uri = params.get("error_uri")
        raise CallbackError(
            error if _ERROR_CODE.fullmatch(error) else "invalid_error_code",
            _printable(description, _MAX_DESCRIPTION) if description else None,
            uri=_printable(uri, _MAX_DESCRIPTION) if uri else None,
            from_server=True,
        )
    # RFC 6749 A.11: code = 1*VSCHAR (printable ASCII).
    if not code or not all("\x20" <= ch <= "\x7e" for ch in code):
        raise CallbackError("invalid_callback", "the callback has no valid code")
    return code
