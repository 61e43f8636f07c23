"""The ESPI resource server (ESPI_NOTES 1.2–1.5): every third-party resource, each behind
the token class the reference DataCustodian demands (SECURITY R23).

Usage feeds are streamed: the data source hands over a Document whose IntervalBlocks are
made on access, and :func:`~greenbutton.table._espi.iter_feed_chunks` writes it entry by entry,
so a 5-year 15-minute request never sits in memory. Collections and members are cut from
the same writer output (entries kept by kind, or the one entry whose self link is asked
for), so every resource has exactly the links and content the batch feeds have.

Customer (PII) resources are cut from one list (``_customer``) the same way. With
``config.style == "pge"`` every XML answer is re-serialised in PG&E's wire format (``_style``),
batch feeds end with PG&E's ProgramIdMappings entry in either style.

Asynchronous calls follow PG&E: ``Batch/Subscription/{id}`` and ``Batch/Bulk/{id}`` answer
202 and the notifier POSTs a BatchList naming ``...?correlationID=<uuid>``; a GET of that URI
answers 200 with the prepared data (so a client following the notification never loops).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..models import ATOM_NS, ESPI_NS, Document, UsagePoint
from ..table import iter_feed_chunks
from ._binding import BindingRejection, peer_thumbprint
from ._config import PATHS
from ._customer import CustomerResource, customer_resources
from ._data import (
    PGE_TOU_CODES,
    DataSource,
    SyntheticData,
    Window,
    create_data_source,
    local_midnight,
)
from ._notify import Notifier
from ._simulator import Simulator
from ._state import AuthorizationGrant, Token, TokenKind
from ._style import pge_chunks, pge_document

__all__ = ["ATOM_XML", "parse_time", "resource_routes"]

ATOM_XML = "application/atom+xml"
#: Window of sync calls that name none (ESPI_NOTES 1.3: clients page by <= 30-day windows).
DEFAULT_WINDOW_DAYS = 30
REALM = "GreenButtonConnect"

_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
_EPOCH_SECONDS = re.compile(r"\d{1,11}")
_FEED_END = b"</feed>\n"
_EPOCH_2015 = 1_420_070_400  # published/updated of resources that do not change
#: Collections of the customer feed that answer (maybe empty) under a known parent.
_CUSTOMER_KINDS = frozenset(
    {"Customer", "CustomerAccount", "CustomerAgreement", "ServiceLocation", "Meter", "EndDevice"}
)


class _Fail(Exception):
    """An HTTP error answer, raised from deep inside a handler."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}

    def response(self) -> Response:
        return Response(self.detail + "\n", self.status, self.headers, media_type="text/plain")


def _unauthorized(detail: str, *, presented: bool) -> _Fail:
    # RFC 6750 3.1: no error code when the request carried no token at all.
    challenge = f'Bearer realm="{REALM}"'
    if presented:
        challenge += f', error="invalid_token", error_description="{detail}"'
    return _Fail(401, detail, {"WWW-Authenticate": challenge})


def _forbidden(detail: str) -> _Fail:
    challenge = f'Bearer realm="{REALM}", error="insufficient_scope", error_description="{detail}"'
    return _Fail(403, detail, {"WWW-Authenticate": challenge})


# --------------------------------------------------------------------------------------------
# query parameters


def parse_time(name: str, text: str) -> int:
    """An ESPI time bound as epoch seconds: decimal epoch seconds (PG&E) or an xs:dateTime
    with a zone (the RI, GBA). Anything else is the client's error (GBA QRY001/QRY002)."""
    if _EPOCH_SECONDS.fullmatch(text):
        return int(text)
    if _DATETIME.fullmatch(text):
        try:
            return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
        except ValueError:
            pass  # impossible date (2024-02-30 ...)
    raise _Fail(400, f"invalid {name}: expected epoch seconds or YYYY-MM-DDThh:mm:ssZ")


def _window(request: Request) -> Window | None:
    """The request's filters, or None when it names no time bound at all."""
    q = request.query_params
    values: dict[str, int | None] = {}
    for name in ("published-min", "published-max", "updated-min", "updated-max"):
        raw = q.getlist(name)
        if len(raw) > 1:
            raise _Fail(400, f"{name} given more than once")
        values[name] = parse_time(name, raw[0]) if raw else None
    for lo, hi in (("published-min", "published-max"), ("updated-min", "updated-max")):
        a, b = values[lo], values[hi]
        if a is not None and b is not None and a > b:
            raise _Fail(400, f"{lo} is after {hi}")
    if all(v is None for v in values.values()):
        return None
    return Window(
        published_min=values["published-min"],
        published_max=values["published-max"],
        updated_min=values["updated-min"],
        updated_max=values["updated-max"],
    )


def _paging(request: Request) -> tuple[int, int | None]:
    """``start-index`` (1-based) and ``max-results`` (``depth`` is the RI's synonym)."""
    q = request.query_params
    start = _positive(q, "start-index") or 1
    limit = _positive(q, "max-results")
    depth = _positive(q, "depth")
    if depth is not None:
        limit = depth if limit is None else min(limit, depth)
    return start, limit


