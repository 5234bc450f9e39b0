"""Alembic's environment for the store: run by `aiq_flows.store.schema` on a connection it
passes in (never from an alembic.ini, never with a URL of its own)."""

from __future__ import annotations

from alembic import context

from aiq_flows.store.schema import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=None,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite alters a table by copying it
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
