"""Validation of written ESPI feeds against the NAESB ESPI 4.0 schemas (``shared/spec/xsd``).

Atom's ``content`` is an ``xs:any`` wildcard: xmlschema processes it strictly, but validators
that treat it laxly would skip ESPI entirely, so each content child is also validated on its
own against the ESPI element declarations. The session fixture ``schema`` is in conftest.
"""

from __future__ import annotations

import xmlschema

ATOM = "{http://www.w3.org/2005/Atom}"
ESPI = "{http://naesb.org/espi}"


def espi_schema_errors(schema: xmlschema.XMLSchema, xml: bytes) -> list[str]:
    """Every schema error of the feed and of each entry's ESPI content element."""
    problems = [f"feed: {e.reason}" for e in schema.iter_errors(xml)]
    root = xmlschema.XMLResource(xml).root
    assert root.tag == ATOM + "feed"
    for n, entry in enumerate(root.iter(ATOM + "entry")):
        content = entry.find(ATOM + "content")
        assert content is not None, f"entry {n} has no content"
        children = list(content)
        assert len(children) == 1 and children[0].tag.startswith(ESPI), (
            f"entry {n}: content must hold exactly one ESPI element, got {children}"
        )
        problems += [
            f"entry {n} {children[0].tag}: {e.reason}" for e in schema.iter_errors(children[0])
        ]
    return problems
