"""The steps every sales source shares, a page of records at a time, as AIQ's guide lists them:
validate, make the customers ready in AIQ (each AIQ code one CRM customer's), the credit check,
post the invoices in chunks, and write the outcomes back. The nightly sync and the file drop
compose them; each step is a task (or a task run per chunk).

Pages are pipelined: a page is read and checked while the previous one is being posted, and the
previous one is settled (its outcomes written back) while this one posts. Every record of a page
ends in exactly one outcome, whatever goes wrong with another: a bad value quarantines its own
sale, a customer AIQ refuses holds its own sales, a posting chunk that fails as a whole leaves its
own sales pending.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger

from aiq_flows.domain.credit import CreditPolicy
from aiq_flows.domain.outcomes import Outcome, SaleOutcome
from aiq_flows.domain.sales import PostingLimits, ReferenceData, Sale
from aiq_flows.iterables import chunked
from blocks.aiq import AiqConnection
from blocks.store import StateStore
from tasks.credit import CreditResult, credit_check
from tasks.customers import CustomerResolution, check_customer_codes, ensure_customers, needs_code_check
from tasks.invoices import DeferralSettings, PostingSettings, chunk_failed, post_batch_invoices
from tasks.reporting import MAX_TABLE_ROWS, RunReport
from tasks.sales import validate_sales
from tasks.typed_prefect import as_is

# Chunks are posted by up to this many task runs at once: each prepares its chunk while AIQ works
# on another's bulk call.
POSTING_THREADS = 4

Posting = list[tuple[list[Sale], Any]]  # each chunk of sales with the future of its task run
# What a source does with a settled page: (the sales posted or tried, every outcome of the page).
Settle = Callable[[list[Sale], list[SaleOutcome]], None]


def _nothing(_sales: list[Sale], _outcomes: list[SaleOutcome]) -> None:
    return None


@dataclass
class CheckedPage:
    valid: list[Sale]  # ready for the credit check: customers in AIQ, codes their own
    outcomes: list[SaleOutcome]  # quarantined, held by limits, customers refused or unavailable


@dataclass
class _InFlight:
    """A page being posted: its cleared sales, the outcomes it already has, its chunks' runs."""

    credit: CreditResult
    outcomes: list[SaleOutcome]
    posting: Posting


@dataclass
class SalesPages:
    """One run's way through its pages: what it resolved, what it posted, every outcome."""

    aiq: AiqConnection
    state: StateStore
    reference: ReferenceData
    run_id: str
    deferrals: DeferralSettings
    settings: PostingSettings
    limits: PostingLimits = field(default_factory=PostingLimits)
    policy: CreditPolicy = CreditPolicy.POST
    overdue_days: int | None = None
    planning: bool = False  # a dry run or an approval's plan: read only, nothing posted
    on_settled: Settle = _nothing  # the source's write-back of a settled page
    report: RunReport | None = None  # every settled outcome goes to it (counts, results file)
    in_aiq: dict[str, int] | None = None  # the run's sweep of AIQ (read before write)
    customers: CustomerResolution = field(default_factory=CustomerResolution)
    outcomes: list[SaleOutcome] = field(default_factory=list)  # a plan's outcomes (planning only)
    planned: list[Sale] = field(default_factory=list)  # what a plan would post
    # Deferred sales invoiced by this run: the first MAX_TABLE_ROWS for the schedules table (every
    # schedule is in the store), and how many in all; memory stays flat however big the night.
    deferred: list[Sale] = field(default_factory=list)
    deferred_invoiced: int = 0
    chunks: int = 0
    _in_flight: _InFlight | None = None

    def add(self, records: list[dict[str, Any]]) -> None:
        """One page of raw records: validate, customers, credit check, then post it (or, planning,
        plan it) while the previous page settles."""
        page = self.check(records)
        records.clear()  # the raw rows are not needed once validated: memory stays flat
        if self.policy is not CreditPolicy.POST:
            self.settle()  # the balances the credit check reads must include the previous page
        credit = self.credit(page.valid)
        outcomes = [*page.outcomes, *credit.held]
        if self.planning:
            self.outcomes += outcomes
            self.planned += credit.cleared
            return
        posting = self.submit(credit)
        self.settle()
        self._in_flight = _InFlight(credit, outcomes, posting)

    def settle(self) -> None:
        """The page in flight, if any: its chunks' outcomes collected and handed to the source."""
        flight, self._in_flight = self._in_flight, None
        if flight is None:
            return
        outcomes = flight.outcomes + collect(flight.credit, flight.posting)
        self.on_settled(flight.credit.cleared, outcomes)
        if self.report is not None:
            self.report.add(outcomes)  # not kept here: memory stays flat however big the night
        created = {o.sale_id for o in outcomes if o.outcome is Outcome.CREATED}
        invoiced = [s for s in flight.credit.cleared if s.is_deferred and s.sale_id in created]
        self.deferred_invoiced += len(invoiced)
        self.deferred += invoiced[: max(0, MAX_TABLE_ROWS - len(self.deferred))]

    def post_approved(self) -> None:
        """Post exactly the approved plan: its customers' codes recorded and its new customers
        created now (one AIQ refuses now, or whose code another took meanwhile, keeps its sales
        back), then settled like any page, the plan's other outcomes with it."""
        codes = check_customer_codes(self.state, self.aiq.company_id, as_is(self.planned))
        known = self.customers.without_planned()
        self.customers = ensure_customers(self.aiq, as_is(codes.sales), as_is(known))
        cleared, refused = self.customers.split(codes.sales)
        earlier, self.outcomes, self.planning = self.outcomes, [], False
        approved = CreditResult(cleared=cleared)
        self._in_flight = _InFlight(approved, [*earlier, *refused, *codes.quarantined], self.submit(approved))
        self.settle()

    def check(self, records: list[dict[str, Any]]) -> CheckedPage:
        """Validate raw records, then make their customers ready (once per customer and run)."""
        # as_is(): Prefect would otherwise walk every sale of a page looking for futures.
        checked = validate_sales(as_is(records), self.reference, self.limits)
        sales, refused_codes = checked.sales, []
        if needs_code_check(sales, self.customers):  # two CRM customers never share one AIQ account
            codes = check_customer_codes(self.state, self.aiq.company_id, as_is(sales), self.planning)
            self.customers.owners.update(codes.owners)
            sales, refused_codes = codes.sales, codes.quarantined
        if self.customers.missing(sales):  # no task run for a page whose customers are known
            self.customers = ensure_customers(self.aiq, as_is(sales), as_is(self.customers), self.planning)
        valid, refused = self.customers.split(sales)
        return CheckedPage(valid, [*checked.quarantined, *checked.held, *refused_codes, *refused])

    def credit(self, valid: list[Sale]) -> CreditResult:
        if self.policy is CreditPolicy.POST:
            return CreditResult(cleared=valid)
        return credit_check(
            self.aiq, self.state, as_is(valid), as_is(self.customers), self.policy, self.overdue_days
        )

    def submit(self, credit: CreditResult) -> Posting:
        """Start posting the cleared sales: one task run per chunk, up to POSTING_THREADS at once."""
        posting: Posting = []
        for chunk in chunked(credit.cleared, self.settings.chunk_size):
            self.chunks += 1
            future = post_batch_invoices.submit(
                self.aiq,
                self.state,
                as_is(chunk),
                as_is(self.customers),
                self.reference,
                self.run_id,
                self.chunks,
                self.deferrals,
                self.settings.bulk,
                as_is(self.in_aiq),
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
