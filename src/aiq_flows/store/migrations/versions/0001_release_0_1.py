"""The store as release 0.1 created it (`create_all`, before migrations): the side-effect ledger,
the watermarks and the deferral schedules. A store of that release has these tables and no
version table: `aiq-flows db upgrade` stamps it with this revision, then upgrades it.

Revision ID: 0001
Revises:
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
        "aiq_documents",
        sa.Column("entity", sa.String(50), primary_key=True),
        sa.Column("external_reference", sa.String(50), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("source_id", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("transaction_id", sa.Integer),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_at", sa.DateTime),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error_code", sa.String(120)),
        sa.Column("message", sa.Text),
        sa.Column("source_version", sa.String(64)),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_aiq_documents_state", "aiq_documents", ["state"])
    op.create_table(
        "sync_watermarks",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("record_id", sa.Integer, nullable=False),
    )
    op.create_table(
        "deferral_schedule",
        sa.Column("entity", sa.String(50), primary_key=True),
        sa.Column("sale_reference", sa.String(50), primary_key=True),
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("revenue_gl", sa.String(50), primary_key=True),
        sa.Column("department_id", sa.String(50), primary_key=True),
        sa.Column("amount", sa.Numeric(18, 4), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("deferred_gl", sa.String(50), nullable=False),
        sa.Column("invoice_transaction_id", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("journal_reference", sa.String(50)),
        sa.Column("journal_transaction_id", sa.Integer),
        sa.Column("posted_on", sa.Date),
        sa.Column("note", sa.String(200)),
        sa.Column("credit_requested", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_deferral_schedule_state", "deferral_schedule", ["state"])
