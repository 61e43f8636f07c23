"""Storage: readings, authorizations and ingest jobs in SQLite or PostgreSQL (DESIGN 2, 7).

::

    store = Store.open()                   # $GREENBUTTON_DATABASE_URL, else SQLite in the data dir
    ingest_file(store, "usage.xml")        # one transaction per resource, idempotent
    rows = list(export_readings(store))    # greenbutton.Reading rows
    tokens = DatabaseTokenStore(store)     # the TokenStore protocol, encrypted at rest

Needs the ``db`` extra (SQLAlchemy, Alembic, psycopg, platformdirs).
"""

from ._ingest import (
    IngestResult,
    ReconciliationError,
    create_job,
    export_readings,
    fail_job,
    ingest_document,
    ingest_file,
    pending_jobs,
    start_job,
)
from ._store import DATABASE_URL_ENV, StorageError, Store, default_data_dir
from ._tokens import (
    SECRET_KEY_ENV,
    DatabaseTokenStore,
    SecretKeyError,
    TokenDecryptionError,
    load_fernet,
)

__all__ = [
    "DATABASE_URL_ENV",
    "SECRET_KEY_ENV",
    "DatabaseTokenStore",
    "IngestResult",
    "ReconciliationError",
    "SecretKeyError",
    "StorageError",
    "Store",
    "TokenDecryptionError",
    "create_job",
    "default_data_dir",
    "export_readings",
    "fail_job",
    "ingest_document",
    "ingest_file",
    "load_fernet",
    "pending_jobs",
    "start_job",
]