def _positive(q: Any, name: str) -> int | None:
    raw = q.getlist(name)
    if not raw:
        return None
    if len(raw) > 1 or not raw[0].isdigit() or len(raw[0]) > 9 or int(raw[0]) < 1:
        raise _Fail(400, f"invalid {name}: expected a positive integer")
    return int(raw[0])


# --------------------------------------------------------------------------------------------
# XML helpers


def _page(chunks: Iterable[bytes], start: int, limit: int | None) -> Iterator[bytes]:
    """Writer output with entries before ``start`` and beyond ``limit`` left out."""
    it = iter(chunks)
    yield next(it)  # feed header
    n = 0
    for chunk in it:
        if chunk == _FEED_END:
            yield chunk
            return
        n += 1
        if n < start:
            continue
        if limit is not None and n >= start + limit:
            yield _FEED_END  # stop here: later entries (and their readings) are never made
            return
        yield chunk


def _kinds(chunks: Iterable[bytes], kinds: set[str]) -> Iterator[bytes]:
    """Writer output keeping only entries whose self link is of one of ``kinds``."""
    it = iter(chunks)
    yield next(it)
    for chunk in it:
        if chunk == _FEED_END:
            yield chunk
            return
        match = re.search(rb'rel="self" href="[^"]*" type="espi-entry/(\w+)"', chunk)
        if match is not None and match.group(1).decode() in kinds:
            yield chunk


def _with_entry(chunks: Iterable[bytes], entry: bytes) -> Iterator[bytes]:
    """Writer output with ``entry`` added as the feed's last entry."""
    for chunk in chunks:
        if chunk == _FEED_END:
            yield entry
        yield chunk


def _program_id_mappings(base: str) -> str:
    """PG&E's ProgramIdMappings entry (ESPI_NOTES 2.6): what the readings' ``tou`` codes
    mean. PG&E ends its usage feeds with it; peer parsers that fail on it fail at PG&E."""
    items = "".join(
        "<programIdMapping><tOUorCPPorConsumptionTier>tou</tOUorCPPorConsumptionTier>"
        f"<code>{code}</code><name>{name}</name><note>{note}</note></programIdMapping>"
        for code, (name, note) in sorted(PGE_TOU_CODES.items())
    )
    return _atom_entry(
        self_url=f"{base}/ProgramIdMapping/1",
        up_url=f"{base}/ProgramIdMapping",
        title="Time Of Use & Consumption Tier Code Info",
        content=f'<ProgramIdMappings xmlns="{ESPI_NS}">{items}</ProgramIdMappings>',
        stamp=_EPOCH_2015,
    )


def _member(chunks: Iterable[bytes], self_url: str) -> bytes | None:
    """The entry whose self link is ``self_url``, as a standalone Atom entry document."""
    needle = f'<link rel="self" href="{html.escape(self_url, quote=True)}"'.encode()
    for chunk in chunks:
        if chunk.startswith(b"<entry>") and needle in chunk:
            body = chunk.replace(b"<entry>", f'<entry xmlns="{ATOM_NS}">'.encode(), 1)
            return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body
    return None


def _xml_datetime(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _atom_entry(
    *,
    self_url: str,
    up_url: str,
    title: str,
    content: str,
    stamp: float,
    related: Iterable[str] = (),
) -> str:
    links = "".join(f'<link rel="related" href="{html.escape(u)}"/>' for u in related)
    return (
        f"<entry><id>urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, self_url)}</id>"
        f'<link rel="self" href="{html.escape(self_url)}"/>'
        f'<link rel="up" href="{html.escape(up_url)}"/>{links}'
        f"<title>{_esc(title)}</title><content>{content}</content>"
        f"<published>{_xml_datetime(stamp)}</published>"
        f"<updated>{_xml_datetime(stamp)}</updated></entry>\n"
    )


def _atom_feed(self_url: str, title: str, entries: Iterable[str]) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<feed xmlns="{ATOM_NS}"><id>urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, self_url)}</id>'
        f"<title>{_esc(title)}</title><updated>{_xml_datetime(time.time())}</updated>"
        f'<link rel="self" href="{html.escape(self_url)}"/>\n' + "".join(entries) + "</feed>\n"
    ).encode()


def _atom_member(entry: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + entry.replace("<entry>", f'<entry xmlns="{ATOM_NS}">', 1)
    ).encode()


def _xml(body: bytes, status: int = 200, media_type: str = ATOM_XML) -> Response:
    return Response(body, status, media_type=media_type)


# --------------------------------------------------------------------------------------------
# the server


Handler = Callable[[Request, Token], Response]


