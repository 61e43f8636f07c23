"""Schema migrations with data present, on SQLite and PostgreSQL (SECURITY R67, b9).

A database at an earlier release's revision (0001) holding tokens, client secrets, jobs,
usage points, readings and the web app's legacy zone table is upgraded to head: every row
survives and the zones move onto ``usage_points.local_time``; 0002 -> 0003 adds the job
leases (no job starts leased); 0004 adds the owed revocations (a new table); 0005 gives
authorizations their (utility, subscription) identity, merging a customer's duplicate
grants. A revision failing halfway rolls back as a whole (transactional DDL, on SQLite
too) and says so; downgrading works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the db extra is not installed")

from cryptography.fernet import Fernet
from sqlalchemy import inspect, text

from greenbutton._secret import Secret
from greenbutton.oauth import Token
from greenbutton.storage import DatabaseTokenStore, StorageError, Store, create_job

KEY = Fernet.generate_key()
TOKEN = Token(
    kind="access",
    access_token=Secret("access-0001"),
    refresh_token=Secret("refresh-0001"),
    expires_at=2e9,
    scope="FB=1_3_4_5_13_14_39",
)
HEAD = "0010"
ZONE = '{"tz_offset": -18000, "dst_offset": 3600, "label": "EST5EDT"}'
OLD_TABLES = (
    "utilities", "authorizations", "ingest_jobs", "usage_points", "meter_readings", "readings",
)  # fmt: skip


def _at_0001_with_data(url: str, tmp_path: Path) -> Store:
    """A database as the previous release left it: at 0001, rows in every table."""
    store = Store.open(url, data_dir=tmp_path, migrate=False)
    store.migrate("0001")
    tokens = DatabaseTokenStore(store, KEY)
    tokens.save("alice", TOKEN)
    tokens.save_client("sim", "client-1", Secret("client-secret"), Secret("reg-token"))
    done = create_job(store, "https://dc.example/espi/1_1/resource/Batch/Subscription/1")
    create_job(store, "https://dc.example/espi/1_1/resource/Batch/Subscription/2")
    with store.begin() as conn:
        conn.execute(
            text("UPDATE ingest_jobs SET state = 'done', rows = 48 WHERE id = :i"), {"i": done}
        )
        for key in ("up-1", "up-2"):
            up = conn.execute(
                text("INSERT INTO usage_points (namespace, key) VALUES ('', :k) RETURNING id"),
                {"k": key},
            ).scalar_one()
            mr = conn.execute(
                text(
                    "INSERT INTO meter_readings (usage_point_id, key, uom)"
                    " VALUES (:u, 'mr-1', 72) RETURNING id"
                ),
                {"u": up},
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO readings (meter_reading_id, start, usage_point_id, duration,"
                    " raw_value, multiplier, uom) VALUES (:m, :s, :u, 3600, :v, 0, 72)"
                ),
                [{"m": mr, "u": up, "s": 1_300_000_000 + 3600 * i, "v": i} for i in range(24)],
            )  # fmt: skip
        conn.execute(
            text(
                "CREATE TABLE web_usage_point_zones (namespace TEXT, key TEXT,"
                " local_time TEXT NOT NULL, PRIMARY KEY (namespace, key))"
            )
        )
        conn.execute(
            text("INSERT INTO web_usage_point_zones VALUES ('', 'up-1', :z), ('', 'gone', :z)"),
            {"z": ZONE},
        )
    return store


def _columns(store: Store, table: str) -> list[str]:
    with store.connect() as conn:
        return [c["name"] for c in inspect(conn).get_columns(table)]


def _tables(store: Store) -> set[str]:
    with store.connect() as conn:
        return set(inspect(conn).get_table_names())


def _dump(store: Store, columns: dict[str, list[str]]) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the 0001 tables, in those tables' 0001 columns."""
    out = {}
    with store.connect() as conn:
        for table, cols in columns.items():
            names = ", ".join(cols)
            query = f"SELECT {names} FROM {table} ORDER BY {names}"  # noqa: S608
            out[table] = [tuple(r) for r in conn.execute(text(query))]
    return out


def _zones(store: Store) -> dict[str, str | None]:
    with store.connect() as conn:
        rows = conn.execute(text("SELECT key, local_time FROM usage_points ORDER BY key"))
        return {k: z for k, z in rows}  # noqa: C416


