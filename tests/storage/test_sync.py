"""The ingest loop against the real mTLS simulator, on SQLite and PostgreSQL: ``sync`` is
idempotent, ``export --db`` gives the fetched readings, holes are re-requested exactly,
and a run killed with SIGKILL is finished by the next one (SECURITY R46, R60-R64, b9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")

from click.testing import CliRunner, Result
from sqlalchemy import select, text

from greenbutton import Client
from greenbutton.cli import _sdk, cli
from greenbutton.oauth import TokenStore
from greenbutton.storage import (
    DatabaseTokenStore,
    StorageError,
    Store,
    accounts,
    export_readings,
    sync,
)
from greenbutton.storage._schema import ingest_jobs
from tests.simulator_harness import SimulatorHandle, start_simulator
from tests.storage.test_storage import _snapshot

#: "Now" for this module, read once: SINCE counts back from it and the simulator's data
#: clock is pinned to it, so its synthetic history (ending the Pacific day before) cannot
#: grow by a day between two syncs of one test when a run straddles Pacific midnight.
NOW = datetime.now(UTC)
SINCE = (NOW - timedelta(days=100)).replace(hour=0, minute=0, second=0, microsecond=0)
SINCE_TEXT = SINCE.strftime("%Y-%m-%d")

pytestmark = pytest.mark.usefixtures("secret_key")  # every test: a fresh key


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(tmp_path / "sim", auto_approve="alice", customers=2) as handle:
        handle.sim.data.clock = NOW.timestamp  # see NOW
        yield handle


def client_for(gb: SimulatorHandle, tokens: TokenStore) -> Client:
    return gb.sdk_client(tokens)


def authorize(gb: SimulatorHandle, tokens: TokenStore) -> str:
    return gb.authorize(tokens)[0]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def export_csv(*args: str) -> list[str]:
    result = run("export", *args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    return [lines[0], *sorted(set(lines[1:]))]  # overlapping windows repeat a day


def test_sync_cli_is_idempotent_and_export_db_equals_the_fetched_readings(
    gb: SimulatorHandle,
    store: Store,
    store_url: str,
    tmp_path: Path,
) -> None:
    # authorize as the CLI does (the JSON token store); sync imports it into the database
    json_store = tmp_path / "tokens.json"
    key = authorize(gb, _sdk.TokenFile(json_store, gb.registration["resource_url"].rstrip("/")))
    common = ("--simulator", str(gb.state_dir), "--database", store_url, "--store", str(json_store))

    first = run("sync", *common, "--since", SINCE_TEXT)
    assert first.exit_code == 0, first.output
    assert "imported 1 authorization(s)" in first.stderr
    added = {
        line.split()[-1]: int(line.split()[2].replace(",", ""))
        for line in first.stdout.splitlines()
        if line.startswith("readings added:")
    }
    assert len(added) == 2 and all(n > 0 for n in added.values())
    assert "gaps re-requested: 0" in first.stdout
    snapshot = _snapshot(store)
    assert len(snapshot) == sum(added.values())
    assert DatabaseTokenStore(store).keys() == [key]

    second = run("sync", *common, "--since", SINCE_TEXT)
    assert second.exit_code == 0, second.output
    assert "imported" not in second.stderr  # the database copy is as new
    assert all(
        line.startswith("readings added: 0 ")
        for line in second.stdout.splitlines()
        if line.startswith("readings added:")
    )
    assert _snapshot(store) == snapshot

    # the same window fetched directly, exported from files: the same table
    files = []
    with client_for(gb, DatabaseTokenStore(store)) as client:
        listing = client.usage_points(key)
        end = datetime.now(UTC)
        for n, up in enumerate(listing.usage_points):  # type: ignore[union-attr]
            bodies = client.usage_point(key, up.id, start=SINCE, end=end, raw=True)
            assert isinstance(bodies, list)
            for m, body in enumerate(bodies):
                path = tmp_path / f"fetched-{n}-{m}.xml"
                path.write_bytes(body)
                files.append(str(path))
    from_db = export_csv("--db", store_url)
    assert from_db == export_csv(*files)
    assert len(from_db) - 1 == len(snapshot)
    out = tmp_path / "stored.jsonl"
    assert run("export", "--db", store_url, "-o", str(out)).exit_code == 0
    assert len(out.read_text().splitlines()) == len(snapshot)
    assert run("export").exit_code == 2  # neither FILES nor --db

    # accounts: the authorization, both usage points, their counts and coverage
    result = run("accounts", "--database", store_url, "--json")
    assert result.exit_code == 0, result.output
    (account,) = json.loads(result.stdout)
    assert account["key"] == key and account["status"] == "active"
    points = {p["key"]: p for p in account["usage_points"]}
    assert {k: sum(s["readings"] for s in p["series"]) for k, p in points.items()} == added
    for p in points.values():
        for s in p["series"]:
            assert s["first"] <= SINCE.timestamp() + 86400 and s["last"] > s["first"]
    text_out = run("accounts", "--database", store_url)
    assert text_out.exit_code == 0
    assert f"authorization {key}" in text_out.stdout
    for point, n in added.items():
        assert f"usage point {point}" in text_out.stdout and f"{n:,} readings" in text_out.stdout


def test_a_deleted_day_is_refetched_exactly(gb: SimulatorHandle, store: Store) -> None:
    tokens = DatabaseTokenStore(store)
    authorize(gb, tokens)
    with client_for(gb, tokens) as client:
        report = sync(store, client, since=SINCE)
        assert report.ok and report.gaps == 0
        full = _snapshot(store)

        day = int((SINCE + timedelta(days=40)).timestamp())
        with store.begin() as conn:
            deleted = conn.execute(
                text(
                    "SELECT up.key, min(r.start), max(r.start + r.duration) FROM readings r"
                    " JOIN usage_points up ON up.id = r.usage_point_id"
                    " WHERE r.start >= :lo AND r.start < :hi GROUP BY up.key"
                ),
                {"lo": day, "hi": day + 86400},
            ).all()
            conn.execute(
                text("DELETE FROM readings WHERE start >= :lo AND start < :hi"),
                {"lo": day, "hi": day + 86400},
            )
        assert len(deleted) == 2
        with store.connect() as conn:
            last_job = conn.execute(
                select(ingest_jobs.c.id).order_by(ingest_jobs.c.id.desc())
            ).scalar()

        report = sync(store, client, since=SINCE)
        assert report.ok and report.gaps == 2
        assert _snapshot(store) == full
        with store.connect() as conn:
            uris = conn.execute(
                select(ingest_jobs.c.resource_uri).where(ingest_jobs.c.id > last_job)
            ).scalars()
            windows = set()
            for uri in uris:
                q = parse_qs(urlsplit(uri).query)
                lo, hi = (
                    int(
                        datetime.strptime(q[k][0], "%Y-%m-%dT%H:%M:%SZ")
                        .replace(tzinfo=UTC)
                        .timestamp()
                    )
                    for k in ("published-min", "published-max")
                )
                windows.add((urlsplit(uri).path.rsplit("/", 1)[1], lo, hi))
        holes = {(k.rsplit("/", 1)[1], lo, hi) for k, lo, hi in deleted}
        assert holes <= windows  # each hole re-requested with exactly its bounds
        assert len(windows - holes) == 2  # besides them only the catch-up polls

        # a hole the custodian cannot fill is asked for once, not on every run
        assert sync(store, client, since=SINCE).gaps == 0


def test_sync_killed_mid_ingest_is_finished_by_the_next_run(
    gb: SimulatorHandle,
    store: Store,
    store_url: str,
    tmp_path: Path,
    secret_key: str,
) -> None:
    tokens = DatabaseTokenStore(store)
    key = authorize(gb, tokens)
    since = SINCE - timedelta(days=80)  # 6 windows of 30 days x 2 usage points

    # a clean run into its own database, with a copy of the same token
    clean = Store.open(f"sqlite:///{tmp_path / 'clean.db'}", data_dir=tmp_path)
    clean_tokens = DatabaseTokenStore(clean)
    token = tokens.load(key)
    assert token is not None
    clean_tokens.save(key, token)
    with client_for(gb, clean_tokens) as client:
        assert sync(clean, client, since=since).ok
    expected = sorted(export_readings(clean))
    clean.close()

    gb.sim.faults.latency_ms = 250  # each job waits, so the kill lands mid-run
    env = {**os.environ, "GREENBUTTON_SECRET_KEY": secret_key}
    log = (tmp_path / "sync.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "greenbutton", "sync", "--simulator", str(gb.state_dir),
            "--database", store_url, "--store", str(tmp_path / "none.json"),
            "--since", since.strftime("%Y-%m-%d"),
        ],
        env=env, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with store.connect() as conn:
                done = conn.execute(
                    text("SELECT count(*) FROM ingest_jobs WHERE state = 'done'")
                ).scalar()
            if done and done >= 3:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
        log.close()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "sync.log").read_text()
    with store.connect() as conn:
        states: dict[str, int] = dict(
            conn.execute(text("SELECT state, count(*) FROM ingest_jobs GROUP BY state")).all()
        )
    assert states.get("done", 0) >= 3 and sum(states.values()) > states["done"]
    assert sorted(export_readings(store)) != expected  # the run really was cut short

    gb.sim.faults.latency_ms = 0
    with client_for(gb, tokens) as client:
        report = sync(store, client, since=since)
    assert report.ok and report.resumed >= 1
    with store.connect() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM ingest_jobs WHERE state <> 'done'")).scalar()
            == 0
        )
    assert sorted(export_readings(store)) == expected


def test_accounts_of_an_empty_database_and_sync_without_authorizations(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = run("accounts", "--database", url)
    assert result.exit_code == 0 and "nothing stored yet" in result.stdout
    assert json.loads(run("accounts", "--database", url, "--json").stdout) == []
    result = run(
        "sync", "--simulator", str(gb.state_dir), "--database", url,
        "--store", str(tmp_path / "none.json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "jobs run: 0" in result.stdout


def test_accounts_lists_file_ingests(tmp_path: Path) -> None:
    from greenbutton.storage import ingest_file
    from tests.conftest import FIXTURES

    with Store.open(f"sqlite:///{tmp_path / 'f.db'}", data_dir=tmp_path) as s:
        ingest_file(s, FIXTURES / "gba_demo_15min_15days.xml")
        (files,) = accounts(s)
        stored = len(list(export_readings(s)))
    assert files.key is None and files.usage_points
    assert sum(p.readings for p in files.usage_points) == stored > 0


def _job_states(store: Store) -> dict[str, int]:
    with store.connect() as conn:
        rows = conn.execute(text("SELECT state, count(*) FROM ingest_jobs GROUP BY state")).all()
    return {str(s): int(n) for s, n in rows}


def _delete_day(store: Store, day: datetime) -> None:
    lo = int(day.timestamp())
    with store.begin() as conn:
        gone = conn.execute(
            text("DELETE FROM readings WHERE start >= :lo AND start < :hi"),
            {"lo": lo, "hi": lo + 86400},
        ).rowcount
    assert gone > 0


def test_a_job_out_of_attempts_is_abandoned_reported_once_and_its_data_recovered(
    gb: SimulatorHandle, store: Store, store_url: str, tmp_path: Path
) -> None:
    tokens = DatabaseTokenStore(store)
    key = authorize(gb, tokens)
    gb.sim.faults.retry_after = 0  # the 503s say "retry at once": the test never waits
    common = (
        "--simulator", str(gb.state_dir), "--database", store_url,
        "--store", str(tmp_path / "none.json"),
    )  # fmt: skip
    with client_for(gb, tokens) as client:
        assert sync(store, client, since=SINCE).ok
        full = _snapshot(store)
        _delete_day(store, SINCE + timedelta(days=40))  # a hole in both usage points

        # run A: every request after planning answers 503, so every job uses its attempts
        def outage(done: int, total: int, _what: str) -> None:
            if total and not done and not gb.sim.faults.status_burst:
                gb.sim.faults.status_burst = 10**6

        slept: list[float] = []
        report = sync(store, client, since=SINCE, progress=outage, sleep=slept.append)
    gb.sim.faults.status_burst = 0
    assert not report.ok and not report.unfinished and not report.skipped
    n = len(report.abandoned)
    assert n == 4  # per usage point: the catch-up poll and the hole
    assert {j.authorization for j in report.abandoned} == {key}
    assert all(j.attempts == 5 and "ServerError" in (j.error or "") for j in report.abandoned)
    assert all("503" in (j.error or "") for j in report.abandoned)
    assert slept == [0, 0, 0, 0]  # four retry rounds, waiting what Retry-After said
    assert _job_states(store).get("abandoned") == n
    assert set(_job_states(store)) == {"done", "abandoned"}  # nothing left to poison a run
    assert _snapshot(store) != full

    # run B: nothing new fails -> exit 0; the catch-up polls again, the given-up holes
    # wait for retry_abandoned_after (a day) instead of failing every run meanwhile
    b = run("sync", *common)
    assert b.exit_code == 0, b.output
    assert "gaps re-requested: 0" in b.stdout and "abandoned" not in b.output
    assert _snapshot(store) != full

    # accounts lists the abandoned jobs with their last error (JSON and text)
    (account,) = json.loads(run("accounts", "--database", store_url, "--json").stdout)
    assert account["key"] == key and len(account["abandoned"]) == n
    assert all(j["attempts"] == 5 and "503" in j["error"] for j in account["abandoned"])
    listing = run("accounts", "--database", store_url)
    assert listing.exit_code == 0
    assert f"{n} abandoned" in listing.stdout
    assert listing.stdout.count("last error: ServerError") == n
    assert "sync --retry-failed" in listing.stdout

    # run B2: the wall clock was set back since they were given up (their last update lies
    # in the future), so the holes are due at once: re-requested with the same jobs
    with store.begin() as conn:
        conn.execute(text("UPDATE ingest_jobs SET updated_at = updated_at + 3600"))
    b2 = run("sync", *common)
    assert b2.exit_code == 0, b2.output
    assert "gaps re-requested: 2" in b2.stdout
    assert "abandoned windows asked for again: 2" in b2.stdout
    assert _snapshot(store) == full
    n -= 2  # the catch-up windows stay listed: later polls fetched their data
    (account,) = json.loads(run("accounts", "--database", store_url, "--json").stdout)
    assert len(account["abandoned"]) == n

    # run C: --retry-failed during an outage that hits exactly the re-queued jobs' requests
    # (5 attempts x 4 requests each): the run that gives up says so and exits 1
    gb.sim.faults.status_burst = n * 5 * 4
    c = run("sync", *common, "--retry-failed")
    assert c.exit_code == 1, c.output
    assert gb.sim.faults.status_burst == 0
    assert f"abandoned jobs re-queued: {n}" in c.stdout
    assert f"{n} job(s) abandoned after 5 failed attempts" in c.stderr
    assert "--retry-failed" in c.stderr and c.stderr.count("  abandoned ") == n
    assert "Traceback" not in c.output

    # run D: the same abandoned jobs do not fail later runs
    d = run("sync", *common)
    assert d.exit_code == 0, d.output

    # run E: the custodian is back; --retry-failed completes them
    e = run("sync", *common, "--retry-failed")
    assert e.exit_code == 0, e.output
    assert f"abandoned jobs re-queued: {n}" in e.stdout
    assert set(_job_states(store)) == {"done"}
    (account,) = json.loads(run("accounts", "--database", store_url, "--json").stdout)
    assert account["abandoned"] == []
    assert _snapshot(store) == full


def test_a_job_left_out_of_attempts_by_an_older_version_is_abandoned_not_fatal_forever(
    gb: SimulatorHandle, store: Store
) -> None:
    # the reported bug: a job at MAX_ATTEMPTS made every later sync exit 1
    from greenbutton.storage import create_job

    tokens = DatabaseTokenStore(store)
    authorize(gb, tokens)
    with client_for(gb, tokens) as client:
        assert sync(store, client, since=SINCE).ok
        with store.connect() as conn:
            auth_id = conn.execute(text("SELECT id FROM authorizations")).scalar_one()
        job = create_job(store, "https://stale.example/window", authorization_id=auth_id)
        with store.begin() as conn:
            conn.execute(
                text("UPDATE ingest_jobs SET state = 'failed', attempts = 5, error = 'boom'"
                     " WHERE id = :id"),
                {"id": job},
            )  # fmt: skip
        first = sync(store, client)
        assert not first.ok and first.jobs_run == 2  # the catch-up polls; the stale job not
        assert [(j.uri, j.attempts, j.error) for j in first.abandoned] == [
            ("https://stale.example/window", 5, "boom")
        ]
        assert sync(store, client).ok


class _JumpingClock:
    """The ``time`` module as the storage code sees it, with a wall clock set wrong."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


