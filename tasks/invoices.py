"""Post batch sales invoices exactly once (`aiq_flows.engine.delivery`), one chunk per task run.

A deferred sale (one with a service period) is invoiced in full to the deferred revenue account,
and its monthly release schedule is stored with the invoice's transaction ID.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TypeVar

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE

from aiq_flows.domain.codes import ErrorCode, invalid
from aiq_flows.domain.deferrals import deferral_schedule
from aiq_flows.domain.outcomes import Outcome, SaleOutcome, outcome_for
from aiq_flows.domain.sales import InvoiceKind, ReferenceData, Sale, SaleLine
from aiq_flows.domain.spreading import Allocation, Method
from aiq_flows.domain.versions import content_version
from aiq_flows.engine.delivery import BulkDocument, BulkSender, Delivery, Document, ExactlyOnceSender
from aiq_flows.engine.item_invoices import create_and_post, post_waiting_draft, read_item
from aiq_flows.gateway.client import AiqGateway
from aiq_flows.gateway.errors import AiqTransientError
from aiq_flows.gateway.models import BatchInvoiceLine, BatchSalesInvoice, Invoice, InvoiceLine, RowResult
from aiq_flows.secrets import redact
from aiq_flows.store.outbox import DEFAULT_LEASE
from aiq_flows.store.schedules import InvoicedSchedule, ScheduleStore
from blocks.aiq import AiqConnection
from blocks.store import StateStore
from tasks.customers import CustomerResolution
from tasks.lookups import find_by_sweep, find_transaction, references_in_window
from tasks.reporting import MAX_TABLE_ROWS
from tasks.retry import retry_transient_aiq_errors
from tasks.runs import runs_over

D = TypeVar("D")
DOCUMENT_KIND = "batch_sales_invoice"
ITEM_DOCUMENT_KIND = "item_sales_invoice"
SALES_INVOICE_TYPE = "SI"


@dataclass(frozen=True)
class PostingSettings:
    bulk: bool = True  # one bulk call per chunk (after one sweep of AIQ), or one call per invoice
    chunk_size: int = 200
    invoice_kind: InvoiceKind = "batch"  # when the sale does not say
    claim_lease_seconds: float = DEFAULT_LEASE.total_seconds()  # a killed run's claims expire


@dataclass(frozen=True)
class DeferralSettings:
    deferred_revenue_gl: str = "2400"
    method: Method = Method.EQUAL_MONTHS
    allocation: Allocation = Allocation.LARGEST_REMAINDER


def batch_invoice(
    template: BatchSalesInvoice, sale: Sale, reference: ReferenceData, deferred_revenue_gl: str
) -> BatchSalesInvoice:
    """The batch invoice for a sale, on AIQ's template for its customer, with the CRM's VAT.
    A deferred sale's net goes to the deferred revenue account, to be released month by month."""
    return template.model_copy(
        update={
            "InvoiceDate": datetime.combine(sale.sale_date, time()),
            "ExternalReference": sale.external_reference,
            "Description": sale.description,
            "DueDate": None,  # AIQ derives it from the invoice date and the customer's credit terms
            "Lines": [
                BatchInvoiceLine(
                    GLAccountCode=deferred_revenue_gl if sale.is_deferred else line.gl_account_code,
                    TaxCode=line.tax_code,
                    Description=line.description,
                    DepartmentID=line.department_id,
                    NetAmount=line.net,
                    TaxRate=float(reference.tax_rates[line.tax_code]),
                    TaxAmount=line.tax,
                )
                for line in sale.lines
            ],
        }
    )


def _quantity_and_price(line: SaleLine) -> tuple[Decimal, Decimal]:
    if line.quantity is not None and line.unit_price is not None:
        return line.quantity, line.unit_price
    return Decimal(1), line.net


def item_invoice(template: Invoice, sale: Sale, deferred_revenue_gl: str) -> Invoice:
    """The item invoice for a sale: order number, delivery date and a line note each; the line's
    quantity and unit price where the source keeps them (their product is its net, checked when
    the sale was validated), else quantity 1 at the net. AIQ computes the VAT from the tax code
    (the CRM's may differ by the rounding AIQ warns about)."""
    when = datetime.combine(sale.sale_date, time())
    return template.model_copy(
        update={
            "ExternalReference": sale.external_reference,
            "InvoiceDate": when,
            "DeliveryDate": when,
            "OrderNumber": sale.reference,
            "Notes": sale.description,
            "Lines": [
                InvoiceLine(
                    StockItemDescription=line.description,
                    Notes=f"{sale.reference} line {line.line_no}",
                    StockItemID=line.item_code,
                    InvoicedQuantity=_quantity_and_price(line)[0],
                    StockItemPrice=_quantity_and_price(line)[1],
                    TaxCode=line.tax_code,
                    GLAccountCode=deferred_revenue_gl if sale.is_deferred else line.gl_account_code,
                    DepartmentID=line.department_id,
                )
                for line in sale.lines
            ],
        },
        deep=True,
    )


