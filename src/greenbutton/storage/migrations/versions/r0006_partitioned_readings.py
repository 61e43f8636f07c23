"""Readings partitioned by month on PostgreSQL (issue 10.3); nothing changes on SQLite.

One heap of tens of billions of rows slows every upsert as its primary-key index outgrows
memory; monthly range partitions on ``start`` keep each index the size of a month, let
old months be detached or dropped whole, and prune queries over a time range.

The upgrade converts the table with its data: the old table is renamed aside, the
partitioned ``readings`` is created (primary key ``(meter_reading_id, start)``, which holds
the partition key as PostgreSQL requires, and the foreign key to ``meter_readings``, both
under their old names), with one partition ``readings_YYYYMM`` per UTC month that holds
data and a default partition ``readings_default``, then every row is copied and the old
table dropped. Months written later get their partitions from ingest
(``storage._partitions``). The downgrade copies the rows back into one plain table.
Everything runs in the migration's one transaction, so a failure leaves the old table.

The names and bounds are written out here, frozen: later changes to
``storage._partitions`` must not change what this revision does.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 15:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = (
    "meter_reading_id integer NOT NULL, start bigint NOT NULL, usage_point_id integer NOT NULL,"
    " duration integer NOT NULL, raw_value bigint, multiplier smallint NOT NULL,"
    " uom smallint, cost bigint, quality integer, quality_codes text, tou integer,"
    " CONSTRAINT pk_readings PRIMARY KEY (meter_reading_id, start),"
    " CONSTRAINT fk_readings_meter_reading_id FOREIGN KEY (meter_reading_id)"
    " REFERENCES meter_readings (id) ON DELETE CASCADE"
)
_NAMES = (
    "meter_reading_id, start, usage_point_id, duration, raw_value, multiplier, uom, cost,"
    " quality, quality_codes, tou"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch(year: int, month: int) -> int:
    return int((datetime(year, month, 1, tzinfo=UTC) - _EPOCH).total_seconds())


def _set_aside(table: str) -> None:
    """Rename ``readings`` and its constraints (the primary key's index is a relation whose
    name the new table needs)."""
    op.execute(f"ALTER TABLE readings RENAME TO {table}")
    op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT pk_readings TO pk_{table}")
    op.execute(
        f"ALTER TABLE {table} RENAME CONSTRAINT fk_readings_meter_reading_id"
        f" TO fk_{table}_meter_reading_id"
    )


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    _set_aside("readings_0005")
    op.execute(f"CREATE TABLE readings ({_COLUMNS}) PARTITION BY RANGE (start)")
    op.execute("CREATE TABLE readings_default PARTITION OF readings DEFAULT")
    # The months holding data, of years 1-9999 (0001-01-01 .. 9999-12-31T23:59:59 UTC, what
    # datetime can name); rows outside go to the default partition.
    months = conn.exec_driver_sql(
        "SELECT DISTINCT extract(year FROM t)::int, extract(month FROM t)::int"
        " FROM (SELECT to_timestamp(start) AT TIME ZONE 'UTC' AS t FROM readings_0005"
        "       WHERE start BETWEEN -62135596800 AND 253402300799) s ORDER BY 1, 2"
    ).all()
    for year, month in months:
        lower = _epoch(year, month)
        last = (year, month) == (9999, 12)
        upper = "MAXVALUE" if last else _epoch(year + month // 12, month % 12 + 1)
        op.execute(
            f"CREATE TABLE readings_{year:04d}{month:02d} PARTITION OF readings"
            f" FOR VALUES FROM ({lower}) TO ({upper})"
        )
    op.execute(f"INSERT INTO readings ({_NAMES}) SELECT {_NAMES} FROM readings_0005")  # noqa: S608
    op.execute("DROP TABLE readings_0005")
    op.execute("ANALYZE readings")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _set_aside("readings_0006")
    op.execute(f"CREATE TABLE readings ({_COLUMNS})")
    op.execute(f"INSERT INTO readings ({_NAMES}) SELECT {_NAMES} FROM readings_0006")  # noqa: S608
    op.execute("DROP TABLE readings_0006")  # and its partitions
    op.execute("ANALYZE readings")
