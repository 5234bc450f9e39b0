"""Typed views of AccountsIQ's data shapes (pydantic v2), shared by the gateway and the sandbox.

Each model names the fields this project reads or writes; every other field AIQ sends is kept as
an extra (``extra="allow"``) so an object read from AIQ can be sent back whole, which is what AIQ
requires for updates (``RowVersionNumber`` and all).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class AiqModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_soap(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


class Account(AiqModel):
    """AIQ's Account (69 fields): customers and suppliers share it."""

    AccountID: int = 0
    Code: str | None = None
    Name: str | None = None
    CurrencyCode: str | None = None
    DefaultTaxCode: str | None = None
    ControlGLAccountCode: str | None = None
    DefaultGLAccountCode: str | None = None
    CreditTermID: str | None = None
    Address1: str | None = None
    Address2: str | None = None
    City: str | None = None
    PostCode: str | None = None
    Country: str | None = None
    Email: str | None = None
    Phone: str | None = None
    IsActive: bool = True
    CreditLimit: Decimal = Decimal(0)
    RowVersionNumber: str | None = None


class Customer(Account):
    pass


class Supplier(Account):
    pass


class CreditTerm(AiqModel):
    Code: str
    Description: str | None = None
    CreditDays: int
    EndOfMonth: bool


class Period(AiqModel):
    PeriodID: int
    PeriodNumber: int
    PeriodName: str | None = None
    FinancialYear: int
    StartDate: datetime
    EndDate: datetime
    SalesLedgerClosed: bool
    PurchasesLedgerClosed: bool
    GeneralLedgerClosed: bool

    def is_open(self, ledger: str) -> bool:
        return not getattr(self, f"{ledger}LedgerClosed")


class AccountBalance(AiqModel):
    AccountID: int
    AccountCode: str | None = None
    AccountType: str | None = None
    Balance: Decimal
    CreditLimit: Decimal
    CreditLeft: Decimal
    OverCreditLimitBalance: Decimal
    CurrencyCode: str | None = None


class RowResult(BaseModel):
    """One row of a bulk operation, in the order of the request: the AIQ transaction ID for
    posting operations, the draft's document ID for saving ones."""

    status: str
    error_code: str
    error_message: str | None = None
    transaction_id: int | None = None
    document_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("Success", "Created")


class TaxCode(AiqModel):
    Code: str
    Description: str | None = None
    Rate: Decimal


class GLAccount(BaseModel):
    code: str
    name: str


class BatchInvoiceLine(AiqModel):
    GLAccountCode: str
    TaxCode: str
    Description: str
    DepartmentID: str | None = None
    NetAmount: Decimal
    TaxRate: float
    TaxAmount: Decimal | None = None


class WithLines(AiqModel):
    """A document whose ``Lines`` travel as an ASP.NET array of ``_line_element`` elements."""

    _line_element: ClassVar[str]
    Lines: list[Any]

    def to_soap(self) -> dict[str, Any]:
        body = self.model_dump(by_alias=True)
        body["Lines"] = {self._line_element: [line.to_soap() for line in self.Lines]}
        return body


class BatchInvoice(WithLines):
    InvoiceDate: datetime
    ExternalReference: str | None = None
    Description: str | None = None
    Lines: list[BatchInvoiceLine] = Field(default_factory=list)
    ExchangeRate: Decimal = Decimal(1)
    DueDate: datetime | None = None


class BatchSalesInvoice(BatchInvoice):
    _line_element: ClassVar[str] = "BatchSalesInvoiceLine"
    CustomerCode: str


class BatchPurchasesInvoice(BatchInvoice):
    _line_element: ClassVar[str] = "BatchPurchasesInvoiceLine"
    SupplierCode: str


