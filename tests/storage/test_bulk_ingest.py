"""``storage.ingest_bulk``: a Bulk file ingested in bounded batches ends as one Document would.

The Bulk body comes from the simulator over real sockets (TLS, the client token, the 202
and the BatchList notification naming ``Batch/Bulk/{id}?correlationID=``), for several
customers who all granted access. Ingested whole (``parse`` + ``ingest_document``) into one
database and in batches into another, on SQLite and PostgreSQL, the two databases hold the
same rows, the same job accounting (state, row count, payload hash), stay the same when the
file is ingested again, and follow a re-keyed MeterReading (R65) the same way. Memory is
checked as a structural property: no batch handed to ``ingest_document`` holds more
readings than the bound.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")

from sqlalchemy import select

import greenbutton.storage._bulk as bulk_module
from greenbutton import ParseError, parse
from greenbutton.models import DEFAULT_COST_SCALE, Document
from greenbutton.oauth import InMemoryTokenStore
from greenbutton.simulator._state import DEFAULT_SCOPE, AuthorizationGrant
from greenbutton.storage import (
    JobRunner,
    Store,
    create_job,
    enqueue,
    ingest_bulk,
    ingest_document,
    start_job,
)
from greenbutton.storage._schema import ingest_jobs, meter_readings, readings, usage_points
from tests.simulator_harness import SimulatorHandle, start_simulator

#: The simulator's data clock (only it is pinned: tokens and sockets use the real one).
SIM_NOW = datetime(2026, 12, 3, 11, 34, tzinfo=UTC).timestamp()
CUSTOMERS = 4


@pytest.fixture(scope="module")
def bulk_body(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    """(the notified Bulk URI, its body) for :data:`CUSTOMERS` customers, all granted."""
    state = tmp_path_factory.mktemp("sim")
    with start_simulator(state, customers=CUSTOMERS, history_days=20) as gb:
        gb.sim.data.clock = lambda: SIM_NOW
        return fetch_bulk(gb)


def fetch_bulk(gb: SimulatorHandle) -> tuple[str, bytes]:
    """Every customer grants access, then the SDK asks for the Bulk file and fetches the
    URI the BatchList notification names."""
    state = gb.sim.state
    with state.lock:
        for n, customer in enumerate(state.customers.values()):
            state.grants[f"bulk-{n}"] = AuthorizationGrant(
                id=f"bulk-{n}", customer=customer.username,
                subscription_id=customer.subscription_id, scope=DEFAULT_SCOPE,
            )  # fmt: skip
    with gb.sdk_client(InMemoryTokenStore()) as client:
        assert client.bulk().status_code == 202
        assert gb.sim.notifier.wait_idle(30)
        uri = gb.sim.notifier.sent[-1].uris[0]
        assert "/Batch/Bulk/" in uri and "correlationID=" in uri
        body = client.get(uri, raw=True)
    assert isinstance(body, bytes)
    return uri, body


@pytest.fixture
def other(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """A second database on the same back end (a second schema, or a second file)."""
    from tests.storage_harness import database_url

    backend = "sqlite" if store_url.startswith("sqlite") else "postgresql"
    (tmp_path / "other").mkdir()
    gen = database_url(backend, tmp_path / "other")
    url = next(gen)
    s = Store.open(url, data_dir=tmp_path / "other")
    try:
        yield s
    finally:
        s.close()
        gen.close()


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row by natural keys (no internal ids, no timestamps)."""
    up, mr, r, j = usage_points, meter_readings, readings, ingest_jobs
    mr_cols = [c for c in mr.c if c.name not in ("id", "usage_point_id")]
    r_cols = [c for c in r.c if c.name not in ("meter_reading_id", "usage_point_id")]
    with store.connect() as conn:
        rows = {
            "usage_points": list(conn.execute(select(*[c for c in up.c if c.name != "id"]))),
            "meter_readings": list(
                conn.execute(select(up.c.key, *mr_cols).join(up, up.c.id == mr.c.usage_point_id))
            ),
            "readings": list(
                conn.execute(
                    select(up.c.key, mr.c.key, *r_cols)
                    .join(mr, mr.c.id == r.c.meter_reading_id)
                    .join(up, up.c.id == mr.c.usage_point_id)
                )
            ),
            "jobs": list(
                conn.execute(
                    select(j.c.resource_uri, j.c.state, j.c.rows, j.c.payload_hash, j.c.error)
                )
            ),
        }
    return {name: sorted((tuple(r) for r in got), key=repr) for name, got in rows.items()}