def build_each(
    sales: list[Sale], build: Callable[[Sale], D]
) -> tuple[list[tuple[Sale, D]], dict[str, RowResult]]:
    """Each sale's document, or, for a sale whose document cannot be made, a `NotSent` row of its
    own: one sale's fault never stops its chunk. AIQ out of reach (a template read) stops the
    chunk, before anything is sent."""
    built: list[tuple[Sale, D]] = []
    refused: dict[str, RowResult] = {}
    for sale in sales:
        try:
            built.append((sale, build(sale)))
        except AiqTransientError:
            raise
        except Exception as error:
            refused[sale.external_reference] = RowResult(
                status="NotSent",
                error_code=ErrorCode.DOCUMENT_NOT_BUILT,
                error_message=f"{type(error).__name__}: {redact(str(error))[:300]}",
            )
    return built, refused


def source_version(sale: Sale) -> str:
    """The sale's content as read and validated, without its change time (`domain.versions`)."""
    return content_version(sale.model_dump(mode="json", exclude={"updated_at"}))


class InvoicePoster:
    """Posts the sales of one chunk; every sale ends with exactly one outcome."""

    def __init__(
        self,
        gateway: AiqGateway,
        sender: ExactlyOnceSender,
        customers: CustomerResolution,
        reference: ReferenceData,
        deferred_revenue_gl: str,
    ) -> None:
        self.gateway, self.sender, self.accounts = gateway, sender, customers.accounts
        self.reference, self.deferred_revenue_gl = reference, deferred_revenue_gl
        self._templates: dict[str, BatchSalesInvoice] = dict(customers.templates)
        self._item_templates: dict[str, Invoice] = {}

    def _item_templates_for(self, codes: set[str]) -> dict[str, Invoice]:
        """Item invoice templates, many customers in one call (``GetNewSalesInvoices``)."""
        missing = sorted(codes - set(self._item_templates))
        if missing:
            for code, template in zip(missing, self.gateway.new_sales_invoices(missing), strict=True):
                if template is not None:
                    self._item_templates[code] = template
        return self._item_templates

    def _create_items(self, sales: list[Sale]) -> dict[str, RowResult]:
        """Drafts saved in one call, then posted in one call (`create_and_post`). One row per sale,
        by external reference."""
        templates = self._item_templates_for({sale.customer_code for sale in sales})
        drafts, rows = build_each(
            sales, lambda sale: item_invoice(templates[sale.customer_code], sale, self.deferred_revenue_gl)
        )
        if drafts:
            posted = create_and_post(self.gateway, [draft for _, draft in drafts])
            rows |= dict(zip((sale.external_reference for sale, _ in drafts), posted, strict=True))
        return rows

    def _find_item(self, sale: Sale) -> int | None:
        """A posted invoice under the sale's reference; or its item draft, posted now (a run that
        lost its answer left it saved: `post_waiting_draft`)."""
        day = datetime.combine(sale.sale_date, time())
        found = find_transaction(self.gateway, sale.external_reference, day, [SALES_INVOICE_TYPE])
        if found is not None:
            return found
        return post_waiting_draft(self.gateway, read_item(self.gateway, sale.external_reference))

    def _template(self, customer_code: str) -> BatchSalesInvoice:
        if customer_code not in self._templates:
            self._templates[customer_code] = self.gateway.new_batch_sales_invoice(customer_code)
        return self._templates[customer_code]

    def document(self, sale: Sale) -> Document:
        day = datetime.combine(sale.sale_date, time())
        return Document(
            reference=sale.external_reference,
            kind=DOCUMENT_KIND,
            source_id=str(sale.sale_id),
            source_version=source_version(sale),
            find=lambda: find_transaction(self.gateway, sale.external_reference, day, [SALES_INVOICE_TYPE]),
            create=lambda: self.gateway.create_batch_sales_invoice(
                batch_invoice(
                    self._template(sale.customer_code), sale, self.reference, self.deferred_revenue_gl
                )
            ),
        )

    def _currency_problem(self, sale: Sale) -> SaleOutcome | None:
        customer = self.accounts[sale.customer_code]
        if customer.CurrencyCode and customer.CurrencyCode != sale.currency:
            return outcome_for(
                sale,
                Outcome.QUARANTINED,
                error_code=invalid("currency"),
                reason=f"sale {sale.reference!r} (id {sale.sale_id}): currency: {sale.currency} "
                f"differs from AIQ customer {customer.Code}'s currency {customer.CurrencyCode}",
            )
        return None

    def post_each(self, sales: list[Sale]) -> list[SaleOutcome]:
        """The one-call-per-invoice path: each sale's batch invoice in its own call."""
        outcomes: dict[int | str, SaleOutcome] = {}
        ready: list[Sale] = []
        for sale in sales:
            problem = self._currency_problem(sale)
            if problem is not None:
                outcomes[sale.sale_id] = problem
            else:
                ready.append(sale)
        deliveries = self.sender.send_each([self.document(sale) for sale in ready])
        for sale in ready:
            outcomes[sale.sale_id] = _delivered(sale, deliveries[sale.external_reference])
        return [outcomes[sale.sale_id] for sale in sales]

    def post_many(
        self,
        sales: list[Sale],
        sender: BulkSender,
        chunk_size: int,
        in_aiq: dict[str, int] | None = None,
        invoice_kind: InvoiceKind = "batch",
    ) -> list[SaleOutcome]:
        """The bulk path: batch invoices through ``CreateBatchSalesInvoiceBulkGetBackTransactionIDs``,
        item invoices through ``CreateInvoicesGetBackInvoiceIDs`` + ``PostInvoicesGetBackTransactionIDs``
        (the sale's own kind, or `invoice_kind`), each row mapped back to its sale. ``in_aiq`` is
        the run's sweep of AIQ (`sweep_aiq`); without it, the chunk's dates are swept here."""
        outcomes: dict[int | str, SaleOutcome] = {}
        ready: dict[str, Sale] = {}
        for sale in sales:
            problem = self._currency_problem(sale)
            if problem is not None:
                outcomes[sale.sale_id] = problem
            else:
                ready[sale.external_reference] = sale

        def kind(sale: Sale) -> str:
            return ITEM_DOCUMENT_KIND if (sale.invoice_kind or invoice_kind) == "item" else DOCUMENT_KIND

        documents = [
            BulkDocument(ref, kind(sale), str(sale.sale_id), source_version(sale))
            for ref, sale in ready.items()
        ]

        def find(chunk: Sequence[BulkDocument]) -> dict[str, int]:
            if in_aiq is not None:
                return {d.reference: in_aiq[d.reference] for d in chunk if d.reference in in_aiq}
            dates = {d.reference: ready[d.reference].sale_date for d in chunk}
            return find_by_sweep(self.gateway, dates, [SALES_INVOICE_TYPE])

        def create(chunk: Sequence[BulkDocument]) -> list[RowResult]:
            items = [ready[d.reference] for d in chunk if d.kind == ITEM_DOCUMENT_KIND]
            batch = [ready[d.reference] for d in chunk if d.kind != ITEM_DOCUMENT_KIND]
            invoices, results = build_each(
                batch,
                lambda sale: batch_invoice(
                    self._template(sale.customer_code), sale, self.reference, self.deferred_revenue_gl
                ),
            )
            if invoices:
                sent = self.gateway.create_batch_sales_invoices([invoice for _, invoice in invoices])
                results |= {
                    sale.external_reference: row for (sale, _), row in zip(invoices, sent, strict=True)
                }
            if items:
                results |= self._create_items(items)
            return [results[d.reference] for d in chunk]

        def find_one(document: BulkDocument) -> int | None:
            sale = ready[document.reference]
            if document.kind == ITEM_DOCUMENT_KIND:
                return self._find_item(sale)
            day = datetime.combine(sale.sale_date, time())
            return find_transaction(self.gateway, document.reference, day, [SALES_INVOICE_TYPE])

        deliveries = sender.send_all(documents, find, find_one, create, chunk_size)
        for ref, sale in ready.items():
            outcomes[sale.sale_id] = _delivered(sale, deliveries[ref])
        return [outcomes[sale.sale_id] for sale in sales]


