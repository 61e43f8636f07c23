"""Operator accounts and sessions for the console at /admin (DESIGN 3.7).

``admin_users`` holds each operator's scrypt password hash and the failed-login count that
rate-limits guessing; ``admin_sessions`` the signed-in operators (the SHA-256 of the
session id). New tables: nothing existing changes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=True),
        sa.Column("last_login_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_users")),
        sa.UniqueConstraint("name", name=op.f("uq_admin_users_name")),
    )
    op.create_table(
        "admin_sessions",
        sa.Column("id_hash", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["admin_users.id"],
            name=op.f("fk_admin_sessions_user_id"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_admin_sessions")),
    )
    op.create_index(op.f("ix_admin_sessions_seen_at"), "admin_sessions", ["seen_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_admin_sessions_seen_at"), table_name="admin_sessions")
    op.drop_table("admin_sessions")
    op.drop_table("admin_users")
