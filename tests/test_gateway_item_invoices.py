"""Item invoices, credit notes, attachments, PDFs, statements, stock items and the company:
gateway against the sandbox over HTTP, with the exact postings and the ErrorCode of each rule."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest
from pypdf import PdfReader

from aiq_flows.gateway.client import AiqGateway
from aiq_flows.gateway.errors import AiqBusinessError
from aiq_flows.gateway.models import CreditNote, Invoice, InvoiceLine
from tests.support.processes import Sandbox
from tests.test_gateway_ledgers import postings
from tests.test_gateway_sandbox import gateway_for, invoice, line

DAY = datetime(2026, 11, 20)


@pytest.fixture
def gateway(shared_sandbox: Sandbox) -> Iterator[AiqGateway]:
    gw = gateway_for(shared_sandbox)
    yield gw
    gw.close()


def draft(gateway: AiqGateway, reference: str, *lines: InvoiceLine, customer: str = "ACME01") -> Invoice:
    template = gateway.new_sales_invoice(customer)
    template.ExternalReference = reference
    template.InvoiceDate = DAY
    template.Lines = list(lines)
    return template


def item(quantity: str, price: str, **fields: object) -> InvoiceLine:
    return InvoiceLine.model_validate(
        {"InvoicedQuantity": Decimal(quantity), "StockItemPrice": Decimal(price), **fields}
    )


def balanced(sandbox: Sandbox) -> bool:
    return sum(Decimal(v) for v in sandbox.trial_balance().values()) == 0


# --- templates --------------------------------------------------------------------------------------


def test_template_is_filled_from_the_customer(gateway: AiqGateway) -> None:
    template = gateway.new_sales_invoice("ACME01")
    customer = gateway.get_customer("ACME01")
    assert customer is not None
    assert (template.AccountID, template.AccountCode) == (customer.AccountID, "ACME01")
    assert template.CurrencyCode == "GBP" and template.model_extra["CurrrencyCode"] == "GBP"
    assert (template.Ledger, template.Type, template.Status, template.InvoiceID) == (
        "Sales",
        "Invoice",
        "Processed",
        0,
    )
    assert template.Lines == []
    supplier_template = gateway.new_purchases_invoice("TEMPS01")
    assert supplier_template.Ledger == "Purchases"


def test_bulk_templates_keep_positions_with_a_gap_for_an_unknown_code(gateway: AiqGateway) -> None:
    templates = gateway.new_sales_invoices(["ACME01", "NOPE", "BRIGHT02"])
    assert [t.AccountCode if t else None for t in templates] == ["ACME01", None, "BRIGHT02"]


# --- draft, post, postings -------------------------------------------------------------------------


def test_item_invoice_draft_then_post_leaves_exact_postings(
    gateway: AiqGateway, shared_sandbox: Sandbox
) -> None:
    invoice_id = gateway.save_invoice(
        draft(
            gateway,
            "ITEM-1",
            item("3", "650.00", StockItemID="CONSULT-DAY"),
            item("2", "19.995", GLAccountCode="4000", TaxCode="T5", StockItemDescription="Widgets"),
        )
    )
    saved = gateway.get_invoice(invoice_id)
    assert saved is not None and saved.Status == "Processed"
    # AIQ recalculates: 3 x 650 = 1950.00 (T1 20% = 390.00); 2 x 19.995 = 39.99 (T5 5% = 2.00)
    assert [(li.NetAmount, li.TaxAmount, li.GLAccountCode) for li in saved.Lines] == [
        (Decimal("1950.00"), Decimal("390.00"), "4010"),
        (Decimal("39.99"), Decimal("2.00"), "4000"),
    ]
    assert (saved.NetAmount, saved.TaxAmount, saved.GrossAmount) == (
        Decimal("1989.99"),
        Decimal("392.00"),
        Decimal("2381.99"),
    )
    assert shared_sandbox.documents(external_reference="ITEM-1") == []  # a draft posts nothing

    transaction_id = gateway.post_invoice(invoice_id)
    assert sorted(postings(gateway, transaction_id)) == sorted(
        [
            ("4010", "Net", Decimal("-1950.00")),
            ("2200", "Vat", Decimal("-390.00")),
            ("4000", "Net", Decimal("-39.99")),
            ("2200", "Vat", Decimal("-2.00")),
            ("1100", "Control", Decimal("2381.99")),
        ]
    )
    posted = gateway.get_invoice(invoice_id)
    assert posted is not None and posted.Status == "Posted"
    [summary] = gateway.transactions_by_external_reference(
        "ITEM-1", datetime(2026, 1, 1), datetime(2027, 1, 1)
    )
    assert summary.TransactionID == transaction_id and summary.model_extra["InvoiceID"] == invoice_id
    assert balanced(shared_sandbox)


def test_purchase_item_invoice_posts_to_creditors(gateway: AiqGateway) -> None:
    template = gateway.new_purchases_invoice("TEMPS01")
    template.ExternalReference, template.InvoiceDate = "PITEM-1", DAY
    template.Lines = [item("10", "45.00", StockItemID="LABOUR-HR")]
    transaction_id = gateway.post_invoice(gateway.save_invoice(template))
    assert sorted(postings(gateway, transaction_id)) == sorted(
        [
            ("5000", "Net", Decimal("450.00")),
            ("2201", "Vat", Decimal("90.00")),
            ("2100", "Control", Decimal("-540.00")),
        ]
    )


def test_posted_invoices_are_immutable_and_post_once(gateway: AiqGateway) -> None:
    invoice_id = gateway.save_invoice(draft(gateway, "ITEM-IMM", item("1", "100", GLAccountCode="4000")))
    gateway.post_invoice(invoice_id)
    with pytest.raises(AiqBusinessError) as again:
        gateway.post_invoice(invoice_id)
    assert again.value.error_code == "INVOICE_CANNOT_BE_POSTED"
    posted = gateway.get_invoice(invoice_id)
    assert posted is not None
    posted.Notes = "changed after posting"
    with pytest.raises(AiqBusinessError) as change:
        gateway.save_invoice(posted)
    assert change.value.error_code == "INVOICE_CANNOT_BE_UNPOSTED"
    with pytest.raises(AiqBusinessError) as cancel:
        gateway.cancel_invoice(invoice_id, "too late")
    assert cancel.value.error_code == "INVOICE_CANNOT_BE_CANCELLED_NOT_STATUS_PROCESSED"


def test_updating_a_draft_needs_the_row_version_it_read(gateway: AiqGateway) -> None:
    invoice_id = gateway.save_invoice(draft(gateway, "ITEM-RV", item("1", "10", GLAccountCode="4000")))
    first = gateway.get_invoice(invoice_id)
    second = gateway.get_invoice(invoice_id)
    assert first is not None and second is not None
    first.Notes = "first edit"
    assert gateway.save_invoice(first, create=False) == invoice_id
    second.Notes = "stale edit"
    with pytest.raises(AiqBusinessError) as stale:
        gateway.save_invoice(second, create=False)
    assert (stale.value.status, stale.value.error_code) == ("Conflicted", "OUTDATED_RECORD")
    current = gateway.get_invoice(invoice_id)
    assert current is not None and current.Notes == "first edit"


def test_saving_an_unknown_draft_without_create_is_not_created(gateway: AiqGateway) -> None:
    ghost = draft(gateway, "ITEM-GHOST", item("1", "10", GLAccountCode="4000"))
    with pytest.raises(AiqBusinessError) as refused:
        gateway.save_invoice(ghost, create=False)
    assert (refused.value.status, refused.value.error_code) == ("NotCreated", "INVOICE_ID_DOES_NOT_EXIST")


def test_cancel_a_draft_then_it_cannot_be_posted(gateway: AiqGateway, shared_sandbox: Sandbox) -> None:
    invoice_id = gateway.save_invoice(draft(gateway, "ITEM-CXL", item("1", "10", GLAccountCode="4000")))
    with pytest.raises(AiqBusinessError) as no_reason:
        gateway.cancel_invoice(invoice_id, " ")
    assert no_reason.value.error_code == "INVOICE_CANNOT_BE_CANCELLED_NO_REASON_PROVIDED"
    gateway.cancel_invoice(invoice_id, "raised in error")
    with pytest.raises(AiqBusinessError) as post:
        gateway.post_invoice(invoice_id)
    assert post.value.error_code == "INVOICE_CANNOT_BE_POSTED_SINCE_IT_IS_CANCELLED"
    [cancelled] = gateway.invoices_by_external_reference("ITEM-CXL")
    assert cancelled.Status == "Cancelled" and shared_sandbox.documents(external_reference="ITEM-CXL") == []


def test_lookup_by_reference_finds_every_item_invoice_but_no_batch_one(gateway: AiqGateway) -> None:
    gateway.save_invoice(draft(gateway, "DUP-REF", item("1", "10", GLAccountCode="4000")))
    gateway.save_invoice(draft(gateway, "DUP-REF", item("1", "20", GLAccountCode="4000")))
    gateway.create_batch_sales_invoice(invoice("DUP-REF", line("5.00", None)))
    found = gateway.invoices_by_external_reference("DUP-REF")
    assert sorted(f.NetAmount for f in found) == [Decimal("10.00"), Decimal("20.00")]
    assert gateway.get_invoice(999_999) is None


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"AccountID": 0}, "ACCOUNT_ID_IS_NEGATIVE_OR_ZERO"),
        ({"AccountID": 987_654}, "ACCOUNT_ID_DOES_NOT_EXIST"),
        ({"ExternalReference": "R" * 51}, "INVOICE_EXTERNAL_REFERENCE_IS_TOO_LONG"),
        ({"Notes": "n" * 2001}, "INVOICE_NOTES_IS_TOO_LONG"),
        ({"ExchangeRate": Decimal(0)}, "EXCHANGE_RATE_IS_NEGATIVE_OR_ZERO"),
        ({"CurrencyCode": "XXX"}, "CUSTOMER_CURRENCY_CODE_NOT_FOUND"),
        ({"line": {"InvoicedQuantity": Decimal(-1)}}, "INVOICED_QUANTITY_IS_NEGATIVE"),
        ({"line": {"DiscountRate": Decimal("-0.1")}}, "DISCOUNT_RATE_IS_NEGATIVE"),
        ({"line": {"DiscountRate": Decimal(1)}}, "DISCOUNT_RATE_IS_100_PERCENT_OR_MORE"),
        ({"line": {"StockItemPrice": Decimal(-1)}}, "STOCKITEM_PRICE_IS_NEGATIVE"),
        ({"line": {"StockItemID": "NO-SUCH"}}, "STOCKITEM_ID_DOES_NOT_EXIST"),
        ({"line": {"GLAccountCode": "1100"}}, "GLACCOUNT_IS_NOT_POSTING_OR_DOES_NOT_EXIST"),
        ({"line": {"TaxCode": "ZZ"}}, "TAX_CODE_DOES_NOT_EXIST"),
        ({"line": {"DepartmentID": "NOPE"}}, "DEPARTMENT_ID_DOES_NOT_EXIST"),
        ({"line": {"StockItemDescription": "d" * 501}}, "TRANSACTION_LINE_DESCRIPTION_IS_TOO_LONG"),
    ],
)
def test_each_draft_rule_has_its_error_code(
    gateway: AiqGateway, change: dict[str, object], code: str
) -> None:
    bad_line = item("1", "10", **{"GLAccountCode": "4000", **change.pop("line", {})})  # type: ignore[dict-item]
    bad = draft(gateway, "ITEM-BAD", bad_line).model_copy(update=change)
    with pytest.raises(AiqBusinessError) as refused:
        gateway.save_invoice(bad)
    assert refused.value.error_code == code


def test_posting_in_a_closed_period_is_refused(gateway: AiqGateway) -> None:
    closed = draft(gateway, "ITEM-CLOSED", item("1", "10", GLAccountCode="4000"))
    closed.InvoiceDate = datetime(2025, 1, 15)
    invoice_id = gateway.save_invoice(closed)
    with pytest.raises(AiqBusinessError) as refused:
        gateway.post_invoice(invoice_id)
    assert refused.value.error_code == "SALES_LEDGER_ALREADY_CLOSED"


def test_invoice_without_lines_cannot_be_posted(gateway: AiqGateway) -> None:
    invoice_id = gateway.save_invoice(draft(gateway, "ITEM-EMPTY"))
    with pytest.raises(AiqBusinessError) as refused:
        gateway.post_invoice(invoice_id)
    assert refused.value.error_code == "INVOICE_CANNOT_BE_POSTED"


# --- bulk --------------------------------------------------------------------------------------------


def test_bulk_save_and_post_map_every_row_back(gateway: AiqGateway, shared_sandbox: Sandbox) -> None:
    good = draft(gateway, "BULK-ITEM-1", item("1", "100", GLAccountCode="4000"))
    bad = draft(gateway, "BULK-ITEM-2", item("1", "100", GLAccountCode="9999"))
    also_good = draft(gateway, "BULK-ITEM-3", item("2", "50", GLAccountCode="4000"))
    saved = gateway.create_invoices([good, bad, also_good])
    assert [r.ok for r in saved] == [True, False, True]
    assert (
        saved[1].error_code == "GLACCOUNT_IS_NOT_POSTING_OR_DOES_NOT_EXIST" and saved[1].document_id is None
    )
    ids = [r.document_id for r in saved if r.document_id]
    cancelled = gateway.save_invoice(draft(gateway, "BULK-ITEM-4", item("1", "1", GLAccountCode="4000")))
    gateway.cancel_invoice(cancelled, "test")
    posted = gateway.post_invoices([*ids, cancelled])
    assert [r.ok for r in posted] == [True, True, False]
    assert posted[2].error_code == "INVOICE_CANNOT_BE_POSTED_SINCE_IT_IS_CANCELLED"
    for reference, result in (("BULK-ITEM-1", posted[0]), ("BULK-ITEM-3", posted[1])):
        [document] = shared_sandbox.documents(external_reference=reference)
        assert document["transaction_id"] == result.transaction_id
    assert balanced(shared_sandbox)


def test_bulk_post_survives_a_token_expiry(gateway: AiqGateway, shared_sandbox: Sandbox) -> None:
    invoice_id = gateway.save_invoice(draft(gateway, "BULK-EXP", item("1", "10", GLAccountCode="4000")))
    shared_sandbox.expire_tokens()
    [row] = gateway.post_invoices([invoice_id])
    assert row.ok and row.transaction_id


# --- credit notes ------------------------------------------------------------------------------------


def test_credit_note_reverses_an_invoice_and_leaves_the_ledger_balanced(
    gateway: AiqGateway, shared_sandbox: Sandbox
) -> None:
    gateway.post_invoice(
        gateway.save_invoice(draft(gateway, "CN-INV", item("2", "100", GLAccountCode="4000")))
    )
    before = gateway.customer_balances(DAY, ["ACME01"])[0].Balance
    note: CreditNote = gateway.new_sales_credit_note("ACME01")
    assert (note.Type, note.Ledger) == ("Note", "Sales")
    note.ExternalReference, note.InvoiceDate = "CN-1", DAY
    note.Lines = [item("1", "100", GLAccountCode="4000", StockItemDescription="Return of one")]
    note_id = gateway.save_credit_note(note)
    transaction_id = gateway.post_credit_note(note_id)
    assert sorted(postings(gateway, transaction_id)) == sorted(
        [
            ("4000", "Net", Decimal("100.00")),
            ("2200", "Vat", Decimal("20.00")),
            ("1100", "Control", Decimal("-120.00")),
        ]
    )
    assert gateway.customer_balances(DAY, ["ACME01"])[0].Balance == before - Decimal("120.00")
    [found] = gateway.credit_notes_by_external_reference("CN-1")
    assert found.Status == "Posted" and found.InvoiceID == note_id
    assert gateway.invoices_by_external_reference("CN-1") == []
    with pytest.raises(AiqBusinessError) as wrong_type:
        gateway.post_invoice(note_id)
    assert wrong_type.value.error_code == "INVOICE_TYPE_INCORRECT"
    assert balanced(shared_sandbox)


# --- attachments and PDFs ----------------------------------------------------------------------------


def test_attach_a_breakdown_to_a_posted_invoice(gateway: AiqGateway) -> None:
    transaction_id = gateway.create_batch_sales_invoice(invoice("ATT-1", line("10.00", None)))
    gateway.attach_document(
        "Transaction", transaction_id, "breakdown.csv", b"line,amount\n1,10.00\n", "lines"
    )
    [summary] = gateway.transactions_by_external_reference(
        "ATT-1", datetime(2026, 1, 1), datetime(2027, 1, 1)
    )
    assert summary.model_extra["NumberOfAttachments"] == 1
    with pytest.raises(AiqBusinessError) as again:
        gateway.attach_document("Transaction", transaction_id, "BREAKDOWN.csv", b"x")
    assert again.value.error_code == "DOCUMENT_CANNOT_BE_SAVED_NAME_NOT_UNIQUE"


@pytest.mark.parametrize(
    ("master_type", "master_id", "filename", "content", "code"),
    [
        ("Transaction", 1, "payload.exe", b"MZ", "INVALID_DOCUMENT_EXTENSION"),
        ("Transaction", 1, "", b"x", "DOCUMENT_NAME_IS_INVALID"),
        ("Transaction", 1, "../etc/passwd.txt", b"x", "DOCUMENT_NAME_IS_INVALID"),
        ("Transaction", 1, "n" * 101 + ".csv", b"x", "DOCUMENT_NAME_IS_TOO_LONG"),
        ("Transaction", 1, "empty.csv", b"", "DOCUMENT_CONTENT_IS_NULL_OR_EMPTY"),
        ("Transaction", 0, "a.csv", b"x", "DOCUMENT_MASTER_ID_MUST_BE_POSITIVE"),
        ("Transaction", 99_999_999, "a.csv", b"x", "UNABLE_TO_DETERMINE_DOCUMENT_MASTER"),
        (
            "Transaction",
            1,
            "big.csv",
            b"x" * (5 * 1024 * 1024 + 1),
            "INVALID_STATE_ERROR_WHILE_UPLOADING_DOCUMENT",
        ),
    ],
)
def test_each_attachment_rule_has_its_error_code(
    gateway: AiqGateway, master_type: str, master_id: int, filename: str, content: bytes, code: str
) -> None:
    gateway.create_batch_sales_invoice(invoice("ATT-RULES", line("1.00", None)))
    with pytest.raises(AiqBusinessError) as refused:
        gateway.attach_document(master_type, master_id, filename, content)
    assert refused.value.error_code == code


def test_invoice_pdf_is_a_real_pdf_of_the_posted_invoice(gateway: AiqGateway) -> None:
    invoice_id = gateway.save_invoice(draft(gateway, "PDF-1", item("3", "650.00", StockItemID="CONSULT-DAY")))
    transaction_id = gateway.post_invoice(invoice_id)
    pdf = gateway.invoice_pdf(transaction_id)
    assert pdf.startswith(b"%PDF-")
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "PDF-1" in text and "Acme Industries plc" in text and "GBP 2,340.00" in text
    with pytest.raises(AiqBusinessError) as missing:
        gateway.invoice_pdf(99_999_999)
    assert missing.value.error_code == "TRANSACTION_NOT_FOUND"


# --- statements, stock items, company --------------------------------------------------------------


def test_statement_ages_by_due_date(gateway: AiqGateway) -> None:
    old = invoice("STMT-OLD", line("100.00", None), customer="CORAL03")
    old.InvoiceDate, old.DueDate = datetime(2026, 7, 1), datetime(2026, 7, 31)  # 112 days overdue
    recent = invoice("STMT-NEW", line("50.00", None), customer="CORAL03")
    recent.InvoiceDate, recent.DueDate = datetime(2026, 11, 1), datetime(2026, 12, 1)  # not yet due
    for document in (old, recent):
        gateway.create_batch_sales_invoice(document)
    [statement] = gateway.customer_statements(datetime(2026, 11, 20), ["CORAL03"])
    assert statement.days_90_120 == Decimal("120.00")
    assert statement.future == Decimal("60.00")
    assert statement.current_balance == Decimal("180.00") and statement.overdue == Decimal("120.00")
    assert {t.ExternalReference for t in statement.transactions} == {"STMT-OLD", "STMT-NEW"}


def test_statement_hides_zero_balances_unless_asked(gateway: AiqGateway) -> None:
    assert gateway.customer_statements(DAY, ["BRIGHT02"], show_zeros=False) == []
    [zero] = gateway.customer_statements(DAY, ["BRIGHT02"], show_zeros=True)
    assert zero.current_balance == 0


def test_stock_items_and_company(gateway: AiqGateway) -> None:
    item_ = gateway.get_stock_item("CONSULT-DAY")
    assert item_ is not None and item_.ItemPrice == Decimal("650.00")
    assert gateway.get_stock_item("NO-SUCH") is None
    active = {i.StockItemID for i in gateway.get_active_stock_items()}
    assert "CONSULT-DAY" in active and "OLD-KIT" not in active
    company = gateway.get_company_information()
    assert (company.CompanyName, company.BaseCurrencyCode) == ("Demo Trading UK Ltd", "GBP")


# --- departmental GL accounts ---------------------------------------------------------------------


def test_departmental_gl_accounts_need_a_bi_code_on_every_kind_of_document(gateway: AiqGateway) -> None:
    from aiq_flows.gateway.models import GeneralJournal, GeneralJournalLine

    refusals = []
    item_draft = draft(gateway, "DEPT-ITEM", item("1", "10", GLAccountCode="4200"))
    batch = invoice("DEPT-BATCH", line("10.00", None, gl="4200"))
    journal = GeneralJournal(
        InternalReference="DEPT-GJ",
        ExternalReference="DEPT-GJ",
        TransactionDate=DAY,
        Lines=[
            GeneralJournalLine(GLAccountCode="2400", Description="x", Amount=Decimal("1.00")),
            GeneralJournalLine(GLAccountCode="4200", Description="x", Amount=Decimal("-1.00")),
        ],
    )
    for write in (
        lambda: gateway.save_invoice(item_draft),
        lambda: gateway.create_batch_sales_invoice(batch),
        lambda: gateway.create_general_journal(journal),
    ):
        with pytest.raises(AiqBusinessError) as refused:
            write()
        refusals.append(refused.value.error_code)
    assert refusals == ["GLACCOUNT_NO_DEPARTMENT_IS_DEPARTMENTAL"] * 3
    department = gateway.get_departments()[0].DepartmentID
    item_draft.Lines[0].DepartmentID = department
    assert gateway.post_invoice(gateway.save_invoice(item_draft)) > 0
