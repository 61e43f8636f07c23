"""One flow per ESPI resource (ESPI_NOTES 1.2), plus the token flows they start with.

Every flow here is sans-IO (see :mod:`greenbutton.client._flows`): it yields requests and gets
responses. The token class of each resource is chosen here and nowhere else (SECURITY R23):
the customer's access token for ``Batch/Subscription`` and ``Subscription/...`` (and the
shared ``ReadingType`` / ``LocalTimeParameters``), the client-credentials token for
``Batch/Bulk``, ``Authorization`` and ``ReadServiceStatus``, the registration token for
``ApplicationInformation``. A 401 leads to at most one refresh and one retry (R24, R21).

Resource answers are downloads (:class:`~greenbutton.client._flows.Download`): a 2xx body streams
into a spooled temporary file under the profile's cap and is parsed from there, so a large
Bulk or multi-year answer is never held whole in memory before parsing (R27).

Refresh is single-flight at two levels (R52). Within one client, the flow takes the named
in-process lock (``Lock``/``Unlock``, mapped by the driver to a thread or task lock), so one
thread or task refreshes and the others wait. Across processes, when the token store
implements :class:`~greenbutton.oauth.SupportsLockedRefresh` (the database store: a row lock),
the flow then enters ``store.locked(key)``, re-reads the token under that lock, and only if it
is still unusable sends the refresh request and saves the rotated set through the same lock
before leaving it; a process that waited finds the token another process saved and sends
nothing. The store's lock is a context manager held by the flow across the one ``yield`` of
the refresh request, rather than a new driver step: the flows already read and write the
store directly (the store is the caller's synchronous I/O, not the HTTP the flows leave to
the drivers), the lock must be taken and released by the same object that reads and saves
under it (a second database connection would wait for our own row lock), and the drivers
close every flow when a run ends, so an error or a cancellation during the request exits the
``with`` and rolls back, releasing the lock without saving. The in-process lock is taken
first, so one process holds at most one connection waiting for the row. (``run_async``
advances flows in a worker thread, so that wait and the store's other calls leave the event
loop free.) A process that dies after the custodian rotated but before the
commit leaves the old set stored; its next refresh is refused (``invalid_grant``), which
the database store records as ``reauth_required`` (R53).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import unquote

import httpx2

from .._errors import (
    APIStatusError,
    AuthorizationError,
    ConfigurationError,
    InvalidGrantError,
    NotFoundError,
    ParseError,
    ServerError,
)
from .._secret import Secret
from ..models import Credentials, Document, MeterReading, UsagePoint, UtilityProfile
from ..models._resources import ServiceStatus
from ..oauth import SupportsLockedRefresh, Token, TokenStore
from ..oauth._authorize import AuthorizationRequest, parse_callback
from ..oauth._requests import client_credentials_request, code_request, refresh_request
from ..oauth._responses import parse_retry_after, parse_token_response
from ..parse import Limits, parse
from ._flow import REQUEST_DEADLINE, Download, Downloaded, Flow, Lock, Unlock
from ._identity import authorization_key, subscription_of
from ._paths import Paths, TimeLike, format_time, split_windows

__all__ = [
    "CLIENT_KEY",
    "Accepted",
    "Context",
    "merge_documents",
]

#: Token-store key of the client-credentials token.
CLIENT_KEY = "client"
_ACCEPT = "application/atom+xml, application/xml;q=0.9"

Result = Document | bytes
TokenSource = Callable[[Token | None], Flow[Token]]


@dataclass(frozen=True, slots=True)
class Accepted:
    """The answer to an asynchronous request (PG&E "async" and Bulk calls).

    ``status_code`` 202: the data will be announced by a BatchList notification; 204: no data
    in the range; 200: the custodian answered at once and ``document`` holds the data."""

    status_code: int
    document: Document | None = None

    @property
    def pending(self) -> bool:
        return self.status_code == 202


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What every flow needs: where, who, which tokens, and the time."""

    profile: UtilityProfile
    credentials: Credentials
    store: TokenStore
    clock: Callable[[], float]
    leeway: float = 60.0  # refresh this many seconds before expiry (R54)
    limits: Limits | None = None
    client_scope: str | None = None
    # seconds a refresh sent under the store's lock may take (R63, DatabaseTokenStore)
    refresh_deadline: float | None = None

    @property
    def paths(self) -> Paths:
        return Paths(self.profile.resource_url)


