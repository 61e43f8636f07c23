"""The ingest loop: plan fetch jobs for stored authorizations, run them, survive crashes.

A job is one date window of one usage point's "sync" call, stored as the exact URI to GET
(``Batch/Subscription/{sub}/UsagePoint/{up}?published-min=...&published-max=...``), so a
job left by a killed run is re-run verbatim by the next one. Each job's readings and its
``done`` marker commit together (SECURITY R62); ingest is an idempotent upsert (R60), so
re-running a half-finished plan converges on the database a clean run gives.

Planning, per usage point the custodian lists for the authorization:

* **catch-up** (R46): from the stored high-water mark (the earliest of the meter readings'
  last interval ends, so a lagging series is not skipped) or, with nothing stored, from
  ``since`` (default: :data:`DEFAULT_HISTORY_DAYS` back) up to now, in windows of the
  profile's ``window_days``. This recovers whatever a missed notification would have said.
* **gaps** (R64): consecutive stored readings further apart than the interval are a hole;
  its window is re-requested once. A hole whose exact window was already fetched without
  filling it is the custodian's, not ours, and is not asked for again.
* **backfill**: an explicit ``since`` before the first stored reading fetches the part of
  history that was never asked for.

Jobs left by earlier runs (pending, interrupted while running, failed) run first, before
the high-water marks are read; failed jobs are retried with backoff until a job has used
``max_attempts`` attempts in total (counted before each attempt, so a crash counts too).
The backoff honours the custodian's ``Retry-After`` and waits on the monotonic clock, so a
wall clock set back or forward neither stalls nor hurries it.

A job out of attempts becomes ``abandoned``, its last error kept: the run that gives up
reports it (not ``ok``), later runs do not fail because of it. Its data is not written
off: an abandoned window still missing its data is asked for again, automatically, once
per ``retry_abandoned_after`` (default a day, from the job's last update; a job updated
"in the future" by a clock set back is due at once). That covers a hole between stored
readings, an explicit backfill, and a window starting before the first stored reading,
such as the very first one of a usage point (the catch-up starts after the stored data,
holes lie between it). Such a re-request gives the job fresh attempts; failing again, it
is abandoned again and reported (``still_abandoned``) without making the run fail: only
new data failing does. Windows a later catch-up covers are never waited for.
``accounts`` lists abandoned jobs; ``sync(retry_failed=True)`` re-queues them all at
once, and their failure fails the run.

Several runs, and the web app's workers, may share the database: each attempt first claims
its job (``claim_job``: a lease in the same UPDATE that counts the attempt), so no two
processes fetch the same window at once. A job another process holds is skipped and
reported as ``elsewhere``, neither a failure nor unfinished work of this run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import Connection, and_, delete, func, select, update

from .._errors import ConfigurationError, GreenButtonError, RequestDeferred
from ..espi._identity import authorization_key, subscription_of
from ..espi._paths import TimeLike, split_windows, to_datetime
from ..parse import series_key
from ._ingest import LEASE_SECONDS
from ._jobs import (
    MAX_ATTEMPTS,
    RETRY_ABANDONED_AFTER,
    Job,
    JobRunner,
    abandon,
    due_jobs,
    enqueue,
    requeue_abandoned,
    window_uri,
)
from ._schema import authorizations, ingest_jobs, meter_readings, readings, usage_points
from ._store import StorageError, Store

if TYPE_CHECKING:
    from ..client import Client

__all__ = [
    "DEFAULT_HISTORY_DAYS",
    "RETRY_ABANDONED_AFTER",
    "AbandonedJob",
    "AccountSummary",
    "SeriesCoverage",
    "SyncReport",
    "UsagePointSummary",
    "accounts",
    "active_subscriptions",
    "adopt_authorizations",
    "sync",
]

log = logging.getLogger("greenbutton.storage")

#: History fetched for a usage point with nothing stored, when ``since`` is not given.
DEFAULT_HISTORY_DAYS = 365
#: Longest wait between two attempts of a job within one run, seconds.
MAX_RETRY_DELAY = 30.0

#: ``progress(done, total, what)`` after each job (``total`` grows as jobs are planned).
Progress = Callable[[int, int, str], None]


@dataclass
class SyncReport:
    """What one :func:`sync` did."""

    jobs_run: int = 0
    jobs_failed: int = 0  # attempts that failed (the job may have succeeded on a retry)
    resumed: int = 0  # jobs an earlier run left unfinished
    gaps: int = 0  # hole windows re-requested
    readings: dict[str, int] = field(default_factory=dict)  # usage point -> readings added
    unfinished: list[str] = field(default_factory=list)  # job URIs still not done
    skipped: dict[str, str] = field(default_factory=dict)  # authorization -> why
    errors: list[str] = field(default_factory=list)
    abandoned: list[AbandonedJob] = field(default_factory=list)  # given up in this run
    requeued: int = 0  # abandoned jobs put back by ``retry_failed``
    retried: int = 0  # abandoned windows asked for again (``retry_abandoned_after``)
    still_abandoned: list[AbandonedJob] = field(default_factory=list)  # ... failing again
    elsewhere: list[str] = field(default_factory=list)  # job URIs another process was running
    planned: int | None = None  # with ``enqueue_only``: open jobs left for a runner

    @property
    def ok(self) -> bool:
        """Nothing new failed for good in this run: jobs abandoned earlier, and their
        automatic re-requests failing again (``still_abandoned``), do not count."""
        return not self.unfinished and not self.skipped and not self.abandoned


@dataclass(frozen=True, slots=True)
class AbandonedJob:
    """A job that used all its attempts: what it asked for and why it last failed."""

    authorization: str
    uri: str
    attempts: int
    error: str | None


@dataclass(frozen=True, slots=True)
class _Auth:
    id: int
    key: str
    status: str
    subscription: str | None


def _utc(value: TimeLike) -> datetime:
    when = to_datetime(value)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def adopt_authorizations(store: Store, utility: str, resource_url: str) -> int:
    """Give grants stored by older versions (keyed by their URL, no utility) this
    utility's identity: those whose resourceURI lies under ``resource_url`` are re-keyed
    ``{utility}/Subscription/{id}``; one whose identity is already taken (the customer
    connected again) is merged into it — its usage points and jobs move over, the older
    token goes. Returns how many were adopted. Idempotent; runs before every sync and when
    the web app starts, so no stored account is orphaned by an upgrade."""
    a, up, j = authorizations, usage_points, ingest_jobs
    base = resource_url.rstrip("/") + "/"
    legacy = select(a.c.id).where(a.c.kind == "access", a.c.utility.is_(None)).limit(1)
    with store.connect() as conn:  # the usual case: nothing to adopt, no write lock taken
        if conn.execute(legacy).first() is None:
            return 0

    def write(conn: Connection) -> int:
        rows = conn.execute(
            select(a.c.id, a.c.resource_uri, a.c.updated_at)
            .where(a.c.kind == "access", a.c.utility.is_(None))
            .order_by(a.c.updated_at.desc(), a.c.id.desc())
        ).all()
        adopted = 0
        for auth_id, uri, _updated in rows:
            sub = subscription_of(uri)
            if not uri or not str(uri).startswith(base) or sub is None:
                continue
            key = authorization_key(utility, sub)
            taken = conn.execute(select(a.c.id).where(a.c.key == key)).scalar()
            if taken is None:
                conn.execute(
                    update(a)
                    .where(a.c.id == auth_id)
                    .values(key=key, utility=utility, subscription=sub)
                )
            else:
                log.warning("merging a second authorization of subscription %s into %s", sub, key)
                conn.execute(update(up).where(up.c.authorization_id == auth_id).values(
                    authorization_id=taken))  # fmt: skip
                conn.execute(update(j).where(j.c.authorization_id == auth_id).values(
                    authorization_id=taken))  # fmt: skip
                conn.execute(delete(a).where(a.c.id == auth_id))
            adopted += 1
        return adopted

    return store.transaction(write)


def active_subscriptions(store: Store, utility: str) -> dict[str, tuple[int, str]]:
    """Subscription id -> (authorization id, token store key) of the active customer grants
    of ``utility``: how a notified subscription finds its token (R42)."""
    a = authorizations
    with store.connect() as conn:
        rows = conn.execute(
            select(a.c.id, a.c.key, a.c.subscription).where(
                a.c.kind == "access", a.c.status == "active", a.c.utility == utility
            )
        ).all()
    return {str(sub): (int(i), str(k)) for i, k, sub in rows if sub}


def _authorizations(store: Store, client: Client, wanted: Iterable[str] | None) -> list[_Auth]:
    """Customer grants of the client's utility (its profile, DESIGN 3.7)."""
    utility = client.profile.name
    adopt_authorizations(store, utility, client.profile.resource_url)
    a = authorizations
    with store.connect() as conn:
        rows = conn.execute(
            select(a.c.id, a.c.key, a.c.status, a.c.subscription)
            .where(a.c.kind == "access", a.c.utility == utility)
            .order_by(a.c.id)
        ).all()
    found = [
        _Auth(int(i), str(k), str(s), None if sub is None else str(sub)) for i, k, s, sub in rows
    ]
    if wanted is None:
        return found
    keys = set(wanted)
    missing = keys - {f.key for f in found}
    if missing:
        raise ConfigurationError(f"no stored authorization {sorted(missing)[0]!r} for this utility")
    return [f for f in found if f.key in keys]


