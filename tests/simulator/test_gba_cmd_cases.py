"""``docs/gba-cmd-cases.md`` (issue 14): the GBA CMD data-custodian cases and how the simulator
answers them. The table names every case id of ``shared/spec/gba-cmd-cases.txt`` exactly once,
every test it cites exists, and the cases no other module covers are proven here."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from tests.conftest import SHARED

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "gba-cmd-cases.md"
CASES = SHARED / "spec" / "gba-cmd-cases.txt"
STATUSES = {"pass", "PG&E", "RFC 6750", "security", "n/a", "gap"}


def _case_ids() -> list[str]:
    """Case ids in list order; an id listed under two function blocks (FND001) once."""
    ids = re.findall(r"^\s*-\s+([A-Z][A-Z_]*\d{3})", CASES.read_text(), re.MULTILINE)
    return list(dict.fromkeys(ids))


def _conformance() -> dict[str, str]:
    """Case id -> the name of its test in ``test_gba_conformance.py``."""
    source = (Path(__file__).parent / "test_gba_conformance.py").read_text()
    names = re.findall(r"^def (test_([A-Z][A-Z_]*?\d{3})_\w+)\(", source, re.MULTILINE)
    found: dict[str, str] = {}
    for name, case in names:
        assert case not in found, f"two conformance tests for {case}"
        found[case] = name
    return found


def _rows() -> list[list[str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and re.fullmatch(r"[A-Z][A-Z_]*\d{3}", cells[0]):
            rows.append(cells)
    return rows


def test_the_table_lists_every_case_exactly_once() -> None:
    ids = _case_ids()
    assert len(ids) > 50  # the list was read
    listed = Counter(row[0] for row in _rows())
    assert [i for i, n in listed.items() if n > 1] == []
    assert set(listed) == set(ids), (set(ids) - set(listed), set(listed) - set(ids))


def test_every_row_has_a_status_and_every_cited_test_exists() -> None:
    for case, _block, status, why, test in _rows():
        assert status in STATUSES, case
        assert why, case
        assert test == f"`test_gba_conformance.py::{_conformance()[case]}`", case
        cited = re.findall(r"`((?:tests/)?[\w/]*test_\w+\.py)::(test_\w+)`", why + test)
        for path, name in cited:
            source = ROOT / (path if path.startswith("tests/") else f"tests/simulator/{path}")
            assert re.search(rf"^(async )?def {name}\(", source.read_text(), re.MULTILINE), (
                case,
                path,
                name,
            )


def test_every_case_has_exactly_one_conformance_test() -> None:
    assert set(_conformance()) == set(_case_ids())
