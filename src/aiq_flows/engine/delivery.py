"""Exactly-once delivery of documents to AccountsIQ, whatever the documents are.

AIQ has no idempotency key and does not enforce unique external references, so every create goes
through the same steps, one state machine for every document (the store's states in brackets):

1. the store first: posted already [posted, written_back], or refused and unchanged since
   [failed with the same source version]? Then nothing is sent;
2. a claim [planned / unknown / failed-and-changed / an expired claim -> sending]: nobody else
   sends it while this run does;
3. AIQ by external reference: posted by an earlier run whose answer was lost, or by hand? Then it
   is recorded [posted], not sent;
4. the create [attempts + 1], and its answer: created [posted], refused [failed, with the source
   version it refused], not sent at all (AIQ out of reach) [planned again], or no answer: read back
   at once, and if AIQ does not show it yet [unknown], read again before any resend.

`BulkSender` runs the steps for many documents at once, for bulk operations: the store is read and
claimed in a few statements, AIQ is read once for all the documents never sent before (a sweep of
their date range, not one lookup per reference), and the documents go out in bulk calls; the
documents of a bulk call whose answer is lost are looked up one by one before anything is resent.
`ExactlyOnceSender` is the same machine for one document at a time (a bulk of one), for operations
that have no bulk form (journals, single invoices).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from aiq_flows.domain.codes import ErrorCode
from aiq_flows.domain.outcomes import POSTED_UNCHANGED, Outcome
from aiq_flows.domain.versions import changed_since
from aiq_flows.gateway.errors import (
    AiqAuthenticationError,
    AiqBusinessError,
    AiqTransientError,
    AiqUnknownOutcome,
)
from aiq_flows.gateway.models import RowResult
from aiq_flows.secrets import redact
from aiq_flows.store.outbox import DEFAULT_LEASE, DONE, DocumentRecord, DocumentState, DocumentStore

# Errors that say AIQ did not process the request: nothing was sent, the claim goes back.
NOT_SENT = (AiqTransientError, AiqAuthenticationError)


@dataclass(frozen=True)
class BulkDocument:
    reference: str  # the external reference: the key of exactly-once
    kind: str
    source_id: str
    source_version: str  # resend a refused document only when its source changed


@dataclass(frozen=True)
class Document(BulkDocument):
    """One document with its own lookup and create (for `ExactlyOnceSender`)."""

    find: Callable[[], int | None]  # the transaction AIQ already holds under it, if any
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
CHANGED_AFTER_POSTING = ErrorCode.CHANGED_AFTER_POSTING


def settled(reference: str, source_version: str, record: DocumentRecord | None) -> Delivery | None:
    """What the store alone says: posted already, or refused and unchanged since (no resend)."""
    if record is not None and record.state in DONE:
        if changed_since(record.source_version, source_version):
            return Delivery(
                Outcome.ALREADY_PRESENT,
                record.transaction_id,
                error_code=CHANGED_AFTER_POSTING,
                reason=f"already posted as transaction {record.transaction_id}; its source changed since "
                f"(version {record.source_version} posted, now {source_version}): AIQ keeps the posted "
                "document, credit it to change it",
            )
        return Delivery(Outcome.ALREADY_PRESENT, record.transaction_id, reason=POSTED_UNCHANGED)
    if record is not None and record.refused_unchanged(source_version):
        return Delivery(
            Outcome.FAILED,
            error_code=record.error_code,
            reason=f"AIQ refused {reference}: {record.error_code}: {record.message} "
            "(unchanged since; fix the source to resend)",
        )
    return None


HELD_BY_ANOTHER_RUN = Delivery(
    Outcome.HELD, retryable=True, reason="another run is sending this document; checked again next run"
)
FOUND_IN_AIQ = "already in AIQ (found by external reference)"


def _not_sent(error: Exception) -> Delivery:
    """AIQ could not be asked: nothing was sent, the next run tries again."""
    code = ErrorCode.TRANSIENT if isinstance(error, NOT_SENT) else ErrorCode.UNEXPECTED_ERROR
    return Delivery(
        Outcome.FAILED,
        error_code=code,
        reason=f"{redact(str(error))[:300]}; retried next run",
        retryable=True,
    )


def _unexpected(error: Exception) -> AiqUnknownOutcome:
    return AiqUnknownOutcome("send", f"unexpected {type(error).__name__}: {redact(str(error))[:300]}")


def _refused_here(status: str) -> str:
    return "not sent to AIQ (refused here)" if status == "NotSent" else "AIQ refused"


# Sweep AIQ for documents never sent before: {reference: transaction ID} for those found.
FindMany = Callable[[Sequence[BulkDocument]], dict[str, int]]
# Look one document up in AIQ by its reference (a wide date window): its transaction ID, if any.
FindOne = Callable[[BulkDocument], int | None]
# Send documents in one bulk call: one row per document, in order.
CreateMany = Callable[[Sequence[BulkDocument]], list[RowResult]]


# Which of these runs (claim owners) are over, by the orchestrator's word: their claims can be
# taken at once instead of when their leases run out.
DeadRuns = Callable[[set[str]], dict[str, str]]  # {run id: its final state's name}


def _none_dead(_owners: set[str]) -> dict[str, str]:
    return {}


class BulkSender:
    def __init__(
        self,
        store: DocumentStore,
        entity: str,
        run_id: str,
        lease: timedelta = DEFAULT_LEASE,
        dead_runs: DeadRuns = _none_dead,
    ) -> None:
        """`lease`: how long a claim of this run holds before another run may take it over (a run
        killed mid-send leaves its claims behind); `dead_runs` says which claim owners are known
        to be over, whose claims are taken over at once."""
        self.store, self.entity, self.run_id, self.lease = store, entity, run_id, lease
        self.dead_runs = dead_runs

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
        others = [d for d in pending if d.reference not in claimed]
        now = self.store.get(self.entity, [d.reference for d in others])
        taken, dead = self._take_from_dead_runs(others, now)
        claimed |= taken
        mine = [d for d in pending if d.reference in claimed]
        for document in others:  # another run got there first; it may have finished since
            if document.reference in taken:
                continue
            known = settled(document.reference, document.source_version, now.get(document.reference))
            deliveries[document.reference] = known or HELD_BY_ANOTHER_RUN
        if not mine:
            return deliveries
        # A document a dead run held may have been sent: looked up on its own before any resend.
        tried = {
            d.reference
            for d in mine
            if d.reference in taken or ((r := records.get(d.reference)) is not None and r.attempts > 0)
        }
        try:
            existing = find([d for d in mine if d.reference not in tried])
            for document in (d for d in mine if d.reference in tried):
                transaction_id = find_one(document)
                if transaction_id is not None:
                    existing[document.reference] = transaction_id
        except Exception as error:  # AIQ could not be read: nothing was sent, the claims go back
            self.store.release_many(self.entity, [d.reference for d in mine])
            return deliveries | dict.fromkeys((d.reference for d in mine), _not_sent(error))
        self.store.mark_posted_many(self.entity, existing)
        for ref, tx in existing.items():
            deliveries[ref] = Delivery(Outcome.ALREADY_PRESENT, tx, reason=FOUND_IN_AIQ)
        to_send = [d for d in mine if d.reference not in existing]
        for start in range(0, len(to_send), chunk_size):
            deliveries |= self._send_chunk(to_send[start : start + chunk_size], find_one, create)
        for ref, owner in dead.items():  # the report says whose claim this run finished
            if ref in deliveries:
                delivery = deliveries[ref]
                note = f"claim taken over from run {owner}"
                deliveries[ref] = replace(
                    delivery, reason=f"{delivery.reason}; {note}" if delivery.reason else note
                )
        return deliveries

    def _take_from_dead_runs(
        self, others: Sequence[BulkDocument], now: dict[str, DocumentRecord]
    ) -> tuple[set[str], dict[str, str]]:
        """The claims of `others` held by runs the orchestrator says are over, taken now:
        (references taken, {reference: "<run id> (<its state>)"})."""
        held = {
            d.reference: (record.claimed_by, d.source_version)
            for d in others
            if (record := now.get(d.reference)) is not None
            and record.state is DocumentState.SENDING
            and record.claimed_by is not None
        }
        if not held:
            return set(), {}
        over = self.dead_runs({owner for owner, _ in held.values()})
        dead = {ref: owner_version for ref, owner_version in held.items() if owner_version[0] in over}
        taken = self.store.take_over(self.entity, {ref: (o, v) for ref, (o, v) in dead.items()}, self.run_id)
        return taken, {ref: f"{dead[ref][0]} ({over[dead[ref][0]]})" for ref in taken}

    def _send_chunk(
        self, chunk: Sequence[BulkDocument], find_one: FindOne, create: CreateMany
    ) -> dict[str, Delivery]:
        references = [d.reference for d in chunk]
        self.store.mark_attempt_many(self.entity, references)
        try:
            rows = create(chunk)
        except AiqUnknownOutcome as lost:
            return self._recover_lost_answer(chunk, find_one, lost, ErrorCode.UNKNOWN_OUTCOME)
        except NOT_SENT as error:
            self.store.release_many(self.entity, references)
            return dict.fromkeys(references, _not_sent(error))
        except AiqBusinessError as error:
            reason = f"AIQ refused {'the bulk call' if len(chunk) > 1 else chunk[0].reference}: "
            reason += f"{error.error_code}: {error.error_message}"
            self.store.mark_failed_many(
                self.entity,
                {d.reference: (error.error_code, error.error_message, d.source_version) for d in chunk},
            )
            return dict.fromkeys(
                references, Delivery(Outcome.FAILED, error_code=error.error_code, reason=reason)
            )
        except Exception as error:  # a fault of ours, or an answer nobody foresaw: maybe sent
            return self._recover_lost_answer(chunk, find_one, _unexpected(error), ErrorCode.UNEXPECTED_ERROR)
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
                    reason=f"{_refused_here(row.status)} {ref}: {row.error_code}: {message}",
                )
        self.store.mark_posted_many(self.entity, posted)
        self.store.mark_failed_many(self.entity, refused)
        unclear = [d for d in chunk if d.reference not in deliveries]  # "ok" without an ID
        if unclear:
            deliveries |= self._recover_lost_answer(
                unclear, find_one, AiqUnknownOutcome("bulk", "a row without an ID"), ErrorCode.UNKNOWN_OUTCOME
            )
        return deliveries

    def _recover_lost_answer(
        self, chunk: Sequence[BulkDocument], find_one: FindOne, lost: AiqUnknownOutcome, code: ErrorCode
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
        unknown = Delivery(
            Outcome.FAILED,
            error_code=code,
            reason=f"{lost}; not visible in AIQ yet, verified before any resend",
            retryable=True,
        )
        return deliveries | dict.fromkeys(missing, unknown)


class ExactlyOnceSender(BulkSender):
    """The same state machine for documents sent one call each: a bulk of one, whose lookup and
    create are the document's own."""

    def send(self, document: Document) -> Delivery:
        return self.send_each([document])[document.reference]

    def send_each(self, documents: Sequence[Document]) -> dict[str, Delivery]:
        """Each document in its own call (the store read and claimed for all of them at once)."""
        by_reference = {d.reference: d for d in documents}

        def find(chunk: Sequence[BulkDocument]) -> dict[str, int]:
            found = {d.reference: by_reference[d.reference].find() for d in chunk}
            return {ref: tx for ref, tx in found.items() if tx is not None}

        def create(chunk: Sequence[BulkDocument]) -> list[RowResult]:
            [document] = chunk
            try:
                transaction_id = by_reference[document.reference].create()
            except AiqBusinessError as refused:  # this document's refusal, like a bulk row's
                return [
                    RowResult(
                        status=refused.status,
                        error_code=refused.error_code,
                        error_message=refused.error_message,
                    )
                ]
            return [RowResult(status="Success", error_code="", transaction_id=transaction_id)]

        return self.send_all(
            documents, find, lambda d: by_reference[d.reference].find(), create, chunk_size=1
        )
