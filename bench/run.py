"""The parse benchmarks of DESIGN 6 in one run (``make bench``).

Speed is reported as a ratio against ``lxml.etree.parse`` of the same file in the same
run, because absolute times mean nothing across machines; the ratio uses CPU time, which
other work on the 2 cores disturbs far less than wall time (both are shown). Each timed
call runs alone in a fresh interpreter (best of ``REPEAT`` per side, the sides alternating),
timed inside it around the call only: timing both in one process made each pay for the
other's freed memory (glibc consolidates a freed tree during the next call). Memory is
the peak RSS of a fresh interpreter, because RSS of a process that already parsed
something else would mostly measure the allocator. Input files are generated into
``bench/out/`` (gitignored) by ``generate.py`` when missing or older than the generator.
Nothing here is a test: timings never gate CI, they are read by people.

The fetch benchmark (``fetch.py``: 200 subscriptions from the simulator, loopback and with
modelled WAN latency) runs after the parse tables, in its own process; ``--no-fetch`` skips it.
The scale benchmark (``scale.py``: backfill throughput with 1, 2 and 4 ``greenbutton worker``
processes on one PostgreSQL database, a rate-limited row and the ingest-rate-versus-table-size
table) runs last, also in its own process, when ``$GREENBUTTON_BENCH_POSTGRES_URL`` or
``$GREENBUTTON_TEST_POSTGRES_URL`` names a server; ``--no-scale`` skips it, ``--scale-quick``
runs its few-minute ``--quick`` form.

    .venv/bin/python bench/run.py [--regenerate] [--profile] [--no-fetch] [--no-scale]
                                  [--scale-quick]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

import greenbutton

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
GENERATOR = HERE / "generate.py"
COMMAND = "make bench  (= .venv/bin/python bench/run.py)"
REPEAT = 5
PARSE_RATIO = 1.6  # DESIGN 6: parse to columns <= 1.6 x lxml.etree.parse
RSS_LIMIT_MB = 100.0  # DESIGN 6: peak RSS for a 400 MB file
READINGS_3Y = 105_216


@dataclass(frozen=True, slots=True)
class Input:
    """A generated file and the ``generate.py`` arguments that make it."""

    name: str
    args: tuple[str, ...]
    label: str

    @property
    def path(self) -> Path:
        return OUT / self.name


PGE = Input("pge_3y.xml", ("--style", "pge", "--years", "3"), "PG&E-style 3 y 15-min")
OPENESPI = Input(
    "openespi_3y.xml", ("--style", "openespi", "--years", "3"), "OpenESPI-style 3 y 15-min"
)
PGE_COMPACT = Input(
    "pge_3y_compact.xml",
    ("--style", "pge", "--years", "3", "--compact"),
    "PG&E-style, fixture-exact ns (`--compact`)",
)
PGE_LARGE = Input(
    "pge_400mb.xml", ("--style", "pge", "--years", "3", "--size-mb", "400"), "PG&E-style 400 MB"
)
INPUTS = (PGE, OPENESPI, PGE_COMPACT, PGE_LARGE)


def ensure(inp: Input, regenerate: bool) -> None:
    """Generate ``inp`` unless an up-to-date copy exists (the generator is deterministic)."""
    p = inp.path
    if not regenerate and p.exists() and p.stat().st_mtime >= GENERATOR.stat().st_mtime:
        return
    subprocess.run(
        [sys.executable, str(GENERATOR), *inp.args, "-o", str(p)], check=True, cwd=HERE.parent
    )


def mb(path: Path) -> float:
    return path.stat().st_size / 1e6


@dataclass(frozen=True, slots=True)
class Timing:
    """Best wall and best CPU seconds over the runs. The ratio uses CPU time: both sides
    are single-threaded and CPU-bound, and CPU time is what survives other work sharing
    the 2 cores (wall time is shown too)."""

    wall: float = float("inf")
    cpu: float = float("inf")

    def best(self, other: Timing) -> Timing:
        return Timing(min(self.wall, other.wall), min(self.cpu, other.cpu))


# One timed call in a fresh interpreter: both sides import the same modules and read the
# file once (into the page cache) before the clock starts, and the clock stops as soon as
# the call returns, so neither side pays for the other's allocations (glibc otherwise hands
# the next call the work of consolidating a freed tree) nor for freeing its own result.
_TIMER = r"""
import gc, json, sys, time
from lxml import etree
import greenbutton
mode, path = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    while f.read(1 << 22):
        pass
def run():
    if mode == "lxml":
        return etree.parse(path)
    if mode == "parse":
        return greenbutton.parse(path)
    n = 0
    for _ in greenbutton.iter_readings(path):
        n += 1
    return n
