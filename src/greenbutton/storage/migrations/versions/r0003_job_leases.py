"""Leases on ingest jobs, so two processes never run the same job at once.

``lease_owner`` (``host:pid:random``) and ``lease_until`` (the claiming process's wall
clock, epoch seconds) are set by ``claim_job`` in the same conditional UPDATE that counts
the attempt, and cleared by the ``done`` marker, ``fail_job`` and ``unstart_job``. Existing
rows start with no lease, so every unfinished job is free to claim after the upgrade.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_jobs") as batch:
        batch.add_column(sa.Column("lease_owner", sa.Text(), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingest_jobs") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
