"""The AccountsIQ gateway: a typed client over zeep. The only place a SOAP call happens.

- Endpoint bound per region or URL (the published WSDL hard-codes eu1).
- Two ways in, one interface (`Authenticator`): Integration 1.1 ``Login`` per entity, or 2.0
  ``TokenGet``/``TokenRefresh`` for an integration application with the entity chosen per call in
  the ``AiqSoapHeader``. A call answered ``HasExpired=true`` was refused unprocessed, so it is
  repeated (reads and writes) after a fresh login or token refresh.
- 2.0's rate limiter (``..._TOO_MANY_API_CALLS``, or HTTP 429) also refuses unprocessed: such
  calls, writes included, are retried with back-off.
- ``WSResult...`` envelopes unwrapped into models, or raised as typed errors (errors.py).
- Transient failures of *reads* retried with exponential back-off (tenacity); *writes* never
  retried blind: a write without an answer raises `AiqUnknownOutcome` for the caller to read back.
- One pooled HTTP session, a timeout on every call, the WSDL parsed once per process.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar

import requests
import urllib3
import zeep
import zeep.exceptions
import zeep.helpers
from pydantic import BaseModel, ConfigDict, SecretStr
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from zeep.cache import SqliteCache
from zeep.wsdl import Document

from aiq_flows.domain.values import xml_problem
from aiq_flows.gateway.errors import (
    NOT_FOUND_CODES,
    AiqAuthenticationError,
    AiqBusinessError,
    AiqNotFound,
    AiqRateLimited,
    AiqRequestInvalid,
    AiqTransientError,
    AiqUnknownOutcome,
)
from aiq_flows.gateway.models import (
    AccountBalance,
    AllocationEntry,
    AnalysisDimension,
    BatchPurchasesInvoice,
    BatchSalesInvoice,
    CompanyInformation,
    CreditNote,
    CreditTerm,
    Customer,
    CustomerStatement,
    Department,
    GeneralJournal,
    GLAccount,
    InterCompanyConnection,
    Invoice,
    ItemDocument,
    Period,
    RowResult,
    SalesReceipt,
    StatementLine,
    StockItem,
    Supplier,
    TaxCode,
    Transaction,
    TransactionSummary,
)
from aiq_flows.gateway.schema import NAMESPACE, V1_1, V2_0
from aiq_flows.gateway.wsdl import NAMES, packaged_wsdl_path
from aiq_flows.secrets import register_secret

log = logging.getLogger(__name__)
D = TypeVar("D", bound=ItemDocument)
# zeep logs whole envelopes (keys and tokens included) at DEBUG: never let them through.
logging.getLogger("zeep.transports").setLevel(logging.INFO)

OK_STATUSES = frozenset({"Success", "Created"})
RATE_LIMIT_CODES = frozenset(
    {"OAUTH_INTEGRATION_APPS_TOO_MANY_API_CALLS", "OAUTH_INTEGRATION_APPS_RATE_LIMIT_REACHED"}
)
# A token can expire between Login and the call that uses it, and task runs sharing one token
# renew it for each other; more than a few refusals in a row for one call is a fault.
MAX_RELOGINS = 5
# HTTP statuses that say the request was not processed, so even a write may be repeated.
NOT_PROCESSED_HTTP = frozenset({429, 503})
ZEEP_SETTINGS = zeep.Settings(strict=False, xml_huge_tree=False)


def region_endpoint(region: str, version: str = V1_1) -> str:
    return f"https://{region}.accountsiq.com{NAMES[version][2]}"


class AiqCredentials(BaseModel):
    """Integration 1.1 credentials for one entity."""

    model_config = ConfigDict(frozen=True)
    company_id: str
    partner_key: SecretStr
    user_key: SecretStr


class IntegrationCredentials(BaseModel):
    """Integration 2.0 credentials: one integration application, the entities it was granted."""

    model_config = ConfigDict(frozen=True)
    client_id: str
    client_secret: SecretStr


@dataclass(frozen=True)
class Authorisation:
    """What a call carries: a 1.1 body ``token``, or a 2.0 header ``AccessToken``."""

    token: str | None = None
    access_token: str | None = None


class Authenticator(Protocol):
    version: str

    def authorise(self, service: Any, *, refused: Authorisation | None = None) -> Authorisation:
        """Current credentials; new ones when ``refused`` (the ones a call was refused with) are
        still the current ones, so gateways sharing an authenticator renew once, not each."""
        ...


class LoginAuthenticator:
    """API 1.1: ``Login(companyID, partnerKey, userKey)`` gives a token; keep it until refused."""

    version = V1_1

    def __init__(self, credentials: AiqCredentials) -> None:
        self._credentials = credentials
        self._token: str | None = None
        self._lock = threading.Lock()
        register_secret(credentials.partner_key.get_secret_value())
        register_secret(credentials.user_key.get_secret_value())

    def authorise(self, service: Any, *, refused: Authorisation | None = None) -> Authorisation:
        with self._lock:
            if self._token is None or (refused is not None and refused.token == self._token):
                self._token = self._login(service)
            return Authorisation(token=self._token)

    def _login(self, service: Any) -> str:
        creds = self._credentials
        result = service.Login(
            companyID=creds.company_id,
            partnerKey=creds.partner_key.get_secret_value(),
            userKey=creds.user_key.get_secret_value(),
        )
        if not result:
            raise AiqAuthenticationError(
                "Login",
                f"AccountsIQ gave no token for company {creds.company_id!r}: check the partner "
                "and user keys, the region and staging/production",
            )
        register_secret(result)
        return str(result)


class TokenAuthenticator:
    """API 2.0: ``TokenGet(clientId, clientSecret)`` gives an access and a refresh token; when the
    access token is refused, ``TokenRefresh`` (rotating the refresh token), or ``TokenGet`` again
    if the refresh token is no longer accepted. One instance may serve every entity's gateway."""

    version = V2_0

    def __init__(self, credentials: IntegrationCredentials) -> None:
        self._credentials = credentials
        self._access: str | None = None
        self._refresh: str | None = None
        self._lock = threading.Lock()
        register_secret(credentials.client_secret.get_secret_value())

    def authorise(self, service: Any, *, refused: Authorisation | None = None) -> Authorisation:
        with self._lock:
            if self._access is None:
                self._store(self._token_call(service, "TokenGet"))
            elif refused is not None and refused.access_token == self._access:
                try:
                    self._store(self._token_call(service, "TokenRefresh", refreshToken=self._refresh))
                except AiqAuthenticationError:
                    log.info("AIQ refresh token refused; requesting a new token")
                    self._store(self._token_call(service, "TokenGet"))
            return Authorisation(access_token=self._access)

    def _token_call(self, service: Any, operation: str, **extra: Any) -> dict[str, Any]:
        creds = self._credentials
        with translated_errors(operation, write=False):
            answer = _plain(
                getattr(service, operation)(
                    clientId=creds.client_id, clientSecret=creds.client_secret.get_secret_value(), **extra
                )
            )
        tokens = (answer or {}).get("Result") or {}
        if (answer or {}).get("Status") != "Success" or not tokens.get("AccessToken"):
            raise AiqAuthenticationError(
                operation,
                f"{(answer or {}).get('ErrorCode')}: AccountsIQ gave no token to integration "
                f"{creds.client_id!r}; check the client id and secret, and that the application is "
                "not revoked",
            )
        return dict(tokens)

    def _store(self, tokens: dict[str, Any]) -> None:
        register_secret(tokens["AccessToken"])
        register_secret(tokens["RefreshToken"])
        self._access, self._refresh = tokens["AccessToken"], tokens["RefreshToken"]


