"""The credit check before posting (policy per deployment): AIQ's balances and limits for the
run's customers, and their ageing when the policy looks at overdue debt."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from aiq_flows.domain.credit import Ageing, Charge, CreditPolicy, CreditPosition, CreditVerdict, check
from aiq_flows.domain.outcomes import Outcome, SaleOutcome, outcome_for
from aiq_flows.domain.sales import Sale
from aiq_flows.gateway.models import CustomerStatement
from aiq_flows.store.outbox import DONE
from blocks.aiq import AiqConnection
from blocks.store import StateStore
from tasks.customers import CustomerResolution
from tasks.retry import retry_transient_aiq_errors


@dataclass
class CreditResult:
    cleared: list[Sale] = field(default_factory=list)
    held: list[SaleOutcome] = field(default_factory=list)
    warnings: dict[int | str, str] = field(default_factory=dict)

    def with_warnings(self, outcomes: list[SaleOutcome]) -> list[SaleOutcome]:
        """Posted over the limit under ``post_and_warn``: say so on the sale's outcome."""
        return [
            replace(o, reason=f"credit warning: {self.warnings[o.sale_id]}")
            if o.sale_id in self.warnings and o.outcome is Outcome.CREATED
            else o
            for o in outcomes
        ]


def ageing(statement: CustomerStatement) -> Ageing:
    return Ageing(
        statement.days_0_30,
        statement.days_30_60,
        statement.days_60_90,
        statement.days_90_120,
        statement.days_120_plus,
    )


@task(
    name="credit-check",
    cache_policy=NONE,
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=retry_transient_aiq_errors,
)
def credit_check(
    aiq: AiqConnection,
    state: StateStore,
    sales: list[Sale],
    customers: CustomerResolution,
    policy: CreditPolicy,
    overdue_days: int | None = None,
) -> CreditResult:
    """Counts the invoices about to be posted in this run with the balance AIQ already holds.
    Sales already posted (by an earlier run) are in that balance: they pass, uncounted."""
    if policy is CreditPolicy.POST or not sales:
        return CreditResult(cleared=list(sales))
    store = state.store()
    try:
        records = store.get(aiq.company_id, [sale.external_reference for sale in sales])
    finally:
        store.dispose()
    posted = {ref for ref, record in records.items() if record.state in DONE}
    gateway = aiq.gateway()
    now = datetime.now()
    codes = sorted({sale.customer_code for sale in sales})
    ids = {customers.accounts[code].AccountID: code for code in codes if code not in customers.would_create}
    positions = {
        ids[b.AccountID]: CreditPosition(b.Balance, b.CreditLimit) for b in gateway.account_balances(now, ids)
    }
    for code in customers.would_create:  # a dry run's new customer: nothing owed, AIQ's default limit
        if code in codes:
            positions[code] = CreditPosition(Decimal(0), customers.accounts[code].CreditLimit)
    if overdue_days is not None:
        existing = [code for code in codes if code not in customers.would_create]
        for statement in gateway.customer_statements(now, existing, show_zeros=True) if existing else []:
            position = positions.get(statement.customer_code)
            if position is not None:
                overdue = ageing(statement).overdue_beyond(overdue_days)
                positions[statement.customer_code] = replace(position, overdue=overdue)
    to_post = (sale for sale in sales if sale.external_reference not in posted)
    verdicts: dict[int | str, CreditVerdict] = check(
        (Charge(sale.sale_id, sale.customer_code, sale.gross_total) for sale in to_post), positions
    )
    result = CreditResult()
    for sale in sales:
        verdict = verdicts.get(sale.sale_id)
        if verdict is None or policy is CreditPolicy.POST_AND_WARN:
            result.cleared.append(sale)
            if verdict is not None:
                result.warnings[sale.sale_id] = verdict.reason
        else:
            result.held.append(
                outcome_for(sale, Outcome.HELD, reason=f"credit hold: {verdict.reason}; tried again next run")
            )
    get_run_logger().info(
        "Credit check (%s): %d cleared, %d held, %d warned",
        policy.value,
        len(result.cleared),
        len(result.held),
        len(result.warnings),
    )
    return result
