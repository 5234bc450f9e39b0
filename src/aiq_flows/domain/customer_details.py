"""Which of a CRM customer's details go to its AccountsIQ account.

The rule: the CRM is the source of the details it holds, and only of those. A detail the CRM
leaves empty is never sent, so what finance entered in AIQ (a phone, an e-mail) is kept, and a new
account keeps AIQ's defaults where the CRM has nothing. `UpdateCustomer` replaces the whole
record, so the caller sends AIQ's own record back with these fields changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiq_flows.domain.sales import CustomerDetails

# AIQ's field for each CRM detail the sync keeps in step.
AIQ_FIELDS = {
    "Name": "name",
    "Email": "email",
    "Phone": "phone",
    "Address1": "address1",
    "City": "city",
    "PostCode": "postcode",
    "Country": "country",
}


def details_to_send(details: CustomerDetails) -> dict[str, str]:
    """{AIQ field: value} for every detail the CRM holds; none for those it leaves empty."""
    return {aiq: value for aiq, crm in AIQ_FIELDS.items() if (value := getattr(details, crm)) is not None}


def changed_details(account: Mapping[str, Any], details: CustomerDetails) -> list[str]:
    """The AIQ fields whose value differs from the CRM's (a detail the CRM leaves empty is kept)."""
    return [field for field, value in details_to_send(details).items() if account.get(field) != value]