class _ResourceServer:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        if sim.data is None:
            sim.data = create_data_source(sim.config, sim.state)
        if sim.notifier is None:
            sim.notifier = Notifier(sim)

    @property
    def data(self) -> DataSource:
        data: DataSource = self.sim.data
        return data

    @property
    def notifier(self) -> Notifier:
        notifier: Notifier = self.sim.notifier
        return notifier

    @property
    def base(self) -> str:
        return self.sim.resource_url.rstrip("/")

    @property
    def pge(self) -> bool:
        return self.sim.config.style == "pge"

    def xml(self, body: bytes, status: int = 200, media_type: str = ATOM_XML) -> Response:
        """An XML answer in the configured wire style."""
        return _xml(pge_document(body) if self.pge else body, status, media_type)

    # -- authentication -----------------------------------------------------------------------

    def endpoint(self, kinds: set[TokenKind], handler: Handler) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            try:
                token = self.authenticate(request, kinds)
                return await run_in_threadpool(handler, request, token)
            except _Fail as fail:
                return fail.response()

        return endpoint

    def authenticate(self, request: Request, kinds: set[TokenKind]) -> Token:
        header = request.headers.get("authorization")
        if header is None:
            raise _unauthorized("an access token is required", presented=False)
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise _unauthorized("use the Bearer scheme", presented=False)
        token = self.sim.state.lookup_token(value) or self._registration_token(value)
        if token is None:
            raise _unauthorized("unknown, expired or revoked token", presented=True)
        faults = self.sim.faults
        if faults.expire_tokens and token.kind in ("access", "client"):
            raise _unauthorized("the access token expired", presented=True)
        if faults.revoke_all and token.kind == "access":
            raise _unauthorized("the authorization was revoked", presented=True)
        self._check_binding(request, token)
        if token.kind not in kinds:
            raise _forbidden(f"a {token.kind} token cannot call this resource")
        return token

    def _check_binding(self, request: Request, token: Token) -> None:
        """RFC 8705 §3: a token bound to a certificate is good only over a connection that
        presents that certificate (R31)."""
        bound = self.sim.token_bindings.get(token.value)
        if bound is None:
            return
        presented = peer_thumbprint(request.scope)
        if presented is None or not hmac.compare_digest(presented, bound):
            self.sim.binding_rejections.append(BindingRejection(request.url.path, presented, bound))
            raise _unauthorized("the token is bound to another client certificate", presented=True)

    def _registration_token(self, value: str) -> Token | None:
        """The registration_access_token of the registration (issued at bootstrap, and not
        necessarily in the token table) as a Token."""
        expected = self.sim.state.registration.registration_access_token
        if expected and hmac.compare_digest(value.encode(), expected.encode()):
            return Token(value=value, kind="registration", scope="", expires_at=float("inf"))
        return None

    def grant_of(self, token: Token) -> AuthorizationGrant:
        with self.sim.state.lock:
            grant = self.sim.state.grants.get(token.authorization_id or "")
        if grant is None:  # lookup_token already checked it; a race with a revocation
            raise _unauthorized("the authorization was revoked", presented=True)
        return grant

    def own_subscription(self, token: Token, sub: str) -> None:
        """Access tokens reach only URLs under their own subscription (resourceURI rule)."""
        if self.grant_of(token).subscription_id != sub:
            raise _forbidden("this token is not authorized for that subscription")

    # -- helpers ------------------------------------------------------------------------------

    def default_window(self) -> Window:
        data = self.data
        if isinstance(data, SyntheticData):
            _, last = data.history()
            first = last - timedelta(days=DEFAULT_WINDOW_DAYS - 1)
            return Window(published_min=local_midnight(first))
        return Window()

    def stream(
        self,
        request: Request,
        doc: Document,
        *,
        kinds: set[str] | None = None,
        status: int = 200,
        batch: bool = False,
    ) -> Response:
        """The writer's feed of ``doc``, paged; a ``batch`` feed (the whole data set of a
        Batch call) ends with the ProgramIdMappings entry, as PG&E's do."""
        start, limit = _paging(request)
        root = request.scope.get("root_path", "")
        rel = request.url.path.removeprefix(root).lstrip("/")
        doc = replace(doc, feed_href=rel or None)
        chunks: Iterable[bytes] = iter_feed_chunks(doc, base_url=self.base)
        if kinds is not None:
            chunks = _kinds(chunks, kinds)
        if batch:  # the last entry: start-index and max-results count it like any other
            chunks = _with_entry(chunks, _program_id_mappings(self.base).encode())
        chunks = _page(chunks, start, limit)
        if self.pge:
            chunks = pge_chunks(chunks)
        return StreamingResponse(chunks, status, media_type=ATOM_XML)

    def member(self, doc: Document, href: str) -> Response:
        body = _member(iter_feed_chunks(doc, base_url=self.base), f"{self.base}/{href}")
        if body is None:
            raise _Fail(404, f"no such resource: {href}")
        return self.xml(body)

    def usage_doc(self, sub: str, up: str | None = None, **kw: Any) -> Document:
        doc = self.data.document(sub, kw.pop("window", Window()), usage_point_id=up, **kw)
        if up is not None and not doc.usage_points:
            raise _Fail(404, f"no usage point {up} in subscription {sub}")
        return doc

    def full_doc(self, subs: Iterable[str], window: Window) -> Document:
        points: list[UsagePoint] = []
        for sub in subs:
            points += self.data.document(sub, window).usage_points
        return Document(usage_points=tuple(points))

    def _known_subscription(self, sub: str) -> None:
        if sub not in self.sim.state.by_subscription:
            raise _Fail(404, f"no subscription {sub}")

    # -- Batch --------------------------------------------------------------------------------

    def batch_subscription(self, request: Request, token: Token) -> Response:
        sub = request.path_params["sub"]
        self.own_subscription(token, sub)
        self._known_subscription(sub)
        path = f"Batch/Subscription/{sub}"
        correlation = request.query_params.get("correlationID")
        if correlation is not None:
            prepared = self.notifier.prepared(correlation)
            if prepared is None or prepared.path != path:
                raise _Fail(404, "unknown correlationID")
            doc = self.full_doc([sub], prepared.window)
            if not self.data.has_blocks(doc):
                return Response(status_code=204)
            return self.stream(request, doc, batch=True)
        window = _window(request) or self.default_window()
        _paging(request)  # validate now, not when the notification is fetched
        if not self.data.has_blocks(self.full_doc([sub], window)):
            return Response(status_code=204)
        self.notifier.notify([self.notifier.prepare(path, window)])
        return Response(status_code=202)

    def batch_usage_points(self, request: Request, token: Token) -> Response:
        sub = request.path_params["sub"]
        self.own_subscription(token, sub)
        self._known_subscription(sub)
        doc = self.full_doc([sub], _window(request) or self.default_window())
        if not self.data.has_blocks(doc):
            return Response(status_code=204)
        return self.stream(request, doc, batch=True)

    def batch_usage_point(self, request: Request, token: Token) -> Response:
        sub, up = request.path_params["sub"], request.path_params["up"]
        self.own_subscription(token, sub)
        doc = self.usage_doc(sub, up, window=_window(request) or self.default_window())
        if not self.data.has_blocks(doc):
            return Response(status_code=204)
        return self.stream(request, doc, batch=True)

    def active_subscriptions(self) -> list[str]:
        with self.sim.state.lock:
            grants = [g for g in self.sim.state.grants.values() if g.status == 1]
        return list(dict.fromkeys(g.subscription_id for g in grants))

    def batch_bulk(self, request: Request, token: Token) -> Response:
        bulk = request.path_params["bulk"]
        expected = self.sim.state.registration.bulk_id
        if expected and bulk != expected:
            raise _forbidden("this is not the application's bulk id")
        path = f"Batch/Bulk/{bulk}"
        correlation = request.query_params.get("correlationID")
        if correlation is not None:
            prepared = self.notifier.prepared(correlation)
            if prepared is None or prepared.path != path:
                raise _Fail(404, "unknown correlationID")
            doc = self.full_doc(self.active_subscriptions(), prepared.window)
            if not self.data.has_blocks(doc):
                return Response(status_code=204)
            return self.stream(request, doc, batch=True)
        window = _window(request) or self.default_window()
        _paging(request)
        if not self.data.has_blocks(self.full_doc(self.active_subscriptions(), window)):
            return Response(status_code=204)
        self.notifier.notify([self.notifier.prepare(path, window)])
        return Response(status_code=202)

    def _customer_resources(self, request: Request, token: Token) -> list[CustomerResource]:
        """The token's customer's PII resources under the ``rc`` the request names, which
        may be the retail customer's id or (PG&E) the subscription's."""
        rc = request.path_params["rc"]
        grant = self.grant_of(token)
        customer = self.sim.state.customers.get(grant.customer)
        if customer is None or rc not in (customer.retail_customer_id, customer.subscription_id):
            raise _forbidden("this token is not authorized for that retail customer")
        return customer_resources(customer, rc, self.sim.config.style)

    def _customer_entry(self, res: CustomerResource, stamp: float) -> str:
        return _atom_entry(
            self_url=f"{self.base}/{res.href}",
            up_url=f"{self.base}/{res.up}",
            title=res.title,
            content=res.content,
            stamp=stamp,
            related=[f"{self.base}/{h}" for h in res.related],
        )

    def retail_customer(self, request: Request, token: Token) -> Response:
        """PG&E's customer-namespace batch feed: every resource of the customer."""
        resources = self._customer_resources(request, token)
        stamp = self.grant_of(token).created_at
        body = _atom_feed(
            f"{self.base}/Batch/RetailCustomer/{request.path_params['rc']}",
            "Green Button Customer Feed",
            [self._customer_entry(r, stamp) for r in resources],
        )
        return self.xml(body)

    def retail_customer_resource(self, request: Request, token: Token) -> Response:
        """Any link of the customer feed: a member (its self href) or a collection (the
        entries whose up href it is)."""
        resources = self._customer_resources(request, token)
        stamp = self.grant_of(token).created_at
        href = f"RetailCustomer/{request.path_params['rc']}/{request.path_params['rest']}"
        href = href.rstrip("/")
        for res in resources:
            if res.href == href:
                return self.xml(_atom_member(self._customer_entry(res, stamp)))
        members = [r for r in resources if r.up == href]
        parent = href.rsplit("/", 1)[0]
        known_parent = parent.count("/") == 1 or any(r.href == parent for r in resources)
        if not members and not (known_parent and href.rsplit("/", 1)[1] in _CUSTOMER_KINDS):
            raise _Fail(404, f"no such resource: {href}")
        entries = [self._customer_entry(r, stamp) for r in members]
        return self.xml(_atom_feed(f"{self.base}/{href}", href.rsplit("/", 1)[1], entries))

    # -- Subscription sub-resources -----------------------------------------------------------

    def usage_point_collection(self, request: Request, token: Token) -> Response:
        sub = request.path_params["sub"]
        self.own_subscription(token, sub)
        doc = self.usage_doc(sub, blocks=False, summaries=False)
        return self.stream(request, doc, kinds={"UsagePoint"})

    def usage_point_member(self, request: Request, token: Token) -> Response:
        sub, up = request.path_params["sub"], request.path_params["up"]
        self.own_subscription(token, sub)
        doc = self.usage_doc(sub, up, blocks=False, summaries=False)
        return self.member(doc, f"Subscription/{sub}/UsagePoint/{up}")

    def meter_reading_collection(self, request: Request, token: Token) -> Response:
        sub, up = request.path_params["sub"], request.path_params["up"]
        self.own_subscription(token, sub)
        doc = self.usage_doc(sub, up, blocks=False, summaries=False)
        return self.stream(request, doc, kinds={"MeterReading"})

    def meter_reading_member(self, request: Request, token: Token) -> Response:
        sub, up, mr = (request.path_params[k] for k in ("sub", "up", "mr"))
        self.own_subscription(token, sub)
        doc = self.usage_doc(sub, up, meter_reading_id=mr, blocks=False, summaries=False)
        return self.member(doc, f"Subscription/{sub}/UsagePoint/{up}/MeterReading/{mr}")

    def interval_block_collection(self, request: Request, token: Token) -> Response:
        sub, up, mr = (request.path_params[k] for k in ("sub", "up", "mr"))
        self.own_subscription(token, sub)
        window = _window(request) or self.default_window()
        doc = self.usage_doc(sub, up, meter_reading_id=mr, window=window, summaries=False)
        if not doc.meter_readings:
            raise _Fail(404, f"no meter reading {mr}")
        if not self.data.has_blocks(doc):
            return Response(status_code=204)
        return self.stream(request, doc, kinds={"IntervalBlock"})

    def interval_block_member(self, request: Request, token: Token) -> Response:
        sub, up, mr, ib = (request.path_params[k] for k in ("sub", "up", "mr", "ib"))
        self.own_subscription(token, sub)
        if not ib.isdigit() or len(ib) > 12:
            raise _Fail(404, f"no interval block {ib}")
        window = Window(published_min=int(ib), published_max=int(ib) + 1)
        doc = self.usage_doc(sub, up, meter_reading_id=mr, window=window, summaries=False)
        href = f"Subscription/{sub}/UsagePoint/{up}/MeterReading/{mr}/IntervalBlock/{ib}"
        return self.member(doc, href)

    def usage_summary_collection(self, request: Request, token: Token) -> Response:
        sub, up = request.path_params["sub"], request.path_params["up"]
        self.own_subscription(token, sub)
        doc = self.usage_doc(sub, up, window=_window(request) or Window(), blocks=False)
        return self.stream(request, doc, kinds={"UsageSummary", "ElectricPowerUsageSummary"})

    def usage_summary_member(self, request: Request, token: Token) -> Response:
        sub, up, us = (request.path_params[k] for k in ("sub", "up", "us"))
        self.own_subscription(token, sub)
        doc = self.usage_doc(sub, up, blocks=False)
        return self.member(doc, f"Subscription/{sub}/UsagePoint/{up}/UsageSummary/{us}")

    def _power_quality(self, sub: str, up: str, window: Window) -> dict[str, str]:
        """ElectricPowerQualitySummary entries by id: one per billing period of an electric
        usage point (interruption and dip counts derived from the period), none for gas."""
        point = self.data.usage_point(sub, up)
        if point is None:
            raise _Fail(404, f"no usage point {up} in subscription {sub}")
        if point.service_kind not in (None, 0):
            return {}
        href = f"{self.base}/Subscription/{sub}/UsagePoint/{up}/ElectricPowerQualitySummary"
        out: dict[str, str] = {}
        for summary in self.data.usage_summaries(sub, up, window):
            period = summary.billing_period
            if period is None or period.start is None or period.duration is None:
                continue
            start, duration = period.start, period.duration
            h = hashlib.sha256(f"{sub}:{up}:{start}".encode()).digest()
            content = (
                f'<ElectricPowerQualitySummary xmlns="{ESPI_NS}">'
                f"<longInterruptions>{h[0] % 2}</longInterruptions>"
                f"<shortInterruptions>{h[1] % 4}</shortInterruptions>"
                f"<summaryInterval><duration>{duration}</duration><start>{start}</start>"
                f"</summaryInterval><supplyVoltageDips>{h[2] % 6}</supplyVoltageDips>"
                "</ElectricPowerQualitySummary>"
            )
            out[str(start)] = _atom_entry(
                self_url=f"{href}/{start}",
                up_url=href,
                title="Power quality summary",
                content=content,
                stamp=start + duration,
            )
        return out

    def power_quality_collection(self, request: Request, token: Token) -> Response:
        sub, up = request.path_params["sub"], request.path_params["up"]
        self.own_subscription(token, sub)
        entries = self._power_quality(sub, up, _window(request) or Window())
        href = f"{self.base}/Subscription/{sub}/UsagePoint/{up}/ElectricPowerQualitySummary"
        return self.xml(_atom_feed(href, "ElectricPowerQualitySummary", entries.values()))

    def power_quality_member(self, request: Request, token: Token) -> Response:
        sub, up, pq = (request.path_params[k] for k in ("sub", "up", "pq"))
        self.own_subscription(token, sub)
        entry = self._power_quality(sub, up, Window()).get(pq)
        if entry is None:
            raise _Fail(404, f"no power quality summary {pq}")
        return self.xml(_atom_member(entry))

    def download_sample_data(self, request: Request, token: Token) -> Response:
        """PG&E's registration test download (client token): sample usage of no customer."""
        return self.stream(request, self.data.sample_document(), batch=True)

    # -- shared resources ---------------------------------------------------------------------

    def reading_type_collection(self, request: Request, token: Token) -> Response:
        return self.stream(request, Document(reading_types=self.data.reading_types()))

    def reading_type_member(self, request: Request, token: Token) -> Response:
        doc = Document(reading_types=self.data.reading_types())
        return self.member(doc, f"ReadingType/{request.path_params['rt']}")

    def program_id_mapping_collection(self, request: Request, token: Token) -> Response:
        entry = _program_id_mappings(self.base)
        return self.xml(_atom_feed(f"{self.base}/ProgramIdMapping", "ProgramIdMapping", [entry]))

    def program_id_mapping_member(self, request: Request, token: Token) -> Response:
        if request.path_params["pim"] != "1":
            raise _Fail(404, f"no ProgramIdMapping {request.path_params['pim']}")
        return self.xml(_atom_member(_program_id_mappings(self.base)))

    def ltp_collection(self, request: Request, token: Token) -> Response:
        return self.stream(
            request, Document(local_time_parameters=self.data.local_time_parameters())
        )

    def ltp_member(self, request: Request, token: Token) -> Response:
        doc = Document(local_time_parameters=self.data.local_time_parameters())
        return self.member(doc, f"LocalTimeParameters/{request.path_params['ltp']}")

    # -- third-party administration -----------------------------------------------------------

    def _authorization_entry(self, grant: AuthorizationGrant) -> str:
        state, config = self.sim.state, self.sim.config
        customer = state.customers.get(grant.customer)
        with state.lock:
            expiries = [
                t.expires_at
                for t in state.tokens.values()
                if t.authorization_id == grant.id and t.kind == "access"
            ]
        expires = int(max(expiries, default=grant.created_at + config.access_token_ttl))
        history = config.history_days * 86400
        url = f"{self.base}/Authorization/{grant.id}"
        customer_uri = (
            f"<customerResourceURI>{self.base}/Batch/RetailCustomer/"
            f"{customer.retail_customer_id}</customerResourceURI>"
            if customer is not None
            else ""
        )
        # PG&E writes both periods in milliseconds (ESPI_NOTES 2.6), expires_at in seconds
        ms = 1000 if self.pge else 1
        start = int(grant.created_at)
        content = (
            f'<Authorization xmlns="{ESPI_NS}">'
            f"<authorizedPeriod><duration>{365 * 86400 * ms}</duration>"
            f"<start>{start * ms}</start></authorizedPeriod>"
            f"<publishedPeriod><duration>{history * ms}</duration>"
            f"<start>{(start - history) * ms}</start></publishedPeriod>"
            f"<status>{grant.status}</status><expires_at>{expires}</expires_at>"
            "<grant_type>authorization_code</grant_type>"
            f"<scope>{_esc(grant.scope)}</scope><token_type>Bearer</token_type>"
            f"<resourceURI>{self.base}/Batch/Subscription/{grant.subscription_id}</resourceURI>"
            f"<authorizationURI>{url}</authorizationURI>{customer_uri}</Authorization>"
        )
        return _atom_entry(
            self_url=url,
            up_url=f"{self.base}/Authorization",
            title="Authorization",
            content=content,
            stamp=grant.created_at,
        )

    def _admin_authorizations(self) -> dict[str, str]:
        """The third party's own authorizations, listed with the customers' as PG&E and the
        ESPI reference implementation do (ESPI_NOTES 1): the client-credentials one whose
        resourceURI is ``Batch/Bulk/{bulkId}`` (how peers such as pgesmd find the bulk id)
        and the registration one whose resourceURI is its ApplicationInformation. Their ids
        are derived from the client id, so they are stable across restarts."""
        reg = self.sim.state.registration
        seed = int(hashlib.sha256(reg.client_id.encode()).hexdigest()[:8], 16) % 10**9
        bulk_id = reg.bulk_id or "1"
        admin = {
            str(10**9 + seed): (
                f"{self.base}/Batch/Bulk/{bulk_id}",
                f"{reg.scope};BR={bulk_id}",
            ),
        }
        if reg.application_information_id:
            admin[str(2 * 10**9 + seed)] = (
                f"{self.base}/ApplicationInformation/{reg.application_information_id}",
                reg.scope,
            )
        entries: dict[str, str] = {}
        for auth_id, (resource_uri, scope) in admin.items():
            url = f"{self.base}/Authorization/{auth_id}"
            content = (
                f'<Authorization xmlns="{ESPI_NS}">'
                # expires_at is required by the schema; these do not expire (2100-01-01)
                "<status>1</status><expires_at>4102444800</expires_at>"
                "<grant_type>client_credentials</grant_type>"
                f"<scope>{_esc(scope)}</scope><token_type>Bearer</token_type>"
                f"<resourceURI>{_esc(resource_uri)}</resourceURI>"
                f"<authorizationURI>{url}</authorizationURI></Authorization>"
            )
            entries[auth_id] = _atom_entry(
                self_url=url,
                up_url=f"{self.base}/Authorization",
                title="Authorization",
                content=content,
                stamp=0,
            )
        return entries

    def authorization_collection(self, request: Request, token: Token) -> Response:
        start, limit = _paging(request)
        with self.sim.state.lock:
            grants = sorted(self.sim.state.grants.values(), key=lambda g: (g.created_at, g.id))
        entries = [
            *self._admin_authorizations().values(),
            *(self._authorization_entry(g) for g in grants),
        ]
        entries = entries[start - 1 : None if limit is None else start - 1 + limit]
        return self.xml(_atom_feed(f"{self.base}/Authorization", "Authorizations", entries))

    def authorization_member(self, request: Request, token: Token) -> Response:
        auth_id = request.path_params["auth"]
        admin = self._admin_authorizations()
        if auth_id in admin:
            if request.method == "DELETE":
                raise _forbidden("the third party's own authorizations are not revocable here")
            return self.xml(_atom_member(admin[auth_id]))
        with self.sim.state.lock:
            grant = self.sim.state.grants.get(auth_id)
        if grant is None:
            raise _Fail(404, f"no authorization {auth_id}")
        if request.method == "DELETE":
            self.sim.state.revoke_authorization(auth_id)
            return Response(status_code=200)  # GBA MGA002: 200, not 204
        return self.xml(_atom_member(self._authorization_entry(grant)))

    def application_information(self, request: Request, token: Token) -> Response:
        """The registration (ESPI_NOTES 2.1), valid against ESPI 4.0, GBA 2019 and PG&E 2018:
        the two latter require both scope-selection screens. The third party's screen is
        its web app's root (where a DC-initiated customer lands); the custodian's is the
        authorize request for this client, as PG&E's points at its consent page."""
        reg = self.sim.state.registration
        app_id = request.path_params["app"]
        if not reg.application_information_id or app_id != reg.application_information_id:
            raise _forbidden("a registration token reaches only its own ApplicationInformation")
        url = f"{self.base}/ApplicationInformation/{app_id}"
        sim = self.sim
        e = _esc
        third_party = reg.redirect_uri.removesuffix(PATHS.THIRD_PARTY_REDIRECT) + "/"
        scope_screen = (
            sim.authorize_url
            + "?"
            + urlencode(
                {
                    "client_id": reg.client_id,
                    "response_type": "code",
                    "redirect_uri": reg.redirect_uri,
                    "scope": reg.scope,
                }
            )
        )
        content = (
            f'<ApplicationInformation xmlns="{ESPI_NS}">'
            "<dataCustodianId>greenbutton-simulator</dataCustodianId>"
            "<dataCustodianApplicationStatus>2</dataCustodianApplicationStatus>"
            "<thirdPartyApplicationType>1</thirdPartyApplicationType>"
            f"<authorizationServerUri>{e(sim.portal_url)}</authorizationServerUri>"
            f"<thirdPartyNotifyUri>{e(reg.notification_uri)}</thirdPartyNotifyUri>"
            f"<authorizationServerAuthorizationEndpoint>{e(sim.authorize_url)}"
            "</authorizationServerAuthorizationEndpoint>"
            f"<authorizationServerTokenEndpoint>{e(sim.token_url)}"
            "</authorizationServerTokenEndpoint>"
            f"<dataCustodianBulkRequestURI>{self.base}/Batch/Bulk/{e(reg.bulk_id or '1')}"
            "</dataCustodianBulkRequestURI>"
            f"<dataCustodianResourceEndpoint>{self.base}</dataCustodianResourceEndpoint>"
            f"<thirdPartyScopeSelectionScreenURI>{e(third_party)}"
            "</thirdPartyScopeSelectionScreenURI>"
            f"<thirdPartyUserPortalScreenURI>{e(third_party)}</thirdPartyUserPortalScreenURI>"
            f"<client_secret>{e(reg.client_secret)}</client_secret>"
            "<client_name>greenbutton third party</client_name>"
            f"<redirect_uri>{e(reg.redirect_uri)}</redirect_uri>"
            f"<client_id>{e(reg.client_id)}</client_id>"
            "<software_id>greenbutton</software_id><software_version>1</software_version>"
            # PG&E: milliseconds (ESPI_NOTES 2.6)
            f"<client_id_issued_at>{_EPOCH_2015 * (1000 if self.pge else 1)}</client_id_issued_at>"
            "<client_secret_expires_at>0</client_secret_expires_at>"
            "<token_endpoint_auth_method>client_secret_basic</token_endpoint_auth_method>"
            f"<scope>{e(reg.scope)}</scope>"
            "<grant_types>authorization_code</grant_types>"
            "<grant_types>client_credentials</grant_types>"
            "<grant_types>refresh_token</grant_types>"
            "<response_types>code</response_types>"
            f"<registration_client_uri>{url}</registration_client_uri>"
            f"<registration_access_token>{e(reg.registration_access_token)}"
            "</registration_access_token>"
            f"<dataCustodianScopeSelectionScreenURI>{e(scope_screen)}"
            "</dataCustodianScopeSelectionScreenURI></ApplicationInformation>"
        )
        entry = _atom_entry(
            self_url=url,
            up_url=f"{self.base}/ApplicationInformation",
            title="ApplicationInformation",
            content=content,
            stamp=0,
        )
        return self.xml(_atom_member(entry))

    def read_service_status(self, request: Request, token: Token) -> Response:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<ServiceStatus xmlns="{ESPI_NS}"><currentStatus>1</currentStatus></ServiceStatus>\n'
        )
        return self.xml(body.encode(), media_type="application/xml")


