"""The SQL CRM source read back as the domain sees it: every field of a sale, a sale without a
customer or without lines, a service period given in months, amounts padded by Numeric(18, 4),
and pages that continue after the last sale read — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from aiq_flows.domain.sales import ReferenceData, Sale, validate_sale
from aiq_flows.domain.values import date_value, datetime_value, decimal_value
from aiq_flows.domain.watermark import Watermark
from aiq_flows.mappings import DEMO_CRM
from aiq_flows.sources.crm_sql import CrmCustomer, CrmSale, CrmSaleLine, SqlCrm
from aiq_flows.sources.mapped_sql import MappedSqlSource
from aiq_flows.sources.mapping import load_mapping
from tests.conftest import POSTGRES_URL

NOON = datetime(2026, 11, 20, 12, 0)


def demo_source(crm: SqlCrm) -> MappedSqlSource:
    """The demo CRM read as any CRM is: through its mapping."""
    return MappedSqlSource(crm.engine.url.render_as_string(hide_password=False), load_mapping(DEMO_CRM))


REFERENCE = ReferenceData(tax_rates={"T1": Decimal("0.20")}, gl_codes=frozenset({"4000", "4100"}))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlCrm]:
    if request.param == "sqlite":
        source = SqlCrm(f"sqlite:///{tmp_path / 'crm.db'}")
        source.create_schema()
        yield source
        source.dispose()
        return
    import uuid

    import sqlalchemy

    schema = f"crm_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    except sqlalchemy.exc.OperationalError:
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    source = SqlCrm(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    source.create_schema()
    yield source
    source.dispose()
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def _seed(crm: SqlCrm) -> None:
    customer = CrmCustomer(
        id=1,
        account_key="acme-01",
        name="Acme Ltd",
        email="ap@acme.example",
        phone="+44 20 7946 0000",
        address1="1 High Street",
        city="Leeds",
        postcode="LS1 1AA",
        country="United Kingdom",
        updated_at=NOON,
    )
    with Session(crm.engine) as session, session.begin():
        session.add(customer)
        session.add(
            CrmSale(
                id=1,
                reference="SO-1",
                customer=customer,
                sale_date=date(2026, 11, 19),
                currency="GBP",
                description="Support",
                updated_at=NOON,
                service_start=date(2026, 12, 1),
                service_months=12,
                invoice_kind="item",
                lines=[
                    CrmSaleLine(
                        line_no=2,
                        description="second",
                        gl_account_code="4000",
                        tax_code="T1",
                        net_amount=Decimal("10.5"),
                        tax_amount=Decimal("2.1"),
                    ),
                    CrmSaleLine(
                        line_no=1,
                        description="first",
                        gl_account_code="4100",
                        tax_code="T1",
                        net_amount=Decimal("100.125"),
                        tax_amount=Decimal("20.03"),
                        department_id="LDN",
                    ),
                ],
            )
        )
        session.add(CrmSale(id=2, reference="SO-2", updated_at=NOON, currency="GBP"))  # no customer, no lines
        session.add_all(
            CrmSale(id=sale_id, reference=f"SO-{sale_id}", updated_at=NOON + timedelta(minutes=1))
            for sale_id in range(3, 8)
        )


def test_a_sale_reads_back_with_every_field_its_customer_and_its_lines_in_order(crm: SqlCrm) -> None:
    """The source hands over values as stored (SQLite keeps dates as text, PostgreSQL as dates);
    the domain reads them, each the same on both."""
    _seed(crm)

    page = demo_source(crm).changed_sales(Watermark.beginning(), timedelta(0), limit=2)
    first, second = page.records

    assert {key: date_value(first[key]) for key in ("sale_date", "service_start")} == {
        "sale_date": date(2026, 11, 19),
        "service_start": date(2026, 12, 1),
    }
    assert datetime_value(first["updated_at"]) == NOON
    assert (first["sale_id"], first["reference"], first["currency"], first["description"]) == (
        1,
        "SO-1",
        "GBP",
        "Support",
    )
    assert (first["service_end"], first["service_months"], first["credited_at"], first["invoice_kind"]) == (
        None,
        12,
        None,
        "item",
    )
    assert first["customer_ref"] == 1
    assert first["customer"] == {
        "key": "acme-01",
        "code": None,  # the demo's mapping derives each customer's AIQ code from its key
        "name": "Acme Ltd",
        "email": "ap@acme.example",
        "phone": "+44 20 7946 0000",
        "address1": "1 High Street",
        "city": "Leeds",
        "postcode": "LS1 1AA",
        "country": "United Kingdom",
    }
    assert [(line["line_no"], line["description"], line["department_id"]) for line in first["lines"]] == [
        (1, "first", "LDN"),
        (2, "second", None),
    ]
    # Amounts exactly as stored: never rounded on the way in, so a rule about decimals sees them.
    assert [decimal_value(line["net_amount"]) for line in first["lines"]] == [
        Decimal("100.125"),
        Decimal("10.5"),
    ]
    assert (second["sale_id"], second["customer"], second["customer_ref"], second["lines"]) == (
        2,
        None,
        None,
        [],
    )

    sale = validate_sale({**first, "lines": first["lines"][1:]}, REFERENCE)
    assert isinstance(sale, Sale)
    assert (sale.service_end, sale.invoice_kind, sale.lines[0].net_amount) == (
        date(2027, 11, 30),
        "item",
        Decimal("10.50"),
    )


def test_pages_continue_after_the_last_sale_read_through_equal_timestamps(crm: SqlCrm) -> None:
    _seed(crm)
    seen: list[int] = []
    after = None
    while True:  # a full page carries the cursor of the next; the last, none
        page = demo_source(crm).changed_sales(Watermark.beginning(), timedelta(0), limit=3, after=after)
        seen += [sale["sale_id"] for sale in page.records]
        if page.cursor is None:
            break
        after = page.cursor

    assert seen == [1, 2, 3, 4, 5, 6, 7]
    assert [
        sale["sale_id"] for sale in demo_source(crm).sales_between(date(2026, 11, 19), date(2026, 11, 19))
    ] == [1]
    assert demo_source(crm).changed_window(Watermark.beginning(), timedelta(0)) == (
        date(2026, 11, 19),
        date(2026, 11, 19),
    )


def test_a_demo_crm_of_an_earlier_release_gets_the_new_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, inspect, text

    from aiq_flows.sources.crm_sql import SqlCrm

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    with old.begin() as connection:  # crm_sales as release 0.2 made it, with one row
        connection.execute(
            text("CREATE TABLE crm_sales (id INTEGER PRIMARY KEY, updated_at DATETIME NOT NULL)")
        )
        connection.execute(text("INSERT INTO crm_sales VALUES (7, '2026-11-01 09:00:00')"))
    old.dispose()
    crm = SqlCrm(url)
    crm.create_schema()
    columns = {c["name"] for c in inspect(crm.engine).get_columns("crm_sales")}
    assert {"aiq_outstanding", "aiq_paid_at", "aiq_days_overdue", "aiq_status"} <= columns
    assert "crm_payments" in inspect(crm.engine).get_table_names()
    with crm.engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM crm_sales")).scalars().all() == [7]
    crm.create_schema()  # again: nothing to add
    crm.dispose()
