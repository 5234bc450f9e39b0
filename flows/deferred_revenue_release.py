"""Monthly deferred revenue release: AIQ's guide says invoice in full to a deferred revenue
account, then "take one journal entry back each month". This posts every month due up to the run
date (catching up missed months), exactly once; or, if asked, all of them up front with their
own dates. A closed period either stops the journal with a clear message or moves it to the
first open period, noting the month it belongs to. Credited sales release what remains at once.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from aiq_flows.domain.deferrals import ClosedPeriodPolicy
from aiq_flows.secrets import install_redaction
from blocks.aiq import AiqConnection
from blocks.store import StateStore
from tasks.deferrals import publish_release_report, release_deferred_revenue
from tasks.typed_prefect import load_block
from tasks.writers import writing_to


@flow(name="deferred-revenue-release")
def deferred_revenue_release(
    aiq_connection: str = "demo-uk",
    state_store: str = "demo-store",
    run_date: date | None = None,
    post_all_upfront: bool = False,
    closed_period_policy: ClosedPeriodPolicy = ClosedPeriodPolicy.FAIL,
) -> dict[str, Any]:
    install_redaction()
    aiq = load_block(AiqConnection, aiq_connection)
    state = load_block(StateStore, state_store)
    run_id = str(flow_run.id or uuid.uuid4())
    with writing_to(state, aiq.company_id):  # one writer per entity
        outcomes = release_deferred_revenue(
            aiq,
            state,
            run_date or date.today(),
            post_all_upfront,
            ClosedPeriodPolicy(closed_period_policy),
            run_id,
        )
    summary = publish_release_report(outcomes, ClosedPeriodPolicy(closed_period_policy))
    get_run_logger().info("Deferred revenue release finished: %s", summary)
    return summary


if __name__ == "__main__":
    deferred_revenue_release()