def _unfinished(store: Store, auths: list[_Auth]) -> list[Job]:
    return due_jobs(store, authorization_ids=[a.id for a in auths], max_attempts=None)


def _bound(text: str) -> int:
    """A ``published-min/max`` value as written by :func:`_uri` (either format)."""
    if text.isdigit():
        return int(text)
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def _abandoned_windows(store: Store, auth: _Auth) -> dict[str, tuple[int, int]]:
    """URI -> window of the jobs whose window was last given up on (not since fetched)."""
    j = ingest_jobs
    given_up = select(j.c.resource_uri).where(
        j.c.state == "abandoned", j.c.authorization_id == auth.id
    )
    latest: dict[str, str] = {}
    with store.connect() as conn:
        for uri, state in conn.execute(
            select(j.c.resource_uri, j.c.state)
            .where(j.c.authorization_id == auth.id, j.c.resource_uri.in_(given_up))
            .order_by(j.c.id)
        ):
            latest[str(uri)] = str(state)
    windows: dict[str, tuple[int, int]] = {}
    for uri, state in latest.items():
        query = parse_qs(urlsplit(uri).query)
        try:
            lo, hi = (_bound(query[k][0]) for k in ("published-min", "published-max"))
        except (KeyError, ValueError):
            continue  # not a window this module planned
        if state == "abandoned":
            windows[uri] = (lo, hi)
    return windows


