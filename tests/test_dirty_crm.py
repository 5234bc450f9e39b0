"""One bad row never stops the night, and never reaches AIQ in a wrong form.

A CRM as messy as real ones (text in date columns, "£12.00" in amounts, control characters,
impossible service periods, two customers whose keys normalise to one AIQ code) beside good
sales, synced end to end against the sandbox under a real Prefect API; faults inside a posting
chunk; and a property test that throws arbitrary values at every column, from the CRM read
through validation to the SOAP envelope.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import zeep
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from aiq_flows.domain.sales import ReferenceData, Rejection, Sale, validate_sale
from aiq_flows.domain.values import date_value, decimal_value
from aiq_flows.domain.watermark import Watermark
from aiq_flows.gateway.client import unsendable
from aiq_flows.gateway.models import BatchSalesInvoice, Invoice
from aiq_flows.gateway.wsdl import packaged_wsdl_path
from aiq_flows.sources.crm_sql import SqlCrm
from aiq_flows.sources.demo_crm import seed_demo_crm
from aiq_flows.sources.demo_dirty_rows import COLLIDING_KEYS, insert_rows, plant_dirty_rows
from tasks.invoices import batch_invoice, item_invoice
from tests.conftest import DemoBlocks
from tests.support.processes import Sandbox
from tests.test_crm_sql import demo_source
from tests.test_nightly_sales_sync import (
    _paused_run,
    assert_each_posted_sale_exists_once,
    crm_sales,
    run_sync,
)

TODAY = date(2026, 11, 25)
GOOD = 50
PER_KIND = 30  # 30 of each kind: about 900 dirty rows beside the 50 good sales


def test_a_dirty_crm_never_stops_the_night_and_nothing_bad_reaches_aiq(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    crm = SqlCrm(demo_blocks.crm_url)
    seed_demo_crm(crm, sales=GOOD, today=TODAY)
    dirty = plant_dirty_rows(crm, start_id=10_001, per_kind=PER_KIND, today=TODAY)
    total = GOOD + len(dirty.kinds) + len(dirty.colliding)

    summary = run_sync(demo_blocks, chunk_size=50)

    assert summary["input"] == total
    assert sum(v for k, v in summary.items() if k != "input") == total  # every sale, one outcome
    sales = written_back(crm)
    for sale_id, kind in dirty.kinds.items():
        sale = sales[sale_id]
        status = {"created": "posted", "quarantined": "quarantined", "held": "pending"}[kind.outcome]
        assert sale.aiq_status == status, (kind.name, sale.aiq_message)
        message = sale.aiq_message or ""
        if kind.outcome != "created":
            # A finance user's sentence: the record, the field, the rule and the value.
            assert message.startswith(f"sale 'DIRTY-{sale_id}' (id {sale_id}): ") or kind.name == (
                "reference_too_long"
            ), message
            assert kind.says in message, (kind.name, message)
        if kind.field is not None:
            assert f"): {kind.field}: " in message, (kind.name, message)
    for sale_id in dirty.colliding:
        sale = sales[sale_id]
        assert sale.aiq_status == "quarantined"
        assert all(repr(k) in (sale.aiq_message or "") for k in COLLIDING_KEYS), sale.aiq_message

    # Nothing bad in AIQ: exactly the posted sales, each once, each for what the CRM says.
    posted = posted_once(sandbox, crm)
    documents = {d["external_reference"]: d for d in sandbox.documents()}
    for sale_id, gross in posted.items():
        assert Decimal(documents[f"S-{sale_id}"]["control_amount"]) == gross
    for sale_id, kind in dirty.kinds.items():
        if kind.name in ("date_day_first", "date_timestamp"):  # read as the date the CRM means
            assert documents[f"S-{sale_id}"]["transaction_date"].startswith("2026-11-20")
    counts = Counter(kind.outcome for kind in dirty.kinds.values())
    assert summary["held"] == counts["held"]
    assert summary["quarantined"] >= counts["quarantined"] + len(dirty.colliding)

    again = run_sync(demo_blocks, chunk_size=50)
    assert again["created"] == 0
    assert len(sandbox.documents()) == len(documents)


@dataclass(frozen=True)
class WrittenBack:
    aiq_status: str | None
    aiq_message: str | None
    aiq_transaction_id: int | None


def written_back(crm: SqlCrm) -> dict[int, WrittenBack]:
    """What the sync wrote to each sale (read as plain SQL: the ORM cannot read a dirty row)."""
    with crm.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, aiq_status, aiq_message, aiq_transaction_id FROM crm_sales")
        )
        return {row.id: WrittenBack(row.aiq_status, row.aiq_message, row.aiq_transaction_id) for row in rows}


def posted_once(sandbox: Sandbox, crm: SqlCrm) -> dict[int, Decimal]:
    """Every sale the CRM records as posted has exactly one AIQ document, the one written back,
    and no other sale has one; the ledger balances. {sale id: its gross as the CRM holds it}."""
    documents = sandbox.documents()
    assert not [ref for ref, n in Counter(d["external_reference"] for d in documents).items() if n > 1]
    ids = {d["external_reference"]: d["transaction_id"] for d in documents}
    posted = {sale_id: sale for sale_id, sale in written_back(crm).items() if sale.aiq_status == "posted"}
    assert set(ids) == {f"S-{sale_id}" for sale_id in posted}
    assert all(sale.aiq_transaction_id == ids[f"S-{sale_id}"] for sale_id, sale in posted.items())
    assert sum(Decimal(v) for v in sandbox.trial_balance().values()) == 0
    gross: dict[int, Decimal] = dict.fromkeys(posted, Decimal(0))
    with crm.engine.connect() as connection:
        for line in connection.execute(text("SELECT sale_id, net_amount, tax_amount FROM crm_sale_lines")):
            if line.sale_id in gross:
                gross[line.sale_id] += decimal_value(line.net_amount) + decimal_value(line.tax_amount)
    return gross


def test_a_customer_code_taken_by_one_crm_customer_is_never_given_to_another(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    crm = SqlCrm(demo_blocks.crm_url)
    crm.create_schema()
    _sale(crm, 1, "Zeta Traders", customer_id=1)
    run_sync(demo_blocks)
    assert written_back(crm)[1].aiq_status == "posted"

    _sale(crm, 2, "ZETA-TRADERS", customer_id=2)  # a second CRM customer, the same AIQ code
    _sale(crm, 3, "Zeta Traders", customer_id=1)
    summary = run_sync(demo_blocks)

    sales = written_back(crm)
    assert (summary["created"], summary["quarantined"]) == (1, 1)
    assert sales[3].aiq_status == "posted"
    assert sales[2].aiq_status == "quarantined"
    assert "which belongs to CRM customer 'Zeta Traders'" in (sales[2].aiq_message or "")
    assert {d["account_code"] for d in sandbox.documents()} == {"ZETA-TRADERS"}
    assert len(sandbox.documents()) == 2


def _sale(crm: SqlCrm, sale_id: int, key: str, *, customer_id: int, net: str = "100.00") -> None:
    midnight = datetime.combine(TODAY, datetime.min.time())
    with crm.engine.begin() as connection:
        if not connection.execute(
            text("SELECT 1 FROM crm_customers WHERE id = :id"), {"id": customer_id}
        ).all():
            customer = {
                "id": customer_id,
                "account_key": key,
                "name": f"{key} Ltd",
                "updated_at": str(midnight),
            }
            insert_rows(connection, "crm_customers", [customer])
        sale = {
            "id": sale_id,
            "reference": f"SO-{sale_id}",
            "customer_id": customer_id,
            "sale_date": (TODAY - timedelta(days=2)).isoformat(),
            "currency": "GBP",
            "description": f"Order {sale_id}",
            "updated_at": str(midnight + timedelta(minutes=sale_id)),
        }
        insert_rows(connection, "crm_sales", [sale])
        line = {
            "sale_id": sale_id,
            "line_no": 1,
            "description": "Consulting",
            "gl_account_code": "4010",
            "tax_code": "T1",
            "net_amount": net,
            "tax_amount": str(Decimal(net) * Decimal("0.2")),
        }
        insert_rows(connection, "crm_sale_lines", [line])


def test_a_sale_above_max_invoice_total_is_held_and_an_approval_run_posts_it(
    sandbox: Sandbox, demo_blocks: DemoBlocks
) -> None:
    from prefect.flow_runs import resume_flow_run

    crm = SqlCrm(demo_blocks.crm_url)
    crm.create_schema()
    _sale(crm, 1, "acme01", customer_id=1, net="100.00")
    _sale(crm, 2, "acme01", customer_id=1, net="90000.00")

    summary = run_sync(demo_blocks, max_invoice_total=Decimal("50000"))

    sales = written_back(crm)
    assert (summary["created"], summary["held"]) == (1, 1)
    assert sales[2].aiq_status == "pending"
    assert "above this deployment's max_invoice_total (50000): held for approval" in (
        sales[2].aiq_message or ""
    )
    assert [d["external_reference"] for d in sandbox.documents()] == ["S-1"]

    result: dict[str, Any] = {}
    run = threading.Thread(
        target=lambda: result.update(run_sync(demo_blocks, approval=True, max_invoice_total=Decimal("50000")))
    )
    run.start()
    paused = _paused_run()
    resume_flow_run(
        paused.id, run_input={"approved": True, "approver": "cfo", "confirmation": "POST 1 INVOICES"}
    )
    run.join(timeout=120)
    assert result["created"] == 1
    assert written_back(crm)[2].aiq_status == "posted"
    assert sorted(d["external_reference"] for d in sandbox.documents()) == ["S-1", "S-2"]


# --- faults inside a posting chunk ---------------------------------------------------------------


def test_one_sale_whose_invoice_cannot_be_built_fails_alone(
    sandbox: Sandbox, demo_blocks: DemoBlocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.invoices

    crm = SqlCrm(demo_blocks.crm_url)
    seed_demo_crm(crm, sales=30, today=TODAY)
    broken = 12
    build = tasks.invoices.batch_invoice

    def faulty(template: Any, sale: Sale, *args: Any) -> Any:
        if sale.sale_id == broken:
            raise ZeroDivisionError("a bug while building this one invoice")
        return build(template, sale, *args)

    monkeypatch.setattr(tasks.invoices, "batch_invoice", faulty)
    summary = run_sync(demo_blocks, chunk_size=10)

    sales = crm_sales(crm)
    assert sales[broken].aiq_status == "failed"
    assert "DOCUMENT_NOT_BUILT: ZeroDivisionError: a bug while building this one invoice" in (
        sales[broken].aiq_message or ""
    )
    chunk_mates = [s for sale_id, s in sales.items() if 11 <= sale_id <= 20 and sale_id != broken]
    assert any(s.aiq_status == "posted" for s in chunk_mates)
    assert all(s.aiq_status is not None for s in sales.values())  # every sale written back
    assert sum(v for k, v in summary.items() if k != "input") == summary["input"] == 30
    assert_each_posted_sale_exists_once(sandbox, crm)


def test_a_chunk_that_fails_as_a_whole_leaves_its_sales_pending_and_the_others_written_back(
    sandbox: Sandbox, demo_blocks: DemoBlocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.invoices import InvoicePoster

    crm = SqlCrm(demo_blocks.crm_url)
    seed_demo_crm(crm, sales=30, today=TODAY)
    post_many = InvoicePoster.post_many

    def outage(self: InvoicePoster, sales: list[Sale], *args: Any, **kwargs: Any) -> Any:
        if any(sale.sale_id == 12 for sale in sales):
            raise ConnectionError("the store went away mid-chunk")
        return post_many(self, sales, *args, **kwargs)

    monkeypatch.setattr(InvoicePoster, "post_many", outage)
    summary = run_sync(demo_blocks, chunk_size=10)

    sales = crm_sales(crm)
    stuck = {sale_id for sale_id, s in sales.items() if "its posting chunk failed" in (s.aiq_message or "")}
    assert 12 in stuck and len(stuck) <= 10
    assert all(sales[sale_id].aiq_status == "pending" for sale_id in stuck)
    others = [s for sale_id, s in sales.items() if sale_id not in stuck]
    assert all(s.aiq_status in ("posted", "quarantined", "failed") for s in others)
    assert all(s.aiq_transaction_id for s in others if s.aiq_status == "posted")  # written back
    assert sum(v for k, v in summary.items() if k != "input") == 30
    assert_each_posted_sale_exists_once(sandbox, crm)

    monkeypatch.setattr(InvoicePoster, "post_many", post_many)
    run_sync(demo_blocks, chunk_size=10)  # the pending sales go out once, and only they
    sales = crm_sales(crm)
    assert all(sales[sale_id].aiq_status in ("posted", "quarantined", "failed") for sale_id in stuck)
    assert_each_posted_sale_exists_once(sandbox, crm)


def test_the_gateway_sends_a_bulk_call_without_the_one_invoice_xml_cannot_carry(sandbox: Sandbox) -> None:
    from tests.test_gateway_sandbox import gateway_for, invoice, line

    gateway = gateway_for(sandbox)
    good = invoice("X-1", line("100.00", "20.00"))
    bad = invoice("X-2", line("100.00", "20.00", description="Kit\x0bbox"))

    rows = gateway.create_batch_sales_invoices([good, bad])

    assert rows[0].ok and rows[0].transaction_id
    assert (rows[1].status, rows[1].error_code) == ("NotSent", "REQUEST_NOT_SENDABLE")
    assert "Lines.BatchSalesInvoiceLine[1].Description: character U+000B" in (rows[1].error_message or "")
    assert [d["external_reference"] for d in sandbox.documents()] == ["X-1"]


# --- the property: arbitrary values in every column --------------------------------------------------

REFERENCE = ReferenceData(
    tax_rates={"T1": Decimal("0.20"), "T0": Decimal(0)},
    gl_codes=frozenset({"4000", "4010"}),
    periods=(date(2025, 1, 1), date(2027, 12, 31)),
)
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
_SOMETHING = st.one_of(
    _TEXT,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.dates().map(str),
    st.datetimes().map(str),
    st.binary(max_size=6),
    st.sampled_from(
        ["£12.00", "1,234.56", "NaN", "31/12/2026", "yesterday", "\x07", "-1", "1e400", "100000"]
    ),
)
_ANYTHING = st.none() | _SOMETHING
_NOT_NULL = _SOMETHING.filter(lambda value: not (isinstance(value, float) and math.isnan(value)))  # NaN: NULL


def _often_wild(good: dict[str, Any], not_null: tuple[str, ...] = ()) -> st.SearchStrategy[dict[str, Any]]:
    """A good record whose every column is, one time in twenty-five, anything at all: enough valid
    sales reach the envelope, and every column is sometimes wild. A NOT NULL column never holds
    NULL: the database itself refuses that."""

    def column(name: str, value: Any) -> st.SearchStrategy[Any]:
        wild = _NOT_NULL if name in not_null else _ANYTHING
        return st.integers(0, 24).flatmap(lambda roll: st.just(value) if roll else wild)

    return st.fixed_dictionaries({name: column(name, value) for name, value in good.items()})


_NO_SERVICE = {"service_start": None, "service_end": None, "service_months": None}
_GOOD_SALES = [
    {
        "reference": "SO-1",
        "sale_date": "2026-11-20",
        "currency": "GBP",
        "description": "Order",
        **_NO_SERVICE,
    },
    {
        "reference": " so 2 ",
        "sale_date": "20/11/2026",
        "currency": "gbp",
        "description": "Café – Zürich ✓",
        **_NO_SERVICE,
        "service_start": "2026-11-01",
        "service_months": "12",
    },
    {
        "reference": "Ref\twith tab",
        "sale_date": "2026-11-20 00:00:00",
        "currency": "GBP",
        "description": "x" * 500,
        "service_start": "2026-11-01",
        "service_end": "2027-10-31",
        "service_months": 12,
    },
]
_GOOD_LINES = [
    {
        "line_no": 1,
        "description": "Consulting",
        "gl_account_code": "4000",
        "tax_code": "T1",
        "net_amount": "100.00",
        "tax_amount": "20.00",
        "department_id": None,
    },
    {
        "line_no": "2",
        "description": "Line\nbreak",
        "gl_account_code": " 4010 ",
        "tax_code": "t0",
        "net_amount": 99.5,
        "tax_amount": 0,
        "department_id": "LDN",
    },
]
SALES = st.sampled_from(_GOOD_SALES).flatmap(
    lambda good: _often_wild(
        {**good, "updated_at": "2026-11-20 06:00:00.000000", "credited_at": None, "invoice_kind": "batch"},
        not_null=("updated_at",),
    )
)
_LINE = st.sampled_from(_GOOD_LINES).flatmap(lambda good: _often_wild(good, not_null=("line_no",)))
# A sale without lines one time in ten.
LINES = st.integers(0, 9).flatmap(
    lambda roll: st.lists(_LINE, min_size=1, max_size=3) if roll else st.just([])
)
CUSTOMERS = _often_wild(
    {"account_key": "Zeta Traders", "name": "Ünïcode Ltd", "email": None, "city": "Leeds"},
    not_null=("account_key",),
)
_WSDL = zeep.Client(str(packaged_wsdl_path("1.1")))


@dataclass(frozen=True)
class Templates:
    batch: BatchSalesInvoice
    item: Invoice


@pytest.fixture(scope="module")
def templates(shared_sandbox: Sandbox) -> Templates:
    """AIQ's own templates for a customer (read once): what the sync fills in and sends."""
    from tests.test_gateway_sandbox import gateway_for

    gateway = gateway_for(shared_sandbox)
    try:
        return Templates(gateway.new_batch_sales_invoice("ACME01"), gateway.new_sales_invoice("ACME01"))
    finally:
        gateway.close()


