"""The project's own interface definition of the AccountsIQ Integration 1.1 and 2.0 services.

It describes, for the operations this project serves and calls, the same namespace, element names,
order, types, minOccurs and nillable flags as AccountsIQ's published WSDLs. `wsdl.py` renders it to
one WSDL document per version; the gateway builds its zeep client from that document and the
sandbox serves it. 2.0 shares every 1.1 type and operation except ``Login``; it adds the token
operations, ``GetEntitiesByToken`` and the ``AiqSoapHeader`` that selects the entity per call.

Field notation, one field per whitespace-separated token: ``Name[:type][!][?]``
- the type defaults to ``string``; XSD built-ins (int, decimal, ...) map to ``s:``, others to ``tns:``;
- ``!`` means minOccurs=1 (value-typed members in .NET), ``?`` means nillable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NAMESPACE = "http://www.visorsoftware.com/visor/accountsiq/dashboard/Integration/"
SERVICE_1_1 = "Integration_1_1"
PORT_1_1 = "Integration_1_1Soap"
PATH_1_1 = "/system/dashboard/integration/integration_1_1.asmx"
SERVICE_2_0 = "Integration_2_0"
PORT_2_0 = "Integration_2_0Soap"
PATH_2_0 = "/system/dashboard/integration/integration_2_0.asmx"
V1_1, V2_0 = "1.1", "2.0"
BOTH = frozenset({V1_1, V2_0})
# The 2.0 operations that take no AiqSoapHeader (they are how a caller gets its token).
UNHEADERED_2_0 = frozenset({"TokenGet", "TokenRefresh"})

XSD_BUILTINS = frozenset(
    {
        "string",
        "int",
        "long",
        "short",
        "unsignedByte",
        "decimal",
        "double",
        "boolean",
        "dateTime",
        "base64Binary",
    }
)


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = False
    nillable: bool = False
    many: bool = False

    @property
    def qualified_type(self) -> str:
        return f"s:{self.type}" if self.type in XSD_BUILTINS else f"tns:{self.type}"


@dataclass(frozen=True)
class ComplexType:
    name: str
    fields: tuple[Field, ...] = ()
    base: str | None = None
    abstract: bool = False
    versions: frozenset[str] = BOTH
    any_attribute: bool = False


@dataclass(frozen=True)
class Operation:
    name: str
    params: tuple[Field, ...]
    result: Field
    out_params: tuple[Field, ...] = ()
    versions: frozenset[str] = BOTH

    def has_header(self, version: str) -> bool:
        return version == V2_0 and self.name not in UNHEADERED_2_0


@dataclass(frozen=True)
class Schema:
    complex_types: dict[str, ComplexType] = field(default_factory=dict)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)

    def operations_of(self, version: str) -> list[Operation]:
        return [op for op in self.operations.values() if version in op.versions]

    def types_of(self, version: str) -> list[ComplexType]:
        return [ctype for ctype in self.complex_types.values() if version in ctype.versions]

    def all_fields(self, type_name: str) -> tuple[Field, ...]:
        """Fields of a complex type including inherited ones, base first (XSD extension order)."""
        ctype = self.complex_types[type_name]
        inherited = self.all_fields(ctype.base) if ctype.base else ()
        return inherited + ctype.fields


def parse_fields(spec: str) -> tuple[Field, ...]:
    fields: list[Field] = []
    for token in spec.split():
        required = "!" in token
        nillable = "?" in token
        token = token.replace("!", "").replace("?", "")
        name, _, type_name = token.partition(":")
        fields.append(Field(name, type_name or "string", required=required, nillable=nillable))
    return tuple(fields)


# --- value shapes -------------------------------------------------------------------------------

ACCOUNT = """
AccountID:int! ExternalApproverID:int!? LedgerType:LedgerType! Code CountryCode Name GroupID
DefaultTaxCode AreaID BankAccountCode CountryID CreditTermID CurrencyCode PaymentMethodID
AuthorUserID ShipViaID CreationDate:dateTime! Address1 Address2 City County_State Country PostCode
DeliveryName DeliveryAddress1 DeliveryAddress2 DeliveryCity DeliveryCounty_State DeliveryCountry
DeliveryPostCode DeliveryContact DeliveryPhone DeliveryFax Phone Fax Email WebAddress Contact
VATRegistrationNumber VATExemptReference DiscountRate:decimal! UseAccountTaxCode:boolean!
DefaultGLAccountCode ControlGLAccountCode IsActive:boolean! Hold:short! HeadOfficeAccountID:int!?
Notes UseHeadOffice:boolean! IsHeadOffice:boolean! CreditLimit:decimal! RegionID PriorityID
DeliveryRouteID PriceCategoryID PriceListID DepartmentID InternationalBankAccountNumber
BankSortCode BankCode BankSwiftCode AccountReferralID MobilePhone IsFranchise:boolean!
ContractorTaxCode RowVersionNumber EDICentralID EPaymentReference SalesRepresentativeID:long!?
"""

TAX = """
Rate:decimal! EuropeanCommunitySales:boolean! EuropeanCommunityPurchases:boolean! EUTrade:boolean!
ReverseCharge:boolean? IsGoods:boolean! PartialReclaim:boolean! PartialReclaimRate:decimal!
IsDefault:boolean! IsTaxExclude:boolean! IsStandardRate:boolean! GrossThreshold:decimal!?
NetThreshold:decimal!? TaxTypeId:int!? SalesTaxInclude:boolean! PurchasesTaxInclude:boolean!
DebitGlAccno CreditGlAccno WithHoldingTaxGLAccount IsWithHoldingTax:boolean! Is1099Code:boolean!
Checker:TaxChecker
"""

BATCH_SALES_INVOICE = """
CustomerCode InvoiceDate:dateTime! ExternalReference Description
Lines:ArrayOfBatchSalesInvoiceLine ExchangeRate:decimal! DueDate:dateTime?
"""

BATCH_INVOICE_LINE = """
GLAccountCode TaxCode Description DepartmentID NetAmount:decimal! TaxRate:double!
TaxAmount:decimal!?
"""

BATCH_PURCHASES_INVOICE = """
SupplierCode InvoiceDate:dateTime! ExternalReference Description
Lines:ArrayOfBatchPurchasesInvoiceLine ExchangeRate:decimal! DueDate:dateTime?
"""

GENERAL_JOURNAL_LINE = """
GLAccountCode Description DepartmentID Debit:decimal! Credit:decimal! Amount:decimal!
VatReturnID:int! TaxRpt:boolean! Reconc:boolean! Reversed:boolean!
"""

# .NET serialises this DTO's backing fields as well as its properties, so both appear.
FINANCIAL_PERIOD = """
_PeriodID:int! _PeriodNumber:unsignedByte! _PeriodName _FinancialYear:int! _StartDate:dateTime!?
_EndDate:dateTime!? _SalesLedgerClosed:boolean! _PurchasesLedgerClosed:boolean!
_GeneralLedgerClosed:boolean! _FinancialYearClosed:boolean! PeriodID:int! PeriodNumber:unsignedByte!
PeriodName FinancialYear:int! StartDate:dateTime! EndDate:dateTime! SalesLedgerClosed:boolean!
PurchasesLedgerClosed:boolean! GeneralLedgerClosed:boolean! FinancialYearClosed:boolean!
"""

ACCOUNT_BALANCE = """
AccountID:int! AccountCode AccountType Balance:decimal! CreditLimit:decimal! CreditLeft:decimal!
OverCreditLimitBalance:decimal! CurrencyCode
"""

TRANSACTION_LINE = """
TransactionLineID:int! TransactionID:int! AccountID:int!? BankID:int!? CurrencyCode TaxCode
AuthorUserID TransactionGroupNumber:int! GLAccountCode TransactionLineType Description
GlAccountName DepartmentName InternalNumber ExternalReference IsInDispute:boolean!
CreationDate:dateTime! TransactionDate:dateTime! DueDate:dateTime? PeriodDate:dateTime!
Amount:decimal! AllocatedAmount:decimal! BCAmount:decimal! ExchangeRate:decimal!
Reconciled:boolean! BankstatementID:int!? PeriodID:int! InvoiceID:int!? AllocationNumber:int!?
DepartmentID BroadType:RType! IsReversed:boolean! ReasonID:int!? SupplierBatchPaymentID:int!?
VatReturnID:int!? SupplierBatchPaymentDiscountedAmount:decimal!
SupplierBatchPaymentAllocatedAmount:decimal! LodgmentNumber RowVersionNumber IsBankLine:boolean!
IsAccountControlLine:boolean!
"""

TRANSACTION_SUMMARY = """
AccountID:int! AccountCode Ledger:LedgerType! TransactionType TransactionID:int!
IsBatchInvoiceOrNote:boolean! InvoiceID:int! InternalNumber ExternalReference
ControlAmount:decimal! OutstandingAmount:decimal! ControlBCAmount:decimal!
TransactionDate:dateTime! FinancialYear:int! PeriodNumber:int! PeriodName CreationDate:dateTime!
LineDetails:ArrayOfWSTransactionDetail CurrencyCode PeriodDate:dateTime! CreatedBy AccountName
TransactionBankGLAccountNumber IsReversed:boolean! IsInDispute:boolean! NumberOfAttachments:int!
DueDate:dateTime?
"""

TRANSACTION_DETAIL = """
GLAccountCode IsControlLine:boolean! IsTaxLine:boolean! IsStockLine:boolean! Amount:decimal!
BCAmount:decimal! TaxID DepartmentID CurrencyCode IsReconciled:boolean! Description
TransactionDate:dateTime!? PeriodDate:dateTime!? DueDate:dateTime? ExchangeRate:decimal!
"""

TRANSACTIONS_BY_QUERY = """
FromDate:dateTime! ToDate:dateTime! FromCreationDate:dateTime! ToCreationDate:dateTime! Skip:int!
TypesFilter:ArrayOfString AccountIDsFilter:ArrayOfInt TransactionIDsFilter:ArrayOfInt
DepartmentIDsFilter:ArrayOfString FromPeriodDate:dateTime!? ToPeriodDate:dateTime!? FromDueDate:dateTime?
ToDueDate:dateTime? ExcludeReconciliationInformation:boolean!
"""

TRANSACTIONS_QUERY = """
ExternalReference FromDate:dateTime! ToDate:dateTime! TypesFilter:ArrayOfString
AccountIDsFilter:ArrayOfInt TransactionIDsFilter:ArrayOfInt DepartmentIDsFilter:ArrayOfString
"""

INVOICE_BASE = """
InvoiceID:int! AccountID:int! AreaID CurrencyCode CurrrencyCode AccountTaxCode PaymentMethodID
ShipmentViaID InvoiceNumber ExternalReference CreationDate:dateTime! InvoiceDate:dateTime!
ExternalApproverID:int!? DeliveryDate:dateTime! Status:InvoiceStatus! AccountName AccountAddress1
AccountAddress2 City County_State Country PostCode DeliveryAccountName DeliveryAccountAddress1
DeliveryAccountAddress2 DeliveryCity DeliveryCounty_State DeliveryCountry DeliveryPostCode Contact
AuthorUserID Phone Notes DiscountRate:decimal! ForCollection:boolean! ExchangeRate:decimal!
UseAccountTaxCode:boolean! OrderID:int!? OrderNumber DepartmentID Hold:short! Ledger:LedgerType!
RowVersionNumber Lines:ArrayOfInvoiceLine IsPrinted:boolean! AccountBranchID:int!?
OrderDate:dateTime!? ExcludeFromPrinting:boolean! Type:InvoiceType! SalesRepresentativeID:long!?
LockUser NetAmount:decimal! TaxAmount:decimal! GrossAmount:decimal! BCNetAmount:decimal!
BCTaxAmount:decimal! BCGrossAmount:decimal! ForecastedPaymentDate:dateTime!?
TaxAdjustmentAmount:decimal! BCTaxAdjustmentAmount:decimal! LastModifiedUTC:dateTime!?
DueDate:dateTime?
"""

INVOICE_LINE = """
InvoiceItemID:int! InvoiceID:int! OrderItemID:int!? StockItemID StockItemDescription
InvoicedQuantity:decimal! DeliveredQuantity:decimal! StockItemCost:decimal! StockItemPrice:decimal!
DiscountRate:decimal! ActualPrice:decimal! TaxCode TaxRate:decimal! NetAmount:decimal!
TaxAmount:decimal! GrossAmount:decimal! LocationID SublocationID CreationDate:dateTime! Notes Notes2
AdditionalCost:boolean! GLAccountCode OpeningStockGLAccountCode DeliveryItemID:int!? DepartmentID
RowVersionNumber ProjectNumber
"""

STOCK_ITEM = """
StockItemID Description SalesDescription ItemGroupID ItemTypeID ItemSubgroupID DefaultLocationID
DefaultSublocationID TaxCode ItemPrice:decimal! UpdateOnHand:boolean! OpeningStockGLAccountCode
ClosingStockGLAccountCode DefaultSalesGLAccountCode DefaultPurchasesGLAccountCode
OpeningWorkInProgressGLAccountCode ClosingWorkInProgressGLAccountCode Active:boolean!
ReOrderLevel:decimal! ItemPrice2:decimal! ItemPrice3:decimal! ItemPrice4:decimal! ItemPrice5:decimal!
ItemPrice6:decimal! ItemPrice7:decimal! ItemPrice8:decimal! UseMarginWarning:boolean! Margin:decimal!
UniversalResourceNumber RowVersionNumber Weight:double!?
"""

CUSTOMER_STATE = """
From0To30DaysBalanceBucket:decimal! From30To60DaysBalanceBucket:decimal!
From60To90DaysBalanceBucket:decimal! From90To120DaysBalanceBucket:decimal!
From120DaysPlusBalanceBucket:decimal! FutureBalanceBucket:decimal! CurrentBalance:decimal!
CurrentDate:dateTime! CustomerCode
"""

TRANSACTION_STATE = """
TransactionReference:int! Type InternalNumber ExternalReference Amount:decimal!
OutstandingAmount:decimal! TransactionDate:dateTime! Description DueDate:dateTime!
"""

COMPANY_INFORMATION = """
CompanyName LocaleName BaseCurrencyCode Address:WSAddress ContactInformation:WSContactInformation
AutoNumberingSettings:WSAutoNumberingSettings PrecisionSettings:WSPrecisionSettings
ApprovalSettings:WSApprovalSettings TaxRegistrationNumber RegistrationNumber EDIIdentifier
IsConsolidationCompany:boolean!
"""

AUTO_NUMBERING = " ".join(
    f"UseAuto{kind}Numbering:boolean! Current{kind}Number"
    for kind in ("SalesQuote", "SalesOrder", "SalesInvoice", "SalesCreditNote", "PurchaseOrder")
)

ENUMS: dict[str, tuple[str, ...]] = {
    "OperationStatus": (
        "Success",
        "Failure",
        "NotCreated",
        "Created",
        "Conflicted",
        "Unknown",
        "InProgress",
    ),
    "LedgerType": ("Sales", "Purchases", "General"),
    "InvoiceStatus": ("Processed", "Posted", "Cancelled"),
    "InvoiceType": ("Invoice", "Note", "Other"),
    "WSApprovalType": ("SupplierBased", "BudgetHolderBased"),
    "WSMasterTypeEnum": (
        "Transaction",
        "Customer",
        "Supplier",
        "PurchaseOrder",
        "PurchaseInvoice",
        "SalesQuote",
        "SalesOrder",
        "SalesInvoice",
        "Bank",
        "BankState",
        "StockItem",
        "EDI",
        "CustomerMaster",
        "DirectDebitExtract",
        "GLAccount",
        "Importer",
        "PurchaseInvoiceLine",
        "SalesInvoiceLine",
        "StockTake",
        "SupplierBatchPayment",
        "SupplierMaster",
        "VatReturn",
        "BudgetUpload",
        "EmployeeImportValidation",
        "ChartOfAccountsImportValidation",
        "FixedAsset",
        "MileageBand",
        "FixedAssetDepreciations",
        "ServiceNonStockItem",
        "WorkflowMaster",
        "AutomationMaster",
        "GLJournal",
    ),
    "RType": ("None", "Vat", "Net", "Control"),
    "Type": (
        "Unknown",
        "SalesQuote",
        "SalesOrder",
        "SalesInvoice",
        "SalesCreditNote",
        "SalesDebitJournal",
        "SalesCreditJournal",
        "SalesReceipt",
        "SalesRefund",
        "PurchasesOrder",
        "PurchasesInvoice",
        "PurchasesDebitNote",
        "PurchasesDebitJournal",
        "PurchasesCreditJournal",
        "PurchasesPayment",
        "PurchasesRefund",
        "BankCredit",
        "BankDebit",
        "BankReceipt",
        "BankPayment",
        "BankTransfer",
        "GeneralJournal",
        "Accrual",
        "PrePayment",
        "StockTransfer",
        "SalesCurrencyFluctuation",
        "PurchasesCurrencyFluctuation",
        "YearEndTransaction",
        "SalesDiscount",
        "PurchasesDiscount",
        "SalesBatchInvoice",
        "SalesBatchCreditNote",
        "YearEndJournal",
    ),
    # AccountsIQ's enum has 2,404 codes; we declare the ones this project emits or handles.
    # tests/test_contract.py checks every one of them against the published enum.
    "VisorExceptionCodes": (
        "SUCCESS",
        "UNKNOWN",
        "NOT_FOUND",
        "BAD_REQUEST",
        "WS_INVALIDTOKEN",
        "OUTDATED_RECORD",
        "DATE_IS_OUT_OF_RANGE",
        "INVALID_QUERY_MISSING_EXTERNAL_REFERENCE",
        "CUSTOMER_CODE_DOES_NOT_EXIST",
        "ACCOUNT_CODE_IS_NULL",
        "ACCOUNT_CODE_IS_EMPTY",
        "ACCOUNT_CODE_MUST_BE_UPPER_CASE",
        "ACCOUNT_CODE_IS_TOO_LONG",
        "ACCOUNT_CODE_CANNOT_CONTAIN_LEADING_AND_OR_TRAILING_WHITESPACES",
        "ACCOUNT_CODE_CONTAINS_INVALID_CHARACTERS",
        "ACCOUNT_CODE_ALREADY_IN_USE",
        "ACCOUNT_NAME_IS_NULL",
        "ACCOUNT_NAME_IS_EMPTY",
        "ACCOUNT_NAME_IS_TOO_LONG",
        "ACCOUNT_ADDRESS_IS_TOO_LONG",
        "ACCOUNT_EMAIL_INVALID_FORMAT",
        "ACCOUNT_EMAIL_IS_TOO_LONG",
        "ACCOUNT_CREDIT_LIMIT_MUST_BE_POSITIVE",
        "CUSTOMER_CURRENCY_CODE_NOT_FOUND",
        "CUSTOMER_TAX_CODE_NOT_FOUND",
        "CUSTOMER_CONTROL_GL_ACCOUNT_NOT_FOUND",
        "CUSTOMER_DEFAULT_GL_ACCOUNT_NOT_FOUND",
        "CUSTOMER_CREDIT_TERM_NOT_FOUND",
        "BATCH_INVOICE_WITH_NO_INVOICE_LINES",
        "BATCH_INVOICE_LINE_MISSING_GL_ACCOUNT",
        "BATCH_INVOICE_LINE_MISSING_DESCRIPTION",
        "BATCH_INVOICE_TOTAL_GROSS_AMT_NEGATIVE",
        "TRANSACTION_EXTERNAL_REFERENCE_IS_NULL",
        "TRANSACTION_EXTERNAL_REFERENCE_IS_TOO_LONG",
        "TRANSACTION_LINE_DESCRIPTION_IS_TOO_LONG",
        "TRANSACTION_NOT_FOUND",
        "TAX_CODE_DOES_NOT_EXIST",
        "TAX_CODE_IS_NOT_UPPERCASE",
        "TAX_CODE_IS_TOO_LONG",
        "TAX_RATE_IS_NEGATIVE",
        "GLACCOUNT_IS_NOT_POSTING_OR_DOES_NOT_EXIST",
        "SALES_LEDGER_ALREADY_CLOSED",
        "EXCHANGE_RATE_IS_NEGATIVE_OR_ZERO",
        "PURCHASES_LEDGER_ALREADY_CLOSED",
        "GENERAL_LEDGER_ALREADY_CLOSED",
        "SUPPLIER_CODE_DOES_NOT_EXIST",
        "SUPPLIER_CURRENCY_CODE_NOT_FOUND",
        "SUPPLIER_TAX_CODE_NOT_FOUND",
        "SUPPLIER_CONTROL_GL_ACCOUNT_NOT_FOUND",
        "SUPPLIER_DEFAULT_GL_ACCOUNT_NOT_FOUND",
        "SUPPLIER_CREDIT_TERM_NOT_FOUND",
        "NO_CUSTOMER_CODES_PROVIDED",
        "JOURNAL_ENTRY_MUST_HAVE_A_REFERENCE",
        "JOURNAL_ENTRY_REFERENCE_IS_TOO_LONG",
        "JOURNAL_ENTRY_MUST_HAVE_MORE_THEN_ONE_ROW",
        "JOURNAL_ENTRY_LINES_ARE_NOT_BALANCED",
        "JOURNAL_ENTRY_CANNOT_HAVE_NEGATIVE_AMOUNTS",
        "JOURNAL_ENTRY_CANNOT_POST_TO_CONTROL_ACCOUNT",
        "JOURNAL_ENTRY_CANNOT_POST_TO_FOREIGN_BANK_ACCOUNT",
        "JOURNAL_ENTRY_LINE_DESCRIPTION_IS_TOO_LONG",
        "TRANSACTION_LINE_DESCRIPTION_IS_NULL",
        "DEPARTMENT_ID_DOES_NOT_EXIST",
        "DEPARTMENT_ID_IS_NULL",
        "DEPARTMENT_ID_IS_EMPTY",
        "DEPARTMENT_ID_IS_TOO_LONG",
        "DEPARTMENT_ID_IS_NOT_UPPERCASE",
        "DEPARTMENT_ID_CONTAINS_VERTICAL_BAR",
        "DEPARTMENT_ID_ALREADY_IN_USE",
        "DEPARTMENT_DESCRIPTION_IS_NULL",
        "DEPARTMENT_DESCRIPTION_IS_EMPTY",
        "DIMENSION_CODE_NOT_FOUND_IN_DIMENSION",
        "GLACCOUNT_NO_DEPARTMENT_IS_DEPARTMENTAL",
        "ACCOUNT_ID_IS_NEGATIVE_OR_ZERO",
        "ACCOUNT_ID_DOES_NOT_EXIST",
        "INVOICE_ID_DOES_NOT_EXIST",
        "INVOICE_EXTERNAL_REFERENCE_IS_TOO_LONG",
        "INVOICE_NOTES_IS_TOO_LONG",
        "INVOICE_CANNOT_BE_POSTED",
        "INVOICE_CANNOT_BE_POSTED_SINCE_IT_IS_CANCELLED",
        "INVOICE_CANNOT_BE_UNPOSTED",
        "INVOICE_CANNOT_BE_CANCELLED_NOT_STATUS_PROCESSED",
        "INVOICE_CANNOT_BE_CANCELLED_NO_REASON_PROVIDED",
        "INVOICE_TYPE_INCORRECT",
        "INVOICED_QUANTITY_IS_NEGATIVE",
        "DISCOUNT_RATE_IS_NEGATIVE",
        "DISCOUNT_RATE_IS_100_PERCENT_OR_MORE",
        "STOCKITEM_ID_DOES_NOT_EXIST",
        "STOCKITEM_PRICE_IS_NEGATIVE",
        "INVALID_DOCUMENT_EXTENSION",
        "DOCUMENT_NAME_IS_TOO_LONG",
        "DOCUMENT_NAME_IS_INVALID",
        "DOCUMENT_COMMENT_IS_TOO_LONG",
        "DOCUMENT_MASTERTYPE_IS_INVALID",
        "DOCUMENT_CONTENT_IS_NULL_OR_EMPTY",
        "DOCUMENT_MASTER_ID_MUST_BE_POSITIVE",
        "DOCUMENT_CANNOT_BE_SAVED_NAME_NOT_UNIQUE",
        "UNABLE_TO_DETERMINE_DOCUMENT_MASTER",
        "INVALID_STATE_ERROR_WHILE_UPLOADING_DOCUMENT",
        "OAUTH_INTEGRATION_APPS_CLIENTID_IS_NULL_OR_EMPTY",
        "OAUTH_INTEGRATION_APPS_CLIENTSECRET_IS_NULL_OR_EMPTY",
        "OAUTH_INTEGRATION_APPS_APP_NOT_FOUND",
        "OAUTH_INTEGRATION_APPS_TOKEN_EXPIRED",
        "OAUTH_INTEGRATION_APPS_TOKEN_IS_INVALID",
        "OAUTH_INTEGRATION_APPS_TOKEN_DOES_NOT_HAVE_PERMISSION",
        "OAUTH_INTEGRATION_APPS_NO_ENTITY_PROVIDED_IN_HEADER",
        "OAUTH_INTEGRATION_APPS_REFRESH_TOKEN_EXPIRED",
        "OAUTH_INTEGRATION_APPS_TOO_MANY_API_CALLS",
        "OAUTH_INTEGRATION_APPS_TOKEN_NOT_PROVIDED_IN_AUTHORIZATION_HEADER",
        "API_LAYER_ENTITY_ID_NOT_FOUND",
        "ACCOUNT_CONTACT_IS_TOO_LONG",
        "ACCOUNT_PHONE_IS_TOO_LONG",
        "GLACCOUNT_CODE_IS_NULL",
        "GLACCOUNT_CODE_IS_EMPTY",
        "GLACCOUNT_CODE_IS_NOT_UPPERCASE",
        "GLACCOUNT_CODE_IS_TOO_LONG",
        "TAX_CODE_IS_NULL",
        "TAX_CODE_IS_EMPTY",
        "TAX_RATE_IS_MORE_THAN_100_PERCENT",
        "TRANSACTION_LINE_DESCRIPTION_IS_EMPTY",
        "UNKNOWN_DEPARTMENT",
        "BANK_ACCOUNT_DOES_NOT_EXIST",
        "TRANSACTION_ALLOCATION_AMOUNT_CANNOT_BE_NEGATIVE_OR_ZERO",
        "TRANSACTION_CANNOT_ALLOCATE_CROSS_ACCOUNT",
        "TRANSACTION_CANNOT_ALLOCATE_FULLY_ALLOCATED_TRANSACTION",
        "TRANSACTION_CANNOT_ALLOCATE_MORE_THAN_OUTSTANSING_AMOUNT",
        "TRANSACTION_CANNOT_BE_ALLOCATED_INCOMPATIBLE_TYPES",
        "TRANSACTION_IS_NOT_ALLOCATABLE",
        "UNALLOCATE_TRANSACTION_INVALID_TRANSACTION_ID",
        "UNALLOCATE_TRANSACTION_IN_CLOSED_PERIOD",
        "RECEIPT_EXTERNAL_REFERENCE_ALREADY_EXISTS",
        "INVALID_STATE_TRANSACTION_OUSTANDING_AMOUNT_IS_LESS_THAN_ALLOCATION_PLUS_DISCOUNT_AMOUNT",
        "INVOICE_EXTERNAL_REFERENCE_ALREADY_EXISTS",
        "MISSING_QUERY_PARAMETER_INVOICE_AND_OR_RECEIPT",
        "MISSING_QUERY_PARAMETER_CANNOT_ALLOCATE_WITHOUT_BOTH_INVOICE_AND_RECEIPT",
        "CUSTOMER_BALANCE_EXCEEDS_CREDIT_LIMIT",
        "CONFIGURATION_ERROR",
    ),
}


def _build() -> Schema:
    schema = Schema(enums=dict(ENUMS))
    types = schema.complex_types

    def add(
        name: str,
        spec: str = "",
        base: str | None = None,
        abstract: bool = False,
        versions: frozenset[str] = BOTH,
    ) -> None:
        types[name] = ComplexType(name, parse_fields(spec), base=base, abstract=abstract, versions=versions)

    def array_of(item: str, nillable: bool = True, versions: frozenset[str] = BOTH) -> str:
        name = f"ArrayOf{item[0].upper()}{item[1:]}"
        types[name] = ComplexType(name, (Field(item, item, nillable=nillable, many=True),), versions=versions)
        return name

    def result_of(inner: str, required: bool = False, name: str = "", versions: frozenset[str] = BOTH) -> str:
        name = name or f"WSResult2Of{inner[0].upper()}{inner[1:]}"
        types[name] = ComplexType(
            name, (Field("Result", inner, required=required),), base="WSResultStatus", versions=versions
        )
        return name

    add("OperationResult", "Status:OperationStatus! ErrorCode:VisorExceptionCodes! ErrorMessage")
    add("WSResultStatus", "HasExpired:boolean!", base="OperationResult")
    add("ObjectBase")
    add("InfoBase", "ID Code Description RowVersionNumber", base="ObjectBase")
    add(
        "InfoCheckerBase",
        "IdLength:int! CodeLength:int! DescriptionLength:int! AuthorLength:int!",
        abstract=True,
    )
    add("TaxChecker", base="InfoCheckerBase")
    add("Account", ACCOUNT, base="ObjectBase")
    add("Customer", base="Account")
    add("Supplier", base="Account")
    add("CreditTerm", "CreditDays:int! EndOfMonth:boolean! Checker:CreditTermChecker", base="InfoBase")
    add("CreditTermChecker", "CreditDayLength:int!", base="InfoCheckerBase")
    add("WSFinancialPeriodDTO", FINANCIAL_PERIOD)
    add("AccountBalanceInformation", ACCOUNT_BALANCE)
    add("BatchPurchasesInvoice", BATCH_PURCHASES_INVOICE)
    add("BatchPurchasesInvoiceLine", BATCH_INVOICE_LINE)
    add(
        "GeneralJournal",
        "InternalReference ExternalReference TransactionDate:dateTime! Lines:ArrayOfGeneralJournalLine",
        base="ObjectBase",
    )
    add("GeneralJournalLine", GENERAL_JOURNAL_LINE, base="ObjectBase")
    add(
        "Department",
        "DepartmentID Description AnalysisCode1 AnalysisCode2 AnalysisCode3 AnalysisCode4 "
        "AnalysisCode5 AnalysisCode6 IsActive:boolean!",
    )
    add("WSAnalysisDimension", "Code Description DimensionCodes:ArrayOfWSAnalysisDimensionCode")
    add("WSAnalysisDimensionCode", "Code Description")
    add("WSInterCompanyConnection", "Local:WSInterCompanyConnectionData Remote:WSInterCompanyConnectionData")
    add(
        "WSInterCompanyConnectionData",
        "EntityID EntityName EntityBaseCurrencyCode AccountID:int! AccountCode AccountName "
        "AccountCurrencyCode",
    )
    add(
        "WSGetDepartmentByAnalysisCodeQuery",
        " ".join(f"a{n}Filter:ArrayOfString" for n in range(1, 7)),
    )
    add("Tax", TAX, base="InfoBase")
    add("BatchSalesInvoice", BATCH_SALES_INVOICE)
    add("BatchSalesInvoiceLine", BATCH_INVOICE_LINE)
    add("Transaction", "Lines:ArrayOfTransactionLine TransactionType:Type! DueDate:dateTime?")
    add("TransactionLine", TRANSACTION_LINE)
    add("WSGetTransactionsByExternalReferenceQuery", TRANSACTIONS_QUERY)
    add("WSGetTransactionsByQuery", TRANSACTIONS_BY_QUERY)
    add("WSTransactionSummary", TRANSACTION_SUMMARY)
    add("WSTransactionDetail", TRANSACTION_DETAIL)
    add("InvoiceBase", INVOICE_BASE, base="ObjectBase", abstract=True)
    add("Invoice", "ApprovalStatusName AuthorUserName ExternalApproverName AccountCode", base="InvoiceBase")
    add("CreditNote", base="InvoiceBase")
    add("InvoiceLine", INVOICE_LINE, base="ObjectBase")
    add("StockItem", STOCK_ITEM, base="ObjectBase")
    add("WSDocument", "Header:WSDocumentHeader Content:WSDocumentContent")
    add("WSDocumentHeader", "MasterType:WSMasterTypeEnum! MasterID Filename DocumentID:int!?")
    add("WSDocumentContent", "Content:base64Binary Comments")
    add("CustomerStatement", "CustomerState:CustomerState TransactionList:ArrayOfTransactionState")
    add("CustomerState", CUSTOMER_STATE)
    add("TransactionState", TRANSACTION_STATE)
    add("WSCompanyInformation", COMPANY_INFORMATION)
    add("WSAddress", "Line1 Line2 City County PostZipCode CountryState")
    add("WSContactInformation", "LandlineNumber MobileNumber FaxNumber EmailAddress WebSite")
    add("WSAutoNumberingSettings", AUTO_NUMBERING)
    add("WSPrecisionSettings", "PricePrecisionDecimals:int! QuantityPrecisionDecimals:int!")
    add(
        "WSApprovalSettings",
        "IsPurchaseApprovalEnabled:boolean! IsPurchaseBatchPaymentApprovalEnabled:boolean! "
        "ApprovalType:WSApprovalType!",
    )

    array_of("string")
    array_of("int", nillable=False)
    array_of("ArrayOfString")
    for item in (
        "Customer",
        "Supplier",
        "Tax",
        "CreditTerm",
        "WSFinancialPeriodDTO",
        "AccountBalanceInformation",
        "BatchSalesInvoice",
        "BatchSalesInvoiceLine",
        "BatchPurchasesInvoiceLine",
        "GeneralJournalLine",
        "TransactionLine",
        "WSTransactionSummary",
        "WSTransactionDetail",
        "WSResultStatus",
        "Department",
        "WSAnalysisDimension",
        "WSAnalysisDimensionCode",
        "WSInterCompanyConnection",
        "Invoice",
        "InvoiceLine",
        "CreditNote",
        "StockItem",
        "CustomerStatement",
        "TransactionState",
    ):
        array_of(item)

    def op(name: str, params: str, result_type: str, out: str = "", versions: frozenset[str] = BOTH) -> None:
        schema.operations[name] = Operation(
            name,
            parse_fields(params),
            Field(f"{name}Result", result_type),
            parse_fields(out),
            versions=versions,
        )

    op("Login", "companyID partnerKey userKey", "string", versions=frozenset({V1_1}))
    # API 2.0: client credentials give an access and a refresh token; the entity goes in the header.
    only_2_0 = frozenset({V2_0})
    types["AiqSoapHeader"] = ComplexType(
        "AiqSoapHeader", parse_fields("Entity AccessToken"), versions=only_2_0, any_attribute=True
    )
    add("WSEntity", "EntityID EntityName BaseCurrency", versions=only_2_0)
    array_of("WSEntity", versions=only_2_0)
    for kind in ("TokenGet", "TokenRefresh"):
        add(f"{kind}Response", "AccessToken RefreshToken", versions=only_2_0)
        add(
            f"WSResult3Of{kind}Response",
            f"Result:{kind}Response Status ErrorCode ErrorMessage",
            versions=only_2_0,
        )
    op("TokenGet", "clientId clientSecret", "WSResult3OfTokenGetResponse", versions=only_2_0)
    op(
        "TokenRefresh",
        "clientId clientSecret refreshToken",
        "WSResult3OfTokenRefreshResponse",
        versions=only_2_0,
    )
    op("GetEntitiesByToken", "", result_of("ArrayOfWSEntity", versions=only_2_0), versions=only_2_0)
    op("GetCustomer", "token customerCode", result_of("Customer"))
    op("GetActiveCustomerList", "token", result_of("ArrayOfCustomer"))
    op("GetNewCustomerFromDefaults", "token", result_of("Customer"))
    op("UpdateCustomer", "token customer:Customer create:boolean!", result_of("boolean", required=True))
    op("GetTaxCodeList", "token", result_of("ArrayOfTax"))
    op("GetGLAccountList", "token", result_of("ArrayOfArrayOfString"))
    op("GetNewBatchSalesInvoice", "token customerCode", result_of("BatchSalesInvoice"))
    op(
        "CreateBatchSalesInvoiceGetBackTransactionID",
        "token inv:BatchSalesInvoice",
        result_of("string"),
        out="transactionID:int!",
    )
    op(
        "GetTransactionsByExternalReference",
        "token query:WSGetTransactionsByExternalReferenceQuery",
        result_of("ArrayOfWSTransactionSummary"),
    )
    op("GetTransaction", "token transactionID:int!", result_of("Transaction"))
    op("GetTransactionsBy", "token query:WSGetTransactionsByQuery", result_of("ArrayOfWSTransactionSummary"))
    op("GetSupplier", "token supplierCode", result_of("Supplier"))
    op("GetActiveSupplierList", "token", result_of("ArrayOfSupplier"))
    op("GetNewSupplierFromDefaults", "token", result_of("Supplier"))
    op("UpdateSupplier", "token supplier:Supplier create:boolean!", result_of("boolean", required=True))
    op("GetCreditTermList", "token", result_of("ArrayOfCreditTerm"))
    op("GetCurrencyList", "token", result_of("ArrayOfString"))
    op("GetPeriodList", "token pointInTime:dateTime!?", result_of("ArrayOfWSFinancialPeriodDTO"))
    op(
        "GetAccountBalanceInformation",
        "token edt:dateTime! accountIDs:ArrayOfInt",
        result_of("ArrayOfAccountBalanceInformation"),
    )
    op(
        "GetCustomerBalanceInformation",
        "token edt:dateTime! customerCodes:ArrayOfString",
        result_of("ArrayOfAccountBalanceInformation"),
    )
    op("CreateBatchSalesInvoice", "token inv:BatchSalesInvoice", result_of("string"))
    op(
        "CreateBatchSalesInvoiceBulkGetBackTransactionIDs",
        "token invoices:ArrayOfBatchSalesInvoice",
        result_of("ArrayOfWSResultStatus"),
        out="transactionIDs:ArrayOfInt",
    )
    op("GetNewBatchPurchasesInvoice", "token supplierCode", result_of("BatchPurchasesInvoice"))
    op(
        "CreateBatchPurchasesInvoiceGetBackTransactionID",
        "token inv:BatchPurchasesInvoice",
        result_of("string"),
        out="transactionID:int!",
    )
    op("CreateGeneralJournal", "token journal:GeneralJournal", "WSResultStatus")
    op(
        "CreateGeneralJournalGetBackTransactionID",
        "token journal:GeneralJournal",
        "WSResultStatus",
        out="transactionID:int!",
    )
    op("GetAnalysisDimensionSetup", "token", result_of("ArrayOfWSAnalysisDimension"))
    op("GetDepartmentList", "token", result_of("ArrayOfDepartment"))
    op("GetDepartmentById", "token departmentId", result_of("Department"))
    op(
        "GetDepartmentsByAnalysisCode",
        "token query:WSGetDepartmentByAnalysisCodeQuery",
        result_of("ArrayOfDepartment"),
    )
    op(
        "CreateDepartment",
        "token id description " + " ".join(f"analysisCode{n}" for n in range(1, 7)),
        "WSResultStatus",
    )
    op("UpdateDepartment", "token departmentID newDescription active:boolean!", "WSResultStatus")
    op("GetInterCompanyConnectionList", "token", result_of("ArrayOfWSInterCompanyConnection"))
    # Item invoices and credit notes: draft (save) -> post.
    op("GetNewSalesInvoice", "token customerCode", result_of("Invoice"))
    op("GetNewSalesInvoices", "token customerCodes:ArrayOfString", result_of("ArrayOfInvoice"))
    op("GetNewPurchasesInvoice", "token supplierCode", result_of("Invoice"))
    op(
        "SaveInvoiceGetBackInvoiceID",
        "token invoice:Invoice create:boolean!",
        "WSResultStatus",
        out="invoiceID:int!",
    )
    op(
        "CreateInvoicesGetBackInvoiceIDs",
        "token invoices:ArrayOfInvoice",
        result_of("ArrayOfWSResultStatus"),
        out="invoiceIDs:ArrayOfInt",
    )
    op("PostInvoiceGetBackTransactionID", "token invoiceID:int!", "WSResultStatus", out="transactionID:int!")
    op(
        "PostInvoicesGetBackTransactionIDs",
        "token invoiceIDs:ArrayOfInt",
        "ArrayOfWSResultStatus",
        out="transactionIDs:ArrayOfInt",
    )
    op("CancelInvoice", "token invoiceID:int! reason", "WSResultStatus")
    op("GetInvoice", "token invoiceID:int!", result_of("Invoice"))
    op("GetInvoicesByExternalReference", "token externalReference", result_of("ArrayOfInvoice"))
    op("GetNewSalesCreditNote", "token customerCode", result_of("CreditNote"))
    op(
        "SaveCreditNoteGetBackCreditNoteID",
        "token creditNote:CreditNote create:boolean!",
        "WSResultStatus",
        out="creditNoteID:int!",
    )
    op(
        "PostCreditNoteGetBackTransactionID",
        "token creditNoteID:int!",
        "WSResultStatus",
        out="transactionID:int!",
    )
    op("GetCreditNotesByExternalReference", "token externalReference", result_of("ArrayOfCreditNote"))
    # Attachments and PDFs.
    # Receipts and allocations: a receipt posts at once (bank debit, debtors control credit);
    # an allocation settles a receipt (or credit note) against an invoice, amount by amount.
    add(
        "SalesReceipt",
        "CustomerCode CheckReference PaymentAmount:decimal! BankAccountCode LodgmentNumber "
        "PaymentDate:dateTime! ExchangeRate:decimal! BankExchangeRate:decimal! Description DepartmentID",
        base="ObjectBase",
    )
    add(
        "WSAllocationEntryDTO",
        "AllocatedToTransactionID:int! AllocatedToTransactionType AllocatedToInternalNumber "
        "AllocatedToExternalReference AllocationAmount:decimal! AllocationDate:dateTime! AllocationId:int! "
        "AllocationUserId AllocationCreationDate:dateTime! AllocatedToTransactionDate:dateTime! "
        "AllocationNumber:int!",
    )
    add(
        "WSAllocationTransactionDTO",
        "TransactionID:int! TransactionType InternalNumber ExternalReference "
        "AllocationEntries:ArrayOfWSAllocationEntryDTO AccountID:int!? AccountCode",
    )
    array_of("WSAllocationEntryDTO")
    array_of("WSAllocationTransactionDTO")
    op("SaveSalesReceipt", "token salesReceipt:SalesReceipt", result_of("boolean", required=True))
    op(
        "SaveSalesReceiptGetBackTransactionID",
        "token salesReceipt:SalesReceipt",
        "WSResultStatus",
        out="transactionID:int!",
    )
    allocation = (
        "token transactionID_1:int! transactionID_2:int! allocationReference allocationAmount:decimal! "
    )
    op("AllocateTransactions", allocation + "allocationDate:dateTime!", "WSResultStatus")
    op(
        "AllocateTransactionsWithDiscount",
        "token transactionID_1:int! transactionID_2:int! allocationReference allocationAmount:decimal! "
        "allocationDate:dateTime! discountAmount:decimal!",
        "WSResultStatus",
    )
    op("UnallocateTransactions", "token transactionIDs:ArrayOfInt", result_of("ArrayOfWSResultStatus"))
    add(
        "WSAllocationSummaryDTO",
        "AccountID:int! AccountCode Ledger:LedgerType! Allocations:ArrayOfWSAllocationTransactionDTO",
    )
    array_of("WSAllocationSummaryDTO")
    between = "token ledger since:dateTime! until:dateTime! fromAccountCode toAccountCode"
    op("GetAllocationsBetween", between, result_of("ArrayOfWSAllocationSummaryDTO"))
    op(
        "GetAllocationsBetweenPaged",
        between + " skip:int! limit:int!",
        result_of("ArrayOfWSAllocationSummaryDTO"),
    )
    add(
        "WSPostPayAndAllocateSalesInvoiceQuery",
        "PerformExternalReferenceDuplicateCheckOnInvoice:boolean! "
        "PerformExternalReferenceDuplicateCheckOnReceipt:boolean! BatchInvoice:BatchSalesInvoice "
        "Receipt:SalesReceipt PerformAllocation:boolean! AllocationDate:dateTime!? AllocationAmount:decimal! "
        "AllocationReference ClientUniqueReference EnforceCreditLimit:boolean!",
    )
    add(
        "WSPostPayAndAllocateSalesInvoiceResult",
        "InvoiceTransactionID:int!? ReceiptTransactionID:int!? ClientUniqueReference",
    )
    array_of("WSPostPayAndAllocateSalesInvoiceQuery")
    single = result_of("WSPostPayAndAllocateSalesInvoiceResult")
    op("PostPayAndAllocateSalesInvoice", "token query:WSPostPayAndAllocateSalesInvoiceQuery", single)
    op(
        "PostPayAndAllocateSalesInvoices",
        "token queries:ArrayOfWSPostPayAndAllocateSalesInvoiceQuery",
        result_of(array_of(single)),
    )
    op("GetSalesReceiptPDFByTransactionID", "token transactionID:int!", "WSResult2OfArrayOfByte")
    op("GetAllocationsByTransactionId", "token transactionId", result_of("ArrayOfWSAllocationTransactionDTO"))
    op("AttachDocument", "token document:WSDocument", "WSResultStatus")
    op(
        "GetInvoicePDFByTransactionID",
        "token transactionID:int!",
        result_of("base64Binary", name="WSResult2OfArrayOfByte"),
    )
    # Statements, stock items, company.
    op(
        "GetCustomersStatement",
        "token upTo:dateTime! customerCodes:ArrayOfString showZeros:boolean!",
        result_of("ArrayOfCustomerStatement"),
    )
    op("GetStockItem", "token stockItemID", result_of("StockItem"))
    op("GetActiveStockItemList", "token", result_of("ArrayOfStockItem"))
    op("GetCompanyInformation", "token", result_of("WSCompanyInformation"))
    return schema


SCHEMA = _build()