def _coverage(store: Store, namespace: str, auth: _Auth) -> dict[str, tuple[int, int, int]]:
    """Per usage point key: (first start, earliest last end, latest last end) of its series."""
    r, up, mr = readings, usage_points, meter_readings
    per_series = (
        select(
            up.c.key.label("up_key"),
            func.min(r.c.start).label("first"),
            func.max(r.c.start + r.c.duration).label("last"),
        )
        .select_from(
            r.join(mr, mr.c.id == r.c.meter_reading_id).join(up, up.c.id == mr.c.usage_point_id)
        )
        .where(up.c.namespace == namespace, up.c.authorization_id == auth.id)
        .group_by(up.c.key, mr.c.id)
        .subquery()
    )
    query = select(
        per_series.c.up_key,
        func.min(per_series.c.first),
        func.min(per_series.c.last),
        func.max(per_series.c.last),
    ).group_by(per_series.c.up_key)
    with store.connect() as conn:
        return {str(k): (int(a), int(b), int(c)) for k, a, b, c in conn.execute(query)}


def _holes(store: Store, namespace: str, auth: _Auth) -> dict[str, list[tuple[int, int]]]:
    """Per usage point key: ``[end of a reading, start of the next)`` wherever they differ."""
    r, up, mr = readings, usage_points, meter_readings
    nxt = func.lead(r.c.start).over(partition_by=r.c.meter_reading_id, order_by=r.c.start)
    inner = (
        select(
            up.c.key.label("up_key"),
            (r.c.start + r.c.duration).label("end"),
            nxt.label("next_start"),
        )
        .select_from(
            r.join(mr, mr.c.id == r.c.meter_reading_id).join(up, up.c.id == mr.c.usage_point_id)
        )
        .where(up.c.namespace == namespace, up.c.authorization_id == auth.id)
        .subquery()
    )
    query = (
        select(inner.c.up_key, inner.c.end, inner.c.next_start)
        .where(inner.c.next_start > inner.c.end)
        .order_by(inner.c.up_key, inner.c.end)
    )
    holes: dict[str, list[tuple[int, int]]] = {}
    with store.connect() as conn:
        for key, lo, hi in conn.execute(query):
            holes.setdefault(str(key), []).append((int(lo), int(hi)))
    return {k: _merge(v) for k, v in holes.items()}


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping holes of several series of one usage point become one window."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _without_max(uri: str) -> str:
    """A window URI without its ``published-max``: where and from when it asks."""
    parts = urlsplit(uri)
    query = [q for q in parts.query.split("&") if not q.startswith("published-max=")]
    return parts._replace(query="&".join(query)).geturl()


