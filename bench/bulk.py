"""Peak memory of ingesting a many-customer Bulk file: one Document against batches (issue 10.4).

1. **download** (a child process): a simulator with ``--customers N`` (the same server as
   ``greenbutton simulator``, run in a thread of the child; every customer's grant is put
   in its state directly, since N portal logins would only cost time), the SDK's
   ``client.bulk()`` (202), the BatchList notification's ``Batch/Bulk/{id}?correlationID=``
   URI fetched with the client token, and the body written to disk.
2. **ingest**, each in a fresh child process and a fresh SQLite database, from that file:
   ``old`` is what the engine did before: ``parse`` (one Document, every reading as
   columns) and one ``ingest_document``; ``new`` is ``storage.ingest_bulk`` (batches of at
   most ``--batch`` readings). Each child reports its peak RSS (``ru_maxrss``), its RSS
   after imports (the floor both share) and the wall time.
3. The two databases are compared (count and sum of raw values per series).

Prints one line per mode and the ratios, measured in one run. Other sessions share the
machine's two cores, so times move between runs; peak RSS does not depend on them.

    .venv/bin/python bench/bulk.py --customers 2000 --days 30

Measured 2026-12-03 on the shared 2-core machine (SQLite; default batch of 200,000):
4,947,870 readings, a 1,119 MB file; old peak RSS 743 MB in 34.9 s, new 124 MB in 57.8 s
(25 batches): 6.0x less peak memory (12.9x above the 71 MB import floor), 1.66x the time
(the second pass re-parses the file; a 7-day run measured 1.18x). The old figure grows
with the file (about 136 bytes a reading: a year of 15-minute data for 2,000 customers,
~70M readings, would be ~9.5 GB); the new one is bounded by ``--batch``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def download(customers: int, days: int, out: Path, state: Path) -> dict[str, Any]:
    from greenbutton.client import Client
    from greenbutton.oauth import InMemoryTokenStore
    from greenbutton.simulator import SimulatorConfig, run_in_thread
    from greenbutton.simulator._state import DEFAULT_SCOPE, AuthorizationGrant

    config = SimulatorConfig(state_dir=state, customers=customers, history_days=days + 2)
    t0 = time.monotonic()
    with run_in_thread(config, timeout=600) as running:
        sim = running.sim
        with sim.state.lock:
            for n, customer in enumerate(sim.state.customers.values()):
                sim.state.grants[f"bench-{n}"] = AuthorizationGrant(
                    id=f"bench-{n}", customer=customer.username,
                    subscription_id=customer.subscription_id, scope=DEFAULT_SCOPE,
                )  # fmt: skip
        reg = state / "registration.json"
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        with Client.for_simulator(reg, token_store=InMemoryTokenStore()) as client:
            got = client.bulk(start=end - timedelta(days=days + 1), end=end)
            assert got.status_code == 202, got
            assert sim.notifier.wait_idle(600)
            uri = sim.notifier.sent[-1].uris[0]
            body = client.get(uri, raw=True)
    assert isinstance(body, bytes)
    out.write_bytes(body)
    return {"uri": uri, "bytes": len(body), "seconds": time.monotonic() - t0}


def ingest(mode: str, path: Path, database: str, batch: int) -> dict[str, Any]:
    from greenbutton import parse
    from greenbutton.storage import Store, ingest_bulk, ingest_document

    store = Store.open(database, data_dir=path.parent)
    floor = _current_rss_mb()
    t0 = time.monotonic()
    if mode == "old":
        result = ingest_document(store, parse(path), namespace="bench")
        rows, batches = result.rows, 1
    else:
        got = ingest_bulk(store, path, namespace="bench", max_readings=batch)
        rows, batches = got.rows, got.batches
    seconds = time.monotonic() - t0
    store.close()
    return {
        "mode": mode, "rows": rows, "batches": batches, "seconds": seconds,
        "peak_rss_mb": _rss_mb(), "floor_rss_mb": floor,
    }  # fmt: skip


def checksums(database: str) -> list[tuple[Any, ...]]:
    from sqlalchemy import text

    from greenbutton.storage import Store

    store = Store.open(database)
    try:
        with store.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT up.key, mr.key, count(*), coalesce(sum(r.raw_value), 0)"
                    " FROM readings r JOIN meter_readings mr ON mr.id = r.meter_reading_id"
                    " JOIN usage_points up ON up.id = mr.usage_point_id"
                    " GROUP BY up.key, mr.key ORDER BY up.key, mr.key"
                )
            )
            return [tuple(r) for r in rows]
    finally:
        store.close()


def _child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--days", type=int, default=30, help="days of 15-minute data per customer")
    ap.add_argument("--batch", type=int, default=200_000, help="readings per batch (new)")
    ap.add_argument("--keep", type=Path, help="keep the Bulk file and databases here")
    ap.add_argument("--step", choices=["download", "ingest"], help=argparse.SUPPRESS)
    ap.add_argument("--mode", choices=["old", "new"], help=argparse.SUPPRESS)
    ap.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--database", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.step == "download":
        got = download(args.customers, args.days, args.file, args.file.parent / "sim")
        print(json.dumps(got))
        return 0
    if args.step == "ingest":
        print(json.dumps(ingest(args.mode, args.file, args.database, args.batch)))
        return 0

    with tempfile.TemporaryDirectory(prefix="gb-bulk-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        body = work / "bulk.xml"
        common = ["--customers", str(args.customers), "--days", str(args.days)]
        got = _child(*common, "--step", "download", "--file", str(body))
        print(
            f"download: {args.customers} customers x {args.days} days, "
            f"{got['bytes'] / 1e6:,.0f} MB in {got['seconds']:.0f} s"
        )
        runs = {}
        for mode in ("old", "new"):
            db = f"sqlite:///{work / f'{mode}.db'}"
            runs[mode] = run = _child(
                "--step", "ingest", "--mode", mode, "--file", str(body), "--database", db,
                "--batch", str(args.batch),
            )  # fmt: skip
            run["db"] = db
            print(
                f"{mode}: {run['rows']:,} readings in {run['batches']} batch(es), "
                f"peak RSS {run['peak_rss_mb']:,.0f} MB (after imports "
                f"{run['floor_rss_mb']:,.0f} MB), {run['seconds']:.1f} s, "
                f"{run['rows'] / run['seconds']:,.0f} readings/s"
            )
        old, new = runs["old"], runs["new"]
        same = checksums(old["db"]) == checksums(new["db"])
        above = (old["peak_rss_mb"] - old["floor_rss_mb"]) / max(
            1.0, new["peak_rss_mb"] - new["floor_rss_mb"]
        )
        print(
            f"bulk: customers={args.customers} days={args.days} readings={new['rows']:,}; "
            f"peak RSS ratio old/new {old['peak_rss_mb'] / new['peak_rss_mb']:.1f} "
            f"(above the import floor {above:.1f}); time ratio new/old "
            f"{new['seconds'] / old['seconds']:.2f}; databases equal: {same}"
        )
        return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
