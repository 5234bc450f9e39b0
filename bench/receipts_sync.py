"""Benchmark: payments settled exactly once (`engine/receipts.py`: receipt read-before-write,
allocations planned from AIQ and read back) against the sandbox with added latency per call, next
to the naive loop integrators write (SaveSalesReceiptGetBackTransactionID + AllocateTransactions
per payment, no reads: not safe to re-run). Prints payments per second, calls per payment and the
ratio. The invoices are posted first, in bulk and without latency, outside the timings.

    .venv/bin/python bench/receipts_sync.py [--payments 10000] [--latency-ms 20] [--naive-sample 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from nightly_sync import SandboxProcess
from sandbox_throughput import invoices

from aiq_flows.domain.payments import Payment
from aiq_flows.engine.delivery import ExactlyOnceSender
from aiq_flows.engine.receipts import PaymentSettler, invoices_in_aiq
from aiq_flows.gateway.models import SalesReceipt
from aiq_flows.store.outbox import DocumentStore

DAY = datetime(2026, 11, 2)


def post_invoices(gateway: object, count: int, prefix: str) -> list[int]:
    ids: list[int] = []
    documents = invoices(count, prefix.rstrip("-"))
    for start in range(0, count, 200):
        rows = gateway.create_batch_sales_invoices(documents[start : start + 200])  # type: ignore[attr-defined]
        ids += [row.transaction_id for row in rows]
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--naive-sample", type=int, default=200)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="aiq-bench-receipts-"))
    sandbox = SandboxProcess(directory, latency_ms=0)
    try:
        gateway = sandbox.gateway()
        post_invoices(gateway, args.payments, "BS-")
        naive_ids = post_invoices(gateway, args.naive_sample, "BN-")
        sandbox.faults([{"kind": "latency", "operation": "*", "latency_ms": args.latency_ms}])
        store = DocumentStore(f"sqlite:///{directory / 'store.db'}")
        settler = PaymentSettler(
            gateway, ExactlyOnceSender(store, "DEMO_UK", "bench"), invoices_in_aiq(gateway, DAY), "1200"
        )
        before = sum(sandbox.calls().values())
        started = time.perf_counter()
        for n in range(args.payments):
            outcome = settler.settle(
                Payment(f"B{n}", "ACME01", Decimal("120.00"), date(2026, 11, 2), (f"BS-{n}",))
            )
            assert outcome.allocated_now == Decimal("120.00"), outcome
        engine_seconds = time.perf_counter() - started
        engine_calls = (sum(sandbox.calls().values()) - before) / args.payments
        before = sum(sandbox.calls().values())
        started = time.perf_counter()
        for n, invoice in enumerate(naive_ids):
            receipt = gateway.save_sales_receipt(
                SalesReceipt(
                    CustomerCode="ACME01",
                    CheckReference=f"RN-{n}",
                    PaymentAmount=Decimal("120.00"),
                    BankAccountCode="1200",
                    PaymentDate=DAY,
                )
            )
            gateway.allocate(invoice, receipt, Decimal("120.00"), DAY)
        naive_seconds = time.perf_counter() - started
        naive_calls = (sum(sandbox.calls().values()) - before) / len(naive_ids)
        store.dispose()
        gateway.close()
    finally:
        sandbox.stop()
    engine_rate, naive_rate = args.payments / engine_seconds, len(naive_ids) / naive_seconds
    print(f"latency per call                  : {args.latency_ms} ms")
    print(
        f"exactly once (engine/receipts.py) : {args.payments:,} payments in {engine_seconds:7.1f} s = "
        f"{engine_rate:6.1f} payments/s, {engine_calls:.1f} calls each"
    )
    print(
        f"naive receipt + allocate loop     : {len(naive_ids):,} payments in {naive_seconds:7.1f} s = "
        f"{naive_rate:6.1f} payments/s, {naive_calls:.1f} calls each"
    )
    print(f"ratio (exactly once / naive)      : {engine_rate / naive_rate:.2f}x")


if __name__ == "__main__":
    main()
