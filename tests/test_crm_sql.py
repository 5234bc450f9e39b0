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

from aiq_flows.domain.watermark import Watermark
from aiq_flows.sources.crm_sql import CrmCustomer, CrmSale, CrmSaleLine, SqlCrm
from tests.conftest import POSTGRES_URL

NOON = datetime(2026, 11, 20, 12, 0)


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
    _seed(crm)

    first, second = crm.changed_sales(Watermark.beginning(), timedelta(0), limit=2)

    assert first == {
        "sale_id": 1,
        "reference": "SO-1",
        "sale_date": date(2026, 11, 19),
        "currency": "GBP",
        "description": "Support",
        "updated_at": NOON,
        "service_start": date(2026, 12, 1),
        "service_end": date(2027, 11, 30),
        "credited": False,
        "invoice_kind": "item",
        "customer": {
            "key": "acme-01",
            "name": "Acme Ltd",
            "email": "ap@acme.example",
            "phone": "+44 20 7946 0000",
            "address1": "1 High Street",
            "city": "Leeds",
            "postcode": "LS1 1AA",
            "country": "United Kingdom",
        },
        "lines": [
            {
                "line_no": 1,
                "description": "first",
                "gl_account_code": "4100",
                "tax_code": "T1",
                "net_amount": Decimal("100.125"),  # not rounded: validation refuses it, naming the field
                "tax_amount": Decimal("20.03"),
                "department_id": "LDN",
            },
            {
                "line_no": 2,
                "description": "second",
                "gl_account_code": "4000",
                "tax_code": "T1",
                "net_amount": Decimal("10.50"),
                "tax_amount": Decimal("2.10"),
                "department_id": None,
            },
        ],
    }
    assert (second["sale_id"], second["customer"], second["lines"]) == (2, None, [])


def test_pages_continue_after_the_last_sale_read_through_equal_timestamps(crm: SqlCrm) -> None:
    _seed(crm)
    seen: list[int] = []
    after: Watermark | None = None
    while page := crm.changed_sales(Watermark.beginning(), timedelta(0), limit=3, after=after):
        seen += [sale["sale_id"] for sale in page]
        after = Watermark(page[-1]["updated_at"], page[-1]["sale_id"])

    assert seen == [1, 2, 3, 4, 5, 6, 7]
    assert [sale["sale_id"] for sale in crm.sales_between(date(2026, 11, 19), date(2026, 11, 19))] == [1]
