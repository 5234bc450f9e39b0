"""The source mapping: how any CRM's tables (or any SELECT, or an export's headers) become the
sales the sync posts. A user-facing contract, written in YAML and validated here; its key names
are kept as documented (README, "From your chosen CRM"):

    version: 1
    reference_prefix: "S-"
    sales:     {from | query, where, id, changed_at, columns: {reference, customer, date, ...}}
    lines:     {from | query, sale, order_by, columns: {description, quantity, unit_price, ...}}
    customers: {from | query, id, columns: {code, name, email, ...}, code_from}
    write_back: {table, key, columns: {transaction_id, status, message, synced_at}}   # optional
    payments:  {from | query, where, id, columns: {customer, date, amount, currency, bank_account,
                invoices, kind, refund_of}, write_back: {table, key, columns: {receipt_id, status,
                message}}, invoice_status: {table, key, columns: {outstanding, paid_at, days_overdue}}}

A column may be given as a constant instead (``currency: {value: GBP}``). Every refusal names the
key that is wrong and why, e.g. ``sales.columns.date: is required``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aiq_flows.domain.references import MAX_EXTERNAL_REFERENCE


class MappingError(ValueError):
    """A mapping that cannot work: the message is one line naming the key, the table, the column."""


class Constant(BaseModel):
    """A value every record has, where the CRM has no column for it (``{value: GBP}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    value: str | int | float | bool | None


Source = str | Constant  # a column name, or a constant


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    from_: str | None = Field(default=None, alias="from")  # a table or view
    query: str | None = None  # or any SELECT
    where: str | None = None  # an SQL condition on the table's or the query's rows

    @model_validator(mode="after")
    def _one_source(self) -> _Section:
        if (self.from_ is None) == (self.query is None):
            raise ValueError("give exactly one of 'from' (a table or view) and 'query' (a SELECT)")
        return self

    @property
    def described(self) -> str:
        return f"table {self.from_!r}" if self.from_ else "its query"


class SaleColumns(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    reference: Source
    customer: Source  # joins customers.id
    date: Source
    currency: Source
    description: Source
    service_start: Source | None = None
    service_end: Source | None = None
    service_months: Source | None = None
    invoice_kind: Source | None = None  # batch | item
    credited_at: Source | None = None


class LineColumns(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    description: Source
    tax_code: Source
    gl_code: Source
    net_amount: Source | None = None  # or quantity and unit_price
    quantity: Source | None = None
    unit_price: Source | None = None
    tax_amount: Source | None = None  # else the tax code's rate of the net
    item_code: Source | None = None
    bi_code: Source | None = None

    @model_validator(mode="after")
    def _an_amount(self) -> LineColumns:
        if self.net_amount is None and (self.quantity is None or self.unit_price is None):
            raise ValueError("map net_amount, or quantity and unit_price")
        return self


class CustomerColumns(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Source
    code: Source | None = None  # the AIQ customer code, when the CRM keeps one
    email: Source | None = None
    phone: Source | None = None
    address1: Source | None = None
    city: Source | None = None
    postcode: Source | None = None
    country: Source | None = None


class SalesSection(_Section):
    id: str  # a stable unique key: string or integer
    changed_at: str  # the timestamp that drives the watermark
    columns: SaleColumns


class LinesSection(_Section):
    sale: str  # the column pointing at sales.id
    order_by: str | None = None
    columns: LineColumns


class CustomersSection(_Section):
    id: str
    columns: CustomerColumns
    code_from: str | None = None  # derive an AIQ code from this column when `code` is not mapped


class WriteBackColumns(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    transaction_id: str
    status: str
    message: str | None = None
    synced_at: str | None = None


class WriteBack(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    table: str
    key: str
    columns: WriteBackColumns


class PaymentColumns(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    customer: Source  # the AIQ customer code (a CRM that keeps its own ids maps a query joining them)
    date: Source
    amount: Source
    currency: Source | None = None  # refused when it is not the invoices' currency
    bank_account: Source | None = None  # the bank GL account; else the deployment's default
    invoices: Source | None = None  # the sale ids it pays, separated by commas; none: oldest first
    kind: Source | None = None  # payment (default), refund or chargeback
    refund_of: Source | None = None  # a refund's: the payment it reverses


class PaymentWriteBackColumns(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    receipt_id: str  # AIQ's receipt transaction ID
    status: str  # received, allocated, on_account, waiting, refunded, refused, quarantined
    message: str | None = None


class PaymentWriteBack(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    table: str
    key: str
    columns: PaymentWriteBackColumns


class InvoiceStatusColumns(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    outstanding: str  # what is left to pay on the sale's invoice, from AIQ
    paid_at: str | None = None  # when it was paid in full
    days_overdue: str | None = None  # days past its due date while something is left to pay


class InvoiceStatus(BaseModel):
    """Where each paid sale's invoice status goes back to (the sales' own rows, usually), so that
    sales see who paid."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    table: str
    key: str  # the sale's id
    columns: InvoiceStatusColumns


class PaymentsSection(_Section):
    id: str
    columns: PaymentColumns
    write_back: PaymentWriteBack | None = None  # none: a read-only source (its state lives in the store)
    invoice_status: InvoiceStatus | None = None


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1]
    reference_prefix: str = "S-"
    day_first: bool = True  # how 01/02/2026 reads in text dates: 1 February (UK, Ireland)
    sales: SalesSection
    lines: LinesSection
    customers: CustomersSection
    write_back: WriteBack | None = None  # none: a read-only source (its state lives in the store)
    payments: PaymentsSection | None = None  # the cash side (receipts-sync), if the source has it

    @field_validator("reference_prefix")
    @classmethod
    def _prefix_leaves_room(cls, prefix: str) -> str:
        if not prefix or len(prefix) > MAX_EXTERNAL_REFERENCE - 10:
            raise ValueError(
                f"give 1 to {MAX_EXTERNAL_REFERENCE - 10} characters, leaving room for the sale id"
            )
        return prefix

    @property
    def read_only(self) -> bool:
        return self.write_back is None


class ExportSales(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str  # the header of the sale's id (one row per line: the rows of a sale share it)
    columns: SaleColumns


class ExportLines(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    columns: LineColumns


class ExportCustomers(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    columns: CustomerColumns
    code_from: str | None = None  # default: the sale's `customer` column


class ExportMapping(BaseModel):
    """The same column sections, for an export's headers (CSV or Excel, one row per line): a
    user's export works with its own headers, no renaming."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1]
    reference_prefix: str = "S-"
    day_first: bool = True
    sales: ExportSales
    lines: ExportLines
    customers: ExportCustomers

    @property
    def required_headers(self) -> dict[str, str]:
        """{header: the mapping key naming it} for every column a file must have: the required
        fields' and the amounts' (an optional field's column may be left out of a file)."""
        needed: dict[str, str] = {self.sales.id: "sales.id"}
        for section, columns in (("sales", self.sales.columns), ("lines", self.lines.columns)):
            for key, source in columns:
                if isinstance(source, str) and (_required(columns, key) or key in _AMOUNTS):
                    needed.setdefault(source, f"{section}.columns.{key}")
        if isinstance(self.customers.columns.name, str):
            needed.setdefault(self.customers.columns.name, "customers.columns.name")
        return needed


_AMOUNTS = ("net_amount", "quantity", "unit_price")  # one or the other pair is required: whichever is mapped


def _required(columns: BaseModel, key: str) -> bool:
    return type(columns).model_fields[key].is_required()


# The file drop's own headers, as release 0.1 documented them: the mapping when none is given.
DEFAULT_EXPORT = ExportMapping.model_validate(
    {
        "version": 1,
        "sales": {
            "id": "sale_id",
            "columns": {
                "reference": "reference",
                "customer": "customer_key",
                "date": "sale_date",
                "currency": "currency",
                "description": "description",
                "service_start": "service_start",
                "service_end": "service_end",
                "service_months": "service_months",
            },
        },
        "lines": {
            "columns": {
                "description": "line_description",
                "gl_code": "gl_account_code",
                "tax_code": "tax_code",
                "net_amount": "net_amount",
                "tax_amount": "tax_amount",
                "bi_code": "department_id",
            }
        },
        "customers": {
            "columns": {
                "name": "customer_name",
                **{
                    name: f"customer_{name}"
                    for name in ("email", "phone", "address1", "city", "postcode", "country")
                },
            }
        },
    }
)


def _where(location: tuple[Any, ...]) -> str:
    return ".".join(
        "from" if part == "from_" else str(part) for part in location if not isinstance(part, int)
    )


M = TypeVar("M", Mapping, ExportMapping)


def _validated(kind: type[M], document: Any, origin: str) -> M:
    try:
        return kind.model_validate(document)
    except ValidationError as error:
        errors = error.errors()
        first = errors[0]
        rules = {
            "missing": "is required",
            "extra_forbidden": "is not a key of the mapping (a typo?)",
            "literal_error": "must be 1",
        }
        rule = rules.get(first["type"], str(first["msg"]).removeprefix("Value error, "))
        if first["type"] == "missing":  # a misspelt key is both missing and unknown: say both
            strays = [
                str(e["loc"][-1])
                for e in errors
                if e["type"] == "extra_forbidden" and e["loc"][:-1] == first["loc"][:-1]
            ]
            if strays:
                rule += f" (found {', '.join(repr(k) for k in strays)} instead: a typo?)"
        raise MappingError(f"{origin}: {_where(first['loc']) or 'mapping'}: {rule}") from None


def parse_mapping(document: Any, origin: str = "mapping") -> Mapping:
    """A mapping from its parsed YAML, or a MappingError naming the first key that is wrong."""
    return _validated(Mapping, document, origin)


def _document(text_or_path: str | Path) -> tuple[Any, str]:
    origin, text = "mapping", str(text_or_path)
    if "\n" not in text and Path(text).suffix in (".yaml", ".yml"):
        path = Path(text)
        if not path.is_file():
            raise MappingError(f"mapping: no file at {path}")
        origin, text = path.name, path.read_text(encoding="utf-8")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise MappingError(f"{origin}: not YAML{where}: {getattr(error, 'problem', error)}") from None
    if not isinstance(document, dict):
        found = type(document).__name__
        raise MappingError(f"{origin}: expected keys (version, sales, lines, ...), found {found}")
    return document, origin


def load_mapping(text_or_path: str | Path) -> Mapping:
    """A source mapping from YAML text or from the path of a YAML file."""
    return _validated(Mapping, *_document(text_or_path))


def load_export_mapping(text_or_path: str | Path) -> ExportMapping:
    """An export's mapping (its headers, for the file drop) from YAML text or a file's path."""
    return _validated(ExportMapping, *_document(text_or_path))