class _CheckedTransport(zeep.Transport):
    """zeep's transport, but an HTTP error whose body is not XML (a proxy's 503 page, a gateway
    timeout) is raised as a TransportError with its status, not fed to the lenient XML parser
    (which would return None and crash)."""

    def post_xml(self, address: str, envelope: Any, headers: dict[str, str]) -> requests.Response:
        response: requests.Response = super().post_xml(address, envelope, headers)
        is_xml = "xml" in response.headers.get("Content-Type", "")
        if response.status_code != 200 and not is_xml:
            raise zeep.exceptions.TransportError(
                status_code=response.status_code, content=response.content[:200]
            )
        return response


@functools.cache
def _wsdl_document(location: str) -> Document:
    """Parse a WSDL once per process. A remote one (a live ``?wsdl``) goes through zeep's
    on-disk cache, so a worker does not download AccountsIQ's 800 KB document on every start."""
    cache = SqliteCache(timeout=24 * 3600) if location.startswith(("http://", "https://")) else None
    transport = zeep.Transport(cache=cache, timeout=60)
    # zeep annotates the transport as a class, but takes (and needs) an instance
    return Document(location, transport, settings=ZEEP_SETTINGS)  # type: ignore[arg-type]


def _plain(value: Any) -> Any:
    return zeep.helpers.serialize_object(value, target_cls=dict)


def _items(wrapper: Any, item: str) -> list[Any]:
    """Unwrap an ASP.NET array (``{'Customer': [...]}``, or None when empty)."""
    if not wrapper:
        return []
    return list(wrapper.get(item) or [])


