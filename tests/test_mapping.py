"""The mapping contract: a wrong mapping is refused with one line naming the key (and the table
and column), before anything is read; a right one reads a CRM's own tables the way the flows do —
constants, a derived customer code, quantity x unit price, string ids paged without loss."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from aiq_flows.domain.sales import ReferenceData, Sale, validate_sale
from aiq_flows.domain.watermark import Watermark
from aiq_flows.sources.mapped_sql import MappedSqlSource
from aiq_flows.sources.mapping import MappingError, load_export_mapping, load_mapping
from tests.support.crm_shapes import DEALS, DEALS_MAPPING, ORDERS, deal_id

REFERENCE = ReferenceData({"T1": Decimal("0.20")}, frozenset({"4000", "4100"}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("version: 1", "version: 2"), "mapping: version: must be 1"),
        (("  changed_at: modified\n", ""), "mapping: sales.changed_at: is required"),
        (("  from: deals\n", "  from: deals\n  query: SELECT 1\n"), "mapping: sales: give exactly one of"),
        (
            ("    date: close_date", "    date: close_date\n    colour: stage"),
            "mapping: sales.columns.colour: is not a key",
        ),
        (("    quantity: qty\n", ""), "mapping: lines.columns: map net_amount, or quantity and unit_price"),
        (
            ('reference_prefix: "D-"', f'reference_prefix: "{"X" * 45}"'),
            "mapping: reference_prefix: give 1 to",
        ),
        (("sales:", "sales: ["), "mapping: not YAML at line"),
    ],
)
def test_a_wrong_mapping_is_refused_naming_its_key(change: tuple[str, str], message: str) -> None:
    with pytest.raises(MappingError) as refused:
        load_mapping(DEALS_MAPPING.replace(*change, 1))
    assert str(refused.value).startswith(message), refused.value
    assert "\n" not in str(refused.value)


def test_a_mapping_file_is_named_in_its_refusals(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(DEALS_MAPPING.replace("  id: deal_id\n", "", 1), encoding="utf-8")
    with pytest.raises(MappingError, match=r"^acme.yaml: sales.id: is required$"):
        load_mapping(str(path))
    with pytest.raises(MappingError, match=r"no file at"):
        load_mapping(str(tmp_path / "missing.yaml"))


@pytest.fixture
def deals_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'deals.db'}"
    engine = create_engine(url)
    DEALS.create(engine)
    engine.dispose()
    return url


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("  from: deals\n", "  from: deal\n"),
            "mapping: sales.from: no table or view 'deal' in the database",
        ),
        (
            ("    customer: company_id", "    customer: account"),
            "mapping: sales.columns.customer: no column 'account' in table 'deals' (it has: aiq_note,",
        ),
        (("stage = 'won'", "stag = 'won'"), "mapping: sales.where: the database refuses it: no such column"),
        (("  order_by: line_no", "  order_by: line"), "mapping: lines.order_by: no column 'line' in table"),
        (
            ("    email: billing_email", "    email: mail"),
            "mapping: customers.columns.email: no column 'mail'",
        ),
        (("status: aiq_status", "status: aiq_state"), "mapping: write_back.columns.status: no column"),
        (("  table: deals\n", "  table: deal\n"), "mapping: write_back.table: no table 'deal'"),
    ],
)
def test_a_mapping_that_does_not_fit_the_database_is_refused_naming_table_and_column(
    deals_url: str, change: tuple[str, str], message: str
) -> None:
    source = MappedSqlSource(deals_url, load_mapping(DEALS_MAPPING.replace(*change, 1)))
    try:
        with pytest.raises(MappingError) as refused:
            source.check()
        assert str(refused.value).startswith(message), refused.value
    finally:
        source.dispose()


def test_a_query_the_database_refuses_is_named(deals_url: str) -> None:
    mapping = DEALS_MAPPING.replace("  from: deal_lines\n", "  query: SELECT * FROM deal_lines WHERE\n")
    source = MappedSqlSource(deals_url, load_mapping(mapping))
    with pytest.raises(MappingError, match=r"^mapping: lines.query: the database refuses it: "):
        source.check()
    source.dispose()


def test_change_times_sqlite_cannot_order_are_refused_and_a_few_odd_ones_warned_of(deals_url: str) -> None:
    """Epoch numbers among SQLite's text timestamps sort before any watermark: a column of them
    would never show a change; a few odd rows are read while never synced, and said so."""
    engine = create_engine(deals_url)
    with engine.begin() as db:
        db.execute(text("DROP TRIGGER deals_stamp"))  # it would stamp each update as text
        db.execute(text("UPDATE deals SET modified = 1764849600 WHERE deal_id = :id"), {"id": deal_id(5)})
    source = MappedSqlSource(deals_url, load_mapping(DEALS_MAPPING))
    assert source.check() == [
        "sales.changed_at: 1 of 10 rows of column 'modified' hold values SQLite cannot order (such as "
        "1764849600): each is read while it is never synced, but a change after it is posted is not seen"
    ]
    with engine.begin() as db:
        db.execute(text("UPDATE deals SET modified = 1764849600"))
    engine.dispose()
    with pytest.raises(
        MappingError, match=r"^mapping: sales.changed_at: column 'modified' holds 1764849600 and 9"
    ):
        source.check()
    source.dispose()


def test_a_crms_own_shape_reads_into_sales(deals_url: str) -> None:
    """Constants fill what the CRM has no column for, the customer's code is derived from its
    name, a line's net is its quantity times its price and its tax the code's rate of it."""
    source = MappedSqlSource(deals_url, load_mapping(DEALS_MAPPING))
    page = source.changed_sales(Watermark.beginning(), timedelta(0))
    source.dispose()
    records = {record["sale_id"]: record for record in page.records}
    assert deal_id(4) not in records and deal_id(9) not in records  # where: stage = 'won'
    sale = validate_sale(records[deal_id(1)], REFERENCE)
    assert isinstance(sale, Sale), sale
    assert sale.external_reference == f"D-{deal_id(1)}"
    assert sale.customer.aiq_code == "FABRIKAM-LTD" and sale.customer.name == "Fabrikam Ltd"
    assert [(line.gl_account_code, line.net, line.tax) for line in sale.lines] == [
        ("4000", Decimal("299.98"), Decimal("60.00")),
        ("4000", Decimal("449.97"), Decimal("89.99")),
    ]


def test_string_ids_page_without_loss_or_repeat(deals_url: str) -> None:
    source = MappedSqlSource(deals_url, load_mapping(DEALS_MAPPING))
    seen, cursor = [], None
    while True:
        page = source.changed_sales(Watermark.beginning(), timedelta(0), limit=3, after=cursor)
        seen += [record["sale_id"] for record in page.records]
        if page.cursor is None:
            break
        cursor = page.cursor
    source.dispose()
    assert sorted(seen) == sorted([*DEALS.valid, *DEALS.quarantined]) and len(seen) == len(set(seen))


def test_a_read_only_view_lists_its_ids_for_the_store_to_compare(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'orders.db'}"
    engine = create_engine(url)
    ORDERS.create(engine)
    engine.dispose()
    source = MappedSqlSource(url, load_mapping(ORDERS.mapping))
    assert source.read_only
    assert [i for page in source.ids(page=4) for i in page] == sorted([*ORDERS.valid, *ORDERS.quarantined])
    assert source.write_back([]).records == 0
    source.dispose()


def test_an_export_mapping_names_the_headers_a_file_must_have() -> None:
    mapping = load_export_mapping(
        """
version: 1
sales:
  id: Invoice No
  columns: {reference: Invoice No, customer: Client, date: Date, currency: {value: GBP}, description: Item}
lines:
  columns: {description: Item, net_amount: Net, tax_code: VAT Code, gl_code: {value: "4000"}}
customers:
  columns: {name: Client}
"""
    )
    assert mapping.required_headers == {
        "Invoice No": "sales.id",
        "Client": "sales.columns.customer",
        "Date": "sales.columns.date",
        "Item": "sales.columns.description",
        "Net": "lines.columns.net_amount",
        "VAT Code": "lines.columns.tax_code",
    }
