"""Rate-limit slots and quota counters shared by every machine (DESIGN 3.7, SECURITY R58).

One row per (utility profile, client id): GCRA's next free slot on the database server's
clock, the quota counts, and a version that makes each reservation one conditional write
(``storage._limits``). Used on PostgreSQL; on SQLite the file-locked limiter stays, but the
table exists there too so both back ends have one schema. A new table: nothing changes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shared_limits",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("tat", sa.Float(), nullable=True),
        sa.Column("quotas", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_shared_limits")),
    )


def downgrade() -> None:
    op.drop_table("shared_limits")
