"""Ingest rate against table size (issue 10.3): rows/s flat and with N readings stored.

Input: the 3-year 15-minute PG&E-style file of ``bench/ingest.py`` (105,216 readings, one
series), parsed once. For each back end and each size (0, then ``--stored``), a fresh
database is filled with that many readings of other series over the same three years, so
every month the measured ingest writes already holds its share (on PostgreSQL: every
monthly partition). Then ``--repeat`` new series of two kinds are each ingested with
``greenbutton.storage.ingest_document`` (nothing of the range stored yet: on PostgreSQL the
direct COPY) and ingested again (every row hits its key: the staging table and ``ON
CONFLICT``): series whose meter-reading ids fall among the stored ones (an existing
customer's place in the key order: index inserts land inside the tree) and series whose
ids come after them (a new customer's: PostgreSQL's rightmost-leaf fast path, as in the
flat table). The median of the repeats is reported, with the ratio to flat from the same
run, and rows per CPU second (this process plus its PostgreSQL backend, read from
``/proc``), which other work on the machine disturbs far less than wall time. The months'
partitions are made before timing; how long making them takes (once per month, for every
customer together) is shown apart.

A last row per back end ingests a Bulk-shaped document (2,000 usage points, one day of
96 readings each, the day after one already stored), where the statements per series
(usage point and meter reading upserts, the R65 re-key check, reconciliation) cost more
than the readings themselves.

The stored rows are written with SQL (``generate_series``, a recursive CTE on SQLite), not
through ingest (on PostgreSQL one statement per series, each checked by r0010's statement
trigger), then the table is vacuumed and analysed, so the measured runs see a settled
table, as a production one is.

Goals (issue 10.3): >= 300k rows/s on this 2-core machine on both back ends, and with 50M
rows stored within 20 % of that. Other work on the machine shares the two cores; each
figure is a median and the ratios compare runs made minutes apart in one process.

    .venv/bin/python bench/ingest_scale.py --stored 50000000 [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

from sqlalchemy import text

from greenbutton import parse
from greenbutton.models import (
    Document,
    IntervalBlock,
    MeterReading,
    ReadingColumns,
    ReadingType,
    UsagePoint,
)
from greenbutton.storage import Store, ingest_document
from greenbutton.storage._partitions import ensure_partitions, months_between
from ingest import ensure_input, postgres_db, sqlite_db

GOAL = 300_000
FLATNESS = 0.8  # with 50M stored, at least 80 % of the flat rate
STEP = 900
COMMAND = ".venv/bin/python bench/ingest_scale.py"


@dataclasses.dataclass(slots=True)
class Figures:
    """Rows/s of each repeat: wall clock and CPU (this process plus its database backend)."""

    first: list[float] = dataclasses.field(default_factory=list)
    again: list[float] = dataclasses.field(default_factory=list)
    first_cpu: list[float] = dataclasses.field(default_factory=list)
    again_cpu: list[float] = dataclasses.field(default_factory=list)
    load_s: float = 0.0  # seconds to store the filler rows

    def median(self, name: str) -> float:
        return float(statistics.median(getattr(self, name)))


def cpu_seconds(store: Store) -> float:
    """CPU time of this process and of the store's PostgreSQL backends (same machine)."""
    total = time.process_time()
    if store.dialect != "postgresql":
        return total
    with store.connect() as conn:
        pids = conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = current_setting('application_name')"
            )
        ).scalars()
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # another machine, or gone
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def measured_series(doc: Document, name: str) -> Document:
    """``doc``'s one series under new usage-point and meter-reading paths."""
    [up] = doc.usage_points
    [mr] = up.meter_readings
    base = f"Subscription/bench/UsagePoint/{name}"
    mr2 = dataclasses.replace(mr, href=f"{base}/MeterReading/1")
    return Document(usage_points=(dataclasses.replace(up, href=base, meter_readings=(mr2,)),))


