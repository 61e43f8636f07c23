"""A slow token endpoint cannot stall the other writers of an SQLite database (SECURITY
R52, R53, R56, R63).

The refresh holds SQLite's write lock (``BEGIN IMMEDIATE``, the whole file) while its HTTP
request is in flight, and every other writer waits for it at most the store's lock timeout.
The database token store bounds the refresh request to half of that, so another process's
write always gets through: the refresh either finishes in time or fails with a typed
timeout, rolls back, and leaves the stored token as it was. The control case shows the
hazard is real: a refresh allowed longer than the writer's timeout makes it fail.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")


from greenbutton import Client, RequestTimeout
from greenbutton.oauth import Token
from greenbutton.storage import DatabaseTokenStore, Store
from tests.simulator_harness import SimulatorHandle, start_simulator

WRITER_LOCK_TIMEOUT = 2.0  # seconds another process's writer waits for the write lock
SLOW_MS = 3000  # the token endpoint's answer takes longer than that

# Another process writing to the same file: connects first, writes when told to.
WRITER = r"""
import sys

from sqlalchemy import text

from greenbutton.storage import Store

store = Store.open(sys.argv[1], migrate=False, lock_timeout=float(sys.argv[2]))
with store.connect() as conn:
    conn.execute(text("SELECT 1"))
print("ready", flush=True)
sys.stdin.readline()
try:
    with store.begin() as conn:  # BEGIN IMMEDIATE: waits for the refresh's lock
        conn.execute(text("UPDATE authorizations SET updated_at = updated_at"))
except Exception as exc:
    print("failed", type(exc).__name__, exc, flush=True)
else:
    print("ok", flush=True)
"""

pytestmark = pytest.mark.usefixtures("secret_key")  # every test: a fresh key


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(tmp_path / "sim", auto_approve="alice", customers=1) as handle:
        yield handle


def _write_locked(path: Path) -> bool:
    """Does another connection hold the database's write lock (the refresh, under way)?"""
    con = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return True
    else:
        con.execute("ROLLBACK")
        return False
    finally:
        con.close()


def _refresh_while_another_process_writes(
    gb: SimulatorHandle, path: Path, lock_timeout: float, fault: str, ms: int
) -> tuple[Token | BaseException, str, Token | None]:
    """Refresh through a store with ``lock_timeout`` while the simulator's ``fault`` is
    ``ms``; once the refresh holds the database's write lock (taken before its request is
    sent), another process writes. Returns what the refresh gave, what the writer said, and the
    token stored before."""
    url = f"sqlite:///{path}"
    store = Store.open(url, lock_timeout=lock_timeout)
    tokens = DatabaseTokenStore(store)
    key = gb.authorize(tokens)[0]
    before = tokens.load(key)
    setattr(gb.sim.faults, fault, ms)
    outcome: list[Token | BaseException] = []
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(WRITER_LOCK_TIMEOUT)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as writer:  # fmt: skip
        try:
            assert writer.stdout is not None and writer.stdin is not None
            assert writer.stdout.readline().strip() == "ready"
            registration = gb.state_dir / "registration.json"
            with Client.for_simulator(registration, token_store=tokens) as client:

                def refresh() -> None:
                    try:
                        outcome.append(client.refresh(key))
                    except BaseException as exc:  # handed to the test thread
                        outcome.append(exc)

                thread = threading.Thread(target=refresh)
                thread.start()
                deadline = time.monotonic() + 20
                while not (locked := _write_locked(path)) and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert locked  # the writer below really contends with the refresh
                writer.stdin.write("go\n")
                writer.stdin.flush()
                said = writer.stdout.readline().strip()
                thread.join(30)
        finally:
            setattr(gb.sim.faults, fault, 0)
            if writer.poll() is None:
                writer.kill()
            store.close()
    return outcome[0], said, before


@pytest.mark.parametrize("fault", ["latency_ms", "body_stall_ms"])
def test_a_refresh_slower_than_the_lock_timeout_gives_up_and_the_other_writer_succeeds(
    gb: SimulatorHandle, tmp_path: Path, fault: str
) -> None:
    path = tmp_path / "gb.db"
    # the token endpoint answers late, or its body stalls mid-way
    got, said, before = _refresh_while_another_process_writes(
        gb, path, WRITER_LOCK_TIMEOUT, fault, SLOW_MS
    )
    assert said == "ok"  # the writer got the lock within its timeout
    assert isinstance(got, RequestTimeout), got
    with Store.open(
        f"sqlite:///{path}"
    ) as store:  # rolled back: the stored token set is the old one (R53)
        tokens = DatabaseTokenStore(store)
        (key,) = tokens.keys()
        after = tokens.load(key)
        assert before is not None and after is not None
        assert after.access_token.reveal() == before.access_token.reveal()
        assert after.refresh_token is not None and before.refresh_token is not None
        assert after.refresh_token.reveal() == before.refresh_token.reveal()
        assert tokens.status(key) == "active"


def test_a_refresh_within_its_bound_succeeds_and_the_other_writer_waits_for_it(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    path = tmp_path / "gb.db"
    # well under the bound, half the lock timeout
    got, said, before = _refresh_while_another_process_writes(
        gb, path, WRITER_LOCK_TIMEOUT, "latency_ms", 300
    )
    assert said == "ok"
    assert isinstance(got, Token), got
    assert before is not None and got.access_token.reveal() != before.access_token.reveal()
    with Store.open(f"sqlite:///{path}") as store:
        tokens = DatabaseTokenStore(store)
        (key,) = tokens.keys()
        stored = tokens.load(key)
        assert stored is not None and stored.access_token.reveal() == got.access_token.reveal()


def test_control_a_refresh_allowed_longer_than_the_writers_timeout_makes_it_fail(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    # the refreshing store's timeout is 5x the writer's: its bound no longer protects it
    path = tmp_path / "gb.db"
    got, said, _ = _refresh_while_another_process_writes(
        gb, path, 5 * WRITER_LOCK_TIMEOUT, "latency_ms", SLOW_MS
    )
    assert isinstance(got, Token), got  # refreshed, in 3 s: within its own 5 s bound
    assert said.startswith("failed") and "database is locked" in said
