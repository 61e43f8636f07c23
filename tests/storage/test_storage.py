"""Storage on SQLite and PostgreSQL: migrations, idempotent reconciled ingest, atomic
resources, encrypted tokens, single-flight refresh (SECURITY G R48, J R60-R67, b9).

PostgreSQL comes from ``$GREENBUTTON_TEST_POSTGRES_URL`` (``.ci/run`` starts a local server);
each test gets its own schema. Without it the PostgreSQL cases skip, except under ``CI``,
where they fail: the issue requires both back ends.
"""

from __future__ import annotations

import stat
import threading
from collections import defaultdict
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")

from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy import event, inspect, text

from greenbutton import iter_readings, parse
from greenbutton._errors import InvalidGrantError
from greenbutton._secret import Secret
from greenbutton.models import (
    IntervalBlock,
    MeterReading,
    ReadingColumns,
    ReadingType,
    UsagePoint,
)
from greenbutton.models._resources import Document
from greenbutton.oauth import Token
from greenbutton.storage import (
    DatabaseTokenStore,
    SecretKeyError,
    StorageError,
    Store,
    TokenDecryptionError,
    _ingest,
    export_readings,
    ingest_document,
    ingest_file,
    load_fernet,
    pending_jobs,
)
from tests.conftest import FIXTURES

# Real fixtures with readings, of different shapes: 15-min, hourly across DST, gas,
# several reading types, 1-minute, multi-family blocks.
READING_FIXTURES = [
    "gba_demo_15min_15days.xml",
    "gba_demo_hourly_2011-03_dst_spring.xml",
    "gba_gas_monthly_therm.xml",
    "gba_one_usagepoint_three_readingtypes.xml",
    "gba_meter_data_1min_2014-01-06_week.xml",
    "gba_coastal_multi_family_2011_12hr_blocks.xml",
    "burlington_hydro_dmd_usage_60min_trimmed.xml",
    "gba_demo_hourly_32days_nocost.xml",
]


def _snapshot(store: Store) -> list[tuple[object, ...]]:
    with store.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT up.namespace, up.key, mr.key, r.start, r.duration, r.raw_value,"
                " r.multiplier, r.uom, r.cost, r.quality, r.quality_codes, r.tou"
                " FROM readings r JOIN meter_readings mr ON mr.id = r.meter_reading_id"
                " JOIN usage_points up ON up.id = r.usage_point_id"
                " ORDER BY 1, 2, 3, 4"
            )
        )
        return [tuple(r) for r in rows]


def _count(store: Store, table: str) -> int:
    with store.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def _key(r: object) -> tuple[object, ...]:
    return tuple("" if v is None else str(v) for v in r)  # type: ignore[attr-defined]


# --- migrations and configuration ---------------------------------------------------------


def test_migrates_an_empty_database_to_head(store: Store, store_url: str) -> None:
    assert store.schema_revision() == "0010"
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "utilities", "authorizations", "usage_points", "meter_readings", "readings",
        "ingest_jobs", "web_sessions", "alembic_version",
    } <= tables  # fmt: skip
    again = Store.open(store_url)  # re-opening an up-to-date database is a no-op
    assert again.schema_revision() == "0010"
    again.close()