@pytest.mark.parametrize("jump", [-3600.0, 3600.0], ids=["back", "forward"])
def test_wall_clock_jumping_during_a_sync_changes_nothing(
    gb: SimulatorHandle,
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    jump: float,
) -> None:
    from greenbutton.storage import _ingest, _jobs, _sync, _tokens

    tokens = DatabaseTokenStore(store)
    key = authorize(gb, tokens)
    since = SINCE - timedelta(days=40)  # 5 windows x 2 usage points
    clean = Store.open(f"sqlite:///{tmp_path / 'clean.db'}", data_dir=tmp_path)
    token = tokens.load(key)
    assert token is not None
    DatabaseTokenStore(clean).save(key, token)
    with client_for(gb, DatabaseTokenStore(clean)) as client:
        assert sync(clean, client, since=since).ok
    expected = sorted(export_readings(clean))
    clean.close()

    clock = _JumpingClock()
    for module in (_sync, _jobs, _ingest, _tokens):
        monkeypatch.setattr(module, "time", clock)

    def jump_after_planning(done: int, total: int, _what: str) -> None:
        if total and not done and not clock.offset:
            clock.offset = jump
            gb.sim.faults.status_burst = 4  # the first job's first attempt: 4 x 503

    http_slept: list[float] = []
    slept: list[float] = []
    registration = gb.state_dir / "registration.json"
    with Client.for_simulator(registration, token_store=tokens, sleep=http_slept.append) as client:
        report = sync(store, client, since=since, progress=jump_after_planning, sleep=slept.append)
        assert report.ok and report.jobs_failed == 1, report
        assert clock.offset == jump
        assert http_slept == [1, 1, 1] and slept == [1]  # Retry-After: 1, not a clock difference
        assert sorted(export_readings(store)) == expected

        # the next run with the clock still wrong: nothing skipped, nothing refetched wrongly
        again = sync(store, client)
        assert again.ok and not again.abandoned and again.gaps == 0
    assert sorted(export_readings(store)) == expected
    assert set(_job_states(store)) == {"done"}


