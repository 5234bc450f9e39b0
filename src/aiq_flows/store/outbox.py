"""The side-effect ledger ("outbox"): one row per document we intend to create in AccountsIQ.

Keyed by (entity, external reference). A document moves
``planned -> sending -> posted -> written_back``; ``sending`` is a claim with a lease, so two runs
never send the same document at once, and a claim left by a crashed run expires. ``unknown`` marks
a write whose answer was lost: the next attempt must read AccountsIQ before sending again.
``failed`` documents (AIQ refused them) may be claimed again when their source changes.

The store also keeps each source's watermark. SQLite by default, PostgreSQL in production; the
claim is a single conditional UPDATE, atomic on both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import String, Text, bindparam, delete, func, insert, select, true, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from aiq_flows.db import insert_if_absent, make_engine
from aiq_flows.domain.codes import ErrorCode
from aiq_flows.domain.watermark import Watermark
from aiq_flows.store.schema import ensure_current

DEFAULT_LEASE = timedelta(minutes=15)


class DocumentState(StrEnum):
    PLANNED = "planned"
    SENDING = "sending"
    UNKNOWN = "unknown"
    POSTED = "posted"
    WRITTEN_BACK = "written_back"
    FAILED = "failed"
    UNWOUND = "unwound"  # a pair withdrawn at the source: its drafts cancelled, posted legs reversed


DONE = (DocumentState.POSTED, DocumentState.WRITTEN_BACK)


class StoreBase(DeclarativeBase):
    pass


class DocumentRow(StoreBase):
    __tablename__ = "aiq_documents"
    entity: Mapped[str] = mapped_column(String(50), primary_key=True)
    external_reference: Mapped[str] = mapped_column(String(50), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), index=True)
    transaction_id: Mapped[int | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    error_code: Mapped[str | None] = mapped_column(String(120))
    message: Mapped[str | None] = mapped_column(Text)
    # The source record's version (e.g. its updated_at) when AIQ refused it: resend only a changed one.
    source_version: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class WatermarkRow(StoreBase):
    __tablename__ = "sync_watermarks"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    updated_at: Mapped[datetime]
    record_id: Mapped[str] = mapped_column(String(100))


class SourceRecordRow(StoreBase):
    """What a read-only source (no write-back columns) would have been told about each record:
    its status (posted, quarantined, failed, pending), message and transaction."""

    __tablename__ = "source_records"
    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    message: Mapped[str | None] = mapped_column(Text)
    transaction_id: Mapped[int | None]
    synced_at: Mapped[datetime]


class WriterRow(StoreBase):
    """The run that holds an entity's write limit, for the runs waiting for it to name."""

    __tablename__ = "aiq_writers"
    entity: Mapped[str] = mapped_column(String(50), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    run_name: Mapped[str] = mapped_column(String(100))
    since: Mapped[datetime]


@dataclass(frozen=True)
class Writer:
    run_id: str
    run_name: str
    since: datetime


class CustomerCodeRow(StoreBase):
    """Which CRM customer an AIQ customer code belongs to: the first one synced on it."""

    __tablename__ = "aiq_customer_codes"
    entity: Mapped[str] = mapped_column(String(50), primary_key=True)
    code: Mapped[str] = mapped_column(String(50), primary_key=True)
    source_key: Mapped[str] = mapped_column(String(200))
    first_seen: Mapped[datetime]


@dataclass(frozen=True)
class DocumentRecord:
    entity: str
    external_reference: str
    state: DocumentState
    transaction_id: int | None
    claimed_by: str | None
    attempts: int
    error_code: str | None = None
    message: str | None = None
    source_version: str | None = None

    def refused_unchanged(self, source_version: str) -> bool:
        """AIQ refused this document and its source has not changed since: do not resend."""
        return self.state is DocumentState.FAILED and self.source_version == source_version


_IN_LIST = 500  # references per IN (...) clause


def _chunks(references: Iterable[str]) -> Iterable[list[str]]:
    refs = list(references)
    for start in range(0, len(refs), _IN_LIST):
        yield refs[start : start + _IN_LIST]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class DocumentStore:
    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)
        ensure_current(self.engine, self.engine.url.render_as_string(hide_password=True))

    def dispose(self) -> None:
        self.engine.dispose()

    def plan(self, entity: str, documents: Iterable[tuple[str, str, str]]) -> None:
        """Record (external reference, kind, source id) documents we intend to create, once."""
        rows = [
            {
                "entity": entity,
                "external_reference": ref,
                "kind": kind,
                "source_id": source,
                "state": DocumentState.PLANNED.value,
                "attempts": 0,
                "updated_at": _now(),
            }
            for ref, kind, source in documents
        ]
        if rows:
            with self.engine.begin() as connection:
                connection.execute(insert_if_absent(self.engine, DocumentRow), rows)

    def get(self, entity: str, references: Iterable[str]) -> dict[str, DocumentRecord]:
        found: dict[str, DocumentRecord] = {}
        with Session(self.engine) as session:
            for chunk in _chunks(references):
                rows = session.scalars(
                    select(DocumentRow).where(
                        DocumentRow.entity == entity, DocumentRow.external_reference.in_(chunk)
                    )
                )
                for row in rows:
                    found[row.external_reference] = DocumentRecord(
                        row.entity,
                        row.external_reference,
                        DocumentState(row.state),
                        row.transaction_id,
                        row.claimed_by,
                        row.attempts,
                        row.error_code,
                        row.message,
                        row.source_version,
                    )
        return found

    def claim(
        self,
        entity: str,
        reference: str,
        owner: str,
        lease: timedelta = DEFAULT_LEASE,
        source_version: str | None = None,
    ) -> bool:
        """Take the right to send this document (`claim_many` for one)."""
        return reference in self.claim_many(entity, {reference: source_version}, owner, lease)

    # One document at a time: the many-documents operations below, on one.

    def mark_attempt(self, entity: str, reference: str) -> None:
        self.mark_attempt_many(entity, [reference])

    def mark_posted(self, entity: str, reference: str, transaction_id: int) -> None:
        self.mark_posted_many(entity, {reference: transaction_id})

    def mark_unknown(self, entity: str, reference: str, message: str) -> None:
        self.mark_unknown_many(entity, [reference], message)

    def mark_failed(
        self, entity: str, reference: str, error_code: str, message: str, source_version: str | None = None
    ) -> None:
        self.mark_failed_many(entity, {reference: (error_code, message, source_version)})

    def mark_unwound(self, entity: str, reference: str) -> None:
        """A pair withdrawn at the source and unwound: final, and no transaction of its own."""
        unwound = DocumentState.UNWOUND.value
        self._set_many(entity, [reference], state=unwound, claimed_by=None, error_code=None, message=None)

    def release(self, entity: str, reference: str, owner: str) -> None:
        """Give a claim back untouched (nothing was sent); only its owner can."""
        self.release_many(entity, [reference], owner)

    # --- the same, for many documents at once (bulk posting) -------------------------------------

    def claim_many(
        self, entity: str, versions: dict[str, str | None], owner: str, lease: timedelta = DEFAULT_LEASE
    ) -> set[str]:
        """Take the right to send these documents ({reference: the source version being sent}), in
        a few statements; the references this owner now holds. A document is not taken while
        another live run holds it, once it is done, or when AIQ refused it and its source has not
        changed since; a claim left by a killed run is taken over once its lease has run out."""
        if not versions:
            return set()
        now = _now()
        sending = DocumentRow.state == DocumentState.SENDING.value
        claimable = (
            # No IN (…): an executemany statement cannot expand a list.
            (DocumentRow.state == DocumentState.PLANNED.value)
            | (DocumentRow.state == DocumentState.UNKNOWN.value)
            | (sending & (DocumentRow.claimed_at < now - lease))  # a killed run's claim
            | (sending & (DocumentRow.claimed_by == owner))  # this run's own, again
            # refused before, and changed since: sent again (no version given: any change counts)
            | (
                (DocumentRow.state == DocumentState.FAILED.value)
                & DocumentRow.source_version.is_distinct_from(bindparam("version", type_=String))
            )
        )
        # The claim records the version it sends: a later run tells a changed source from an
        # unchanged one; without a version the one recorded stays.
        version = func.coalesce(bindparam("version", type_=String), DocumentRow.source_version)
        with self.engine.begin() as connection:
            connection.execute(
                update(DocumentRow)
                .where(
                    DocumentRow.entity == entity,
                    DocumentRow.external_reference == bindparam("ref"),
                    claimable,
                )
                .values(
                    state=DocumentState.SENDING.value,
                    claimed_by=owner,
                    claimed_at=now,
                    updated_at=now,
                    source_version=version,
                ),
                [{"ref": ref, "version": version} for ref, version in versions.items()],
            )
            return {
                ref
                for chunk in _chunks(versions)
                for ref in connection.scalars(
                    select(DocumentRow.external_reference).where(
                        DocumentRow.entity == entity,
                        DocumentRow.external_reference.in_(chunk),
                        sending,
                        DocumentRow.claimed_by == owner,
                        DocumentRow.claimed_at == now,
                    )
                )
            }

    def take_over(self, entity: str, held: dict[str, tuple[str, str | None]], owner: str) -> set[str]:
        """Take these documents' claims ({reference: (the dead owner, the version now sent)}) from
        runs Prefect says are over (crashed, failed, cancelled): at once, without waiting for their
        leases. Only a claim still held by that same owner is taken: a live run that took it in the
        meantime keeps it. The references this owner now holds."""
        if not held:
            return set()
        now = _now()
        with self.engine.begin() as connection:
            connection.execute(
                update(DocumentRow)
                .where(
                    DocumentRow.entity == entity,
                    DocumentRow.external_reference == bindparam("ref"),
                    DocumentRow.state == DocumentState.SENDING.value,
                    DocumentRow.claimed_by == bindparam("dead"),
                )
                .values(
                    claimed_by=owner,
                    claimed_at=now,
                    updated_at=now,
                    source_version=func.coalesce(
                        bindparam("version", type_=String), DocumentRow.source_version
                    ),
                ),
                [{"ref": ref, "dead": dead, "version": version} for ref, (dead, version) in held.items()],
            )
        return {ref for ref, record in self.get(entity, held).items() if record.claimed_by == owner}

    def _set_many(
        self, entity: str, references: Iterable[str], condition: Any = None, **values: object
    ) -> None:
        with self.engine.begin() as connection:
            for chunk in _chunks(references):
                connection.execute(
                    update(DocumentRow)
                    .where(DocumentRow.entity == entity, DocumentRow.external_reference.in_(chunk))
                    .where(true() if condition is None else condition)
                    .values(updated_at=_now(), **values)
                )

    def mark_attempt_many(self, entity: str, references: Iterable[str]) -> None:
        self._set_many(entity, references, attempts=DocumentRow.attempts + 1)

    def release_many(self, entity: str, references: Iterable[str], owner: str | None = None) -> None:
        """Give claims back untouched (nothing was sent): `owner`'s only, when it is given."""
        mine = DocumentRow.claimed_by == owner if owner is not None else true()
        self._set_many(
            entity,
            references,
            (DocumentRow.state == DocumentState.SENDING.value) & mine,
            state=DocumentState.PLANNED.value,
            claimed_by=None,
        )

    def mark_unknown_many(self, entity: str, references: Iterable[str], message: str) -> None:
        self._set_many(
            entity,
            references,
            state=DocumentState.UNKNOWN.value,
            claimed_by=None,
            error_code=ErrorCode.UNKNOWN_OUTCOME.value,
            message=message,
        )

    def mark_posted_many(self, entity: str, transactions: dict[str, int]) -> None:
        """Many documents posted: {reference: transaction ID}, in one database transaction."""
        if not transactions:
            return
        statement = (
            update(DocumentRow)
            .where(DocumentRow.entity == entity, DocumentRow.external_reference == bindparam("ref"))
            .values(
                state=DocumentState.POSTED.value,
                transaction_id=bindparam("tx"),
                claimed_by=None,
                error_code=None,
                message=None,
                updated_at=_now(),
            )
        )
        with self.engine.begin() as connection:
            connection.execute(statement, [{"ref": ref, "tx": tx} for ref, tx in transactions.items()])

    def mark_failed_many(self, entity: str, refusals: dict[str, tuple[str, str, str | None]]) -> None:
        """Many documents refused: {reference: (error code, message, source version)}."""
        if not refusals:
            return
        statement = (
            update(DocumentRow)
            .where(DocumentRow.entity == entity, DocumentRow.external_reference == bindparam("ref"))
            .values(
                state=DocumentState.FAILED.value,
                claimed_by=None,
                error_code=bindparam("code"),
                message=bindparam("msg"),
                source_version=bindparam("version"),
                updated_at=_now(),
            )
        )
        rows = [
            {"ref": ref, "code": code, "msg": message, "version": version}
            for ref, (code, message, version) in refusals.items()
        ]
        with self.engine.begin() as connection:
            connection.execute(statement, rows)

    def mark_written_back(self, entity: str, references: Iterable[str]) -> None:
        with self.engine.begin() as connection:
            for chunk in _chunks(references):
                connection.execute(
                    update(DocumentRow)
                    .where(
                        DocumentRow.entity == entity,
                        DocumentRow.external_reference.in_(chunk),
                        DocumentRow.state == DocumentState.POSTED.value,
                    )
                    .values(state=DocumentState.WRITTEN_BACK.value, updated_at=_now())
                )

    # --- watermarks ------------------------------------------------------------------------------

    def watermark(self, name: str) -> Watermark:
        with Session(self.engine) as session:
            row = session.get(WatermarkRow, name)
            return Watermark(row.updated_at, str(row.record_id)) if row else Watermark.beginning()

    def advance_watermark(self, name: str, mark: Watermark) -> Watermark:
        """Move forward only: a late or concurrent run never moves the watermark back. One insert
        that does nothing if the row exists, then one conditional update: atomic on SQLite and
        PostgreSQL alike, even for two runs writing the first watermark at once."""
        later = (WatermarkRow.updated_at < mark.updated_at) | (
            (WatermarkRow.updated_at == mark.updated_at) & (WatermarkRow.record_id < mark.record_id)
        )
        with self.engine.begin() as connection:
            connection.execute(
                insert_if_absent(self.engine, WatermarkRow).values(
                    name=name, updated_at=mark.updated_at, record_id=mark.record_id
                )
            )
            connection.execute(
                update(WatermarkRow)
                .where(WatermarkRow.name == name, later)
                .values(updated_at=mark.updated_at, record_id=mark.record_id)
            )
        return self.watermark(name)

    # --- customer codes -----------------------------------------------------------------------------

    def code_owners(self, entity: str, codes: Iterable[str]) -> dict[str, str]:
        """{AIQ customer code: the CRM customer key it belongs to} for the codes recorded."""
        owners: dict[str, str] = {}
        with Session(self.engine) as session:
            for chunk in _chunks(codes):
                query = select(CustomerCodeRow.code, CustomerCodeRow.source_key).where(
                    CustomerCodeRow.entity == entity, CustomerCodeRow.code.in_(chunk)
                )
                owners.update({code: key for code, key in session.execute(query)})
        return owners

    def claim_codes(self, entity: str, claims: dict[str, str]) -> None:
        """Record {code: key} where the code has no owner yet: the first run to get there wins,
        on SQLite and PostgreSQL alike (`code_owners` then says who)."""
        if not claims:
            return
        rows = [
            {"entity": entity, "code": code, "source_key": key, "first_seen": _now()}
            for code, key in claims.items()
        ]
        with self.engine.begin() as connection:
            connection.execute(insert_if_absent(self.engine, CustomerCodeRow), rows)

    # --- read-only sources: what their write-back would have said, per record -----------------------

    def record_states(self, source: str, states: Iterable[tuple[str, str, str | None, int | None]]) -> None:
        """(record id, status, message, transaction ID) per record of a read-only source: inserted,
        or updated, but a record once posted stays posted."""
        rows = [
            {
                "source": source,
                "record_id": record_id,
                "status": status,
                "message": message,
                "transaction_id": transaction_id,
                "synced_at": _now(),
            }
            for record_id, status, message, transaction_id in states
        ]
        if not rows:
            return
        posted = SourceRecordRow.status == "posted"
        with self.engine.begin() as connection:
            connection.execute(insert_if_absent(self.engine, SourceRecordRow), rows)
            connection.execute(
                update(SourceRecordRow)
                .where(
                    SourceRecordRow.source == bindparam("in_source"),
                    SourceRecordRow.record_id == bindparam("in_record"),
                    ~posted | (bindparam("new_status") == "posted"),
                )
                .values(
                    status=bindparam("new_status"),
                    message=func.coalesce(bindparam("new_message", type_=String), SourceRecordRow.message),
                    transaction_id=func.coalesce(bindparam("new_tx"), SourceRecordRow.transaction_id),
                    synced_at=bindparam("new_synced_at"),
                ),
                [
                    {
                        "in_source": row["source"],
                        "in_record": row["record_id"],
                        "new_status": row["status"],
                        "new_message": row["message"],
                        "new_tx": row["transaction_id"],
                        "new_synced_at": row["synced_at"],
                    }
                    for row in rows
                ],
            )

    def hold_writer(self, entity: str, run_id: str, run_name: str) -> None:
        """Record that this run holds the entity's write limit (replacing a record a killed run left)."""
        with self.engine.begin() as connection:
            connection.execute(delete(WriterRow).where(WriterRow.entity == entity))
            connection.execute(
                insert(WriterRow).values(entity=entity, run_id=run_id, run_name=run_name[:100], since=_now())
            )

    def release_writer(self, entity: str, run_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                delete(WriterRow).where(WriterRow.entity == entity, WriterRow.run_id == run_id)
            )

    def writer(self, entity: str) -> Writer | None:
        """The run recorded as holding the entity's write limit, if any."""
        with Session(self.engine) as session:
            row = session.get(WriterRow, entity)
            return Writer(row.run_id, row.run_name, row.since) if row is not None else None

    def pending_records(self, source: str) -> list[str]:
        """The records of a read-only source left pending: read again by every run."""
        with Session(self.engine) as session:
            query = select(SourceRecordRow.record_id).where(
                SourceRecordRow.source == source, SourceRecordRow.status == "pending"
            )
            return list(session.scalars(query))

    def known_records(self, source: str, record_ids: Iterable[str]) -> dict[str, tuple[str, int | None]]:
        """{record id: (status, transaction ID)} for those of these records the store has seen."""
        found: dict[str, tuple[str, int | None]] = {}
        with Session(self.engine) as session:
            for chunk in _chunks(record_ids):
                query = select(
                    SourceRecordRow.record_id, SourceRecordRow.status, SourceRecordRow.transaction_id
                ).where(SourceRecordRow.source == source, SourceRecordRow.record_id.in_(chunk))
                found.update(
                    {row.record_id: (row.status, row.transaction_id) for row in session.execute(query)}
                )
        return found
