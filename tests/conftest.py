"""Shared test configuration: where the real Green Button fixtures live.

The fixtures are read from ``../shared`` beside the checkout (present locally and in CI);
they are never copied into the repository.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures" / "espi"
XSD_DIR = SHARED / "spec" / "xsd"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"the shared fixtures are missing: expected {FIXTURES}")
    return FIXTURES