def whole(store: Store, uri: str, body: bytes) -> None:
    job = create_job(store, uri)
    start_job(store, job)
    ingest_document(
        store, parse(body), job_id=job, namespace="sim",
        payload_hash=hashlib.sha256(body).hexdigest(),
    )  # fmt: skip


def batched(store: Store, uri: str, body: bytes, bound: int) -> bulk_module.BulkResult:
    job = create_job(store, uri)
    start_job(store, job)
    return ingest_bulk(
        store, body, job_id=job, namespace="sim",
        payload_hash=hashlib.sha256(body).hexdigest(), max_readings=bound,
    )  # fmt: skip


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The readings of each Document ``ingest_bulk`` hands to ``ingest_document`` (the
    most it holds at once), recorded by a wrapper around the real function."""
    seen: list[int] = []
    real = bulk_module.ingest_document

    def counting(store: Store, doc: Document, **kw: Any) -> Any:
        seen.append(sum(len(b.readings) for m in doc.meter_readings for b in m.interval_blocks))
        return real(store, doc, **kw)

    monkeypatch.setattr(bulk_module, "ingest_document", counting)
    return seen


def test_batches_store_what_one_document_stores(
    store: Store, other: Store, bulk_body: tuple[str, bytes], held: list[int]
) -> None:
    uri, body = bulk_body
    doc = parse(body)
    assert len(doc.usage_points) >= CUSTOMERS and doc.reading_count > 1000
    largest_block = max(len(b.readings) for m in doc.meter_readings for b in m.interval_blocks)
    bound = 500
    whole(store, uri, body)
    got = batched(other, uri, body, bound)
    expected = dump(store)
    assert dump(other) == expected
    assert expected["jobs"][0][1:3] == ("done", doc.reading_count)
    assert (got.usage_points, got.rows) == (len(doc.usage_points), doc.reading_count)
    # bounded: every batch under the bound (a block is never split), and many of them
    assert got.batches >= doc.reading_count // max(bound, largest_block)
    assert max(held) <= max(bound, largest_block) and got.largest_batch == max(held)
    assert len(held) == got.batches + 1 and held[-1] == 0  # then the job's done marker

    # idempotent: the same file again (a retried job) changes no row
    batched(other, uri, body, 777)
    whole(store, uri, body)
    assert dump(other) == dump(store)


def test_a_rekeyed_bulk_follows_the_series_as_one_document_does(
    store: Store, other: Store, bulk_body: tuple[str, bytes]
) -> None:
    """SECURITY R65: the custodian re-keys every MeterReading id; both paths move the stored
    series to the new key instead of storing a second copy."""
    uri, body = bulk_body
    whole(store, uri, body)
    batched(other, uri, body, 300)
    rekeyed = re.sub(rb"/MeterReading/(\w+)", rb"/MeterReading/9\1", body)
    assert rekeyed != body
    whole(store, uri + "&again", rekeyed)
    batched(other, uri + "&again", rekeyed, 300)
    after = dump(store)
    assert dump(other) == after
    keys = {k for _up, k, *_ in after["meter_readings"]}
    assert keys and all("/MeterReading/9" in k for k in keys)


def test_the_engine_runs_a_bulk_job_in_batches(
    store: Store, other: Store, bulk_body: tuple[str, bytes], held: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The job engine's step for a Bulk URI (notified or planned) never builds one Document."""
    uri, body = bulk_body
    monkeypatch.setattr(
        "greenbutton.storage._jobs.ingest_bulk",
        lambda *a, **kw: bulk_module.ingest_bulk(*a, **{**kw, "max_readings": 300}),
    )
    runner = JobRunner(
        store, resource_url=uri.split("/Batch/")[0], namespace="sim", cost_scale=DEFAULT_COST_SCALE
    )
    job = enqueue(store, uri)
    assert job is not None and runner.claim(job)
    outcome = runner.store_body(job, body)
    assert outcome.done and outcome.rows == parse(body).reading_count
    assert len(held) > 2 and max(held) <= 300 + 96

    whole(other, uri, body)
    assert dump(store) == dump(other)


