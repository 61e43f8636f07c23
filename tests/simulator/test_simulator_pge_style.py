"""``--style pge`` (DESIGN 3.7, issue 14): PG&E's wire format. Every document the simulator
serves in that style has PG&E's prefixes, redundant declarations and ``xsi:type``, validates
against PG&E's 2018 schemas (the Authorization exactly as PG&E's own does not: millisecond
durations overflow the schema's UInt32, ESPI_NOTES 5), and parses to the same data as the
clean style; and our own SDK (Client, sync, the parser) works unchanged against it over
real TLS."""

from __future__ import annotations

import json
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
import xmlschema

import greenbutton
from greenbutton.storage import DatabaseTokenStore, Store, sync
from tests.conftest import FIXTURES, XSD_DIR
from tests.simulator.test_simulator_customer import schema_errors
from tests.simulator.test_simulator_resources import (
    SUB_A,
    UP_15,
    UP_SOLAR,
    Env,
    _resources,
)
from tests.simulator_harness import notification_receiver, start_simulator
from tests.storage.test_storage import _snapshot

PGE = XSD_DIR / "pge-sharemydata-2018"
A = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def pge_schemas() -> dict[str, xmlschema.XMLSchema]:
    def build(main: str) -> xmlschema.XMLSchema:
        return xmlschema.XMLSchema([str(PGE / main), str(PGE / "atom.xsd")], allow="local")

    return {"usage": build("espiDerived.xsd"), "customer": build("retailcustomer.xsd")}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    e.sim.config = replace(e.sim.config, style="pge")
    yield e
    e.notifier.close()


def _paths(env: Env) -> list[tuple[str, str]]:
    """(path, token kind) of every document the resource server answers 200 with."""
    up = f"Subscription/{SUB_A}/UsagePoint/{UP_15}"
    out = [(path, kind) for path, kind, ok in _resources(env) if ok == 200]
    out += [
        (f"{up}/ElectricPowerQualitySummary", "access"),
        ("ProgramIdMapping/1", "access"),
        ("DownloadSampleData", "client"),
        (f"RetailCustomer/{SUB_A}/Customer", "access"),
    ]
    return out


def _period_overflows(errors: list[xmlschema.XMLSchemaValidationError]) -> bool:
    """Whether every error is a millisecond duration of an Authorization period."""
    period = re.compile(r"(authorizedPeriod|publishedPeriod)/(\{[^}]*\}|\w+:)?duration$")
    return all(period.search(e.path or "") for e in errors)


def test_every_document_is_in_pge_wire_format_and_validates(
    env: Env, pge_schemas: dict[str, xmlschema.XMLSchema]
) -> None:
    for path, kind in _paths(env):
        r = env.get(path, env.tokens[kind])
        assert r.status_code == 200, path
        body = r.content
        assert b"<ns0:" in body or "RetailCustomer" in path, path
        if path != "ReadServiceStatus":
            assert b"<ns1:" in body and b'xsi:type="ns1:' in body, path
            assert b"<feed" not in body and b"<entry" not in body  # no default-namespace Atom
            assert b"urn:uuid:" not in body  # PG&E's ids are bare uuids
        stamps = re.findall(rb">([^<]*)</ns1:(?:published|updated)>", body)
        assert all(re.fullmatch(rb"[\d-]{10}T[\d:]{8}\.\d{3}Z", t) for t in stamps), path
        schema = pge_schemas["customer" if "RetailCustomer" in path else "usage"]
        problems = schema_errors(schema, body) if path != "ReadServiceStatus" else []
        if path.startswith("Authorization"):
            errors = list(schema.iter_errors(body))
            assert errors and _period_overflows(errors), [e.reason for e in errors]
            continue
        assert not problems, (path, problems[:5])
    customer = env.get(f"Batch/RetailCustomer/{SUB_A}", env.access).content
    assert b"<Customer " in customer and b"<ns0:Customer" not in customer  # PG&E since 2018
    assert not schema_errors(pge_schemas["customer"], customer)


