"""Initial schema: utilities, authorizations, usage points, meter readings, readings, jobs.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 14:13:56.125684
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "utilities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=True),
        sa.Column("client_secret_enc", sa.LargeBinary(), nullable=True),
        sa.Column("registration_token_enc", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_utilities")),
        sa.UniqueConstraint("name", name=op.f("uq_utilities_name")),
    )
    op.create_table(
        "authorizations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("utility_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("token_type", sa.Text(), nullable=False),
        sa.Column("access_token_enc", sa.LargeBinary(), nullable=False),
        sa.Column("refresh_token_enc", sa.LargeBinary(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("resource_uri", sa.Text(), nullable=True),
        sa.Column("authorization_uri", sa.Text(), nullable=True),
        sa.Column("customer_resource_uri", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["utility_id"],
            ["utilities.id"],
            name=op.f("fk_authorizations_utility_id"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authorizations")),
        sa.UniqueConstraint("key", name=op.f("uq_authorizations_key")),
    )
    op.create_table(
        "ingest_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_uri", sa.Text(), nullable=False),
        sa.Column("authorization_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("payload_hash", sa.Text(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["authorization_id"],
            ["authorizations.id"],
            name=op.f("fk_ingest_jobs_authorization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_jobs")),
    )
    with op.batch_alter_table("ingest_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_ingest_jobs_state", ["state"], unique=False)

    op.create_table(
        "usage_points",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("namespace", sa.Text(), server_default="", nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("authorization_id", sa.Integer(), nullable=True),
        sa.Column("href", sa.Text(), nullable=True),
        sa.Column("atom_id", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("service_kind", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["authorization_id"],
            ["authorizations.id"],
            name=op.f("fk_usage_points_authorization_id"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_points")),
        sa.UniqueConstraint("namespace", "key", name=op.f("uq_usage_points_namespace")),
    )
    op.create_table(
        "meter_readings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("usage_point_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("href", sa.Text(), nullable=True),
        sa.Column("atom_id", sa.Text(), nullable=True),
        sa.Column("reading_type_href", sa.Text(), nullable=True),
        sa.Column("uom", sa.Integer(), nullable=True),
        sa.Column("power_of_ten_multiplier", sa.Integer(), nullable=True),
        sa.Column("flow_direction", sa.Integer(), nullable=True),
        sa.Column("kind", sa.Integer(), nullable=True),
        sa.Column("commodity", sa.Integer(), nullable=True),
        sa.Column("interval_length", sa.Integer(), nullable=True),
        sa.Column("currency", sa.Integer(), nullable=True),
        sa.Column("default_quality", sa.Integer(), nullable=True),
        sa.Column("accumulation_behaviour", sa.Integer(), nullable=True),
        sa.Column("data_qualifier", sa.Integer(), nullable=True),
        sa.Column("time_attribute", sa.Integer(), nullable=True),
        sa.Column("tou", sa.Integer(), nullable=True),
        sa.Column("phase", sa.Integer(), nullable=True),
        sa.Column("consumption_tier", sa.Integer(), nullable=True),
        sa.Column("cpp", sa.Integer(), nullable=True),
        sa.Column("measuring_period", sa.Integer(), nullable=True),
        sa.Column("cost_scale", sa.Integer(), server_default="-5", nullable=False),
        sa.ForeignKeyConstraint(
            ["usage_point_id"],
            ["usage_points.id"],
            name=op.f("fk_meter_readings_usage_point_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_readings")),
        sa.UniqueConstraint("usage_point_id", "key", name=op.f("uq_meter_readings_usage_point_id")),
    )
    op.create_table(
        "readings",
        sa.Column("meter_reading_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("usage_point_id", sa.Integer(), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("raw_value", sa.BigInteger(), nullable=True),
        sa.Column("multiplier", sa.SmallInteger(), nullable=False),
        sa.Column("uom", sa.SmallInteger(), nullable=True),
        sa.Column("cost", sa.BigInteger(), nullable=True),
        sa.Column("quality", sa.Integer(), nullable=True),
        sa.Column("quality_codes", sa.Text(), nullable=True),
        sa.Column("tou", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["meter_reading_id"],
            ["meter_readings.id"],
            name=op.f("fk_readings_meter_reading_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("meter_reading_id", "start", name=op.f("pk_readings")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("readings")
    op.drop_table("meter_readings")
    op.drop_table("usage_points")
    with op.batch_alter_table("ingest_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_ingest_jobs_state")

    op.drop_table("ingest_jobs")
    op.drop_table("authorizations")
    op.drop_table("utilities")