gc.collect()
w, c = time.perf_counter(), time.process_time()
result = run()
c, w = time.process_time() - c, time.perf_counter() - w
n = result if mode == "iter" else getattr(result, "reading_count", 0)
print(json.dumps({"wall": w, "cpu": c, "n": n}))
"""


def timed_child(mode: str, path: Path) -> tuple[Timing, int]:
    """Run ``mode`` on ``path`` once in a fresh interpreter; its timing and readings."""
    proc = subprocess.run(
        [sys.executable, "-c", _TIMER, mode, str(path)], check=True, capture_output=True, text=True
    )
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    return Timing(got["wall"], got["cpu"]), int(got["n"])


@dataclass(frozen=True, slots=True)
class Speed:
    label: str
    size_mb: float
    readings: int
    ours: Timing
    lxml: Timing | None

    @property
    def ratio(self) -> float | None:
        return None if self.lxml is None else self.ours.cpu / self.lxml.cpu


def time_parse(inp: Input, expected: int) -> Speed:
    """``greenbutton.parse`` vs ``lxml.etree.parse``, each run in its own fresh process,
    the two sides alternating so that drift hits both."""
    ours = theirs = Timing()
    for _ in range(REPEAT):
        t, _n = timed_child("lxml", inp.path)
        theirs = theirs.best(t)
        t, count = timed_child("parse", inp.path)
        ours = ours.best(t)
        if count != expected:
            raise SystemExit(f"{inp.name}: parse found {count} readings, expected {expected}")
    return Speed(f"`parse` {inp.label}", mb(inp.path), expected, ours, theirs)


def time_iter(inp: Input, expected: int) -> Speed:
    best = Timing()
    for _ in range(REPEAT):
        t, count = timed_child("iter", inp.path)
        best = best.best(t)
        if count != expected:
            raise SystemExit(f"{inp.name}: iter_readings gave {count} rows, expected {expected}")
    return Speed(f"`iter_readings` {inp.label}", mb(inp.path), expected, best, None)


# Runs in a fresh interpreter so that its peak RSS is the operation's and nothing else's.
_CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import greenbutton
mode, path = sys.argv[1], sys.argv[2]

def peak_kb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

n = 0
if mode == "parse":
    doc = greenbutton.parse(path)
    seconds = time.perf_counter() - t0
    hwm = peak_kb()  # before counting: reading_count merges each meter's blocks
    n = doc.reading_count
else:
    if mode == "iter":
        for _ in greenbutton.iter_readings(path):
            n += 1
    seconds = time.perf_counter() - t0
    hwm = peak_kb()
print(json.dumps({"kb": hwm, "n": n, "seconds": seconds}))
"""


@dataclass(frozen=True, slots=True)
class Memory:
    label: str
    size_mb: float
    readings: int
    peak_mb: float
    seconds: float


def peak_rss(mode: str, inp: Input | None, expected: int, label: str) -> Memory:
    path = str(inp.path) if inp else ""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, path], check=True, capture_output=True, text=True
    )
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if got["n"] != expected:
        raise SystemExit(f"{label}: {got['n']} readings, expected {expected}")
    return Memory(label, mb(inp.path) if inp else 0.0, got["n"], got["kb"] / 1024, got["seconds"])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE.parent,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, "
        f"lxml {'.'.join(map(str, etree.LXML_VERSION))} "
        f"(libxml2 {'.'.join(map(str, etree.LIBXML_VERSION))}), commit {commit}"
    )


def _ok(good: bool | None) -> str:
    return "—" if good is None else ("yes" if good else "**NO**")


