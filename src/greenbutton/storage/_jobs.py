"""The one job engine (DESIGN 3.7): every fetch of data is a job with one set of rules.

A job is one resource URI to GET (a window ``sync`` planned, a catch-up, a gap or an
abandoned window asked for again, a URI a notification named) and, for a customer's data,
the authorization whose token fetches it. Whoever runs it — ``greenbutton sync``, the web
app's worker, ``greenbutton worker`` — runs it here, the same way:

* **enqueue** (:func:`enqueue`): one open job per (URI, authorization); a URI already done
  is not asked for again when the caller says so (``once``) or when it was done moments
  ago (``fresh_for``: duplicate notifications, R45); an abandoned one comes back only when
  it is due again (``retry_abandoned_after``). On PostgreSQL an advisory lock on the URI
  makes look-up-then-insert atomic across processes, so two planners cannot both add it.
* **claim** (:func:`~greenbutton.storage.claim_job`): a lease in the UPDATE that counts the
  attempt, so no two processes fetch the same job at once.
* **run** (:meth:`JobRunner.run` / :meth:`JobRunner.arun`, the sync and async drivers of
  one set of steps): the URI must lie under the client's resource endpoint (the origin and
  path check; a notified URI was validated and rebuilt at the notification boundary, R41,
  and a job is never failed for not being a notification); fetch the raw body, parse it,
  ingest it with the profile's cost scale and the payload's SHA-256, marking the job done
  in the same transaction (R62). An empty document is an empty window: done, nothing new.
  A Bulk file (every customer's data) is fetched to disk and ingested in batches; a runner
  given ``part_readings`` (``greenbutton worker``) instead splits one larger than that into
  parts by usage point, stored in the database (``storage._bulk``), and each part is then
  a unit of work of its own (:meth:`JobRunner.run_part`) that any worker takes: the job is
  done when its last part is.
* **fail**: the error is recorded on the job (its lease released); a custodian's
  ``Retry-After`` is kept for the caller's backoff; a refused authorization (OAuth error,
  401/403) is flagged so the caller stops that authorization's other jobs; a request the
  client did not send (open circuit R59, used-up quota R58) gives its attempt back. A job
  out of attempts is **abandoned** (:func:`abandon`), its last error kept.

The database failing is not a job failure: :class:`StorageError` propagates to the caller,
since retrying jobs would not help.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlalchemy import ColumnElement, Connection, TextClause, insert, or_, select, text, update

from .._errors import (
    AuthorizationError,
    GreenButtonError,
    JobRejected,
    OAuthError,
    RequestDeferred,
    ServerError,
)
from ..espi._paths import TimeLike, format_time
from ..models import Document
from ..parse import parse
from ._bulk import (
    BulkPart,
    claim_part,
    fail_part,
    finish_part,
    ingest_bulk,
    ingest_part,
    part_count,
    parts_pending,
    scan_bulk,
    split_parts,
)
from ._ingest import (
    LEASE_SECONDS,
    ReconciliationError,
    claim_job,
    dead_holder,
    fail_job,
    ingest_document,
    interrupted,
    lease_free,
    lease_owner,
    released,
    unstart_job,
)
from ._schema import authorizations, ingest_jobs
from ._store import StorageError, Store

if TYPE_CHECKING:
    from ..client import AsyncClient, Client

__all__ = [
    "MAX_ATTEMPTS",
    "OPEN_STATES",
    "RETRY_ABANDONED_AFTER",
    "Job",
    "JobRejected",
    "JobRunner",
    "Outcome",
    "PartOutcome",
    "abandon",
    "due_jobs",
    "enqueue",
    "release_lost",
    "requeue_abandoned",
    "window_uri",
]

#: Attempts a job gets before it is abandoned.
MAX_ATTEMPTS = 5
#: Seconds before an abandoned window whose data is still missing is asked for again.
RETRY_ABANDONED_AFTER = 24 * 3600.0
#: Job states a runner picks up again; ``done`` and ``abandoned`` are terminal.
OPEN_STATES = ("pending", "running", "failed")


@dataclass(frozen=True, slots=True)
class Job:
    """One stored job: GET ``uri`` with the token of ``authorization`` (the token store key;
    ``None`` for the client-credentials token, e.g. Bulk)."""

    id: int
    uri: str
    authorization_id: int | None = None
    authorization: str | None = None
    attempts: int = 0
    error: str | None = None  # of the last failed attempt
    retry: bool = False  # an abandoned window asked for again
    new: bool = False  # created by this enqueue


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt of a claimed job came to."""

    job: Job
    error: str | None = None  # recorded on the job; None when done or deferred
    rows: int = 0  # readings in the document ingested
    retry_after: float | None = None  # the custodian's Retry-After, when it said
    refused: bool = False  # the custodian refused the authorization: stop its jobs
    deferred: RequestDeferred | None = None  # not sent (R58/R59); the attempt given back
    parts: tuple[int, ...] = ()  # a Bulk file split: the ids of its parts, still to ingest

    @property
    def done(self) -> bool:
        """The attempt succeeded: the job is done, or (``parts``) its parts are stored."""
        return self.error is None and self.deferred is None


