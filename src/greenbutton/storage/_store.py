"""Opening the database: engine configuration, durability pragmas and migrations.

SQLite is configured for durability and sharing on every connection (SECURITY R63): WAL,
``synchronous=FULL`` (WAL+NORMAL may lose the last commits on power loss, and a lost commit
can be a rotated refresh token), a busy timeout, foreign keys on. The driver's implicit
transactions are switched off and SQLAlchemy emits ``BEGIN`` itself, so writers take the
write lock up front (``BEGIN IMMEDIATE``) instead of failing with "database is locked" when
they upgrade a read lock.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from .._errors import StorageError
from .._util import user_data_dir

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_LOCK_TIMEOUT",
    "Store",
    "StorageError",
    "database_url",
    "default_data_dir",
]

#: The environment variable naming the database (``postgresql+psycopg://...``).
DATABASE_URL_ENV = "GREENBUTTON_DATABASE_URL"

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 0x6772_6E62  # "grnb": one migrating process at a time
#: Seconds a writer waits for a lock (SQLite's write lock, a PostgreSQL row lock) before
#: the operation fails with :class:`StorageError` instead of hanging (b9).
DEFAULT_LOCK_TIMEOUT = 30.0
#: PostgreSQL SQLSTATEs after which the whole transaction may simply be run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
#: The server ended the session (admin shutdown, crash shutdown, cannot connect now); SQLSTATE
#: class 08 (connection exception) is matched by prefix.
DISCONNECT_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
#: Attempts :meth:`Store.transaction` makes before giving up.
TRANSACTION_ATTEMPTS = 5

_T = TypeVar("_T")


def sqlstate(exc: BaseException | None) -> str | None:
    """The SQLSTATE of a driver error, looked up through ``__cause__`` and ``.orig``."""
    seen = 0
    while exc is not None and seen < 8:
        code = getattr(exc, "sqlstate", None)
        if isinstance(code, str):
            return code
        orig = getattr(exc, "orig", None)
        exc = orig if isinstance(orig, BaseException) else exc.__cause__
        seen += 1
    return None


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is a serialization failure or deadlock (run the transaction again)."""
    return sqlstate(exc) in RETRYABLE_SQLSTATES


