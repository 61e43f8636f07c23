"""Each usage point's local time, and browser sessions shared by every web worker.

``usage_points.local_time`` keeps the LocalTimeParameters a usage point came with (JSON:
``tz_offset``, ``dst_offset``, the two DST rules and a display label) so that every reader
shows local days; until now the web app kept them in a table of its own outside the
migrations (``web_usage_point_zones``), whose rows are moved here and which is dropped.

``web_sessions`` holds the web app's server-side sessions, so a restart or a second worker
process does not lose a pending authorization. ``id_hash`` is the SHA-256 of the session id
(a database reader cannot replay a cookie); ``data_enc`` is Fernet ciphertext (it holds the
PKCE verifier, R51).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 15:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OLD_ZONES = "web_usage_point_zones"


def upgrade() -> None:
    op.add_column("usage_points", sa.Column("local_time", sa.Text(), nullable=True))
    bind = op.get_bind()
    if sa.inspect(bind).has_table(_OLD_ZONES):
        bind.execute(
            sa.text(
                "UPDATE usage_points SET local_time = (SELECT z.local_time"
                " FROM web_usage_point_zones z"
                " WHERE z.namespace = usage_points.namespace AND z.key = usage_points.key)"
                " WHERE EXISTS (SELECT 1 FROM web_usage_point_zones z"
                " WHERE z.namespace = usage_points.namespace AND z.key = usage_points.key)"
            )
        )
        op.drop_table(_OLD_ZONES)
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.Text(), nullable=False),
        sa.Column("data_enc", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_web_sessions")),
    )
    op.create_index(op.f("ix_web_sessions_seen_at"), "web_sessions", ["seen_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_web_sessions_seen_at"), table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_column("usage_points", "local_time")
