"""PG&E's ProgramIdMappings entry in the simulator's batch feeds (issue 14): it explains
every ``tou`` code the readings carry, validates against all three schema sets, resolves at
its own link, and our parser and ingest take a feed with it (a peer parser crashed on it)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import xmlschema

import greenbutton
from greenbutton.simulator._data import local_midnight
from greenbutton.storage import ingest_document, reading_count
from tests.conftest import XSD_DIR
from tests.simulator.test_simulator_resources import SUB_A, UP_15, UP_SOLAR, Env

A = "{http://www.w3.org/2005/Atom}"
ESPI = "{http://naesb.org/espi}"
SCHEMAS = {
    "espi-4.0": ("naesb-espi-4.0", "espi.xsd"),
    "gba-2019": ("gba-espiDerived-0.7.20190206", "espiDerived.xsd"),
    "pge-2018": ("pge-sharemydata-2018", "espiDerived.xsd"),
}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.notifier.close()


def _mappings(body: bytes) -> tuple[Any, dict[int, str]]:
    root = xmlschema.XMLResource(body).root
    last = root.findall(A + "entry")[-1]
    (element,) = last.find(A + "content")
    assert element.tag == ESPI + "ProgramIdMappings"
    codes = {
        int(m.findtext(ESPI + "code")): m.findtext(ESPI + "name")
        for m in element.findall(ESPI + "programIdMapping")
        if m.findtext(ESPI + "tOUorCPPorConsumptionTier") == "tou"
    }
    return element, codes


@pytest.mark.parametrize(
    ("month", "expected"), [(date(2023, 7, 1), {1, 2}), (date(2024, 1, 1), {4, 6})]
)
def test_batch_feeds_end_with_the_mapping_of_their_tou_codes(
    env: Env, month: date, expected: set[int]
) -> None:
    window = {
        "published-min": local_midnight(month),
        "published-max": local_midnight(month + timedelta(days=14)),
    }
    r = env.get(f"Batch/Subscription/{SUB_A}/UsagePoint/{UP_15}", env.access, **window)
    assert r.status_code == 200
    _, codes = _mappings(r.content)
    doc = greenbutton.parse(r.content)
    tou = set(doc.meter_readings[0].readings.tou)
    assert tou == expected  # PG&E's season codes
    assert tou <= set(codes)
    assert (codes[1], codes[4], codes[6]) == ("SPK", "WPK", "WOP")
    # the whole-subscription batch feed carries it once, too
    feed = env.get(f"Batch/Subscription/{SUB_A}/UsagePoint", env.access, **window)
    assert feed.text.count("<ProgramIdMappings") == 1
    # collection endpoints do not
    assert "ProgramIdMappings" not in env.get(f"Subscription/{SUB_A}/UsagePoint", env.access).text


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_mapping_validates_against_every_schema_set(env: Env, name: str) -> None:
    folder, main = SCHEMAS[name]
    schema = xmlschema.XMLSchema(
        [str(XSD_DIR / folder / main), str(XSD_DIR / folder / "atom.xsd")], allow="local"
    )
    r = env.get(f"Batch/Subscription/{SUB_A}/UsagePoint/{UP_15}", env.access)
    element, _ = _mappings(r.content)
    assert not [e.reason for e in schema.iter_errors(element)]
    member = env.get("ProgramIdMapping/1", env.access)
    assert not [e.reason for e in schema.iter_errors(member.content)]


def test_the_mapping_resolves_at_its_link(env: Env) -> None:
    r = env.get(f"Batch/Subscription/{SUB_A}/UsagePoint/{UP_15}", env.access)
    root = xmlschema.XMLResource(r.content).root
    last = root.findall(A + "entry")[-1]
    links = {link.get("rel"): link.get("href") for link in last.findall(A + "link")}
    prefix = "https://sim.test/GreenButtonConnect/espi/1_1/resource/"
    for rel in ("self", "up"):
        for token in (env.access, env.client_token):  # Bulk feeds carry it: client tokens
            got = env.get(links[rel].removeprefix(prefix), token)
            assert got.status_code == 200 and b"ProgramIdMappings" in got.content
    assert env.get("ProgramIdMapping/2", env.access).status_code == 404
    assert env.get("ProgramIdMapping/1", env.registration).status_code == 403


def test_a_feed_with_the_mapping_parses_and_ingests(env: Env, store: Any) -> None:
    r = env.get(f"Batch/Subscription/{SUB_A}/UsagePoint/{UP_SOLAR}", env.access)
    doc = greenbutton.parse(r.content)
    assert [g.element for g in doc.other_resources] == ["ProgramIdMappings"]
    mappings = doc.other_resources[0].data["programIdMapping"]
    assert len(mappings) == 10
    readings = sum(len(mr.readings) for mr in doc.meter_readings)
    assert readings > 0
    result = ingest_document(store, doc, namespace="sim")
    assert result.rows == readings
    assert result.meter_readings == 2  # delivered and received
    assert reading_count(store) == readings
    ingest_document(store, doc, namespace="sim")  # idempotent (R60)
    assert reading_count(store) == readings