@pytest.fixture(scope="module")
def property_crm(tmp_path_factory: pytest.TempPathFactory) -> SqlCrm:
    crm = SqlCrm(f"sqlite:///{tmp_path_factory.mktemp('property') / 'crm.db'}")
    crm.create_schema()
    return crm


def _insert(crm: SqlCrm, sale: dict[str, Any], lines: list[dict[str, Any]], customer: dict[str, Any]) -> None:
    with crm.engine.begin() as connection:
        for table in ("crm_sale_lines", "crm_sales", "crm_customers"):
            connection.execute(text(f"DELETE FROM {table}"))
        insert_rows(connection, "crm_customers", [{"id": 7, "updated_at": 0, **customer}])
        insert_rows(connection, "crm_sales", [{"id": 1, "customer_id": 7, **sale}])
        insert_rows(connection, "crm_sale_lines", [{"sale_id": 1, **line} for line in lines])


def _envelope(operation: str, **body: Any) -> None:
    """The SOAP envelope zeep would send (built, not sent), after the gateway's own check."""
    assert unsendable(body) is None
    _WSDL.create_message(_WSDL.service, operation, token="t", **body)


def check_one_record(
    crm: SqlCrm,
    templates: Templates,
    sale: dict[str, Any],
    lines: list[dict[str, Any]],
    customer: dict[str, Any],
) -> str:
    """One generated CRM row through read -> validate -> the SOAP envelopes; what became of it."""
    _insert(crm, sale, lines, customer)

    source = demo_source(crm)
    page = source.changed_sales(Watermark.beginning(), timedelta(0), limit=10)  # never raises
    source.changed_window(Watermark.beginning(), timedelta(0))  # nor does this
    [record] = page.records
    result = validate_sale(record, REFERENCE)

    if isinstance(result, Rejection):
        assert result.field and result.rule
        assert result.message.startswith("sale ") and f": {result.field}: " in result.message
        return f"refused: {result.field}"
    assert isinstance(result, Sale)
    for raw, line in zip(record["lines"], result.lines, strict=True):
        assert line.net_amount == decimal_value(raw["net_amount"])  # exactly as stored, never rounded
    assert result.sale_date == date_value(record["sale_date"])
    invoice = batch_invoice(templates.batch, result, REFERENCE, "2400")
    _envelope(
        "CreateBatchSalesInvoiceBulkGetBackTransactionIDs",
        invoices={"BatchSalesInvoice": [invoice.to_soap()]},
    )
    draft = item_invoice(templates.item, result, "2400")
    _envelope("CreateInvoicesGetBackInvoiceIDs", invoices={"Invoice": [draft.to_soap()]})
    return "valid: its envelopes built"