def test_a_malformed_bulk_stores_nothing(store: Store, bulk_body: tuple[str, bytes]) -> None:
    uri, body = bulk_body
    cut = body.rfind(b"<espi:value>")
    cut = cut if cut > 0 else body.rfind(b"<value>")
    assert cut > 0
    bad = body[:cut] + re.sub(rb">\d+<", b">x<", body[cut:], count=1)
    with pytest.raises(ParseError):
        batched(store, uri, bad, 100)
    empty = dump(store)
    assert not empty["readings"] and not empty["usage_points"]


def test_a_bulk_job_cut_short_is_replayed_to_the_same_database(
    store: Store, other: Store, bulk_body: tuple[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """R62 for a file stored in batches: the database failing part-way leaves the batches
    before it stored and the job open (not done); the next attempt of the job ends equal
    to a clean run."""
    from greenbutton.storage import StorageError

    uri, body = bulk_body
    real = bulk_module.ingest_document
    calls = 0

    def failing(store: Store, doc: Document, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise StorageError("connection lost")
        return real(store, doc, **kw)

    monkeypatch.setattr(bulk_module, "ingest_document", failing)
    monkeypatch.setattr(
        "greenbutton.storage._jobs.ingest_bulk",
        lambda *a, **kw: bulk_module.ingest_bulk(*a, **{**kw, "max_readings": 300}),
    )
    runner = JobRunner(
        store, resource_url=uri.split("/Batch/")[0], namespace="sim", cost_scale=DEFAULT_COST_SCALE
    )
    job = enqueue(store, uri)
    assert job is not None and runner.claim(job)
    with pytest.raises(StorageError):
        runner.store_body(job, body)
    cut = dump(store)
    assert cut["readings"] and cut["jobs"][0][1] == "running"  # open: some rows, not done

    monkeypatch.setattr(bulk_module, "ingest_document", real)
    assert runner.claim(job)
    assert runner.store_body(job, body).done
    whole(other, uri, body)
    assert dump(store) == dump(other)


#: One worker process: ingest one part file into the database (what a worker would run).
WORKER = """
import sys
from greenbutton.storage import Store, ingest_bulk
store = Store.open(sys.argv[1], data_dir=sys.argv[3])
try:
    print(ingest_bulk(store, sys.argv[2], namespace="sim", max_readings=400).rows)
finally:
    store.close()
"""


def test_parts_ingested_by_processes_side_by_side_store_the_whole_bulk(
    store: Store, other: Store, bulk_body: tuple[str, bytes], store_url: str, tmp_path: Path
) -> None:
    """The Bulk file split per usage point, three processes ingest a part each at the same
    time into one database: it ends equal to the whole file ingested by one process."""
    import subprocess
    import sys

    from greenbutton.parse import split_feed

    uri, body = bulk_body
    parts = split_feed(body, tmp_path / "parts", 3)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, store_url, str(p), str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for p in parts
    ]
    rows = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        rows.append(int(out.strip().splitlines()[-1]))
    assert all(rows) and sum(rows) == parse(body).reading_count
    whole(other, uri, body)
    ours, theirs = dump(store), dump(other)
    del ours["jobs"], theirs["jobs"]
    assert ours == theirs


def test_the_engine_downloads_a_bulk_to_disk_not_into_memory(
    store: Store, other: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over real TLS, the engine's Bulk step fetches with ``get_into`` (the download's spool
    copied to a temporary file) and never asks for the body as bytes."""
    with start_simulator(tmp_path / "sim", customers=CUSTOMERS, history_days=20) as gb:
        gb.sim.data.clock = lambda: SIM_NOW
        uri, body = fetch_bulk(gb)
        runner = JobRunner(
            store, resource_url=uri.split("/Batch/")[0], namespace="sim",
            cost_scale=DEFAULT_COST_SCALE,
        )  # fmt: skip
        job = enqueue(store, uri)
        assert job is not None
        with gb.sdk_client(InMemoryTokenStore()) as client:

            def bytes_in_memory(*_args: Any, **_kwargs: Any) -> Any:
                raise AssertionError("a Bulk body was read into memory")

            monkeypatch.setattr(client, "get", bytes_in_memory)
            with tempfile.TemporaryFile() as file:
                written = client.get_into(uri, file)
                file.seek(0)
                again = file.read()  # the same feed (its feed-level timestamps may differ)
            assert written == len(again) and parse(again).reading_count == parse(body).reading_count
            outcome = runner.run(client, job)
    assert outcome is not None and outcome.done, outcome
    assert outcome.rows == parse(body).reading_count
    whole(other, uri, body)
    assert dump(store)["readings"] == dump(other)["readings"]
