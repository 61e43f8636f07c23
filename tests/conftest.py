"""Shared test configuration: where the real Green Button fixtures live.

The fixtures are read from ``../shared`` beside the checkout (present locally and in CI);
they are never copied into the repository.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from cryptography.fernet import Fernet

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures" / "espi"
XSD_DIR = SHARED / "spec" / "xsd"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"the shared fixtures are missing: expected {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def schema() -> xmlschema.XMLSchema:
    """ESPI 4.0 + Atom, built once; ``allow="local"`` forbids any network access (xmlschema
    bundles the W3C ``xml.xsd`` that ``atom.xsd`` imports by URL)."""
    espi = XSD_DIR / "naesb-espi-4.0"
    return xmlschema.XMLSchema([str(espi / "espi.xsd"), str(espi / "atom.xsd")], allow="local")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL on each back end: a SQLite file, and a fresh schema of the test
    PostgreSQL server (``GREENBUTTON_TEST_POSTGRES_URL``; under CI a missing one fails)."""
    from tests.storage_harness import database_url

    yield from database_url(request.param, tmp_path)


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Any]:
    """A :class:`greenbutton.storage.Store` on each back end, migrated, closed after the
    test (a module may define its own, e.g. one that needs ``secret_key``)."""
    from greenbutton.storage import Store

    s = Store.open(store_url, data_dir=tmp_path)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def keyed_store(store_url: str, tmp_path: Path, secret_key: str) -> Iterator[Any]:
    """:func:`store` with ``GREENBUTTON_SECRET_KEY`` set first: for tests that keep tokens in
    the database (the token store encrypts them with that key)."""
    from greenbutton.storage import Store

    s = Store.open(store_url, data_dir=tmp_path)
    try:
        yield s
    finally:
        s.close()


class LogLines(logging.Handler):
    """Keeps every record, formatted with its traceback, in ``lines``; no filter of its own
    (the log-secrets tests install greenbutton's redaction on it, or check that it is)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh Fernet key in ``GREENBUTTON_SECRET_KEY`` (tokens at rest, R48), and no
    ``GREENBUTTON_DATABASE_URL`` leaking in from the environment."""
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("GREENBUTTON_SECRET_KEY", key)
    monkeypatch.delenv("GREENBUTTON_DATABASE_URL", raising=False)
    return key


def notified_jobs(store: Any) -> list[tuple[str, str]]:
    """(URI, state) of the jobs notifications queued, oldest first: the web app's connect
    also stores its first pull as per-usage-point window jobs (the job engine's), which
    tests of the notification endpoint leave out."""
    from sqlalchemy import select

    from greenbutton.storage._schema import ingest_jobs

    with store.connect() as conn:
        rows = conn.execute(
            select(ingest_jobs.c.resource_uri, ingest_jobs.c.state).order_by(ingest_jobs.c.id)
        )
        return [(str(u), str(s)) for u, s in rows if "/UsagePoint/" not in str(u)]


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio: the loop uvicorn and the web app run on."""
    return "asyncio"


#: Where the web app's tests serve it: the simulator registers its redirect and
#: notification URIs here (``third_party_url``).
WEB_BASE = "http://127.0.0.1:3999"


@pytest.fixture
def gb(tmp_path: Path, secret_key: str) -> Iterator[Any]:
    """A simulator for the web app's tests (a module may define its own ``gb``): URIs
    registered for :data:`WEB_BASE`, ``alice`` approving without pages, a fresh key."""
    from tests.simulator_harness import start_simulator

    with start_simulator(tmp_path / "sim", auto_approve="alice", third_party_url=WEB_BASE) as h:
        yield h


@pytest.fixture(autouse=True)
def _own_user_folders(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own per-user folders (XDG data, cache, config, state): the
    default token file, key file and shared rate-limit state of one test — or of another
    test run on the same machine — never leak into another."""
    home = tmp_path_factory.mktemp("user")
    for name in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(home / name.lower()))
    monkeypatch.delenv("GREENBUTTON_RATE_DIR", raising=False)


#: Instants (UTC) around the days that break date code, shared by the tests that pin a
#: window's end or freeze the clock (tests/test_charts.py, tests/test_dates_that_bite.py):
#: US DST changes, 29 February, the last day of a month, New Year's Eve in UTC and in
#: Pacific time (08:00 UTC on 1 January is still 31 December in California).
BITING = [
    datetime(2026, 3, 8, 10, 30, tzinfo=UTC),  # spring forward: 02:00-03:00 local is skipped
    datetime(2026, 11, 1, 9, 15, tzinfo=UTC),  # fall back: 01:15 local happens twice
    datetime(2028, 2, 29, 18, 0, tzinfo=UTC),
    datetime(2026, 1, 31, 23, 45, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
    datetime(2027, 1, 1, 7, 59, tzinfo=UTC),
    datetime(2026, 12, 3, 11, 34, tzinfo=UTC),  # the day these tests were first pinned
]
