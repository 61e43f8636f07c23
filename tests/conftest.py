"""Shared test configuration: where the real Green Button fixtures live.

The fixtures are read from ``../shared`` beside the checkout (present locally and in CI);
they are never copied into the repository.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures" / "espi"
XSD_DIR = SHARED / "spec" / "xsd"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"the shared fixtures are missing: expected {FIXTURES}")
    return FIXTURES


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh Fernet key in ``GREENBUTTON_SECRET_KEY`` (tokens at rest, R48), and no
    ``GREENBUTTON_DATABASE_URL`` leaking in from the environment."""
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("GREENBUTTON_SECRET_KEY", key)
    monkeypatch.delenv("GREENBUTTON_DATABASE_URL", raising=False)
    return key