def chunk_failed(sale: Sale, error: BaseException) -> SaleOutcome:
    """The outcome of a sale whose posting chunk failed as a whole: pending, read again next run."""
    return outcome_for(
        sale,
        Outcome.FAILED,
        error_code=ErrorCode.CHUNK_FAILED,
        reason=f"its posting chunk failed ({type(error).__name__}: {redact(str(error))[:300]}); "
        "pending: the next run reads AIQ before sending it again",
        retryable=True,
    )


def _delivered(sale: Sale, delivery: Delivery) -> SaleOutcome:
    return outcome_for(
        sale,
        delivery.outcome,
        transaction_id=delivery.transaction_id,
        error_code=delivery.error_code,
        reason=delivery.reason,
        retryable=delivery.retryable,
    )


def record_schedules(
    schedules: ScheduleStore,
    entity: str,
    sales: list[Sale],
    outcomes: list[SaleOutcome],
    settings: DeferralSettings,
) -> int:
    """Store the release schedule of every deferred sale now invoiced (once; re-runs add nothing),
    and flag credited ones for the release flow's credit journal."""
    invoiced = {o.sale_id: o.transaction_id for o in outcomes if o.transaction_id is not None}
    deferred = [sale for sale in sales if sale.is_deferred and sale.sale_id in invoiced]
    schedules.add(
        entity,
        [
            InvoicedSchedule(
                deferral_schedule(sale, method=settings.method, allocation=settings.allocation),
                sale.currency,
                invoiced[sale.sale_id],
            )
            for sale in deferred
        ],
        deferred_gl=settings.deferred_revenue_gl,
    )
    for sale in deferred:
        if sale.credited:
            schedules.request_credit(entity, sale.external_reference)
    return len(deferred)


