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
    """One row of a bulk operation, in the order of the request."""

    status: str
    error_code: str
    error_message: str | None = None
    transaction_id: int | None = None

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
    TransactionDate: datetime
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
