"""``greenbutton worker``: the job engine's jobs on any number of machines (DESIGN 3.7).

**Why procrastinate.** The jobs outgrow one process before they outgrow PostgreSQL, which
the scale path already requires; procrastinate is a well-kept distributed task queue that
needs nothing else (Celery or Dramatiq would add a Redis or RabbitMQ server to run, secure
and back up). It runs sync and async tasks, has locks and *queueing locks* (at most one
queued task per key: one per engine job here), periodic tasks whose every tick is deferred
once across all workers (a unique row per task, id and tick), and worker heartbeats that
tell a stalled job from a slow one. It does not replace the job engine: the engine's
``ingest_jobs`` table stays the record of what to fetch and what was fetched (leases,
attempts, abandon rules, R62); procrastinate decides *who runs it when*.

* **Dispatch.** Every worker, every :data:`POLL_SECONDS`, defers one ``run_job`` task per
  open engine job of its utility that no live lease holds and no task queues or runs yet
  (whoever planned it: ``sync --enqueue-only``, a notification, the periodic catch-up); the
  queueing lock makes two workers dispatching at once defer it once.
* **Run** (:func:`run_job`, also the SQLite runner's step): one attempt through
  :class:`~greenbutton.storage.JobRunner` (claim, fetch, parse, ingest, or record the
  failure). A failed attempt is deferred again after the custodian's ``Retry-After`` or an
  exponential backoff; a job out of attempts is abandoned, a request the client would not
  send (quota, open circuit) waits as long as it was told.
* **Bulk parts** (issue 10.4): a Bulk file of more than ``part_readings`` readings
  (:data:`~greenbutton.storage.BATCH_READINGS` unless told) is not ingested by the worker
  that fetched it: it is split by usage point into parts stored in the database
  (``storage._bulk``), and the worker defers one ``run_part`` task per part (a queueing
  lock per part; the dispatch defers any part none queues, e.g. after a crash between the
  split and the deferral), so every worker on every machine ingests some; the job is done
  with its last part. A lost worker's part is recovered as its job would be.
* **Periodic**: the catch-up plan (:data:`CATCH_UP_CRON`; ``sync`` planning with
  ``enqueue_only``: new windows, gaps) and the re-request of abandoned windows whose data is
  still missing (:data:`RETRY_ABANDONED_CRON`) are procrastinate periodic tasks, so each
  tick runs on one machine, never twice. Daily: the custodian publishes daily, and each
  plan costs one listing request per authorization against quotas like PG&E's 20,000/day.
* **A lost worker** (``kill -9``, a machine gone): its heartbeat stops; after
  :data:`STALLED_SECONDS` another worker frees the engine lease the lost one held (its lease
  owner names the task: ``host:pid:q<task id>``) and retries the task, so the job runs
  again at once instead of when its 10-minute lease ends. Ingest is idempotent (R60), so a
  window half-fetched by the lost worker converges on the clean run's rows.
* **Stopping** (SIGINT/SIGTERM): no new job is taken; running ones finish.
* ``--until-idle``: returns once nothing is due: no job to dispatch, none running anywhere
  (a lost worker's job is waited for and recovered), none retried within
  :data:`~greenbutton.storage._sync.MAX_RETRY_DELAY` seconds.

procrastinate's own tables are created by :func:`ensure_queue_schema`, which the worker runs
at start (under an advisory lock, once per database), not by our migrations: the queue is
the optional ``workers`` extra, and its schema follows procrastinate's releases.

On SQLite there is one machine: :class:`Worker` runs the same :func:`run_job` and
:func:`run_part` in an in-process loop (threads for ``concurrency``) and the two plans at
the same times of day, no procrastinate.

``GREENBUTTON_HOST_ID`` (:func:`host_id`) names this machine in lease owners and in the
shared rate limit's records, so a test can play two machines on one.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from .._errors import ConfigurationError
from ._bulk import BATCH_READINGS, due_parts, release_lost_part
from ._jobs import (
    MAX_ATTEMPTS,
    RETRY_ABANDONED_AFTER,
    JobRunner,
    Outcome,
    PartOutcome,
    abandon,
    due_jobs,
    release_lost,
)
from ._store import Store
from ._sync import MAX_RETRY_DELAY, SyncReport, adopt_authorizations, sync

if TYPE_CHECKING:
    import procrastinate

    from ..client import Client

__all__ = [
    "CATCH_UP_CRON",
    "HOST_ID_ENV",
    "RETRY_ABANDONED_CRON",
    "Worker",
    "ensure_queue_schema",
    "host_id",
    "plan_jobs",
    "run_job",
    "run_part",
]

log = logging.getLogger("greenbutton.worker")

#: Overrides the host name in lease owners and shared-limit records (DESIGN 3.7).
HOST_ID_ENV = "GREENBUTTON_HOST_ID"
#: The catch-up plan: daily at 00:05 UTC (hour, minute).
CATCH_UP_AT = (0, 5)
#: Abandoned windows still missing their data, asked for again: daily at 12:05 UTC.
RETRY_ABANDONED_AT = (12, 5)
#: The same times for procrastinate's scheduler.
CATCH_UP_CRON = f"{CATCH_UP_AT[1]} {CATCH_UP_AT[0]} * * *"
RETRY_ABANDONED_CRON = f"{RETRY_ABANDONED_AT[1]} {RETRY_ABANDONED_AT[0]} * * *"
#: How often a worker dispatches jobs, recovers lost ones and checks for idleness.
POLL_SECONDS = 1.0
#: procrastinate worker heartbeat, and how stale one must be for its jobs to be lost.
HEARTBEAT_SECONDS = 3.0
STALLED_SECONDS = 15.0
#: How long a job whose authorization the custodian refused waits before trying again.
REFUSED_RETRY_SECONDS = 3600.0
#: First backoff after a failed attempt; doubled per attempt, capped at MAX_RETRY_DELAY.
RETRY_BASE_SECONDS = 2.0

#: Jobs one dispatch defers at most (every POLL_SECONDS): far more than a utility's rate
#: lets run in that time, and a bounded query however long the backlog.
DISPATCH_BATCH = 500

RUN_TASK = "greenbutton.run_job"
PART_TASK = "greenbutton.run_part"
CATCH_UP_TASK = "greenbutton.catch_up"
RETRY_ABANDONED_TASK = "greenbutton.retry_abandoned"
_SCHEMA_LOCK = 0x6772_6E71  # "grnq": one process creating procrastinate's tables


def host_id(env: Mapping[str, str] = os.environ) -> str:
    """``GREENBUTTON_HOST_ID``, else the host name: this machine in lease owners."""
    return env.get(HOST_ID_ENV) or socket.gethostname()


def _next_daily(at: tuple[int, int], now: float) -> float:
    """The next time after ``now`` that the UTC clock shows ``at`` (hour, minute)."""
    tick = datetime.fromtimestamp(now, UTC).replace(hour=at[0], minute=at[1], second=0,
                                                    microsecond=0)  # fmt: skip
    return (tick if tick.timestamp() > now else tick + timedelta(days=1)).timestamp()


def _owner(tag: str, env: Mapping[str, str] = os.environ) -> str:
    """A lease owner in :func:`~greenbutton.storage.lease_owner`'s ``host:pid:tag`` form."""
    return f"{host_id(env)}:{os.getpid()}:{tag}"


