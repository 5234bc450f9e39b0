"""Exactly-once delivery of one document to AccountsIQ, whatever the document is.

AIQ has no idempotency key and does not enforce unique external references, so every create
goes through the same steps: the store first (already posted, or refused and unchanged?), then a
claim (nobody else is sending it), then AIQ by external reference (posted by an earlier run whose
answer was lost, or by hand?), and only then the create. A create whose answer is lost is read
back at once; if AIQ does not show it yet, the document is marked ``unknown`` and the next
attempt reads again before sending. Invoices and journals use this.

`BulkSender` does the same for many documents at once, for bulk operations: the store is read
and claimed in a few statements, AIQ is read once for all the documents never sent before (a sweep
of their date range, not one lookup per reference), and the documents go out in bulk calls; the
documents of a bulk call whose answer is lost are looked up one by one before anything is resent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from aiq_flows.domain.outcomes import Outcome
from aiq_flows.gateway.errors import AiqBusinessError, AiqTransientError, AiqUnknownOutcome
from aiq_flows.gateway.models import RowResult
from aiq_flows.secrets import redact
from aiq_flows.store.outbox import DEFAULT_LEASE, DONE, DocumentRecord, DocumentStore


@dataclass(frozen=True)
class Document:
    reference: str  # the external reference: the key of exactly-once
    kind: str
    source_id: str
    source_version: str  # resend a refused document only when its source changed
    find: Callable[[], int | None]  # the transaction AIQ already holds under this reference
    create: Callable[[], int]  # send it; the new transaction's ID


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    transaction_id: int | None = None
    error_code: str | None = None
    reason: str | None = None
    retryable: bool = False


# A posted document is never changed by a re-run: AIQ keeps what was posted, and the report says
# that its source changed since, for someone to credit it and post it again if the change matters.
CHANGED_AFTER_POSTING = "CHANGED_AFTER_POSTING"


def settled(reference: str, source_version: str, record: DocumentRecord | None) -> Delivery | None:
    """What the store alone says: posted already, or refused and unchanged since (no resend)."""
    if record is not None and record.state in DONE:
        if record.source_version is not None and record.source_version != source_version:
            return Delivery(
                Outcome.ALREADY_PRESENT,
                record.transaction_id,
                error_code=CHANGED_AFTER_POSTING,
                reason=f"already posted as transaction {record.transaction_id}; its source changed since "
                f"(version {record.source_version} posted, now {source_version}): AIQ keeps the posted "
                "document, credit it to change it",
            )
        return Delivery(Outcome.ALREADY_PRESENT, record.transaction_id, reason="already posted (store)")
    if record is not None and record.refused_unchanged(source_version):
        return Delivery(
            Outcome.FAILED,
            error_code=record.error_code,
            reason=f"AIQ refused {reference}: {record.error_code}: {record.message} "
            "(unchanged since; fix the source to resend)",
        )
    return None


UNKNOWN_OUTCOME = "UNKNOWN_OUTCOME"
# Anything but the gateway's own errors while sending: treated as a lost answer (read back before
# any resend), and reported as what it was.
UNEXPECTED_ERROR = "UNEXPECTED_ERROR"


def _unexpected(error: Exception) -> AiqUnknownOutcome:
    return AiqUnknownOutcome("send", f"unexpected {type(error).__name__}: {redact(str(error))[:300]}")


def _unverified(lost: AiqUnknownOutcome, code: str) -> Delivery:
    return Delivery(
        Outcome.FAILED,
        error_code=code,
        reason=f"{lost}; not visible in AIQ yet, verified before any resend",
        retryable=True,
    )


def _refused(status: str) -> str:
    return "not sent to AIQ (refused here)" if status == "NotSent" else "AIQ refused"


HELD_BY_ANOTHER_RUN = Delivery(
    Outcome.HELD, retryable=True, reason="another run is sending this document; checked again next run"
)


class _Sender:
    def __init__(
        self, store: DocumentStore, entity: str, run_id: str, lease: timedelta = DEFAULT_LEASE
    ) -> None:
        """`lease`: how long a claim of this run holds before another run may take it over (a run
        killed mid-send leaves its claims behind)."""
        self.store, self.entity, self.run_id, self.lease = store, entity, run_id, lease


class ExactlyOnceSender(_Sender):
    def plan(self, documents: list[Document]) -> dict[str, DocumentRecord]:
        """Record the documents about to be sent; their store records as they stand now."""
        self.store.plan(self.entity, [(d.reference, d.kind, d.source_id) for d in documents])
        return self.store.get(self.entity, [d.reference for d in documents])

    def _settled(self, document: Document, record: DocumentRecord | None) -> Delivery | None:
        return settled(document.reference, document.source_version, record)

    def send(self, document: Document, record: DocumentRecord | None) -> Delivery:
        settled = self._settled(document, record)
        if settled is not None:
            return settled
        ref = document.reference
        if not self.store.claim(
            self.entity, ref, self.run_id, lease=self.lease, source_version=document.source_version
        ):
            # Another run got there first: it may have finished since `record` was read.
            now = self._settled(document, self.store.get(self.entity, [ref]).get(ref))
            return now or HELD_BY_ANOTHER_RUN
        try:
            existing = document.find()
            if existing is not None:
                self.store.mark_posted(self.entity, ref, existing)
                return Delivery(
                    Outcome.ALREADY_PRESENT, existing, reason="already in AIQ (found by external reference)"
                )
            self.store.mark_attempt(self.entity, ref)
            transaction_id = document.create()
        except AiqUnknownOutcome as lost:
            return self._recover_lost_answer(document, lost)
        except AiqTransientError as error:
            self.store.release(self.entity, ref, self.run_id)
            return Delivery(
                Outcome.FAILED, error_code="TRANSIENT", reason=f"{error}; retried next run", retryable=True
            )
        except AiqBusinessError as error:
            self.store.mark_failed(
                self.entity, ref, error.error_code, error.error_message, document.source_version
            )
            return Delivery(
                Outcome.FAILED,
                error_code=error.error_code,
                reason=f"{_refused(error.status)} {ref}: {error.error_code}: {error.error_message}",
            )
        except Exception as error:  # a fault of ours, or an answer nobody foresaw: maybe sent
            return self._recover_lost_answer(document, _unexpected(error), UNEXPECTED_ERROR)
        self.store.mark_posted(self.entity, ref, transaction_id)
        return Delivery(Outcome.CREATED, transaction_id)

    def _recover_lost_answer(
        self, document: Document, lost: AiqUnknownOutcome, code: str = UNKNOWN_OUTCOME
    ) -> Delivery:
        """Read before retrying: the answer was lost, the document may well exist."""
        try:
            existing = document.find()
        except Exception:  # unknown, then: verified again before any resend
            existing = None
        if existing is not None:
            self.store.mark_posted(self.entity, document.reference, existing)
            return Delivery(
                Outcome.CREATED, existing, reason="answer lost; found in AIQ by external reference"
            )
        self.store.mark_unknown(self.entity, document.reference, str(lost))
        return _unverified(lost, code)


@dataclass(frozen=True)
class BulkDocument:
    reference: str
    kind: str
    source_id: str
    source_version: str


# Sweep AIQ for documents already there: {reference: transaction ID} for those found.
FindMany = Callable[[Sequence[BulkDocument]], dict[str, int]]
# Look one document up in AIQ by its reference (a wide date window): its transaction ID, if any.
FindOne = Callable[[BulkDocument], int | None]
# Send documents in one bulk call: one row per document, in order.
CreateMany = Callable[[Sequence[BulkDocument]], list[RowResult]]


class BulkSender(_Sender):
    """Exactly-once for bulk operations: the same steps as `ExactlyOnceSender`, a chunk at a time."""

    def send_all(
        self,
        documents: Sequence[BulkDocument],
        find: FindMany,
        find_one: FindOne,
        create: CreateMany,
        chunk_size: int = 200,
    ) -> dict[str, Delivery]:
        """``find`` sweeps AIQ for documents never sent before; a document an earlier attempt may
        have sent (its answer lost) is looked up on its own with ``find_one``, date moves and all."""
        self.store.plan(self.entity, [(d.reference, d.kind, d.source_id) for d in documents])
        records = self.store.get(self.entity, [d.reference for d in documents])
        deliveries: dict[str, Delivery] = {}
        pending = []
        for document in documents:
            known = settled(document.reference, document.source_version, records.get(document.reference))
            if known is not None:
                deliveries[document.reference] = known
            else:
                pending.append(document)
        claimed = self.store.claim_many(
            self.entity, {d.reference: d.source_version for d in pending}, self.run_id, self.lease
        )
        mine = [d for d in pending if d.reference in claimed]
        others = [d for d in pending if d.reference not in claimed]
        now = self.store.get(self.entity, [d.reference for d in others])
        for document in others:  # another run got there first; it may have finished since
            known = settled(document.reference, document.source_version, now.get(document.reference))
            deliveries[document.reference] = known or HELD_BY_ANOTHER_RUN
        if not mine:
            return deliveries
        tried = {d.reference for d in mine if (r := records.get(d.reference)) is not None and r.attempts > 0}
        try:
            existing = find([d for d in mine if d.reference not in tried])
            for document in (d for d in mine if d.reference in tried):
                transaction_id = find_one(document)
                if transaction_id is not None:
                    existing[document.reference] = transaction_id
        except Exception as error:  # AIQ could not be read: nothing was sent, the claims go back
            self.store.release_many(self.entity, [d.reference for d in mine])
            retry = Delivery(
                Outcome.FAILED,
                error_code="TRANSIENT" if isinstance(error, AiqTransientError) else UNEXPECTED_ERROR,
                reason=f"{redact(str(error))[:300]}; retried next run",
                retryable=True,
            )
            return deliveries | {d.reference: retry for d in mine}
        self.store.mark_posted_many(self.entity, {ref: tx for ref, tx in existing.items()})
        for ref, tx in existing.items():
            deliveries[ref] = Delivery(
                Outcome.ALREADY_PRESENT, tx, reason="already in AIQ (found by external reference)"
            )
        to_send = [d for d in mine if d.reference not in existing]
        for start in range(0, len(to_send), chunk_size):
            deliveries |= self._send_chunk(to_send[start : start + chunk_size], find_one, create)
        return deliveries

    def _send_chunk(
        self, chunk: Sequence[BulkDocument], find_one: FindOne, create: CreateMany
    ) -> dict[str, Delivery]:
        references = [d.reference for d in chunk]
        self.store.mark_attempt_many(self.entity, references)
        try:
            rows = create(chunk)
        except AiqUnknownOutcome as lost:
            return self._recover_lost_answer(chunk, find_one, lost)
        except AiqTransientError as error:
            self.store.release_many(self.entity, references)
            retry = Delivery(
                Outcome.FAILED, error_code="TRANSIENT", reason=f"{error}; retried next run", retryable=True
            )
            return {ref: retry for ref in references}
        except AiqBusinessError as error:
            reason = f"AIQ refused the bulk call: {error.error_code}: {error.error_message}"
            self.store.mark_failed_many(
                self.entity,
                {d.reference: (error.error_code, error.error_message, d.source_version) for d in chunk},
            )
            return {
                ref: Delivery(Outcome.FAILED, error_code=error.error_code, reason=reason)
                for ref in references
            }
        except Exception as error:  # a fault of ours, or an answer nobody foresaw: maybe sent
            return self._recover_lost_answer(chunk, find_one, _unexpected(error), UNEXPECTED_ERROR)
        posted: dict[str, int] = {}
        refused: dict[str, tuple[str, str, str | None]] = {}
        deliveries: dict[str, Delivery] = {}
        for document, row in zip(chunk, rows, strict=True):
            ref = document.reference
            if row.ok and row.transaction_id is not None:
                posted[ref] = row.transaction_id
                deliveries[ref] = Delivery(Outcome.CREATED, row.transaction_id)
            elif not row.ok:
                message = row.error_message or ""
                refused[ref] = (row.error_code, message, document.source_version)
                deliveries[ref] = Delivery(
                    Outcome.FAILED,
                    error_code=row.error_code,
                    reason=f"{_refused(row.status)} {ref}: {row.error_code}: {message}",
                )
        self.store.mark_posted_many(self.entity, posted)
        self.store.mark_failed_many(self.entity, refused)
        unclear = [d for d in chunk if d.reference not in deliveries]  # "ok" without an ID
        if unclear:
            deliveries |= self._recover_lost_answer(
                unclear, find_one, AiqUnknownOutcome("bulk", "a row without an ID")
            )
        return deliveries

    def _recover_lost_answer(
        self,
        chunk: Sequence[BulkDocument],
        find_one: FindOne,
        lost: AiqUnknownOutcome,
        code: str = UNKNOWN_OUTCOME,
    ) -> dict[str, Delivery]:
        """Read before retrying: look each of the chunk's documents up in AIQ."""
        found: dict[str, int] = {}
        for document in chunk:
            try:
                transaction_id = find_one(document)
            except Exception:
                continue  # unknown, then: verified again before any resend
            if transaction_id is not None:
                found[document.reference] = transaction_id
        self.store.mark_posted_many(self.entity, found)
        missing = [d.reference for d in chunk if d.reference not in found]
        self.store.mark_unknown_many(self.entity, missing, str(lost))
        deliveries = {
            ref: Delivery(Outcome.CREATED, tx, reason="answer lost; found in AIQ by external reference")
            for ref, tx in found.items()
        }
        unknown = _unverified(lost, code)
        return deliveries | {ref: unknown for ref in missing}
