"""The simulator's retail-customer (PII) resources, power-quality summaries and PG&E's
DownloadSampleData (issue 14): every link of the customer feed resolves, ids are the
service agreement's, documents validate against ESPI 4.0 (default style) and PG&E's 2018
customer schema (``--style pge``), and our parser reads them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import xmlschema

import greenbutton
from tests.conftest import XSD_DIR
from tests.simulator.test_simulator_resources import (
    BASE,
    RES,
    SUB_A,
    SUB_B,
    UP_15,
    UP_GAS,
    Env,
)

A = "{http://www.w3.org/2005/Atom}"
CUST = "{http://naesb.org/espi/customer}"
PREFIX = f"{BASE}{RES}/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.notifier.close()


def _schema(folder: str, main: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(
        [str(XSD_DIR / folder / main), str(XSD_DIR / folder / "atom.xsd")], allow="local"
    )


@pytest.fixture(scope="module")
def customer_schemas() -> dict[str, xmlschema.XMLSchema]:
    return {
        "espi": _schema("naesb-espi-4.0", "customer.xsd"),
        "pge": _schema("pge-sharemydata-2018", "retailcustomer.xsd"),
    }


@pytest.fixture(scope="module")
def pge_usage_schema() -> xmlschema.XMLSchema:
    return _schema("pge-sharemydata-2018", "espiDerived.xsd")


def schema_errors(schema: xmlschema.XMLSchema, body: bytes) -> list[str]:
    """Errors of the document and of each entry's content element on its own (Atom's
    content is a wildcard, so a lax validator might skip it)."""
    problems = [e.reason or "" for e in schema.iter_errors(body)]
    root = xmlschema.XMLResource(body).root
    entries = [root] if root.tag == A + "entry" else list(root.iter(A + "entry"))
    for entry in entries:
        content = entry.find(A + "content")
        assert content is not None and len(content) == 1
        # a detached element forgets its prefixes: PG&E's xsi:type values name xsd:
        errors = schema.iter_errors(content[0], namespaces={"xsd": XSD_NS})
        problems += [f"{content[0].tag}: {e.reason}" for e in errors]
    return problems


def _links(entry: xmlschema.XMLResource | object) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for link in entry.findall(A + "link"):  # type: ignore[attr-defined]
        out.setdefault(link.get("rel"), []).append(link.get("href"))
    return out


def _rel(url: str) -> str:
    assert url.startswith(PREFIX), url
    return url.removeprefix(PREFIX)


@pytest.mark.parametrize("style", ["espi", "pge"])
def test_every_customer_link_resolves_and_validates(
    env: Env, style: str, customer_schemas: dict[str, xmlschema.XMLSchema]
) -> None:
    env.sim.config = replace(env.sim.config, style=style)  # type: ignore[arg-type]
    schema = customer_schemas[style]
    feed = env.get(f"Batch/RetailCustomer/{SUB_A}", env.access)
    assert feed.status_code == 200
    assert not schema_errors(schema, feed.content), schema_errors(schema, feed.content)[:5]
    root = xmlschema.XMLResource(feed.content).root
    entries = root.findall(A + "entry")
    kinds = [e.find(A + "content")[0].tag.removeprefix(CUST) for e in entries]
    # alice has four usage points: one agreement, location, meter and end device each
    assert kinds.count("Customer") == kinds.count("CustomerAccount") == 1
    for kind in ("CustomerAgreement", "ServiceLocation", "Meter", "EndDevice"):
        assert kinds.count(kind) == 4, kinds
    checked = 0
    for entry in entries:
        links = _links(entry)
        (self_url,) = links["self"]
        member = env.get(_rel(self_url), env.access)
        assert member.status_code == 200, self_url
        assert not schema_errors(schema, member.content)
        assert xmlschema.XMLResource(member.content).root.find(A + "content")[0].tag == (
            entry.find(A + "content")[0].tag
        )
        for url in links["up"] + links.get("related", []):
            r = env.get(_rel(url), env.access)
            assert r.status_code == 200, url
            assert not schema_errors(schema, r.content), url
            checked += 1
        # the collection the entry is "up" in lists it
        (up,) = links["up"]
        listed = xmlschema.XMLResource(env.get(_rel(up), env.access).content).root
        assert self_url in [_links(e)["self"][0] for e in listed.findall(A + "entry")]
    assert checked > len(entries)
    doc = greenbutton.parse(feed.content)
    assert len(doc.customer_resources) == len(entries)


def test_element_names_follow_the_style(env: Env) -> None:
    def contents(style: str) -> dict[str, dict[str, object]]:
        env.sim.config = replace(env.sim.config, style=style)  # type: ignore[arg-type]
        doc = greenbutton.parse(env.get(f"Batch/RetailCustomer/{SUB_A}", env.access).content)
        return {r.element: dict(r.data) for r in doc.customer_resources}

    espi, pge = contents("espi"), contents("pge")
    assert espi["Customer"]["customerName"] == "Alice Example"
    assert pge["Customer"]["name"] == "Alice Example" and "customerName" not in pge["Customer"]
    assert espi["CustomerAccount"]["accountId"] == pge["CustomerAccount"]["name"]
    assert espi["CustomerAgreement"]["agreementId"] == pge["CustomerAgreement"]["name"]


def test_agreement_ids_are_service_agreements_not_the_subscription(env: Env) -> None:
    doc = greenbutton.parse(env.get(f"Batch/RetailCustomer/{SUB_A}", env.access).content)
    agreements = [r for r in doc.customer_resources if r.element == "CustomerAgreement"]
    ids = {str(r.href).rstrip("/").rsplit("/", 1)[1] for r in agreements}
    assert len(ids) == 4 and SUB_A not in ids
    assert ids == {str(r.data["agreementId"]) for r in agreements}
    accounts = [r for r in doc.customer_resources if r.element == "CustomerAccount"]
    assert SUB_A not in str(accounts[0].href).rsplit("/", 1)[1]
    # the same ids on every request, and under the retail customer id as well
    again = greenbutton.parse(env.get("Batch/RetailCustomer/900100", env.access).content)
    assert {
        str(r.href).rsplit("/", 1)[1] for r in again.customer_resources if r.element == "Meter"
    } == {str(r.href).rsplit("/", 1)[1] for r in doc.customer_resources if r.element == "Meter"}


def test_customer_resources_refuse_other_customers_and_unknown_paths(env: Env) -> None:
    feed = greenbutton.parse(env.get(f"Batch/RetailCustomer/{SUB_A}", env.access).content)
    customer = next(r for r in feed.customer_resources if r.element == "Customer")
    path = str(customer.href)  # the parser keeps hrefs relative to the endpoint
    assert env.get(path, env.access).status_code == 200
    assert env.get(path, env.access_b).status_code == 403
    assert env.get(path, env.client_token).status_code == 403
    assert env.get(path).status_code == 401
    assert env.get(f"RetailCustomer/{SUB_B}/Customer", env.access).status_code == 403
    assert env.get(f"{path}/CustomerAccount/123", env.access).status_code == 404
    assert env.get(f"{path}/Nonsense", env.access).status_code == 404
    assert env.get(f"RetailCustomer/{SUB_A}/Customer", env.access).status_code == 200


def test_power_quality_summaries(env: Env, schema: xmlschema.XMLSchema) -> None:
    up = f"Subscription/{SUB_A}/UsagePoint/{UP_15}/ElectricPowerQualitySummary"
    r = env.get(up, env.access)
    assert r.status_code == 200
    assert not schema_errors(schema, r.content)
    root = xmlschema.XMLResource(r.content).root
    entries = root.findall(A + "entry")
    assert len(entries) >= 12  # one per billing period of the history
    member = env.get(_rel(_links(entries[0])["self"][0]), env.access)
    assert member.status_code == 200 and not schema_errors(schema, member.content)
    doc = greenbutton.parse(r.content)
    kinds = {g.element for g in doc.other_resources}
    assert kinds == {"ElectricPowerQualitySummary"}
    gas = env.get(
        f"Subscription/{SUB_A}/UsagePoint/{UP_GAS}/ElectricPowerQualitySummary", env.access
    )
    assert gas.status_code == 200 and not xmlschema.XMLResource(gas.content).root.findall(
        A + "entry"
    )
    assert env.get(f"{up}/1", env.access).status_code == 404
    assert env.get(up, env.access_b).status_code == 403


def test_download_sample_data(env: Env, schema: xmlschema.XMLSchema) -> None:
    r = env.get("DownloadSampleData", env.client_token)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/atom+xml")
    doc = greenbutton.parse(r.content)
    (point,) = doc.usage_points
    readings = sum(len(b.readings) for mr in point.meter_readings for b in mr.interval_blocks)
    assert readings in (23, 24, 25)  # one local day, hourly
    assert SUB_A not in r.text and SUB_B not in r.text  # no customer's data
    from tests.xsd_support import espi_schema_errors

    assert not espi_schema_errors(schema, r.content)
    assert env.get("DownloadSampleData", env.access).status_code == 403
    assert env.get("Subscription/0/UsagePoint", env.access).status_code == 403