def run_job(
    store: Store,
    client: Client,
    job_id: int,
    *,
    owner: str,
    max_attempts: int = MAX_ATTEMPTS,
    part_readings: int | None = None,
) -> tuple[Outcome | None, float | None]:
    """One attempt of engine job ``job_id`` with the engine's rules: its outcome (None when
    no attempt was made: done already, abandoned, gone, held by a live process, which
    finishes it, or split into parts still pending), and the seconds after which to try it
    again (None: not again). With ``part_readings`` a larger Bulk file is split into parts
    (``Outcome.parts``: run each with :func:`run_part`). Raises only what is not the job's
    failure (the database)."""
    found = due_jobs(store, ids=[job_id], max_attempts=None)
    if not found:
        return None, None
    job = found[0]
    if job.attempts >= max_attempts:  # a crash during its last attempt
        abandon(store, job.id)
        return None, None
    runner = JobRunner.for_client(store, client, owner=owner, part_readings=part_readings)
    outcome = runner.run(client, job)
    if outcome is None or outcome.done:
        return outcome, None
    if outcome.deferred is not None:  # not sent: wait as told, the attempt given back
        log.warning("job %d deferred %.0f s: %s", job.id, outcome.deferred.retry_after,
                    type(outcome.deferred).__name__)  # fmt: skip
        return outcome, max(outcome.deferred.retry_after, 0.0)
    log.warning("job %d failed: %s", job.id, (outcome.error or "").split(":")[0])
    if job.attempts + 1 >= max_attempts:
        abandon(store, job.id)
        return outcome, None
    if outcome.refused:
        return outcome, REFUSED_RETRY_SECONDS
    if outcome.retry_after is not None:
        return outcome, max(outcome.retry_after, 0.0)
    return outcome, min(RETRY_BASE_SECONDS * 2.0**job.attempts, MAX_RETRY_DELAY)


