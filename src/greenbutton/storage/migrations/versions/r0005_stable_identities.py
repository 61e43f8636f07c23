"""Stable identities (DESIGN 3.7): an authorization is (utility, subscription).

Until now a grant was keyed by its authorization URL, host and port included, so a
custodian reached on another port (every simulator restart) orphaned every stored account,
and a customer connecting twice got two authorizations whose usage points moved between
them. This revision adds ``authorizations.utility`` (the profile name) and
``authorizations.subscription`` with one row per pair, and migrates the data:

* the subscription comes from the grant's resourceURI (``…/Subscription/{id}``);
* the utility is the namespace its stored usage points were ingested under (the profile
  name), else the registered utility it points at; a grant with neither keeps its old key
  and is adopted by the first sync or web worker of its utility
  (``storage.adopt_authorizations``);
* such grants are re-keyed ``{utility}/Subscription/{id}``; several for one pair are merged
  into the most recently updated one (usage points and jobs move to it, the older tokens
  go).

The data step is written out here, frozen: later code changes must not change what this
revision does. Downgrading drops the columns and keeps the new keys (older versions treat
keys as opaque).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 13:00:00
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _subscription(uri: str | None) -> str | None:
    if not uri:
        return None
    segments = [unquote(s) for s in urlsplit(uri).path.split("/") if s]
    for i in range(len(segments) - 1, 0, -1):
        if segments[i - 1] == "Subscription":
            return segments[i] or None
    return None


def upgrade() -> None:
    with op.batch_alter_table("authorizations") as batch:
        batch.add_column(sa.Column("utility", sa.Text(), nullable=True))
        batch.add_column(sa.Column("subscription", sa.Text(), nullable=True))

    conn = op.get_bind()
    a = sa.table(
        "authorizations",
        sa.column("id"), sa.column("key"), sa.column("kind"), sa.column("resource_uri"),
        sa.column("utility_id"), sa.column("updated_at"), sa.column("utility"),
        sa.column("subscription"),
    )  # fmt: skip
    up = sa.table("usage_points", sa.column("authorization_id"), sa.column("namespace"))
    jobs = sa.table("ingest_jobs", sa.column("authorization_id"))
    utilities = sa.table("utilities", sa.column("id"), sa.column("name"))
    names = {int(i): str(n) for i, n in conn.execute(sa.select(utilities.c.id, utilities.c.name))}
    namespaces: dict[int, Counter[str]] = {}
    for auth_id, namespace in conn.execute(
        sa.select(up.c.authorization_id, up.c.namespace).where(up.c.authorization_id.is_not(None))
    ):
        namespaces.setdefault(int(auth_id), Counter())[str(namespace)] += 1

    rows = conn.execute(
        sa.select(a.c.id, a.c.resource_uri, a.c.utility_id)
        .where(a.c.kind == "access")
        .order_by(a.c.updated_at.desc(), a.c.id.desc())  # the newest of a pair is kept
    ).all()
    kept: dict[tuple[str, str], int] = {}
    for auth_id, uri, utility_id in rows:
        sub = _subscription(uri)
        counts = namespaces.get(int(auth_id))
        utility = counts.most_common(1)[0][0] if counts else names.get(utility_id or -1)
        if sub is None:
            continue
        if not utility:
            conn.execute(sa.update(a).where(a.c.id == auth_id).values(subscription=sub))
            continue
        if (utility, sub) in kept:
            into = kept[(utility, sub)]
            conn.execute(
                sa.update(up).where(up.c.authorization_id == auth_id).values(authorization_id=into)
            )
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.authorization_id == auth_id)
                .values(authorization_id=into)
            )
            conn.execute(sa.delete(a).where(a.c.id == auth_id))
            continue
        kept[(utility, sub)] = int(auth_id)
        conn.execute(
            sa.update(a)
            .where(a.c.id == auth_id)
            .values(key=f"{utility}/Subscription/{sub}", utility=utility, subscription=sub)
        )

    # A unique index, not a constraint: SQLite would rebuild the table for a constraint,
    # and dropping the old one fires ON DELETE SET NULL on every usage point.
    op.create_index(
        "ix_authorizations_identity", "authorizations", ["utility", "subscription"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_authorizations_identity", table_name="authorizations")
    # Plain ALTER TABLE (SQLite >= 3.35): a batch rebuild would drop the table, and its
    # ON DELETE SET NULL would unlink every usage point and job.
    op.execute("ALTER TABLE authorizations DROP COLUMN subscription")
    op.execute("ALTER TABLE authorizations DROP COLUMN utility")
