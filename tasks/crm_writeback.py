"""Close the loop: outcomes back to the source, then (and only then) the watermark forward."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from aiq_flows.domain.outcomes import CrmStatus, SaleOutcome
from aiq_flows.domain.watermark import Watermark
from aiq_flows.sources.contract import WrittenBack
from blocks.store import StateStore
from tasks.sales import SOURCE_TASK_OPTIONS, Origin


@task(
    name="write-back-to-crm",
    **SOURCE_TASK_OPTIONS,
)
def write_back_outcomes(origin: Origin, state: StateStore, entity: str, outcomes: list[SaleOutcome]) -> int:
    """Each sale's AIQ transaction ID and status to the source's write-back columns, or, for a
    read-only source, to the store (idempotent, safe to retry)."""
    source, store = origin.open(), state.store()
    logger = get_run_logger()
    try:
        if source.read_only:
            store.record_states(
                origin.name,
                [
                    (str(o.sale_id), o.crm_status.value, o.crm_message, o.transaction_id)
                    for o in outcomes
                    if o.sale_id is not None
                ],
            )
            written = WrittenBack(len(outcomes))
        else:
            written = source.write_back(outcomes)
        for sale_id, reason in written.refused.items():
            logger.warning(
                "%s refused the write-back of sale %s (written again next run): %s",
                origin.name,
                sale_id,
                reason,
            )
        store.mark_written_back(
            entity,
            [
                o.external_reference
                for o in outcomes
                if o.crm_status is CrmStatus.POSTED
                and o.external_reference
                and str(o.sale_id) not in written.refused
            ],
        )
    finally:
        source.dispose()
        store.dispose()
    logger.info("Wrote %d outcomes back to %s", written.records, origin.name)
    return written.records


@task(name="advance-watermark", cache_policy=NONE)
def advance_watermark(state: StateStore, name: str, mark: Watermark | None) -> Watermark | None:
    if mark is None:
        return None
    store = state.store()
    try:
        return store.advance_watermark(name, mark)
    finally:
        store.dispose()
