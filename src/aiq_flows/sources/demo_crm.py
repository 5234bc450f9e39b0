"""Realistic demo data for the SQL CRM: customers old and new to AIQ, several tax codes, and a
few deliberately bad rows so that every path of the sync shows up in the demo's report."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.orm import Session

from aiq_flows.sources.crm_sql import CrmCustomer, CrmSale, CrmSaleLine, SqlCrm

# (account key, name, email, city). The first three already exist in the sandbox's DEMO_UK.
CUSTOMERS = [
    ("acme01", "Acme Industries plc", "accounts@acme.example", "Leeds"),
    ("bright02", "Brightside Cafes Ltd", "ap@brightside.example", "Bristol"),
    ("coral03", "Coral Analytics", "finance@coral.example", "London"),
    ("delta logistics", "Delta Logistics Ltd", "invoices@delta.example", "Hull"),
    ("Everest-Outdoor", "Everest Outdoor Ltd", "ledger@everest.example", "Kendal"),
    ("fern&co", "Fern & Co Gardens", "hello@fern.example", "Norwich"),
    ("granite.works", "Granite Works", "accounts@granite.example", "Aberdeen"),
    (
        "harbour-view-hotels-group-international-holdings-2026",
        "Harbour View Hotels",
        "ap@harbour.example",
        "Brighton",
    ),
    ("ionic labs", "Ionic Labs", "finance@ionic.example", "Cambridge"),
    ("juniper", "Juniper Print", "not-an-email", "Derby"),  # AIQ refuses the email: a failed row
]
PRODUCTS = [
    ("Consulting day", "4010", "T1", Decimal("650.00")),
    ("Support subscription (monthly)", "4100", "T1", Decimal("120.00")),
    ("Printed manuals", "4000", "T0", Decimal("18.50")),
    ("Domestic energy surcharge", "4000", "T5", Decimal("42.10")),
    ("Training course", "4010", "EX", Decimal("395.00")),
    ("Hardware kit", "4000", "T1", Decimal("249.99")),
]
RATES = {"T1": Decimal("0.20"), "T5": Decimal("0.05"), "T0": Decimal("0"), "EX": Decimal("0")}
CENT = Decimal("0.01")
DEFERRED_EVERY = 25


@dataclass(frozen=True)
class DemoSummary:
    customers: int
    sales: int
    bad_rows: dict[int, str]  # sale id -> the kind of bad input planted there


def _line(rng: random.Random, line_no: int) -> CrmSaleLine:
    description, gl, tax_code, price = rng.choice(PRODUCTS)
    quantity = rng.randint(1, 5)
    net = (price * quantity).quantize(CENT)
    return CrmSaleLine(
        line_no=line_no,
        description=f"{description} x{quantity}",
        gl_account_code=gl,
        tax_code=tax_code,
        net_amount=net,
        tax_amount=(net * RATES[tax_code]).quantize(CENT, ROUND_HALF_UP),
    )


def _spoil(sale: CrmSale, kind: str, today: date) -> None:
    """The kinds of bad input a real CRM export contains."""
    first = sale.lines[0]
    match kind:
        case "negative_amount":
            first.net_amount = Decimal("-50.00")
        case "unknown_tax_code":
            first.tax_code = "ZZ"
        case "missing_description":
            first.description = "   "
        case "no_lines":
            sale.lines.clear()
        case "wrong_vat":
            first.tax_amount = (first.net_amount or Decimal(0)) * Decimal("0.5")
        case "bad_currency":
            sale.currency = "EURO"
        case "closed_period":  # valid data, but AIQ refuses the date: a failed row, not quarantine
            sale.sale_date = date(2025, 2, 14)
        case _:
            raise ValueError(kind)


BAD_ROWS = (
    "negative_amount",
    "unknown_tax_code",
    "missing_description",
    "no_lines",
    "wrong_vat",
    "bad_currency",
    "closed_period",
)


def seed_demo_crm(
    crm: SqlCrm, *, sales: int = 240, seed: int = 2026, today: date | None = None, start_id: int = 1
) -> DemoSummary:
    """Create the schema and add `sales` demo sales (ids from `start_id`)."""
    crm.create_schema()
    rng = random.Random(seed)
    today = today or date.today()
    now = datetime.combine(today, datetime.min.time()) + timedelta(hours=6)
    with Session(crm.engine) as session, session.begin():
        customers = []
        for number, (key, name, email, city) in enumerate(CUSTOMERS, start=1):
            customer = session.get(CrmCustomer, number) or CrmCustomer(
                id=number,
                account_key=key,
                name=name,
                email=email,
                city=city,
                country="United Kingdom",
                postcode=f"AB{number} {number}CD",
                address1=f"{number} High Street",
                updated_at=now - timedelta(days=90),
            )
            session.add(customer)
            customers.append(customer)
        step = max(1, (sales - 8) // len(BAD_ROWS))  # spread over the whole range
        bad = {start_id + 7 + step * i: kind for i, kind in enumerate(BAD_ROWS) if 7 + step * i < sales}
        for sale_id in range(start_id, start_id + sales):
            sale_date = today - timedelta(days=rng.randint(1, 45))
            customer = rng.choice(customers)
            sale = CrmSale(
                id=sale_id,
                reference=f"SO-{sale_id:06d}",
                customer=customer,
                sale_date=sale_date,
                currency="GBP",
                description=f"Order SO-{sale_id:06d} for {customer.name}",
                updated_at=now - timedelta(minutes=sales - sale_id + start_id),
            )
            sale.lines = [_line(rng, n) for n in range(1, rng.randint(1, 4) + 1)]
            if sale_id in bad:
                _spoil(sale, bad[sale_id], today)
            elif sale_id % DEFERRED_EVERY == 0:  # an annual subscription: revenue deferred over 12 months
                sale.service_start, sale.service_months = sale_date.replace(day=1), 12
            session.add(sale)
    return DemoSummary(customers=len(CUSTOMERS), sales=sales, bad_rows=bad)