@dataclass(frozen=True, slots=True)
class PartOutcome:
    """What one attempt of a Bulk job's part came to (:meth:`JobRunner.run_part`)."""

    part: BulkPart
    error: str | None = None  # recorded on the part; None when done
    rows: int = 0  # readings in the part
    job_done: bool = False  # the job's last part: the job is done
    abandoned: bool = False  # out of attempts: the job was given up

    @property
    def done(self) -> bool:
        return self.error is None


def enqueue(
    store: Store,
    uri: str,
    *,
    authorization_id: int | None = None,
    authorization: str | None = None,
    once: bool = False,
    fresh_for: float = 0.0,
    retry_abandoned_after: float = RETRY_ABANDONED_AFTER,
    now: float | None = None,
) -> Job | None:
    """The open job for (``uri``, ``authorization_id``), else a new one; ``None`` when the
    URI need not be asked for: done already and ``once``, done less than ``fresh_for``
    seconds ago, or abandoned and not yet due again.

    A window that asks for new data (a catch-up ending now: not ``once``) always gets a job.
    An abandoned window comes back, as the same row with fresh attempts (so ``accounts``
    shows one entry per window), once ``retry_abandoned_after`` seconds have passed since
    it was given up (or at once when its time lies in the future: a clock set back)."""
    now = time.time() if now is None else now
    j = ingest_jobs
    owner = (
        j.c.authorization_id.is_(None)
        if authorization_id is None
        else j.c.authorization_id == authorization_id
    )

    def write(conn: Connection) -> Job | None:
        if conn.dialect.name == "postgresql":  # SQLite's BEGIN IMMEDIATE already serializes
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:u))"), {"u": uri})
        row = conn.execute(
            select(j.c.id, j.c.state, j.c.attempts, j.c.updated_at, j.c.finished_at, j.c.error)
            .where(j.c.resource_uri == uri, owner)
            .order_by(j.c.id.desc())
            .limit(1)
        ).first()
        found = None
        if row is not None:
            found = Job(
                int(row.id), uri, authorization_id, authorization, int(row.attempts), row.error
            )
        if row is not None and row.state in OPEN_STATES:
            return found
        if row is not None and row.state == "done":
            finished = float(row.finished_at or row.updated_at)
            if once or 0 <= now - finished < fresh_for:
                return None
        if row is not None and row.state == "abandoned" and once:
            updated = float(row.updated_at)
            if not (updated > now or now - updated >= retry_abandoned_after):
                return None
            conn.execute(
                update(j)
                .where(j.c.id == row.id, j.c.state == "abandoned")
                .values(state="pending", attempts=0, updated_at=now)
            )
            return Job(int(row.id), uri, authorization_id, authorization, 0, row.error, retry=True)
        new_id = conn.execute(
            insert(j)
            .values(
                resource_uri=uri,
                authorization_id=authorization_id,
                state="pending",
                attempts=0,
                created_at=now,
                updated_at=now,
            )  # fmt: skip
            .returning(j.c.id)
        ).scalar_one()
        return Job(int(new_id), uri, authorization_id, authorization, new=True)

    return store.transaction(write)


