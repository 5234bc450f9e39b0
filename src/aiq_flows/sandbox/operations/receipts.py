"""Sales receipts and allocations: the cash side of the sales ledger.

A receipt posts at once: the bank GL account is debited and the customer's debtors control
credited, so the customer's balance falls the moment it is saved. An allocation then decides which
open items the cash settles: it pairs a debit (an invoice) with a credit (a receipt or a credit
note) of the same customer and currency, for at most what is still outstanding on either side.
Allocating and unallocating never move the balance; they move each item's outstanding amount, and
with it the statement's open lines and their ageing.

A receipt's reference: ``SalesReceipt`` has no ``ExternalReference`` member, but AIQ's
``PostPayAndAllocateSalesInvoice`` offers ``PerformExternalReferenceDuplicateCheckOnReceipt`` and
its error list has ``RECEIPT_EXTERNAL_REFERENCE_ALREADY_EXISTS``: a receipt does carry an external
reference, and ``CheckReference`` (the payment's own reference) is the only member that can hold
it. The sandbox stores it as the receipt transaction's external reference, so
``GetTransactionsByExternalReference`` (type ``SR``) finds a receipt before it is written twice.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from aiq_flows.sandbox.operations.documents import Posting, check_reference, outstanding, store_transaction
from aiq_flows.sandbox.service import (
    Call,
    Refused,
    Reply,
    SandboxService,
    blank,
    cents,
    handles,
    items,
    money,
)

RECEIPT_TYPE, RECEIPT_CODE = "SalesReceipt", "SR"


# --- receipts -----------------------------------------------------------------------------------------


def post_receipt(svc: SandboxService, entity: str, receipt: dict[str, Any]) -> int:
    account = svc.account(entity, "Sales", receipt.get("CustomerCode"))
    amount = money(receipt.get("PaymentAmount"))
    if amount <= 0:
        raise Refused(
            "TRANSACTION_ALLOCATION_AMOUNT_CANNOT_BE_NEGATIVE_OR_ZERO",
            f"PaymentAmount must be greater than 0 (got {amount}).",
        )
    bank_code = receipt.get("BankAccountCode") or ""
    bank = svc.ledger.gl_account(entity, bank_code)
    if bank is None or bank["kind"] != "bank":
        raise Refused("BANK_ACCOUNT_DOES_NOT_EXIST", f"'{bank_code}' is not a bank GL account.")
    reference = receipt.get("CheckReference")
    if reference is not None:
        check_reference(reference)
    rate = money(receipt.get("ExchangeRate")) or Decimal(1)
    if rate <= 0:
        raise Refused("EXCHANGE_RATE_IS_NEGATIVE_OR_ZERO", "ExchangeRate must be greater than 0.")
    when = receipt.get("PaymentDate") or datetime(1, 1, 1)
    period_id = svc.open_period(entity, "Sales", when)
    description = receipt.get("Description") or f"Receipt {reference or ''}".strip()
    department = receipt.get("DepartmentID")
    svc.check_department(entity, department, "The receipt")
    settings = svc.ledger.entity_settings(entity)
    postings = [
        Posting(bank_code, description, department, None, amount, "Net"),
        Posting(account.get("ControlGLAccountCode"), description, None, None, -amount, "Control"),
    ]
    header = {
        "entity": entity,
        "type": RECEIPT_TYPE,
        "type_code": RECEIPT_CODE,
        "ledger": "Sales",
        "is_batch": 0,
        "account_id": account["AccountID"],
        "account_code": account["Code"],
        "account_name": account["Name"],
        "external_reference": reference,
        "description": description,
        "transaction_date": when.isoformat(),
        "creation_date": datetime.now().replace(microsecond=0).isoformat(),
        "due_date": when.isoformat(),
        "currency": account.get("CurrencyCode") or settings["base_currency"],
        "exchange_rate": str(rate),
        "control_amount": str(amount),
        "period_id": period_id,
    }
    return store_transaction(svc, entity, header, postings, rate)


@handles("SaveSalesReceiptGetBackTransactionID")
def save_sales_receipt_get_id(svc: SandboxService, call: Call) -> Reply:
    transaction_id = post_receipt(svc, call.entity, call.params.get("salesReceipt") or {})
    return Reply(None, {"transactionID": transaction_id})


@handles("SaveSalesReceipt")
def save_sales_receipt(svc: SandboxService, call: Call) -> Reply:
    post_receipt(svc, call.entity, call.params.get("salesReceipt") or {})
    return Reply(True)


# --- allocations --------------------------------------------------------------------------------------


def _transaction(svc: SandboxService, entity: str, transaction_id: int | None) -> dict[str, Any]:
    row = svc.ledger.query_one(
        "SELECT * FROM transactions WHERE entity = ? AND transaction_id = ?", entity, transaction_id or 0
    )
    if row is None:
        raise Refused("TRANSACTION_NOT_FOUND", f"Transaction {transaction_id} does not exist.")
    if row["account_id"] is None:
        raise Refused(
            "TRANSACTION_IS_NOT_ALLOCATABLE",
            f"Transaction {transaction_id} ({row['type_code']}) is not on a customer or supplier account.",
        )
    return dict(row)


@handles("AllocateTransactions")
def allocate_transactions(svc: SandboxService, call: Call) -> Reply:
    """Settle ``allocationAmount`` of a debit against a credit of the same account and currency."""
    params, entity = call.params, call.entity
    amount = money(params.get("allocationAmount"))
    if amount <= 0:
        raise Refused(
            "TRANSACTION_ALLOCATION_AMOUNT_CANNOT_BE_NEGATIVE_OR_ZERO", f"allocationAmount is {amount}."
        )
    first = _transaction(svc, entity, params.get("transactionID_1"))
    second = _transaction(svc, entity, params.get("transactionID_2"))
    if (first["ledger"], first["account_id"]) != (second["ledger"], second["account_id"]):
        raise Refused(
            "TRANSACTION_CANNOT_ALLOCATE_CROSS_ACCOUNT",
            f"Transactions {first['transaction_id']} ({first['account_code']}) and "
            f"{second['transaction_id']} ({second['account_code']}) are on different accounts.",
        )
    if first["currency"] != second["currency"] or first["transaction_id"] == second["transaction_id"]:
        raise Refused(
            "TRANSACTION_CANNOT_BE_ALLOCATED_INCOMPATIBLE_TYPES",
            "Allocate two different transactions in one currency.",
        )
    left = {t["transaction_id"]: outstanding(svc, entity, t["transaction_id"]) for t in (first, second)}
    for transaction_id, remaining in left.items():
        if remaining == 0:
            raise Refused(
                "TRANSACTION_CANNOT_ALLOCATE_FULLY_ALLOCATED_TRANSACTION",
                f"Transaction {transaction_id} is fully allocated.",
            )
    ids = list(left)
    if (left[ids[0]] > 0) == (left[ids[1]] > 0):
        raise Refused(
            "TRANSACTION_CANNOT_BE_ALLOCATED_INCOMPATIBLE_TYPES",
            "Allocate a debit (an invoice) against a credit (a receipt or a credit note).",
        )
    for transaction_id, remaining in left.items():
        if amount > abs(remaining):
            raise Refused(
                "TRANSACTION_CANNOT_ALLOCATE_MORE_THAN_OUTSTANSING_AMOUNT",
                f"{amount} is more than the {abs(remaining)} outstanding on transaction {transaction_id}.",
            )
    when = params.get("allocationDate") or datetime.now()
    now = datetime.now().replace(microsecond=0).isoformat()
    with svc.ledger.transaction() as db:
        number = db.execute(
            "SELECT COALESCE(MAX(allocation_number), 0) + 1 FROM allocations WHERE entity = ?", (entity,)
        ).fetchone()[0]
        for this, other in ((ids[0], ids[1]), (ids[1], ids[0])):
            db.execute(
                "INSERT INTO allocations (entity, allocation_number, transaction_id, other_transaction_id, "
                "amount, reference, allocation_date, creation_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entity,
                    number,
                    this,
                    other,
                    str(cents(amount)),
                    params.get("allocationReference"),
                    when.replace(tzinfo=None).isoformat(),
                    now,
                ),
            )
    return Reply()


@handles("UnallocateTransactions")
def unallocate_transactions(svc: SandboxService, call: Call) -> Reply:
    """Undo every allocation each transaction takes part in; one row status per transaction. The
    balance does not move; the items are open again."""
    statuses = []
    for transaction_id in items(call.params.get("transactionIDs"), "int"):
        with svc.ledger.transaction() as db:
            numbers = [
                row[0]
                for row in db.execute(
                    "SELECT DISTINCT allocation_number FROM allocations "
                    "WHERE entity = ? AND transaction_id = ?",
                    (call.entity, transaction_id),
                )
            ]
            db.executemany(
                "DELETE FROM allocations WHERE entity = ? AND allocation_number = ?",
                [(call.entity, number) for number in numbers],
            )
        if numbers:
            statuses.append(
                {"Status": "Success", "ErrorCode": "SUCCESS", "ErrorMessage": None, "HasExpired": False}
            )
        else:
            statuses.append(
                {
                    "Status": "Failure",
                    "ErrorCode": "UNALLOCATE_TRANSACTION_INVALID_TRANSACTION_ID",
                    "ErrorMessage": f"Transaction {transaction_id} has no allocations.",
                    "HasExpired": False,
                }
            )
    return Reply({"WSResultStatus": statuses})


@handles("GetAllocationsByTransactionId")
def get_allocations_by_transaction(svc: SandboxService, call: Call) -> Reply:
    raw = (call.params.get("transactionId") or "").strip()
    transaction = _transaction(svc, call.entity, int(raw) if raw.isdigit() else None)
    entries = []
    for row in svc.ledger.query(
        "SELECT a.*, t.type_code, t.external_reference, t.transaction_date AS other_date "
        "FROM allocations a JOIN transactions t ON t.transaction_id = a.other_transaction_id "
        "WHERE a.entity = ? AND a.transaction_id = ? ORDER BY a.allocation_number",
        call.entity,
        transaction["transaction_id"],
    ):
        entries.append(
            {
                **blank("WSAllocationEntryDTO"),
                "AllocatedToTransactionID": row["other_transaction_id"],
                "AllocatedToTransactionType": row["type_code"],
                "AllocatedToInternalNumber": str(row["other_transaction_id"]),
                "AllocatedToExternalReference": row["external_reference"],
                "AllocationAmount": Decimal(row["amount"]),
                "AllocationDate": datetime.fromisoformat(row["allocation_date"]),
                "AllocationId": row["allocation_id"],
                "AllocationCreationDate": datetime.fromisoformat(row["creation_date"]),
                "AllocatedToTransactionDate": datetime.fromisoformat(row["other_date"]),
                "AllocationNumber": row["allocation_number"],
            }
        )
    return Reply(
        {
            "WSAllocationTransactionDTO": [
                {
                    "TransactionID": transaction["transaction_id"],
                    "TransactionType": transaction["type_code"],
                    "InternalNumber": str(transaction["transaction_id"]),
                    "ExternalReference": transaction["external_reference"],
                    "AllocationEntries": {"WSAllocationEntryDTO": entries},
                    "AccountID": transaction["account_id"],
                    "AccountCode": transaction["account_code"],
                }
            ]
        }
    )


# --- allocation with a settlement discount ---------------------------------------------------------


def _discount(
    svc: SandboxService, entity: str, invoice: dict[str, Any], amount: Decimal, when: datetime
) -> int:
    """A sales discount (DS): debit the discounts-allowed GL account, credit the debtors control."""
    gl_code = svc.ledger.entity_settings(entity)["control_accounts"].get("sales_discount")
    if not gl_code:
        raise Refused("CONFIGURATION_ERROR", f"Entity {entity} has no discounts-allowed GL account.")
    account = svc.account(entity, "Sales", invoice["account_code"])
    description = f"Discount on {invoice['external_reference'] or invoice['transaction_id']}"
    header = {
        **{
            k: invoice[k]
            for k in ("entity", "ledger", "account_id", "account_code", "account_name", "currency")
        },
        "type": "SalesDiscount",
        "type_code": "DS",
        "is_batch": 0,
        "external_reference": invoice["external_reference"],
        "description": description,
        "transaction_date": when.isoformat(),
        "creation_date": datetime.now().replace(microsecond=0).isoformat(),
        "due_date": when.isoformat(),
        "exchange_rate": invoice["exchange_rate"],
        "control_amount": str(amount),
        "period_id": svc.open_period(entity, "Sales", when),
    }
    postings = [
        Posting(gl_code, description, None, None, amount, "Net"),
        Posting(account.get("ControlGLAccountCode"), description, None, None, -amount, "Control"),
    ]
    return store_transaction(svc, entity, header, postings, Decimal(invoice["exchange_rate"]))


@handles("AllocateTransactionsWithDiscount")
def allocate_with_discount(svc: SandboxService, call: Call) -> Reply:
    """Settle ``allocationAmount`` with the credit and write ``discountAmount`` off the invoice as a
    settlement discount: the invoice takes both, the credit only the allocation."""
    params, entity = call.params, call.entity
    discount = money(params.get("discountAmount"))
    if discount < 0:
        raise Refused(
            "TRANSACTION_ALLOCATION_AMOUNT_CANNOT_BE_NEGATIVE_OR_ZERO", f"discountAmount is {discount}."
        )
    first = _transaction(svc, entity, params.get("transactionID_1"))
    second = _transaction(svc, entity, params.get("transactionID_2"))
    invoice = first if outstanding(svc, entity, first["transaction_id"]) > 0 else second
    wanted = money(params.get("allocationAmount")) + discount
    if wanted > outstanding(svc, entity, invoice["transaction_id"]):
        raise Refused(
            "INVALID_STATE_TRANSACTION_OUSTANDING_AMOUNT_IS_LESS_THAN_ALLOCATION_PLUS_DISCOUNT_AMOUNT",
            f"{wanted} (allocation and discount) is more than transaction {invoice['transaction_id']} owes.",
        )
    allocate_transactions(svc, call)
    if discount:
        when = (params.get("allocationDate") or datetime.now()).replace(tzinfo=None)
        note = _discount(svc, entity, invoice, discount, when)
        allocate_transactions(
            svc,
            Call(
                entity,
                {
                    **params,
                    "transactionID_1": invoice["transaction_id"],
                    "transactionID_2": note,
                    "allocationAmount": discount,
                },
            ),
        )
    return Reply()


# --- pay and allocate in one call --------------------------------------------------------------------


def _already(svc: SandboxService, entity: str, type_codes: tuple[str, ...], reference: str | None) -> bool:
    marks = ", ".join("?" * len(type_codes))
    return (
        bool(reference)
        and svc.ledger.query_one(
            "SELECT 1 FROM transactions WHERE entity = ? AND external_reference = ? "
            f"AND type_code IN ({marks})",
            entity,
            reference,
            *type_codes,
        )
        is not None
    )


def _gross(invoice: dict[str, Any]) -> Decimal:
    """What the batch invoice will post to the debtors control (VAT as given, else from the rate)."""
    total = Decimal(0)
    for line in items(invoice.get("Lines"), "BatchSalesInvoiceLine"):
        net = money(line.get("NetAmount"))
        given = line.get("TaxAmount")
        total += net + (
            money(given) if given is not None else cents(net * Decimal(str(line.get("TaxRate") or 0)))
        )
    return total


def _balance(svc: SandboxService, entity: str, account_id: int) -> Decimal:
    rows = svc.ledger.query(
        "SELECT l.amount FROM transactions t JOIN transaction_lines l "
        "ON l.transaction_id = t.transaction_id AND l.is_control = 1 WHERE t.entity = ? AND t.account_id = ?",
        entity,
        account_id,
    )
    return sum((Decimal(r["amount"]) for r in rows), Decimal(0))


def _check_pay_and_allocate(svc: SandboxService, entity: str, query: dict[str, Any]) -> None:
    invoice, receipt = query.get("BatchInvoice"), query.get("Receipt")
    if not invoice and not receipt:
        raise Refused(
            "MISSING_QUERY_PARAMETER_INVOICE_AND_OR_RECEIPT", "Give a BatchInvoice, a Receipt or both."
        )
    if query.get("PerformAllocation") and not (invoice and receipt):
        raise Refused(
            "MISSING_QUERY_PARAMETER_CANNOT_ALLOCATE_WITHOUT_BOTH_INVOICE_AND_RECEIPT",
            "PerformAllocation needs both the BatchInvoice and the Receipt.",
        )
    reference = invoice and invoice.get("ExternalReference")
    if query.get("PerformExternalReferenceDuplicateCheckOnInvoice") and _already(
        svc, entity, ("SI",), reference
    ):
        raise Refused(
            "INVOICE_EXTERNAL_REFERENCE_ALREADY_EXISTS", f"An invoice '{reference}' is already posted."
        )
    reference = receipt and receipt.get("CheckReference")
    if query.get("PerformExternalReferenceDuplicateCheckOnReceipt") and _already(
        svc, entity, (RECEIPT_CODE,), reference
    ):
        raise Refused(
            "RECEIPT_EXTERNAL_REFERENCE_ALREADY_EXISTS", f"A receipt '{reference}' is already posted."
        )
    amount = money(query.get("AllocationAmount"))
    if query.get("PerformAllocation") and not 0 < amount <= min(
        _gross(invoice), money(receipt.get("PaymentAmount"))
    ):
        raise Refused(
            "TRANSACTION_CANNOT_ALLOCATE_MORE_THAN_OUTSTANSING_AMOUNT",
            f"AllocationAmount {amount} must be above 0 and at most the invoice and the receipt.",
        )
    if invoice and query.get("EnforceCreditLimit"):
        account = svc.account(entity, "Sales", invoice.get("CustomerCode"))
        limit, owed = money(account.get("CreditLimit")), _balance(svc, entity, account["AccountID"])
        if limit and owed + _gross(invoice) > limit:
            raise Refused(
                "CUSTOMER_BALANCE_EXCEEDS_CREDIT_LIMIT",
                f"{account['Code']} owes {owed}; {_gross(invoice)} more exceeds its limit of {limit}.",
            )


def pay_and_allocate(svc: SandboxService, entity: str, query: dict[str, Any]) -> dict[str, Any]:
    """Post a batch invoice and/or a receipt and allocate them, everything checked first so that a
    refusal leaves nothing half done."""
    from aiq_flows.sandbox.operations.documents import SALES, post_batch_invoice

    _check_pay_and_allocate(svc, entity, query)
    invoice, receipt = query.get("BatchInvoice"), query.get("Receipt")
    invoice_id = post_batch_invoice(svc, entity, SALES, invoice) if invoice else None
    receipt_id = post_receipt(svc, entity, receipt) if receipt else None
    if query.get("PerformAllocation") and invoice_id and receipt_id:
        allocate_transactions(
            svc,
            Call(
                entity,
                {
                    "transactionID_1": invoice_id,
                    "transactionID_2": receipt_id,
                    "allocationAmount": money(query.get("AllocationAmount")),
                    "allocationReference": query.get("AllocationReference"),
                    "allocationDate": query.get("AllocationDate") or receipt.get("PaymentDate"),
                },
            ),
        )
    return {
        "InvoiceTransactionID": invoice_id,
        "ReceiptTransactionID": receipt_id,
        "ClientUniqueReference": query.get("ClientUniqueReference"),
    }


@handles("PostPayAndAllocateSalesInvoice")
def post_pay_and_allocate(svc: SandboxService, call: Call) -> Reply:
    return Reply(pay_and_allocate(svc, call.entity, call.params.get("query") or {}))


@handles("PostPayAndAllocateSalesInvoices")
def post_pay_and_allocate_many(svc: SandboxService, call: Call) -> Reply:
    """One status and result per query, in order; a refused query does not stop the others."""
    rows = []
    for query in items(call.params.get("queries"), "WSPostPayAndAllocateSalesInvoiceQuery"):
        row: dict[str, Any] = {
            "Status": "Success",
            "ErrorCode": "SUCCESS",
            "ErrorMessage": None,
            "HasExpired": False,
        }
        try:
            row["Result"] = pay_and_allocate(svc, call.entity, query or {})
        except Refused as refusal:
            row.update(
                Status=refusal.status, ErrorCode=refusal.code, ErrorMessage=refusal.message, Result=None
            )
        rows.append(row)
    return Reply({"WSResult2OfWSPostPayAndAllocateSalesInvoiceResult": rows})


# --- allocations over a period, and the receipt as a PDF -----------------------------------------------


def _allocations_between(svc: SandboxService, call: Call) -> list[dict[str, Any]]:
    """Per account (by code), the transactions with allocations dated in [since, until]."""
    params = call.params
    ledger = params.get("ledger") or "Sales"
    since = (params.get("since") or datetime(1, 1, 1)).replace(tzinfo=None).isoformat()
    until = (params.get("until") or datetime(9999, 1, 1)).replace(tzinfo=None).isoformat()
    rows = svc.ledger.query(
        "SELECT DISTINCT t.transaction_id, t.account_id, t.account_code FROM allocations a "
        "JOIN transactions t ON t.transaction_id = a.transaction_id "
        "WHERE a.entity = ? AND t.ledger = ? AND a.allocation_date BETWEEN ? AND ? "
        "AND t.account_code >= ? AND t.account_code <= ? ORDER BY t.account_code, t.transaction_id",
        call.entity,
        ledger,
        since,
        until,
        params.get("fromAccountCode") or "",
        params.get("toAccountCode") or "\uffff",
    )
    summaries: dict[str, dict[str, Any]] = {}
    for row in rows:
        summary = summaries.setdefault(
            row["account_code"],
            {
                "AccountID": row["account_id"],
                "AccountCode": row["account_code"],
                "Ledger": ledger,
                "Allocations": [],
            },
        )
        answer = get_allocations_by_transaction(
            svc, Call(call.entity, {"transactionId": str(row["transaction_id"])})
        )
        summary["Allocations"] += answer.result["WSAllocationTransactionDTO"]
    return [
        {**summary, "Allocations": {"WSAllocationTransactionDTO": summary["Allocations"]}}
        for summary in summaries.values()
    ]


@handles("GetAllocationsBetween")
def get_allocations_between(svc: SandboxService, call: Call) -> Reply:
    return Reply({"WSAllocationSummaryDTO": _allocations_between(svc, call)})


@handles("GetAllocationsBetweenPaged")
def get_allocations_between_paged(svc: SandboxService, call: Call) -> Reply:
    """The same, a page of accounts at a time (``skip`` accounts, then at most ``limit``)."""
    skip, limit = max(0, int(call.params.get("skip") or 0)), max(0, int(call.params.get("limit") or 0))
    return Reply({"WSAllocationSummaryDTO": _allocations_between(svc, call)[skip : skip + limit]})


@handles("GetSalesReceiptPDFByTransactionID")
def get_sales_receipt_pdf(svc: SandboxService, call: Call) -> Reply:
    from aiq_flows.sandbox.pdf import render_pdf

    transaction_id = int(call.params.get("transactionID") or 0)
    row = svc.ledger.query_one(
        "SELECT * FROM transactions WHERE entity = ? AND transaction_id = ?", call.entity, transaction_id
    )
    if row is None:
        raise Refused("TRANSACTION_NOT_FOUND", f"Transaction {transaction_id} does not exist.")
    if row["type"] != RECEIPT_TYPE:
        raise Refused("INVOICE_TYPE_INCORRECT", f"Transaction {transaction_id} is not a sales receipt.")
    company = svc.ledger.entity_settings(call.entity)["name"]
    amount = Decimal(row["control_amount"])
    text = [
        company,
        "",
        "SALES RECEIPT",
        f"Transaction: {transaction_id}    Reference: {row['external_reference'] or ''}",
        f"Date: {datetime.fromisoformat(row['transaction_date']):%d %b %Y}",
        f"Customer: {row['account_name']} ({row['account_code']})",
        f"Received: {row['currency']} {amount:,.2f}",
    ]
    for allocation in svc.ledger.query(
        "SELECT a.amount, t.external_reference FROM allocations a JOIN transactions t "
        "ON t.transaction_id = a.other_transaction_id WHERE a.entity = ? AND a.transaction_id = ?",
        call.entity,
        transaction_id,
    ):
        text.append(
            f"  allocated to {allocation['external_reference']}: {Decimal(allocation['amount']):,.2f}"
        )
    text.append(f"Unallocated: {abs(outstanding(svc, call.entity, transaction_id)):,.2f}")
    return Reply(render_pdf(text, title=f"Receipt {row['external_reference'] or transaction_id}"))
