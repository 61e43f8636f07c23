"""ApplicationInformation (issue 14): valid against all three schema sets (ESPI 4.0, GBA
2019 and PG&E 2018, which also require both scope-selection screens) and read by our parser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import xmlschema

import greenbutton
from tests.conftest import XSD_DIR
from tests.simulator.test_simulator_resources import BASE, RES, Env

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


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_application_information_validates(env: Env, name: str) -> None:
    folder, main = SCHEMAS[name]
    schema = xmlschema.XMLSchema(
        [str(XSD_DIR / folder / main), str(XSD_DIR / folder / "atom.xsd")], allow="local"
    )
    body = env.get("ApplicationInformation/42", env.registration).content
    root = xmlschema.XMLResource(body).root
    content = root.find("{http://www.w3.org/2005/Atom}content")
    assert content is not None
    problems = [e.reason for e in schema.iter_errors(body)]
    problems += [e.reason for e in schema.iter_errors(content[0])]
    assert not problems, problems[:5]


def test_application_information_parses_with_both_screens(env: Env) -> None:
    doc = greenbutton.parse(env.get("ApplicationInformation/42", env.registration).content)
    (app,) = doc.application_information
    assert app.client_id == "client-1"
    assert app.third_party_scope_selection_screen_uri == "https://tp.test/"
    screen = urlsplit(str(app.data_custodian_scope_selection_screen_uri))
    assert f"{screen.scheme}://{screen.netloc}{screen.path}" == env.sim.authorize_url
    query = parse_qs(screen.query)
    assert query["client_id"] == ["client-1"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == ["https://tp.test/OAuthCallback"]
    assert app.data_custodian_resource_endpoint == BASE + RES
