"""Intercompany pairing steps: read and check charges, resolve each one's intercompany connection
(seen from both entities), raise the sales leg in the seller and the purchase leg in the buyer
(the pair machinery of back-to-back), check parity, write back, report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from aiq_flows.domain.fields import Rejection
from aiq_flows.domain.intercompany import (
    Account,
    Charge,
    Connection,
    EntityFacts,
    Parity,
    Route,
    RoutedCharge,
    Side,
    plan_charge,
    validate_charge,
)
from aiq_flows.engine.pairing import (
    Leg,
    Pair,
    PairResult,
    PairStatus,
    credit_note_compensation,
    filled_draft,
    priced_lines,
)
from aiq_flows.gateway.client import AiqGateway
from aiq_flows.gateway.models import InterCompanyConnection
from blocks.aiq import AiqConnection
from blocks.intercompany import ChargesDatabase
from blocks.store import StateStore
from tasks.pairs import (
    PairedOutcome,
    by_record,
    leg_columns,
    pair_outcome,
    publish_pairs_report,
    quarantined,
    read_unsettled,
    send_pairs,
    write_back,
)
from tasks.retry import retry_transient_aiq_errors


class IntercompanyNotSettled(RuntimeError):
    """Half pairs or parity mismatches remain: see the intercompany-summary artifact."""


@dataclass(frozen=True)
class IcSettings:
    revenue_gl: str = "4000"
    cost_gl: str = "5000"
    parity_tolerance: Decimal = Decimal(0)


@dataclass(frozen=True)
class ChargeOutcome(PairedOutcome):
    charge: Charge | None = None
    route: Route | None = None
    parity: Parity | None = None

    @property
    def status(self) -> str:
        if self.parity is not None and not self.parity.holds:
            return "mismatch"
        return super().status


@dataclass
class CheckedCharges:
    ready: list[RoutedCharge] = field(default_factory=list)
    quarantined: list[ChargeOutcome] = field(default_factory=list)


def gateways(connections: dict[str, AiqConnection]) -> dict[str, AiqGateway]:
    return {entity: block.gateway() for entity, block in connections.items()}


@task(name="read-unsettled-charges", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10])
def read_charges(charges: ChargesDatabase, limit: int | None = None) -> list[dict[str, Any]]:
    return read_unsettled(charges.source(), "intercompany charges", limit)


def _side(side: Any) -> Side:
    return Side(
        side.EntityID, side.EntityBaseCurrencyCode, side.AccountID, side.AccountCode, side.AccountCurrencyCode
    )


def _connections(found: list[InterCompanyConnection]) -> list[Connection]:
    return [Connection(_side(c.Local), _side(c.Remote)) for c in found]


def _account(account: Any) -> Account:
    return Account(account.AccountID, account.DefaultTaxCode)


def entity_facts(gateway: AiqGateway) -> EntityFacts:
    """What one entity's AIQ says that routing and pricing need, read once per run."""
    return EntityFacts(
        _connections(gateway.get_intercompany_connections()),
        {c.Code: _account(c) for c in gateway.get_active_customers() if c.Code},
        {s.Code: _account(s) for s in gateway.get_active_suppliers() if s.Code},
        {t.Code: t.Rate for t in gateway.get_tax_codes()},
        frozenset(d.DepartmentID for d in gateway.get_departments() if d.IsActive),
    )


def _quarantined(rejection: Rejection) -> ChargeOutcome:
    return ChargeOutcome(quarantined(rejection.sale_id, rejection.reference, rejection.message))


@task(
    name="check-charges-and-connections",
    cache_policy=NONE,
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=retry_transient_aiq_errors,
)
def check_charges(connections: dict[str, AiqConnection], records: list[dict[str, Any]]) -> CheckedCharges:
    """Validate each charge and resolve its connection, reading each entity's AIQ once."""
    facts = {entity: entity_facts(gateway) for entity, gateway in gateways(connections).items()}
    checked = CheckedCharges()
    for record in records:
        charge = validate_charge(record)
        result = charge if isinstance(charge, Rejection) else plan_charge(charge, facts)
        if isinstance(result, Rejection):
            checked.quarantined.append(_quarantined(result))
        else:
            checked.ready.append(result)
    get_run_logger().info("%d charges ready, %d quarantined", len(checked.ready), len(checked.quarantined))
    return checked


