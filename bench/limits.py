"""What a reservation costs: the file-locked limiter against the PostgreSQL one (issue 10.2).

A custodian's limit is a few requests per second (PG&E: 1/s), so the shared limiter's own
cost only matters as headroom: how many reservations per second it can book before it is
the bottleneck. The limiters are given a rate far above what they can book (1e6/s) and a
sleep that returns at once, so each reservation is pure bookkeeping: the file limiter's
flock + read + write, the database limiter's read + conditional upsert (and its re-reads
when another thread came first). Measured in one run: the file limiter with one thread,
the database limiter with one thread and with ``--threads`` (half of them as a second
"machine", another holder), as reservations per second and the ratio to the file limiter.

    .venv/bin/python bench/limits.py --postgres-url postgresql+psycopg://u:p@127.0.0.1/db
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from greenbutton.client._ratelimit import Quota, SharedRateLimiter
from greenbutton.storage import DatabaseLimiter, Store

RATE = 1e6  # far above what either can book: the waits stay ~0, no sleeping
QUOTAS = (Quota("hour", 10**9), Quota("day", 10**9, "America/Los_Angeles", 17))


def _rate(limiters: list[object], seconds: float) -> float:
    """Reservations per second, every limiter in its own thread for ``seconds``."""
    counts = [0] * len(limiters)
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        acquire = limiters[i].acquire  # type: ignore[attr-defined]
        while time.monotonic() < stop:
            acquire()
            counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(limiters))]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default=os.environ.get("GREENBUTTON_TEST_POSTGRES_URL"))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    if not args.postgres_url:
        sys.exit("limits: give --postgres-url (or GREENBUTTON_TEST_POSTGRES_URL)")
    admin = create_engine(args.postgres_url)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(args.postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            Store.open(url.render_as_string(hide_password=False), data_dir=Path(tmp)) as store,
        ):
            quiet = {"sleep": lambda _s: None}
            file = SharedRateLimiter(RATE, Path(tmp) / "k.rate", quotas=QUOTAS, **quiet)  # type: ignore[arg-type]
            flat = _rate([file], args.seconds)

            def db(holder: str) -> DatabaseLimiter:
                return DatabaseLimiter(store, "k", RATE, quotas=QUOTAS, holder=holder, **quiet)  # type: ignore[arg-type]

            one = _rate([db("a")], args.seconds)
            many = _rate([db("a" if i % 2 else "b") for i in range(args.threads)], args.seconds)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    print(f"limits: file 1 thread {flat:,.0f} reservations/s")
    print(f"limits: database 1 thread {one:,.0f} reservations/s; ratio {one / flat:.3f}")
    print(
        f"limits: database {args.threads} threads, 2 holders {many:,.0f} reservations/s; "
        f"ratio {many / flat:.3f}"
    )


if __name__ == "__main__":
    main()