# --------------------------------------------------------------------------------------------
# tokens


def _usable(ctx: Context, token: Token | None, stale: Token | None) -> bool:
    if token is None or token.expires_within(ctx.leeway, ctx.clock()):
        return False
    # After a 401 the token that failed is dead even if its clock says otherwise (R21).
    return stale is None or token.access_token != stale.access_token


def client_token(ctx: Context, stale: Token | None = None) -> Flow[Token]:
    """The client-credentials token, cached in the store until near expiry (R19).

    Single-flight: only the flow holding the lock asks the token endpoint; the others find
    the fresh token when they get the lock (R52)."""
    token = ctx.store.load(CLIENT_KEY)
    if _usable(ctx, token, stale):
        assert token is not None
        return token
    yield Lock(CLIENT_KEY)
    token = ctx.store.load(CLIENT_KEY)
    if token is None or not _usable(ctx, token, stale):
        request = client_credentials_request(ctx.profile, ctx.credentials, scope=ctx.client_scope)
        response = yield request
        token = parse_token_response(response, kind="client", now=ctx.clock())
        ctx.store.save(CLIENT_KEY, token)
    yield Unlock(CLIENT_KEY)
    return token


def _stored(ctx: Context, key: str) -> Token:
    token = ctx.store.load(key)
    if token is None:
        raise ConfigurationError(f"no token stored for authorization {key!r}: authorize first")
    return token


def access_token(ctx: Context, key: str, stale: Token | None = None) -> Flow[Token]:
    """The customer's access token for ``key``, refreshed (once, single-flight) when it is
    near expiry or when ``stale`` (the token a 401 rejected) is still the stored one.

    The rotated token set is saved before it is used (R20). With a store that supports
    :class:`~greenbutton.oauth.SupportsLockedRefresh` the re-check, the refresh request and
    the save run under the store's cross-process lock (R52, see the module docstring)."""
    token = _stored(ctx, key)
    if _usable(ctx, token, stale):
        return token
    yield Lock(key)
    store = ctx.store
    if isinstance(store, SupportsLockedRefresh):
        with store.locked(key) as row:
            token = yield from _refresh(ctx, key, row.load(), stale, row.save, ctx.refresh_deadline)
    else:
        token = yield from _refresh(
            ctx, key, store.load(key), stale, lambda new: store.save(key, new)
        )
    yield Unlock(key)
    return token


def _refresh(
    ctx: Context,
    key: str,
    token: Token | None,
    stale: Token | None,
    save: Callable[[Token], None],
    deadline: float | None = None,
) -> Flow[Token]:
    """``token`` (re-read under the lock) if usable, else a refreshed one, saved first."""
    if token is None:
        raise ConfigurationError(f"no token stored for authorization {key!r}: authorize first")
    if _usable(ctx, token, stale):
        return token  # another thread, task or process refreshed while we waited
    if token.refresh_token is None:
        raise InvalidGrantError(
            "invalid_grant", "the access token expired and there is no refresh token"
        )
    request = refresh_request(ctx.profile, ctx.credentials, token.refresh_token)
    if deadline is not None:
        request.extensions = {**request.extensions, REQUEST_DEADLINE: deadline}
    response = yield request
    token = parse_token_response(response, kind="access", now=ctx.clock(), previous=token)
    save(token)
    return token


def force_refresh(ctx: Context, key: str) -> Flow[Token]:
    """Refresh now, whatever the expiry (``Client.refresh``)."""
    return (yield from access_token(ctx, key, stale=_stored(ctx, key)))


