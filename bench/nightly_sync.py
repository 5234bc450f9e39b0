"""Benchmark: sales through the nightly sync against the sandbox with added latency per call,
next to (a) the naive per-invoice loop integrators write (GetNewSalesInvoice / SaveInvoice... /
PostInvoice..., sequential; measured on a sample, its rate extrapolated) and (b) the raw floor:
the bulk create calls for the same invoices made directly with the gateway. Prints invoices per
second, the ratios, and the sync's peak memory (this process: the flow and its tasks; the sandbox
and the ephemeral Prefect server run in their own processes).

    .venv/bin/python bench/nightly_sync.py [--sales 10000] [--latency-ms 20] [--naive-sample 200]
    .venv/bin/python bench/nightly_sync.py --sales 100000 --sync-only        # memory at 100k
    .venv/bin/python bench/nightly_sync.py --sales 2000 --sync-only --attach csv --pdfs  # documents
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from datetime import time as day_start
from decimal import Decimal
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(url: str, seconds: float) -> None:
    """Until `url` answers (a server just started), for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)


class SandboxProcess:
    """``aiq-sandbox serve`` in its own process, with every call delayed by ``latency_ms``."""

    def __init__(self, directory: Path, latency_ms: int) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.db = directory / f"sandbox-{port}.db"
        self.process = subprocess.Popen(
            [
                str(BIN / "aiq-sandbox"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--db",
                str(self.db),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_healthy(f"{self.base}/_sandbox/health", seconds=30)
        self.faults([{"kind": "latency", "operation": "*", "latency_ms": latency_ms}] if latency_ms else [])
        out = subprocess.run(
            [str(BIN / "aiq-sandbox"), "credentials", "--db", str(self.db)],
            capture_output=True,
            text=True,
            check=True,
        )
        self.credentials = json.loads(out.stdout)

    def faults(self, rules: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            f"{self.base}/_sandbox/faults", data=json.dumps({"rules": rules}).encode(), method="POST"
        )
        urllib.request.urlopen(request, timeout=10).close()

    def calls(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.base}/_sandbox/calls", timeout=10) as answer:
            return dict(json.loads(answer.read()))

    @property
    def url(self) -> str:
        from aiq_flows.gateway.schema import PATH_1_1

        return self.base + PATH_1_1

    def gateway(self) -> Any:
        from pydantic import SecretStr

        from aiq_flows.gateway.client import AiqCredentials, AiqGateway

        uk = next(e for e in self.credentials["entities"] if e["company_id"] == "DEMO_UK")
        return AiqGateway.login(
            self.url,
            AiqCredentials(
                company_id="DEMO_UK",
                partner_key=SecretStr(self.credentials["partner_key"]),
                user_key=SecretStr(uk["user_key"]),
            ),
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def posted_sales(crm_url: str) -> list[Any]:
    """The sales the sync posted, validated as the sync sees them (read through the demo CRM's
    mapping, as the sync reads them)."""
    from datetime import timedelta

    from aiq_flows.domain.sales import Sale
    from aiq_flows.domain.watermark import Watermark
    from blocks.crm import CrmDatabase

    source = CrmDatabase(url=crm_url).source()
    records = source.changed_sales(Watermark.beginning(), timedelta(0)).records
    source.dispose()
    return [Sale.model_validate(record) for record in records if record["aiq_status"] == "posted"]


def floor_invoices(gateway: Any, sales: list[Any]) -> list[Any]:
    """The batch invoices of the posted sales, built outside any timing (customers made first)."""
    from aiq_flows.domain.sales import ReferenceData
    from tasks.customers import ensure_customer
    from tasks.invoices import batch_invoice

    templates = {}
    for sale in sales:
        if sale.customer_code not in templates:
            ensure_customer(gateway, sale.customer)
            templates[sale.customer_code] = gateway.new_batch_sales_invoice(sale.customer_code)
    rates = {t.Code: t.Rate for t in gateway.get_tax_codes()}
    reference = ReferenceData(rates, frozenset(g.code for g in gateway.get_gl_accounts()))
    return [batch_invoice(templates[s.customer_code], s, reference, "2400") for s in sales]


def naive_rate(gateway: Any, sales: list[Any], reference_rates: dict[str, Decimal]) -> tuple[int, float]:
    """GetNew / Save / Post per invoice, one after the other, as a per-invoice integration does."""
    from aiq_flows.gateway.models import InvoiceLine
    from tasks.customers import ensure_customer

    for code in {s.customer_code: s for s in sales}.values():
        ensure_customer(gateway, code.customer)
    started = time.perf_counter()
    for sale in sales:
        invoice = gateway.new_sales_invoice(sale.customer_code)
        invoice.ExternalReference = f"NAIVE-{sale.sale_id}"
        invoice.InvoiceDate = datetime.combine(sale.sale_date, day_start())
        invoice.Lines = [
            InvoiceLine(
                StockItemDescription=line.description,
                InvoicedQuantity=Decimal(1),
                StockItemPrice=line.net_amount,
                TaxCode=line.tax_code,
                GLAccountCode="2400" if sale.is_deferred else line.gl_account_code,
                DepartmentID=line.department_id,
            )
            for line in sale.lines
        ]
        gateway.post_invoice(gateway.save_invoice(invoice))
    return len(sales), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sales", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--page", type=int, default=2000, help="CRM sales read per page")
    parser.add_argument("--naive-sample", type=int, default=200)
    parser.add_argument("--sync-only", action="store_true", help="skip the naive loop and the raw floor")
    parser.add_argument("--attach", choices=["csv", "xlsx"], help="attach each invoice's breakdown")
    parser.add_argument("--pdfs", action="store_true", help="fetch each invoice's PDF")
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="aiq-bench-"))
    os.environ.pop("PREFECT_API_URL", None)  # an ephemeral Prefect server of our own
    os.environ.update(
        PREFECT_HOME=str(directory / "prefect"),
        PREFECT_LOGGING_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    )
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from prefect import flow
    from pydantic import SecretStr

    from blocks import AiqConnection, CrmDatabase, StateStore
    from flows.nightly_sales_sync import nightly_sales_sync

    @flow
    def warm_up() -> None:
        """Starts the ephemeral Prefect server outside the timings."""

    warm_up()
    sync_box = SandboxProcess(directory, args.latency_ms)
    try:
        crm_url = f"sqlite:///{directory / 'crm.db'}"
        started = time.perf_counter()
        # In another process, so that this one's peak memory is the sync's alone.
        seeding = (
            "import sys, datetime; from aiq_flows.sources.crm_sql import SqlCrm; "
            "from aiq_flows.sources.demo_crm import seed_demo_crm; "
            "seed_demo_crm(SqlCrm(sys.argv[1]), sales=int(sys.argv[2]), today=datetime.date(2026, 11, 25))"
        )
        subprocess.run([sys.executable, "-c", seeding, crm_url, str(args.sales)], check=True)
        print(f"seeded {args.sales:,} CRM sales in {time.perf_counter() - started:.1f} s")
        uk = next(e for e in sync_box.credentials["entities"] if e["company_id"] == "DEMO_UK")
        AiqConnection(
            endpoint_url=sync_box.url,
            company_id="DEMO_UK",
            partner_key=SecretStr(sync_box.credentials["partner_key"]),
            user_key=SecretStr(uk["user_key"]),
        ).save("bench-uk", overwrite=True)
        CrmDatabase(url=SecretStr(crm_url)).save("bench-crm", overwrite=True)
        StateStore(url=SecretStr(f"sqlite:///{directory / 'store.db'}")).save("bench-store", overwrite=True)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        summary = nightly_sales_sync(
            aiq_connection="bench-uk",
            crm_database="bench-crm",
            state_store="bench-store",
            chunk_size=args.chunk,
            page_size=args.page,
            attach_breakdown=args.attach,
            pdf_folder=str(directory / "pdfs") if args.pdfs else None,
        )
        sync_seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        sync_box.stop()
    created = summary["created"]
    sync_rate = created / sync_seconds
    print(f"latency per call      : {args.latency_ms} ms, {args.chunk} per bulk call, {args.page} per page")
    print(f"nightly sync          : {args.sales:,} sales -> {summary}")
    print(
        f"nightly sync          : {created:,} invoices in {sync_seconds:7.2f} s = "
        f"{sync_rate:8,.1f} invoices/s"
    )
    print(f"peak RSS (this process): {peak:,.0f} MB (before the sync: {rss_before:,.0f} MB)")
    if args.sync_only:
        return

    sales = posted_sales(crm_url)
    floor_box = SandboxProcess(directory, args.latency_ms)
    try:
        gateway = floor_box.gateway()
        invoices = floor_invoices(gateway, sales)
        started = time.perf_counter()
        for start in range(0, len(invoices), args.chunk):
            rows = gateway.create_batch_sales_invoices(invoices[start : start + args.chunk])
            assert all(row.ok for row in rows)
        floor_seconds = time.perf_counter() - started
    finally:
        floor_box.stop()
    naive_box = SandboxProcess(directory, args.latency_ms)
    try:
        gateway = naive_box.gateway()
        count, naive_seconds = naive_rate(gateway, sales[: args.naive_sample], {})
    finally:
        naive_box.stop()
    floor_rate = len(invoices) / floor_seconds
    naive = count / naive_seconds
    print(
        f"raw floor (bulk calls): {len(invoices):,} invoices in {floor_seconds:7.2f} s = "
        f"{floor_rate:8,.1f} invoices/s"
    )
    print(
        f"naive loop (sample)   : {count:,} invoices in {naive_seconds:7.2f} s = {naive:8,.1f} invoices/s "
        f"(10,000 would take {10_000 / naive / 60:.1f} min)"
    )
    print(f"sync vs naive loop    : {sync_rate / naive:6.1f}x faster (target >= 50x)")
    print(f"sync vs raw floor     : {floor_rate / sync_rate:6.2f}x the floor's time (target <= 1.5x)")


if __name__ == "__main__":
    main()
