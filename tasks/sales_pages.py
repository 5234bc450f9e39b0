"""The steps every sales source shares, a page of records at a time: validate, check customer
codes, make the customers ready in AIQ, the credit check, post in chunks, collect the outcomes.
The nightly sync and the file drop compose them; each step is a task (or task runs per chunk).

Every record of a page ends in exactly one outcome, whatever goes wrong with another: a bad
value quarantines its own sale (validation), a customer AIQ refuses holds its own sales, a
posting chunk that fails as a whole leaves its own sales pending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger
from prefect.utilities.annotations import quote

from aiq_flows.domain.credit import CreditPolicy
from aiq_flows.domain.outcomes import SaleOutcome
from aiq_flows.domain.sales import PostingLimits, ReferenceData, Sale
from aiq_flows.iterables import chunked
from blocks.aiq import AiqConnection
from blocks.store import StateStore
from tasks.credit import CreditResult, credit_check
from tasks.customers import CustomerResolution, check_customer_codes, ensure_customers, needs_code_check
from tasks.invoices import DeferralSettings, PostingSettings, chunk_failed, post_batch_invoices
from tasks.sales import validate_sales

# Chunks are posted by up to this many task runs at once: each prepares its chunk while AIQ works
# on another's bulk call.
POSTING_THREADS = 4

Posting = list[tuple[list[Sale], Any]]  # each chunk of sales with the future of its task run


@dataclass
class CheckedPage:
    valid: list[Sale]  # ready for the credit check: customers in AIQ, codes their own
    outcomes: list[SaleOutcome]  # quarantined, held by limits, customers refused or unavailable


@dataclass
class SalesPages:
    """One run's way through its pages: the customers it resolved and the chunks it numbered."""

    aiq: AiqConnection
    state: StateStore
    reference: ReferenceData
    run_id: str
    deferrals: DeferralSettings
    settings: PostingSettings
    limits: PostingLimits = field(default_factory=PostingLimits)
    policy: CreditPolicy = CreditPolicy.POST
    overdue_days: int | None = None
    planning: bool = False  # a dry run or an approval's plan: read only
    customers: CustomerResolution = field(default_factory=CustomerResolution)
    chunks: int = 0

    def check(self, records: list[dict[str, Any]]) -> CheckedPage:
        """Validate raw records, then make their customers ready (once per customer and run)."""
        # quote(): Prefect would otherwise walk every sale of a page looking for futures.
        checked = validate_sales(quote(records), self.reference, self.limits)
        sales, refused_codes = checked.sales, []
        if needs_code_check(sales, self.customers):  # two CRM customers never share one AIQ account
            codes = check_customer_codes(self.state, self.aiq.company_id, quote(sales), self.planning)
            self.customers.owners.update(codes.owners)
            sales, refused_codes = codes.sales, codes.quarantined
        if self.customers.missing(sales):  # no task run for a page whose customers are known
            self.customers = ensure_customers(self.aiq, quote(sales), quote(self.customers), self.planning)
        valid, refused = self.customers.split(sales)
        return CheckedPage(valid, [*checked.quarantined, *checked.held, *refused_codes, *refused])

    def credit(self, valid: list[Sale]) -> CreditResult:
        if self.policy is CreditPolicy.POST:
            return CreditResult(cleared=valid)
        return credit_check(
            self.aiq, self.state, quote(valid), quote(self.customers), self.policy, self.overdue_days
        )

    def submit(self, credit: CreditResult, in_aiq: dict[str, int] | None) -> Posting:
        """Start posting the cleared sales: one task run per chunk, up to POSTING_THREADS at once."""
        posting: Posting = []
        for chunk in chunked(credit.cleared, self.settings.chunk_size):
            self.chunks += 1
            future = post_batch_invoices.submit(
                self.aiq,
                self.state,
                quote(chunk),
                quote(self.customers),
                self.reference,
                self.run_id,
                self.chunks,
                self.deferrals,
                self.settings.bulk,
                quote(in_aiq),
                self.settings.invoice_kind,
                self.settings.claim_lease_seconds,
            )
            posting.append((chunk, future))
        return posting


def collect(credit: CreditResult, posting: Posting) -> list[SaleOutcome]:
    """The outcomes of a page's posting task runs, in chunk order. A chunk whose task run failed
    as a whole (the store or AIQ out of reach) leaves its sales pending, for the next run to
    read again (AIQ first, for any its claims may have sent); the other chunks go on."""
    outcomes: list[SaleOutcome] = []
    for chunk, future in posting:
        try:
            chunk_outcomes = future.result()
        except Exception as error:
            get_run_logger().error("A posting chunk failed; its %d sales stay pending: %r", len(chunk), error)
            chunk_outcomes = [chunk_failed(sale, error) for sale in chunk]
        outcomes += credit.with_warnings(chunk_outcomes)
    return outcomes
