"""The plan of a run, for a dry run or an approval: customers to create, invoices with their
totals, holds and quarantine, shown as artifacts before anything is written."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.input import RunInput

from aiq_flows.domain.money import round_money
from aiq_flows.domain.outcomes import SaleOutcome
from aiq_flows.domain.sales import Sale
from tasks.customers import CustomerResolution


class PlanApproval(RunInput):
    """What the approver fills in on the paused run's page in the Prefect UI."""

    approved: bool = False
    approver: str
    confirmation: str = ""  # type the plan's confirmation phrase (shown in the plan) to post it


@dataclass(frozen=True)
class Plan:
    summary: dict[str, Any]
    markdown: str
    confirmation: str
    references: frozenset[str] = field(default_factory=frozenset)

    def approved_by(self, decision: PlanApproval) -> bool:
        """Approved, and by someone who typed this plan's phrase (not an earlier plan's)."""
        return decision.approved and decision.confirmation.strip() == self.confirmation


def _money(total: Decimal, currency: str) -> str:
    return f"{round_money(total, currency):,} {currency}"


@task(name="publish-plan", cache_policy=NONE)
def publish_plan(
    planned: list[Sale],
    others: list[SaleOutcome],
    customers: CustomerResolution,
    in_aiq: dict[str, int],
    read: int,
) -> Plan:
    to_post = [sale for sale in planned if sale.external_reference not in in_aiq]
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for sale in to_post:
        totals[sale.currency] += sale.gross_total
    new = set(customers.would_create)
    rows = [
        {
            "sale_id": sale.sale_id,
            "reference": sale.reference,
            "external_reference": sale.external_reference,
            "customer": sale.customer_code + (" (new)" if sale.customer_code in new else ""),
            "gross_total": _money(sale.gross_total, sale.currency),
            "action": "already in AIQ" if sale.external_reference in in_aiq else "create invoice",
            "reason": "",
        }
        for sale in planned
    ]
    rows += [
        {
            "sale_id": o.sale_id,
            "reference": o.reference or "",
            "external_reference": o.external_reference or "",
            "customer": o.customer_code or "",
            "gross_total": _money(o.gross_total, o.currency) if o.gross_total and o.currency else "",
            "action": o.outcome.value,
            "reason": o.reason or "",
        }
        for o in others
    ]
    total_text = (
        ", ".join(_money(amount, currency) for currency, amount in sorted(totals.items())) or "nothing"
    )
    confirmation = f"POST {len(to_post)} INVOICES"
    counts = Counter(o.outcome.value for o in others)
    lines = [
        "# Plan of the nightly sales sync",
        "",
        f"- sales read: **{read}**",
        f"- invoices to create: **{len(to_post)}**, totalling {total_text}",
        f"- already in AIQ: {len(planned) - len(to_post)}",
        f"- customers to create in AIQ: {len(new)} {sorted(new)}",
        *(f"- {kind}: {n}" for kind, n in sorted(counts.items())),
        "",
        f"To post exactly this plan, approve and type `{confirmation}`.",
    ]
    markdown = "\n".join(lines)
    create_markdown_artifact(
        key="nightly-sales-sync-plan", markdown=markdown, description="What the run would do"
    )
    create_table_artifact(
        key="nightly-sales-sync-plan-rows", table=rows, description="The plan, one row per sale"
    )
    summary = {
        "input": read,
        "to_create": len(to_post),
        "already_present": len(planned) - len(to_post),
        "customers_to_create": len(new),
        **{kind: n for kind, n in counts.items()},
        "totals": {currency: str(amount) for currency, amount in totals.items()},
        "confirmation": confirmation,
    }
    return Plan(summary, markdown, confirmation, frozenset(sale.external_reference for sale in to_post))
