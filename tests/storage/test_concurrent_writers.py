"""Writers in separate OS processes on one SQLite file (SECURITY R63): a ``greenbutton sync``
CLI process against the real mTLS simulator, a worker ingesting files in a loop and a
process saving tokens in a loop all finish with exit status 0, no "database is locked"
reaches any output, and the file holds exactly what the same writes give one at a time.

Writers take the write lock up front (``BEGIN IMMEDIATE``) and wait up to the lock
timeout for it, so contention costs time, never an error. The in-thread variants (one
resource ingested by several threads, a locked token row) are in test_storage_faults.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")

from cryptography.fernet import Fernet

from greenbutton.storage import DatabaseTokenStore, Store, export_readings, ingest_file, sync
from tests.conftest import FIXTURES
from tests.simulator_harness import SimulatorHandle, start_simulator

#: "Now" for this module, read once: SINCE counts back from it and the simulator's data
#: clock is pinned to it, so the serial reference sync and the concurrent one see the same
#: history even when the test straddles Pacific midnight (when the simulator's day rolls).
NOW = datetime.now(UTC)
SINCE = (NOW - timedelta(days=120)).replace(hour=0, minute=0, second=0, microsecond=0)
FILES = [
    FIXTURES / "gba_demo_15min_15days.xml",
    FIXTURES / "gba_demo_hourly_32days.xml",
    FIXTURES / "gba_demo_daily_45days.xml",
]
MIN_ROUNDS = 3  # each looping writer does at least this many rounds

# Loop until the stop file exists (and at least MIN_ROUNDS whole rounds), so every worker
# is still writing while sync runs; print the number of rounds.
_INGEST_WORKER = """
import sys, time
from pathlib import Path
from greenbutton.storage import Store, ingest_file
url, stop, min_rounds, files = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
deadline = time.monotonic() + 90
rounds = 0
with Store.open(url) as store:
    while rounds < min_rounds or not stop.exists():
        for name in files:
            ingest_file(store, Path(name))
        rounds += 1
        if time.monotonic() > deadline:
            sys.exit("ingest worker: no stop file within 90 s")
print(rounds)
"""

_SAVER_WORKER = """
import json, sys, time
from pathlib import Path
from greenbutton._secret import Secret
from greenbutton.oauth import Token
from greenbutton.storage import DatabaseTokenStore, Store
url, stop, min_rounds = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + 90
last = {}
i = 0
with Store.open(url) as store:
    tokens = DatabaseTokenStore(store)
    while i < 30 * min_rounds or not stop.exists():
        key = f"worker-{i % 3}"
        tokens.save(key, Token(kind="access", access_token=Secret(f"a-{i}"),
                               refresh_token=Secret(f"r-{i}"), expires_at=time.time() + 3600))
        loaded = tokens.load(key)
        assert loaded is not None and loaded.access_token.reveal() == f"a-{i}"
        last[key] = f"a-{i}"
        i += 1
        if time.monotonic() > deadline:
            sys.exit("token worker: no stop file within 90 s")
print(json.dumps(last))
"""


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(tmp_path / "sim", auto_approve="alice", customers=2) as handle:
        handle.sim.data.clock = NOW.timestamp  # see NOW
        yield handle


def test_sync_cli_file_ingest_and_token_writers_in_separate_processes(
    gb: SimulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = Fernet.generate_key().decode()
    monkeypatch.setenv("GREENBUTTON_SECRET_KEY", secret)
    monkeypatch.delenv("GREENBUTTON_DATABASE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'shared.db'}"

    # what the same writes give one at a time, in a database of its own
    with Store.open(url, data_dir=tmp_path) as store:
        tokens = DatabaseTokenStore(store)
        key, token = gb.authorize(tokens)
    with Store.open(f"sqlite:///{tmp_path / 'serial.db'}", data_dir=tmp_path) as serial:
        DatabaseTokenStore(serial).save(key, token)
        with gb.sdk_client(DatabaseTokenStore(serial)) as client:
            assert sync(serial, client, since=SINCE).ok
        for path in FILES:
            ingest_file(serial, path)
        expected = sorted(export_readings(serial))

    gb.sim.faults.latency_ms = 30  # sync's windows spread over the workers' rounds
    env = {**os.environ, "GREENBUTTON_SECRET_KEY": secret}
    stop = tmp_path / "stop"
    py = [sys.executable, "-c"]
    workers = {
        "ingest": [*py, _INGEST_WORKER, url, str(stop), str(MIN_ROUNDS), *map(str, FILES)],
        "tokens": [*py, _SAVER_WORKER, url, str(stop), str(MIN_ROUNDS)],
    }
    sync_cmd = [
        sys.executable, "-m", "greenbutton", "sync", "--simulator", str(gb.state_dir),
        "--database", url, "--store", str(tmp_path / "none.json"),
        "--since", SINCE.strftime("%Y-%m-%d"),
    ]  # fmt: skip
    procs = {
        name: subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, cmd in workers.items()
    }
    try:
        time.sleep(0.3)  # let the workers start writing first (not a pass/fail timing)
        procs["sync"] = subprocess.Popen(
            sync_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        out = {"sync": procs["sync"].communicate(timeout=120)}
        stop.touch()
        for name in workers:
            out[name] = procs[name].communicate(timeout=120)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    for name, (stdout, stderr) in out.items():
        assert procs[name].returncode == 0, f"{name}: {stdout}\n{stderr}"
        assert "locked" not in (stdout + stderr).lower(), f"{name}: {stdout}\n{stderr}"
    assert "readings added:" in out["sync"][0]
    assert int(out["ingest"][0]) >= MIN_ROUNDS
    last_tokens = json.loads(out["tokens"][0])

    with Store.open(url, data_dir=tmp_path) as store:
        assert sorted(export_readings(store)) == expected
        tokens = DatabaseTokenStore(store)
        for name, access in last_tokens.items():
            loaded = tokens.load(name)
            assert loaded is not None and loaded.access_token.reveal() == access
        synced = tokens.load(key)
        assert synced is not None and synced.resource_uri == token.resource_uri
        store.check()  # quick_check: the file is intact
