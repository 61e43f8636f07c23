"""Readings → meter readings integrity checked per statement on PostgreSQL (issue 10.3).

The foreign key ``fk_readings_meter_reading_id`` is checked per row: every copied reading
runs a ``SELECT ... FOR KEY SHARE`` on ``meter_readings``, which cost PostgreSQL ingest
2.7× (``bench/ingest_scale.py --foreign-key-cost``) and kept it under 300k rows/s. Ingest
writes hundreds of thousands of readings of a handful of meter readings per statement, so
the same guarantee is given per statement instead, by triggers with transition tables:

* ``AFTER INSERT ... FOR EACH STATEMENT`` on ``readings`` takes the distinct meter reading
  ids of the inserted rows, locks them ``FOR KEY SHARE`` (as the foreign key does, so a
  concurrent delete waits for this transaction, or this one sees the row gone) and raises
  ``foreign_key_violation`` (23503) when one is missing;
* ``BEFORE UPDATE OF meter_reading_id`` on ``readings`` refuses to re-point a reading at a
  meter reading that does not exist (no code does it; an ``ON CONFLICT`` update never
  touches the key);
* ``AFTER DELETE ... FOR EACH STATEMENT`` on ``meter_readings`` deletes their readings (the
  key's ``ON DELETE CASCADE``), and ``BEFORE UPDATE OF id`` refuses to change the id of a
  meter reading that has readings (the key's ``NO ACTION``).

SQLite keeps the declared foreign key (``_schema.readings``; ``PRAGMA foreign_keys=ON``);
``compare_metadata`` ignores it on PostgreSQL (``_partitions.include_object``). The
functions are written here, frozen, and pin their ``search_path`` to the schema they were
created in (a trigger must not resolve ``meter_readings`` through a caller's path).
The downgrade drops the triggers and adds the foreign key back (validated over every row).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 18:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_FUNCTIONS = (
    """
    CREATE FUNCTION greenbutton_readings_inserted() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    DECLARE
      wanted integer;
      held integer;
    BEGIN
      SELECT count(*) INTO wanted FROM (SELECT DISTINCT meter_reading_id FROM new_readings) n;
      SELECT count(*) INTO held FROM (
        SELECT FROM meter_readings m
        WHERE m.id IN (SELECT meter_reading_id FROM new_readings) FOR KEY SHARE OF m) k;
      IF held <> wanted THEN
        RAISE EXCEPTION 'readings refer to a meter reading that does not exist'
          USING ERRCODE = 'foreign_key_violation',
                CONSTRAINT = 'fk_readings_meter_reading_id';
      END IF;
      RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION greenbutton_reading_repointed() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
      PERFORM FROM meter_readings m WHERE m.id = NEW.meter_reading_id FOR KEY SHARE;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'readings refer to a meter reading that does not exist'
          USING ERRCODE = 'foreign_key_violation',
                CONSTRAINT = 'fk_readings_meter_reading_id';
      END IF;
      RETURN NEW;
    END $$
    """,
    """
    CREATE FUNCTION greenbutton_meter_readings_deleted() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
      DELETE FROM readings r USING old_meter_readings o WHERE r.meter_reading_id = o.id;
      RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION greenbutton_meter_reading_renumbered() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
      IF EXISTS (SELECT FROM readings r WHERE r.meter_reading_id = OLD.id) THEN
        RAISE EXCEPTION 'meter reading % has readings: its id cannot change', OLD.id
          USING ERRCODE = 'foreign_key_violation',
                CONSTRAINT = 'fk_readings_meter_reading_id';
      END IF;
      RETURN NEW;
    END $$
    """,
)
_TRIGGERS = (
    "CREATE TRIGGER readings_inserted AFTER INSERT ON readings"
    " REFERENCING NEW TABLE AS new_readings FOR EACH STATEMENT"
    " EXECUTE FUNCTION greenbutton_readings_inserted()",
    "CREATE TRIGGER reading_repointed BEFORE UPDATE OF meter_reading_id ON readings"
    " FOR EACH ROW WHEN (OLD.meter_reading_id IS DISTINCT FROM NEW.meter_reading_id)"
    " EXECUTE FUNCTION greenbutton_reading_repointed()",
    "CREATE TRIGGER meter_readings_deleted AFTER DELETE ON meter_readings"
    " REFERENCING OLD TABLE AS old_meter_readings FOR EACH STATEMENT"
    " EXECUTE FUNCTION greenbutton_meter_readings_deleted()",
    "CREATE TRIGGER meter_reading_renumbered BEFORE UPDATE OF id ON meter_readings"
    " FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)"
    " EXECUTE FUNCTION greenbutton_meter_reading_renumbered()",
)
_DROP = (
    "DROP TRIGGER readings_inserted ON readings",
    "DROP TRIGGER reading_repointed ON readings",
    "DROP TRIGGER meter_readings_deleted ON meter_readings",
    "DROP TRIGGER meter_reading_renumbered ON meter_readings",
    "DROP FUNCTION greenbutton_readings_inserted()",
    "DROP FUNCTION greenbutton_reading_repointed()",
    "DROP FUNCTION greenbutton_meter_readings_deleted()",
    "DROP FUNCTION greenbutton_meter_reading_renumbered()",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in _FUNCTIONS + _TRIGGERS:
        op.execute(statement)
    op.execute("ALTER TABLE readings DROP CONSTRAINT fk_readings_meter_reading_id")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in _DROP:
        op.execute(statement)
    op.execute(
        "ALTER TABLE readings ADD CONSTRAINT fk_readings_meter_reading_id"
        " FOREIGN KEY (meter_reading_id) REFERENCES meter_readings (id) ON DELETE CASCADE"
    )
