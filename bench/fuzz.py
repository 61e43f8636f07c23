"""Long mutation-fuzz campaigns over the shared fixtures (issue 9.2, SECURITY R36/R37).

    .venv/bin/python bench/fuzz.py --cases 20000 [--seed 9] [--workers 2] [--timeout 20]

The cases are those of ``tests/unit/test_fuzz.py`` (``tests.fuzz_mutators``, one place for both),
over every fixture by default. Each case runs in a worker process through ``parse``,
``iter_readings`` and ``read_frame``; the parent gives it ``--timeout`` seconds, so the
report tells apart

* untyped exceptions (anything but a GreenButtonError: the bug class of issue 9),
* hangs (no answer in time: the worker is killed and replaced), and
* worker deaths (a crash of the interpreter or of C code),

with the seed, case number, fixture and mutations of each, so ``make_case(corpus, seed, i)``
replays it. The bar is 0 of each. Exit status 1 when any is found.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
import warnings
from collections import Counter
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import FIXTURES  # noqa: E402
from tests.fuzz_mutators import load_corpus, make_case, run_case  # noqa: E402


def _worker(conn: Connection, seed: int, max_bytes: int | None) -> None:
    warnings.simplefilter("error")  # as the test suite runs (pyproject filterwarnings)
    corpus = load_corpus(FIXTURES, max_bytes)
    while True:
        index = conn.recv()
        if index is None:
            return
        case = make_case(corpus, seed, index)
        outcomes = run_case(case.data)
        conn.send(
            (
                index,
                case.source,
                case.steps,
                [(o.entry, o.kind, o.error, o.where) for o in outcomes],
            )
        )


class _Slot:
    """One worker process and the case it is on."""

    def __init__(self, ctx: Any, seed: int, max_bytes: int | None) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, seed, max_bytes), daemon=True)
        self.proc.start()
        child.close()
        self.index: int | None = None
        self.since = 0.0

    def give(self, index: int) -> None:
        self.index, self.since = index, time.monotonic()
        self.conn.send(index)

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per case")
    ap.add_argument("--max-bytes", type=int, default=None, help="leave out larger fixtures")
    ap.add_argument("--json", type=Path, help="also write the report here")
    args = ap.parse_args(argv)

    corpus = load_corpus(FIXTURES, args.max_bytes)
    ctx = mp.get_context("fork")
    slots = [_Slot(ctx, args.seed, args.max_bytes) for _ in range(args.workers)]
    pending = iter(range(args.cases))
    outcomes: Counter[str] = Counter()
    untyped: list[dict[str, Any]] = []
    hangs: list[dict[str, Any]] = []
    deaths: list[dict[str, Any]] = []
    done = 0
    began = time.monotonic()

    def describe(index: int) -> dict[str, Any]:
        case = make_case(corpus, args.seed, index)
        return {"seed": args.seed, "case": index, "source": case.source, "steps": case.steps}

    for slot in slots:
        nxt = next(pending, None)
        if nxt is not None:
            slot.give(nxt)
    while any(s.index is not None for s in slots):
        busy = [s for s in slots if s.index is not None]
        ready = wait([s.conn for s in busy] + [s.proc.sentinel for s in busy], timeout=0.5)
        now = time.monotonic()
        for i, slot in enumerate(slots):
            if slot.index is None:
                continue
            finished = broken = False
            if slot.conn in ready:
                try:
                    index, source, steps, results = slot.conn.recv()
                except (EOFError, OSError):
                    broken = True  # the worker went away mid-case
                    slot.proc.join(5)
                else:
                    finished = True
                    for entry, kind, error, where in results:
                        outcomes[f"{entry}:{kind}"] += 1
                        if kind == "untyped":
                            untyped.append(
                                {"seed": args.seed, "case": index, "source": source,
                                 "steps": steps, "entry": entry, "error": error,
                                 "where": where}
                            )  # fmt: skip
            if not finished:
                if broken or not slot.proc.is_alive():
                    deaths.append({**describe(slot.index), "exitcode": slot.proc.exitcode})
                elif now - slot.since > args.timeout:
                    hangs.append({**describe(slot.index), "seconds": round(now - slot.since, 1)})
                else:
                    continue  # still working on it
                slot.stop()  # replace the dead or stuck worker
                slots[i] = slot = _Slot(ctx, args.seed, args.max_bytes)
            done += 1
            slot.index = None
            nxt = next(pending, None)
            if nxt is not None:
                slot.give(nxt)
            if done % 1000 == 0:
                print(f"{done}/{args.cases} cases, {time.monotonic() - began:.0f} s", flush=True)
    for slot in slots:
        try:
            slot.conn.send(None)
        except OSError:
            pass
        slot.stop()

    report = {
        "command": " ".join(["bench/fuzz.py", *(argv if argv is not None else sys.argv[1:])]),
        "cases": done,
        "seed": args.seed,
        "fixtures": len(corpus),
        "seconds": round(time.monotonic() - began, 1),
        "outcomes": dict(sorted(outcomes.items())),
        "untyped_exceptions": len(untyped),
        "hangs": len(hangs),
        "worker_deaths": len(deaths),
        "untyped": untyped[:50],
        "hung": hangs[:50],
        "died": deaths[:50],
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k not in ("untyped", "hung", "died")}))
    for title, items in (("untyped", untyped), ("hung", hangs), ("died", deaths)):
        for item in items[:10]:
            print(f"{title}: {json.dumps(item)}")
    return 1 if untyped or hangs or deaths else 0


if __name__ == "__main__":
    sys.exit(main())
