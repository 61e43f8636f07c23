"""Requests made the way other people's PG&E clients make them, against ``--style pge`` over
real TLS (issue 14): PG&E's 2015 sample SDK, Open Energy View and pgesmd_self_access (ESPI_NOTES
[S12]-[S15]). Written in our own code with ``requests`` (what those clients use), with their
habits: ``cert=(client_cert, client_key)`` and ``verify=ca``, a hand-made Basic header,
token parameters in the query string with an empty body, epoch ``published-min/max`` in
28-day windows, the bulk id found in the Authorization feed. A client that passes here should
not meet a surprise at PG&E, so each habit must succeed, not merely be tolerated.
"""

from __future__ import annotations

import base64
import dataclasses
import queue
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import xmlschema

import greenbutton
from greenbutton.simulator._oauth import token_calls
from tests.conftest import XSD_DIR
from tests.simulator.test_simulator_customer import schema_errors
from tests.simulator_harness import (
    NotificationInbox,
    SimulatorHandle,
    notification_receiver,
    start_simulator,
)

PGE = XSD_DIR / "pge-sharemydata-2018"
DAY = 86_400
WINDOW = 28 * DAY  # "per PG&E guidelines" (ESPI_NOTES [S15])


def _session() -> requests.Session:
    session = requests.Session()
    session.headers["Connection"] = "close"
    return session


@dataclasses.dataclass
class Outside:
    """What such a client holds: the registration's values and a bare ``requests`` call."""

    gb: SimulatorHandle
    inbox: NotificationInbox
    #: one connection pool, closed at the end (a bare ``requests.get`` leaves its socket to
    #: the garbage collector, which pytest reports as an unclosed-resource warning)
    http: requests.Session = dataclasses.field(default_factory=lambda: _session())

    @property
    def reg(self) -> dict[str, str]:
        return self.gb.registration  # type: ignore[return-value]

    @property
    def cert(self) -> tuple[str, str]:
        return (self.reg["client_cert"], self.reg["client_key"])

    def basic(self) -> dict[str, str]:
        """The header as the SDK builds it: ``Basic base64(id:secret)``, by hand."""
        pair = f"{self.reg['client_id']}:{self.reg['client_secret']}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}

    def get(self, url: str, token: str, **params: object) -> requests.Response:
        return self.http.get(
            url,
            params=params or None,  # type: ignore[arg-type]
            headers={"Authorization": f"Bearer {token}"},
            cert=self.cert,
            verify=self.reg["ca_cert"],
            timeout=30,
        )

    def token_in_query(self, **params: str) -> requests.Response:
        """Open Energy View's token call: every parameter in the query string, no body."""
        return self.http.post(
            self.reg["token_url"],
            params=params,
            headers=self.basic(),
            cert=self.cert,
            verify=self.reg["ca_cert"],
            timeout=30,
        )

    def token_in_form(self, **data: str) -> requests.Response:
        """The PG&E sample SDK's and pgesmd's token call: a form body."""
        return self.http.post(
            self.reg["token_url"],
            data=data,
            headers=self.basic(),
            cert=self.cert,
            verify=self.reg["ca_cert"],
            timeout=30,
        )

    def code(self) -> str:
        """The browser part, auto-approved: the code on the redirect (not followed)."""
        r = self.http.get(
            self.reg["authorize_url"],
            params={
                "response_type": "code",
                "client_id": self.reg["client_id"],
                "redirect_uri": self.reg["redirect_uri"],
                "scope": self.reg["scope"],
                "state": "outside",
            },
            verify=self.reg["ca_cert"],
            allow_redirects=False,
            timeout=30,
        )
        assert r.status_code == 302, r.text
        return parse_qs(urlsplit(r.headers["location"]).query)["code"][0]

    def exchange(self) -> dict[str, str]:
        r = self.token_in_form(
            grant_type="authorization_code", code=self.code(), redirect_uri=self.reg["redirect_uri"]
        )
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def notified(self) -> tuple[str, ...]:
        _, _, body = self.inbox.posts.get(timeout=10)
        batch = greenbutton.parse(body).batch_list
        assert batch is not None
        return batch.resources

    def drain(self) -> None:
        assert self.gb.sim.notifier.wait_idle(10)
        while True:
            try:
                self.inbox.posts.get_nowait()
            except queue.Empty:
                return


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outside]:
    state = tmp_path_factory.mktemp("outside") / "sim"
    with notification_receiver() as inbox, start_simulator(
        state, style="pge", auto_approve="alice", customers=2, history_days=60,
        third_party_url=inbox.base_url,
    ) as gb:  # fmt: skip
        client = Outside(gb, inbox)
        with client.http:
            yield client