@task(name="post-batch-invoices", task_run_name="post-batch-invoices-chunk-{chunk_number}", cache_policy=NONE)
def post_batch_invoices(
    aiq: AiqConnection,
    state: StateStore,
    sales: list[Sale],
    customers: CustomerResolution,
    reference: ReferenceData,
    run_id: str,
    chunk_number: int,
    deferrals: DeferralSettings | None = None,
    bulk: bool = True,
    in_aiq: dict[str, int] | None = None,
    invoice_kind: InvoiceKind = "batch",
    claim_lease_seconds: float = DEFAULT_LEASE.total_seconds(),
) -> list[SaleOutcome]:
    """A chunk of sales: in one bulk call (``bulk``), or one call per invoice."""
    deferrals = deferrals or DeferralSettings()
    store = state.store()
    try:
        lease = timedelta(seconds=claim_lease_seconds)
        sender = ExactlyOnceSender(store, aiq.company_id, run_id, lease, dead_runs=runs_over)
        poster = InvoicePoster(aiq.gateway(), sender, customers, reference, deferrals.deferred_revenue_gl)
        # Item invoices always go in bulk (draft, then post); batch ones one by one unless `bulk`.
        items: list[Sale] = []
        singles: list[Sale] = []
        for sale in sales:
            (items if bulk or (sale.invoice_kind or invoice_kind) == "item" else singles).append(sale)
        by_sale = {
            o.sale_id: o for o in poster.post_many(items, sender, max(len(items), 1), in_aiq, invoice_kind)
        }
        by_sale |= {o.sale_id: o for o in poster.post_each(singles)}
        outcomes = [by_sale[sale.sale_id] for sale in sales]
        deferred = record_schedules(state.schedules(store), aiq.company_id, sales, outcomes, deferrals)
    finally:
        store.dispose()
    created = sum(o.outcome is Outcome.CREATED for o in outcomes)
    get_run_logger().info(
        "Chunk %d: %d sales, %d invoices created, %d deferred schedules",
        chunk_number,
        len(sales),
        created,
        deferred,
    )
    return outcomes


@task(
    name="sweep-aiq-for-the-run",
    cache_policy=NONE,
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=retry_transient_aiq_errors,
)
def sweep_aiq(aiq: AiqConnection, window: tuple[date, date] | None) -> dict[str, int]:
    """Read before write, for the whole run at once and before it posts anything: every sales
    invoice AIQ holds dated in the window of the run's sales (one paged `GetTransactionsBy`),
    {external reference: transaction ID}. Taken before the run's own invoices exist, it holds
    only what was there already; the store knows what this run posts."""
    if window is None:
        return {}
    found = references_in_window(aiq.gateway(), window[0], window[1], [SALES_INVOICE_TYPE])
    get_run_logger().info("Swept AIQ's sales invoices from %s to %s: %d", window[0], window[1], len(found))
    return found


@task(name="publish-deferral-schedules", cache_policy=NONE)
def publish_deferral_schedules(sales: list[Sale], settings: DeferralSettings, invoiced: int) -> int:
    """A table of the deferred sales invoiced in this run (`sales`: the first of the `invoiced`):
    month, release, deferred balance left; at most MAX_TABLE_ROWS months, every schedule being in
    the store."""
    rows: list[dict[str, str]] = []
    for sale in sales:
        if not sale.is_deferred:
            continue
        balance = sale.net_total
        for line in deferral_schedule(sale, method=settings.method, allocation=settings.allocation):
            balance -= line.amount
            rows.append(
                {
                    "sale": sale.external_reference,
                    "month": f"{line.month:%Y-%m}",
                    "revenue_gl": line.revenue_gl,
                    "bi_code": line.department_id or "",
                    "release": str(line.amount),
                    "deferred_balance": str(balance),
                }
            )
        if len(rows) >= MAX_TABLE_ROWS:
            break
    if rows:
        shown = rows[:MAX_TABLE_ROWS]
        more = (
            f" (the first {len(shown):,} months; {invoiced:,} deferred sales in all)"
            if len(shown) < len(rows) or len(sales) < invoiced
            else ""
        )
        create_table_artifact(
            key="deferred-revenue-schedules",
            table=shown,
            description=f"Release schedules of the deferred sales invoiced in this run{more}",
        )
    return len(rows)