def test_pge_authorization_fails_its_schema_exactly_as_pge_does(
    env: Env, pge_schemas: dict[str, xmlschema.XMLSchema]
) -> None:
    """PG&E's own Authorization (a real capture) breaks its own schema in the same place:
    millisecond periods; the simulator is faithful to that, not to the schema."""
    schema = pge_schemas["usage"]
    real = (FIXTURES / "pge_authorization_entry.xml").read_bytes()
    ours = env.get("Authorization/g-a", env.client_token).content
    for body in (real, ours):
        errors = list(schema.iter_errors(body))
        assert errors and _period_overflows(errors)
    (auth,) = greenbutton.parse(ours).authorizations
    grant = env.sim.state.grants["g-a"]
    assert auth.authorized_period is not None
    assert auth.authorized_period.start == int(grant.created_at)  # ms normalised back
    assert auth.authorized_period.duration == 365 * 86400
    assert b"<ns0:start>" + str(int(grant.created_at) * 1000).encode() in ours


def _readings(doc: greenbutton.Document) -> dict[str, list[tuple[int, ...]]]:
    return {
        str(mr.href): [tuple(map(int, row)) for row in zip(
            mr.readings.start, mr.readings.duration, mr.readings.value, mr.readings.tou,
            strict=True,
        )]
        for mr in doc.meter_readings
    }  # fmt: skip


def test_both_styles_parse_to_the_same_data(env: Env) -> None:
    def fetch(style: str, path: str, token: str) -> greenbutton.Document:
        env.sim.config = replace(env.sim.config, style=style)  # type: ignore[arg-type]
        return greenbutton.parse(env.get(path, token).content)

    for up in (UP_15, UP_SOLAR):
        path = f"Batch/Subscription/{SUB_A}/UsagePoint/{up}"
        espi, pge = fetch("espi", path, env.access), fetch("pge", path, env.access)
        assert _readings(espi) == _readings(pge) and _readings(pge)
        assert [u.href for u in espi.usage_points] == [u.href for u in pge.usage_points]
        assert [r.uom for r in espi.reading_types] == [r.uom for r in pge.reading_types]
    espi, pge = (fetch(s, "ApplicationInformation/42", env.registration) for s in ("espi", "pge"))
    (a,), (b,) = espi.application_information, pge.application_information
    # atom ids differ only by PG&E's missing urn:uuid: prefix; client_id_issued_at is in
    # seconds here and milliseconds there, one value once parsed
    assert replace(a, atom_id=None) == replace(b, atom_id=None)
    assert a.client_id_issued_at == 1_420_070_400
    espi, pge = (fetch(s, "Authorization", env.client_token) for s in ("espi", "pge"))
    assert [replace(x, atom_id=None) for x in espi.authorizations] == [
        replace(x, atom_id=None) for x in pge.authorizations
    ]


def test_notifications_are_pge_batch_lists(
    env: Env, pge_schemas: dict[str, xmlschema.XMLSchema]
) -> None:
    r = env.get(f"Batch/Subscription/{SUB_A}", env.access)
    assert r.status_code == 202
    assert env.notifier.wait_idle()
    (post,) = env.posts
    body = post.content
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<ns0:BatchList xmlns:ns0=')
    assert not [e.reason for e in pge_schemas["usage"].iter_errors(body)]
    batch = greenbutton.parse(body).batch_list
    assert batch is not None and len(batch.resources) == 1
    assert "correlationID=" in batch.resources[0]


# --------------------------------------------------------------------------------------------
# our own SDK against --style pge over real TLS

