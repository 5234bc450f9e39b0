"""Receipts and allocations, held-out style: a zeep client built from AccountsIQ's *full* published
WSDL drives the sandbox as an integrator would (the cash side of AIQ's "Receipts and Allocations"
routine), and the ledger is checked from the outside: postings, balances, statements."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import zeep
import zeep.helpers

from aiq_flows.gateway.schema import NAMESPACE
from tests.support.processes import REPO, Sandbox

FULL_WSDL = REPO.parent / "shared" / "aiq" / "integration_1_1.full.wsdl"
DAY = datetime(2026, 11, 2)
pytestmark = pytest.mark.skipif(not FULL_WSDL.exists(), reason="../shared/aiq is not beside the checkout")


class Integrator:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.service = zeep.Client(str(FULL_WSDL)).create_service(
            f"{{{NAMESPACE}}}Integration_1_1Soap", sandbox.url
        )
        self.token = self.service.Login(
            companyID="DEMO_UK",
            partnerKey=sandbox.credentials["partner_key"],
            userKey=sandbox.entity("DEMO_UK")["user_key"],
        )

    def call(self, operation: str, **params: Any) -> Any:
        return getattr(self.service, operation)(token=self.token, **params)

    def customer(self, code: str) -> int:
        shell = self.call("GetNewCustomerFromDefaults").Result
        shell.Code, shell.Name = code, f"{code} Ltd"
        assert self.call("UpdateCustomer", customer=shell, create=True).Status == "Success"
        return int(self.call("GetCustomer", customerCode=code).Result.AccountID)

    def invoice(self, customer: str, reference: str, net: str = "100.00", vat: str = "20.00") -> int:
        template = self.call("GetNewBatchSalesInvoice", customerCode=customer).Result
        template.ExternalReference, template.InvoiceDate, template.Description = reference, DAY, reference
        template.Lines = {
            "BatchSalesInvoiceLine": [
                {
                    "GLAccountCode": "4000",
                    "TaxCode": "T1",
                    "Description": "Widgets",
                    "NetAmount": Decimal(net),
                    "TaxRate": 0.2,
                    "TaxAmount": Decimal(vat),
                }
            ]
        }
        answer = self.call("CreateBatchSalesInvoiceGetBackTransactionID", inv=template)
        assert answer.CreateBatchSalesInvoiceGetBackTransactionIDResult.Status == "Success"
        return int(answer.transactionID)

    def receipt(self, customer: str, reference: str, amount: str, bank: str = "1200") -> Any:
        return self.call(
            "SaveSalesReceiptGetBackTransactionID",
            salesReceipt={
                "CustomerCode": customer,
                "CheckReference": reference,
                "PaymentAmount": Decimal(amount),
                "BankAccountCode": bank,
                "PaymentDate": DAY,
                "ExchangeRate": Decimal(1),
                "BankExchangeRate": Decimal(1),
                "Description": f"Payment {reference}",
            },
        )

    def allocate(self, debit: int, credit: int, amount: str) -> Any:
        return self.call(
            "AllocateTransactions",
            transactionID_1=debit,
            transactionID_2=credit,
            allocationReference=f"{debit}/{credit}",
            allocationAmount=Decimal(amount),
            allocationDate=DAY,
        )

    def balance(self, customer: str) -> Decimal:
        rows = self.call("GetCustomerBalanceInformation", edt=DAY, customerCodes={"string": [customer]})
        return Decimal(rows.Result.AccountBalanceInformation[0].Balance)

    def statement(self, customer: str) -> Any:
        answer = self.call(
            "GetCustomersStatement",
            upTo=datetime(2026, 12, 31),
            customerCodes={"string": [customer]},
            showZeros=True,
        )
        return answer.Result.CustomerStatement[0]


@pytest.fixture(scope="module")
def aiq(shared_sandbox: Sandbox) -> Integrator:
    return Integrator(shared_sandbox)


def open_items(statement: Any) -> dict[int, Decimal]:
    lines = statement.TransactionList.TransactionState if statement.TransactionList else []
    return {int(line.TransactionReference): Decimal(line.OutstandingAmount) for line in lines}


def test_a_receipt_posts_bank_debit_and_debtors_credit_at_once(
    aiq: Integrator, shared_sandbox: Sandbox
) -> None:
    aiq.customer("PAY01")
    invoice = aiq.invoice("PAY01", "PAY01-INV")
    assert aiq.balance("PAY01") == Decimal("120.00")
    answer = aiq.receipt("PAY01", "R-PAY01-1", "120.00")
    assert (
        answer.SaveSalesReceiptGetBackTransactionIDResult.Status == "Success"
        and answer.transactionID > invoice
    )
    assert aiq.balance("PAY01") == Decimal("0.00")  # the balance falls at once, before any allocation
    posted = aiq.call("GetTransaction", transactionID=answer.transactionID).Result
    lines = {(line.GLAccountCode, Decimal(line.Amount)) for line in posted.Lines.TransactionLine}
    assert lines == {("1200", Decimal("120.00")), ("1100", Decimal("-120.00"))}
    # the receipt's reference is its transaction's external reference: found before a second write
    found = aiq.call(
        "GetTransactionsByExternalReference",
        query={
            "ExternalReference": "R-PAY01-1",
            "FromDate": datetime(2026, 1, 1),
            "ToDate": datetime(2026, 12, 31),
            "TypesFilter": {"string": ["SR"]},
        },
    )
    assert [row.TransactionID for row in found.Result.WSTransactionSummary] == [answer.transactionID]


def test_allocation_settles_the_invoice_and_the_statement_drops_it(aiq: Integrator) -> None:
    aiq.customer("PAY02")
    invoice = aiq.invoice("PAY02", "PAY02-INV")
    receipt = int(aiq.receipt("PAY02", "R-PAY02-1", "120.00").transactionID)
    assert open_items(aiq.statement("PAY02")) == {invoice: Decimal("120.00"), receipt: Decimal("-120.00")}
    assert aiq.allocate(invoice, receipt, "120.00").Status == "Success"
    statement = aiq.statement("PAY02")
    assert open_items(statement) == {}  # the paid invoice and its receipt are off the statement
    assert Decimal(statement.CustomerState.CurrentBalance) == 0
    allocations = aiq.call("GetAllocationsByTransactionId", transactionId=str(invoice)).Result
    entries = allocations.WSAllocationTransactionDTO[0].AllocationEntries.WSAllocationEntryDTO
    assert [(e.AllocatedToTransactionID, Decimal(e.AllocationAmount)) for e in entries] == [
        (receipt, Decimal("120.00"))
    ]


def test_partial_payment_leaves_the_rest_outstanding_and_aged(aiq: Integrator) -> None:
    aiq.customer("PAY03")
    invoice = aiq.invoice("PAY03", "PAY03-INV")
    receipt = int(aiq.receipt("PAY03", "R-PAY03-1", "50.00").transactionID)
    assert aiq.allocate(invoice, receipt, "50.00").Status == "Success"
    statement = aiq.statement("PAY03")
    assert open_items(statement) == {invoice: Decimal("70.00")}
    buckets = zeep.helpers.serialize_object(statement.CustomerState, dict)
    aged = sum(Decimal(v) for k, v in buckets.items() if k.endswith("Bucket"))
    assert aged == Decimal("70.00") == Decimal(statement.CustomerState.CurrentBalance)


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("120.01", "TRANSACTION_CANNOT_ALLOCATE_MORE_THAN_OUTSTANSING_AMOUNT"),  # more than the invoice
        ("0", "TRANSACTION_ALLOCATION_AMOUNT_CANNOT_BE_NEGATIVE_OR_ZERO"),
    ],
)
def test_over_allocation_is_refused(aiq: Integrator, amount: str, code: str) -> None:
    customer = f"PAYOV{amount.replace('.', '')}"
    aiq.customer(customer)
    invoice = aiq.invoice(customer, f"{customer}-INV")
    receipt = int(aiq.receipt(customer, f"R-{customer}", "500.00").transactionID)
    refused = aiq.allocate(invoice, receipt, amount)
    assert (refused.Status, refused.ErrorCode) == ("Failure", code)
    assert (
        aiq.call("GetAllocationsByTransactionId", transactionId=str(invoice))
        .Result.WSAllocationTransactionDTO[0]
        .AllocationEntries
        is None
    )


def test_a_receipt_cannot_settle_more_than_is_left_of_it(aiq: Integrator) -> None:
    aiq.customer("PAY04")
    first, second = aiq.invoice("PAY04", "PAY04-A"), aiq.invoice("PAY04", "PAY04-B")
    receipt = int(aiq.receipt("PAY04", "R-PAY04", "150.00").transactionID)
    assert aiq.allocate(first, receipt, "120.00").Status == "Success"
    refused = aiq.allocate(second, receipt, "40.00")  # only 30.00 of the receipt is left
    assert refused.ErrorCode == "TRANSACTION_CANNOT_ALLOCATE_MORE_THAN_OUTSTANSING_AMOUNT"
    assert aiq.allocate(second, receipt, "30.00").Status == "Success"
    again = aiq.allocate(first, receipt, "1.00")
    assert again.ErrorCode == "TRANSACTION_CANNOT_ALLOCATE_FULLY_ALLOCATED_TRANSACTION"


@pytest.mark.parametrize("case", ["other customer", "two invoices", "a journal"])
def test_allocations_pair_a_debit_and_a_credit_of_one_account(aiq: Integrator, case: str) -> None:
    code = {"other customer": "PAY05", "two invoices": "PAY06", "a journal": "PAY07"}[case]
    aiq.customer(code)
    invoice = aiq.invoice(code, f"{code}-INV")
    if case == "other customer":
        other, expected = int(aiq.receipt("ACME01", f"R-{code}", "10.00").transactionID), "CROSS_ACCOUNT"
    elif case == "two invoices":
        other, expected = aiq.invoice(code, f"{code}-INV2"), "INCOMPATIBLE_TYPES"
    else:
        journal = {
            "InternalReference": code,
            "ExternalReference": code,
            "TransactionDate": DAY,
            "Lines": {
                "GeneralJournalLine": [
                    {
                        "GLAccountCode": gl,
                        "Description": "j",
                        "Debit": 0,
                        "Credit": 0,
                        "Amount": Decimal(amount),
                        "VatReturnID": 0,
                        "TaxRpt": False,
                        "Reconc": False,
                        "Reversed": False,
                    }
                    for gl, amount in (("4000", "-5.00"), ("2400", "5.00"))
                ]
            },
        }
        other = int(aiq.call("CreateGeneralJournalGetBackTransactionID", journal=journal).transactionID)
        expected = "IS_NOT_ALLOCATABLE"
    refused = aiq.allocate(invoice, other, "5.00")
    assert refused.Status == "Failure" and refused.ErrorCode.endswith(expected), refused.ErrorCode


def test_unallocate_reopens_the_items_and_leaves_the_balance(aiq: Integrator) -> None:
    aiq.customer("PAY08")
    invoice = aiq.invoice("PAY08", "PAY08-INV")
    receipt = int(aiq.receipt("PAY08", "R-PAY08", "120.00").transactionID)
    assert aiq.allocate(invoice, receipt, "120.00").Status == "Success"
    assert aiq.balance("PAY08") == 0 and open_items(aiq.statement("PAY08")) == {}
    answer = aiq.call("UnallocateTransactions", transactionIDs={"int": [receipt, 999999]})
    rows = answer.Result.WSResultStatus
    assert [(r.Status, r.ErrorCode) for r in rows] == [
        ("Success", "SUCCESS"),
        ("Failure", "UNALLOCATE_TRANSACTION_INVALID_TRANSACTION_ID"),
    ]
    assert aiq.balance("PAY08") == 0  # unchanged
    assert open_items(aiq.statement("PAY08")) == {invoice: Decimal("120.00"), receipt: Decimal("-120.00")}


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"BankAccountCode": "4000"}, "BANK_ACCOUNT_DOES_NOT_EXIST"),  # a GL account, not a bank
        ({"CustomerCode": "NOSUCH"}, "CUSTOMER_CODE_DOES_NOT_EXIST"),
        ({"PaymentAmount": Decimal("-1")}, "TRANSACTION_ALLOCATION_AMOUNT_CANNOT_BE_NEGATIVE_OR_ZERO"),
        ({"PaymentDate": datetime(2025, 2, 1)}, "SALES_LEDGER_ALREADY_CLOSED"),
    ],
)
def test_receipt_refusals(
    aiq: Integrator, shared_sandbox: Sandbox, changes: dict[str, Any], code: str
) -> None:
    receipt = {
        "CustomerCode": "ACME01",
        "CheckReference": f"R-BAD-{code[:20]}",
        "PaymentAmount": Decimal("10.00"),
        "BankAccountCode": "1200",
        "PaymentDate": DAY,
        "ExchangeRate": Decimal(1),
        "BankExchangeRate": Decimal(1),
        **changes,
    }
    answer = aiq.call("SaveSalesReceiptGetBackTransactionID", salesReceipt=receipt)
    status = answer.SaveSalesReceiptGetBackTransactionIDResult
    assert (status.Status, status.ErrorCode, answer.transactionID) == ("Failure", code, 0)
    assert shared_sandbox.documents(external_reference=receipt["CheckReference"]) == []


# --- the gateway -----------------------------------------------------------------------------------


def test_the_gateway_reads_an_allocation_back_after_a_lost_answer(
    aiq: Integrator, shared_sandbox: Sandbox
) -> None:
    """AIQ has no idempotency key: after a lost answer the allocation is read back before any retry."""
    from aiq_flows.gateway.errors import AiqBusinessError, AiqUnknownOutcome
    from aiq_flows.gateway.models import SalesReceipt
    from tests.test_gateway_sandbox import gateway_for

    aiq.customer("PAY09")
    invoice = aiq.invoice("PAY09", "PAY09-INV")
    gateway = gateway_for(shared_sandbox)
    receipt = gateway.save_sales_receipt(
        SalesReceipt(
            CustomerCode="PAY09",
            CheckReference="R-PAY09",
            PaymentAmount=Decimal("120.00"),
            BankAccountCode="1200",
            PaymentDate=DAY,
        )
    )
    assert receipt > invoice and gateway.allocations_of(receipt) == []
    shared_sandbox.faults({"kind": "drop_response", "operation": "AllocateTransactions", "count": 1})
    with pytest.raises(AiqUnknownOutcome):
        gateway.allocate(invoice, receipt, Decimal("120.00"), DAY, "PAY09")
    [entry] = gateway.allocations_of(invoice)  # it was committed
    assert (entry.other_transaction_id, entry.amount, entry.other_reference) == (
        receipt,
        Decimal("120.00"),
        "R-PAY09",
    )
    with pytest.raises(AiqBusinessError) as again:
        gateway.allocate(invoice, receipt, Decimal("120.00"), DAY, "PAY09")
    assert again.value.error_code == "TRANSACTION_CANNOT_ALLOCATE_FULLY_ALLOCATED_TRANSACTION"
    [row] = gateway.unallocate([invoice])
    assert row.ok and gateway.allocations_of(receipt) == []
    gateway.close()


# --- settlement discounts, pay-and-allocate, allocation listings, receipt PDFs ------------------------


def test_a_settlement_discount_writes_off_the_rest_of_the_invoice(aiq: Integrator) -> None:
    aiq.customer("PAY10")
    invoice = aiq.invoice("PAY10", "PAY10-INV")
    receipt = int(aiq.receipt("PAY10", "R-PAY10", "114.00").transactionID)
    too_much = aiq.call(
        "AllocateTransactionsWithDiscount",
        transactionID_1=invoice,
        transactionID_2=receipt,
        allocationReference="x",
        allocationAmount=Decimal("114.00"),
        allocationDate=DAY,
        discountAmount=Decimal("6.01"),
    )
    assert (
        too_much.ErrorCode
        == "INVALID_STATE_TRANSACTION_OUSTANDING_AMOUNT_IS_LESS_THAN_ALLOCATION_PLUS_DISCOUNT_AMOUNT"
    )
    answer = aiq.call(
        "AllocateTransactionsWithDiscount",
        transactionID_1=invoice,
        transactionID_2=receipt,
        allocationReference="early payment",
        allocationAmount=Decimal("114.00"),
        allocationDate=DAY,
        discountAmount=Decimal("6.00"),
    )
    assert answer.Status == "Success"
    assert open_items(aiq.statement("PAY10")) == {} and aiq.balance("PAY10") == 0
    entries = aiq.call("GetAllocationsByTransactionId", transactionId=str(invoice)).Result
    allocated = entries.WSAllocationTransactionDTO[0].AllocationEntries.WSAllocationEntryDTO
    assert sorted((e.AllocatedToTransactionType, Decimal(e.AllocationAmount)) for e in allocated) == [
        ("DS", Decimal("6.00")),
        ("SR", Decimal("114.00")),
    ]
    discount = aiq.call("GetTransaction", transactionID=allocated[-1].AllocatedToTransactionID).Result
    assert {(line.GLAccountCode, Decimal(line.Amount)) for line in discount.Lines.TransactionLine} == {
        ("4900", Decimal("6.00")),
        ("1100", Decimal("-6.00")),
    }


def pay_query(
    reference: str, customer: str = "PAY11", allocate: str = "120.00", **changes: Any
) -> dict[str, Any]:
    return {
        "PerformExternalReferenceDuplicateCheckOnInvoice": True,
        "PerformExternalReferenceDuplicateCheckOnReceipt": True,
        "BatchInvoice": {
            "CustomerCode": customer,
            "InvoiceDate": DAY,
            "ExternalReference": reference,
            "Description": reference,
            "ExchangeRate": Decimal(1),
            "Lines": {
                "BatchSalesInvoiceLine": [
                    {
                        "GLAccountCode": "4000",
                        "TaxCode": "T1",
                        "Description": "w",
                        "NetAmount": Decimal("100.00"),
                        "TaxRate": 0.2,
                        "TaxAmount": Decimal("20.00"),
                    }
                ]
            },
        },
        "Receipt": {
            "CustomerCode": customer,
            "CheckReference": f"R-{reference}",
            "PaymentAmount": Decimal("120.00"),
            "BankAccountCode": "1200",
            "PaymentDate": DAY,
            "ExchangeRate": Decimal(1),
            "BankExchangeRate": Decimal(1),
        },
        "PerformAllocation": True,
        "AllocationDate": DAY,
        "AllocationAmount": Decimal(allocate),
        "AllocationReference": reference,
        "ClientUniqueReference": f"client-{reference}",
        "EnforceCreditLimit": False,
        **changes,
    }


def test_pay_and_allocate_posts_both_and_allocates_once(aiq: Integrator, shared_sandbox: Sandbox) -> None:
    aiq.customer("PAY11")
    answer = aiq.call("PostPayAndAllocateSalesInvoice", query=pay_query("PAY11-1"))
    assert answer.Status == "Success" and answer.Result.ClientUniqueReference == "client-PAY11-1"
    invoice, receipt = answer.Result.InvoiceTransactionID, answer.Result.ReceiptTransactionID
    assert invoice and receipt and aiq.balance("PAY11") == 0 and open_items(aiq.statement("PAY11")) == {}
    again = aiq.call("PostPayAndAllocateSalesInvoice", query=pay_query("PAY11-1"))
    assert (again.Status, again.ErrorCode) == ("Failure", "INVOICE_EXTERNAL_REFERENCE_ALREADY_EXISTS")
    assert len(shared_sandbox.documents(external_reference="PAY11-1")) == 1
    assert len(shared_sandbox.documents(external_reference="R-PAY11-1")) == 1


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"BatchInvoice": None, "Receipt": None}, "MISSING_QUERY_PARAMETER_INVOICE_AND_OR_RECEIPT"),
        ({"BatchInvoice": None}, "MISSING_QUERY_PARAMETER_CANNOT_ALLOCATE_WITHOUT_BOTH_INVOICE_AND_RECEIPT"),
        ({"AllocationAmount": Decimal("120.01")}, "TRANSACTION_CANNOT_ALLOCATE_MORE_THAN_OUTSTANSING_AMOUNT"),
    ],
)
def test_pay_and_allocate_refusals_leave_nothing_half_done(
    aiq: Integrator, shared_sandbox: Sandbox, changes: dict[str, Any], code: str
) -> None:
    reference = f"PAYX-{code[:12]}"
    answer = aiq.call(
        "PostPayAndAllocateSalesInvoice", query=pay_query(reference, customer="ACME01", **changes)
    )
    assert (answer.Status, answer.ErrorCode) == ("Failure", code)
    assert shared_sandbox.documents(external_reference=reference) == []
    assert shared_sandbox.documents(external_reference=f"R-{reference}") == []


def test_pay_and_allocate_many_answers_each_query(aiq: Integrator) -> None:
    aiq.customer("PAY12")
    queries = [
        pay_query("PAY12-1", "PAY12"),
        pay_query("PAY12-2", "PAY12", allocate="500.00"),
        pay_query("PAY12-3", "PAY12"),
    ]
    answer = aiq.call(
        "PostPayAndAllocateSalesInvoices", queries={"WSPostPayAndAllocateSalesInvoiceQuery": queries}
    )
    rows = answer.Result.WSResult2OfWSPostPayAndAllocateSalesInvoiceResult
    assert [(r.Status, r.ErrorCode) for r in rows] == [
        ("Success", "SUCCESS"),
        ("Failure", "TRANSACTION_CANNOT_ALLOCATE_MORE_THAN_OUTSTANSING_AMOUNT"),
        ("Success", "SUCCESS"),
    ]
    assert (
        rows[1].Result is None and rows[2].Result.InvoiceTransactionID > rows[0].Result.InvoiceTransactionID
    )


def test_a_credit_limit_can_be_enforced(aiq: Integrator) -> None:
    shell = aiq.call("GetNewCustomerFromDefaults").Result
    shell.Code, shell.Name, shell.CreditLimit = "PAY13", "PAY13 Ltd", Decimal("100.00")
    assert aiq.call("UpdateCustomer", customer=shell, create=True).Status == "Success"
    answer = aiq.call(
        "PostPayAndAllocateSalesInvoice", query=pay_query("PAY13-1", "PAY13", EnforceCreditLimit=True)
    )
    assert answer.ErrorCode == "CUSTOMER_BALANCE_EXCEEDS_CREDIT_LIMIT" and "PAY13" in answer.ErrorMessage


def test_allocations_between_dates_by_account_and_paged(aiq: Integrator) -> None:
    for code in ("PAY14", "PAY15"):
        aiq.customer(code)
        assert (
            aiq.call("PostPayAndAllocateSalesInvoice", query=pay_query(f"{code}-1", code)).Status == "Success"
        )
    answer = aiq.call(
        "GetAllocationsBetween",
        ledger="Sales",
        since=DAY,
        until=DAY,
        fromAccountCode="PAY14",
        toAccountCode="PAY15",
    )
    summaries = answer.Result.WSAllocationSummaryDTO
    assert [s.AccountCode for s in summaries] == ["PAY14", "PAY15"]
    assert {a.TransactionType for a in summaries[0].Allocations.WSAllocationTransactionDTO} == {"SI", "SR"}
    page = aiq.call(
        "GetAllocationsBetweenPaged",
        ledger="Sales",
        since=DAY,
        until=DAY,
        fromAccountCode="PAY14",
        toAccountCode="PAY15",
        skip=1,
        limit=5,
    )
    assert [s.AccountCode for s in page.Result.WSAllocationSummaryDTO] == ["PAY15"]
    later = aiq.call(
        "GetAllocationsBetween", ledger="Sales", since=datetime(2026, 11, 3), until=datetime(2026, 12, 1)
    )
    assert "PAY14" not in [
        s.AccountCode for s in (later.Result.WSAllocationSummaryDTO if later.Result else [])
    ]


def test_a_receipt_renders_as_a_pdf(aiq: Integrator) -> None:
    import io

    from pypdf import PdfReader

    aiq.customer("PAY16")
    invoice = aiq.invoice("PAY16", "PAY16-INV")
    receipt = int(aiq.receipt("PAY16", "R-PAY16", "150.00").transactionID)
    assert aiq.allocate(invoice, receipt, "120.00").Status == "Success"
    answer = aiq.call("GetSalesReceiptPDFByTransactionID", transactionID=receipt)
    text = PdfReader(io.BytesIO(answer.Result)).pages[0].extract_text()
    assert (
        "SALES RECEIPT" in text
        and "R-PAY16" in text
        and "PAY16-INV: 120.00" in text
        and "Unallocated: 30.00" in text
    )
    refused = aiq.call("GetSalesReceiptPDFByTransactionID", transactionID=invoice)
    assert refused.ErrorCode == "INVOICE_TYPE_INCORRECT"


def test_the_gateway_pays_and_allocates_and_renders_receipts(
    aiq: Integrator, shared_sandbox: Sandbox
) -> None:
    from aiq_flows.gateway.errors import AiqBusinessError
    from aiq_flows.gateway.models import BatchInvoiceLine, BatchSalesInvoice, SalesReceipt
    from tests.test_gateway_sandbox import gateway_for

    aiq.customer("PAY17")
    gateway = gateway_for(shared_sandbox)
    invoice = BatchSalesInvoice(
        CustomerCode="PAY17",
        InvoiceDate=DAY,
        ExternalReference="PAY17-1",
        Description="PAY17",
        Lines=[
            BatchInvoiceLine(
                GLAccountCode="4000", TaxCode="T1", Description="w", NetAmount=Decimal("100.00"), TaxRate=0.2
            )
        ],
    )
    receipt = SalesReceipt(
        CustomerCode="PAY17",
        CheckReference="R-PAY17-1",
        PaymentAmount=Decimal("114.00"),
        BankAccountCode="1200",
        PaymentDate=DAY,
    )
    invoice_id, receipt_id = gateway.pay_and_allocate(invoice, receipt, Decimal("100.00"), "PAY17")
    assert [e.amount for e in gateway.allocations_of(receipt_id)] == [Decimal("100.00")]
    gateway.allocate_with_discount(invoice_id, receipt_id, Decimal("14.00"), Decimal("6.00"), DAY, "rest")
    assert aiq.balance("PAY17") == 0 and open_items(aiq.statement("PAY17")) == {}
    assert gateway.sales_receipt_pdf(receipt_id).startswith(b"%PDF-")
    with pytest.raises(AiqBusinessError) as again:
        gateway.pay_and_allocate(invoice, receipt, Decimal("100.00"), "PAY17")
    assert again.value.error_code == "INVOICE_EXTERNAL_REFERENCE_ALREADY_EXISTS"
    gateway.close()