def report(
    speeds: list[Speed], memory: list[Memory], baseline: Memory, total: float, load: float
) -> str:
    busy = " (**busy machine: times are inflated and ratios noisy**)" if load > 0.5 else ""
    lines = [
        "## greenbutton parse benchmarks",
        "",
        f"Command: `{COMMAND}`  ",
        f"Machine: {machine()}  ",
        f"Best of {REPEAT} runs per side, each run in a fresh interpreter: CPU and wall time "
        "of the call alone, measured inside the process after imports and a read of the file "
        "into the page cache (readings/s from CPU time); "
        f"total bench time {total:.0f} s; 1-min load average at start {load:.2f}{busy}.",
        "",
        "| measurement | file MB | readings | wall s | CPU s | readings/s "
        f"| lxml.etree.parse wall s | CPU s | ratio (CPU) | ≤ {PARSE_RATIO}× |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    for s in speeds:
        ratio, lx = s.ratio, s.lxml
        lines.append(
            f"| {s.label} | {s.size_mb:.1f} | {s.readings:,} | {s.ours.wall:.3f} "
            f"| {s.ours.cpu:.3f} | {s.readings / s.ours.cpu:,.0f} "
            f"| {'' if lx is None else f'{lx.wall:.3f}'} "
            f"| {'' if lx is None else f'{lx.cpu:.3f}'} "
            f"| {'' if ratio is None else f'{ratio:.2f}×'} "
            f"| {_ok(None if ratio is None else ratio <= PARSE_RATIO)} |"
        )
    lines += [
        "",
        "PG&E-style files re-declare `ns0` on each reading's compound elements to reach "
        "DESIGN 6's 40 MB (see `bench/generate.py`); the `--compact` row has the same "
        "readings laid out exactly like the PG&E fixtures, and shows how much the ratio "
        "depends on layout.",
        "",
        "Peak RSS is read when `parse` returns, before the check of its reading count "
        "(`Document.reading_count` merges each meter's blocks into a new copy, ~8 MB more "
        "for this file).",
        "",
        "| peak RSS (fresh process, VmHWM) | file MB | readings | peak MB "
        f"| above baseline MB | time s | ≤ {RSS_LIMIT_MB:.0f} MB |",
        "|---|---:|---:|---:|---:|---:|:-:|",
        f"| {baseline.label} | | | {baseline.peak_mb:.1f} | | {baseline.seconds:.2f} | — |",
    ]
    for m in memory:
        lines.append(
            f"| {m.label} | {m.size_mb:.1f} | {m.readings:,} | {m.peak_mb:.1f} "
            f"| {m.peak_mb - baseline.peak_mb:.1f} | {m.seconds:.1f} "
            f"| {_ok(m.peak_mb <= RSS_LIMIT_MB)} |"
        )
    return "\n".join(lines) + "\n"


def profile(inp: Input) -> None:
    """Where ``greenbutton.parse`` spends its time (cProfile inflates per-call overhead,
    so read it for shares, not absolute times)."""
    prof = cProfile.Profile()
    prof.runcall(greenbutton.parse, str(inp.path))
    pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(20)


def count_large() -> int:
    """Readings in the 400 MB file: whole usage points of 3 years each, so count points
    from the bytes instead of trusting the parser under test."""
    needle = b":UsagePoint xmlns:ns0="
    points = 0
    tail = b""
    with open(PGE_LARGE.path, "rb") as f:
        while chunk := f.read(1 << 24):
            points += (tail + chunk).count(needle)
            tail = chunk[-len(needle) + 1 :]
    return points * READINGS_3Y


def scale(quick: bool) -> str:
    """``scale.py`` in its own process (it starts the simulator, workers and databases);
    its Markdown, or why it was skipped (it needs a PostgreSQL server)."""
    if not (
        os.environ.get("GREENBUTTON_BENCH_POSTGRES_URL")
        or os.environ.get("GREENBUTTON_TEST_POSTGRES_URL")
    ):
        out = (
            "scale: skipped (set GREENBUTTON_BENCH_POSTGRES_URL or GREENBUTTON_TEST_POSTGRES_URL)\n"
        )
    else:
        out = subprocess.run(
            [sys.executable, str(HERE / "scale.py"), *(["--quick"] if quick else [])],
            check=True,
            cwd=HERE.parent,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
    print(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--regenerate", action="store_true", help="rewrite bench/out/ inputs")
    ap.add_argument("--profile", action="store_true", help="cProfile parse of the PG&E file")
    ap.add_argument("--no-fetch", action="store_true", help="skip the fetch benchmark")
    ap.add_argument("--no-scale", action="store_true", help="skip the scale benchmark")
    ap.add_argument("--scale-quick", action="store_true", help="scale.py --quick")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    load = os.getloadavg()[0]  # other work on 2 cores skews every number below
    OUT.mkdir(exist_ok=True)
    for inp in INPUTS:
        ensure(inp, a.regenerate)
    if a.profile:
        profile(PGE)
        return 0
    large = count_large()
    speeds = [
        time_parse(PGE, READINGS_3Y),
        time_parse(OPENESPI, READINGS_3Y),
        time_parse(PGE_COMPACT, READINGS_3Y),
        time_iter(PGE, READINGS_3Y),
    ]
    baseline = peak_rss("import", None, 0, "`python -c 'import greenbutton'` (baseline)")
    memory = [
        peak_rss("parse", PGE_LARGE, large, f"`parse` {PGE_LARGE.label}"),
        peak_rss("iter", PGE_LARGE, large, f"`iter_readings` {PGE_LARGE.label}"),
    ]
    text = report(speeds, memory, baseline, time.perf_counter() - t0, load)
    print(text)
    if not a.no_fetch:
        fetch = subprocess.run(
            [sys.executable, str(HERE / "fetch.py")],
            check=True,
            cwd=HERE.parent,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        print(fetch)
        text += "\n" + fetch
    if not a.no_scale:
        text += "\n" + scale(a.scale_quick)
    (OUT / "results.md").write_text(text)
    print(f"(written to {OUT / 'results.md'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
