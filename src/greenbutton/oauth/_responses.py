"""Token-endpoint responses (RFC 6749 5.1, 5.2; RFC 7009 2.2), parsed strictly but
tolerantly (SECURITY R16-R18, R20). Nothing here performs I/O or stores anything.

Accepted (the tolerant part): ``token_type`` in any case, or missing (ESPI is Bearer-only);
``expires_in`` as an int, a float (truncated) or a numeric string; JSON served as
``text/plain`` or without a content type; a UTF-8 BOM; PG&E's ``client_access_token`` for
``access_token``; unknown members (RFC 6749 5.1 "MUST ignore").

Refused with ``OAuthError("invalid_response")`` (the strict part; nothing is persisted): a
body that is not one UTF-8 JSON object (HTML, XML, non-UTF-8), is over 1 MiB or repeats a
key; no token; a token that is not printable ASCII; a ``token_type`` other than Bearer;
``expires_in`` that is ``"abc"``, a boolean, not finite, ``<= 0`` (an already expired token
would make every call refresh) or above 10 years. ``expires_in`` missing or ``null`` means
"unknown": ``expires_at`` is None and the client relies on 401 handling (R24).

Error bodies never reach messages beyond the RFC 6749 5.2 fields, and those are capped,
made printable, and scrubbed of the token values the caller holds (R49).
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any

import httpx2

from .._errors import InvalidClientError, InvalidGrantError, OAuthError, ServerError
from .._secret import Secret
from .._util import parse_retry_after  # the one rule; re-exported by greenbutton.oauth
from ._authorize import _printable
from ._token import Token, TokenKind

__all__ = ["parse_retry_after", "parse_revocation_response", "parse_token_response"]

log = logging.getLogger("greenbutton.oauth")

MAX_BODY = 1024 * 1024  # a token response is a few hundred bytes
MAX_EXPIRES_IN = 10 * 365 * 24 * 3600  # R16: "absurd" above 10 years
_MAX_TOKEN = 8192
_NUMERIC = re.compile(r"\+?[0-9]{1,20}(\.[0-9]*)?")
_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}")


def _invalid(description: str, status: int) -> OAuthError:
    return OAuthError("invalid_response", description, status_code=status)


def _url(response: httpx2.Response) -> str:
    """The request URL without its query (token URLs carry none; be safe anyway)."""
    try:
        url = response.request.url
    except RuntimeError:  # a Response built without a request (tests)
        return ""
    return str(url.copy_with(query=None, fragment=None))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate key")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _json_object(response: httpx2.Response) -> dict[str, Any] | None:
    """The body as a JSON object (RFC 8259: UTF-8, unique names), or None."""
    body = response.content
    if len(body) > MAX_BODY:
        return None
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in {"text/html", "application/xhtml+xml", "application/xml", "text/xml"}:
        return None
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    try:
        value = json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _describe_bad_body(response: httpx2.Response) -> str:
    media = response.headers.get("content-type", "").split(";")[0].strip().lower() or "none"
    if len(response.content) > MAX_BODY:
        return f"the token response body is over {MAX_BODY} bytes"
    return f"the token response is not a JSON object (content type {_printable(media, 60)})"


def _scrub(text: str | None, secrets: list[str]) -> str | None:
    if text is None:
        return None
    for value in secrets:
        if value:
            text = text.replace(value, "**********")
    return _printable(text, 300)


def _error(response: httpx2.Response, now: float, known: list[str]) -> Exception:
    status = response.status_code
    if status == 429 or status >= 500:
        return ServerError(
            f"token endpoint answered {status}",
            status_code=status,
            url=_url(response),
            retry_after=parse_retry_after(response.headers.get("retry-after"), now=now),
        )
    data = _json_object(response) or {}
    error = data.get("error")
    if not isinstance(error, str) or not _ERROR_CODE.fullmatch(error):
        if status == 401:
            error = "invalid_client"
        elif 300 <= status < 400:
            # Never followed (R25): a token request carries the client secret.
            return _invalid(f"unexpected redirect ({status}) from the token endpoint", status)
        else:
            return _invalid(f"unexpected status {status} without an RFC 6749 error", status)
    description = data.get("error_description")
    uri = data.get("error_uri")
    args = (
        error,
        _scrub(description if isinstance(description, str) else None, known),
    )
    kwargs: dict[str, Any] = {
        "uri": _printable(uri, 300) if isinstance(uri, str) else None,
        "status_code": status,
    }
    if error == "invalid_grant":
        return InvalidGrantError(*args, **kwargs)
    if error == "invalid_client" or status == 401:
        return InvalidClientError(*args, **kwargs)
    return OAuthError(*args, **kwargs)


def _token_value(value: Any, name: str, status: int) -> str:
    # RFC 6749 A.12/A.17: 1*VSCHAR; it goes into a header, so nothing else is accepted.
    if (
        not isinstance(value, str)
        or not value
        or len(value) > _MAX_TOKEN
        or not all("\x20" <= ch <= "\x7e" for ch in value)
    ):
        raise _invalid(f"{name} is not a printable ASCII string", status)
    return value


def _expires_in(value: Any, status: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise _invalid("expires_in is not a number", status)
    if isinstance(value, str):
        if not _NUMERIC.fullmatch(value.strip()):
            raise _invalid("expires_in is not a number", status)
        value = float(value.strip())
    if isinstance(value, float):
        if not math.isfinite(value) or value > MAX_EXPIRES_IN:
            raise _invalid("expires_in is out of range", status)
        value = int(value)  # RFC 6749 says seconds as an integer: truncate
    if not isinstance(value, int):
        raise _invalid("expires_in is not a number", status)
    if value <= 0 or value > MAX_EXPIRES_IN:
        raise _invalid("expires_in is out of range (0 < expires_in <= 10 years)", status)
    return value


def _optional_str(data: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _same_scope(a: str, b: str) -> bool:
    return a.strip().rstrip(";") == b.strip().rstrip(";")


def parse_token_response(
    response: httpx2.Response,
    *,
    kind: TokenKind,
    now: float,
    previous: Token | None = None,
    requested_scope: str | None = None,
) -> Token:
    """The :class:`Token` of a fully read token-endpoint response (RFC 6749 5.1).

    ``kind`` is ``"access"`` (code exchange and refresh) or ``"client"`` (client
    credentials, whose refresh token, if any, is ignored: R19). ``previous`` is the token
    being refreshed: its refresh token is kept when the server sends none (R20, RFC 6749 6)
    and its scope and ESPI URIs fill in what the response omits. The granted ``scope`` wins
    over ``requested_scope``, which wins over ``previous.scope``; a difference is logged
    (R17). ``expires_at = now + expires_in``.

    Raises :class:`InvalidGrantError` (re-authorize), :class:`InvalidClientError`
    (configuration: 401 or ``invalid_client``), :class:`OAuthError` (other RFC 6749 5.2 errors
    and ``invalid_response`` for an unusable answer), :class:`ServerError` (5xx, 429, with
    ``retry_after``).
    """
    status = response.status_code
    known = []
    if previous is not None:
        known = [previous.access_token.reveal()]
        if previous.refresh_token is not None:
            known.append(previous.refresh_token.reveal())
    if not 200 <= status < 300:
        raise _error(response, now, known)
    data = _json_object(response)
    if data is None:
        raise _invalid(_describe_bad_body(response), status)
    if "error" in data and not ({"access_token", "client_access_token"} & data.keys()):
        # A 200 carrying an RFC 6749 5.2 error body (seen on some servers): still an error.
        raise _error_from_200(response, data, known)
    names = ("client_access_token", "access_token")
    if kind == "access":
        names = ("access_token", "client_access_token")
    raw = next((data[n] for n in names if n in data and data[n] is not None), None)
    if raw is None:
        raise _invalid("the token response has no access_token", status)
    access_token = _token_value(raw, "access_token", status)
    token_type = data.get("token_type")
    if token_type is not None and (
        not isinstance(token_type, str) or token_type.strip().lower() != "bearer"
    ):
        shown = _printable(token_type, 20) if isinstance(token_type, str) else "not a string"
        raise _invalid(f"token_type is not Bearer (RFC 6750): {shown}", status)
    expires_in = _expires_in(data.get("expires_in"), status)
    refresh: Secret | None = None
    if kind == "access":
        raw_refresh = data.get("refresh_token")
        if raw_refresh not in (None, ""):
            refresh = Secret(_token_value(raw_refresh, "refresh_token", status))
        elif previous is not None:
            refresh = previous.refresh_token
    granted = data.get("scope")
    if isinstance(granted, list) and all(isinstance(s, str) for s in granted):
        granted = " ".join(granted)
    if not isinstance(granted, str) or not granted.strip():
        granted = None
    asked = requested_scope
    if asked is None and previous is not None:
        asked = previous.scope
    if granted is not None and asked and not _same_scope(granted, asked):
        log.warning("the token endpoint granted scope %r instead of %r", granted, asked)
    scope = granted if granted is not None else (asked or None)
    # ESPI_NOTES 2.1; "resource"/"authorization" are older OpenESPI names (R16). A refresh
    # response without them keeps the ones of the token it replaces.
    resource_uri = _optional_str(data, "resourceURI", "resource")
    authorization_uri = _optional_str(data, "authorizationURI", "authorization")
    customer_uri = _optional_str(data, "customerResourceURI")
    if previous is not None and previous.kind == kind:
        resource_uri = resource_uri or previous.resource_uri
        authorization_uri = authorization_uri or previous.authorization_uri
        customer_uri = customer_uri or previous.customer_resource_uri
    return Token(
        kind=kind,
        access_token=Secret(access_token),
        token_type="Bearer",  # noqa: S106 - the scheme name, normalised
        expires_at=None if expires_in is None else now + expires_in,
        refresh_token=refresh,
        scope=scope,
        resource_uri=resource_uri,
        authorization_uri=authorization_uri,
        customer_resource_uri=customer_uri,
    )


def _error_from_200(response: httpx2.Response, data: dict[str, Any], known: list[str]) -> Exception:
    error = data.get("error")
    if not isinstance(error, str) or not _ERROR_CODE.fullmatch(error):
        return _invalid("the token response has no access_token", response.status_code)
    description = data.get("error_description")
    text = _scrub(description if isinstance(description, str) else None, known)
    cls = {"invalid_grant": InvalidGrantError, "invalid_client": InvalidClientError}
    return cls.get(error, OAuthError)(error, text, status_code=response.status_code)


def parse_revocation_response(response: httpx2.Response, *, now: float) -> None:
    """RFC 7009 2.2: 200 means revoked (even an unknown token). 503 and other 5xx/429 raise
    :class:`ServerError` (the token must be assumed alive, R22); 4xx raise as in
    :func:`parse_token_response`."""
    if 200 <= response.status_code < 300:
        return
    raise _error(response, now, [])
