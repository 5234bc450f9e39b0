"""Each AIQ customer code's owner (never two CRM customers on one code); each read-only source's
record states (what a CRM with write-back columns keeps itself); watermarks keyed by text ids
(Salesforce's, say); schedule amounts stored exactly on SQLite (text, not a float); which run
holds each entity's write limit (named while another run waits for it).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aiq_customer_codes",
        sa.Column("entity", sa.String(50), primary_key=True),
        sa.Column("code", sa.String(50), primary_key=True),
        sa.Column("source_key", sa.String(200), nullable=False),
        sa.Column("first_seen", sa.DateTime, nullable=False),
    )
    op.create_table(
        "source_records",
        sa.Column("source", sa.String(100), primary_key=True),
        sa.Column("record_id", sa.String(100), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("transaction_id", sa.Integer),
        sa.Column("synced_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_source_records_status", "source_records", ["source", "status"])
    op.create_table(
        "aiq_writers",
        sa.Column("entity", sa.String(50), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("run_name", sa.String(100), nullable=False),
        sa.Column("since", sa.DateTime, nullable=False),
    )
    with op.batch_alter_table("sync_watermarks") as table:
        table.alter_column(
            "record_id", type_=sa.String(100), existing_type=sa.Integer, existing_nullable=False
        )
    if op.get_bind().dialect.name == "sqlite":  # NUMERIC there keeps a float; PostgreSQL's is exact
        with op.batch_alter_table("deferral_schedule") as table:
            table.alter_column("amount", type_=sa.String(20), existing_type=sa.Numeric(18, 4))