NOW = datetime.now(UTC)
SINCE = (NOW - timedelta(days=45)).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.mark.usefixtures("secret_key")
def test_sdk_client_sync_and_parser_work_unchanged_against_pge_style(
    tmp_path: Path, store: Store, pge_schemas: dict[str, xmlschema.XMLSchema]
) -> None:
    with notification_receiver() as inbox, start_simulator(
        tmp_path / "sim", style="pge", auto_approve="alice", customers=1,
        third_party_url=inbox.base_url,
    ) as gb:  # fmt: skip
        gb.sim.data.clock = NOW.timestamp  # a run across Pacific midnight keeps one history
        tokens = DatabaseTokenStore(store)
        key, token = gb.authorize(tokens)
        assert token.resource_uri and "/Batch/Subscription/" in token.resource_uri
        with gb.sdk_client(tokens) as client:
            listing = client.usage_points(key)
            assert listing.usage_points
            up = listing.usage_points[0]
            bodies = client.usage_point(key, up.id, start=SINCE, end=NOW, raw=True)
            assert isinstance(bodies, list) and bodies
            for body in bodies:
                assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<ns1:feed ')
                assert not schema_errors(pge_schemas["usage"], body)
            fetched_pge = {
                row for body in bodies for rows in _readings(greenbutton.parse(body)).values()
                for row in rows
            }  # fmt: skip
            assert fetched_pge
            customer = client.retail_customer(key)
            assert {r.element for r in customer.customer_resources} >= {
                "Customer", "CustomerAccount", "CustomerAgreement", "ServiceLocation", "Meter"
            }  # fmt: skip
            status = client.service_status()
            assert status.available
            grants = client.authorizations()
            ours = [a for a in grants.authorizations if a.resource_uri == token.resource_uri]
            assert ours and ours[0].authorized_period is not None
            assert abs(ours[0].authorized_period.start - NOW.timestamp()) < 3600  # from ms

            report = sync(store, client, since=SINCE)
            assert report.ok, report
            stored = _snapshot(store)
            assert stored
            # the stored readings are the clean style's readings of the same window
            gb.sim.config = replace(gb.sim.config, style="espi")
            clean = client.usage_point(key, up.id, start=SINCE, end=NOW)
            assert isinstance(clean, greenbutton.Document)
            fetched_espi = {row for rows in _readings(clean).values() for row in rows}
            assert fetched_espi == fetched_pge
            stored_rows = {(int(r[3]), int(r[4]), int(r[5])) for r in stored}
            assert {row[:3] for row in fetched_pge} <= stored_rows


def test_cli_style_pge_serves_pge_wire_format(tmp_path: Path) -> None:
    """``greenbutton simulator --style pge`` as a user runs it (a real process, real TLS):
    the client-credentials token PG&E-style clients get reads a PG&E ServiceStatus."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenbutton", "simulator", "--state-dir", str(tmp_path),
         "--style", "pge"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        path = tmp_path / "registration.json"
        while not path.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        reg = json.loads(path.read_text())
        ctx = ssl.create_default_context(cafile=reg["ca_cert"])
        ctx.load_cert_chain(reg["client_cert"], reg["client_key"])
        with httpx2.Client(verify=ctx, trust_env=False, timeout=10) as http:
            token = http.post(
                reg["token_url"],
                data={"grant_type": "client_credentials"},
                auth=(reg["client_id"], reg["client_secret"]),
            ).json()
            bearer = token.get("client_access_token") or token["access_token"]
            r = http.get(
                reg["resource_url"] + "/ReadServiceStatus",
                headers={"Authorization": f"Bearer {bearer}"},
            )
        assert r.status_code == 200
        assert b'<ns0:ServiceStatus xmlns:ns0="http://naesb.org/espi">' in r.content
        assert greenbutton.parse(r.content).service_status.available  # type: ignore[union-attr]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_the_fast_content_rewrite_equals_the_element_walk(env: Env) -> None:
    """Feeds' content is prefixed by a byte rewrite (speed: an IntervalBlock holds hundreds
    of readings); it must give exactly what the element-by-element serialiser gives."""
    from lxml import etree

    from greenbutton.simulator import _style

    env.sim.config = replace(env.sim.config, style="espi")
    clean = env.get(f"Batch/Subscription/{SUB_A}/UsagePoint/{UP_SOLAR}", env.access).content
    root = etree.fromstring(clean)
    checked = 0
    for content in root.iter("{http://www.w3.org/2005/Atom}content"):
        (element,) = content
        raw = etree.tostring(element)
        fast = _style._fast_content(raw)
        if element.tag.endswith("}ProgramIdMappings"):
            assert fast is None  # xsi:type labels need the walk
            continue
        assert fast == _style._content_xml(element, declare=True)
        checked += 1
    assert checked > 10
