"""Cross-process single-flight refresh against the real simulator (SECURITY R52, R53).

Several OS processes share one database (SQLite file and PostgreSQL) and the same expired
access token; each makes one data call. The database token store's row lock makes exactly
one of them refresh; the others find the rotated token under the lock. A process that dies
after the custodian rotated but before the commit leaves an authorization that the next run
reports as needing re-authorization after one refused attempt; from then on every process
reads the store's ``reauth_required`` flag and sends nothing, never a loop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")


from greenbutton import Client
from greenbutton._errors import InvalidGrantError
from greenbutton.models import Document
from greenbutton.simulator._oauth import token_calls
from greenbutton.storage import DatabaseTokenStore, Store
from tests.simulator_harness import SimulatorHandle, start_simulator

PROCESSES = 4
ROOT = Path(__file__).resolve().parents[2]

# One data call by a separate process: waits for the go file so all start together.
# mode "die": the process exits hard when it is about to save the rotated token (R53).
CHILD = r"""
import json, os, sys, time
from pathlib import Path

from greenbutton import Client
from greenbutton._errors import InvalidGrantError
from greenbutton.storage import DatabaseTokenStore, Store

registration, url, key, ready, go, mode = sys.argv[1:7]
store = Store.open(url, migrate=False)
tokens = DatabaseTokenStore(store)
if mode == "die":
    from greenbutton.storage import _tokens

    def die(self, token):
        os._exit(17)

    _tokens._LockedRow.save = die
client = Client.for_simulator(registration, token_store=tokens)
Path(ready).touch()
deadline = time.monotonic() + 30
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.002)
try:
    doc = client.usage_points(key)
    out = {"ok": True, "usage_points": len(doc.usage_points)}
except InvalidGrantError as exc:
    out = {"ok": False, "error": type(exc).__name__}
print(json.dumps(out))
"""


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(tmp_path / "sim", auto_approve="alice") as handle:
        yield handle


@pytest.fixture
def store(keyed_store: Store) -> Store:
    return keyed_store


def _client(gb: SimulatorHandle, tokens: DatabaseTokenStore) -> Client:
    return gb.sdk_client(tokens)


def _refresh_grants(gb: SimulatorHandle) -> list[int]:
    """Status of every refresh_token grant the simulator has answered."""
    return [c.status for c in token_calls(gb.sim) if c.grant_type == "refresh_token"]


def _run_children(
    gb: SimulatorHandle, url: str, key: str, tmp_path: Path, n: int, mode: str = "call"
) -> list[tuple[int, str, str]]:
    go = tmp_path / "go"
    go.unlink(missing_ok=True)
    procs: list[tuple[subprocess.Popen[str], Path]] = []
    for i in range(n):
        ready = tmp_path / f"ready-{mode}-{i}"
        args = [str(gb.state_dir / "registration.json"), url, key, str(ready), str(go), mode]
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, *args],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append((proc, ready))
    try:
        deadline = time.monotonic() + 60
        while not all(r.exists() for _, r in procs):
            assert time.monotonic() < deadline, "the child processes did not start"
            assert all(p.poll() is None for p, _ in procs), [p.stderr for p, _ in procs]
            time.sleep(0.01)
        go.touch()  # all at once: the race is real
        results: list[tuple[int, str, str]] = []
        for proc, _ in procs:
            out, err = proc.communicate(timeout=60)
            results.append((proc.returncode, out, err))
        return results
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_processes_sharing_the_database_refresh_exactly_once(
    gb: SimulatorHandle, store: Store, store_url: str, tmp_path: Path
) -> None:
    tokens = DatabaseTokenStore(store)
    key = gb.authorize_expired(tokens)
    before = tokens.load(key)
    assert before is not None and _refresh_grants(gb) == []

    results = _run_children(gb, store_url, key, tmp_path, PROCESSES)

    for code, out, err in results:
        assert code == 0, err
        answer = json.loads(out)
        assert answer["ok"] and answer["usage_points"] >= 1, (out, err)
    assert _refresh_grants(gb) == [200]  # R52: exactly one refresh across the processes
    after = tokens.load(key)
    assert after is not None and tokens.status(key) == "active"
    assert after.access_token != before.access_token
    assert after.refresh_token != before.refresh_token  # rotated, and the rotation kept

    # and the stored set is the live one: a call from here needs no refresh
    with _client(gb, tokens) as client:
        doc = client.usage_points(key)
        assert isinstance(doc, Document) and doc.usage_points
    assert _refresh_grants(gb) == [200]


def test_process_killed_before_saving_the_rotation_asks_for_reauthorization(
    gb: SimulatorHandle, store: Store, store_url: str, tmp_path: Path
) -> None:
    tokens = DatabaseTokenStore(store)
    key = gb.authorize_expired(tokens)
    before = tokens.load(key)

    [(code, out, err)] = _run_children(gb, store_url, key, tmp_path, 1, mode="die")

    assert code == 17, (out, err)  # died after the custodian rotated, before the commit
    assert _refresh_grants(gb) == [200]
    assert tokens.load(key) == before  # the transaction rolled back: the old set is stored
    assert tokens.status(key) == "active"

    # the next run: the old refresh token is refused; reported, not retried in a loop
    with _client(gb, tokens) as client:
        with pytest.raises(InvalidGrantError):
            client.usage_points(key)
        assert tokens.status(key) == "reauth_required"
        assert len(_refresh_grants(gb)) == 2  # one attempt, refused
        with pytest.raises(InvalidGrantError, match="needs re-authorization"):
            client.usage_points(key)  # the store's flag is read first: no request at all
    assert _refresh_grants(gb) == [200, 400]
    assert tokens.load(key) == before  # kept for the record, flagged, never silently dropped

    # the other processes now agree: re-authorize, without another refused attempt
    results = _run_children(gb, store_url, key, tmp_path, 2)
    assert [json.loads(out) for _, out, _ in results] == [
        {"ok": False, "error": "InvalidGrantError"}
    ] * 2
    assert _refresh_grants(gb) == [200, 400]
