"""Reconciliation steps: read both sides for a date range, compare, report every difference."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, TypeVar

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from aiq_flows.domain.customer_codes import aiq_customer_code
from aiq_flows.domain.payments import Payment, validate_payment
from aiq_flows.domain.reconciliation import (
    AiqSide,
    CrmSide,
    Finding,
    PaymentSide,
    ReceiptSide,
    reconcile,
    reconcile_payments,
)
from aiq_flows.domain.references import SALE_PREFIX, receipt_reference
from aiq_flows.domain.sales import ReferenceData, Sale, validate_sale
from aiq_flows.domain.values import ValueRefused, decimal_value, text_value
from aiq_flows.engine.receipts import RECEIPT_TYPE
from aiq_flows.sources.mapping import MappingError
from blocks.aiq import AiqConnection
from blocks.store import StateStore
from tasks.invoices import SALES_INVOICE_TYPE
from tasks.lookups import reference_data
from tasks.receipts import payments_source
from tasks.retry import retry_transient_aiq_errors
from tasks.sales import Origin

T = TypeVar("T")
EXPECTED_IN_AIQ = (None, "posted", "pending")


class ReconciliationDifferences(RuntimeError):
    pass


def _crm_side(record: dict[str, Any], reference: ReferenceData) -> CrmSide:
    """A sale as the sync would invoice it (its total with the tax AIQ computes where the source
    keeps none, its customer's AIQ code); a sale that would be quarantined has no total to
    compare, and its external reference as the source's prefix and id make it."""
    status = record.get("aiq_status")
    transaction = record.get("aiq_transaction_id")
    result = validate_sale(record, reference)
    if isinstance(result, Sale):
        return CrmSide(
            sale_id=result.sale_id,
            reference=result.external_reference,
            customer_code=result.customer_code,
            gross=result.gross_total,
            expected_in_aiq=status in EXPECTED_IN_AIQ,
            transaction_id=transaction,
        )
    prefix = str(record.get("reference_prefix") or SALE_PREFIX)
    return CrmSide(
        sale_id=result.sale_id,
        reference=f"{prefix}{result.sale_id}",
        customer_code=_readable(_customer_code, record.get("customer")),
        gross=_readable(_raw_gross, record.get("lines") or []),
        expected_in_aiq=status in EXPECTED_IN_AIQ and status is not None,
        transaction_id=transaction,
    )


def _readable(read: Callable[[Any], T | None], value: Any) -> T | None:
    """What can still be read of a sale that no longer validates (edited since it was posted, say):
    compared where it can be, left out where it cannot."""
    try:
        return read(value)
    except (ValueRefused, ValueError, TypeError, KeyError):
        return None


def _customer_code(customer: dict[str, Any] | None) -> str | None:
    if not customer:
        return None
    code = text_value(customer.get("code"))
    key = text_value(customer.get("key"))
    return code.upper() if code else aiq_customer_code(key) if key else None


def _raw_gross(lines: list[dict[str, Any]]) -> Decimal | None:
    amounts = [decimal_value(line.get(name)) for line in lines for name in ("net_amount", "tax_amount")]
    return sum((a for a in amounts if a is not None), Decimal(0)) if lines and None not in amounts else None


@task(
    name="reconcile-crm-with-aiq",
    cache_policy=NONE,
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=retry_transient_aiq_errors,
)
def compare(aiq: AiqConnection, state: StateStore, crm: Origin, start: date, end: date) -> list[Finding]:
    source, store = crm.open(), state.store()
    try:
        records = source.sales_between(start, end)
        if source.read_only:  # what the store keeps for it: its status and transaction per sale
            known = store.known_records(crm.name, [str(r["sale_id"]) for r in records])
            for record in records:
                record["aiq_status"], record["aiq_transaction_id"] = known.get(
                    str(record["sale_id"]), (None, None)
                )
    finally:
        source.dispose()
        store.dispose()
    gateway = aiq.gateway()
    reference = reference_data(gateway)
    crm_side = [_crm_side(record, reference) for record in records]
    prefix = source.mapping.reference_prefix
    sweep = gateway.transactions_between(
        datetime.combine(start, time()), datetime.combine(end, time()), [SALES_INVOICE_TYPE]
    )
    aiq_side = [
        AiqSide(t.TransactionID, t.ExternalReference or "", t.AccountCode, t.ControlAmount) for t in sweep
    ]
    swept = {document.transaction_id for document in aiq_side}
    # A written-back ID outside the range (a date moved) is looked up before it is called missing.
    elsewhere = frozenset(
        sale.transaction_id
        for sale in crm_side
        if sale.transaction_id is not None
        and sale.transaction_id not in swept
        and gateway.get_transaction(sale.transaction_id) is not None
    )
    findings = reconcile(crm_side, aiq_side, ours=prefix, existing_ids=elsewhere)
    get_run_logger().info(
        "Reconciled %d CRM sales with %d AIQ invoices (%s to %s): %d differences",
        len(crm_side),
        len(aiq_side),
        start,
        end,
        len(findings),
    )
    return findings


@task(
    name="reconcile-payments-with-aiq",
    cache_policy=NONE,
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=retry_transient_aiq_errors,
)
def compare_payments(aiq: AiqConnection, crm: Origin, start: date, end: date) -> list[Finding]:
    """The source's payments dated in the range against AIQ's receipts (``R-``) in it; none when
    the source's mapping has no ``payments`` section."""
    source = crm.open()
    try:
        if source.mapping.payments is None:
            return []
        prefix = source.mapping.reference_prefix
    finally:
        source.dispose()
    try:
        payments = payments_source(crm)
        try:
            records = payments.payments()
        finally:
            payments.dispose()
    except MappingError as error:  # e.g. a CRM older than its payments table: the sales still reconcile
        get_run_logger().warning("Payments not reconciled: %s", error)
        return []
    sides = []
    for record in records:
        payment = validate_payment(record, prefix)
        if not isinstance(payment, Payment) or payment.refund_of or not start <= payment.paid_on <= end:
            continue
        status = record.get("aiq_status")
        sides.append(
            PaymentSide(
                payment.payment_id,
                receipt_reference(payment.payment_id),
                payment.amount,
                expected_in_aiq=status not in ("quarantined", "refunded") or status is None,
                status=status,
            )
        )
    gateway = aiq.gateway()
    receipts = gateway.transactions_between(
        datetime.combine(start, time()), datetime.combine(end, time()), [RECEIPT_TYPE]
    )
    aiq_side = [
        ReceiptSide(
            t.TransactionID,
            t.ExternalReference or "",
            abs(t.ControlAmount),
            abs(t.OutstandingAmount if t.OutstandingAmount is not None else t.ControlAmount),
        )
        for t in receipts
    ]
    findings = reconcile_payments(sides, aiq_side)
    get_run_logger().info(
        "Reconciled %d payments with %d AIQ receipts: %d differences",
        len(sides),
        len(aiq_side),
        len(findings),
    )
    return findings


@task(name="publish-reconciliation-report", cache_policy=NONE)
def publish_reconciliation(findings: list[Finding], start: date, end: date, entity: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.kind.name.lower()] = counts.get(finding.kind.name.lower(), 0) + 1
    title = f"Reconciliation of the CRM with AIQ {entity}, {start} to {end}"
    lines = [f"# {title}", ""]
    if findings:
        lines += ["| difference | count |", "|---|---:|"]
        lines += [
            f"| {f.value} | {sum(1 for x in findings if x.kind is f)} |" for f in {x.kind for x in findings}
        ]
    else:
        lines += ["No differences: every sale has its AIQ invoice, and every invoice its sale."]
    create_markdown_artifact(key="reconciliation-summary", markdown="\n".join(lines), description=title)
    rows = [
        {"difference": f.kind.value, "reference": f.reference, "crm": f.crm, "aiq": f.aiq} for f in findings
    ]
    create_table_artifact(key="reconciliation-differences", table=rows, description=title)
    return counts
