"""Purchases, journals, periods, balances and bulk posting: gateway against the sandbox over HTTP,
with the exact postings each document leaves and the ErrorCode of each rule."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from aiq_flows.gateway.client import AiqGateway
from aiq_flows.gateway.errors import AiqBusinessError
from aiq_flows.gateway.models import (
    BatchInvoiceLine,
    BatchPurchasesInvoice,
    GeneralJournal,
    GeneralJournalLine,
)
from tests.support.processes import Sandbox
from tests.test_gateway_sandbox import gateway_for, invoice, line

DAY = datetime(2026, 11, 20)


@pytest.fixture
def gateway(shared_sandbox: Sandbox) -> Iterator[AiqGateway]:
    gw = gateway_for(shared_sandbox)
    yield gw
    gw.close()


def journal(
    reference: str, *lines: tuple[str, str], when: datetime = DAY, department: str | None = None
) -> GeneralJournal:
    return GeneralJournal(
        InternalReference=f"INT-{reference}",
        ExternalReference=reference,
        TransactionDate=when,
        Lines=[
            GeneralJournalLine(
                GLAccountCode=gl,
                Description=f"{reference} {gl}",
                Amount=Decimal(amount),
                DepartmentID=department,
            )
            for gl, amount in lines
        ],
    )


def postings(gateway: AiqGateway, transaction_id: int) -> list[tuple[str | None, str, Decimal]]:
    transaction = gateway.get_transaction(transaction_id)
    assert transaction is not None
    return [(p.GLAccountCode, p.BroadType, p.Amount) for p in transaction.Lines]


# --- suppliers and purchase invoices ---------------------------------------------------------------


def test_supplier_lifecycle(gateway: AiqGateway) -> None:
    assert gateway.get_supplier("TEMPS01") is not None
    assert gateway.get_supplier("NOSUCH") is None
    shell = gateway.new_supplier_from_defaults()
    assert (shell.ControlGLAccountCode, shell.DefaultGLAccountCode) == ("2100", "5000")
    shell.Code, shell.Name = "CONTRACTOR7", "Contractor Seven Ltd"
    gateway.update_supplier(shell, create=True)
    assert "CONTRACTOR7" in {s.Code for s in gateway.get_active_suppliers()}
    assert gateway.get_customer("CONTRACTOR7") is None  # suppliers and customers are separate ledgers


def test_supplier_lookups_use_supplier_error_codes(gateway: AiqGateway) -> None:
    shell = gateway.new_supplier_from_defaults()
    shell.Code, shell.Name, shell.DefaultTaxCode = "BADSUP", "Bad Supplier", "ZZ"
    with pytest.raises(AiqBusinessError) as refused:
        gateway.update_supplier(shell, create=True)
    assert refused.value.error_code == "SUPPLIER_TAX_CODE_NOT_FOUND"


def test_posted_purchase_invoice_debits_cost_and_vat_and_credits_creditors(gateway: AiqGateway) -> None:
    template = gateway.new_batch_purchases_invoice("TEMPS01")
    bill = template.model_copy(
        update={
            "InvoiceDate": DAY,
            "ExternalReference": "B2B-1-P",
            "Description": "Contractor week 47",
            "Lines": [
                BatchInvoiceLine(
                    GLAccountCode="5000",
                    TaxCode="T1",
                    Description="40h x 25.00",
                    DepartmentID="JOB-1001",
                    NetAmount=Decimal("1000.00"),
                    TaxRate=0.2,
                    TaxAmount=Decimal("200.00"),
                )
            ],
        }
    )
    transaction_id = gateway.create_batch_purchases_invoice(bill)
    assert postings(gateway, transaction_id) == [
        ("5000", "Net", Decimal("1000.00")),
        ("2201", "Vat", Decimal("200.00")),
        ("2100", "Control", Decimal("-1200.00")),
    ]
    found = gateway.transactions_by_external_reference("B2B-1-P", DAY, DAY, types=["PI"])
    assert [t.TransactionID for t in found] == [transaction_id]
    assert found[0].LineDetails[0].DepartmentID == "JOB-1001"


def test_purchase_invoice_in_a_closed_purchases_period_is_refused(gateway: AiqGateway) -> None:
    bill = BatchPurchasesInvoice(
        SupplierCode="TEMPS01",
        InvoiceDate=datetime(2025, 1, 15),
        ExternalReference="PI-OLD",
        Description="old",
        Lines=[line("10.00", "2.00", gl="5000")],
    )
    with pytest.raises(AiqBusinessError) as refused:
        gateway.create_batch_purchases_invoice(bill)
    assert refused.value.error_code == "PURCHASES_LEDGER_ALREADY_CLOSED"


def test_unknown_department_on_an_invoice_line_is_refused(gateway: AiqGateway) -> None:
    bad = invoice("DEPT-1", line("1.00", "0.20").model_copy(update={"DepartmentID": "NOPE"}))
    with pytest.raises(AiqBusinessError) as refused:
        gateway.create_batch_sales_invoice(bad)
    assert refused.value.error_code == "DEPARTMENT_ID_DOES_NOT_EXIST"


# --- general journals ------------------------------------------------------------------------------


def test_posted_journal_moves_deferred_revenue_to_revenue(gateway: AiqGateway) -> None:
    transaction_id = gateway.create_general_journal(
        journal("DEF-S-1-202611", ("2400", "83.34"), ("4100", "-83.34"), department="SUBS")
    )
    assert postings(gateway, transaction_id) == [
        ("2400", "Net", Decimal("83.34")),
        ("4100", "Net", Decimal("-83.34")),
    ]
    found = gateway.transactions_by_external_reference("DEF-S-1-202611", DAY, DAY)
    assert found[0].TransactionID == transaction_id and found[0].ControlAmount == Decimal("83.34")
    assert {d.DepartmentID for d in found[0].LineDetails} == {"SUBS"}


@pytest.mark.parametrize(
    ("build", "error_code"),
    [
        (lambda: journal("J-1", ("2400", "1.00")), "JOURNAL_ENTRY_MUST_HAVE_MORE_THEN_ONE_ROW"),
        (lambda: journal("J-2", ("2400", "1.00"), ("4100", "-0.99")), "JOURNAL_ENTRY_LINES_ARE_NOT_BALANCED"),
        (
            lambda: journal("J-3", ("1100", "1.00"), ("4100", "-1.00")),
            "JOURNAL_ENTRY_CANNOT_POST_TO_CONTROL_ACCOUNT",
        ),
        (
            lambda: journal("J-4", ("7777", "1.00"), ("4100", "-1.00")),
            "GLACCOUNT_IS_NOT_POSTING_OR_DOES_NOT_EXIST",
        ),
        (
            lambda: journal("J-5", ("2400", "1.00"), ("4100", "-1.00")).model_copy(
                update={"ExternalReference": ""}
            ),
            "JOURNAL_ENTRY_MUST_HAVE_A_REFERENCE",
        ),
        (
            lambda: journal("J" * 51, ("2400", "1.00"), ("4100", "-1.00")),
            "JOURNAL_ENTRY_REFERENCE_IS_TOO_LONG",
        ),
        (
            lambda: journal("J-7", ("2400", "1.00"), ("4100", "-1.00"), when=datetime(2025, 1, 31)),
            "GENERAL_LEDGER_ALREADY_CLOSED",
        ),
        (
            lambda: journal("J-8", ("2400", "1.00"), ("4100", "-1.00"), when=datetime(2024, 12, 31)),
            "DATE_IS_OUT_OF_RANGE",
        ),
        (
            lambda: journal("J-9", ("2400", "1.00"), ("4100", "-1.00"), department="NOPE"),
            "DEPARTMENT_ID_DOES_NOT_EXIST",
        ),
    ],
)
def test_journal_validation_rules(
    gateway: AiqGateway, shared_sandbox: Sandbox, build: Any, error_code: str
) -> None:
    bad = build()
    with pytest.raises(AiqBusinessError) as refused:
        gateway.create_general_journal(bad)
    assert refused.value.error_code == error_code
    assert shared_sandbox.documents(external_reference=bad.ExternalReference) == []


def test_journal_negative_debit_is_refused(gateway: AiqGateway) -> None:
    bad = journal("J-NEG", ("2400", "0"), ("4100", "0"))
    bad.Lines[0].Debit = Decimal("-1")
    with pytest.raises(AiqBusinessError) as refused:
        gateway.create_general_journal(bad)
    assert refused.value.error_code == "JOURNAL_ENTRY_CANNOT_HAVE_NEGATIVE_AMOUNTS"


def test_journal_in_debit_credit_form_is_accepted(gateway: AiqGateway) -> None:
    legacy = journal("J-DC", ("2400", "0"), ("4100", "0"))
    legacy.Lines[0].Debit, legacy.Lines[1].Credit = Decimal("5.00"), Decimal("5.00")
    assert postings(gateway, gateway.create_general_journal(legacy)) == [
        ("2400", "Net", Decimal("5.00")),
        ("4100", "Net", Decimal("-5.00")),
    ]


# --- periods, terms, currencies, balances -------------------------------------------------------


def test_periods_say_which_ledgers_are_closed(gateway: AiqGateway) -> None:
    periods = {(p.FinancialYear, p.PeriodNumber): p for p in gateway.get_periods()}
    january, june = periods[(2025, 1)], periods[(2026, 6)]
    assert (
        not january.is_open("Sales") and not january.is_open("General") and not january.is_open("Purchases")
    )
    assert not periods[(2025, 2)].is_open("Sales") and periods[(2025, 2)].is_open("General")
    assert (
        june.is_open("Sales")
        and june.StartDate == datetime(2026, 6, 1)
        and june.EndDate == datetime(2026, 6, 30)
    )
    assert len(periods) == 36


def test_credit_terms_and_currencies(gateway: AiqGateway) -> None:
    terms = {t.Code: t for t in gateway.get_credit_terms()}
    assert (terms["30D"].CreditDays, terms["EOM30"].EndOfMonth) == (30, True)
    assert gateway.get_currencies() == ["EUR", "GBP", "USD"]


def test_balances_follow_postings_and_credit_limits(shared_sandbox: Sandbox) -> None:
    gateway = gateway_for(shared_sandbox)
    coral = gateway.get_customer("CORAL03")
    assert coral is not None and coral.CreditLimit == Decimal("2500")
    before = gateway.customer_balances(DAY, ["CORAL03"])[0].Balance
    gateway.create_batch_sales_invoice(invoice("BAL-1", line("2500.00", "500.00"), customer="CORAL03"))
    after = gateway.account_balances(DAY, [coral.AccountID])[0]
    assert after.Balance == before + Decimal("3000.00")
    assert after.OverCreditLimitBalance == after.Balance - Decimal("2500") and after.CreditLeft == 0
    assert gateway.customer_balances(datetime(2026, 1, 1), ["CORAL03"])[0].Balance == 0  # as of before
    with pytest.raises(AiqBusinessError) as refused:
        gateway.customer_balances(DAY, [])
    assert refused.value.error_code == "NO_CUSTOMER_CODES_PROVIDED"


# --- bulk ------------------------------------------------------------------------------------------


def test_bulk_batch_invoices_map_each_row_and_one_bad_row_sinks_nothing(
    gateway: AiqGateway, shared_sandbox: Sandbox
) -> None:
    rows = gateway.create_batch_sales_invoices(
        [
            invoice("BULK-1", line("10.00", "2.00")),
            invoice("BULK-2", line("10.00", "2.00", tax_code="ZZ")),
            invoice("BULK-3", line("10.00", "2.00"), customer="NOSUCH"),
            invoice("BULK-4", line("20.00", "4.00")),
        ]
    )
    assert [(r.ok, r.error_code) for r in rows] == [
        (True, "SUCCESS"),
        (False, "TAX_CODE_DOES_NOT_EXIST"),
        (False, "CUSTOMER_CODE_DOES_NOT_EXIST"),
        (True, "SUCCESS"),
    ]
    for reference, row in zip(("BULK-1", "BULK-2", "BULK-3", "BULK-4"), rows, strict=True):
        documents = shared_sandbox.documents(external_reference=reference)
        assert [d["transaction_id"] for d in documents] == ([row.transaction_id] if row.ok else [])


def test_transactions_between_sweeps_every_page_with_filters(gateway: AiqGateway) -> None:
    from tests.test_gateway_sandbox import invoice, line

    day = datetime(2026, 10, 7)
    batch = []
    for n in range(1050):  # more than one page of 1,000
        document = invoice(f"SWEEP-{n}", line("1.00", None))
        document.InvoiceDate = day
        batch.append(document)
    for start in range(0, len(batch), 250):
        assert all(row.ok for row in gateway.create_batch_sales_invoices(batch[start : start + 250]))
    gateway.create_general_journal(journal("SWEEP-GJ", ("2400", "1.00"), ("4100", "-1.00"), when=day))
    swept = list(gateway.transactions_between(day, day, types=["SI"]))
    references = [t.ExternalReference for t in swept]
    assert len(references) == len(set(references)) == 1050
    assert {f"SWEEP-{n}" for n in range(1050)} == set(references)
    everything = {t.ExternalReference for t in gateway.transactions_between(day, day)}
    assert "SWEEP-GJ" in everything
    later = datetime.now() + timedelta(days=1)
    assert (
        list(gateway.transactions_between(day, day, created_from=later, created_to=later + timedelta(days=1)))
        == []
    )