def test_migrations_produce_exactly_the_declared_schema(store: Store) -> None:
    """The Alembic revisions and ``_schema.metadata`` describe the same tables (no drift);
    the readings table's monthly partitions (PostgreSQL, r0006) are part of ``readings``."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from greenbutton.storage._partitions import include_name, include_object
    from greenbutton.storage._schema import metadata

    with store.connect() as conn:
        hooks = {"include_name": include_name, "include_object": include_object(store.dialect)}
        context = MigrationContext.configure(conn, opts=hooks)
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_sqlite_is_configured_for_durability(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'gb.db'}")
    with store.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragma == {
        "journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "busy_timeout": 30000
    }  # fmt: skip
    store.check()
    store.close()


def test_default_database_is_in_the_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GREENBUTTON_DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    store = Store.open()
    assert store.engine.url.database == str(tmp_path / "xdg" / "greenbutton" / "greenbutton.db")
    store.close()


# --- ingest ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", READING_FIXTURES)
def test_fixture_ingest_is_idempotent_and_reconciles(store: Store, name: str) -> None:
    path = FIXTURES / name
    first = ingest_file(store, path, namespace=name)
    snapshot = _snapshot(store)
    second = ingest_file(store, path, namespace=name)
    assert first == second
    assert _snapshot(store) == snapshot  # R60: the same feed twice changes nothing

    # The export equals the file's readings table, row for row.
    expected = sorted(iter_readings(path), key=_key)
    assert sorted(export_readings(store, namespace=name), key=_key) == expected
    assert first.rows == len(expected)

    # R64: count and sum of raw values per (usage point, meter reading, UTC day).
    doc_days: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
    for r in expected:
        day = doc_days[(r.usage_point, r.meter_reading, int(r.start.timestamp()) // 86400)]
        day[0] += 1
        day[1] += r.raw_value or 0
    with store.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT up.key, mr.key, r.start / 86400 AS day, count(*),"
                " coalesce(sum(r.raw_value), 0) FROM readings r"
                " JOIN meter_readings mr ON mr.id = r.meter_reading_id"
                " JOIN usage_points up ON up.id = r.usage_point_id"
                " WHERE up.namespace = :ns GROUP BY up.key, mr.key, r.start / 86400"
            ),
            {"ns": name},
        )
        db_days = {(u, m, int(d)): [int(c), int(s)] for u, m, d, c, s in rows}
    assert db_days == dict(doc_days)
    assert pending_jobs(store) == []


def _columns(*readings: tuple[int, int]) -> ReadingColumns:
    cols = ReadingColumns()
    for start, value in readings:
        cols.append(start, 3600, value)
    return cols


def _document(*blocks: ReadingColumns, repeat_meter: bool = False) -> Document:
    rt = ReadingType(uom=72, power_of_ten_multiplier=-3, interval_length=3600, kind=12)
    mr = MeterReading(
        id="1",
        href="Subscription/1/UsagePoint/1/MeterReading/1",
        reading_type=rt,
        interval_blocks=tuple(IntervalBlock(readings=b) for b in blocks),
    )
    meters = (mr, mr) if repeat_meter else (mr,)
    return Document(
        usage_points=(
            UsagePoint(id="1", href="Subscription/1/UsagePoint/1", meter_readings=meters),
        )
    )


def test_duplicates_within_one_batch_last_occurrence_wins(store: Store) -> None:
    # Overlapping blocks and a repeated MeterReading (R61): PostgreSQL would refuse to
    # update the same row twice in one statement; SQLite would take any. Both keep the last.
    doc = _document(
        _columns((0, 1), (3600, 2), (7200, 3)),
        _columns((3600, 20), (10800, 4)),
        repeat_meter=True,
    )
    result = ingest_document(store, doc)
    assert result.rows == 4
    assert [r.raw_value for r in export_readings(store)] == [1, 20, 3, 4]

    # A revised value overwrites on re-ingest (R60).
    ingest_document(store, _document(_columns((7200, 30))))
    assert [r.raw_value for r in export_readings(store)] == [1, 20, 30, 4]
    assert _count(store, "readings") == 4


def test_failure_mid_ingest_leaves_nothing_and_retry_completes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = FIXTURES / "gba_demo_15min_15days.xml"
    calls = {"n": 0}
    seam = "_write_batch" if store.dialect == "sqlite" else "_copy_batch"
    real = getattr(_ingest, seam)

    def failing(*args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("injected fault after the first batch")
        real(*args)

    monkeypatch.setattr(_ingest, seam, failing)
    monkeypatch.setattr(_ingest, "BATCH_SIZE", 500)
    doc = parse(path)
    with pytest.raises(RuntimeError, match="injected"):
        ingest_document(store, doc, batch_size=500)
    assert calls["n"] == 2
    assert _count(store, "readings") == 0  # R62: all of the resource or none of it
    assert _count(store, "usage_points") == 0

    with pytest.raises(RuntimeError, match="injected"):
        calls["n"] = 1
        ingest_file(store, path)
    jobs = pending_jobs(store)
    assert len(jobs) == 1 and jobs[0][1] == path.resolve().as_uri()
    with store.begin() as conn:  # a job given up on by sync is not pending
        conn.execute(text("UPDATE ingest_jobs SET state = 'abandoned'"))
    assert pending_jobs(store) == []
    with store.begin() as conn:
        conn.execute(text("UPDATE ingest_jobs SET state = 'failed'"))
    assert pending_jobs(store) == jobs

    monkeypatch.setattr(_ingest, seam, real)
    result = ingest_file(store, path)  # the retry picks up the same job
    assert pending_jobs(store) == []
    with store.connect() as conn:
        state, attempts = conn.execute(text("SELECT state, attempts FROM ingest_jobs")).one()
    assert (state, attempts) == ("done", 2)
    assert result.rows == len(list(iter_readings(path))) == _count(store, "readings")


def test_reconciliation_failure_rolls_back(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    real = _ingest._rows

    def lossy(*args: object) -> object:
        rows = list(real(*args))  # type: ignore[arg-type]
        return iter(rows[:-1])  # one reading silently lost on the way in

    monkeypatch.setattr(_ingest, "_rows", lossy)
    with pytest.raises(_ingest.ReconciliationError):
        ingest_document(store, _document(_columns((0, 1), (3600, 2))))
    assert _count(store, "readings") == 0


def test_disk_full_mid_ingest_is_a_storage_error(tmp_path: Path) -> None:
    # b9: SQLITE_FULL simulated with a page budget just above the empty schema.
    store = Store.open(f"sqlite:///{tmp_path / 'gb.db'}")
    tokens = DatabaseTokenStore(store, Fernet.generate_key())
    tokens.save("grant", Token(kind="access", access_token=Secret("tok-before-full")))
    with store.connect() as conn:
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
    store.engine.dispose()
    event.listen(
        store.engine,
        "connect",
        lambda dbapi, _rec: dbapi.execute(f"PRAGMA max_page_count = {pages + 8}"),
    )
    with pytest.raises(StorageError, match="full"):
        ingest_file(store, FIXTURES / "gba_meter_data_1min_2014-01-06_week.xml")
    assert _count(store, "readings") == 0
    token = tokens.load("grant")  # R66: the token written earlier is untouched
    assert token is not None and token.access_token.reveal() == "tok-before-full"
    store.close()


# --- tokens ---------------------------------------------------------------------------------

ACCESS = "access-5f1c0e9a-plaintext-marker"
REFRESH = "refresh-77d2b3c4-plaintext-marker"


def _token(access: str = ACCESS, refresh: str = REFRESH, expires_at: float = 2e9) -> Token:
    return Token(
        kind="access",
        access_token=Secret(access),
        refresh_token=Secret(refresh),
        expires_at=expires_at,
        scope="FB=4_5_15",
        resource_uri="https://dc.example/espi/1_1/resource/Batch/Subscription/7",
        authorization_uri="https://dc.example/espi/1_1/resource/Authorization/7",
    )


def _raw_bytes(store: Store, tmp_path: Path) -> bytes:
    if store.dialect == "sqlite":
        with store.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(FULL)")
        return b"".join(p.read_bytes() for p in tmp_path.glob("gb.db*"))
    with store.connect() as conn:
        rows = conn.execute(text("SELECT a::text FROM authorizations a")).scalars().all()
        rows += conn.execute(text("SELECT u::text FROM utilities u")).scalars().all()
    return "\n".join(rows).encode()


def test_tokens_are_encrypted_at_rest(store: Store, tmp_path: Path) -> None:
    tokens = DatabaseTokenStore(store, Fernet.generate_key())
    tokens.save("grant-7", _token())
    tokens.save_client("sim", "client-1", Secret("client-secret-9a8b7c-marker"))
    raw = _raw_bytes(store, tmp_path)
    assert b"FB=4_5_15" in raw  # the data is there ...
    for secret in (ACCESS, REFRESH, "client-secret-9a8b7c-marker"):
        assert secret.encode() not in raw  # ... the secrets are not (R48)
    assert tokens.load("grant-7") == _token()
    client = tokens.load_client("sim")
    assert client is not None and client[1] == Secret("client-secret-9a8b7c-marker")
    assert tokens.keys() == ["grant-7"]
    tokens.delete("grant-7")
    assert tokens.load("grant-7") is None


def test_wrong_key_and_tampering_raise_never_read_as_missing(store: Store) -> None:
    key = Fernet.generate_key()
    DatabaseTokenStore(store, key).save("g", _token())
    with pytest.raises(TokenDecryptionError):
        DatabaseTokenStore(store, Fernet.generate_key()).load("g")
    with store.begin() as conn:
        blob = conn.execute(text("SELECT access_token_enc FROM authorizations")).scalar_one()
        tampered = bytes(blob[:-3]) + (b"AAA" if not bytes(blob).endswith(b"AAA") else b"BBB")
        conn.execute(text("UPDATE authorizations SET access_token_enc = :b"), {"b": tampered})
    with pytest.raises(TokenDecryptionError):
        DatabaseTokenStore(store, key).load("g")


def test_key_rotation_re_encrypts(store: Store) -> None:
    old, new = Fernet(Fernet.generate_key()), Fernet(Fernet.generate_key())
    DatabaseTokenStore(store, old).save("g", _token())
    ring = DatabaseTokenStore(store, MultiFernet([new, old]))
    assert ring.rotate() == 1
    assert DatabaseTokenStore(store, new).load("g") == _token()


def test_key_file_is_created_0600_and_a_readable_one_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GREENBUTTON_SECRET_KEY", raising=False)
    ring = load_fernet(tmp_path)
    path = tmp_path / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_fernet(tmp_path).decrypt(ring.encrypt(b"x")) == b"x"  # same key re-read
    path.chmod(0o644)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        load_fernet(tmp_path)
    monkeypatch.setenv("GREENBUTTON_SECRET_KEY", Fernet.generate_key().decode())
    load_fernet(tmp_path)  # the environment wins; the file is not read
    monkeypatch.setenv("GREENBUTTON_SECRET_KEY", "not-a-key")
    with pytest.raises(SecretKeyError):
        load_fernet(tmp_path)


def test_single_flight_refresh_across_threads(store_url: str, tmp_path: Path) -> None:
    key = Fernet.generate_key()
    stores = [Store.open(store_url, data_dir=tmp_path) for _ in range(2)]  # two "processes"
    DatabaseTokenStore(stores[0], key).save("g", _token(expires_at=1.0))
    calls: list[int] = []
    lock = threading.Lock()

    def refresh(old: Token) -> Token:
        with lock:
            calls.append(1)
        assert old.refresh_token == Secret(REFRESH)
        return _token(access="fresh", refresh="rotated", expires_at=2e9)

    results: list[Token] = []

    def worker(i: int) -> None:
        t = DatabaseTokenStore(stores[i % 2], key).refresh("g", refresh, now=lambda: 100.0)
        with lock:
            results.append(t)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1  # R52: exactly one refresh
    assert len(results) == 8 and all(r.access_token == Secret("fresh") for r in results)
    for s in stores:
        s.close()


def test_refused_refresh_marks_reauth_required(store: Store) -> None:
    tokens = DatabaseTokenStore(store, Fernet.generate_key())
    tokens.save("g", _token(expires_at=1.0))

    def refused(_old: Token) -> Token:
        raise InvalidGrantError("invalid_grant", "refresh token revoked")

    with pytest.raises(InvalidGrantError):
        tokens.refresh("g", refused, now=lambda: 100.0)
    assert tokens.status("g") == "reauth_required"
    assert tokens.load("g") == _token(expires_at=1.0)  # kept, not silently dropped (R53)


def test_ingest_keeps_each_usage_points_local_time(store: Store) -> None:
    """The zone a file declares is stored with its usage point and read back as local days."""
    from datetime import datetime

    from greenbutton.storage import time_zone_of
    from greenbutton.storage._schema import usage_points

    ingest_file(store, FIXTURES / "gba_demo_hourly_2011-03_dst_spring.xml")
    with store.connect() as conn:
        records = [r[0] for r in conn.execute(usage_points.select().with_only_columns(
            usage_points.c.local_time))]  # fmt: skip
    assert records and all(r is not None for r in records)
    tz, label = time_zone_of(records[0])
    summer, winter = datetime(2011, 7, 1, tzinfo=tz), datetime(2011, 1, 1, tzinfo=tz)
    assert summer.utcoffset() != winter.utcoffset()  # DST rules survived the round trip
    assert label and label != "UTC"
    assert time_zone_of(None)[1] == "UTC" and time_zone_of("{not json")[1] == "UTC"