def is_disconnect(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a lost database connection.

    SQLAlchemy flags the disconnects it recognises (``connection_invalidated``); the
    SQLSTATEs also catch errors raised from a raw driver cursor."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        code = getattr(exc, "sqlstate", None)
        if isinstance(code, str) and (code.startswith("08") or code in DISCONNECT_SQLSTATES):
            return True
        orig = getattr(exc, "orig", None)
        exc = orig if isinstance(orig, BaseException) else exc.__cause__
        seen += 1
    return False


def is_transient(exc: BaseException) -> bool:
    """Whether re-running the whole transaction may succeed (retryable or disconnected)."""
    return is_retryable(exc) or is_disconnect(exc)


def default_data_dir() -> Path:
    """Where the default SQLite database and the key file live (created 0700): the
    per-user data folder, :func:`greenbutton._util.user_data_dir`."""
    path = user_data_dir()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _sqlite_on_connect(dbapi_connection: Any, lock_timeout: float) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event emits BEGIN
    cur = dbapi_connection.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {max(0, int(lock_timeout * 1000))}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
    finally:
        cur.close()


def _postgresql_on_connect(dbapi_connection: Any, lock_timeout: float) -> None:
    # Session-wide, committed at once (a SET inside a rolled-back transaction is undone).
    with dbapi_connection.cursor() as cur:
        cur.execute(f"SET lock_timeout = {max(0, int(lock_timeout * 1000))}")
    dbapi_connection.commit()


def _sqlite_on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def database_url(value: str) -> URL:
    """The SQLAlchemy URL of ``value``: a URL (``sqlite:///PATH``, ``postgresql://...``;
    ``postgres://`` and a bare ``postgresql://`` use psycopg 3), or a file path, taken as a
    SQLite database (``gb.db`` means ``sqlite:///…/gb.db``). Anything else is a
    :class:`StorageError` that says what to write."""
    if "://" not in value:
        value = f"sqlite:///{Path(value).expanduser().absolute()}"
    try:
        parsed = make_url(value)
    except ArgumentError:
        raise StorageError(
            "the database URL is not valid: use sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST/DATABASE"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StorageError(
            f"greenbutton stores data in SQLite or PostgreSQL, not {parsed.get_backend_name()!r}:"
            " use sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DATABASE"
        )
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not file.startswith("file:"):
        folder = Path(file).expanduser().absolute().parent
        if not folder.is_dir():
            raise StorageError(f"no folder {folder} for the SQLite database: create it first")
    return parsed


class Store:
    """An open database: an SQLAlchemy engine migrated to the newest schema.

    Use :meth:`open`; :meth:`begin` gives a write transaction, :meth:`connect` a reader.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        data_dir: Path | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ):
        self.engine = engine
        self.data_dir = data_dir
        self.lock_timeout = lock_timeout  # what other writers wait for a lock we hold
        self._writer = engine.execution_options(sqlite_begin="IMMEDIATE")

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        data_dir: Path | None = None,
        migrate: bool = True,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        **engine_options: Any,
    ) -> Store:
        """Open ``url``, else ``$GREENBUTTON_DATABASE_URL``, else ``greenbutton.db`` in the
        user data directory, and migrate it to the newest schema.

        ``lock_timeout`` (seconds) bounds every wait for a lock: SQLite's ``busy_timeout``,
        PostgreSQL's ``lock_timeout``; past it the operation raises :class:`StorageError`."""
        url = url or os.environ.get(DATABASE_URL_ENV) or None
        if url is None:
            data_dir = data_dir or default_data_dir()
            url = f"sqlite:///{data_dir / 'greenbutton.db'}"
        parsed = database_url(url)
        if parsed.get_backend_name() == "postgresql":
            engine_options.setdefault("pool_pre_ping", True)
        engine = create_engine(parsed, **engine_options)
        if engine.dialect.name == "sqlite":
            event.listen(
                engine, "connect", lambda dbapi, _rec: _sqlite_on_connect(dbapi, lock_timeout)
            )
            event.listen(engine, "begin", _sqlite_on_begin)
        elif engine.dialect.name == "postgresql":
            event.listen(
                engine, "connect", lambda dbapi, _rec: _postgresql_on_connect(dbapi, lock_timeout)
            )
        store = cls(engine, data_dir=data_dir, lock_timeout=lock_timeout)
        if migrate:
            try:
                store.migrate()
            except BaseException:
                store.close()  # no pooled connection outlives a failed open
                raise
        return store

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` in one transaction (transactional DDL, R67).

        A failing revision rolls every step back and raises :class:`StorageError`; the
        database stays at the revision it was at."""
        self._alembic("upgrade", revision)

    def downgrade(self, revision: str) -> None:
        """Downgrade the schema to ``revision``, all steps in one transaction."""
        self._alembic("downgrade", revision)

    def _alembic(self, direction: str, revision: str) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.set_main_option("path_separator", "os")
        target = ScriptDirectory.from_config(cfg).as_revision_number(revision)
        before = "its previous revision"  # replaced once read inside the transaction
        try:
            with self.begin() as conn:
                if self.dialect == "postgresql":
                    lock = text("SELECT pg_advisory_xact_lock(:k)")
                    conn.execute(lock, {"k": _PG_MIGRATION_LOCK})
                before = MigrationContext.configure(conn).get_current_revision() or "base"
                cfg.attributes["connection"] = conn
                getattr(command, direction)(cfg, revision)
        except Exception as exc:
            cause = exc.orig if isinstance(exc, DBAPIError) else exc
            if isinstance(exc, StorageError) and isinstance(exc.__cause__, DBAPIError):
                cause = exc.__cause__.orig
            raise StorageError(
                f"migrating the database to {target or 'base'} failed: {cause}; "
                f"it is unchanged at {before}"
            ) from exc

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (``None`` when unmigrated)."""
        from alembic.runtime.migration import MigrationContext

        with self.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any exception.

        A database error (locked past the lock timeout, read-only, full, unreachable), also
        one from the driver's own cursor (the bulk paths), raises :class:`StorageError`,
        the driver's error as its ``__cause__``."""
        try:
            with self._writer.begin() as conn:
                yield conn
        except DBAPIError as exc:
            raise StorageError(f"the database failed: {exc.orig}") from exc
        except self.engine.dialect.loaded_dbapi.Error as exc:  # from a raw driver cursor
            raise StorageError(f"the database failed: {exc}") from exc

    def transaction(self, fn: Callable[[Connection], _T], *, attempts: int | None = None) -> _T:
        """Run ``fn(conn)`` in a write transaction, the whole of it again when that may help.

        A serialization failure or deadlock (40001, 40P01) or a dropped connection re-runs
        ``fn`` on a fresh connection, up to ``attempts`` times (``TRANSACTION_ATTEMPTS``)
        with a jittered back-off; other errors, and the last one, raise at once. A commit
        lost with its connection may have happened, so ``fn`` must be safe to repeat
        (upserts, idempotent updates). Not for work that must never run twice, such as a
        token refresh the authorization server has already honoured (R53)."""
        attempts = TRANSACTION_ATTEMPTS if attempts is None else attempts
        for attempt in range(1, attempts + 1):
            try:
                with self.begin() as conn:
                    return fn(conn)
            except StorageError as exc:
                if attempt >= attempts or not is_transient(exc):
                    raise
            time.sleep(random.uniform(0.01, 0.05) * 2**attempt)  # noqa: S311 - jitter only
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reading (a deferred transaction on SQLite), as a context manager.

        A database error (unreachable, locked, corrupt) raises :class:`StorageError`, the
        driver's error as its ``__cause__``."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except DBAPIError as exc:
            raise StorageError(f"the database failed: {exc.orig}") from exc
        except self.engine.dialect.loaded_dbapi.Error as exc:  # from a raw driver cursor
            raise StorageError(f"the database failed: {exc}") from exc

    def check(self) -> None:
        """Raise :class:`StorageError` when SQLite's ``quick_check`` finds corruption."""
        if self.dialect != "sqlite":
            return
        try:
            with self.connect() as conn:
                result = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check")]
        except StorageError as exc:  # too damaged to even run the check
            orig = exc.__cause__.orig if isinstance(exc.__cause__, DBAPIError) else exc
            raise StorageError(f"the database is corrupt: {orig}") from exc.__cause__
        if result != ["ok"]:
            raise StorageError(f"the database is corrupt: {'; '.join(result[:3])}")

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"