def due_jobs(
    store: Store,
    *,
    resource_url: str | None = None,
    utility: str | None = None,
    authorization_ids: Iterable[int] | None = None,
    max_attempts: int | None = MAX_ATTEMPTS,
    ids: Iterable[int] | None = None,
    leased: bool = True,
    where: ColumnElement[bool] | TextClause | None = None,
    limit: int | None = None,
) -> list[Job]:
    """Open jobs (pending, interrupted while running, failed), oldest first, with the key
    of their authorization. ``resource_url`` keeps those under that endpoint (one
    custodian's); with ``utility`` too, also that utility's customers' jobs stored under
    another host or port (:meth:`JobRunner.resolve`); ``authorization_ids`` those of
    these authorizations; ``max_attempts`` leaves out jobs with no attempt left (``None``
    keeps them: a runner abandons them); ``ids`` only these jobs; ``leased=False`` leaves
    out jobs a live lease holds (another process is running them); ``where`` is a runner's
    own further condition on ``ingest_jobs``; ``limit`` keeps the oldest so many. A Bulk
    job whose parts are stored and not all done is not among them: its work is its parts
    (:func:`~greenbutton.storage.due_parts`), not another fetch."""
    j, a = ingest_jobs, authorizations
    query = (
        select(j.c.id, j.c.resource_uri, j.c.authorization_id, a.c.key, j.c.attempts, j.c.error)
        .outerjoin(a, a.c.id == j.c.authorization_id)
        .where(j.c.state.in_(OPEN_STATES), ~parts_pending())
        .order_by(j.c.id)
    )
    if resource_url is not None:
        base = resource_url.rstrip("/") + "/"
        under = j.c.resource_uri.startswith(base, autoescape=True)
        query = query.where(under if utility is None else or_(under, a.c.utility == utility))
    if authorization_ids is not None:
        query = query.where(j.c.authorization_id.in_(list(authorization_ids)))
    if max_attempts is not None:
        query = query.where(j.c.attempts < max_attempts)
    if ids is not None:
        query = query.where(j.c.id.in_(list(ids)))
    if not leased:
        query = query.where(lease_free(time.time(), LEASE_SECONDS))
    if where is not None:
        query = query.where(where)
    if limit is not None:
        query = query.limit(limit)
    with store.connect() as conn:
        rows = conn.execute(query).all()
    return [
        Job(int(i), str(u), None if aid is None else int(aid), key, int(n), err)
        for i, u, aid, key, n, err in rows
    ]


def abandon(
    store: Store, job_id: int, *, now: float | None = None, lease_s: float = LEASE_SECONDS
) -> bool:
    """Give the job up: terminal, later runs neither retry it nor report it as a failure.
    Not while another live process holds it (its attempt may yet succeed): False then."""
    j = ingest_jobs
    now = time.time() if now is None else now
    free = lease_free(now, lease_s)
    dead = dead_holder(store, job_id)  # a run killed during the job's last attempt
    if dead is not None:
        free = or_(free, j.c.lease_owner == dead)
    stmt = (
        update(j)
        .where(j.c.id == job_id, j.c.state.in_(OPEN_STATES), free)
        .values(released("abandoned", time.time()))
    )
    return int(store.transaction(lambda conn: conn.execute(stmt).rowcount)) == 1


def release_lost(store: Store, job_id: int, owner_suffix: str) -> bool:
    """Free the job's lease when its holder's name ends with ``owner_suffix`` and the
    caller knows that holder is gone (a worker on another machine whose heartbeat stopped:
    :func:`claim_job` can only see dead processes of its own host). The interrupted
    attempt stays counted, as a crash's does; the job is ``failed`` and runs again."""
    j = ingest_jobs
    stmt = (
        update(j)
        .where(
            j.c.id == job_id,
            j.c.state.in_(OPEN_STATES),
            j.c.lease_owner.endswith(owner_suffix, autoescape=True),
        )
        .values(interrupted())
    )
    return int(store.transaction(lambda conn: conn.execute(stmt).rowcount)) == 1


def requeue_abandoned(store: Store, authorization_ids: Iterable[int]) -> int:
    """Abandoned jobs of these authorizations back to pending with fresh attempts (their
    error kept); returns how many."""
    j = ingest_jobs
    stmt = (
        update(j)
        .where(j.c.state == "abandoned", j.c.authorization_id.in_(list(authorization_ids)))
        .values(state="pending", attempts=0, updated_at=time.time())
    )
    return int(store.transaction(lambda conn: conn.execute(stmt).rowcount))


def window_uri(client: Client | AsyncClient, sub: str, up: str, lo: TimeLike, hi: TimeLike) -> str:
    """The job URI of one usage point's data over ``[lo, hi)``: the ESPI sync call with
    ``published-min/max`` in the profile's format (R26). Every planner writes windows with
    this, so the same window planned twice is the same job."""
    fmt = client.profile.published_format
    query = {"published-min": format_time(lo, fmt), "published-max": format_time(hi, fmt)}
    return f"{client.paths.batch_usage_point(sub, up)}?{urlencode(query)}"


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