def build_pair(gateways_by_entity: dict[str, AiqGateway], item: RoutedCharge, settings: IcSettings) -> Pair:
    charge, quote, routed = item.charge, item.quote, item.route
    seller, buyer = gateways_by_entity[charge.seller], gateways_by_entity[charge.buyer]
    when = datetime.combine(charge.charge_date, time())
    sales_lines = priced_lines(quote.sales, settings.revenue_gl, charge.seller_bi_code)
    purchase_lines = priced_lines(quote.purchase, settings.cost_gl, charge.buyer_bi_code)

    def with_currency(template: Any) -> Any:
        template.CurrencyCode = charge.currency  # the connection's accounts trade in it (checked)
        return template

    sales = Leg(
        "sales",
        charge.seller,
        charge.sales_reference,
        seller,
        lambda: filled_draft(
            with_currency(seller.new_sales_invoice(routed.customer_code)),
            charge.sales_reference,
            when,
            f"{charge.description}; intercompany to {charge.buyer}, purchase leg {charge.purchase_reference}",
            charge.reference,
            charge.seller_bi_code,
            sales_lines,
        ),
        quote.charge,
        quote.sales_vat,
        compensate=credit_note_compensation(
            seller,
            charge.sales_reference,
            routed.customer_code,
            when,
            sales_lines,
            charge.seller_bi_code,
            f"charge {charge.reference} withdrawn",
        ),
    )
    purchase = Leg(
        "purchase",
        charge.buyer,
        charge.purchase_reference,
        buyer,
        lambda: filled_draft(
            with_currency(buyer.new_purchases_invoice(routed.supplier_code)),
            charge.purchase_reference,
            when,
            f"{charge.description}; intercompany from {charge.seller}, sales leg {charge.sales_reference}",
            charge.reference,
            charge.buyer_bi_code,
            purchase_lines,
        ),
        quote.cost,
        quote.purchase_vat,
    )
    return Pair(
        charge.pair_key,
        str(charge.charge_id),
        charge.version,
        (sales, purchase),
        charge.cancelled,
    )


def _parity(
    gateways_by_entity: dict[str, AiqGateway], item: RoutedCharge, tolerance: Decimal
) -> Parity | None:
    """Compare the two posted legs as AIQ holds them (None if either is not posted)."""
    charge = item.charge
    posted = []
    for entity, reference in (
        (charge.seller, charge.sales_reference),
        (charge.buyer, charge.purchase_reference),
    ):
        found = [
            i
            for i in gateways_by_entity[entity].invoices_by_external_reference(reference)
            if i.Status == "Posted"
        ]
        if len(found) != 1:
            return None
        posted.append(found[0])
    sales, purchase = posted
    return Parity(
        charge.currency,
        sales.NetAmount,
        purchase.NetAmount,
        tolerance,
        Decimal(str((sales.model_extra or {}).get("BCNetAmount", 0))),
        item.route.seller_base_currency,
        Decimal(str((purchase.model_extra or {}).get("BCNetAmount", 0))),
        item.route.buyer_base_currency,
    )


@task(name="raise-intercompany-pairs", task_run_name="raise-ic-pairs-{chunk_number}", cache_policy=NONE)
def raise_ic_pairs(
    connections: dict[str, AiqConnection],
    state: StateStore,
    ready: list[RoutedCharge],
    settings: IcSettings,
    run_id: str,
    chunk_number: int,
) -> list[ChargeOutcome]:
    """Each charge's pair exactly once, then parity of the posted pair as AIQ holds it."""
    by_entity = gateways(connections)

    def outcome_of(item: RoutedCharge, result: PairResult) -> ChargeOutcome:
        complete = result.status in (PairStatus.COMPLETE, PairStatus.ALREADY_COMPLETE)
        parity = _parity(by_entity, item, settings.parity_tolerance) if complete else None
        reason = result.reason
        if parity is not None and not parity.holds:
            reason = f"parity check failed: {parity.describe()}"
        outcome = pair_outcome(
            item.charge.charge_id,
            item.charge.reference,
            item.charge.pair_key,
            result,
            customer_code=item.route.customer_code,
            gross_total=item.quote.charge + item.quote.sales_vat,
            currency=item.charge.currency,
            reason=reason,
        )
        return ChargeOutcome(outcome, result, charge=item.charge, route=item.route, parity=parity)

    return send_pairs(state, run_id, ready, lambda item: build_pair(by_entity, item, settings), outcome_of)


@task(name="write-back-charges", cache_policy=NONE, retries=3, retry_delay_seconds=[2, 10, 30])
def write_back_charges(charges: ChargesDatabase, outcomes: list[ChargeOutcome]) -> None:
    write_back(charges.source(), outcomes)


def charge_rows(outcomes: list[ChargeOutcome]) -> list[dict[str, Any]]:
    rows = []
    for o in by_record(outcomes):
        parity, charge = o.parity, o.charge
        rows.append(
            {
                "charge_id": o.outcome.sale_id,
                "charge": o.outcome.reference or "",
                "seller": charge.seller if charge else "",
                "buyer": charge.buyer if charge else "",
                "currency": charge.currency if charge else "",
                **leg_columns(o.pair),
                "sales_net": str(parity.sales_net) if parity else "",
                "purchase_net": str(parity.purchase_net) if parity else "",
                "difference": str(parity.difference) if parity else "",
                "sales_base_net": f"{parity.sales_base_net} {parity.seller_base_currency}" if parity else "",
                "purchase_base_net": f"{parity.purchase_base_net} {parity.buyer_base_currency}"
                if parity
                else "",
                "parity": ("ok" if parity.holds else "MISMATCH") if parity else "",
                "outcome": o.status,
                "reason": o.outcome.reason or "",
            }
        )
    return rows


@task(name="publish-intercompany-report", cache_policy=NONE)
def publish_ic_report(outcomes: list[ChargeOutcome], input_count: int, title: str) -> dict[str, Any]:
    mismatched = [o for o in outcomes if o.parity is not None and not o.parity.holds]
    heading = "Parity mismatches (both legs posted, net amounts differ)"
    summary = publish_pairs_report(
        outcomes,
        input_count,
        title,
        "intercompany",
        "charges",
        charge_rows(outcomes),
        [(heading, mismatched)],
    )
    return {**summary, "parity_mismatches": len(mismatched)}