def _plan(
    store: Store,
    client: Client,
    auth: _Auth,
    floor: datetime,
    until: datetime,
    backfill: bool,
    report: SyncReport,
    retry_after: float,
) -> list[Job]:
    """Catch-up, gap, backfill and abandoned-window jobs for one authorization (one
    listing request)."""
    if not auth.subscription:
        raise ConfigurationError("the token names no subscription (resourceURI)")
    listing = client.usage_points(auth.key)
    ids = {series_key(up): up.id for up in listing.usage_points if up.id}
    namespace = client.profile.name
    coverage = _coverage(store, namespace, auth)
    holes = _holes(store, namespace, auth)
    days = client.profile.window_days
    abandoned = _abandoned_windows(store, auth)
    wall = time.time()
    jobs: list[Job] = []
    seen: set[int] = set()

    def add_uri(uri: str, *, once: bool) -> bool:
        job = enqueue(
            store, uri, authorization_id=auth.id, authorization=auth.key, once=once,
            retry_abandoned_after=retry_after, now=wall,
        )  # fmt: skip
        if job is not None and job.id not in seen:  # planned twice: keep the first
            seen.add(job.id)
            jobs.append(job)
            report.retried += job.retry
        return job is not None

    # Open windows by where they start: a catch-up window ends "now", so planning again
    # before it ran (``enqueue_only``, or a job held elsewhere) would add the same window
    # with a later end; the open one is kept instead.
    open_jobs = due_jobs(store, authorization_ids=[auth.id], max_attempts=None)
    open_windows = {_without_max(j.uri): j.uri for j in open_jobs}
    # With nothing stored yet the default floor follows the clock, so a plan an hour later
    # would start every window an hour later: the earliest open window of a usage point
    # is where its history starts until data arrives.
    open_starts: dict[str, int] = {}
    for j in open_jobs:
        path, _, query = j.uri.partition("?")
        try:
            lo_open = _bound(parse_qs(query)["published-min"][0])
        except (KeyError, ValueError):
            continue  # not a window this module planned
        open_starts[path] = min(lo_open, open_starts.get(path, lo_open))

    def add(up_id: str, lo: TimeLike, hi: TimeLike, *, once: bool) -> bool:
        uri = window_uri(client, auth.subscription or "", up_id, lo, hi)
        if not once:
            uri = open_windows.get(_without_max(uri), uri)
        return add_uri(uri, once=once)

    for up_key, up_id in ids.items():
        first, low_mark, _high = coverage.get(up_key, (None, None, None))
        start = floor
        earliest = open_starts.get(client.paths.batch_usage_point(auth.subscription, up_id))
        if low_mark is None and not backfill and earliest is not None:
            start = min(floor, datetime.fromtimestamp(earliest, UTC))
        if low_mark is not None:
            # Without an explicit ``since`` the stored data alone says where to go on:
            # the default floor follows the clock, and a clock set ahead (or a database
            # left alone for longer than the default history) must not skip a stretch.
            mark = datetime.fromtimestamp(low_mark, UTC)
            start = max(floor, mark) if backfill else mark
        # A given-up window before the first stored reading and behind the catch-up (the
        # first window of a usage point, say): no hole or catch-up would ask for it again.
        prefix = client.paths.batch_usage_point(auth.subscription, up_id) + "?"
        for uri, (lo_s, hi_s) in abandoned.items():
            if (
                uri.startswith(prefix)
                and hi_s <= start.timestamp()
                and (first is None or lo_s < first)
            ):
                add_uri(uri, once=True)
        if backfill and first is not None and floor.timestamp() < first:
            for lo, hi in split_windows(floor, datetime.fromtimestamp(first, UTC), days):
                add(up_id, lo, hi, once=True)
        if start < until:
            for lo, hi in split_windows(start, until, days):
                add(up_id, lo, hi, once=False)
        for lo_s, hi_s in holes.get(up_key, []):
            lo_d, hi_d = datetime.fromtimestamp(lo_s, UTC), datetime.fromtimestamp(hi_s, UTC)
            for lo, hi in split_windows(lo_d, hi_d, days):
                if add(up_id, lo, hi, once=True):
                    report.gaps += 1
    return jobs