class GeneralJournalLine(AiqModel):
    """A journal line. ``Amount`` is signed (debit positive, credit negative); AIQ calls the
    Debit/Credit pair "no longer in use", so they are sent as 0."""

    GLAccountCode: str
    Description: str
    DepartmentID: str | None = None
    Debit: Decimal = Decimal(0)
    Credit: Decimal = Decimal(0)
    Amount: Decimal
    VatReturnID: int = 0
    TaxRpt: bool = False
    Reconc: bool = False
    Reversed: bool = False


class GeneralJournal(WithLines):
    _line_element: ClassVar[str] = "GeneralJournalLine"
    InternalReference: str
    ExternalReference: str
    TransactionDate: datetime
    Lines: list[GeneralJournalLine] = Field(default_factory=list)


class TransactionDetail(AiqModel):
    GLAccountCode: str | None = None
    IsControlLine: bool = False
    IsTaxLine: bool = False
    Amount: Decimal
    TaxID: str | None = None
    DepartmentID: str | None = None
    Description: str | None = None


class TransactionSummary(AiqModel):
    TransactionID: int
    AccountID: int
    AccountCode: str | None = None
    TransactionType: str | None = None
    ExternalReference: str | None = None
    ControlAmount: Decimal
    OutstandingAmount: Decimal | None = None  # what allocations have left to settle
    TransactionDate: datetime
    DueDate: datetime | None = None
    CreationDate: datetime
    CurrencyCode: str | None = None
    LineDetails: list[TransactionDetail] = Field(default_factory=list)


class TransactionLine(AiqModel):
    TransactionLineID: int
    TransactionID: int
    GLAccountCode: str | None = None
    Description: str | None = None
    ExternalReference: str | None = None
    Amount: Decimal
    BCAmount: Decimal
    TaxCode: str | None = None
    BroadType: str
    IsAccountControlLine: bool = False


class Transaction(AiqModel):
    TransactionType: str
    DueDate: datetime | None = None
    Lines: list[TransactionLine] = Field(default_factory=list)


class Department(AiqModel):
    """A BI code: tagged on transaction lines, linked to up to six analysis dimension elements."""

    DepartmentID: str
    Description: str | None = None
    AnalysisCode1: str | None = None
    AnalysisCode2: str | None = None
    AnalysisCode3: str | None = None
    AnalysisCode4: str | None = None
    AnalysisCode5: str | None = None
    AnalysisCode6: str | None = None
    IsActive: bool = True

    @property
    def analysis_codes(self) -> tuple[str | None, ...]:
        return tuple(getattr(self, f"AnalysisCode{n}") for n in range(1, 7))


class AnalysisDimension(AiqModel):
    Code: str
    Description: str | None = None
    element_codes: list[str] = Field(default_factory=list)


class InterCompanySide(AiqModel):
    EntityID: str
    EntityName: str | None = None
    EntityBaseCurrencyCode: str | None = None
    AccountID: int
    AccountCode: str | None = None
    AccountName: str | None = None
    AccountCurrencyCode: str | None = None


class InterCompanyConnection(AiqModel):
    """``Local``: this entity and the account standing for the other entity in its books;
    ``Remote``: the other entity and the mirror account in its books."""

    Local: InterCompanySide
    Remote: InterCompanySide


class InvoiceLine(AiqModel):
    """A line of an item invoice or credit note. AIQ recalculates ``ActualPrice``, the amounts
    and the tax rate from quantity, price, discount and tax code when the draft is saved; the
    value-typed members must be present, so they default here."""

    InvoiceItemID: int = 0
    InvoiceID: int = 0
    OrderItemID: int | None = None
    StockItemID: str | None = None
    StockItemDescription: str | None = None
    InvoicedQuantity: Decimal = Decimal(0)
    DeliveredQuantity: Decimal = Decimal(0)
    StockItemCost: Decimal = Decimal(0)
    StockItemPrice: Decimal = Decimal(0)
    DiscountRate: Decimal = Decimal(0)
    ActualPrice: Decimal = Decimal(0)
    TaxCode: str | None = None
    TaxRate: Decimal = Decimal(0)
    NetAmount: Decimal = Decimal(0)
    TaxAmount: Decimal = Decimal(0)
    GrossAmount: Decimal = Decimal(0)
    CreationDate: datetime = Field(default_factory=lambda: datetime.now().replace(microsecond=0))
    Notes: str | None = None
    AdditionalCost: bool = False
    GLAccountCode: str | None = None
    DeliveryItemID: int | None = None
    DepartmentID: str | None = None