def run_part(
    store: Store, client: Client, part_id: int, *, owner: str, max_attempts: int = MAX_ATTEMPTS
) -> tuple[PartOutcome | None, float | None]:
    """One attempt of a Bulk job's part (:meth:`JobRunner.run_part`, ``client`` for its
    profile's namespace and money scale only: nothing is fetched): its outcome (None when
    done already, gone, or held by a live process) and the seconds after which to try it
    again (None: not again, done or the job given up)."""
    runner = JobRunner.for_client(store, client, owner=owner)
    outcome = runner.run_part(part_id, max_attempts=max_attempts)
    if outcome is None or outcome.done or outcome.abandoned:
        if outcome is not None and outcome.abandoned:
            log.warning("bulk job %d given up: part %d failed %d times", outcome.part.job_id,
                        outcome.part.part, outcome.part.attempts)  # fmt: skip
        return outcome, None
    log.warning("bulk part %d of job %d failed: %s", outcome.part.part, outcome.part.job_id,
                (outcome.error or "").split(":")[0])  # fmt: skip
    return outcome, min(RETRY_BASE_SECONDS * 2.0 ** (outcome.part.attempts - 1), MAX_RETRY_DELAY)


def plan_jobs(store: Store, client: Client, *, retry_abandoned: bool) -> SyncReport:
    """The periodic plan: ``sync``'s planning with ``enqueue_only`` (catch-up windows, gaps);
    abandoned windows still missing data are asked for again only with ``retry_abandoned``
    (the daily task), so the two periodic tasks do not both re-request them."""
    after = RETRY_ABANDONED_AFTER if retry_abandoned else math.inf
    return sync(store, client, enqueue_only=True, retry_abandoned_after=after)


def ensure_queue_schema(store: Store) -> bool:
    """Create procrastinate's tables in ``store``'s PostgreSQL database (its search path)
    unless they exist; True when created. One process at a time (advisory lock)."""
    from procrastinate.schema import SchemaManager

    def write(conn: Any) -> bool:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
        if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
            return False
        # Many statements (functions with $$ bodies): the driver's simple query, no params.
        conn.connection.driver_connection.execute(SchemaManager.get_schema())
        return True

    created = bool(store.transaction(write))
    if created:
        log.info("created the job queue's tables (procrastinate)")
    return created


def _conninfo(store: Store) -> str:
    """The libpq URL of ``store``'s database (procrastinate speaks psycopg directly)."""
    return store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


_LOCK_PREFIX = "greenbutton-job-"


def _queueing_lock(job_id: int) -> str:
    return f"{_LOCK_PREFIX}{job_id}"


_PART_LOCK_PREFIX = "greenbutton-part-"


def _part_lock(part_id: int) -> str:
    return f"{_PART_LOCK_PREFIX}{part_id}"


