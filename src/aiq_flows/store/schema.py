"""The store's schema, versioned with Alembic (migrations in `aiq_flows.store.migrations`), so that
an upgrade of the project never loses a store's data.

A new, empty database is brought to the current schema on first use. A store whose schema is
behind the code is refused, with the command that upgrades it (`aiq-flows db upgrade --url URL`):
an upgrade is a deliberate step (a backup first, every worker on the new release). A store made by
release 0.1, before migrations, is recognised by its tables and upgraded from there.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

VERSION_TABLE = "aiq_store_version"
FIRST = "0001"  # the schema release 0.1 made with create_all
_RELEASE_0_1_TABLES = frozenset({"aiq_documents", "sync_watermarks"})


class StoreSchemaBehind(RuntimeError):
    """The store's schema is older than the code: upgrade it before running."""


@dataclass(frozen=True)
class SchemaState:
    revision: str | None  # None: no version table (empty, or a store of release 0.1)
    head: str
    has_tables: bool

    @property
    def current(self) -> bool:
        return self.revision == self.head

    @property
    def empty(self) -> bool:
        return self.revision is None and not self.has_tables


def _config(connection: Connection | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head() -> str:
    revision = ScriptDirectory.from_config(_config(None)).get_current_head()
    if revision is None:  # pragma: no cover - the migrations ship with the package
        raise RuntimeError("the store's migrations are missing")
    return revision


def state(engine: Engine) -> SchemaState:
    with engine.connect() as connection:
        revision = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
        tables = set(inspect(connection).get_table_names())
    return SchemaState(revision, head(), bool(tables & _RELEASE_0_1_TABLES))


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the store to the current schema (a store of release 0.1 is stamped first); (from,
    to) revisions."""
    before = state(engine)
    with engine.begin() as connection:
        config = _config(connection)
        if before.revision is None and before.has_tables:
            command.stamp(config, FIRST)
        command.upgrade(config, "head")
    return (before.revision or (FIRST if before.has_tables else None)), before.head


def ensure_current(engine: Engine, where: str) -> None:
    """Use the store only at the current schema: an empty database gets it now (a lost store,
    too: it is read again at every use); one behind is refused, naming the command that upgrades
    it (`where`: the store, without its password)."""
    now = state(engine)
    if now.current:
        return
    if now.empty:
        try:
            upgrade(engine)
        except DBAPIError:
            if not state(engine).current:  # another process created it at the same moment
                raise
        return
    found = now.revision or f"{FIRST} (release 0.1, before migrations)"
    raise StoreSchemaBehind(
        f"the store at {where} has schema {found}, this release needs {now.head}: back it up, then run "
        f"`aiq-flows db upgrade --url <the store's URL>` once, and every worker on this release"
    )
