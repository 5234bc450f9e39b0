"""Where every input record ends, and the run report that proves nothing was lost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from aiq_flows.domain.codes import ErrorCode
from aiq_flows.domain.sales import Sale

# Read again (its change time moved: an edit undone, or the write-back itself in a CRM that stamps
# every update) but its content is what was posted: nothing to do.
POSTED_UNCHANGED = "already posted, unchanged since (store)"


class Outcome(StrEnum):
    CREATED = "created"
    ALREADY_PRESENT = "already_present"
    HELD = "held"
    QUARANTINED = "quarantined"
    FAILED = "failed"


class CrmStatus(StrEnum):
    """What is written back to the CRM; ``pending`` rows are picked up again by the next run."""

    POSTED = "posted"
    QUARANTINED = "quarantined"
    FAILED = "failed"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)  # a night's run keeps one per sale: keep them small
class SaleOutcome:
    sale_id: int | str  # a source id that is not a whole number only on a quarantined record
    reference: str | None
    outcome: Outcome
    external_reference: str | None = None
    customer_code: str | None = None
    gross_total: Decimal | None = None
    currency: str | None = None
    transaction_id: int | None = None
    error_code: str | None = None
    reason: str | None = None
    retryable: bool = False

    @property
    def crm_status(self) -> CrmStatus:
        if self.outcome in (Outcome.CREATED, Outcome.ALREADY_PRESENT):
            return CrmStatus.POSTED
        if self.outcome is Outcome.QUARANTINED:
            return CrmStatus.QUARANTINED
        if self.outcome is Outcome.HELD or self.retryable:
            return CrmStatus.PENDING
        return CrmStatus.FAILED

    @property
    def crm_message(self) -> str | None:
        """The words for the source's message column, or None to leave them as they are: a sale
        read again and found posted and unchanged keeps the words of the run that posted it (a
        credit warning, say), and a CRM that stamps every update is not stamped again."""
        if self.outcome is Outcome.ALREADY_PRESENT and self.error_code is None:
            return None
        return (self.reason or self.outcome.value)[:2000]


def id_order(sale_id: int | str | None) -> tuple[int, int, str]:
    """Sorts source ids: whole numbers in numeric order, then any other id as text."""
    if isinstance(sale_id, int):
        return (0, sale_id, "")
    return (1, 0, "" if sale_id is None else str(sale_id))


def outcome_for(sale: Sale, outcome: Outcome, **details: Any) -> SaleOutcome:
    """An outcome for a validated sale, carrying its references and total for the report."""
    return SaleOutcome(
        sale_id=sale.sale_id,
        reference=sale.reference,
        outcome=outcome,
        external_reference=sale.external_reference,
        customer_code=sale.customer_code,
        gross_total=sale.gross_total,
        currency=sale.currency,
        **details,
    )


@dataclass(frozen=True)
class RunSummary:
    input_count: int
    counts: dict[Outcome, int]

    @property
    def accounted_for(self) -> int:
        return sum(self.counts.values())

    @property
    def adds_up(self) -> bool:
        return self.accounted_for == self.input_count


class CountsDoNotAddUp(RuntimeError):
    pass


def summarize(outcomes: Iterable[SaleOutcome], input_count: int) -> RunSummary:
    """Count outcomes per kind; each input must end in exactly one outcome."""
    outcomes = list(outcomes)
    seen = Counter(o.sale_id for o in outcomes)
    repeated = sorted((sale_id for sale_id, n in seen.items() if n > 1), key=id_order)
    if repeated:
        raise CountsDoNotAddUp(f"sales with more than one outcome: {repeated[:20]}")
    counts = {kind: 0 for kind in Outcome}
    for outcome in outcomes:
        counts[outcome.outcome] += 1
    return RunSummary(input_count, counts)


def needs_attention(outcome: SaleOutcome) -> bool:
    """Whether a person has something to do about this sale: it is held, quarantined or failed,
    or it changed in the source after its invoice was posted."""
    return (
        outcome.outcome in (Outcome.HELD, Outcome.QUARANTINED, Outcome.FAILED)
        or outcome.error_code == ErrorCode.CHANGED_AFTER_POSTING
    )


@dataclass
class OutcomeTally:
    """A run's outcomes counted as its pages settle, with the first `keep` that need a person:
    flat in memory whatever the night's size (the ids seen, to refuse a sale ending twice, are the
    one thing kept per sale; the full list goes to the run's results file)."""

    keep: int = 1000
    counts: Counter[Outcome] = field(default_factory=Counter)
    attention: list[SaleOutcome] = field(default_factory=list)
    needing_attention: int = 0
    changed_after_posting: int = 0
    unchanged_rereads: int = 0
    _seen: set[str] = field(default_factory=set)

    def add(self, outcomes: Iterable[SaleOutcome]) -> None:
        for outcome in outcomes:
            key = str(outcome.sale_id)
            if key in self._seen:
                raise CountsDoNotAddUp(f"sale {outcome.sale_id!r} has more than one outcome")
            self._seen.add(key)
            self.counts[outcome.outcome] += 1
            self.changed_after_posting += outcome.error_code == ErrorCode.CHANGED_AFTER_POSTING
            self.unchanged_rereads += outcome.reason == POSTED_UNCHANGED
            if needs_attention(outcome):
                self.needing_attention += 1
                if len(self.attention) < self.keep:
                    self.attention.append(outcome)

    def summary(self, input_count: int) -> RunSummary:
        return RunSummary(input_count, {kind: self.counts[kind] for kind in Outcome})
