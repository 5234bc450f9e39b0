"""A raw sale record's fields (what `aiq_flows.domain.sales.validate_sale` reads) and the mapping
keys that fill them: one table for every source (SQL, exports, Salesforce)."""

from __future__ import annotations

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