# A few hundred examples in `make test`; `bench/dirty_rows.py --examples N` runs many more.
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sale=SALES, lines=LINES, customer=CUSTOMERS)
def test_any_value_in_any_column_ends_in_one_outcome_naming_its_field(
    property_crm: SqlCrm,
    templates: Templates,
    sale: dict[str, Any],
    lines: list[dict[str, Any]],
    customer: dict[str, Any],
) -> None:
    event(check_one_record(property_crm, templates, sale, lines, customer))


def test_the_plausible_values_alone_make_a_valid_sale(tmp_path: Path) -> None:
    """The property above is not all refusals: its plausible values make a valid sale."""
    crm = SqlCrm(f"sqlite:///{tmp_path / 'crm.db'}")
    crm.create_schema()
    _insert(
        crm,
        {
            **{
                key: None
                for key in ("service_start", "service_end", "service_months", "credited_at", "invoice_kind")
            },
            "reference": "SO-1",
            "sale_date": "20/11/2026",
            "currency": "gbp",
            "description": "Café – Zürich ✓",
            "updated_at": "2026-11-20T06:00:00Z",
        },
        [
            {
                "line_no": 1,
                "description": "Consulting",
                "gl_account_code": " 4010 ",
                "tax_code": "t1",
                "net_amount": 99.5,
                "tax_amount": "19.90",
                "department_id": None,
            }
        ],
        {"account_key": "Zeta Traders", "name": "Ünïcode Ltd", "email": None, "city": "Leeds"},
    )
    [record] = demo_source(crm).changed_sales(Watermark.beginning(), timedelta(0)).records
    sale = validate_sale(record, REFERENCE)
    assert isinstance(sale, Sale), sale
    assert (sale.sale_date, sale.currency, sale.lines[0].net_amount) == (
        date(2026, 11, 20),
        "GBP",
        Decimal("99.5"),
    )
    assert not math.isnan(float(sale.gross_total))