def exchange_code(
    ctx: Context,
    callback: str,
    pending: AuthorizationRequest | None,
    *,
    redirect_uri: str | None,
    code_verifier: str | None,
    key: str | None,
) -> Flow[tuple[str, Token]]:
    """Code -> token set (RFC 6749 4.1.3), stored under ``key`` (default: the grant's
    identity, ``{utility}/Subscription/{id}``, so connecting again updates it; without a
    subscription in the token, its authorizationURI). Returns ``(key, token)``."""
    if pending is not None:
        code = parse_callback(callback, pending, now=ctx.clock())
        redirect_uri = pending.redirect_uri
        code_verifier = pending.code_verifier
    else:
        code = callback
    redirect_uri = redirect_uri or ctx.credentials.redirect_uri
    if not redirect_uri or not code_verifier:
        raise ConfigurationError("a code exchange needs the redirect URI and the PKCE verifier")
    response = yield code_request(
        ctx.profile, ctx.credentials, code, redirect_uri=redirect_uri, code_verifier=code_verifier
    )
    token = parse_token_response(response, kind="access", now=ctx.clock())
    key = key or _identity(ctx, token)
    if not key:
        raise ConfigurationError("the token response names no authorization: pass key=")
    ctx.store.save(key, token)
    return key, token


def _identity(ctx: Context, token: Token) -> str | None:
    """A grant's store key: (utility, subscription) when the token names its subscription
    (DESIGN 3.7), else its authorization URI or resource URI as before."""
    sub = subscription_of(token.resource_uri)
    if sub is not None:
        return authorization_key(ctx.profile.name, sub)
    return token.authorization_uri or token.resource_uri


def grant_key(ctx: Context, authorization: str | Token) -> str:
    """The store key of an authorization given as a key or as a Token (stored if new)."""
    if isinstance(authorization, str):
        return authorization
    key = _identity(ctx, authorization)
    if not key:
        raise ConfigurationError("this token names no authorization: store it under a key")
    if ctx.store.load(key) is None:
        ctx.store.save(key, authorization)
    return key


def _access_source(ctx: Context, key: str) -> TokenSource:
    def source(stale: Token | None) -> Flow[Token]:
        return (yield from access_token(ctx, key, stale))

    return source


def _client_source(ctx: Context) -> TokenSource:
    def source(stale: Token | None) -> Flow[Token]:
        return (yield from client_token(ctx, stale))

    return source


def fixed_source(token: Secret) -> TokenSource:
    def source(stale: Token | None) -> Flow[Token]:
        if stale is not None:  # nothing to refresh: a second try would be the same
            raise _NoRefresh
        return Token(kind="client", access_token=token)
        yield  # pragma: no cover - makes this a generator

    return source


class _NoRefresh(Exception):
    pass


# --------------------------------------------------------------------------------------------
# requests and answers


def _request(
    method: str, url: str, token: Token, params: dict[str, str] | None = None
) -> httpx2.Request:
    headers = {"Authorization": f"Bearer {token.access_token.reveal()}", "Accept": _ACCEPT}
    return httpx2.Request(method, url, params=params or None, headers=headers)


def _excerpt(response: httpx2.Response) -> str:
    ctype = response.headers.get("content-type", "").lower()
    if response.content and ("text" in ctype or "xml" in ctype or "json" in ctype):
        text = response.content[:300].decode("utf-8", "replace")
        return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:200]
    return ""


def _where(response: httpx2.Response) -> str:
    return str(response.request.url.copy_with(query=None))