def _readings_by_point(store: Store, namespace: str) -> dict[str, int]:
    up, r = usage_points, readings
    query = (
        select(up.c.key, func.count())
        .select_from(r.join(up, up.c.id == r.c.usage_point_id))
        .where(up.c.namespace == namespace)
        .group_by(up.c.key)
    )
    with store.connect() as conn:
        return {str(k): int(n) for k, n in conn.execute(query)}


class _Runner:
    """Runs jobs, retrying failures; an authorization the custodian refuses stops its jobs."""

    def __init__(
        self,
        store: Store,
        client: Client,
        report: SyncReport,
        progress: Progress | None,
        max_attempts: int,
        retry_delay: float,
        sleep: Callable[[float], None],
        clock: Callable[[], float] = time.time,
        lease_s: float = LEASE_SECONDS,
    ) -> None:
        self.store, self.client, self.report = store, client, report
        self.clock, self.lease_s = clock, lease_s
        self.engine = JobRunner.for_client(store, client, lease_s=lease_s, clock=clock)
        #: Jobs another process held when this run came to them: id -> URI.
        self.held: dict[int, str] = {}
        #: Every job this run was given: only these can be left unfinished by it (another
        #: process may be creating and running jobs of its own meanwhile).
        self.seen: set[int] = set()
        self.progress = progress
        self.max_attempts, self.retry_delay, self.sleep = max_attempts, retry_delay, sleep
        self.done = 0
        self.total = 0
        self.broken: set[int] = set()
        self.retry_after: float | None = None  # of the last failure, when the custodian said
        #: Set when the client would not send (its circuit breaker is open, R59, or a
        #: request quota is used up, R58): the rest of the run's jobs wait, unattempted,
        #: for a later run.
        self.paused: RequestDeferred | None = None

    def run(self, jobs: list[Job]) -> None:
        attempts = {job.id: job.attempts for job in jobs}
        self.seen.update(attempts)
        unique = list({j.id: j for j in jobs}.values())
        for job in unique:  # out of attempts already (a crash during the last one)
            if attempts[job.id] >= self.max_attempts and not self._abandon(
                job, attempts[job.id], job.error
            ):
                self.held[job.id] = job.uri  # its last attempt is running elsewhere
        queue = [j for j in unique if attempts[j.id] < self.max_attempts]
        self.total += len(queue)
        self._tick("")
        round_, wait = 0, 0.0
        while queue and self.paused is None:
            if round_:
                # A relative sleep: time.sleep runs on the monotonic clock, so a wall
                # clock set back or forward during the run changes nothing here.
                self.sleep(wait)
            retry: list[Job] = []
            wait = 0.0
            for job in queue:
                if job.authorization_id in self.broken:
                    continue
                if not self._claim(job):
                    self.done += 1
                    self._tick(job.uri)
                    continue
                attempts[job.id] += 1
                failure = self._one(job)
                if self.paused is not None:
                    break
                delay = None if failure is None else self._delay(round_)
                if failure is not None and job.authorization_id in self.broken:
                    pass  # left failed: the next run retries it once re-authorized
                elif failure is not None and attempts[job.id] >= self.max_attempts:
                    self._abandon(job, attempts[job.id], failure)
                elif failure is not None and delay is not None:
                    retry.append(job)
                    wait = max(wait, delay)
                    continue
                self.done += 1  # succeeded, given up on, or deferred to a later run
                self._tick(job.uri)
            queue, round_ = retry, round_ + 1

    def _delay(self, round_: int) -> float | None:
        """Seconds before the next attempt; ``None``: not in this run (R57)."""
        after = self.retry_after
        if after is not None:  # the custodian said when; past the cap, a later run
            return after if after <= MAX_RETRY_DELAY else None
        return min(self.retry_delay * 2.0**round_, MAX_RETRY_DELAY)

    def _tick(self, what: str) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total, what)

    def _abandon(self, job: Job, attempts: int, error: str | None) -> bool:
        """Give the job up; False (nothing changed) when another process holds it."""
        if not abandon(self.store, job.id, now=self.clock(), lease_s=self.lease_s):
            return False
        given_up = AbandonedJob(job.authorization or "", job.uri, attempts, error)
        (self.report.still_abandoned if job.retry else self.report.abandoned).append(given_up)
        return True

    def _claim(self, job: Job) -> bool:
        """Take the job's lease (counting the attempt); False: another process runs it."""
        if self.engine.claim(job):
            self.held.pop(job.id, None)
            return True
        self.held[job.id] = job.uri
        return False

    def _one(self, job: Job) -> str | None:
        """One attempt of a claimed job (the engine's steps): ``None`` when it is done,
        else the error (recorded on the job, its lease released)."""
        self.report.jobs_run += 1
        self.retry_after = None
        outcome = self.engine.attempt(self.client, job)  # re-raises what is no job failure
        if outcome.deferred is not None:
            self.paused = outcome.deferred
            self.report.errors.append(f"{type(outcome.deferred).__name__}: {outcome.deferred}")
            return str(outcome.deferred)
        if outcome.error is None:
            return None
        self.report.jobs_failed += 1
        self.report.errors.append(outcome.error)
        self.retry_after = outcome.retry_after
        if outcome.refused and job.authorization_id is not None:
            self.broken.add(job.authorization_id)
            self.report.skipped[job.authorization or ""] = outcome.error
        return outcome.error


