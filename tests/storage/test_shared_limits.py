"""The rate limit and quotas in PostgreSQL (DESIGN 3.7): every machine counts together.

Two :class:`DatabaseLimiter` objects with different holders play two machines; with the
sleep injected away, the slots they reserve are read back from the database, so nothing
here depends on timing. The real-process proof (two workers, the simulator's 429 count)
is ``test_worker.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")

from sqlalchemy import text

from greenbutton import QuotaExhaustedError
from greenbutton.client._ratelimit import Quota, SharedRateLimiter, make_limiter
from greenbutton.storage import DatabaseLimiter, Store, shared_limits
from tests.storage_harness import postgres_url

#: Slow enough that no reservation here, however loaded the machine, finds its slot past.
RATE = 0.1
INTERVAL = 1.1 / RATE  # the default 10 % headroom


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Store]:
    for url in postgres_url():
        store = Store.open(url, data_dir=tmp_path)
        try:
            yield store
        finally:
            store.close()


def _limiter(store: Store, holder: str, quotas: tuple[Quota, ...] = ()) -> DatabaseLimiter:
    """A limiter whose sleep returns at once: the waits are read, not slept."""
    return DatabaseLimiter(store, "k", RATE, holder=holder, quotas=quotas, sleep=lambda _s: None)


def _row(store: Store) -> tuple[float, int, str]:
    with store.connect() as conn:
        tat, version, holder = conn.execute(
            text("SELECT tat, version, holder FROM shared_limits WHERE key = 'k'")
        ).one()
    return float(tat), int(version), str(holder)


def test_two_machines_reserve_consecutive_slots_of_one_schedule(pg: Store) -> None:
    a, b = _limiter(pg, "machine-a"), _limiter(pg, "machine-b")
    a.acquire()
    slots = [_row(pg)[0]]
    waits = []
    for limiter in (b, a, b, a, b):
        waits.append(limiter.acquire())
        slots.append(_row(pg)[0])
    # each reservation takes the slot after the other machine's: one schedule, not two
    assert [s2 - s1 for s1, s2 in zip(slots, slots[1:], strict=False)] == pytest.approx(
        [INTERVAL] * 5
    )
    assert waits == sorted(waits) and waits[-1] > 4 * INTERVAL
    assert _row(pg)[1:] == (6, "machine-b")


def test_concurrent_reservations_lose_no_update(pg: Store) -> None:
    """Threads of two 'machines' at once: every reservation lands (the conditional upsert
    retries when another came first), none is counted twice."""
    limiters = [_limiter(pg, "machine-a"), _limiter(pg, "machine-b")]
    _limiter(pg, "first").acquire()
    start, _, _ = _row(pg)

    def take(limiter: DatabaseLimiter) -> None:
        for _ in range(10):
            limiter.acquire()

    threads = [threading.Thread(target=take, args=(lim,)) for lim in limiters * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tat, version, _ = _row(pg)
    assert version == 41
    assert tat - start == pytest.approx(40 * INTERVAL)


def test_quotas_are_counted_across_machines_and_a_refusal_reserves_nothing(pg: Store) -> None:
    hour = (Quota("hour", 3),)
    a, b = _limiter(pg, "machine-a", quotas=hour), _limiter(pg, "machine-b", quotas=hour)
    a.acquire()
    b.acquire()
    a.acquire()
    slot, version, _ = _row(pg)
    for limiter in (a, b):
        with pytest.raises(QuotaExhaustedError) as caught:
            limiter.acquire()
        assert 0 < caught.value.retry_after <= 61 * 60 + 3 * INTERVAL
    assert _row(pg)[0] == slot  # the refused requests took no slot
    assert _row(pg)[1] == version + 2


def test_a_slot_far_ahead_of_the_database_clock_is_stale(pg: Store) -> None:
    """The server's clock set back by hours: the stored slot lies far in the future; it
    restarts at now instead of making every machine wait for hours (as the file limiter)."""
    a = _limiter(pg, "machine-a")
    a.acquire()
    with pg.begin() as conn:
        conn.execute(text("UPDATE shared_limits SET tat = tat + 10 * 3600"))
    assert a.acquire() == 0.0


def test_async_callers_share_the_same_schedule(pg: Store) -> None:
    async def slept(_s: float) -> None:
        return None

    a = DatabaseLimiter(pg, "k", RATE, holder="machine-a", async_sleep=slept)

    async def main() -> list[float]:
        return [await a.acquire_async() for _ in range(3)]

    waits = anyio.run(main)
    assert waits[0] == 0.0 and waits[2] > waits[1] > 0
    assert _row(pg)[1] == 3


def test_shared_limits_uses_the_database_on_postgresql_only(
    pg: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREENBUTTON_RATE_DIR", str(tmp_path / "rate"))
    with shared_limits(pg):
        inside = make_limiter(2.0, profile_name="p", client_id="c")
    outside = make_limiter(2.0, profile_name="p", client_id="c")
    assert isinstance(inside, DatabaseLimiter)
    assert isinstance(outside, SharedRateLimiter)
    sqlite = Store.open(f"sqlite:///{tmp_path / 'gb.db'}", data_dir=tmp_path)
    with shared_limits(sqlite):
        assert isinstance(make_limiter(2.0, profile_name="p", client_id="c"), SharedRateLimiter)
    with pytest.raises(Exception, match="PostgreSQL"):
        DatabaseLimiter(sqlite, "k", 1.0)
    sqlite.close()


def test_a_slot_behind_the_database_clock_is_now_not_a_burst(pg: Store) -> None:
    """The server's clock jumped forward (or the limit sat idle): the stale slot does not
    bank the missed slots as a burst; the next one starts at now."""
    a = _limiter(pg, "machine-a")
    a.acquire()
    with pg.begin() as conn:
        conn.execute(text("UPDATE shared_limits SET tat = tat - 3600"))
    assert a.acquire() == 0.0
    assert a.acquire() == pytest.approx(INTERVAL, abs=1.0)  # the very next slot waits again


def test_operators_see_the_quota_counts_kept_in_the_database(pg: Store) -> None:
    """``client_limits`` (/admin and /metrics) reads a database limiter's counts, read only:
    two machines' requests show as used, and reading them takes no slot."""
    from types import SimpleNamespace

    from greenbutton.client._limits import client_limits

    hour = (Quota("hour", 5),)
    one, two = _limiter(pg, "host-a", hour), _limiter(pg, "host-b", hour)
    one.acquire()
    two.acquire()
    client = SimpleNamespace(_policy=SimpleNamespace(limiter=one, breaker=None))
    before = _row(pg)
    (use,) = client_limits(client).quotas
    assert (use.period, use.limit, use.used) == ("hour", 5, 2)
    assert _row(pg) == before  # nothing reserved by looking
