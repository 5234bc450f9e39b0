"""Post batch sales invoices exactly once.

For each sale: the store first (already posted?), then a claim (nobody else is sending it), then
AccountsIQ by external reference (posted by an earlier run whose answer was lost, or by hand?),
and only then the create. A create whose answer is lost is read back at once; if AccountsIQ
does not show it yet, the document stays ``unknown`` and the next run reads again before sending.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from aiq_flows.domain.outcomes import Outcome, SaleOutcome, outcome_for
from aiq_flows.domain.sales import ReferenceData, Sale
from aiq_flows.gateway.client import AiqGateway
from aiq_flows.gateway.errors import AiqBusinessError, AiqTransientError, AiqUnknownOutcome
from aiq_flows.gateway.models import BatchInvoiceLine, BatchSalesInvoice, Customer
from aiq_flows.store.outbox import DONE, DocumentRecord, DocumentStore
from blocks.aiq import AiqConnection
from blocks.store import StateStore

DOCUMENT_KIND = "batch_sales_invoice"
SALES_INVOICE_TYPE = "SI"
# AIQ needs a date range for a reference lookup; a wide one still finds an invoice whose sale
# date was edited in the CRM after it was posted.
LOOKUP_WINDOW = timedelta(days=400)


def batch_invoice(template: BatchSalesInvoice, sale: Sale, reference: ReferenceData) -> BatchSalesInvoice:
    """The batch invoice for a sale, on AIQ's template for its customer, with the CRM's VAT."""
    return template.model_copy(
        update={
            "InvoiceDate": datetime.combine(sale.sale_date, time()),
            "ExternalReference": sale.external_reference,
            "Description": sale.description,
            "DueDate": None,  # AIQ derives it from the invoice date and the customer's credit terms
            "Lines": [
                BatchInvoiceLine(
                    GLAccountCode=line.gl_account_code,
                    TaxCode=line.tax_code,
                    Description=line.description,
                    DepartmentID=line.department_id,
                    NetAmount=line.net_amount,
                    TaxRate=float(reference.tax_rates[line.tax_code]),
                    TaxAmount=line.tax_amount,
                )
                for line in sale.lines
            ],
        }
    )


def source_version(sale: Sale) -> str:
    return sale.updated_at.isoformat()


class InvoicePoster:
    """Posts the sales of one chunk; every sale ends with exactly one outcome."""

    def __init__(
        self,
        gateway: AiqGateway,
        store: DocumentStore,
        entity: str,
        accounts: dict[str, Customer],
        reference: ReferenceData,
        run_id: str,
    ) -> None:
        self.gateway, self.store, self.entity = gateway, store, entity
        self.accounts, self.reference, self.run_id = accounts, reference, run_id
        self._templates: dict[str, BatchSalesInvoice] = {}

    def _find_in_aiq(self, sale: Sale) -> int | None:
        day = datetime.combine(sale.sale_date, time())
        found = self.gateway.transactions_by_external_reference(
            sale.external_reference, day - LOOKUP_WINDOW, day + LOOKUP_WINDOW, types=[SALES_INVOICE_TYPE]
        )
        if not found:
            return None
        if len(found) > 1:
            get_run_logger().error(
                "AIQ holds %d transactions with reference %s (ids %s): keeping the first; the "
                "others need a credit note",
                len(found),
                sale.external_reference,
                [t.TransactionID for t in found],
            )
        return min(t.TransactionID for t in found)

    def _template(self, customer_code: str) -> BatchSalesInvoice:
        if customer_code not in self._templates:
            self._templates[customer_code] = self.gateway.new_batch_sales_invoice(customer_code)
        return self._templates[customer_code]

    def _settled(self, sale: Sale, record: DocumentRecord | None) -> SaleOutcome | None:
        """The outcome when the store already decides it: posted, or refused and unchanged."""
        if record is not None and record.state in DONE:
            return outcome_for(
                sale,
                Outcome.ALREADY_PRESENT,
                transaction_id=record.transaction_id,
                reason="already posted (store)",
            )
        if record is not None and record.refused_unchanged(source_version(sale)):
            return outcome_for(
                sale,
                Outcome.FAILED,
                error_code=record.error_code,
                reason=f"AIQ refused {sale.external_reference}: {record.error_code}: "
                f"{record.message} (unchanged since; fix the sale to resend)",
            )
        return None

    def post(self, sale: Sale, record: DocumentRecord | None) -> SaleOutcome:
        ref = sale.external_reference
        settled = self._settled(sale, record)
        if settled is not None:
            return settled
        customer = self.accounts[sale.customer_code]
        if customer.CurrencyCode and customer.CurrencyCode != sale.currency:
            return outcome_for(
                sale,
                Outcome.QUARANTINED,
                error_code="INVALID:currency",
                reason=f"sale {sale.reference!r} (id {sale.sale_id}): currency: {sale.currency} "
                f"differs from AIQ customer {customer.Code}'s currency {customer.CurrencyCode}",
            )
        if not self.store.claim(self.entity, ref, self.run_id, source_version=source_version(sale)):
            # Another run got there first: it may have finished since our snapshot was read.
            settled = self._settled(sale, self.store.get(self.entity, [ref]).get(ref))
            return settled or outcome_for(
                sale,
                Outcome.HELD,
                retryable=True,
                reason="another run is posting this sale; it is checked again next run",
            )
        try:
            existing = self._find_in_aiq(sale)
            if existing is not None:
                self.store.mark_posted(self.entity, ref, existing)
                return outcome_for(
                    sale,
                    Outcome.ALREADY_PRESENT,
                    transaction_id=existing,
                    reason="already in AIQ (found by external reference)",
                )
            invoice = batch_invoice(self._template(sale.customer_code), sale, self.reference)
            self.store.mark_attempt(self.entity, ref)
            transaction_id = self.gateway.create_batch_sales_invoice(invoice)
        except AiqUnknownOutcome as lost:
            return self._recover_lost_answer(sale, lost)
        except AiqTransientError as error:
            self.store.release(self.entity, ref, self.run_id)
            return outcome_for(
                sale,
                Outcome.FAILED,
                retryable=True,
                error_code="TRANSIENT",
                reason=f"{error}; retried next run",
            )
        except AiqBusinessError as error:
            self.store.mark_failed(
                self.entity, ref, error.error_code, error.error_message, source_version(sale)
            )
            return outcome_for(
                sale,
                Outcome.FAILED,
                error_code=error.error_code,
                reason=f"AIQ refused {ref}: {error.error_code}: {error.error_message}",
            )
        self.store.mark_posted(self.entity, ref, transaction_id)
        return outcome_for(sale, Outcome.CREATED, transaction_id=transaction_id)

    def _recover_lost_answer(self, sale: Sale, lost: AiqUnknownOutcome) -> SaleOutcome:
        """Read before retrying: the answer was lost, the invoice may well exist."""
        ref = sale.external_reference
        try:
            existing = self._find_in_aiq(sale)
        except (AiqTransientError, AiqBusinessError):
            existing = None
        if existing is not None:
            self.store.mark_posted(self.entity, ref, existing)
            return outcome_for(
                sale,
                Outcome.CREATED,
                transaction_id=existing,
                reason="answer lost; found in AIQ by external reference",
            )
        self.store.mark_unknown(self.entity, ref, str(lost))
        return outcome_for(
            sale,
            Outcome.FAILED,
            retryable=True,
            error_code="UNKNOWN_OUTCOME",
            reason=f"{lost}; not visible in AIQ yet, verified before any resend",
        )


@task(name="post-batch-invoices", task_run_name="post-batch-invoices-chunk-{chunk_number}", cache_policy=NONE)
def post_batch_invoices(
    aiq: AiqConnection,
    state: StateStore,
    sales: list[Sale],
    accounts: dict[str, Customer],
    reference: ReferenceData,
    run_id: str,
    chunk_number: int,
) -> list[SaleOutcome]:
    store = state.store()
    try:
        store.plan(aiq.company_id, [(s.external_reference, DOCUMENT_KIND, str(s.sale_id)) for s in sales])
        known = store.get(aiq.company_id, [s.external_reference for s in sales])
        poster = InvoicePoster(aiq.gateway(), store, aiq.company_id, accounts, reference, run_id)
        outcomes = [poster.post(sale, known.get(sale.external_reference)) for sale in sales]
    finally:
        store.dispose()
    created = sum(o.outcome is Outcome.CREATED for o in outcomes)
    get_run_logger().info("Chunk %d: %d sales, %d invoices created", chunk_number, len(sales), created)
    return outcomes