def raise_for_status(response: httpx2.Response) -> None:
    """Our error for a non-2xx resource answer (never an httpx2 one)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    url = _where(response)
    excerpt = _excerpt(response)
    detail = f": {excerpt}" if excerpt else ""
    kw: dict[str, Any] = {"status_code": status, "url": url, "excerpt": excerpt}
    if status in (401, 403):
        hint = "the token is expired or revoked" if status == 401 else "outside the grant"
        raise AuthorizationError(f"{url} answered {status} ({hint}){detail}", **kw)
    if status == 404:
        raise NotFoundError(f"{url} answered 404 (no such resource){detail}", **kw)
    if status == 429 or status >= 500:
        retry = parse_retry_after(response.headers.get("retry-after"))  # a date: from now
        raise ServerError(
            f"{url} answered {status}; try again later{detail}", retry_after=retry, **kw
        )
    if 300 <= status < 400:
        # R25: never followed, and the Location is not repeated (it may carry a query).
        raise APIStatusError(f"{url} answered a redirect ({status}), not followed", **kw)
    raise APIStatusError(f"{url} answered {status}{detail}", **kw)


def _authorized(
    method: str,
    url: str,
    source: TokenSource,
    params: dict[str, str] | None,
    download: bool,
) -> Flow[Downloaded]:
    """Send with the token from ``source``; on 401 get a new one once and retry once (R24).

    403 (``insufficient_scope``) is not retried: a new token would not change the scope."""

    def send(token: Token) -> Flow[Downloaded]:
        request = _request(method, url, token, params)
        if download:
            got: Downloaded = yield Download(request)
            return got
        response: httpx2.Response = yield request
        return Downloaded(response, None, len(response.content))

    token = yield from source(None)
    got = yield from send(token)
    if got.status_code == 401:
        got.close()
        response = got.response
        try:
            token = yield from source(token)
        except InvalidGrantError as exc:
            raise AuthorizationError(
                f"{_where(response)} answered 401 and the refresh was refused "
                "(revoked or expired authorization): the customer must authorize again",
                status_code=401,
                url=_where(response),
            ) from exc
        except _NoRefresh:
            pass
        else:
            got = yield from send(token)
        if got.status_code == 401:
            got.close()
            raise AuthorizationError(
                f"{_where(got.response)} answered 401 again after a new token: "
                "the customer must authorize again",
                status_code=401,
                url=_where(got.response),
            )
    try:
        raise_for_status(got.response)
    except BaseException:
        got.close()
        raise
    return got


def authorized(
    method: str,
    url: str,
    source: TokenSource,
    params: dict[str, str] | None = None,
) -> Flow[httpx2.Response]:
    """Send with the token from ``source`` (401: one new token, one retry, R24); the answer
    read into memory. Data calls use :func:`download` instead."""
    got = yield from _authorized(method, url, source, params, download=False)
    return got.response


def download(
    method: str,
    url: str,
    source: TokenSource,
    params: dict[str, str] | None = None,
) -> Flow[Downloaded]:
    """:func:`authorized` with the 2xx body streamed into a spooled file under the cap (R27).
    The caller closes the result (the driver closes it at the latest when the run ends)."""
    return (yield from _authorized(method, url, source, params, download=True))


def parse_body(ctx: Context, got: Downloaded) -> Document:
    """The document of a 2xx answer, parsed from its spooled body (then closed); an HTML
    page is not data (R27)."""
    with got:
        response = got.response
        if response.status_code == 204 or got.size == 0:
            return Document()
        ctype = response.headers.get("content-type", "").lower()
        if "html" in ctype:
            raise ParseError(f"expected Atom/ESPI XML, got {ctype}", resource=_where(response))
        source = got.file if got.file is not None else response.content
        return parse(source, limits=ctx.limits, name=_where(response))


def _result(ctx: Context, got: Downloaded, raw: bool) -> Result:
    if raw:
        with got:
            if "html" in got.response.headers.get("content-type", "").lower():
                raise ParseError(
                    "expected Atom/ESPI XML, got an HTML page", resource=_where(got.response)
                )
            return got.read()
    return parse_body(ctx, got)


def _window_params(
    ctx: Context, start: TimeLike | None, end: TimeLike | None
) -> list[dict[str, str] | None]:
    """Query parameters per date window; ``[None]`` (the custodian's default) without bounds."""
    if start is None and end is None:
        return [None]
    if start is None or end is None:
        raise ValueError("give both start and end, or neither")
    fmt = ctx.profile.published_format
    return [
        {"published-min": format_time(lo, fmt), "published-max": format_time(hi, fmt)}
        for lo, hi in split_windows(start, end, ctx.profile.window_days)
    ]


def _subscription_id(ctx: Context, key: str) -> str:
    sub = _stored(ctx, key).subscription_id
    if not sub:
        raise ConfigurationError(f"the token of {key!r} names no subscription (resourceURI)")
    return sub


# --------------------------------------------------------------------------------------------
# merging date windows


def _key(item: Any) -> str:
    return item.href or item.atom_id or getattr(item, "id", "") or repr(item)


def _unique(items: Iterable[Any]) -> tuple[Any, ...]:
    seen: dict[str, Any] = {}
    for item in items:
        seen[_key(item)] = item  # the last copy wins, as in the readings table
    return tuple(seen.values())


def _merge_meter(a: MeterReading, b: MeterReading) -> MeterReading:
    return dataclasses.replace(
        a,
        reading_type=b.reading_type or a.reading_type,
        interval_blocks=a.interval_blocks + b.interval_blocks,
    )


def _merge_point(a: UsagePoint, b: UsagePoint) -> UsagePoint:
    meters: dict[str, MeterReading] = {_key(m): m for m in a.meter_readings}
    for m in b.meter_readings:
        k = _key(m)
        meters[k] = _merge_meter(meters[k], m) if k in meters else m
    return dataclasses.replace(
        a,
        meter_readings=tuple(meters.values()),
        usage_summaries=_unique(a.usage_summaries + b.usage_summaries),
        local_time_parameters=b.local_time_parameters or a.local_time_parameters,
    )


def merge_documents(docs: Iterable[Document]) -> Document:
    """One document from several windows or usage points: usage points and meter readings
    joined by identity, interval blocks concatenated (readings de-duplicate on access, so a
    block two windows both returned counts once)."""
    points: dict[str, UsagePoint] = {}
    parts: dict[str, list[Any]] = {
        f.name: []
        for f in dataclasses.fields(Document)
        if f.name not in ("usage_points", "service_status", "batch_list")
        and str(f.type).startswith("tuple")
    }
    first: Document | None = None
    for doc in docs:
        first = first or doc
        for up in doc.usage_points:
            k = _key(up)
            points[k] = _merge_point(points[k], up) if k in points else up
        for name, acc in parts.items():
            acc.extend(getattr(doc, name))
    if first is None:
        return Document()
    merged: dict[str, Any] = {
        name: tuple(acc) if name == "warnings" else _unique(acc) for name, acc in parts.items()
    }
    return dataclasses.replace(first, usage_points=tuple(points.values()), **merged)


# --------------------------------------------------------------------------------------------
# the resources


def get_one(
    ctx: Context,
    url: str,
    source: TokenSource,
    *,
    raw: bool = False,
    params: dict[str, str] | None = None,
) -> Flow[Result]:
    got = yield from download("GET", url, source, params)
    return _result(ctx, got, raw)


def usage_points(
    ctx: Context, key: str, up: str | None = None, *, raw: bool = False
) -> Flow[Result]:
    """``Subscription/{sub}/UsagePoint[/{up}]``: the usage points, no readings."""
    url = ctx.paths.usage_points(_subscription_id(ctx, key), up)
    return (yield from get_one(ctx, url, _access_source(ctx, key), raw=raw))


def _windowed(
    ctx: Context,
    urls: list[str],
    source: TokenSource,
    start: TimeLike | None,
    end: TimeLike | None,
    raw: bool,
) -> Flow[Document | list[bytes]]:
    bodies: list[bytes] = []
    docs: list[Document] = []
    for params in _window_params(ctx, start, end):
        for url in urls:
            got = yield from download("GET", url, source, params)
            if got.status_code == 204:  # PG&E: no data in that range
                got.close()
                continue
            if raw:
                with got:
                    bodies.append(got.read())
            else:
                docs.append(parse_body(ctx, got))
    return bodies if raw else merge_documents(docs)


def usage_point(
    ctx: Context,
    key: str,
    up: str,
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    raw: bool = False,
) -> Flow[Document | list[bytes]]:
    """The PG&E "sync" call ``Batch/Subscription/{sub}/UsagePoint/{up}``, one request per
    date window of ``profile.window_days``, merged (raw: one body per window)."""
    url = ctx.paths.batch_usage_point(_subscription_id(ctx, key), up)
    return (yield from _windowed(ctx, [url], _access_source(ctx, key), start, end, raw))


def subscription(
    ctx: Context,
    key: str,
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    raw: bool = False,
) -> Flow[Document | list[bytes]]:
    """All usage points of the subscription over ``[start, end)``: lists them, then makes
    the sync call per usage point and window (works at PG&E, whose whole-subscription batch
    is asynchronous, and everywhere else), merged into one document."""
    sub = _subscription_id(ctx, key)
    source = _access_source(ctx, key)
    listing = yield from download("GET", ctx.paths.usage_points(sub), source)
    ids = [p.id for p in parse_body(ctx, listing).usage_points]
    urls = [ctx.paths.batch_usage_point(sub, up) for up in dict.fromkeys(ids)]
    return (yield from _windowed(ctx, urls, source, start, end, raw))


def _accepted(ctx: Context, got: Downloaded) -> Accepted:
    if got.status_code == 200:
        return Accepted(200, parse_body(ctx, got))
    got.close()
    return Accepted(got.status_code)


def request_subscription_async(
    ctx: Context, key: str, *, start: TimeLike | None = None, end: TimeLike | None = None
) -> Flow[Accepted]:
    """``Batch/Subscription/{sub}`` (PG&E "async": 202, then a BatchList notification)."""
    params = _window_params(ctx, start, end)
    if len(params) > 1:  # one asynchronous request covers the whole range
        params = [{**(params[0] or {}), "published-max": (params[-1] or {})["published-max"]}]
    url = ctx.paths.batch_subscription(_subscription_id(ctx, key))
    got = yield from download("GET", url, _access_source(ctx, key), params[0])
    return _accepted(ctx, got)


def bulk(
    ctx: Context,
    bulk_id: str | None = None,
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> Flow[Accepted]:
    """``Batch/Bulk/{id}`` with the client token; the id defaults to the one named by the
    client token's resourceURI (ESPI_NOTES 2.6)."""
    source = _client_source(ctx)
    if bulk_id is None:
        token = yield from client_token(ctx)
        bulk_id = token.subscription_id  # last segment of .../Batch/Bulk/{id}
        if not bulk_id:
            raise ConfigurationError("the client token names no bulk id: pass bulk_id")
    params = _window_params(ctx, start, end)
    if len(params) > 1:
        params = [{**(params[0] or {}), "published-max": (params[-1] or {})["published-max"]}]
    got = yield from download("GET", ctx.paths.batch_bulk(bulk_id), source, params[0])
    return _accepted(ctx, got)


def _class_of(ctx: Context, url: str) -> str:
    rel = url[len(ctx.paths.base) :].lstrip("/").split("?")[0]
    head = rel.split("/")[:2]
    if head[:1] in (["Authorization"], ["ReadServiceStatus"]) or head == ["Batch", "Bulk"]:
        return "client"
    return "access"


def _notified_source(ctx: Context, uri: str, key: str | None) -> TokenSource:
    """The token for a notified URI, which must lie under the configured resource endpoint:
    our token goes nowhere else (STYLE 4)."""
    if not ctx.paths.same_origin(uri):
        raise ConfigurationError("refusing to send a token to a URI outside the resource endpoint")
    if _class_of(ctx, uri) == "client":
        return _client_source(ctx)
    if key is None:
        raise ConfigurationError(f"{uri.split('?')[0]} needs the customer's authorization")
    return _access_source(ctx, key)


def get(ctx: Context, uri: str, key: str | None = None, *, raw: bool = False) -> Flow[Result]:
    """GET a URI exactly as a notification gave it (``correlationID`` kept)."""
    got = yield from download("GET", uri, _notified_source(ctx, uri, key))
    if got.status_code in (202, 204):
        got.close()
        return b"" if raw else Document()
    return _result(ctx, got, raw)


def get_into(ctx: Context, uri: str, target: IO[bytes], key: str | None = None) -> Flow[int]:
    """:func:`get` with ``raw=True``, the body copied from the download's spool into
    ``target`` instead of read into memory (a Bulk file of every customer); the bytes
    written (0 for 202/204)."""
    got = yield from download("GET", uri, _notified_source(ctx, uri, key))
    with got:
        if got.status_code in (202, 204):
            return 0
        if "html" in got.response.headers.get("content-type", "").lower():
            raise ParseError(
                "expected Atom/ESPI XML, got an HTML page", resource=_where(got.response)
            )
        if got.file is None:
            target.write(got.response.content)
            return len(got.response.content)
        got.file.seek(0)
        shutil.copyfileobj(got.file, target, 1 << 20)
        return got.size


def customer_resource(
    ctx: Context, key: str, url_of: Callable[[Paths, str], str], *, raw: bool, **params: Any
) -> Flow[Result]:
    """A GET under the customer's subscription, windowed params allowed."""
    url = url_of(ctx.paths, _subscription_id(ctx, key))
    query = None
    start, end = params.pop("start", None), params.pop("end", None)
    if start is not None or end is not None:
        query = _window_params(ctx, start, end)
        if len(query) > 1:
            query = [{**(query[0] or {}), "published-max": (query[-1] or {})["published-max"]}]
    got = yield from download(
        "GET", url, _access_source(ctx, key), None if query is None else query[0]
    )
    return _result(ctx, got, raw)


def shared_resource(ctx: Context, key: str, url: str, *, raw: bool) -> Flow[Result]:
    """ReadingType / LocalTimeParameters: any customer access token reaches them."""
    return (yield from get_one(ctx, url, _access_source(ctx, key), raw=raw))


def authorizations(ctx: Context, auth_id: str | None = None, *, raw: bool = False) -> Flow[Result]:
    url = ctx.paths.authorizations(auth_id)
    return (yield from get_one(ctx, url, _client_source(ctx), raw=raw))


def revoke(ctx: Context, authorization: str) -> Flow[None]:
    """DELETE ``Authorization/{id}`` (ESPI revocation), then forget the local token (R22).

    ``authorization`` is a token-store key (the custodian's id is read from the stored
    token's authorizationURI) or the custodian's authorization id itself."""
    stored = ctx.store.load(authorization)
    key: str | None = None
    auth_id = authorization
    if stored is not None and stored.authorization_uri:
        key, auth_id = (
            authorization,
            unquote(stored.authorization_uri.rstrip("/").rpartition("/")[2]),
        )
    url = ctx.paths.authorizations(auth_id)
    yield from authorized("DELETE", url, _client_source(ctx))
    for gone in dict.fromkeys(k for k in (key, url) if k):
        if ctx.store.load(gone) is not None:
            ctx.store.delete(gone)


def application_information(
    ctx: Context, app_id: str, registration_token: Secret, *, raw: bool = False
) -> Flow[Result]:
    url = ctx.paths.application_information(app_id)
    return (yield from get_one(ctx, url, fixed_source(registration_token), raw=raw))


def service_status(ctx: Context, *, raw: bool = False) -> Flow[ServiceStatus | bytes]:
    """ReadServiceStatus: the bare ``<ServiceStatus>`` (1 = up)."""
    got = yield from download("GET", ctx.paths.read_service_status(), _client_source(ctx))
    where = _where(got.response)
    if raw:
        with got:
            return got.read()
    status = parse_body(ctx, got).service_status
    if status is None:
        raise ParseError("no ServiceStatus in the answer", resource=where)
    return status


def retail_customer(
    ctx: Context, key: str, rc: str | None = None, *, raw: bool = False
) -> Flow[Result]:
    """``Batch/RetailCustomer/{id}`` (PG&E: the subscription id as ``rc``)."""
    url = ctx.paths.batch_retail_customer(rc or _subscription_id(ctx, key))
    return (yield from get_one(ctx, url, _access_source(ctx, key), raw=raw))