def test_upgrade_with_data_present_keeps_every_row_and_downgrade_works(
    store_url: str, tmp_path: Path
) -> None:
    store = _at_0001_with_data(store_url, tmp_path)
    columns = {t: _columns(store, t) for t in OLD_TABLES}
    before = _dump(store, columns)
    assert "local_time" not in columns["usage_points"]
    assert len(before["readings"]) == 48 and len(before["ingest_jobs"]) == 2

    store.migrate("0002")
    assert store.schema_revision() == "0002"
    assert _dump(store, columns) == before
    assert _zones(store) == {"up-1": ZONE, "up-2": None}  # moved; the orphan zone dropped
    assert "web_usage_point_zones" not in _tables(store)
    assert "web_sessions" in _tables(store)
    tokens = DatabaseTokenStore(store, KEY)
    assert tokens.load("alice") == TOKEN  # still decrypts
    assert tokens.load_client("sim") == ("client-1", Secret("client-secret"), Secret("reg-token"))

    # 0002 -> 0003: job leases; every job keeps its row and starts with no lease
    with store.begin() as conn:
        conn.execute(
            text("UPDATE ingest_jobs SET state = 'running', attempts = 2 WHERE rows IS NULL")
        )
    columns = {t: _columns(store, t) for t in OLD_TABLES}  # now with local_time
    at_0002 = _dump(store, columns)
    store.migrate("0003")
    assert store.schema_revision() == "0003"
    assert _dump(store, columns) == at_0002
    assert _zones(store) == {"up-1": ZONE, "up-2": None}
    with store.connect() as conn:
        leases = conn.execute(
            text("SELECT state, attempts, lease_owner, lease_until FROM ingest_jobs ORDER BY id")
        ).all()
    assert [tuple(r) for r in leases] == [("done", 0, None, None), ("running", 2, None, None)]
    assert tokens.load("alice") == TOKEN
    store.downgrade("0002")
    assert "lease_owner" not in _columns(store, "ingest_jobs")
    assert _dump(store, columns) == at_0002
    with store.begin() as conn:
        conn.execute(
            text("UPDATE ingest_jobs SET state = 'pending', attempts = 0 WHERE rows IS NULL")
        )
    columns = {t: _columns(store, t) for t in OLD_TABLES if t != "usage_points"}
    columns["usage_points"] = [c for c in _columns(store, "usage_points") if c != "local_time"]

    store.downgrade("0001")
    assert store.schema_revision() == "0001"
    assert "local_time" not in _columns(store, "usage_points")
    assert "web_sessions" not in _tables(store)
    assert _dump(store, columns) == before
    store.migrate()  # and up again, to head
    assert store.schema_revision() == HEAD
    assert "pending_revocations" in _tables(store)
    assert _dump(store, columns) == before
    store.close()


def test_a_migration_failing_halfway_leaves_the_database_unchanged(
    store_url: str, tmp_path: Path
) -> None:
    # b9/R67: an index name r0002 creates in its LAST step is taken, so the upgrade fails
    # after it has added the column, moved the zones and dropped the legacy table.
    store = _at_0001_with_data(store_url, tmp_path)
    columns = {t: _columns(store, t) for t in OLD_TABLES}
    with store.begin() as conn:
        conn.execute(text("CREATE TABLE obstacle (x INTEGER)"))
        conn.execute(text("CREATE INDEX ix_web_sessions_seen_at ON obstacle (x)"))
    before = _dump(store, columns)
    tables = _tables(store)
    store.close()

    with pytest.raises(StorageError) as info:
        Store.open(store_url, data_dir=tmp_path)
    message = str(info.value)
    assert message.startswith(f"migrating the database to {HEAD} failed: ")
    assert "ix_web_sessions_seen_at" in message
    assert message.endswith("; it is unchanged at 0001")

    with Store.open(store_url, data_dir=tmp_path, migrate=False) as store:
        assert store.schema_revision() == "0001"
        assert _tables(store) == tables  # the legacy table is back, web_sessions is not there
        assert _columns(store, "usage_points") == columns["usage_points"]  # no local_time
        assert _dump(store, columns) == before
        with store.connect() as conn:
            legacy = conn.execute(text("SELECT count(*) FROM web_usage_point_zones"))
            assert legacy.scalar_one() == 2
        with store.begin() as conn:  # the operator removes the obstacle
            conn.execute(text("DROP INDEX ix_web_sessions_seen_at"))
            conn.execute(text("DROP TABLE obstacle"))

    with Store.open(store_url, data_dir=tmp_path) as store:
        assert store.schema_revision() == HEAD
        assert _dump(store, columns) == before
        assert _zones(store) == {"up-1": ZONE, "up-2": None}


