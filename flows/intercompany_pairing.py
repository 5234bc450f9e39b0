"""Intercompany pairing: a sales invoice in the selling entity and the matching purchase invoice
in the buying entity, checked for parity.

Reads like AIQ's guide: intercompany transactions cannot be created automatically, so find the
valid connection (`GetInterCompanyConnectionList`, from both sides), raise the sales invoice to
the customer standing for the buyer and the purchase invoice from the supplier standing for the
seller (both drafts before either is posted), then compare the posted pair. Works over API 1.1
(one connection block per entity, each with its own login) and 2.0 (one integration
application; the blocks differ only in their entity).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from aiq_flows.iterables import chunked
from aiq_flows.secrets import install_redaction
from blocks.aiq import AiqConnection
from blocks.intercompany import ChargesDatabase
from blocks.store import StateStore
from tasks.intercompany import (
    IcSettings,
    IntercompanyNotSettled,
    check_charges,
    publish_ic_report,
    raise_ic_pairs,
    read_charges,
    write_back_charges,
)
from tasks.pairs import announce_pairs
from tasks.typed_prefect import load_block
from tasks.writers import writing_to


@flow(name="intercompany-pairing")
def intercompany_pairing(
    aiq_connections: list[str] | None = None,
    charges_database: str = "demo-charges",
    state_store: str = "demo-store",
    revenue_gl: str = "4000",
    cost_gl: str = "5000",
    parity_tolerance: Decimal = Decimal(0),
    chunk_size: int = 50,
    max_charges: int | None = None,
) -> dict[str, Any]:
    """`aiq_connections` names one AIQ Connection block per entity taking part."""
    install_redaction()
    names = aiq_connections or ["demo-uk", "demo-ie", "demo-uk2"]
    connections = {block.company_id: block for block in (load_block(AiqConnection, name) for name in names)}
    charges = load_block(ChargesDatabase, charges_database)
    state = load_block(StateStore, state_store)
    run_id = str(flow_run.id or uuid.uuid4())
    settings = IcSettings(revenue_gl, cost_gl, Decimal(parity_tolerance))

    records = read_charges(charges, max_charges)
    checked = check_charges(connections, records)
    outcomes = list(checked.quarantined)
    with writing_to(state, *connections):
        for number, chunk in enumerate(chunked(checked.ready, chunk_size), start=1):
            outcomes += raise_ic_pairs(connections, state, chunk, settings, run_id, number)
    write_back_charges(charges, outcomes)
    summary = publish_ic_report(
        outcomes, len(records), f"Intercompany pairing across {', '.join(connections)}"
    )
    get_run_logger().info("Intercompany pairing finished: %s", summary)
    announce_pairs(", ".join(connections), summary)
    if summary["half_pairs"] or summary["parity_mismatches"]:
        raise IntercompanyNotSettled(
            f"{summary['half_pairs']} half pairs, {summary['parity_mismatches']} parity mismatches: "
            "see the intercompany-summary artifact"
        )
    return summary


if __name__ == "__main__":
    intercompany_pairing()
