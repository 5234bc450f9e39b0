"""Benchmark: the sandbox's own throughput, with zero added latency, so later benchmarks know the
floor. Posts batch sales invoices through the bulk operation in chunks, and one by one for
comparison; then item invoices through the bulk draft-and-post pair
(``CreateInvoicesGetBackInvoiceIDs`` + ``PostInvoicesGetBackTransactionIDs``) and through the
naive per-invoice GetNew / Save / Post loop; all through the gateway over real HTTP on 127.0.0.1.
The sandbox runs in its own process (``aiq-sandbox serve``, as tests and users run it), or with
``--in-process`` in a thread of this one (sharing this process's GIL with the client).

    .venv/bin/python bench/sandbox_throughput.py [--invoices N] [--chunk 200] [--in-process]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from nightly_sync import SandboxProcess

from aiq_flows.gateway.client import AiqCredentials, AiqGateway
from aiq_flows.gateway.models import BatchInvoiceLine, BatchSalesInvoice, Invoice, InvoiceLine


def invoices(count: int, prefix: str) -> list[BatchSalesInvoice]:
    return [
        BatchSalesInvoice(
            CustomerCode="ACME01",
            InvoiceDate=datetime(2026, 11, 2),
            ExternalReference=f"{prefix}-{n}",
            Description=f"Bench {n}",
            Lines=[
                BatchInvoiceLine(
                    GLAccountCode="4000",
                    TaxCode="T1",
                    Description="Widget",
                    NetAmount=Decimal("100.00"),
                    TaxRate=0.2,
                    TaxAmount=Decimal("20.00"),
                )
            ],
        )
        for n in range(count)
    ]


def item_invoices(gateway: AiqGateway, count: int, prefix: str) -> list[Invoice]:
    template = gateway.new_sales_invoice("ACME01")
    documents = []
    for n in range(count):
        document = template.model_copy(deep=True)
        document.ExternalReference, document.InvoiceDate = f"{prefix}-{n}", datetime(2026, 11, 2)
        document.Lines = [InvoiceLine(InvoicedQuantity=Decimal(1), StockItemID="CONSULT-DAY")]
        documents.append(document)
    return documents


def rate(label: str, count: int, seconds: float) -> None:
    print(f"{label:<34}: {count:>6,} invoices in {seconds:6.2f} s = {count / seconds:8,.0f} invoices/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invoices", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=200)
    parser.add_argument("--in-process", action="store_true", help="serve from a thread of this process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        if args.in_process:
            from aiq_flows.sandbox.server import make_server

            server = make_server("127.0.0.1", 0, Path(directory) / "bench.db").start()
            creds = server.ledger.credentials()
            uk = next(e for e in creds["entities"] if e["company_id"] == "DEMO_UK")
            gateway = AiqGateway.login(
                server.url,
                AiqCredentials(
                    company_id="DEMO_UK", partner_key=creds["partner_key"], user_key=uk["user_key"]
                ),
            )
            stop = server.stop
        else:
            process = SandboxProcess(Path(directory), latency_ms=0)
            gateway, stop = process.gateway(), process.stop
        try:
            bulk = invoices(args.invoices, "BULK")
            started = time.perf_counter()
            for start in range(0, len(bulk), args.chunk):
                rows = gateway.create_batch_sales_invoices(bulk[start : start + args.chunk])
                assert all(row.ok for row in rows)
            bulk_seconds = time.perf_counter() - started
            single = invoices(min(args.invoices, 500), "ONE")
            started = time.perf_counter()
            for invoice in single:
                gateway.create_batch_sales_invoice(invoice)
            single_seconds = time.perf_counter() - started
            items = item_invoices(gateway, args.invoices, "ITEM")
            started = time.perf_counter()
            for start in range(0, len(items), args.chunk):
                saved = gateway.create_invoices(items[start : start + args.chunk])
                posted = gateway.post_invoices([row.document_id for row in saved if row.document_id])
                assert len(posted) == len(saved) and all(row.ok for row in posted)
            item_bulk_seconds = time.perf_counter() - started
            naive = min(args.invoices, 300)
            started = time.perf_counter()
            for document in item_invoices(gateway, naive, "NAIVE"):
                fresh = gateway.new_sales_invoice("ACME01")  # what a per-invoice integration does
                document.AccountID = fresh.AccountID
                gateway.post_invoice(gateway.save_invoice(document))
            naive_seconds = time.perf_counter() - started
        finally:
            stop()
    rate(f"batch, bulk ({args.chunk} per call)", args.invoices, bulk_seconds)
    rate("batch, one call per invoice", len(single), single_seconds)
    rate(f"item, bulk save + bulk post ({args.chunk})", args.invoices, item_bulk_seconds)
    rate("item, GetNew/Save/Post per invoice", naive, naive_seconds)


if __name__ == "__main__":
    main()