def test_sync_on_a_database_it_cannot_use_is_one_error_line_saying_what_to_do(
    gb: SimulatorHandle, tmp_path: Path
) -> None:
    path = tmp_path / "gb.db"
    with Store.open(f"sqlite:///{path}", data_dir=tmp_path) as s:
        authorize(gb, DatabaseTokenStore(s))
    sim = ("--simulator", str(gb.state_dir), "--store", str(tmp_path / "none.json"))

    # mode=ro: read-only even for root; opening works (at head), the first write fails
    result = run("sync", *sim, "--database", f"sqlite:///file:{path}?mode=ro&uri=true")
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: the database failed (") and "readonly" in line
    assert "make the database file and its folder writable" in line
    with Store.open(f"sqlite:///{path}", data_dir=tmp_path) as s:
        assert _job_states(s) == {}  # nothing half-done

    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"this is not an SQLite file " * 200)
    result = run("sync", *sim, "--database", f"sqlite:///{damaged}")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    (line,) = result.stderr.splitlines()
    assert "not a database" in line and "restore it from a backup" in line
    result = run("accounts", "--database", f"sqlite:///{damaged}")
    assert result.exit_code == 1 and "restore it from a backup" in result.stderr

    with pytest.raises(StorageError):  # --debug: the real exception, for a bug report
        CliRunner().invoke(
            cli, ["--debug", "sync", *sim, "--database", f"sqlite:///{damaged}"],
            catch_exceptions=False,
        )  # fmt: skip