def resource_routes(sim: Simulator) -> list[BaseRoute]:
    """The ESPI resource routes, relative to the resource endpoint (mount them under
    ``PATHS.RESOURCE``). Creates ``sim.data`` and ``sim.notifier`` when they are unset."""
    s = _ResourceServer(sim)
    access: set[TokenKind] = {"access"}
    client: set[TokenKind] = {"client"}
    registration: set[TokenKind] = {"registration"}
    shared: set[TokenKind] = {"access", "client"}  # linked from Batch/Bulk feeds too
    up = "/Subscription/{sub}/UsagePoint/{up}"
    mr = up + "/MeterReading/{mr}"
    table: list[tuple[str, set[TokenKind], Handler, list[str]]] = [
        ("/Batch/Subscription/{sub}", access, s.batch_subscription, ["GET"]),
        ("/Batch/Subscription/{sub}/UsagePoint", access, s.batch_usage_points, ["GET"]),
        ("/Batch/Subscription/{sub}/UsagePoint/{up}", access, s.batch_usage_point, ["GET"]),
        ("/Batch/Bulk/{bulk}", client, s.batch_bulk, ["GET"]),
        ("/Batch/RetailCustomer/{rc}", access, s.retail_customer, ["GET"]),
        ("/RetailCustomer/{rc}/{rest:path}", access, s.retail_customer_resource, ["GET"]),
        ("/Subscription/{sub}/UsagePoint", access, s.usage_point_collection, ["GET"]),
        (up, access, s.usage_point_member, ["GET"]),
        (up + "/MeterReading", access, s.meter_reading_collection, ["GET"]),
        (mr, access, s.meter_reading_member, ["GET"]),
        (mr + "/IntervalBlock", access, s.interval_block_collection, ["GET"]),
        (mr + "/IntervalBlock/{ib}", access, s.interval_block_member, ["GET"]),
        (up + "/UsageSummary", access, s.usage_summary_collection, ["GET"]),
        (up + "/UsageSummary/{us}", access, s.usage_summary_member, ["GET"]),
        (up + "/ElectricPowerQualitySummary", access, s.power_quality_collection, ["GET"]),
        (up + "/ElectricPowerQualitySummary/{pq}", access, s.power_quality_member, ["GET"]),
        ("/ReadingType", access, s.reading_type_collection, ["GET"]),
        ("/ReadingType/{rt}", access, s.reading_type_member, ["GET"]),
        ("/ProgramIdMapping", shared, s.program_id_mapping_collection, ["GET"]),
        ("/ProgramIdMapping/{pim}", shared, s.program_id_mapping_member, ["GET"]),
        ("/LocalTimeParameters", access, s.ltp_collection, ["GET"]),
        ("/LocalTimeParameters/{ltp}", access, s.ltp_member, ["GET"]),
        ("/Authorization", client, s.authorization_collection, ["GET"]),
        ("/Authorization/{auth}", client, s.authorization_member, ["GET", "DELETE"]),
        ("/ApplicationInformation/{app}", registration, s.application_information, ["GET"]),
        ("/ReadServiceStatus", client, s.read_service_status, ["GET"]),
        ("/DownloadSampleData", client, s.download_sample_data, ["GET"]),
    ]
    return [
        Route(path, s.endpoint(kinds, handler), methods=methods)
        for path, kinds, handler, methods in table
    ]
