"""A raw sale record (what `aiq_flows.domain.sales.validate_sale` reads), built the same way by
every source (SQL, exports, Salesforce) from a mapping and a way to read one mapped value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from aiq_flows.sources.mapping import Constant, CustomerColumns, LineColumns, SaleColumns

# record field -> mapping key
SALE_FIELDS = {
    "reference": "reference",
    "sale_date": "date",
    "currency": "currency",
    "description": "description",
    "service_start": "service_start",
    "service_end": "service_end",
    "service_months": "service_months",
    "credited_at": "credited_at",
    "invoice_kind": "invoice_kind",
    "customer_ref": "customer",
}
LINE_FIELDS = {
    "description": "description",
    "gl_account_code": "gl_code",
    "tax_code": "tax_code",
    "net_amount": "net_amount",
    "tax_amount": "tax_amount",
    "quantity": "quantity",
    "unit_price": "unit_price",
    "item_code": "item_code",
    "department_id": "bi_code",
}
CUSTOMER_DETAILS = ("name", "email", "phone", "address1", "city", "postcode", "country")

# How a source reads one mapped value: (mapping key, the column or field it names) -> raw value.
Read = Callable[[str, str], Any]


def mapped(columns: BaseModel, key: str, read: Read) -> Any:
    """A mapped field's raw value: its constant, what its column holds, or None when unmapped."""
    source = getattr(columns, key)
    if isinstance(source, Constant):
        return source.value
    return read(key, source) if isinstance(source, str) else None


def sale_fields(columns: SaleColumns, read: Read) -> dict[str, Any]:
    return {field: mapped(columns, key, read) for field, key in SALE_FIELDS.items()}


def line_fields(columns: LineColumns, line_no: int, read: Read) -> dict[str, Any]:
    """A line's fields; one the mapping leaves out is absent (not empty): the domain then tells a
    source that keeps no tax amounts from one that left this line's empty."""
    return {
        "line_no": line_no,
        **{
            field: mapped(columns, key, read)
            for field, key in LINE_FIELDS.items()
            if getattr(columns, key) is not None
        },
    }


def customer_fields(columns: CustomerColumns, key: Any, read: Read) -> dict[str, Any]:
    """A customer: `key` names it (and derives its AIQ code when no `code` is mapped)."""
    return {
        "key": key,
        "code": mapped(columns, "code", read),
        **{name: mapped(columns, name, read) for name in CUSTOMER_DETAILS},
    }
