"""Contract: zeep clients built from AccountsIQ's *full* published WSDLs (1.1: all 217 operations;
2.0: all 219; not ours, not the subset), bound to the sandbox, call every operation the sandbox
serves and get well-formed answers: on 1.1 with a Login token, on 2.0 with the AiqSoapHeader.
Arguments are realistic: templates are read, filled and sent back whole, as an integrator would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import zeep
import zeep.helpers

from aiq_flows.gateway.schema import NAMESPACE, SCHEMA, V1_1, V2_0
from tests.support.processes import REPO, Sandbox

FULL_WSDL = REPO.parent / "shared" / "aiq" / "integration_1_1.full.wsdl"
FULL_WSDL_2_0 = REPO.parent / "shared" / "aiq" / "integration_2_0.full.wsdl"
DAY = datetime(2026, 11, 20)
OK = {"Success", "Created"}

pytestmark = pytest.mark.skipif(not FULL_WSDL.exists(), reason="../shared/aiq is not beside the checkout")


class Contract:
    """A logged-in client of the full WSDL, and the ids earlier calls produced."""

    def __init__(self, sandbox: Sandbox, version: str) -> None:
        self.sandbox = sandbox
        if version == V1_1:
            client = zeep.Client(str(FULL_WSDL))
            self.service = client.create_service(f"{{{NAMESPACE}}}Integration_1_1Soap", sandbox.url)
            token = self.service.Login(
                companyID="DEMO_UK",
                partnerKey=sandbox.credentials["partner_key"],
                userKey=sandbox.entity("DEMO_UK")["user_key"],
            )
            self.auth: dict[str, Any] = {"token": token}
        else:
            client = zeep.Client(str(FULL_WSDL_2_0))
            self.service = client.create_service(f"{{{NAMESPACE}}}Integration_2_0Soap", sandbox.url_2_0)
            app = sandbox.app()
            access = self.service.TokenGet(clientId=app["client_id"], clientSecret=app["client_secret"])
            header = {"Entity": "DEMO_UK", "AccessToken": access.Result.AccessToken}
            self.auth = {"_soapheaders": {"AiqSoapHeader": header}}

    @property
    def department(self) -> str:
        return "FULL-DEPT-" + ("1" if "token" in self.auth else "2")

    def call(self, operation: str, **params: Any) -> Any:
        return getattr(self.service, operation)(**self.auth, **params)

    def invoice(self, reference: str, ledger: str = "Sales", note: bool = False) -> Any:
        operation, key = {
            ("Sales", False): ("GetNewSalesInvoice", "customerCode"),
            ("Purchases", False): ("GetNewPurchasesInvoice", "supplierCode"),
            ("Sales", True): ("GetNewSalesCreditNote", "customerCode"),
        }[(ledger, note)]
        code = "ACME01" if ledger == "Sales" else "TEMPS01"
        template = self.call(operation, **{key: code}).Result
        template.ExternalReference, template.InvoiceDate = reference, DAY
        template.Lines = {"InvoiceLine": [invoice_line()]}
        return template

    def posted_invoice(self, reference: str) -> int:
        saved = self.call("SaveInvoiceGetBackInvoiceID", invoice=self.invoice(reference), create=True)
        return int(self.call("PostInvoiceGetBackTransactionID", invoiceID=saved.invoiceID).transactionID)


def invoice_line() -> dict[str, Any]:
    zero = Decimal(0)
    return {
        "InvoiceItemID": 0,
        "InvoiceID": 0,
        "OrderItemID": None,
        "StockItemID": "CONSULT-DAY",
        "InvoicedQuantity": Decimal(1),
        "DeliveredQuantity": zero,
        "StockItemCost": zero,
        "StockItemPrice": zero,
        "DiscountRate": zero,
        "ActualPrice": zero,
        "TaxRate": zero,
        "NetAmount": zero,
        "TaxAmount": zero,
        "GrossAmount": zero,
        "CreationDate": DAY,
        "AdditionalCost": False,
        "DeliveryItemID": None,
    }


def batch_line(gl: str = "4000") -> dict[str, Any]:
    return {
        "GLAccountCode": gl,
        "TaxCode": "T1",
        "Description": "Contract line",
        "NetAmount": Decimal("10.00"),
        "TaxRate": 0.2,
        "TaxAmount": None,
    }


def journal(reference: str) -> dict[str, Any]:
    lines = [
        {
            "GLAccountCode": gl,
            "Description": reference,
            "Debit": 0,
            "Credit": 0,
            "Amount": Decimal(amount),
            "VatReturnID": 0,
            "TaxRpt": False,
            "Reconc": False,
            "Reversed": False,
        }
        for gl, amount in (("2400", "5.00"), ("4100", "-5.00"))
    ]
    return {
        "InternalReference": reference,
        "ExternalReference": reference,
        "TransactionDate": DAY,
        "Lines": {"GeneralJournalLine": lines},
    }


def batch(c: Contract, reference: str) -> Any:
    template = c.call("GetNewBatchSalesInvoice", customerCode="ACME01").Result
    template.ExternalReference, template.InvoiceDate = reference, DAY
    template.Description = "Contract sales"
    template.Lines = {"BatchSalesInvoiceLine": [batch_line()]}
    return template


def purchase_batch(c: Contract) -> Any:
    template = c.call("GetNewBatchPurchasesInvoice", supplierCode="TEMPS01").Result
    template.ExternalReference, template.InvoiceDate = "FULL-PB", DAY
    template.Description = "Contract purchases"
    template.Lines = {"BatchPurchasesInvoiceLine": [batch_line("5000")]}
    return template


def customer_update(c: Contract) -> Any:
    customer = c.call("GetCustomer", customerCode="ACME01").Result
    customer.City = "York"
    return c.call("UpdateCustomer", customer=customer, create=False)


def supplier_update(c: Contract) -> Any:
    supplier = c.call("GetSupplier", supplierCode="TEMPS01").Result
    supplier.City = "Hull"
    return c.call("UpdateSupplier", supplier=supplier, create=False)


def save_credit_note(c: Contract) -> Any:
    return c.call(
        "SaveCreditNoteGetBackCreditNoteID", creditNote=c.invoice("FULL-CN", note=True), create=True
    )


def post_credit_note(c: Contract) -> Any:
    note_id = save_credit_note(c).creditNoteID
    return c.call("PostCreditNoteGetBackTransactionID", creditNoteID=note_id)


def cancel_invoice(c: Contract) -> Any:
    saved = c.call("SaveInvoiceGetBackInvoiceID", invoice=c.invoice("FULL-CXL"), create=True)
    return c.call("CancelInvoice", invoiceID=saved.invoiceID, reason="contract test")


def attach(c: Contract) -> Any:
    document = {
        "Header": {
            "MasterType": "Transaction",
            "MasterID": str(c.posted_invoice("FULL-ATT")),
            "Filename": "lines.csv",
            "DocumentID": None,
        },
        "Content": {"Content": b"a,b\n1,2\n", "Comments": "contract"},
    }
    return c.call("AttachDocument", document=document)


def post_invoices(c: Contract) -> Any:
    saved = c.call("CreateInvoicesGetBackInvoiceIDs", invoices={"Invoice": [c.invoice("FULL-BULK")]})
    return c.call("PostInvoicesGetBackTransactionIDs", invoiceIDs={"int": saved.invoiceIDs.int})


def receipt(reference: str, amount: str = "12.00") -> dict[str, Any]:
    return {
        "CustomerCode": "ACME01",
        "CheckReference": reference,
        "PaymentAmount": Decimal(amount),
        "BankAccountCode": "1200",
        "PaymentDate": DAY,
        "ExchangeRate": Decimal(1),
        "BankExchangeRate": Decimal(1),
        "Description": "Contract receipt",
    }


def pay_query(c: Contract, reference: str) -> dict[str, Any]:
    reference += c.department[-2:]  # one reference per API version: AIQ's duplicate check is on
    return {
        "PerformExternalReferenceDuplicateCheckOnInvoice": True,
        "PerformExternalReferenceDuplicateCheckOnReceipt": True,
        "BatchInvoice": batch(c, reference),
        "Receipt": receipt(f"{reference}-R"),
        "PerformAllocation": True,
        "AllocationDate": DAY,
        "AllocationAmount": Decimal("12.00"),
        "AllocationReference": reference,
        "ClientUniqueReference": reference,
        "EnforceCreditLimit": False,
    }


def allocated_pair(c: Contract, reference: str) -> tuple[int, int]:
    """A posted batch invoice and a receipt, 10.00 of it allocated to the invoice."""
    invoice = c.call("CreateBatchSalesInvoiceGetBackTransactionID", inv=batch(c, reference)).transactionID
    paid = c.call(
        "SaveSalesReceiptGetBackTransactionID", salesReceipt=receipt(f"{reference}-R")
    ).transactionID
    answer = c.call(
        "AllocateTransactions",
        transactionID_1=invoice,
        transactionID_2=paid,
        allocationReference=reference,
        allocationAmount=Decimal("10.00"),
        allocationDate=DAY,
    )
    assert answer.Status == "Success", (answer.ErrorCode, answer.ErrorMessage)
    return int(invoice), int(paid)


CALLS: dict[str, Callable[[Contract], Any]] = {
    "SaveSalesReceipt": lambda c: c.call("SaveSalesReceipt", salesReceipt=receipt("FULL-SR1")),
    "SaveSalesReceiptGetBackTransactionID": lambda c: c.call(
        "SaveSalesReceiptGetBackTransactionID", salesReceipt=receipt("FULL-SR2")
    ),
    "AllocateTransactions": lambda c: c.call(
        "GetAllocationsByTransactionId", transactionId=str(allocated_pair(c, "FULL-AL1")[0])
    ),
    "UnallocateTransactions": lambda c: c.call(
        "UnallocateTransactions", transactionIDs={"int": [allocated_pair(c, "FULL-AL2")[1]]}
    ),
    "AllocateTransactionsWithDiscount": lambda c: c.call(
        "AllocateTransactionsWithDiscount",
        transactionID_1=c.call(
            "CreateBatchSalesInvoiceGetBackTransactionID", inv=batch(c, "FULL-AD")
        ).transactionID,
        transactionID_2=c.call(
            "SaveSalesReceiptGetBackTransactionID", salesReceipt=receipt("FULL-AD-R", "10.00")
        ).transactionID,
        allocationReference="FULL-AD",
        allocationAmount=Decimal("10.00"),
        allocationDate=DAY,
        discountAmount=Decimal("0.50"),
    ),
    "GetAllocationsBetween": lambda c: c.call(
        "GetAllocationsBetween", ledger="Sales", since=DAY, until=DAY, fromAccountCode="A", toAccountCode="Z"
    ),
    "GetAllocationsBetweenPaged": lambda c: c.call(
        "GetAllocationsBetweenPaged", ledger="Sales", since=DAY, until=DAY, skip=0, limit=10
    ),
    "PostPayAndAllocateSalesInvoice": lambda c: c.call(
        "PostPayAndAllocateSalesInvoice", query=pay_query(c, "FULL-PA1")
    ),
    "PostPayAndAllocateSalesInvoices": lambda c: c.call(
        "PostPayAndAllocateSalesInvoices",
        queries={
            "WSPostPayAndAllocateSalesInvoiceQuery": [pay_query(c, "FULL-PA2"), pay_query(c, "FULL-PA3")]
        },
    ),
    "GetSalesReceiptPDFByTransactionID": lambda c: c.call(
        "GetSalesReceiptPDFByTransactionID",
        transactionID=c.call(
            "SaveSalesReceiptGetBackTransactionID", salesReceipt=receipt("FULL-PDF-R")
        ).transactionID,
    ),
    "GetAllocationsByTransactionId": lambda c: c.call(
        "GetAllocationsByTransactionId", transactionId=str(allocated_pair(c, "FULL-AL3")[1])
    ),
    "GetCustomer": lambda c: c.call("GetCustomer", customerCode="ACME01"),
    "GetActiveCustomerList": lambda c: c.call("GetActiveCustomerList"),
    "GetNewCustomerFromDefaults": lambda c: c.call("GetNewCustomerFromDefaults"),
    "UpdateCustomer": customer_update,
    "GetSupplier": lambda c: c.call("GetSupplier", supplierCode="TEMPS01"),
    "GetActiveSupplierList": lambda c: c.call("GetActiveSupplierList"),
    "GetNewSupplierFromDefaults": lambda c: c.call("GetNewSupplierFromDefaults"),
    "UpdateSupplier": supplier_update,
    "GetTaxCodeList": lambda c: c.call("GetTaxCodeList"),
    "GetGLAccountList": lambda c: c.call("GetGLAccountList"),
    "GetCreditTermList": lambda c: c.call("GetCreditTermList"),
    "GetCurrencyList": lambda c: c.call("GetCurrencyList"),
    "GetPeriodList": lambda c: c.call("GetPeriodList", pointInTime=None),
    "GetAccountBalanceInformation": lambda c: c.call(
        "GetAccountBalanceInformation", edt=DAY, accountIDs={"int": [1]}
    ),
    "GetCustomerBalanceInformation": lambda c: c.call(
        "GetCustomerBalanceInformation", edt=DAY, customerCodes={"string": ["ACME01"]}
    ),
    "GetNewBatchSalesInvoice": lambda c: c.call("GetNewBatchSalesInvoice", customerCode="ACME01"),
    "CreateBatchSalesInvoice": lambda c: c.call("CreateBatchSalesInvoice", inv=batch(c, "FULL-B1")),
    "CreateBatchSalesInvoiceGetBackTransactionID": lambda c: c.call(
        "CreateBatchSalesInvoiceGetBackTransactionID", inv=batch(c, "FULL-B2")
    ),
    "CreateBatchSalesInvoiceBulkGetBackTransactionIDs": lambda c: c.call(
        "CreateBatchSalesInvoiceBulkGetBackTransactionIDs",
        invoices={"BatchSalesInvoice": [batch(c, "FULL-B3"), batch(c, "FULL-B4")]},
    ),
    "GetNewBatchPurchasesInvoice": lambda c: c.call("GetNewBatchPurchasesInvoice", supplierCode="TEMPS01"),
    "CreateBatchPurchasesInvoiceGetBackTransactionID": lambda c: c.call(
        "CreateBatchPurchasesInvoiceGetBackTransactionID", inv=purchase_batch(c)
    ),
    "CreateGeneralJournal": lambda c: c.call("CreateGeneralJournal", journal=journal("FULL-GJ1")),
    "CreateGeneralJournalGetBackTransactionID": lambda c: c.call(
        "CreateGeneralJournalGetBackTransactionID", journal=journal("FULL-GJ2")
    ),
    "GetAnalysisDimensionSetup": lambda c: c.call("GetAnalysisDimensionSetup"),
    "GetDepartmentList": lambda c: c.call("GetDepartmentList"),
    "GetDepartmentById": lambda c: c.call("GetDepartmentById", departmentId="SALES-UK"),
    "GetDepartmentsByAnalysisCode": lambda c: c.call(
        "GetDepartmentsByAnalysisCode", query={"a1Filter": {"string": ["UK"]}}
    ),
    "CreateDepartment": lambda c: c.call("CreateDepartment", id=c.department, description="Contract"),
    "UpdateDepartment": lambda c: c.call(
        "UpdateDepartment", departmentID=c.department, newDescription="Contract, renamed", active=True
    ),
    "GetInterCompanyConnectionList": lambda c: c.call("GetInterCompanyConnectionList"),
    "GetTransactionsByExternalReference": lambda c: c.call(
        "GetTransactionsByExternalReference",
        query={
            "ExternalReference": "FULL-B2",
            "FromDate": datetime(2026, 1, 1),
            "ToDate": datetime(2027, 1, 1),
        },
    ),
    "GetTransaction": lambda c: c.call("GetTransaction", transactionID=c.posted_invoice("FULL-TX")),
    "GetTransactionsBy": lambda c: c.call(
        "GetTransactionsBy",
        query={
            "FromDate": datetime(2026, 1, 1),
            "ToDate": datetime(2027, 1, 1),
            "FromCreationDate": datetime(1, 1, 1),
            "ToCreationDate": datetime(1, 1, 1),
            "Skip": 0,
            "FromPeriodDate": None,
            "ToPeriodDate": None,
            "ExcludeReconciliationInformation": True,
        },
    ),
    "GetNewSalesInvoice": lambda c: c.call("GetNewSalesInvoice", customerCode="ACME01"),
    "GetNewSalesInvoices": lambda c: c.call("GetNewSalesInvoices", customerCodes={"string": ["ACME01"]}),
    "GetNewPurchasesInvoice": lambda c: c.call("GetNewPurchasesInvoice", supplierCode="TEMPS01"),
    "SaveInvoiceGetBackInvoiceID": lambda c: c.call(
        "SaveInvoiceGetBackInvoiceID", invoice=c.invoice("FULL-SAVE"), create=True
    ),
    "CreateInvoicesGetBackInvoiceIDs": lambda c: c.call(
        "CreateInvoicesGetBackInvoiceIDs",
        invoices={"Invoice": [c.invoice("FULL-CI"), c.invoice("FULL-CI", "Purchases")]},
    ),
    "PostInvoiceGetBackTransactionID": lambda c: c.call(
        "PostInvoiceGetBackTransactionID",
        invoiceID=c.call(
            "SaveInvoiceGetBackInvoiceID", invoice=c.invoice("FULL-POST"), create=True
        ).invoiceID,
    ),
    "PostInvoicesGetBackTransactionIDs": post_invoices,
    "CancelInvoice": cancel_invoice,
    "GetInvoice": lambda c: c.call(
        "GetInvoice",
        invoiceID=c.call("SaveInvoiceGetBackInvoiceID", invoice=c.invoice("FULL-GET"), create=True).invoiceID,
    ),
    "GetInvoicesByExternalReference": lambda c: c.call(
        "GetInvoicesByExternalReference", externalReference="FULL-SAVE"
    ),
    "GetNewSalesCreditNote": lambda c: c.call("GetNewSalesCreditNote", customerCode="ACME01"),
    "SaveCreditNoteGetBackCreditNoteID": save_credit_note,
    "PostCreditNoteGetBackTransactionID": post_credit_note,
    "GetCreditNotesByExternalReference": lambda c: c.call(
        "GetCreditNotesByExternalReference", externalReference="FULL-CN"
    ),
    "AttachDocument": attach,
    "GetInvoicePDFByTransactionID": lambda c: c.call(
        "GetInvoicePDFByTransactionID", transactionID=c.posted_invoice("FULL-PDF")
    ),
    "GetCustomersStatement": lambda c: c.call(
        "GetCustomersStatement", upTo=DAY, customerCodes={"string": ["ACME01"]}, showZeros=True
    ),
    "GetStockItem": lambda c: c.call("GetStockItem", stockItemID="CONSULT-DAY"),
    "GetActiveStockItemList": lambda c: c.call("GetActiveStockItemList"),
    "GetCompanyInformation": lambda c: c.call("GetCompanyInformation"),
}


@pytest.fixture(scope="module", params=[V1_1, V2_0])
def contract(shared_sandbox: Sandbox, request: pytest.FixtureRequest) -> Iterator[Contract]:
    yield Contract(shared_sandbox, request.param)


def test_every_served_operation_is_covered() -> None:
    served_1_1 = {op.name for op in SCHEMA.operations_of(V1_1)}
    assert set(CALLS) | {"Login"} == served_1_1
    # the 49 of the subset + 16 from the full WSDL (GetPeriodList, CreateDepartment,
    # GetCreditNotesByExternalReference, GetCompanyInformation, GetTransactionsBy, and receipts and
    # allocations: SaveSalesReceipt(GetBackTransactionID), AllocateTransactions(WithDiscount),
    # UnallocateTransactions, GetAllocationsByTransactionId, GetAllocationsBetween(Paged),
    # PostPayAndAllocateSalesInvoice(s), GetSalesReceiptPDFByTransactionID)
    assert len(served_1_1) == 65
    # on 2.0: the same operations, Login replaced by the token operations and GetEntitiesByToken
    served_2_0 = {op.name for op in SCHEMA.operations_of(V2_0)}
    assert served_2_0 == served_1_1 - {"Login"} | {"TokenGet", "TokenRefresh", "GetEntitiesByToken"}


@pytest.mark.parametrize("operation", sorted(CALLS))
def test_operation_answers_through_the_published_wsdl(contract: Contract, operation: str) -> None:
    answer = zeep.helpers.serialize_object(CALLS[operation](contract), dict)
    envelope = answer.get(f"{operation}Result", answer) if isinstance(answer, dict) else answer
    if SCHEMA.operations[operation].result.type == "ArrayOfWSResultStatus":
        rows = envelope["WSResultStatus"]
        assert rows and all(row["Status"] in OK for row in rows), rows
    else:
        assert envelope["Status"] in OK, (envelope["ErrorCode"], envelope["ErrorMessage"])
        assert envelope["HasExpired"] is False
    for out in SCHEMA.operations[operation].out_params:
        assert answer[out.name] not in (None, -1), out.name