def sync(
    store: Store,
    client: Client,
    *,
    authorizations: Iterable[str] | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    progress: Progress | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    retry_delay: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    retry_failed: bool = False,
    retry_abandoned_after: float = RETRY_ABANDONED_AFTER,
    lease_seconds: float = LEASE_SECONDS,
    clock: Callable[[], float] = time.time,
    enqueue_only: bool = False,
) -> SyncReport:
    """Bring the database up to date for the stored authorizations of ``client``'s custodian.

    ``client`` must use a :class:`~greenbutton.storage.DatabaseTokenStore` over ``store`` (or
    another store holding the same keys). ``authorizations`` limits the run to those keys;
    ``since`` is where history starts when nothing is stored (an explicit ``since`` before
    the stored data also backfills); ``until`` defaults to now. ``retry_failed`` re-queues
    the abandoned jobs of those authorizations first; otherwise an abandoned window whose
    data is still missing is asked for again once per ``retry_abandoned_after`` seconds.
    Each attempt holds its job's lease for ``lease_seconds`` on the wall clock ``clock``
    (see :func:`~greenbutton.storage.claim_job`); jobs other processes hold are skipped
    and listed in ``elsewhere``.

    With ``enqueue_only`` the jobs are planned and committed but not run (DESIGN 3.7):
    ``planned`` counts the open jobs of these authorizations, for the web app's worker,
    ``greenbutton worker`` or a later sync to run.

    Raises :class:`StorageError` when the database fails (not a job failure: retrying the
    job would not help).
    """
    # The wall clock only bounds the newest window; where windows start comes from the
    # stored readings, so a clock set wrong cannot make a run skip data (b9).
    now = _utc(until) if until is not None else datetime.fromtimestamp(time.time(), UTC)
    floor = _utc(since) if since is not None else now - timedelta(days=DEFAULT_HISTORY_DAYS)
    namespace = client.profile.name
    report = SyncReport()
    auths = _authorizations(store, client, authorizations)
    before = _readings_by_point(store, namespace)
    runner = _Runner(
        store, client, report, progress, max_attempts, retry_delay, sleep, clock, lease_seconds
    )
    if retry_failed:
        report.requeued = requeue_abandoned(store, [a.id for a in auths])

    left = _unfinished(store, auths)
    report.resumed = len(left)
    if not enqueue_only:
        runner.run(left)  # first, so the high-water marks include what they add

    planned: list[Job] = []
    for auth in auths:
        if auth.status != "active":
            report.skipped[auth.key] = f"the authorization is {auth.status}: authorize again"
            continue
        if auth.id in runner.broken:
            continue
        try:
            planned.extend(
                _plan(
                    store,
                    client,
                    auth,
                    floor,
                    now,
                    since is not None,
                    report,
                    retry_abandoned_after,
                )  # fmt: skip
            )
        except StorageError:
            raise
        except GreenButtonError as exc:
            report.skipped[auth.key] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    if enqueue_only:
        report.planned = len({j.id for j in [*left, *planned]})
        return report
    runner.run(planned)

    after = _readings_by_point(store, namespace)
    report.readings = {k: n - before.get(k, 0) for k, n in sorted(after.items())}
    report.unfinished = [
        j.uri for j in _unfinished(store, auths) if j.id in runner.seen and j.id not in runner.held
    ]
    report.elsewhere = list(runner.held.values())
    return report


