"""The AccountsIQ calls the exactly-once engine makes, as a protocol: `AiqGateway` (SOAP over HTTP)
is the live implementation, `aiq_flows.engine.fake.FakeAiq` the in-memory one its state machine is
unit-tested on. Both raise the gateway's error taxonomy (`aiq_flows.gateway.errors`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from aiq_flows.gateway.models import CreditNote, Invoice, RowResult, TransactionSummary


class AiqPort(Protocol):
    # --- reads by external reference: the "read" of read-before-write ------------------------------
    def transactions_by_external_reference(
        self,
        external_reference: str,
        from_date: datetime,
        to_date: datetime,
        types: Iterable[str] = (),
        account_ids: Iterable[int] = (),
    ) -> list[TransactionSummary]: ...

    def invoices_by_external_reference(self, external_reference: str) -> list[Invoice]:
        """Item invoices under the reference: drafts, posted and cancelled."""
        ...

    def credit_notes_by_external_reference(self, external_reference: str) -> list[CreditNote]: ...

    def get_invoice(self, invoice_id: int) -> Invoice | None: ...

    # --- item invoices: template -> draft -> post ----------------------------------------------------
    def save_invoice(self, invoice: Invoice, *, create: bool = True) -> int: ...

    def create_invoices(self, invoices: Sequence[Invoice]) -> list[RowResult]: ...

    def post_invoice(self, invoice_id: int) -> int: ...

    def post_invoices(self, invoice_ids: Sequence[int]) -> list[RowResult]: ...

    def cancel_invoice(self, invoice_id: int, reason: str) -> None: ...

    # --- credit notes (reversing a posted sales leg) -------------------------------------------------
    def new_sales_credit_note(self, customer_code: str) -> CreditNote: ...

    def save_credit_note(self, note: CreditNote, *, create: bool = True) -> int: ...

    def post_credit_note(self, credit_note_id: int) -> int: ...
