"""Exactly-once delivery of one document to AccountsIQ, whatever the document is.

AIQ has no idempotency key and does not enforce unique external references, so every create
goes through the same steps: the store first (already posted, or refused and unchanged?), then a
claim (nobody else is sending it), then AIQ by external reference (posted by an earlier run whose
answer was lost, or by hand?), and only then the create. A create whose answer is lost is read
back at once; if AIQ does not show it yet, the document is marked ``unknown`` and the next
attempt reads again before sending. Invoices, journals and (later) two-leg pairs all use this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiq_flows.domain.outcomes import Outcome
from aiq_flows.gateway.errors import AiqBusinessError, AiqTransientError, AiqUnknownOutcome
from aiq_flows.store.outbox import DONE, DocumentRecord, DocumentStore


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


class ExactlyOnceSender:
    def __init__(self, store: DocumentStore, entity: str, run_id: str) -> None:
        self.store, self.entity, self.run_id = store, entity, run_id

    def plan(self, documents: list[Document]) -> dict[str, DocumentRecord]:
        """Record the documents about to be sent; their store records as they stand now."""
        self.store.plan(self.entity, [(d.reference, d.kind, d.source_id) for d in documents])
        return self.store.get(self.entity, [d.reference for d in documents])

    def _settled(self, document: Document, record: DocumentRecord | None) -> Delivery | None:
        if record is not None and record.state in DONE:
            return Delivery(Outcome.ALREADY_PRESENT, record.transaction_id, reason="already posted (store)")
        if record is not None and record.refused_unchanged(document.source_version):
            return Delivery(
                Outcome.FAILED,
                error_code=record.error_code,
                reason=f"AIQ refused {document.reference}: {record.error_code}: {record.message} "
                "(unchanged since; fix the source to resend)",
            )
        return None

    def send(self, document: Document, record: DocumentRecord | None) -> Delivery:
        settled = self._settled(document, record)
        if settled is not None:
            return settled
        ref = document.reference
        if not self.store.claim(self.entity, ref, self.run_id, source_version=document.source_version):
            # Another run got there first: it may have finished since `record` was read.
            settled = self._settled(document, self.store.get(self.entity, [ref]).get(ref))
            return settled or Delivery(
                Outcome.HELD,
                retryable=True,
                reason="another run is sending this document; checked again next run",
            )
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
                reason=f"AIQ refused {ref}: {error.error_code}: {error.error_message}",
            )
        self.store.mark_posted(self.entity, ref, transaction_id)
        return Delivery(Outcome.CREATED, transaction_id)

    def _recover_lost_answer(self, document: Document, lost: AiqUnknownOutcome) -> Delivery:
        """Read before retrying: the answer was lost, the document may well exist."""
        try:
            existing = document.find()
        except (AiqTransientError, AiqBusinessError):
            existing = None
        if existing is not None:
            self.store.mark_posted(self.entity, document.reference, existing)
            return Delivery(
                Outcome.CREATED, existing, reason="answer lost; found in AIQ by external reference"
            )
        self.store.mark_unknown(self.entity, document.reference, str(lost))
        return Delivery(
            Outcome.FAILED,
            error_code="UNKNOWN_OUTCOME",
            reason=f"{lost}; not visible in AIQ yet, verified before any resend",
            retryable=True,
        )
