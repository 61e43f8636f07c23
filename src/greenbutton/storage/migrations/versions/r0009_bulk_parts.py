"""A Bulk job's parts, ingested by every worker (issue 10.4, ``storage._bulk``).

``bulk_parts`` holds the parts a worker split a fetched Bulk file into (by usage point),
each a zlib-compressed feed in the database, so a worker on any machine can ingest any part
without a shared disk. New table: nothing existing changes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulk_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("file_sha256", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("done_by", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("done_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["ingest_jobs.id"],
            name=op.f("fk_bulk_parts_job_id"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_parts")),
        sa.UniqueConstraint("job_id", "part", name=op.f("uq_bulk_parts_job_id")),
    )
    op.create_index(op.f("ix_bulk_parts_state"), "bulk_parts", ["state"])


def downgrade() -> None:
    op.drop_index(op.f("ix_bulk_parts_state"), table_name="bulk_parts")
    op.drop_table("bulk_parts")
