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