# --- what is stored -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeriesCoverage:
    """One meter reading: how many readings, from the first start to the last end."""

    meter_reading: str
    readings: int
    first: int | None
    last: int | None
    interval: int | None


@dataclass(frozen=True, slots=True)
class UsagePointSummary:
    namespace: str
    key: str
    title: str | None
    series: tuple[SeriesCoverage, ...]

    @property
    def readings(self) -> int:
        return sum(s.readings for s in self.series)


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """A stored authorization (``key`` ``None``: readings ingested from files) and its data.

    Read without decrypting anything, so listing needs no key.
    """

    key: str | None
    status: str | None
    subscription: str | None
    updated_at: float | None
    usage_points: tuple[UsagePointSummary, ...]
    pending_jobs: int = 0
    failed_jobs: int = 0  # failed at least once, attempts left: the next sync retries them
    abandoned: tuple[AbandonedJob, ...] = ()  # out of attempts; ``sync --retry-failed``

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def accounts(store: Store) -> list[AccountSummary]:
    """Stored authorizations with their usage points, reading counts and coverage."""
    a, up, mr, r, j = authorizations, usage_points, meter_readings, readings, ingest_jobs
    with store.connect() as conn:
        auth_rows = conn.execute(
            select(a.c.id, a.c.key, a.c.status, a.c.resource_uri, a.c.updated_at)
            .where(a.c.kind == "access")
            .order_by(a.c.key)
        ).all()
        stats = {
            int(m): (int(n), int(lo), int(hi))
            for m, n, lo, hi in conn.execute(
                select(
                    r.c.meter_reading_id,
                    func.count(),
                    func.min(r.c.start),
                    func.max(r.c.start + r.c.duration),
                ).group_by(r.c.meter_reading_id)  # fmt: skip
            )
        }
        series = conn.execute(
            select(
                up.c.id,
                up.c.authorization_id,
                up.c.namespace,
                up.c.key,
                up.c.title,
                mr.c.id.label("mr_id"),
                mr.c.key.label("mr_key"),
                mr.c.interval_length,
            )  # fmt: skip
            .select_from(up.outerjoin(mr, mr.c.usage_point_id == up.c.id))
            .order_by(up.c.namespace, up.c.key, mr.c.key)
        ).all()
        jobs = {
            (int(aid), str(state)): int(n)
            for aid, state, n in conn.execute(
                select(j.c.authorization_id, j.c.state, func.count())
                .where(and_(j.c.authorization_id.is_not(None), j.c.state != "done"))
                .group_by(j.c.authorization_id, j.c.state)
            )
        }
        given_up: dict[int, list[AbandonedJob]] = {}
        for aid, key, uri, n, error in conn.execute(
            select(j.c.authorization_id, a.c.key, j.c.resource_uri, j.c.attempts, j.c.error)
            .select_from(j.join(a, a.c.id == j.c.authorization_id))
            .where(j.c.state == "abandoned")
            .order_by(j.c.id)
        ):
            job = AbandonedJob(str(key), str(uri), int(n), None if error is None else str(error))
            given_up.setdefault(int(aid), []).append(job)
    points: dict[int | None, dict[int, UsagePointSummary]] = {}
    for row in series:
        owner = points.setdefault(row.authorization_id, {})
        point = owner.get(row.id) or UsagePointSummary(row.namespace, row.key, row.title, ())
        if row.mr_id is not None:
            n, lo, hi = stats.get(int(row.mr_id), (0, None, None))
            cov = SeriesCoverage(row.mr_key, n, lo, hi, row.interval_length)
            point = UsagePointSummary(point.namespace, point.key, point.title, (*point.series, cov))
        owner[row.id] = point
    out = [
        AccountSummary(
            key=str(key),
            status=str(status),
            subscription=subscription_of(uri),
            updated_at=float(updated),
            usage_points=tuple(points.pop(int(aid), {}).values()),
            pending_jobs=jobs.get((int(aid), "pending"), 0) + jobs.get((int(aid), "running"), 0),
            failed_jobs=jobs.get((int(aid), "failed"), 0),
            abandoned=tuple(given_up.get(int(aid), ())),
        )  # fmt: skip
        for aid, key, status, uri, updated in auth_rows
    ]
    orphans = tuple(p for owner in points.values() for p in owner.values())
    if orphans:
        out.append(AccountSummary(None, None, None, None, orphans))
    return out