def _grant(conn: Any, key: str, uri: str | None, updated: float, access: str) -> int:
    """An authorization row as 0004 and earlier stored it: keyed by its URL."""
    return int(
        conn.execute(
            text(
                "INSERT INTO authorizations (key, kind, token_type, access_token_enc,"
                " resource_uri, status, version, updated_at)"
                " VALUES (:k, 'access', 'Bearer', :t, :u, 'active', 1, :w) RETURNING id"
            ),
            {"k": key, "t": Fernet(KEY).encrypt(access.encode()), "u": uri, "w": updated},
        ).scalar_one()
    )


def test_0005_keys_grants_by_utility_and_subscription_and_merges_duplicates(
    store_url: str, tmp_path: Path
) -> None:
    """DESIGN 3.7: data keyed the old way (authorization URLs with ports; one customer
    connected twice) upgrades to one authorization per (utility, subscription), keeping
    every usage point and job; a grant with no data is adopted by its utility's first
    sync (``adopt_authorizations``)."""
    from greenbutton.storage import adopt_authorizations

    store = Store.open(store_url, data_dir=tmp_path, migrate=False)
    store.migrate("0004")
    old_base = "https://127.0.0.1:40001/GreenButtonConnect/espi/1_1/resource"
    new_base = "https://127.0.0.1:40002/GreenButtonConnect/espi/1_1/resource"
    with store.begin() as conn:
        first = _grant(conn, f"{old_base}/Authorization/1", f"{old_base}/Batch/Subscription/7",
                       100.0, "access-first")  # fmt: skip
        again = _grant(conn, f"{new_base}/Authorization/2", f"{new_base}/Batch/Subscription/7",
                       200.0, "access-again")  # fmt: skip
        idle = _grant(conn, f"{old_base}/Authorization/3", f"{old_base}/Batch/Subscription/8",
                      150.0, "access-idle")  # fmt: skip
        for key, auth in (
            ("Subscription/7/UsagePoint/1", first),
            ("Subscription/7/UsagePoint/2", again),
        ):
            conn.execute(
                text("INSERT INTO usage_points (namespace, key, authorization_id)"
                     " VALUES ('simulator', :k, :a)"),
                {"k": key, "a": auth},
            )  # fmt: skip
        conn.execute(
            text("INSERT INTO ingest_jobs (resource_uri, authorization_id, state, attempts,"
                 " created_at, updated_at) VALUES (:u, :a, 'pending', 0, 1, 1)"),
            {"u": f"{old_base}/Batch/Subscription/7/UsagePoint/1?published-min=0", "a": first},
        )  # fmt: skip

    store.migrate()
    assert store.schema_revision() == HEAD
    with store.connect() as conn:
        grants = conn.execute(
            text("SELECT id, key, utility, subscription FROM authorizations ORDER BY id")
        ).all()
        owners = {
            str(k): int(a)
            for k, a in conn.execute(text("SELECT key, authorization_id FROM usage_points"))
        }
        job_owner = conn.execute(text("SELECT authorization_id FROM ingest_jobs")).scalar_one()
    assert [tuple(g) for g in grants] == [
        (again, "simulator/Subscription/7", "simulator", "7"),  # the newer grant is kept
        (idle, f"{old_base}/Authorization/3", None, "8"),  # no data: no utility known yet
    ]
    assert set(owners.values()) == {again} and job_owner == again
    tokens = DatabaseTokenStore(store, KEY)
    token = tokens.load("simulator/Subscription/7")
    assert token is not None and token.access_token == Secret("access-again")

    # the schema holds the rule: a second grant of one (utility, subscription) is refused
    with pytest.raises(StorageError), store.begin() as conn:
        conn.execute(
            text("UPDATE authorizations SET utility = 'simulator', subscription = '7'"
                 " WHERE id = :i"),
            {"i": idle},
        )  # fmt: skip

    # the grant without data: its utility's first sync (today's port) adopts it
    assert adopt_authorizations(store, "simulator", new_base) == 0  # another origin's path
    assert adopt_authorizations(store, "simulator", old_base) == 1
    assert adopt_authorizations(store, "simulator", old_base) == 0  # idempotent
    assert tokens.load("simulator/Subscription/8") is not None
    store.downgrade("0004")
    assert "utility" not in _columns(store, "authorizations")
    with store.connect() as conn:  # rebuilding the table on SQLite must not null the links
        links = {a for (a,) in conn.execute(text("SELECT authorization_id FROM usage_points"))}
    assert links == {again}
    store.close()