class AiqGateway:
    """Typed AccountsIQ operations for one entity (the 1.1 login's, or ``entity`` on 2.0)."""

    def __init__(
        self,
        endpoint_url: str,
        authenticator: Authenticator,
        *,
        entity: str | None = None,
        timeout: float = 60.0,
        wsdl: str | Path | None = None,
        read_attempts: int = 4,
        backoff_seconds: float = 0.5,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.entity = entity
        self._auth = authenticator
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        transport = _CheckedTransport(session=self._session, timeout=timeout, operation_timeout=timeout)
        version = authenticator.version
        client = zeep.Client(
            _wsdl_document(str(wsdl or packaged_wsdl_path(version))),
            transport=transport,
            settings=ZEEP_SETTINGS,
        )
        self._service = client.create_service(f"{{{NAMESPACE}}}{NAMES[version][1]}", endpoint_url)
        self._read_attempts = read_attempts
        self._backoff = backoff_seconds

    @classmethod
    def login(cls, endpoint_url: str, credentials: AiqCredentials, **kwargs: Any) -> AiqGateway:
        """API 1.1, one entity per login."""
        return cls(endpoint_url, LoginAuthenticator(credentials), entity=credentials.company_id, **kwargs)

    @classmethod
    def for_entity(
        cls, endpoint_url: str, authenticator: TokenAuthenticator, entity: str, **kwargs: Any
    ) -> AiqGateway:
        """API 2.0: share one `TokenAuthenticator` between the gateways of an integration's entities."""
        return cls(endpoint_url, authenticator, entity=entity, **kwargs)

    def close(self) -> None:
        self._session.close()

    # --- transport and envelope handling ---------------------------------------------------------

    def _send(self, operation: str, write: bool, params: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            with translated_errors(operation, write):
                return getattr(self._service, operation)(**params)
        finally:
            log.debug("AIQ %s took %.3fs", operation, time.perf_counter() - started)

    def _authorise(self, refused: Authorisation | None) -> Authorisation:
        with translated_errors("Login" if self._auth.version == V1_1 else "TokenGet", write=False):
            return self._auth.authorise(self._service, refused=refused)

    def _credentials(self, auth: Authorisation, operation: str) -> dict[str, Any]:
        if auth.access_token is None:
            return {"token": auth.token}
        entity = None if operation == "GetEntitiesByToken" else self.entity
        return {"_soapheaders": {"AiqSoapHeader": {"Entity": entity, "AccessToken": auth.access_token}}}

    def _call(
        self, operation: str, *, write: bool, bare_rows: bool = False, **params: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Call an operation that takes a token; return (result envelope, out-parameters).
        ``bare_rows``: the result is an array of row statuses with no envelope around it."""

        problem = unsendable(params)
        if problem:
            raise AiqRequestInvalid(operation, problem)

        def attempt() -> tuple[dict[str, Any], dict[str, Any]]:
            refused: Authorisation | None = None
            for _ in range(1 + MAX_RELOGINS):
                auth = self._authorise(refused)
                response = _plain(
                    self._send(operation, write, {**self._credentials(auth, operation), **params})
                )
                if isinstance(response, dict) and f"{operation}Result" in response:
                    envelope = response.pop(f"{operation}Result") or {}
                    out = response
                else:
                    envelope, out = response or {}, {}
                expired = (
                    any(row.get("HasExpired") for row in _items(envelope, "WSResultStatus"))
                    if bare_rows
                    else envelope.get("HasExpired")
                )
                if not expired:
                    _raise_if_rate_limited(operation, envelope, bare_rows)
                    return envelope, out
                refused = auth
                log.info("AIQ token expired during %s; renewing it", operation)
            raise AiqAuthenticationError(
                operation, f"token refused {MAX_RELOGINS} times in a row right after a fresh one"
            )

        retrying = Retrying(
            stop=stop_after_attempt(self._read_attempts),
            wait=wait_exponential(multiplier=self._backoff, max=8),
            # A write is repeated only when AIQ said it did not process it.
            retry=retry_if_exception_type(AiqRateLimited if write else AiqTransientError),
            reraise=True,
        )
        envelope, out = retrying(attempt)
        if bare_rows:
            return {"Result": envelope}, out
        status = envelope.get("Status")
        if status not in OK_STATUSES:
            code = envelope.get("ErrorCode") or "UNKNOWN"
            error_type = AiqNotFound if code in NOT_FOUND_CODES else AiqBusinessError
            raise error_type(operation, status or "Unknown", code, envelope.get("ErrorMessage"))
        return envelope, out

    def _result(self, operation: str, **params: Any) -> Any:
        """The ``Result`` of a read."""
        envelope, _ = self._call(operation, write=False, **params)
        return envelope.get("Result")

    # --- API 2.0 -----------------------------------------------------------------------------------

    def get_entities(self) -> list[dict[str, str]]:
        """The entities the integration application may reach (API 2.0 only)."""
        result = self._result("GetEntitiesByToken")
        return [dict(e) for e in _items(result, "WSEntity")]

    # --- customers -------------------------------------------------------------------------------

    def get_customer(self, code: str) -> Customer | None:
        try:
            return Customer.model_validate(self._result("GetCustomer", customerCode=code))
        except AiqNotFound:
            return None

    def get_active_customers(self) -> list[Customer]:
        result = self._result("GetActiveCustomerList")
        return [Customer.model_validate(c) for c in _items(result, "Customer")]

    def new_customer_from_defaults(self) -> Customer:
        return Customer.model_validate(self._result("GetNewCustomerFromDefaults"))

    def update_customer(self, customer: Customer, *, create: bool) -> None:
        self._call("UpdateCustomer", write=True, customer=customer.to_soap(), create=create)

    # --- suppliers ---------------------------------------------------------------------------------

    def get_supplier(self, code: str) -> Supplier | None:
        try:
            return Supplier.model_validate(self._result("GetSupplier", supplierCode=code))
        except AiqNotFound:
            return None

    def get_active_suppliers(self) -> list[Supplier]:
        result = self._result("GetActiveSupplierList")
        return [Supplier.model_validate(s) for s in _items(result, "Supplier")]

    def new_supplier_from_defaults(self) -> Supplier:
        return Supplier.model_validate(self._result("GetNewSupplierFromDefaults"))

    def update_supplier(self, supplier: Supplier, *, create: bool) -> None:
        self._call("UpdateSupplier", write=True, supplier=supplier.to_soap(), create=create)

    # --- balances ----------------------------------------------------------------------------------

    def account_balances(self, as_of: datetime, account_ids: Iterable[int]) -> list[AccountBalance]:
        result = self._result(
            "GetAccountBalanceInformation", edt=as_of, accountIDs={"int": list(account_ids)}
        )
        return [AccountBalance.model_validate(row) for row in _items(result, "AccountBalanceInformation")]

    def customer_balances(self, as_of: datetime, customer_codes: Iterable[str]) -> list[AccountBalance]:
        result = self._result(
            "GetCustomerBalanceInformation", edt=as_of, customerCodes={"string": list(customer_codes)}
        )
        return [AccountBalance.model_validate(row) for row in _items(result, "AccountBalanceInformation")]

    # --- reference data --------------------------------------------------------------------------

    def get_tax_codes(self) -> list[TaxCode]:
        return [TaxCode.model_validate(t) for t in _items(self._result("GetTaxCodeList"), "Tax")]

    def get_gl_accounts(self) -> list[GLAccount]:
        rows = _items(self._result("GetGLAccountList"), "ArrayOfString")
        return [GLAccount(code=pair["string"][0], name=pair["string"][1]) for pair in rows]

    def get_credit_terms(self) -> list[CreditTerm]:
        return [CreditTerm.model_validate(t) for t in _items(self._result("GetCreditTermList"), "CreditTerm")]

    def get_currencies(self) -> list[str]:
        return [str(code) for code in _items(self._result("GetCurrencyList"), "string")]

    def get_periods(self, point_in_time: datetime | None = None) -> list[Period]:
        result = self._result("GetPeriodList", pointInTime=point_in_time)
        return [Period.model_validate(p) for p in _items(result, "WSFinancialPeriodDTO")]

    # --- batch sales invoices --------------------------------------------------------------------

    def new_batch_sales_invoice(self, customer_code: str) -> BatchSalesInvoice:
        result = self._result("GetNewBatchSalesInvoice", customerCode=customer_code)
        result["Lines"] = _items(result.get("Lines"), "BatchSalesInvoiceLine")
        return BatchSalesInvoice.model_validate(result)

    def create_batch_sales_invoice(self, invoice: BatchSalesInvoice) -> int:
        """Post a batch sales invoice; returns its AIQ transaction ID."""
        _, out = self._call("CreateBatchSalesInvoiceGetBackTransactionID", write=True, inv=invoice.to_soap())
        return int(out["transactionID"])

    def create_batch_sales_invoices(self, invoices: Sequence[BatchSalesInvoice]) -> list[RowResult]:
        """Post many batch invoices in one call; one result per invoice, in order. A refused row
        does not stop the others. If the answer is lost, every row's outcome is unknown."""
        operation = "CreateBatchSalesInvoiceBulkGetBackTransactionIDs"

        def send(payloads: list[dict[str, Any]]) -> list[RowResult]:
            envelope, out = self._call(operation, write=True, invoices={"BatchSalesInvoice": payloads})
            return _rows(operation, envelope, out, "transactionIDs", len(payloads))

        return _sendable_rows([inv.to_soap() for inv in invoices], send)

    # --- batch purchase invoices -------------------------------------------------------------------

    def new_batch_purchases_invoice(self, supplier_code: str) -> BatchPurchasesInvoice:
        result = self._result("GetNewBatchPurchasesInvoice", supplierCode=supplier_code)
        result["Lines"] = _items(result.get("Lines"), "BatchPurchasesInvoiceLine")
        return BatchPurchasesInvoice.model_validate(result)

    def create_batch_purchases_invoice(self, invoice: BatchPurchasesInvoice) -> int:
        """Post a batch purchase invoice; returns its AIQ transaction ID."""
        _, out = self._call(
            "CreateBatchPurchasesInvoiceGetBackTransactionID", write=True, inv=invoice.to_soap()
        )
        return int(out["transactionID"])

    # --- item invoices and credit notes: template -> draft -> post ---------------------------------

    def new_sales_invoice(self, customer_code: str) -> Invoice:
        return _document(Invoice, self._result("GetNewSalesInvoice", customerCode=customer_code))

    def new_sales_invoices(self, customer_codes: Sequence[str]) -> list[Invoice | None]:
        """One template per code, in order; None where the customer does not exist."""
        result = self._result("GetNewSalesInvoices", customerCodes={"string": list(customer_codes)})
        templates = _items(result, "Invoice")
        if len(templates) != len(customer_codes):
            raise AiqBusinessError(
                "GetNewSalesInvoices",
                "Failure",
                "UNKNOWN",
                f"{len(templates)} templates for {len(customer_codes)}",
            )
        return [_document(Invoice, t) if t and t.get("AccountID") else None for t in templates]

    def new_purchases_invoice(self, supplier_code: str) -> Invoice:
        return _document(Invoice, self._result("GetNewPurchasesInvoice", supplierCode=supplier_code))

    def save_invoice(self, invoice: Invoice, *, create: bool = True) -> int:
        """Save a draft (create, or update one read back with its RowVersionNumber); its ID."""
        _, out = self._call(
            "SaveInvoiceGetBackInvoiceID", write=True, invoice=invoice.to_soap(), create=create
        )
        return int(out["invoiceID"])

    def create_invoices(self, invoices: Sequence[Invoice]) -> list[RowResult]:
        """Save many drafts in one call; one row per invoice, in order, with its draft ID."""
        operation = "CreateInvoicesGetBackInvoiceIDs"

        def send(payloads: list[dict[str, Any]]) -> list[RowResult]:
            envelope, out = self._call(operation, write=True, invoices={"Invoice": payloads})
            return _rows(operation, envelope, out, "invoiceIDs", len(payloads), into="document_id")

        return _sendable_rows([inv.to_soap() for inv in invoices], send)

    def post_invoice(self, invoice_id: int) -> int:
        """Post a draft invoice (irreversible); returns its AIQ transaction ID."""
        _, out = self._call("PostInvoiceGetBackTransactionID", write=True, invoiceID=invoice_id)
        return int(out["transactionID"])

    def post_invoices(self, invoice_ids: Sequence[int]) -> list[RowResult]:
        operation = "PostInvoicesGetBackTransactionIDs"
        envelope, out = self._call(
            operation, write=True, bare_rows=True, invoiceIDs={"int": list(invoice_ids)}
        )
        return _rows(operation, envelope, out, "transactionIDs", len(invoice_ids))

    def cancel_invoice(self, invoice_id: int, reason: str) -> None:
        """Cancel a draft (posted documents cannot be cancelled: raise a credit note)."""
        self._call("CancelInvoice", write=True, invoiceID=invoice_id, reason=reason)

    def get_invoice(self, invoice_id: int) -> Invoice | None:
        try:
            return _document(Invoice, self._result("GetInvoice", invoiceID=invoice_id))
        except AiqNotFound:
            return None

    def invoices_by_external_reference(self, external_reference: str) -> list[Invoice]:
        """Every item invoice (draft, posted or cancelled) with this reference; not batch ones."""
        result = self._result("GetInvoicesByExternalReference", externalReference=external_reference)
        return [_document(Invoice, row) for row in _items(result, "Invoice")]

    def new_sales_credit_note(self, customer_code: str) -> CreditNote:
        return _document(CreditNote, self._result("GetNewSalesCreditNote", customerCode=customer_code))

    def save_credit_note(self, note: CreditNote, *, create: bool = True) -> int:
        _, out = self._call(
            "SaveCreditNoteGetBackCreditNoteID", write=True, creditNote=note.to_soap(), create=create
        )
        return int(out["creditNoteID"])

    def post_credit_note(self, credit_note_id: int) -> int:
        _, out = self._call("PostCreditNoteGetBackTransactionID", write=True, creditNoteID=credit_note_id)
        return int(out["transactionID"])

    def credit_notes_by_external_reference(self, external_reference: str) -> list[CreditNote]:
        result = self._result("GetCreditNotesByExternalReference", externalReference=external_reference)
        return [_document(CreditNote, row) for row in _items(result, "CreditNote")]

    # --- attachments and PDFs ----------------------------------------------------------------------

    def attach_document(
        self, master_type: str, master_id: int, filename: str, content: bytes, comments: str | None = None
    ) -> None:
        """Attach a file to a transaction (``Transaction`` + transaction ID), a draft, or an account.
        File names are unique per master: attaching the same name twice is refused."""
        document = {
            "Header": {"MasterType": master_type, "MasterID": str(master_id), "Filename": filename},
            "Content": {"Content": content, "Comments": comments},
        }
        self._call("AttachDocument", write=True, document=document)

    def invoice_pdf(self, transaction_id: int) -> bytes:
        return bytes(self._result("GetInvoicePDFByTransactionID", transactionID=transaction_id) or b"")

    # --- receipts and allocations ------------------------------------------------------------------

    def save_sales_receipt(self, receipt: SalesReceipt) -> int:
        """Post a sales receipt; returns its AIQ transaction ID."""
        _, out = self._call(
            "SaveSalesReceiptGetBackTransactionID", write=True, salesReceipt=receipt.to_soap()
        )
        return int(out["transactionID"])

    def allocate(
        self, debit_id: int, credit_id: int, amount: Decimal, on: datetime, reference: str | None = None
    ) -> None:
        """Settle ``amount`` of an invoice (``debit_id``) with a receipt or credit note (``credit_id``)."""
        self._call(
            "AllocateTransactions",
            write=True,
            transactionID_1=debit_id,
            transactionID_2=credit_id,
            allocationReference=reference,
            allocationAmount=amount,
            allocationDate=on,
        )

    def allocate_with_discount(
        self,
        debit_id: int,
        credit_id: int,
        amount: Decimal,
        discount: Decimal,
        on: datetime,
        reference: str | None = None,
    ) -> None:
        """Settle ``amount`` with the credit and write ``discount`` off the invoice (a settlement
        discount AIQ posts to its discounts-allowed account)."""
        self._call(
            "AllocateTransactionsWithDiscount",
            write=True,
            transactionID_1=debit_id,
            transactionID_2=credit_id,
            allocationReference=reference,
            allocationAmount=amount,
            allocationDate=on,
            discountAmount=discount,
        )

    def pay_and_allocate(
        self, invoice: BatchSalesInvoice, receipt: SalesReceipt, amount: Decimal, reference: str | None = None
    ) -> tuple[int, int]:
        """Post a batch invoice and its receipt and allocate ``amount`` in one call, AIQ refusing
        either if its reference is already posted; returns (invoice, receipt) transaction IDs."""
        envelope, _ = self._call(
            "PostPayAndAllocateSalesInvoice",
            write=True,
            query={
                "PerformExternalReferenceDuplicateCheckOnInvoice": True,
                "PerformExternalReferenceDuplicateCheckOnReceipt": True,
                "BatchInvoice": invoice.to_soap(),
                "Receipt": receipt.to_soap(),
                "PerformAllocation": True,
                "AllocationDate": receipt.PaymentDate,
                "AllocationAmount": amount,
                "AllocationReference": reference,
                "ClientUniqueReference": reference,
                "EnforceCreditLimit": False,
            },
        )
        result = envelope.get("Result") or {}
        return int(result["InvoiceTransactionID"]), int(result["ReceiptTransactionID"])

    def sales_receipt_pdf(self, transaction_id: int) -> bytes:
        return bytes(self._result("GetSalesReceiptPDFByTransactionID", transactionID=transaction_id) or b"")

    def unallocate(self, transaction_ids: Sequence[int]) -> list[RowResult]:
        """Undo every allocation of each transaction; one result per transaction, in order."""
        envelope, _ = self._call(
            "UnallocateTransactions", write=True, transactionIDs={"int": list(transaction_ids)}
        )
        return _rows("UnallocateTransactions", envelope, {}, "none", len(transaction_ids))

    def allocations_of(self, transaction_id: int) -> list[AllocationEntry]:
        """The allocations a transaction takes part in (read before allocating, and after a lost answer)."""
        result = self._result("GetAllocationsByTransactionId", transactionId=str(transaction_id))
        return [
            AllocationEntry(
                allocation_number=entry["AllocationNumber"],
                other_transaction_id=entry["AllocatedToTransactionID"],
                other_type=entry.get("AllocatedToTransactionType"),
                other_reference=entry.get("AllocatedToExternalReference"),
                amount=entry["AllocationAmount"],
                allocated_on=entry["AllocationDate"],
            )
            for row in _items(result, "WSAllocationTransactionDTO")
            for entry in _items(row.get("AllocationEntries"), "WSAllocationEntryDTO")
        ]

    # --- statements, stock items, company -----------------------------------------------------------

    def customer_statements(
        self, up_to: datetime, customer_codes: Iterable[str], *, show_zeros: bool = True
    ) -> list[CustomerStatement]:
        result = self._result(
            "GetCustomersStatement",
            upTo=up_to,
            customerCodes={"string": list(customer_codes)},
            showZeros=show_zeros,
        )
        return [_statement(row) for row in _items(result, "CustomerStatement")]

    def get_stock_item(self, stock_item_id: str) -> StockItem | None:
        try:
            return StockItem.model_validate(self._result("GetStockItem", stockItemID=stock_item_id))
        except AiqNotFound:
            return None

    def get_active_stock_items(self) -> list[StockItem]:
        return [
            StockItem.model_validate(i) for i in _items(self._result("GetActiveStockItemList"), "StockItem")
        ]

    def get_company_information(self) -> CompanyInformation:
        return CompanyInformation.model_validate(self._result("GetCompanyInformation"))

    # --- general journals --------------------------------------------------------------------------

    def create_general_journal(self, journal: GeneralJournal) -> int:
        """Create and post a general journal; returns its AIQ transaction ID."""
        _, out = self._call("CreateGeneralJournalGetBackTransactionID", write=True, journal=journal.to_soap())
        return int(out["transactionID"])

    # --- BI codes (departments) ---------------------------------------------------------------------

    def get_analysis_dimensions(self) -> list[AnalysisDimension]:
        dimensions = []
        for row in _items(self._result("GetAnalysisDimensionSetup"), "WSAnalysisDimension"):
            codes = [c["Code"] for c in _items(row.get("DimensionCodes"), "WSAnalysisDimensionCode")]
            dimensions.append(
                AnalysisDimension(Code=row["Code"], Description=row.get("Description"), element_codes=codes)
            )
        return dimensions

    def get_departments(self) -> list[Department]:
        """Active and inactive departments."""
        return [Department.model_validate(d) for d in _items(self._result("GetDepartmentList"), "Department")]

    def get_department(self, department_id: str) -> Department | None:
        try:
            return Department.model_validate(self._result("GetDepartmentById", departmentId=department_id))
        except AiqNotFound:
            return None

    def departments_by_analysis_code(self, filters: dict[int, Sequence[str]]) -> list[Department]:
        """Departments whose analysis element in each given dimension (1-6) is one of those listed."""
        query = {f"a{n}Filter": {"string": list(codes)} for n, codes in filters.items()}
        result = self._result("GetDepartmentsByAnalysisCode", query=query)
        return [Department.model_validate(d) for d in _items(result, "Department")]

    def create_department(
        self, department_id: str, description: str, analysis_codes: Sequence[str | None] = ()
    ) -> None:
        codes: dict[str, Any] = {
            f"analysisCode{n}": code for n, code in enumerate(analysis_codes, start=1) if code
        }
        self._call("CreateDepartment", write=True, id=department_id, description=description, **codes)

    def update_department(self, department_id: str, description: str, *, active: bool) -> None:
        """Change a department's description and active flag (retire a code with active=False)."""
        self._call(
            "UpdateDepartment",
            write=True,
            departmentID=department_id,
            newDescription=description,
            active=active,
        )

    # --- intercompany -------------------------------------------------------------------------------

    def get_intercompany_connections(self) -> list[InterCompanyConnection]:
        result = self._result("GetInterCompanyConnectionList")
        return [InterCompanyConnection.model_validate(c) for c in _items(result, "WSInterCompanyConnection")]

    # --- transactions ----------------------------------------------------------------------------

    def transactions_by_external_reference(
        self,
        external_reference: str,
        from_date: datetime,
        to_date: datetime,
        types: Iterable[str] = (),
        account_ids: Iterable[int] = (),
    ) -> list[TransactionSummary]:
        query: dict[str, Any] = {
            "ExternalReference": external_reference,
            "FromDate": from_date,
            "ToDate": to_date,
            "TypesFilter": {"string": list(types)} if types else None,
            "AccountIDsFilter": {"int": list(account_ids)} if account_ids else None,
        }
        rows = _items(self._result("GetTransactionsByExternalReference", query=query), "WSTransactionSummary")
        return [_summary(row) for row in rows]

    def transactions_between(
        self,
        from_date: datetime,
        to_date: datetime,
        types: Iterable[str] = (),
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> Iterator[TransactionSummary]:
        """Every transaction dated in the range (optionally: created in the range), page by page
        (``GetTransactionsBy`` with ``Skip``): one sweep instead of one lookup per reference."""
        never = datetime(1, 1, 1)
        skip = 0
        while True:
            query: dict[str, Any] = {
                "FromDate": from_date,
                "ToDate": to_date,
                "FromCreationDate": created_from or never,
                "ToCreationDate": created_to or never,
                "Skip": skip,
                "TypesFilter": {"string": list(types)} if types else None,
                "FromPeriodDate": None,
                "ToPeriodDate": None,
                "ExcludeReconciliationInformation": True,
            }
            rows = _items(self._result("GetTransactionsBy", query=query), "WSTransactionSummary")
            yield from (_summary(row) for row in rows)
            if not rows:
                return
            skip += len(rows)

    def get_transaction(self, transaction_id: int) -> Transaction | None:
        try:
            result = self._result("GetTransaction", transactionID=transaction_id)
        except AiqNotFound:
            return None
        result["Lines"] = _items(result.get("Lines"), "TransactionLine")
        return Transaction.model_validate(result)


def _raise_if_rate_limited(operation: str, envelope: dict[str, Any], bare_rows: bool) -> None:
    rows = _items(envelope, "WSResultStatus") if bare_rows else [envelope]
    if rows and all(row.get("ErrorCode") in RATE_LIMIT_CODES for row in rows):
        raise AiqRateLimited(operation, "AccountsIQ's rate limit refused the call unprocessed")


@contextmanager
def translated_errors(operation: str, write: bool) -> Iterator[None]:
    """Turn zeep and HTTP failures into the gateway's taxonomy, by what a caller may do next."""
    try:
        yield
    except zeep.exceptions.Fault as fault:
        # ASMX refuses undeserialisable requests with a SOAP Fault before doing anything.
        raise AiqBusinessError(operation, "Fault", "SOAP_FAULT", str(fault.message)) from None
    except zeep.exceptions.TransportError as error:
        if error.status_code == 429:
            raise AiqRateLimited(operation, "HTTP 429: too many requests") from None
        if write and error.status_code not in NOT_PROCESSED_HTTP:
            raise AiqUnknownOutcome(operation, f"HTTP {error.status_code}: outcome unknown") from None
        raise AiqTransientError(operation, f"HTTP {error.status_code}") from None
    except (requests.ConnectTimeout, urllib3.exceptions.NewConnectionError) as error:
        raise AiqTransientError(operation, f"cannot connect: {type(error).__name__}") from None
    except requests.ConnectionError as error:
        if _never_connected(error) or not write:
            raise AiqTransientError(operation, f"connection failed: {type(error).__name__}") from None
        raise AiqUnknownOutcome(operation, "connection lost after sending: outcome unknown") from None
    except requests.Timeout:
        if write:
            raise AiqUnknownOutcome(operation, "timed out after sending: outcome unknown") from None
        raise AiqTransientError(operation, "timed out") from None


def unsendable(value: Any, path: str = "") -> str | None:
    """Where a request holds text XML cannot carry, and why; None when it can all be sent. zeep
    would refuse it while building the envelope, for the whole call: found here, it is one
    document's refusal."""
    if isinstance(value, str):
        problem = xml_problem(value)
        return f"{path or 'value'}: {problem}" if problem else None
    if isinstance(value, dict):
        items: Iterable[tuple[str, Any]] = (
            (f"{path}.{key}" if path else str(key), v) for key, v in value.items()
        )
    elif isinstance(value, list | tuple):
        items = ((f"{path}[{index + 1}]", item) for index, item in enumerate(value))
    else:
        return None
    return next((problem for where, item in items if (problem := unsendable(item, where))), None)


def _sendable_rows(
    payloads: list[dict[str, Any]], send: Callable[[list[dict[str, Any]]], list[RowResult]]
) -> list[RowResult]:
    """A bulk call for the documents that can be sent; a `NotSent` row, in place, for the others."""
    refused = {
        index: RowResult(status="NotSent", error_code=AiqRequestInvalid.CODE, error_message=problem)
        for index, payload in enumerate(payloads)
        if (problem := unsendable(payload))
    }
    sendable = [payload for index, payload in enumerate(payloads) if index not in refused]
    sent = iter(send(sendable) if sendable else [])
    return [refused[index] if index in refused else next(sent) for index in range(len(payloads))]


def _rows(
    operation: str,
    envelope: dict[str, Any],
    out: dict[str, Any],
    ids_key: str,
    expected: int,
    into: str = "transaction_id",
) -> list[RowResult]:
    """Map a bulk answer's per-row statuses and ids back to the request rows, by position."""
    statuses = _items(envelope.get("Result"), "WSResultStatus")
    ids = _items(out.get(ids_key), "int")
    if len(statuses) != expected:
        raise AiqUnknownOutcome(
            operation, f"{len(statuses)} row statuses for {expected} rows: outcome unknown"
        )
    rows = []
    for index, status in enumerate(statuses):
        row_id = ids[index] if index < len(ids) and ids[index] and ids[index] > 0 else None
        rows.append(
            RowResult.model_validate(
                {
                    "status": status.get("Status") or "Unknown",
                    "error_code": status.get("ErrorCode") or "",
                    "error_message": status.get("ErrorMessage"),
                    into: row_id,
                }
            )
        )
    return rows


def _document(model: type[D], row: dict[str, Any]) -> D:
    row["Lines"] = _items(row.get("Lines"), "InvoiceLine")
    return model.model_validate(row)


def _statement(row: dict[str, Any]) -> CustomerStatement:
    state = row.get("CustomerState") or {}
    return CustomerStatement(
        customer_code=state.get("CustomerCode") or "",
        current_balance=state["CurrentBalance"],
        future=state["FutureBalanceBucket"],
        days_0_30=state["From0To30DaysBalanceBucket"],
        days_30_60=state["From30To60DaysBalanceBucket"],
        days_60_90=state["From60To90DaysBalanceBucket"],
        days_90_120=state["From90To120DaysBalanceBucket"],
        days_120_plus=state["From120DaysPlusBalanceBucket"],
        transactions=[
            StatementLine.model_validate(t) for t in _items(row.get("TransactionList"), "TransactionState")
        ],
    )


def _summary(row: dict[str, Any]) -> TransactionSummary:
    row["LineDetails"] = _items(row.get("LineDetails"), "WSTransactionDetail")
    return TransactionSummary.model_validate(row)


def _never_connected(error: requests.ConnectionError) -> bool:
    reason = error.args[0] if error.args else None
    inner = getattr(reason, "reason", reason)
    return isinstance(inner, urllib3.exceptions.NewConnectionError | ConnectionRefusedError)