def seed(doc: Document, start: int) -> Document:
    """One reading of ``doc``'s series at ``start`` (outside the measured range): the series
    gets its ids now, between the filler series."""
    [up] = doc.usage_points
    [mr] = up.meter_readings
    cols = ReadingColumns()
    cols.append(start, STEP, 1)
    mr2 = dataclasses.replace(mr, interval_blocks=(IntervalBlock(readings=cols),))
    return Document(usage_points=(dataclasses.replace(up, meter_readings=(mr2,)),))


def add_filler_series(store: Store, count: int, offset: int) -> list[int]:
    """``count`` meter readings of a filler usage point; their ids."""
    with store.begin() as conn:
        up = conn.execute(
            text(
                "INSERT INTO usage_points (namespace, key) VALUES ('bench', 'filler')"
                " ON CONFLICT (namespace, key) DO UPDATE SET key = excluded.key RETURNING id"
            )
        ).scalar_one()
        return [
            int(
                conn.execute(
                    text(
                        "INSERT INTO meter_readings (usage_point_id, key, uom)"
                        " VALUES (:u, :k, 72) RETURNING id"
                    ),
                    {"u": up, "k": f"filler/{offset + i}"},
                ).scalar_one()
            )
            for i in range(count)
        ]


def load_filler(store: Store, ids: list[int], lo: int, hi: int) -> None:
    """Readings every 15 minutes over ``[lo, hi]`` for each filler series, by SQL."""
    if not ids:
        return
    pg = store.dialect == "postgresql"
    if pg:
        insert = text(
            "INSERT INTO readings (meter_reading_id, start, usage_point_id, duration, raw_value,"
            " multiplier, uom) SELECT m.id, g, m.usage_point_id, 900, g % 997, 0, 72"
            " FROM meter_readings m, generate_series(CAST(:lo AS bigint), :hi, 900) g"
            " WHERE m.id = :m"
        )
    else:
        insert = text(
            "WITH RECURSIVE g(s) AS (SELECT :lo UNION ALL SELECT s + 900 FROM g WHERE s < :hi)"
            " INSERT INTO readings (meter_reading_id, start, usage_point_id, duration,"
            " raw_value, multiplier, uom) SELECT m.id, g.s, m.usage_point_id, 900, g.s % 997,"
            " 0, 72 FROM meter_readings m, g WHERE m.id = :m"
        )
    t0 = time.perf_counter()
    for i, mr_id in enumerate(ids):
        with store.begin() as conn:
            conn.execute(insert, {"m": mr_id, "lo": lo, "hi": hi})
        if (i + 1) % 50 == 0:
            rate = (i + 1) * ((hi - lo) // STEP + 1) / (time.perf_counter() - t0)
            print(f"  ... {i + 1}/{len(ids)} filler series ({rate:,.0f} rows/s)", file=sys.stderr)
    if pg:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE readings"))
    else:
        with store.begin() as conn:
            conn.execute(text("ANALYZE"))


def stored(store: Store) -> int:
    with store.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM readings")).scalar_one())


def prepare(
    store: Store, doc: Document, n_stored: int, middle: list[Document], end: list[Document]
) -> float:
    """Fill ``store`` with ``n_stored`` filler readings, the ``middle`` series' ids among
    theirs and the ``end`` series' after them; seconds the filler load took."""
    cols = doc.meter_readings[0].readings
    lo, hi = min(cols.start), max(cols.start)
    per_series = (hi - lo) // STEP + 1
    fillers = -(-n_stored // per_series) if n_stored else 0
    if store.dialect == "postgresql":
        ensure_partitions(store, months_between(lo - 400 * 86400, hi))
    low = add_filler_series(store, fillers // 2, 0)
    for d in middle:
        ingest_document(store, seed(d, lo - 400 * 86400))
    high = add_filler_series(store, fillers - fillers // 2, fillers // 2)
    for d in end:
        ingest_document(store, seed(d, lo - 400 * 86400))
    t0 = time.perf_counter()
    load_filler(store, low + high, lo, hi)
    return time.perf_counter() - t0


def measure_one(store: Store, d: Document, figures: Figures) -> None:
    """Ingest ``d`` (a new series) and ingest it again; rows/s of both into ``figures``."""
    n = len(d.meter_readings[0].readings)
    before = stored(store)
    c0, t0 = cpu_seconds(store), time.perf_counter()
    result = ingest_document(store, d)
    t1, c1 = time.perf_counter(), cpu_seconds(store)
    ingest_document(store, d)
    t2, c2 = time.perf_counter(), cpu_seconds(store)
    if result.rows != n or stored(store) != before + n:
        raise SystemExit(f"ingest stored {result.rows} rows, want {n}")
    figures.first.append(n / (t1 - t0))
    figures.again.append(n / (t2 - t1))
    figures.first_cpu.append(n / (c1 - c0))
    figures.again_cpu.append(n / (c2 - c1))


def measure(
    make_db: Callable[[], AbstractContextManager[str]],
    doc: Document,
    n_stored: int,
    repeat: int,
) -> tuple[Figures, Figures, Figures]:
    """Flat, and with ``n_stored`` stored for series whose ids fall among the stored ones
    (an existing customer: index inserts inside the tree) and after them (a new customer:
    PostgreSQL's rightmost-leaf fast path, as in the flat table). The runs alternate
    between the two databases so that other work on the machine falls on both alike."""
    middle = [measured_series(doc, f"m{i}") for i in range(repeat)]
    end = [measured_series(doc, f"e{i}") for i in range(repeat)]
    flat, big_middle, big_end = Figures(), Figures(), Figures()
    with ExitStack() as stack:
        stores = []
        for size, figures in ((0, flat), (n_stored, big_middle)):
            url = stack.enter_context(make_db())
            store = Store.open(url, connect_args=_app_name(url, size))
            stack.callback(store.close)
            figures.load_s = prepare(store, doc, size, middle, end if size else [])
            stores.append(store)
        big_end.load_s = big_middle.load_s
        for store in stores:  # untimed: each backend loads its caches of the partitions
            measure_one(store, measured_series(doc, "warm-up"), Figures())
        for m, e in zip(middle, end, strict=True):
            measure_one(stores[0], m, flat)
            measure_one(stores[1], m, big_middle)
            measure_one(stores[1], e, big_end)
    return flat, big_middle, big_end


def _app_name(url: str, size: int) -> dict[str, str]:
    """A PostgreSQL application name per store, to find its backends (``cpu_seconds``)."""
    return {"application_name": f"gb-bench-{size}"} if url.startswith("postgresql") else {}


def partition_cost(
    make_db: Callable[[], AbstractContextManager[str]], doc: Document
) -> tuple[int, float]:
    """Months made and seconds taken by the first ingest's partition step on an empty table."""
    cols = doc.meter_readings[0].readings
    months = months_between(min(cols.start), max(cols.start))
    with make_db() as url, Store.open(url) as store:
        t0 = time.perf_counter()
        ensure_partitions(store, months)
        return len(months), time.perf_counter() - t0


def bulk_shaped(customers: int, day: int) -> Document:
    """One day of 15-minute readings for each of ``customers`` usage points, the shape of a
    daily Bulk file (many series, 96 readings each)."""
    rt = ReadingType(uom=72, power_of_ten_multiplier=0, interval_length=STEP, kind=12)
    points = []
    for c in range(customers):
        cols = ReadingColumns()
        for i in range(96):
            cols.append(day + i * STEP, STEP, (c * 7 + i) % 1000)
        mr = MeterReading(
            id="1",
            href=f"Subscription/{c}/UsagePoint/1/MeterReading/1",
            reading_type=rt,
            interval_blocks=(IntervalBlock(readings=cols),),
        )
        points.append(
            UsagePoint(id="1", href=f"Subscription/{c}/UsagePoint/1", meter_readings=(mr,))
        )
    return Document(usage_points=tuple(points))


def many_series(
    make_db: Callable[[], AbstractContextManager[str]], customers: int
) -> tuple[float, float]:
    """Rows/s of the next day of a Bulk-shaped document (its customers' series exist), and
    of the same again: what per-series statements cost beside the readings."""
    day = 1_767_225_600  # 2026-01-01 UTC
    first, second = bulk_shaped(customers, day), bulk_shaped(customers, day + 86400)
    with make_db() as url, Store.open(url) as store:
        ingest_document(store, first)
        t0 = time.perf_counter()
        ingest_document(store, second)
        t1 = time.perf_counter()
        ingest_document(store, second)
        t2 = time.perf_counter()
    n = customers * 96
    return n / (t1 - t0), n / (t2 - t1)


def conversion_time(
    make_db: Callable[[], AbstractContextManager[str]], doc: Document, n_stored: int
) -> tuple[int, float, float]:
    """Rows held, and seconds revision r0006 takes to partition a 0005 database holding
    ``n_stored`` filler readings, and its downgrade to turn it back."""
    with make_db() as url:
        store = Store.open(url, migrate=False)
        try:
            store.migrate("0005")
            prepare(store, doc, n_stored, [], [])
            rows = stored(store)
            t0 = time.perf_counter()
            store.migrate("0006")
            t1 = time.perf_counter()
            store.downgrade("0005")
            t2 = time.perf_counter()
            if stored(store) != rows:
                raise SystemExit("the conversion lost rows")
        finally:
            store.close()
    return rows, t1 - t0, t2 - t1


ROW_CHECKED_KEY = (
    "ALTER TABLE readings ADD CONSTRAINT fk_readings_meter_reading_id"
    " FOREIGN KEY (meter_reading_id) REFERENCES meter_readings (id) ON DELETE CASCADE"
)


def foreign_key_cost(
    make_db: Callable[[], AbstractContextManager[str]], doc: Document, repeat: int
) -> tuple[Figures, Figures]:
    """The flat first ingest with the readings → meter readings rule checked per statement
    (r0010's triggers, the shipped schema) and with r0006's foreign key, checked per row
    (the trigger per_statement, the key added back), alternating."""
    per_row, per_statement = Figures(), Figures()
    docs = [measured_series(doc, f"m{i}") for i in range(repeat + 1)]
    with ExitStack() as stack:
        stores = []
        for size, fk in ((0, True), (1, False)):
            url = stack.enter_context(make_db())
            store = Store.open(url, connect_args=_app_name(url, size))
            stack.callback(store.close)
            prepare(store, doc, 0, docs, [])
            if fk:
                with store.begin() as conn:
                    conn.execute(text("DROP TRIGGER readings_inserted ON readings"))
                    conn.execute(text(ROW_CHECKED_KEY))
            measure_one(store, docs[0], Figures())  # warm-up
            stores.append(store)
        for d in docs[1:]:
            measure_one(stores[0], d, per_row)
            measure_one(stores[1], d, per_statement)
    return per_row, per_statement


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stored", type=int, default=10_000_000, help="readings stored first")
    ap.add_argument("--repeat", type=int, default=3, help="series measured per size")
    ap.add_argument("--postgres-url", default=os.environ.get("GREENBUTTON_TEST_POSTGRES_URL"))
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), action="append")
    ap.add_argument(
        "--convert", type=int, default=0, metavar="N", help="time r0006 on N stored readings"
    )
    ap.add_argument(
        "--foreign-key-cost",
        action="store_true",
        help="flat ingest, key checked per statement (shipped) vs per row (r0006's FK)",
    )
    args = ap.parse_args(argv)

    path = ensure_input()
    doc = parse(path)
    backends: list[tuple[str, Callable[[], AbstractContextManager[str]]]] = []
    for name in args.backend or ("sqlite", "postgresql"):
        if name == "sqlite":
            backends.append(("sqlite", sqlite_db))
        elif args.postgres_url:
            backends.append(("postgresql", postgres_db(args.postgres_url)))
        else:
            print("postgresql: skipped (no --postgres-url or $GREENBUTTON_TEST_POSTGRES_URL)")
    n = len(doc.meter_readings[0].readings)
    print(
        f"Ingest of {n:,} readings (one series, 3 years of 15 min) per run, median of "
        f"{args.repeat} new series, flat and with {args.stored:,} stored, alternating:\n"
    )
    print("| back end | stored | first ingest rows/s (per CPU s) | re-run rows/s (per CPU s) "
          "| vs flat: first, re-run, first per CPU s | filler load |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    ok = True
    lines: list[str] = []
    for name, make_db in backends:
        flat, middle, end = measure(make_db, doc, args.stored, args.repeat)
        for label, f in (
            ("0", flat),
            (f"{args.stored:,}, ids among them", middle),
            (f"{args.stored:,}, ids after them", end),
        ):
            cells = [
                f"{f.median(k):,.0f} ({f.median(k + '_cpu'):,.0f})" for k in ("first", "again")
            ]
            ratios = ", ".join(
                f"{f.median(k) / flat.median(k):.2f}" for k in ("first", "again", "first_cpu")
            )
            load = f"{f.load_s:,.0f} s" if f is not flat else ""
            print(f"| {name} | {label} | {cells[0]} | {cells[1]} | {ratios} | {load} |")
        a, b = many_series(make_db, 2000)
        print(
            f"| {name} | Bulk-shaped: 2,000 series x 96, the next day | {a:,.0f} | {b:,.0f} | | |"
        )
        rate = flat.median("first")
        r1 = min(f.median("first") for f in (middle, end)) / rate
        ok &= rate >= GOAL and r1 >= FLATNESS
        lines.append(
            f"{name}: flat {rate:,.0f} rows/s (goal {GOAL:,}: "
            f"{'met' if rate >= GOAL else 'NOT met'}); with {args.stored:,} stored, the "
            f"slower kind {r1:.0%} of flat (goal {FLATNESS:.0%}: "
            f"{'met' if r1 >= FLATNESS else 'NOT met'})"
        )
        if name == "postgresql":
            months, seconds = partition_cost(make_db, doc)
            lines.append(
                f"postgresql: making the {months} monthly partitions of the input's range "
                f"took {seconds:.2f} s (once per month for all customers; not in the rates)"
            )
            if args.convert:
                rows, up, down = conversion_time(make_db, doc, args.convert)
                lines.append(
                    f"postgresql: r0006 partitioned a 0005 table of {rows:,} readings in "
                    f"{up:.1f} s ({rows / up:,.0f} rows/s); its downgrade took {down:.1f} s"
                )
            if args.foreign_key_cost:
                per_row, per_statement = foreign_key_cost(make_db, doc, args.repeat)
                a, b = per_row.median("first"), per_statement.median("first")
                ac, bc = per_row.median("first_cpu"), per_statement.median("first_cpu")
                lines.append(
                    f"postgresql: flat first ingest {b:,.0f} rows/s ({bc:,.0f} per CPU s) with "
                    f"the key checked per statement (r0010, shipped), {a:,.0f} ({ac:,.0f}) "
                    f"with r0006's per-row foreign key: {b / a:.2f}x ({bc / ac:.2f}x per CPU s)"
                )
    print()
    for line in lines:
        print(line)
    extra = (f" --convert {args.convert}" if args.convert else "") + (
        " --foreign-key-cost" if args.foreign_key_cost else ""
    )
    print(f"\nCommand: `{COMMAND} --stored {args.stored} --repeat {args.repeat}{extra}`")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
