"""A seeded mutation fuzz of the real fixtures (issue 9.2, SECURITY R36/R37).

A few hundred cases a run: fixtures up to 200 kB, each with one to three mutations
(``tests.fuzz_mutators``: byte flips, truncations, duplicated elements, hostile numbers,
times, durations, multipliers, DST rules, every start collapsed onto one), through
``parse``, ``iter_readings`` and ``read_frame``. Each must give a result or a
``GreenButtonError``. A hang ends the run through the ``faulthandler`` watchdog with the
stuck traceback. ``bench/fuzz.py --cases 20000`` runs long campaigns the same way, in
worker processes with a per-case timeout.

The seed is fixed (``GREENBUTTON_FUZZ_SEED`` and ``GREENBUTTON_FUZZ_CASES`` explore
further), so every run checks the same cases; a failure names the seed and case to replay.
"""

from __future__ import annotations

import faulthandler
import os
import time
import zlib
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.conftest import FIXTURES
from tests.fuzz_mutators import MUTATORS, load_corpus, make_case, run_case

CASES = int(os.environ.get("GREENBUTTON_FUZZ_CASES", "600"))
# A fixed default seed: the same cases on every machine; GREENBUTTON_FUZZ_SEED explores.
SEED = int(os.environ.get("GREENBUTTON_FUZZ_SEED", "9"))
MAX_BYTES = 200_000
# A deadline guard, far above the ~10 ms a case takes: the watchdog below catches a real hang.
CASE_DEADLINE = 20.0


@pytest.fixture(autouse=True)
def watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(600, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, bytes]]:
    files = load_corpus(FIXTURES, MAX_BYTES)
    assert len(files) > 50, "the shared fixtures are missing"
    return files


def test_cases_are_replayable(corpus: list[tuple[str, bytes]]) -> None:
    """Case ``i`` of a seed is the same bytes every time, so a campaign's report can be
    replayed alone; different seeds give different cases."""
    a, b = make_case(corpus, SEED, 17), make_case(corpus, SEED, 17)
    assert a == b
    assert {zlib.crc32(make_case(corpus, s, 17).data) for s in range(5)} != {zlib.crc32(a.data)}


def test_every_mutator_changes_a_fixture(corpus: list[tuple[str, bytes]]) -> None:
    """No mutator is a silent no-op on real files (a fuzzer that mutates nothing passes)."""
    import random

    name, data = next((n, d) for n, d in corpus if n.startswith("gba_test_hourly"))
    for kind, mutate in MUTATORS.items():
        changed = sum(mutate(random.Random(i), data)[0] != data for i in range(10))
        assert changed >= 5, kind


def test_r37_mutated_fixtures_give_a_result_or_a_typed_error(
    corpus: list[tuple[str, bytes]],
) -> None:
    """R36/R37: no entry point lets anything but a GreenButtonError escape, for any case."""
    outcomes: Counter[str] = Counter()
    untyped = []
    for i in range(CASES):
        case = make_case(corpus, SEED, i)
        began = time.monotonic()
        for o in run_case(case.data):
            outcomes[o.kind] += 1
            if o.kind == "untyped":
                untyped.append((SEED, i, case.source, case.steps, o))
        elapsed = time.monotonic() - began
        assert elapsed < CASE_DEADLINE, (SEED, i, case.source, case.steps, elapsed)
    assert not untyped, untyped[:5]
    # The mix proves the cases reach both outcomes (a corpus of refusals tests nothing).
    assert outcomes["ok"] > CASES // 5 and outcomes["typed"] > CASES // 5, outcomes


@pytest.mark.parametrize("kind", ["multiplier", "time", "duration", "dst", "collapse"])
def test_r37_each_value_mutator_alone(corpus: list[tuple[str, bytes]], kind: str) -> None:
    """The value mutators one at a time on every small fixture: the substitutions issue 9
    found untyped exceptions and hangs with, each reaching every file."""
    import random

    mutate = MUTATORS[kind]
    for n, (name, data) in enumerate(corpus):
        mutated, what = mutate(random.Random(f"{SEED}:{kind}:{n}"), data)
        bad = [o for o in run_case(mutated) if o.kind == "untyped"]
        assert not bad, (name, what, bad)


def test_r37_malformed_link_href_is_read_as_a_path() -> None:
    """Found by ``bench/fuzz.py --cases 20000`` (seed 9, case 19636): a byte flip made an
    href ``https://[...``, and ``urlsplit`` raised ValueError "Invalid IPv6 URL" out of
    every entry point. The href is now read as a plain path, so linking still works."""
    import greenbutton
    from greenbutton.parse._records import normalize_href

    href = "https://[dc.example/espi/1_1/resource/Subscription/1/UsagePoint/2"
    assert normalize_href(href) == "Subscription/1/UsagePoint/2"
    data = (FIXTURES / "pge_smd_bulk_day_2019-10-19.xml").read_bytes()
    flipped = data.replace(b'href="https://', b'href="https://[', 1)
    assert flipped != data
    assert [o.kind for o in run_case(flipped)] == ["ok", "ok", "ok"]
    assert len(greenbutton.parse(flipped).usage_points) == len(greenbutton.parse(data).usage_points)