def test_an_open_circuit_pauses_the_run_without_spending_attempts(
    gb: SimulatorHandle, store: Store
) -> None:
    """R59 in the sync loop: once the client's breaker opens, the remaining jobs are not
    attempted (nothing more reaches the failing custodian), the job whose request was
    refused keeps its attempt, nothing is abandoned, and the next run finishes the work."""
    from greenbutton import CircuitBreaker

    tokens = DatabaseTokenStore(store)
    authorize(gb, tokens)
    gb.sim.faults.retry_after = 0
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, min_span_s=0, clock=lambda: now[0])
    client = Client.for_simulator(
        gb.state_dir / "registration.json", token_store=tokens, circuit_breaker=breaker
    )
    with client:

        def outage(done: int, total: int, _what: str) -> None:
            if total and not done and not gb.sim.faults.status_burst:
                gb.sim.faults.status_burst = 10**6  # every request after planning: 503

        report = sync(store, client, since=SINCE, progress=outage, sleep=lambda _s: None)
        gb.sim.faults.status_burst = 0
        assert not report.ok and report.unfinished and not report.abandoned
        assert any(e.startswith("CircuitOpenError") for e in report.errors)
        states = _job_states(store)
        assert "abandoned" not in states and "done" not in states
        with store.connect() as conn:
            attempts = sorted(r[0] for r in conn.execute(select(ingest_jobs.c.attempts)))
        # two failed attempts opened the circuit; the refused third was taken back
        assert sum(attempts) == 2 and max(attempts) <= 2

        now[0] += 3600  # the cool-down is over: one probe, then the rest
        again = sync(store, client, since=SINCE, sleep=lambda _s: None)
    assert again.ok, again.errors
    assert set(_job_states(store)) == {"done"}


