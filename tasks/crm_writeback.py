"""Close the loop: outcomes back to the CRM, then (and only then) the watermark forward."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from aiq_flows.domain.outcomes import CrmStatus, SaleOutcome
from aiq_flows.domain.watermark import Watermark
from blocks.crm import CrmDatabase
from blocks.store import StateStore


@task(name="write-back-to-crm", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10])
def write_back_outcomes(crm: CrmDatabase, state: StateStore, entity: str, outcomes: list[SaleOutcome]) -> int:
    """Write each sale's AIQ transaction ID and status to the CRM (idempotent, safe to retry)."""
    source, store = crm.source(), state.store()
    try:
        written = source.write_back(outcomes)
        store.mark_written_back(
            entity,
            [
                o.external_reference
                for o in outcomes
                if o.crm_status is CrmStatus.POSTED and o.external_reference
            ],
        )
    finally:
        source.dispose()
        store.dispose()
    get_run_logger().info("Wrote %d outcomes back to the CRM", written)
    return written


@task(name="advance-watermark", cache_policy=NONE)
def advance_watermark(state: StateStore, name: str, mark: Watermark | None) -> Watermark | None:
    if mark is None:
        return None
    store = state.store()
    try:
        return store.advance_watermark(name, mark)
    finally:
        store.dispose()
