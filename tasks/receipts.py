"""The cash side's tasks: read the source's payments, settle each exactly once in AIQ (a receipt
``R-<payment id>`` and its allocations, `engine.receipts`), write each payment's outcome back, and
report. A refund or chargeback undoes the allocations of the payment it names."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from aiq_flows.domain.fields import Rejection
from aiq_flows.domain.outcomes import Outcome
from aiq_flows.domain.payments import Payment, invoice_status, validate_payment
from aiq_flows.engine.delivery import ExactlyOnceSender
from aiq_flows.engine.receipts import PaymentOutcome, PaymentSettler, invoices_in_aiq
from aiq_flows.sources.file_drop import PaymentDrop, PaymentDropFolder
from aiq_flows.sources.mapping import MappingError
from aiq_flows.sources.payments_sql import PaymentsSql, PaymentState
from blocks.aiq import AiqConnection
from blocks.store import StateStore
from tasks.runs import runs_over
from tasks.sales import SOURCE_TASK_OPTIONS, Origin


class PaymentStatus(StrEnum):
    ALLOCATED = "allocated"  # a receipt, and every penny set against the invoices it pays
    ON_ACCOUNT = "on_account"  # a receipt; some or all of it unallocated (overpaid, or no open invoice)
    WAITING = "waiting"  # a receipt; part kept back for an invoice not in AIQ yet (a later run allocates)
    REFUNDED = "refunded"  # a refund: the payment's allocations are undone
    REFUSED = "refused"  # AIQ refused the receipt or an allocation: a person looks at it
    QUARANTINED = "quarantined"  # the payment's data is wrong: nothing sent
    HELD = "held"  # not sent this run (AIQ out of reach, another run holds it): the next run sends it


@dataclass(frozen=True)
class PaymentResult:
    payment_id: str
    customer: str | None
    amount: Decimal | None
    status: PaymentStatus
    receipt_id: int | None = None
    allocated: Decimal = Decimal(0)
    on_account: Decimal = Decimal(0)
    waiting: str = ""
    message: str | None = None
    invoices: tuple[str, ...] = ()  # the invoices whose status this payment moved


def payments_source(origin: Origin) -> PaymentsSql:
    """The payments of a SQL source block (`SqlSalesSource`, the demo `CrmDatabase`): its database
    and its mapping's ``payments`` section."""
    url = getattr(origin.block, "url", None)
    if url is None:
        raise MappingError(
            f"{origin.name}: payments are read from SQL sources (SQL Sales Source, CRM Database)"
        )
    source = origin.open()
    try:
        return PaymentsSql(url.get_secret_value(), source.mapping)
    finally:
        source.dispose()


@task(name="read-payments", **SOURCE_TASK_OPTIONS)
def read_payments(origin: Origin) -> list[dict[str, Any]]:
    payments = payments_source(origin)
    try:
        return payments.payments()
    finally:
        payments.dispose()


@task(name="read-payment-drop-folder", cache_policy=NONE)
def read_payment_folder(folder: str) -> PaymentDrop:
    batch = PaymentDropFolder(folder).read_payments()
    for file in batch.files:
        if file.problem:
            get_run_logger().error("Rejected %s", file.problem)
    return batch


@task(name="archive-payment-files-with-results", cache_policy=NONE)
def settle_payment_folder(folder: str, batch: PaymentDrop, results: list[PaymentResult]) -> list[str]:
    rows = {
        r.payment_id: {
            "payment_id": r.payment_id,
            "status": r.status.value,
            "aiq_receipt_id": r.receipt_id or "",
            "allocated": str(r.allocated),
            "on_account": str(r.on_account),
            "message": r.message or "",
        }
        for r in results
    }
    return [str(path) for path in PaymentDropFolder(folder).settle_payments(batch, rows)]


def _result(outcome: PaymentOutcome) -> PaymentResult:
    if outcome.outcome is Outcome.FAILED or outcome.not_allocated:
        status = PaymentStatus.REFUSED
    elif outcome.receipt_transaction_id is None:
        status = PaymentStatus.HELD
    elif outcome.waiting:
        status = PaymentStatus.WAITING
    elif outcome.on_account:
        status = PaymentStatus.ON_ACCOUNT
    else:
        status = PaymentStatus.ALLOCATED
    notes = []
    if outcome.on_account:
        notes.append(f"{outcome.on_account} on account")
    if outcome.waiting:
        notes.append(f"{outcome.waiting_amount} waits for {', '.join(outcome.waiting)}")
    if outcome.other_currency:
        notes.append(f"not paid: {', '.join(outcome.other_currency)} (another currency)")
    if outcome.reason and status in (PaymentStatus.REFUSED, PaymentStatus.HELD):
        notes.append(outcome.reason)
    return PaymentResult(
        outcome.payment_id,
        outcome.customer,
        outcome.amount,
        status,
        outcome.receipt_transaction_id,
        outcome.allocated,
        outcome.on_account,
        ", ".join(outcome.waiting),
        "; ".join(notes) or None,
        outcome.invoices,
    )


def _quarantined(rejection: Rejection, raw: dict[str, Any]) -> PaymentResult:
    return PaymentResult(
        str(rejection.sale_id),
        raw.get("customer"),
        None,
        PaymentStatus.QUARANTINED,
        message=rejection.message,
    )