class Worker:
    """Runs the engine's jobs of ``client``'s utility from ``store`` until stopped
    (:meth:`stop`, thread- and signal-safe) or, with ``until_idle``, until nothing is due.
    On PostgreSQL through procrastinate, on SQLite in this process (module docstring)."""

    def __init__(
        self,
        store: Store,
        client: Client,
        *,
        concurrency: int = 1,
        env: Mapping[str, str] = os.environ,
        poll_s: float = POLL_SECONDS,
        heartbeat_s: float = HEARTBEAT_SECONDS,
        stalled_s: float = STALLED_SECONDS,
        part_readings: int = BATCH_READINGS,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        if part_readings < 1:
            raise ValueError(f"part_readings must be at least 1, not {part_readings}")
        #: A Bulk file of more readings is split into parts of about this many.
        self.part_readings = part_readings
        self.store, self.client, self.concurrency = store, client, concurrency
        self.env, self.poll_s = env, poll_s
        self.heartbeat_s, self.stalled_s = heartbeat_s, stalled_s
        profile = client.profile
        self.utility, self.resource_url = profile.name, profile.resource_url
        self.queue = f"greenbutton.{self.utility}"
        self._stop = threading.Event()
        self._wake: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self._run_task: Any = None  # the procrastinate tasks, once _app made them
        self._part_task: Any = None
        #: Attempts this worker made, by how they ended: ``done``, ``failed``, ``deferred``;
        #: ``parts``: Bulk parts it ingested (``failed`` counts parts that failed too).
        self.tally = {"done": 0, "failed": 0, "deferred": 0, "parts": 0}
        self._tally_lock = threading.Lock()

    def _tally(self, outcome: Outcome | PartOutcome | None, retry_in: float | None) -> float | None:
        if isinstance(outcome, PartOutcome):
            with self._tally_lock:
                self.tally["parts" if outcome.done else "failed"] += 1
        elif outcome is not None:
            kind = "done" if outcome.done else "deferred" if outcome.deferred else "failed"
            with self._tally_lock:
                self.tally[kind] += 1
        return retry_in

    def stop(self) -> None:
        """Take no new job; the running ones finish, then :meth:`run` returns."""
        self._stop.set()
        if self._wake is not None:
            loop, event = self._wake
            loop.call_soon_threadsafe(event.set)

    def run(self, *, until_idle: bool = False) -> None:
        if self.store.dialect == "postgresql":
            try:
                import procrastinate  # noqa: F401
            except ImportError:
                raise ConfigurationError(
                    "greenbutton worker on PostgreSQL needs the workers extra: "
                    "pip install 'greenbutton[workers]'"
                ) from None
        adopt_authorizations(self.store, self.utility, self.resource_url)
        if self.store.dialect == "postgresql":
            asyncio.run(self._run_queue(until_idle))
        else:
            self._run_local(until_idle)

    # -- SQLite: the same step in this process ------------------------------------------

    def _due(self) -> list[tuple[str, int]]:
        """Open unleased jobs, then the Bulk parts still to ingest: (kind, id)."""
        jobs = due_jobs(self.store, resource_url=self.resource_url, utility=self.utility,
                        max_attempts=None, leased=False)  # fmt: skip
        parts = due_parts(self.store)
        return [("job", j.id) for j in jobs] + [("part", p.id) for p in parts]

    def _run_local(self, until_idle: bool) -> None:
        owner = _owner(secrets.token_hex(4), self.env)
        not_before: dict[tuple[str, int], float] = {}  # item -> monotonic time of next attempt
        # The periodic plans at procrastinate's times (wall clock, as its cron), not with
        # --until-idle: that runs what is due and stops.
        plans = {} if until_idle else {
            flag: _next_daily(at, time.time())
            for flag, at in ((False, CATCH_UP_AT), (True, RETRY_ABANDONED_AT))
        }  # fmt: skip

        def step(item: tuple[str, int]) -> float | None:
            if self._stop.is_set():
                return None
            kind, key = item
            if kind == "part":
                return self._tally(*run_part(self.store, self.client, key, owner=owner))
            ran = run_job(self.store, self.client, key, owner=owner,
                          part_readings=self.part_readings)  # fmt: skip
            return self._tally(*ran)

        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="gb-worker") as pool:
            while not self._stop.is_set():
                for flag, due in plans.items():
                    if time.time() >= due:
                        plan_jobs(self.store, self.client, retry_abandoned=flag)
                        plans[flag] = _next_daily(
                            RETRY_ABANDONED_AT if flag else CATCH_UP_AT, time.time()
                        )
                now = time.monotonic()
                open_ids = self._due()
                not_before = {i: t for i, t in not_before.items() if i in open_ids}
                ready = [i for i in open_ids if not_before.get(i, 0.0) <= now]
                if ready:
                    for job_id, delay in zip(ready, pool.map(step, ready), strict=True):
                        if delay is None:
                            not_before.pop(job_id, None)
                        else:
                            not_before[job_id] = time.monotonic() + delay
                    continue
                soon = [t - now for t in not_before.values() if t - now <= MAX_RETRY_DELAY]
                if until_idle and not soon:
                    return
                self._stop.wait(min([self.poll_s, *soon]))

    # -- PostgreSQL: procrastinate ------------------------------------------------------

    def _app(self) -> procrastinate.App:
        import anyio
        from procrastinate import App, JobContext, PsycopgConnector
        from procrastinate.exceptions import AlreadyEnqueued

        app = App(connector=PsycopgConnector(conninfo=_conninfo(self.store)))
        store, client, env = self.store, self.client, self.env
        threads = anyio.CapacityLimiter(self.concurrency)

        @app.task(name=PART_TASK, queue=self.queue, pass_context=True)
        async def part(context: JobContext, part_id: int) -> None:
            owner = _owner(f"q{context.job.id}", env)  # names the task: see _recover
            ran = await anyio.to_thread.run_sync(
                partial(run_part, store, client, part_id, owner=owner), limiter=threads
            )
            retry_in = self._tally(*ran)
            if retry_in is not None:
                await self._defer_part(part_id, retry_in)

        @app.task(name=RUN_TASK, queue=self.queue, pass_context=True)
        async def run(context: JobContext, job_id: int) -> None:
            owner = _owner(f"q{context.job.id}", env)  # names the task: see _recover
            ran = await anyio.to_thread.run_sync(
                partial(run_job, store, client, job_id, owner=owner,
                        part_readings=self.part_readings),
                limiter=threads,
            )  # fmt: skip
            if ran[0] is not None and ran[0].parts:  # a Bulk file split: every worker's now
                for part_id in ran[0].parts:
                    await self._defer_part(part_id)
            retry_in = self._tally(*ran)
            if retry_in is not None:
                deferrer = run.configure(
                    queueing_lock=_queueing_lock(job_id),
                    schedule_in={"milliseconds": round(retry_in * 1000)},
                )
                try:
                    await deferrer.defer_async(job_id=job_id)
                except AlreadyEnqueued:
                    pass  # another worker queued it meanwhile

        async def plan(retry_abandoned: bool) -> None:
            report = await anyio.to_thread.run_sync(
                partial(plan_jobs, store, client, retry_abandoned=retry_abandoned)
            )
            log.info("planned %s job(s); %d authorization(s) skipped",
                     report.planned, len(report.skipped))  # fmt: skip

        @app.periodic(cron=CATCH_UP_CRON, periodic_id=self.utility)
        @app.task(name=CATCH_UP_TASK, queue=self.queue,
                  queueing_lock=f"greenbutton-catch-up-{self.utility}")  # fmt: skip
        async def catch_up(timestamp: int) -> None:
            await plan(False)

        @app.periodic(cron=RETRY_ABANDONED_CRON, periodic_id=self.utility)
        @app.task(name=RETRY_ABANDONED_TASK, queue=self.queue,
                  queueing_lock=f"greenbutton-retry-abandoned-{self.utility}")  # fmt: skip
        async def retry_abandoned(timestamp: int) -> None:
            await plan(True)

        self._run_task, self._part_task = run, part
        return app

    async def _defer_part(self, part_id: int, retry_in: float | None = None) -> bool:
        """Queue one ``run_part`` task for the part (at most one: its queueing lock)."""
        from procrastinate.exceptions import AlreadyEnqueued

        options: dict[str, Any] = {"queueing_lock": _part_lock(part_id)}
        if retry_in is not None:
            options["schedule_in"] = {"milliseconds": round(retry_in * 1000)}
        try:
            await self._part_task.configure(**options).defer_async(part_id=part_id)
        except AlreadyEnqueued:
            return False  # another worker queued it meanwhile
        return True

    async def _run_queue(self, until_idle: bool) -> None:
        await asyncio.to_thread(ensure_queue_schema, self.store)
        wake = asyncio.Event()
        self._wake = (asyncio.get_running_loop(), wake)
        if self._stop.is_set():
            return
        app = self._app()
        async with app.open_async():
            worker = asyncio.create_task(
                app.run_worker_async(
                    queues=[self.queue],
                    concurrency=self.concurrency,
                    name=host_id(self.env),
                    install_signal_handlers=False,  # ours: stop() finishes running jobs
                    update_heartbeat_interval=self.heartbeat_s,
                    stalled_worker_timeout=self.stalled_s,
                    fetch_job_polling_interval=self.poll_s,
                    delete_jobs="successful",
                )
            )
            try:
                while not self._stop.is_set() and not worker.done():
                    await self._recover(app)
                    queued = await self._dispatch()
                    if until_idle and not queued and await asyncio.to_thread(self._idle):
                        break
                    wake.clear()
                    try:
                        await asyncio.wait_for(wake.wait(), self.poll_s)
                    except TimeoutError:
                        pass
            finally:
                worker.cancel()  # procrastinate stops gracefully: running jobs finish
                try:
                    await worker
                except asyncio.CancelledError:
                    pass
                self._wake = None

    async def _recover(self, app: procrastinate.App) -> None:
        """Retry the tasks of workers whose heartbeat stopped, first freeing the engine
        leases those tasks held (owner ``...:q<task id>``)."""
        from procrastinate.exceptions import ConnectorException

        stalled = await app.job_manager.get_stalled_jobs(
            queue=self.queue, seconds_since_heartbeat=self.stalled_s
        )
        for task in stalled:
            if task.task_name == RUN_TASK and task.id is not None:
                job_id = int(task.task_kwargs["job_id"])  # type: ignore[arg-type]
                freed = await asyncio.to_thread(release_lost, self.store, job_id, f":q{task.id}")
                log.warning("recovering job %d from a lost worker (lease freed: %s)",
                            job_id, freed)  # fmt: skip
            elif task.task_name == PART_TASK and task.id is not None:
                part_id = int(task.task_kwargs["part_id"])  # type: ignore[arg-type]
                freed = await asyncio.to_thread(
                    release_lost_part, self.store, part_id, f":q{task.id}"
                )
                log.warning("recovering bulk part %d from a lost worker (lease freed: %s)",
                            part_id, freed)  # fmt: skip
            try:
                await app.job_manager.retry_job(task)
            except ConnectorException:
                pass  # another worker recovered it first

    def _undispatched(self) -> list[int]:
        """The oldest :data:`DISPATCH_BATCH` open, unleased engine jobs without a task
        queued or running (a running task may have just failed its attempt and be about to
        defer itself for later: dispatching it now would skip the backoff)."""
        unqueued = text(
            "NOT EXISTS (SELECT 1 FROM procrastinate_jobs p WHERE p.status IN ('todo', 'doing')"
            " AND p.queueing_lock = :prefix || ingest_jobs.id::text)"
        ).bindparams(prefix=_LOCK_PREFIX)
        jobs = due_jobs(self.store, resource_url=self.resource_url, utility=self.utility,
                        max_attempts=None, leased=False, where=unqueued,
                        limit=DISPATCH_BATCH)  # fmt: skip
        return [j.id for j in jobs]

    def _undispatched_parts(self) -> list[int]:
        """Bulk parts still to ingest, unleased, without a task queued or running."""
        with self.store.connect() as conn:
            queued = {
                str(lock)
                for lock in conn.execute(
                    text(
                        "SELECT queueing_lock FROM procrastinate_jobs WHERE status IN"
                        " ('todo', 'doing') AND queueing_lock LIKE :prefix || '%'"
                    ),
                    {"prefix": _PART_LOCK_PREFIX},
                ).scalars()
            }
        parts = due_parts(self.store)
        return [p.id for p in parts if _part_lock(p.id) not in queued][:DISPATCH_BATCH]

    async def _dispatch(self) -> int:
        """Defer a task for each open, unleased engine job and Bulk part none queues yet;
        how many."""
        from procrastinate.exceptions import AlreadyEnqueued

        count = 0
        for part_id in await asyncio.to_thread(self._undispatched_parts):
            count += await self._defer_part(part_id)
        for job_id in await asyncio.to_thread(self._undispatched):
            deferrer = self._run_task.configure(queueing_lock=_queueing_lock(job_id))
            try:
                await deferrer.defer_async(job_id=job_id)
            except AlreadyEnqueued:
                continue
            count += 1
        return count

    def _idle(self) -> bool:
        """Nothing of this queue runs anywhere, and nothing is due within MAX_RETRY_DELAY."""
        query = text(
            "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = :q AND (status = 'doing'"
            " OR (status = 'todo' AND scheduled_at IS NULL)"
            " OR (status = 'todo' AND scheduled_at <= now() + make_interval(secs => :soon)))"
        )
        with self.store.connect() as conn:
            busy = conn.execute(query, {"q": self.queue, "soon": MAX_RETRY_DELAY}).scalar_one()
        return int(busy) == 0
