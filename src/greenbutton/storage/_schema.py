"""The database schema (SQLAlchemy Core), mirrored by the Alembic revisions in ``migrations/``.

Readings keep the XML's raw integers (value, powerOfTenMultiplier, uom code, cost) so that
nothing is rounded on the way in (SECURITY R64); scaled values are computed on export.
The natural key of a reading is (meter reading, start) (R60): it is the primary key, so an
upsert needs no second index and SQLite stores the rows clustered by it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "admin_sessions",
    "admin_users",
    "authorizations",
    "bulk_parts",
    "ingest_jobs",
    "metadata",
    "meter_readings",
    "pending_revocations",
    "readings",
    "shared_limits",
    "usage_points",
    "utilities",
    "web_sessions",
]

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)

#: A data custodian we are registered with; its secrets are Fernet ciphertext (R48).
utilities = Table(
    "utilities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("client_id", Text),
    Column("client_secret_enc", LargeBinary),
    Column("registration_token_enc", LargeBinary),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

#: One grant (or the client-credentials token), keyed as the TokenStore protocol keys it:
#: a customer grant's key is ``{utility}/Subscription/{id}`` (``espi.authorization_key``).
authorizations = Table(
    "authorizations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", Text, nullable=False, unique=True),
    Column("utility_id", Integer, ForeignKey("utilities.id", ondelete="SET NULL")),
    Column("kind", Text, nullable=False),
    Column("token_type", Text, nullable=False),
    Column("access_token_enc", LargeBinary, nullable=False),
    Column("refresh_token_enc", LargeBinary),
    Column("expires_at", Float),
    Column("scope", Text),
    Column("resource_uri", Text),
    Column("authorization_uri", Text),
    Column("customer_resource_uri", Text),
    Column("status", Text, nullable=False, server_default="active"),
    Column("version", Integer, nullable=False, server_default="0"),
    Column("updated_at", Float, nullable=False),
    # The grant's identity (r0005, DESIGN 3.7): the utility (profile name) and the
    # subscription; one authorization per pair, whatever URL the custodian has today.
    Column("utility", Text),
    Column("subscription", Text),
    Index("ix_authorizations_identity", "utility", "subscription", unique=True),
)

#: ``namespace`` separates the same path key served by two custodians ('' for files).
usage_points = Table(
    "usage_points",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("namespace", Text, nullable=False, server_default=""),
    Column("key", Text, nullable=False),
    Column("authorization_id", Integer, ForeignKey("authorizations.id", ondelete="SET NULL")),
    Column("href", Text),
    Column("atom_id", Text),
    Column("title", Text),
    Column("service_kind", Integer),
    Column("local_time", Text),  # JSON: LocalTimeParameters fields + display label (r0002)
    UniqueConstraint("namespace", "key"),
)

#: A MeterReading with its ReadingType's codes (kept raw, named on export).
meter_readings = Table(
    "meter_readings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "usage_point_id",
        Integer,
        ForeignKey("usage_points.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("key", Text, nullable=False),
    Column("href", Text),
    Column("atom_id", Text),
    Column("reading_type_href", Text),
    Column("uom", Integer),
    Column("power_of_ten_multiplier", Integer),
    Column("flow_direction", Integer),
    Column("kind", Integer),
    Column("commodity", Integer),
    Column("interval_length", Integer),
    Column("currency", Integer),
    Column("default_quality", Integer),
    Column("accumulation_behaviour", Integer),
    Column("data_qualifier", Integer),
    Column("time_attribute", Integer),
    Column("tou", Integer),
    Column("phase", Integer),
    Column("consumption_tier", Integer),
    Column("cpp", Integer),
    Column("measuring_period", Integer),
    Column("cost_scale", Integer, nullable=False, server_default="-5"),
    UniqueConstraint("usage_point_id", "key"),
)

#: The readings table of DESIGN 3.3 with raw integers. ``quality`` is the first
#: ReadingQuality code; ``quality_codes`` lists all of them when there are several.
#: On PostgreSQL it is range-partitioned by month on ``start`` (r0006, ``_partitions``).
readings = Table(
    "readings",
    metadata,
    Column(
        "meter_reading_id",
        Integer,
        ForeignKey("meter_readings.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("start", BigInteger, nullable=False),
    Column("usage_point_id", Integer, nullable=False),
    Column("duration", Integer, nullable=False),
    Column("raw_value", BigInteger),
    Column("multiplier", SmallInteger, nullable=False),
    Column("uom", SmallInteger),
    Column("cost", BigInteger),
    Column("quality", Integer),
    Column("quality_codes", Text),
    Column("tou", Integer),
    PrimaryKeyConstraint("meter_reading_id", "start"),
    sqlite_with_rowid=False,
    postgresql_partition_by="RANGE (start)",
)

#: Work items: fetch one resource, parse, upsert. ``done`` is written in the same
#: transaction as the resource's readings (R62). ``lease_owner``/``lease_until`` (r0003)
#: say which process runs the job until when (``claim_job``), so no two run it at once.
ingest_jobs = Table(
    "ingest_jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("resource_uri", Text, nullable=False),
    Column("authorization_id", Integer, ForeignKey("authorizations.id", ondelete="CASCADE")),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("payload_hash", Text),
    Column("rows", Integer),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("lease_owner", Text),
    Column("lease_until", Float),
    Index("ix_ingest_jobs_state", "state"),
)

#: Revocations the custodian has not confirmed yet (r0004, SECURITY R22). The local tokens
#: are already deleted when a row is written; the ESPI ``DELETE Authorization/{id}`` goes
#: with the client-credentials token, so the authorization's URI is all a retry needs.
#: ``due_at`` is when the next attempt may start (claiming pushes it on: a lease).
pending_revocations = Table(
    "pending_revocations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("utility", Text, nullable=False),
    Column("authorization_uri", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("due_at", Float, nullable=False),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("utility", "authorization_uri"),
    Index("ix_pending_revocations_due_at", "due_at"),
)

#: The web app's server-side browser sessions (r0002): the SHA-256 of the session id and
#: the session as Fernet ciphertext, so every worker process sees the same sessions.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", Text, primary_key=True),
    Column("data_enc", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("seen_at", Float, nullable=False),
    Index("ix_web_sessions_seen_at", "seen_at"),
)

#: Operators of the console at /admin (r0008): ``password_hash`` is a scrypt hash with its
#: parameters (``storage._admin``); ``failed_logins`` and ``locked_until`` rate-limit
#: guessing across every process sharing the database.
admin_users = Table(
    "admin_users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", Float),
    Column("last_login_at", Float),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

#: Signed-in operators (r0008): the SHA-256 of the session id, as in ``web_sessions``.
admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("id_hash", Text, primary_key=True),
    Column("user_id", Integer, ForeignKey("admin_users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("seen_at", Float, nullable=False),
    Index("ix_admin_sessions_seen_at", "seen_at"),
)

#: The utility's rate limit and quotas, shared by every machine on one PostgreSQL database
#: (r0007, ``_limits``): per (profile, client id) key, GCRA's next free slot ``tat`` (epoch
#: seconds, the database server's clock), the quota counts as JSON, and ``version``, which
#: each reservation's conditional upsert checks and bumps. ``holder``: the host id
#: (``GREENBUTTON_HOST_ID``) of the last reservation.
shared_limits = Table(
    "shared_limits",
    metadata,
    Column("key", Text, primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("tat", Float),
    Column("quotas", Text, nullable=False),
    Column("holder", Text),
    Column("updated_at", Float, nullable=False),
)

#: A Bulk job's parts (r0009, ``storage._bulk``): the fetched file split by usage point,
#: each part a zlib-compressed feed (``body``, with the SHA-256 of the uncompressed part)
#: that any worker on any machine ingests; ``file_sha256`` is the whole file's hash, the
#: job's payload hash once every part is done. A part is leased like a job
#: (``lease_owner``/``lease_until``, ``attempts``); ``done_by`` names who stored it. The
#: bodies are dropped (NULL) when the job is done, so the table keeps only the small rows.
bulk_parts = Table(
    "bulk_parts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("ingest_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("part", Integer, nullable=False),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("body", LargeBinary),
    Column("sha256", Text, nullable=False),
    Column("file_sha256", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("rows", Integer),
    Column("error", Text),
    Column("lease_owner", Text),
    Column("lease_until", Float),
    Column("done_by", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("done_at", Float),
    UniqueConstraint("job_id", "part"),
    Index("ix_bulk_parts_state", "state"),
)