@pytest.fixture(scope="module")
def pge_schemas() -> dict[str, xmlschema.XMLSchema]:
    def build(main: str) -> xmlschema.XMLSchema:
        return xmlschema.XMLSchema([str(PGE / main), str(PGE / "atom.xsd")], allow="local")

    return {"usage": build("espiDerived.xsd"), "customer": build("retailcustomer.xsd")}


def _block_starts(xml: bytes) -> list[int]:
    doc = greenbutton.parse(xml)
    return [b.interval.start or 0 for mr in doc.meter_readings for b in mr.interval_blocks]


# -- PG&E's 2015 sample SDK -----------------------------------------------------------------------


def test_pge_sample_sdk_code_refresh_client_credentials_sync_and_async(outside: Outside) -> None:
    first = outside.exchange()
    assert first["resourceURI"].startswith(outside.reg["resource_url"] + "/Batch/Subscription/")
    refreshed = outside.token_in_form(
        grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert refreshed.status_code == 200
    access = refreshed.json()["access_token"]
    assert refreshed.json()["refresh_token"] != first["refresh_token"]  # rotation: keep the new one
    client = outside.token_in_form(grant_type="client_credentials")
    assert client.status_code == 200
    status = outside.get(outside.reg["resource_url"] + "/ReadServiceStatus",
                         client.json()["client_access_token"])  # fmt: skip
    assert status.status_code == 200
    assert greenbutton.parse(status.content).service_status.available  # type: ignore[union-attr]

    # sync: one usage point with ISO bounds (the SDK's sync_request)
    subscription = first["resourceURI"]
    ups = outside.get(subscription.replace("/Batch/", "/") + "/UsagePoint", access)
    assert ups.status_code == 200 and b"ns0:UsagePoint" in ups.content
    (up, *_) = re.findall(rb"/UsagePoint/([^/\"]+)\"", ups.content)
    r = outside.get(f"{subscription}/UsagePoint/{up.decode()}", access)
    assert r.status_code == 200
    starts = _block_starts(r.content)
    assert len(starts) >= 20  # without bounds: the latest 30 days, as PG&E's sync call
    # async: the BatchList the SDK's notification handler expects, then the data
    outside.drain()
    r = outside.get(subscription, access, **{"published-min": starts[10]})
    assert r.status_code == 202
    (uri,) = outside.notified()
    feed = outside.get(uri, access)
    assert feed.status_code == 200 and min(_block_starts(feed.content)) == starts[10]


# -- Open Energy View -----------------------------------------------------------------------------


def test_open_energy_view_query_string_tokens_and_28_day_epoch_windows(outside: Outside) -> None:
    before = len(token_calls(outside.gb.sim))
    r = outside.token_in_query(grant_type="client_credentials")
    assert r.status_code == 200 and r.json()["client_access_token"]
    first = outside.exchange()
    r = outside.token_in_query(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert r.status_code == 200, r.text
    access = r.json()["access_token"]
    calls = token_calls(outside.gb.sim)[before:]
    assert [c.from_query for c in calls] == [True, False, True]  # accepted and recorded

    # the whole history of one usage point, from the epoch on
    subscription = first["resourceURI"]
    ups = outside.get(subscription.replace("/Batch/", "/") + "/UsagePoint", access)
    up = re.findall(rb"/UsagePoint/([^/\"]+)\"", ups.content)[0].decode()
    whole = outside.get(f"{subscription}/UsagePoint/{up}", access, **{"published-min": 0})
    everything = sorted(_block_starts(whole.content))
    lo, hi = everything[0], everything[-1] + DAY
    assert hi - lo > 2 * WINDOW  # the windows below are more than one

    # then again in 28-day windows of epoch seconds, as OEV walks the history
    got: list[int] = []
    edges = list(range(lo, hi, WINDOW))
    for start in edges:
        window = {"published-min": start, "published-max": min(start + WINDOW, hi)}
        r = outside.get(f"{subscription}/UsagePoint/{up}", access, **window)
        assert r.status_code == 200, (start, r.status_code)
        got += _block_starts(r.content)
    assert len(edges) >= 3
    assert set(got) == set(everything)  # nothing lost at a window edge
    # A block is in both windows only when it straddles their edge: 28 x 86,400 s from a
    # local midnight is an hour off midnight after a DST change, so such a client must
    # de-duplicate by interval start, as ours does.
    twice = {t for t in got if got.count(t) > 1}
    for t in twice:
        assert any(t < edge < t + 25 * 3600 for edge in edges[1:]), t


def test_strict_token_requests_refuse_what_open_energy_view_sends(tmp_path: Path) -> None:
    with start_simulator(tmp_path / "strict", style="pge", strict_token_requests=True) as gb:
        strict = Outside(gb, NotificationInbox(base_url=""))
        with strict.http:
            r = strict.token_in_query(grant_type="client_credentials")
            assert r.status_code == 400 and r.json()["error"] == "invalid_request"
            assert strict.token_in_form(grant_type="client_credentials").status_code == 200


# -- pgesmd_self_access ---------------------------------------------------------------------------


def test_pgesmd_finds_the_bulk_id_in_the_authorization_feed(outside: Outside) -> None:
    outside.exchange()  # a customer connected
    r = outside.token_in_form(grant_type="client_credentials")
    client = r.json()["client_access_token"]
    feed = outside.get(outside.reg["resource_url"] + "/Authorization", client)
    assert feed.status_code == 200
    # pgesmd's discovery: the resourceURI of the Bulk authorization, by pattern
    bulk_ids = re.findall(
        rb"<ns0:resourceURI>[^<]*/Batch/Bulk/(\d+)</ns0:resourceURI>", feed.content
    )
    assert bulk_ids == [outside.reg["bulk_id"].encode()]
    outside.drain()
    bulk = f"{outside.reg['resource_url']}/Batch/Bulk/{bulk_ids[0].decode()}"
    assert outside.get(bulk, client).status_code == 202
    (uri,) = outside.notified()
    assert uri.startswith(bulk + "?correlationID=")
    data = outside.get(uri, client)
    assert data.status_code == 200
    assert greenbutton.parse(data.content).usage_points


# -- every resource -------------------------------------------------------------------------------


def _kind(base: str, url: str) -> str:
    """The URL below ``base`` with its ids replaced: one pattern per kind of resource."""
    path = urlsplit(url).path.removeprefix(urlsplit(base).path)
    return re.sub(r"/(?![A-Z][A-Za-z]+(?:/|$))[^/]+", "/{id}", path)


def test_every_resource_reads_and_validates(
    outside: Outside, pge_schemas: dict[str, xmlschema.XMLSchema]
) -> None:
    """Follows every link from the subscription, the customer feed, the Authorization feed
    and the registration's own URIs; each kind answers 200 and validates against PG&E 2018
    (two of each kind read: reading all 60 days of blocks one by one adds nothing). The one
    link that answers 404 is ApplicationInformation's ``up``: PG&E documents no such feed."""
    grant = outside.exchange()
    client = outside.token_in_query(grant_type="client_credentials").json()["client_access_token"]
    base = outside.reg["resource_url"]
    auth = outside.get(grant["authorizationURI"], client)
    customer = re.search(rb"<ns0:customerResourceURI>([^<]+)<", auth.content)
    assert customer is not None
    usage = grant["resourceURI"].replace("/Batch/", "/") + "/UsagePoint"
    up = re.findall(r"/UsagePoint/([^/\"]+)\"", outside.get(usage, grant["access_token"]).text)[0]
    starts = [
        (grant["resourceURI"] + "/UsagePoint", grant["access_token"]),
        (customer.group(1).decode(), grant["access_token"]),
        # ESPI's path for it; the UsagePoint entry does not link it
        (f"{usage}/{up}/ElectricPowerQualitySummary", grant["access_token"]),
        (f"{base}/Authorization", client),
        (f"{base}/ReadServiceStatus", client),
        (f"{base}/ApplicationInformation/{outside.reg['application_information_id']}",
         outside.reg["registration_access_token"]),
    ]  # fmt: skip
    todo = list(starts)
    seen: set[str] = set()
    per_kind: dict[str, int] = {}
    while todo:
        url, token = todo.pop(0)
        kind = _kind(base, url)
        if url in seen or per_kind.get(kind, 0) >= 2:
            continue
        seen.add(url)
        per_kind[kind] = per_kind.get(kind, 0) + 1
        r = outside.get(url, token)
        if url == f"{base}/ApplicationInformation":  # the entry's "up": no such feed at PG&E
            assert r.status_code == 404
            continue
        assert r.status_code == 200, (url, r.status_code)
        if "/Authorization" not in url:  # PG&E's own Authorization overflows its schema
            schema = pge_schemas["customer" if "RetailCustomer" in url else "usage"]
            assert schema_errors(schema, r.content) == [], url
        for href in re.findall(r'href="([^"]+)"', r.text):
            if href.startswith(base) and href not in seen:
                todo.append((href, token))
    kinds = set(per_kind)
    for expected in ("/UsagePoint/{id}/MeterReading/{id}/IntervalBlock/{id}",
                     "/UsagePoint/{id}/UsageSummary/{id}", "/ReadingType/{id}",
                     "/LocalTimeParameters/{id}", "/ProgramIdMapping/{id}",
                     "/UsagePoint/{id}/ElectricPowerQualitySummary/{id}",
                     "/Customer/{id}", "/CustomerAccount/{id}", "/CustomerAgreement/{id}",
                     "/ServiceLocation/{id}", "/Meter/{id}", "/Authorization/{id}"):  # fmt: skip
        assert any(k.endswith(expected) for k in kinds), (expected, sorted(kinds))