@task(name="settle-payments", cache_policy=NONE)
def settle_payments(
    aiq: AiqConnection,
    state: StateStore,
    records: list[dict[str, Any]],
    sale_prefix: str,
    bank_account: str,
    run_date: date,
    run_id: str,
) -> list[PaymentResult]:
    """Each payment exactly once: refunds first undo what their payment settled (and that payment
    is not settled again), then every other payment gets its receipt and allocations."""
    gateway = aiq.gateway()
    store = state.store()
    try:
        settler = PaymentSettler(
            gateway,
            ExactlyOnceSender(store, aiq.company_id, run_id, dead_runs=runs_over),
            invoices_in_aiq(gateway, datetime.combine(run_date, time()) + timedelta(days=1)),
            bank_account,
        )
        parsed = [(raw, validate_payment(raw, sale_prefix)) for raw in records]
        refunded = {p.refund_of for _, p in parsed if isinstance(p, Payment) and p.refund_of}
        named = {p.payment_id: p.invoice_references for _, p in parsed if isinstance(p, Payment)}
        results = []
        for raw, payment in parsed:
            if isinstance(payment, Rejection):
                results.append(_quarantined(payment, raw))
            elif payment.refund_of:
                undone = settler.refund(
                    Payment(payment.refund_of, payment.customer, payment.amount, payment.paid_on)
                )
                ok = undone.outcome is not Outcome.FAILED and undone.error_code is None
                results.append(
                    PaymentResult(
                        payment.payment_id,
                        payment.customer,
                        payment.amount,
                        PaymentStatus.REFUNDED if ok else PaymentStatus.REFUSED,
                        undone.transaction_id,
                        message=f"reverses payment {payment.refund_of}"
                        + (f": {undone.reason}" if undone.reason else ""),
                        invoices=named.get(payment.refund_of, ()),
                    )
                )
            elif payment.payment_id in refunded:
                results.append(
                    PaymentResult(
                        payment.payment_id,
                        payment.customer,
                        payment.amount,
                        PaymentStatus.REFUNDED,
                        message="refunded: its allocations are undone and not made again",
                    )
                )
            else:
                outcome = settler.settle(payment)
                if not outcome.adds_up:
                    raise RuntimeError(f"payment {payment.payment_id}: the amounts do not add up: {outcome}")
                results.append(_result(outcome))
    finally:
        store.dispose()
        gateway.close()
    return results


@task(name="write-back-payments", **SOURCE_TASK_OPTIONS)
def write_back_payments(origin: Origin, results: list[PaymentResult]) -> int:
    payments = payments_source(origin)
    try:
        states = [PaymentState(r.payment_id, r.receipt_id, r.status.value, r.message) for r in results]
        return payments.write_back(states)
    finally:
        payments.dispose()


@task(name="write-back-invoice-status", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10])
def write_back_invoice_status(
    aiq: AiqConnection, origin: Origin, results: list[PaymentResult], sale_prefix: str, run_date: date
) -> int:
    """For each sale a payment of this run names or settled: what is left on its invoice, when it
    was paid in full and how many days it is overdue, read from AIQ after the allocations, written
    to the mapping's ``payments.invoice_status`` columns (none mapped: nothing written)."""
    references = sorted({ref for r in results for ref in r.invoices if ref.startswith(sale_prefix)})
    payments = payments_source(origin)
    try:
        if not payments.writes_invoice_status or not references:
            return 0
        gateway = aiq.gateway()
        try:
            rows = []
            window = datetime.combine(run_date, time())
            for reference in references:
                posted = gateway.transactions_by_external_reference(
                    reference, window - timedelta(days=3650), window + timedelta(days=400), ["SI"]
                )
                if not posted:
                    continue
                invoice = min(posted, key=lambda t: t.TransactionID)
                left = (
                    invoice.OutstandingAmount
                    if invoice.OutstandingAmount is not None
                    else invoice.ControlAmount
                )
                due = (invoice.DueDate or invoice.TransactionDate).date()
                dates = (
                    [e.allocated_on.date() for e in gateway.allocations_of(invoice.TransactionID)]
                    if left == 0
                    else []
                )
                rows.append((reference.removeprefix(sale_prefix), invoice_status(left, due, dates, run_date)))
        finally:
            gateway.close()
        return payments.write_invoice_status(rows)
    finally:
        payments.dispose()


@task(name="publish-receipts-report", cache_policy=NONE)
def publish_receipts_report(results: list[PaymentResult], read: int) -> dict[str, Any]:
    """The run's report: payments received, allocated, on account, waiting, refused; the run fails
    if the counts do not add up to the payments read."""
    counts = Counter(r.status.value for r in results)
    summary: dict[str, Any] = {"read": read, **{s.value: counts.get(s.value, 0) for s in PaymentStatus}}
    summary["received"] = sum(
        1 for r in results if r.receipt_id is not None and r.status is not PaymentStatus.REFUNDED
    )
    summary["allocated_amount"] = str(sum((r.allocated for r in results), Decimal(0)))
    summary["on_account_amount"] = str(sum((r.on_account for r in results), Decimal(0)))
    create_table_artifact(
        key="receipts-sync",
        table=[
            {
                "payment": r.payment_id,
                "customer": r.customer or "",
                "amount": str(r.amount or ""),
                "status": r.status.value,
                "aiq_receipt_id": r.receipt_id or "",
                "allocated": str(r.allocated),
                "on_account": str(r.on_account),
                "waiting_for": r.waiting,
                "message": r.message or "",
            }
            for r in results
        ],
        description="Payments of this run: one row per payment",
    )
    lines = [f"| {key} | {value} |" for key, value in summary.items()]
    create_markdown_artifact(
        key="receipts-sync-summary",
        markdown="## Receipts sync\n\n| | |\n|---|---|\n" + "\n".join(lines),
        description="Receipts sync: counts",
    )
    if sum(counts.values()) != read:
        raise RuntimeError(
            f"the counts do not add up: {sum(counts.values())} outcomes for {read} payments read"
        )
    get_run_logger().info("Receipts sync: %s", summary)
    return summary
