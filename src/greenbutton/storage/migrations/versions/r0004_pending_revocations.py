"""Revocations still owed to the custodian (SECURITY R22).

On disconnect the local tokens are deleted at once, whatever the custodian answers; when
its revocation fails (503, a timeout) a ``pending_revocations`` row remembers that it must
still be told, and the web app's worker retries it (``due_at``, honouring Retry-After).
A new table: nothing existing changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_revocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("utility", sa.Text(), nullable=False),
        sa.Column("authorization_uri", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_revocations")),
        sa.UniqueConstraint(
            "utility", "authorization_uri", name=op.f("uq_pending_revocations_utility")
        ),
    )
    op.create_index(op.f("ix_pending_revocations_due_at"), "pending_revocations", ["due_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_pending_revocations_due_at"), table_name="pending_revocations")
    op.drop_table("pending_revocations")