class JobRunner:
    """Runs one attempt of a job, the same steps for every runner: claim, check, fetch,
    parse, ingest or record the failure. :meth:`run` drives them with a :class:`Client`,
    :meth:`arun` with an :class:`AsyncClient` (database steps in a worker thread)."""

    def __init__(
        self,
        store: Store,
        *,
        resource_url: str,
        namespace: str,
        cost_scale: int,
        owner: str | None = None,
        lease_s: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
        part_readings: int | None = None,
    ) -> None:
        if part_readings is not None and part_readings < 1:
            raise ValueError(f"part_readings must be at least 1, not {part_readings}")
        self.store = store
        self.resource_url = resource_url.rstrip("/")
        self.namespace, self.cost_scale = namespace, cost_scale
        self.owner = owner or lease_owner()
        self.lease_s, self.clock = lease_s, clock
        #: A Bulk file of more readings than this is split into parts of about this many,
        #: for other workers to ingest too; None: this runner ingests it whole.
        self.part_readings = part_readings

    @classmethod
    def for_client(cls, store: Store, client: Client | AsyncClient, **options: object) -> JobRunner:
        """A runner with ``client``'s profile: its endpoint, namespace and money scale."""
        profile = client.profile
        return cls(
            store,
            resource_url=profile.resource_url,
            namespace=profile.name,
            cost_scale=profile.cost_scale,
            **options,  # type: ignore[arg-type]
        )

    # -- the steps ------------------------------------------------------------------------

    def claim(self, job: Job) -> bool:
        """Take the job's lease, counting the attempt; False: done, abandoned or held."""
        return claim_job(self.store, job.id, self.owner, self.lease_s, now=self.clock())

    def resolve(self, job: Job) -> str:
        """The URL to GET for the job: always under the custodian's resource endpoint
        (scheme, host, port, path prefix), so a token never goes elsewhere whatever a row
        says (defence in depth after R41). A customer's job stored when the endpoint was
        reached on another host or port (a restarted simulator; jobs are selected per
        utility, DESIGN 3.7) is the same resource at today's endpoint."""
        base, got = urlsplit(self.resource_url), urlsplit(job.uri)
        if got.username is not None or "@" in got.netloc:
            raise JobRejected("the job's URI has userinfo")
        if not got.path.startswith(base.path.rstrip("/") + "/") or got.fragment:
            raise JobRejected("the job's URI is not under the custodian's resource endpoint")
        if job.authorization_id is not None and job.authorization is None:
            raise JobRejected("the job's authorization is gone")
        if (got.scheme, got.netloc) == (base.scheme, base.netloc):
            return job.uri
        if job.authorization_id is None:  # a notified URI of another origin: never
            raise JobRejected("the job's URI is not the custodian's resource endpoint")
        return urlunsplit((base.scheme, base.netloc, got.path, got.query, ""))

    def store_body(self, job: Job, body: bytes) -> Outcome:
        """Parse and ingest the fetched body; the job is done in the same transaction.

        A Bulk file (every customer's data) is ingested in batches of bounded size
        (:func:`~greenbutton.storage.ingest_bulk`), the job done after the last."""
        name = job.uri.split("?")[0]
        if _is_bulk(job.uri) and body.strip():
            return self.store_file(job, io.BytesIO(body))
        document = parse(body, name=name) if body.strip() else Document()
        result = ingest_document(
            self.store, document, job_id=job.id, namespace=self.namespace,
            authorization_id=job.authorization_id, cost_scale=self.cost_scale,
            payload_hash=hashlib.sha256(body).hexdigest(),
        )  # fmt: skip
        return Outcome(job, rows=result.rows)

    def store_file(self, job: Job, file: IO[bytes]) -> Outcome:
        """:meth:`store_body` for a Bulk body already on disk (:meth:`attempt` downloads
        one there): hashed and ingested in batches, never read whole into memory. With
        :attr:`part_readings`, a file of more readings is split into parts by usage point
        instead, stored for every worker (``Outcome.parts``); the job is done with the last.
        """
        file_sha256, readings, blank = scan_bulk(file)
        if blank:  # 202/204 or whitespace: an empty document, as store_body does
            return self.store_body(job, b"")
        name = job.uri.split("?")[0]
        if self.part_readings is not None and readings > self.part_readings:
            count = part_count(readings, self.part_readings)
            ids = split_parts(
                self.store, job.id, file, file_sha256=file_sha256, parts=count, name=name
            )
            if ids is not None:  # None: not a linked feed, ingested whole below
                return Outcome(job, parts=tuple(ids))
            file.seek(0)
        bulk = ingest_bulk(
            self.store, file, job_id=job.id, namespace=self.namespace,
            authorization_id=job.authorization_id, cost_scale=self.cost_scale,
            payload_hash=file_sha256, name=name,
        )  # fmt: skip
        return Outcome(job, rows=bulk.rows)

    def run_part(self, part_id: int, *, max_attempts: int = MAX_ATTEMPTS) -> PartOutcome | None:
        """Claim a Bulk job's part, ingest it and mark it done (the job too when it was the
        last); ``None`` when it is done already, gone, or a live process holds it. A part
        that fails ``max_attempts`` times gives the job up (abandoned, the part's error
        kept). As for a job, the database failing propagates and an interruption frees
        the part first."""
        part = claim_part(self.store, part_id, self.owner, self.lease_s)
        if part is None:
            return None
        if part.attempts > max_attempts:  # crashes during its every attempt
            message = "interrupted: out of attempts"
            fail_part(self.store, part, message, owner=self.owner, give_up=True)
            return PartOutcome(part, error=message, abandoned=True)
        try:
            got = ingest_part(self.store, part, namespace=self.namespace,
                              cost_scale=self.cost_scale)  # fmt: skip
            job_done = finish_part(self.store, part, rows=got.rows, owner=self.owner)
        except BaseException as exc:
            if isinstance(exc, StorageError) and not isinstance(exc, ReconciliationError):
                raise
            if not isinstance(exc, GreenButtonError):
                with contextlib.suppress(StorageError):
                    fail_part(self.store, part, f"interrupted: {type(exc).__name__}",
                              owner=self.owner)  # fmt: skip
                raise
            message = _one_line(exc)
            give_up = part.attempts >= max_attempts
            fail_part(self.store, part, message, owner=self.owner, give_up=give_up)
            return PartOutcome(part, error=message, abandoned=give_up)
        return PartOutcome(part, rows=got.rows, job_done=job_done)

    def failed(self, job: Job, exc: BaseException) -> Outcome:
        """Record a failed attempt; re-raises what is not the job's failure (the database
        failing, an interruption — the job freed for the next run first)."""
        if isinstance(exc, RequestDeferred):  # nothing was sent: the attempt does not count
            unstart_job(self.store, job.id, owner=self.owner)
            return Outcome(job, deferred=exc)
        if isinstance(exc, StorageError) and not isinstance(exc, ReconciliationError):
            raise exc
        if not isinstance(exc, GreenButtonError):
            with contextlib.suppress(StorageError):
                message = f"interrupted: {type(exc).__name__}"
                fail_job(self.store, job.id, message, owner=self.owner)
            raise exc
        message = _one_line(exc)
        fail_job(self.store, job.id, message, owner=self.owner)
        return Outcome(
            job,
            error=message,
            retry_after=exc.retry_after if isinstance(exc, ServerError) else None,
            refused=isinstance(exc, OAuthError | AuthorizationError),
        )

    # -- the two drivers ------------------------------------------------------------------

    def attempt(self, client: Client, job: Job) -> Outcome:
        """One attempt of a job already claimed (:meth:`claim`), with a sync client."""
        try:
            if _is_bulk(job.uri):  # every customer's data: spooled to disk, not to memory
                with tempfile.TemporaryFile() as file:
                    client.get_into(self.resolve(job), file, job.authorization)
                    return self.store_file(job, file)
            body = client.get(self.resolve(job), job.authorization, raw=True)
            return self.store_body(job, body)
        except BaseException as exc:
            return self.failed(job, exc)

    def run(self, client: Client, job: Job) -> Outcome | None:
        """Claim, then one attempt; ``None`` when another process holds the job."""
        return self.attempt(client, job) if self.claim(job) else None

    async def arun(self, client: AsyncClient, job: Job) -> Outcome | None:
        """One attempt with an async client; the database steps run in a worker thread."""
        import anyio
        from anyio import to_thread

        if not await to_thread.run_sync(self.claim, job):
            return None
        try:
            if _is_bulk(job.uri):
                with tempfile.TemporaryFile() as file:
                    await client.get_into(self.resolve(job), file, job.authorization)
                    return await to_thread.run_sync(self.store_file, job, file)
            body = await client.get(self.resolve(job), job.authorization, raw=True)
            return await to_thread.run_sync(self.store_body, job, body)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):  # a cancelled task still frees its job
                outcome = await to_thread.run_sync(self.failed, job, exc)
            return outcome


def _is_bulk(uri: str) -> bool:
    """A ``Batch/Bulk`` URI: every customer of a bulk grant in one body (gigabytes at PG&E's
    scale), fetched to disk and ingested in batches."""
    return "/Batch/Bulk/" in urlsplit(uri).path