def test_a_used_up_quota_pauses_the_run_like_an_open_circuit(
    gb: SimulatorHandle, store: Store, tmp_path: Path
) -> None:
    """R58: when the hourly quota is used up mid-run, the refused job keeps its attempt and
    stays pending, the rest wait unattempted, nothing fails or is abandoned, and the run
    says so (QuotaExhaustedError) and is not ok; with quota again, the next run finishes."""
    import dataclasses

    from greenbutton import UtilityProfile
    from greenbutton.client._config import credentials_from_registration

    tokens = DatabaseTokenStore(store)
    authorize(gb, tokens)
    registration = gb.state_dir / "registration.json"
    creds = credentials_from_registration(registration)
    tight = dataclasses.replace(UtilityProfile.simulator(registration), quota_per_hour=3)
    before = len(gb.sim.state.arrivals)
    with Client(tight, creds, token_store=tokens, rate_limit_dir=tmp_path / "rate") as client:
        report = sync(store, client, since=SINCE, sleep=lambda _s: None)
    assert len(gb.sim.state.arrivals) - before == 3  # the quota, and not one request more
    assert not report.ok and not report.abandoned and report.unfinished
    assert any(e.startswith("QuotaExhaustedError") for e in report.errors)
    states = _job_states(store)
    assert "failed" not in states and "abandoned" not in states
    with store.connect() as conn:
        rows = conn.execute(select(ingest_jobs.c.state, ingest_jobs.c.attempts)).all()
    assert all(attempts == 0 for state, attempts in rows if state != "done")

    roomy = dataclasses.replace(tight, quota_per_hour=None)
    with Client(roomy, creds, token_store=tokens, rate_limit_dir=tmp_path / "rate") as client:
        again = sync(store, client, since=SINCE, sleep=lambda _s: None)
    assert again.ok, again.errors
    assert set(_job_states(store)) == {"done"}
