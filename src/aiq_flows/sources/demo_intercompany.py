"""Demo intercompany charges between the sandbox's three entities: DEMO_UK (GBP), DEMO_IE (EUR)
and DEMO_UK2 (GBP): management fees and recharges in both directions, same-currency and
cross-currency, plus a charge between two entities with no connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from aiq_flows.sources.intercompany_sql import ChargeLineRow, ChargeRow, SqlCharges

# (seller, buyer, currency, tax codes (sales, purchase), BI codes (seller, buyer))
ROUTES = (
    ("DEMO_UK", "DEMO_IE", "GBP", ("T0", "Z0"), ("GROUP", "GROUP")),  # cross-currency for the buyer
    ("DEMO_IE", "DEMO_UK", "EUR", ("Z0", "T0"), ("GROUP", "GROUP")),  # cross-currency for the buyer
    ("DEMO_UK", "DEMO_UK2", "GBP", ("T1", "T1"), ("GROUP", "MGMT-FEE")),  # same currency
)


@dataclass
class SeededCharges:
    charge_ids: list[int] = field(default_factory=list)
    unconnected: list[int] = field(default_factory=list)


def seed_demo_charges(charges: SqlCharges, count: int = 9, today: date | None = None) -> SeededCharges:
    today = today or datetime.now(UTC).date()
    stamp = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    seeded = SeededCharges()
    for n in range(count):
        seller, buyer, currency, (sales_tax, purchase_tax), (seller_code, buyer_code) = ROUTES[
            n % len(ROUTES)
        ]
        row = ChargeRow(
            reference=f"ICR-{3000 + n}",
            from_entity=seller,
            to_entity=buyer,
            charge_date=today - timedelta(days=n % 7),
            currency=currency,
            description=f"Group recharge {n + 1}",
            seller_bi_code=seller_code,
            buyer_bi_code=buyer_code,
            sales_tax_code=sales_tax,
            purchase_tax_code=purchase_tax,
            updated_at=stamp + timedelta(seconds=n),
            lines=[
                ChargeLineRow(line_no=1, description="Management fee", amount=Decimal("1500.00") + 125 * n),
                ChargeLineRow(line_no=2, description="Shared IT costs", amount=Decimal("333.33") + n),
            ],
        )
        seeded.charge_ids.append(charges.add(row))
    unconnected = ChargeRow(
        reference=f"ICR-{3000 + count}",
        from_entity="DEMO_IE",
        to_entity="DEMO_UK2",
        charge_date=today,
        currency="EUR",
        description="No connection between these two",
        updated_at=stamp + timedelta(seconds=count),
        lines=[ChargeLineRow(line_no=1, description="Fee", amount=Decimal("100.00"))],
    )
    charge_id = charges.add(unconnected)
    seeded.charge_ids.append(charge_id)
    seeded.unconnected.append(charge_id)
    return seeded
