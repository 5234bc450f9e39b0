"""The chaos run: the nightly sync through everything at once, then the proof nothing was lost
or posted twice.

While a run posts, the sandbox fails 10% of all calls with HTTP 503, loses the answer of 2% of
the writes it commits, and every token expires every few seconds; a duplicate run starts
alongside, and the first run's process is killed (SIGKILL) mid-run. Then the faults stop and a
normal run settles everything. Afterwards: no external reference twice in AIQ, every sale in a
terminal state (posted, quarantined, or failed with AIQ's reason), every written-back ID equal to
AIQ's, the ledger balanced.

    .venv/bin/python scripts/chaos.py [--sales 2000]        # full size, prints the figures

`tests/test_chaos.py` runs the same at a reduced size in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BULK = "CreateBatchSalesInvoiceBulkGetBackTransactionIDs"
RUN = (
    "import json, sys; from flows.nightly_sales_sync import nightly_sales_sync as sync; "
    "print('SUMMARY=' + json.dumps(sync(aiq_connection=sys.argv[1], crm_database=sys.argv[2], "
    "state_store=sys.argv[3], chunk_size=10, page_size=400, claim_lease_seconds=float(sys.argv[4]))))"
)


def _admin(base: str, method: str, path: str, payload: Any = None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"null")


@dataclass
class ChaosReport:
    sales: int
    seconds: float
    faults: dict[str, int]
    expiries: int
    killed_after_documents: int
    documents: int
    duplicates: int
    statuses: dict[str, int]
    not_terminal: int
    write_back_mismatches: int
    ledger_total: Decimal

    @property
    def passed(self) -> bool:
        return (
            self.duplicates == 0
            and self.not_terminal == 0
            and self.write_back_mismatches == 0
            and self.ledger_total == 0
            and self.statuses.get("posted", 0) == self.documents
        )

    def lines(self) -> list[str]:
        return [
            f"sales                      : {self.sales:,}",
            f"faults fired               : {self.faults}",
            f"token expiries             : {self.expiries}",
            f"first run killed after     : {self.killed_after_documents} documents",
            f"AIQ documents              : {self.documents:,}",
            f"duplicate references       : {self.duplicates}",
            f"CRM statuses               : {self.statuses}",
            f"sales not in a final state : {self.not_terminal}",
            f"write-backs not equal AIQ  : {self.write_back_mismatches}",
            f"ledger total (must be 0)   : {self.ledger_total}",
            f"wall time                  : {self.seconds:.1f} s",
            f"passed                     : {self.passed}",
        ]


def _spawn(blocks: tuple[str, str, str], lease: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", RUN, *blocks, str(lease)],
        cwd=REPO,
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def chaos(
    sandbox_base: str,
    blocks: tuple[str, str, str],
    crm_url: str,
    sales: int,
    expire_every: float = 3.0,
    lease: float = 3.0,
) -> ChaosReport:
    """Runs the chaos against a seeded CRM and a sandbox; `blocks`: (aiq, crm, store) names."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from aiq_flows.sources.crm_sql import CrmSale, SqlCrm

    started = time.monotonic()
    rules = [
        {"kind": "http_error", "operation": "*", "rate": 0.10, "status": 503},
        {"kind": "drop_response", "operation": BULK, "rate": 0.02},
        {"kind": "drop_response", "operation": "UpdateCustomer", "rate": 0.02},
    ]
    _admin(sandbox_base, "POST", "/_sandbox/faults", {"rules": rules, "seed": 2026})
    stop = threading.Event()
    expiries = 0

    def expire_tokens() -> None:
        nonlocal expiries
        while not stop.wait(expire_every):
            _admin(sandbox_base, "POST", "/_sandbox/tokens/expire", {})
            expiries += 1

    expirer = threading.Thread(target=expire_tokens, daemon=True)
    expirer.start()
    first = _spawn(blocks, lease)
    deadline = time.monotonic() + 300
    while len(_admin(sandbox_base, "GET", "/_sandbox/documents?entity=DEMO_UK")) < sales // 10:
        if first.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if first.poll() is not None:
        raise RuntimeError(f"the first run ended before the chaos began: {first.communicate()[0][-3000:]}")
    duplicate = _spawn(blocks, lease)  # a duplicate run alongside
    time.sleep(1.0)
    killed_after = len(_admin(sandbox_base, "GET", "/_sandbox/documents?entity=DEMO_UK"))
    first.send_signal(signal.SIGKILL)  # the first worker dies mid-run
    first.wait()
    duplicate.communicate(timeout=900)
    fired = {
        rule["kind"] + ":" + rule["operation"]: rule["fired"]
        for rule in _admin(sandbox_base, "GET", "/_sandbox/faults")
    }
    stop.set()
    expirer.join()
    _admin(sandbox_base, "DELETE", "/_sandbox/faults")
    time.sleep(lease + 0.5)  # the killed run's claims expire
    settle = _spawn(blocks, lease)  # then a normal run
    output = settle.communicate(timeout=900)[0]
    if settle.returncode != 0:
        raise RuntimeError(output[-3000:])

    documents = _admin(sandbox_base, "GET", "/_sandbox/documents?entity=DEMO_UK")
    by_reference = Counter(d["external_reference"] for d in documents)
    ids = {d["external_reference"]: d["transaction_id"] for d in documents}
    crm = SqlCrm(crm_url)
    with Session(crm.engine) as session:
        rows = list(session.execute(select(CrmSale.id, CrmSale.aiq_status, CrmSale.aiq_transaction_id)))
    crm.dispose()
    statuses = Counter(status or "never synced" for _, status, _ in rows)
    mismatched = sum(
        1 for sale_id, status, tx in rows if status == "posted" and ids.get(f"S-{sale_id}") != tx
    )
    balance = _admin(sandbox_base, "GET", "/_sandbox/trial-balance?entity=DEMO_UK")
    return ChaosReport(
        sales=len(rows),
        seconds=time.monotonic() - started,
        faults=fired,
        expiries=expiries,
        killed_after_documents=killed_after,
        documents=len(documents),
        duplicates=sum(1 for n in by_reference.values() if n > 1),
        statuses=dict(statuses),
        not_terminal=sum(
            n for status, n in statuses.items() if status not in ("posted", "quarantined", "failed")
        ),
        write_back_mismatches=mismatched,
        ledger_total=sum((Decimal(v) for v in balance.values()), Decimal(0)),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sales", type=int, default=2000)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from scripts.demo import demo_stack, register_blocks

    directory = Path(tempfile.mkdtemp(prefix="aiq-chaos-"))
    os.environ["DEMO_STATE_DIR"] = str(directory)
    with demo_stack() as (env, sandbox_base, _api):
        os.environ.update({k: env[k] for k in ("PREFECT_HOME", "PREFECT_API_URL", "DO_NOT_TRACK")})
        from aiq_flows.sources.crm_sql import SqlCrm
        from aiq_flows.sources.demo_crm import seed_demo_crm

        register_blocks(sandbox_base)
        from scripts import demo

        crm_url = f"sqlite:///{demo.STATE / 'crm.db'}"
        seed_demo_crm(SqlCrm(crm_url), sales=args.sales)
        report = chaos(sandbox_base, ("demo-uk", "demo-crm", "demo-store"), crm_url, args.sales)
    print("\n".join(report.lines()))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
