"""Storage: readings, authorizations and ingest jobs in SQLite or PostgreSQL (DESIGN 2, 7).

::

    store = Store.open()                   # $GREENBUTTON_DATABASE_URL, else SQLite in the data dir
    ingest_file(store, "usage.xml")        # one transaction per resource, idempotent
    rows = list(export_readings(store))    # greenbutton.Reading rows
    tokens = DatabaseTokenStore(store)     # the TokenStore protocol, encrypted at rest
    sync(store, Client(..., token_store=tokens))   # catch-up, gaps, crash-safe jobs

Needs the ``db`` extra (SQLAlchemy, Alembic, psycopg, platformdirs).
"""

from ._ingest import (
    LEASE_SECONDS,
    LEASE_SLACK,
    IngestResult,
    ReconciliationError,
    claim_job,
    create_job,
    export_readings,
    fail_job,
    ingest_document,
    ingest_file,
    lease_owner,
    pending_jobs,
    start_job,
    unstart_job,
)
from ._jobs import (
    MAX_ATTEMPTS,
    RETRY_ABANDONED_AFTER,
    Job,
    JobRejected,
    JobRunner,
    Outcome,
    abandon,
    due_jobs,
    enqueue,
    requeue_abandoned,
    window_uri,
)
from ._local_time import local_time_record, time_zone_of
from ._revocations import (
    REVOCATION_LEASE,
    PendingRevocation,
    cancel_revocation,
    claim_revocation,
    due_revocations,
    pending_revocations_of,
    queue_revocation,
    revocation_done,
    revocation_failed,
)
from ._store import DATABASE_URL_ENV, StorageError, Store, default_data_dir
from ._sync import (
    DEFAULT_HISTORY_DAYS,
    AccountSummary,
    SeriesCoverage,
    SyncReport,
    UsagePointSummary,
    accounts,
    active_subscriptions,
    adopt_authorizations,
    sync,
)
from ._tokens import (
    SECRET_KEY_ENV,
    DatabaseTokenStore,
    SecretKeyError,
    TokenDecryptionError,
    load_fernet,
)

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_HISTORY_DAYS",
    "LEASE_SECONDS",
    "LEASE_SLACK",
    "MAX_ATTEMPTS",
    "RETRY_ABANDONED_AFTER",
    "REVOCATION_LEASE",
    "SECRET_KEY_ENV",
    "AccountSummary",
    "DatabaseTokenStore",
    "IngestResult",
    "Job",
    "JobRejected",
    "JobRunner",
    "Outcome",
    "PendingRevocation",
    "ReconciliationError",
    "SecretKeyError",
    "SeriesCoverage",
    "StorageError",
    "Store",
    "SyncReport",
    "TokenDecryptionError",
    "UsagePointSummary",
    "abandon",
    "accounts",
    "active_subscriptions",
    "adopt_authorizations",
    "cancel_revocation",
    "claim_job",
    "claim_revocation",
    "create_job",
    "default_data_dir",
    "due_jobs",
    "due_revocations",
    "enqueue",
    "export_readings",
    "fail_job",
    "ingest_document",
    "ingest_file",
    "lease_owner",
    "load_fernet",
    "local_time_record",
    "pending_jobs",
    "pending_revocations_of",
    "queue_revocation",
    "requeue_abandoned",
    "revocation_done",
    "revocation_failed",
    "start_job",
    "sync",
    "time_zone_of",
    "unstart_job",
    "window_uri",
]