class ItemDocument(WithLines):
    """What item invoices and credit notes share (AIQ's abstract InvoiceBase). Read one from a
    ``GetNew...`` template: it carries every required member AIQ expects back."""

    _line_element: ClassVar[str] = "InvoiceLine"
    InvoiceID: int = 0
    AccountID: int
    CurrencyCode: str | None = None
    InvoiceNumber: str | None = None
    ExternalReference: str | None = None
    InvoiceDate: datetime
    DeliveryDate: datetime
    Status: str = "Processed"
    Notes: str | None = None
    OrderNumber: str | None = None
    DepartmentID: str | None = None
    ExchangeRate: Decimal = Decimal(1)
    Ledger: str
    Type: str
    RowVersionNumber: str | None = None
    Lines: list[InvoiceLine] = Field(default_factory=list)
    NetAmount: Decimal = Decimal(0)
    TaxAmount: Decimal = Decimal(0)
    GrossAmount: Decimal = Decimal(0)
    DueDate: datetime | None = None

    def to_soap(self) -> dict[str, Any]:
        body = super().to_soap()
        body["CurrrencyCode"] = self.CurrencyCode  # AIQ's legacy three-r twin; keep them equal
        return body


class Invoice(ItemDocument):
    AccountCode: str | None = None


class CreditNote(ItemDocument):
    pass


class StockItem(AiqModel):
    StockItemID: str
    Description: str | None = None
    SalesDescription: str | None = None
    TaxCode: str | None = None
    ItemPrice: Decimal = Decimal(0)
    DefaultSalesGLAccountCode: str | None = None
    DefaultPurchasesGLAccountCode: str | None = None
    Active: bool = True


class SalesReceipt(AiqModel):
    """A customer's payment, posted at once (bank debit, debtors control credit). ``CheckReference``
    is the receipt's reference: AIQ keeps it as the transaction's external reference."""

    CustomerCode: str
    CheckReference: str | None = None
    PaymentAmount: Decimal
    BankAccountCode: str
    LodgmentNumber: str | None = None
    PaymentDate: datetime
    ExchangeRate: Decimal = Decimal(1)
    BankExchangeRate: Decimal = Decimal(1)
    Description: str | None = None
    DepartmentID: str | None = None


class AllocationEntry(BaseModel):
    """One allocation a transaction takes part in: the other side and the amount it settled."""

    allocation_number: int
    other_transaction_id: int
    other_type: str | None
    other_reference: str | None
    amount: Decimal
    allocated_on: datetime


class StatementLine(AiqModel):
    TransactionReference: int
    Type: str | None = None
    ExternalReference: str | None = None
    Amount: Decimal
    OutstandingAmount: Decimal
    TransactionDate: datetime
    DueDate: datetime


class CustomerStatement(BaseModel):
    """A customer's balance aged by due date, with the transactions behind it."""

    customer_code: str
    current_balance: Decimal
    future: Decimal
    days_0_30: Decimal
    days_30_60: Decimal
    days_60_90: Decimal
    days_90_120: Decimal
    days_120_plus: Decimal
    transactions: list[StatementLine] = Field(default_factory=list)

    @property
    def overdue(self) -> Decimal:
        return self.current_balance - self.future


class CompanyInformation(AiqModel):
    CompanyName: str | None = None
    BaseCurrencyCode: str | None = None
    LocaleName: str | None = None
