"""After posting: a breakdown of each invoice's lines attached to it in AIQ (CSV or Excel), and
its PDF fetched into a folder the report links to. Both are safe to repeat: AIQ refuses a second
file of the same name on a transaction, and a PDF already on disk is kept."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from logging import Logger, LoggerAdapter
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from aiq_flows.domain.outcomes import Outcome, SaleOutcome
from aiq_flows.domain.sales import Sale
from aiq_flows.gateway.client import AiqGateway
from aiq_flows.gateway.errors import AiqBusinessError
from blocks.aiq import AiqConnection

BreakdownFormat = Literal["csv", "xlsx"]
ALREADY_ATTACHED = "DOCUMENT_CANNOT_BE_SAVED_NAME_NOT_UNIQUE"


@dataclass(frozen=True)
class DocumentSettings:
    breakdown: BreakdownFormat | None = None  # attach the lines as CSV or Excel; None: do not
    pdf_folder: str | None = None  # fetch each invoice's PDF into <folder>/<entity>/<reference>.pdf


def breakdown(sale: Sale, file_format: BreakdownFormat) -> bytes:
    """The sale's lines as a CSV or an Excel workbook."""
    frame = pd.DataFrame(
        [
            {
                "line": line.line_no,
                "description": line.description,
                "gl_account": line.gl_account_code,
                "tax_code": line.tax_code,
                "net": str(line.net),
                "tax": str(line.tax),
                "gross": str(line.gross_amount),
                "bi_code": line.department_id or "",
            }
            for line in sale.lines
        ]
    )
    if file_format == "csv":
        text: str = frame.to_csv(index=False)
        return text.encode()
    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False, sheet_name=sale.external_reference)
    return buffer.getvalue()


# Attachments and PDFs are one call each per invoice: a few at a time, so a night of invoices does
# not wait out the latency of every call in turn. Plain threads inside the task rather than a task run
# per invoice: thousands of task runs a night would swamp the API and the UI. (The gateway is shared
# by threads already.)
DOCUMENT_THREADS = 4


def _attach_breakdown(
    gateway: AiqGateway,
    sale: Sale,
    transaction_id: int,
    file_format: BreakdownFormat,
    logger: Logger | LoggerAdapter[Any],
) -> bool:
    name = f"{sale.external_reference}-lines.{file_format}"
    try:
        gateway.attach_document("Transaction", transaction_id, name, breakdown(sale, file_format))
        return True
    except AiqBusinessError as error:
        if error.error_code != ALREADY_ATTACHED:
            logger.warning("Could not attach %s: %s", name, error)
        return False


def _fetch_pdf(gateway: AiqGateway, sale: Sale, transaction_id: int, folder: Path) -> str:
    path = folder / f"{sale.external_reference}.pdf"
    if not path.exists():
        partial = path.with_suffix(".pdf.part")  # never a half-written PDF under the real name
        partial.write_bytes(gateway.invoice_pdf(transaction_id))
        partial.replace(path)
    return str(path)


@task(name="attach-breakdowns-and-fetch-pdfs", cache_policy=NONE)
def attach_and_fetch(
    aiq: AiqConnection, sales: list[Sale], outcomes: list[SaleOutcome], settings: DocumentSettings
) -> dict[str, str]:
    """For each invoice created or found in this run: its breakdown and its PDF. Returns
    {external reference: PDF path}. One invoice's failure does not stop the others; the first
    one is raised once all are done (the run fails, and its re-run fetches what is missing)."""
    gateway = aiq.gateway()
    posted = {
        o.sale_id: o.transaction_id
        for o in outcomes
        if o.outcome in (Outcome.CREATED, Outcome.ALREADY_PRESENT) and o.transaction_id is not None
    }
    folder = Path(settings.pdf_folder) / aiq.company_id if settings.pdf_folder else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)

    logger = get_run_logger()  # the worker threads below have no Prefect run context of their own
    file_format = settings.breakdown

    def documents(sale: Sale, transaction_id: int) -> tuple[bool, str | None]:
        attached = file_format is not None and _attach_breakdown(
            gateway, sale, transaction_id, file_format, logger
        )
        return attached, None if folder is None else _fetch_pdf(gateway, sale, transaction_id, folder)

    invoiced = [(sale, posted[sale.sale_id]) for sale in sales if sale.sale_id in posted]
    with ThreadPoolExecutor(DOCUMENT_THREADS, thread_name_prefix="aiq-documents") as pool:
        futures = [(sale, pool.submit(documents, sale, tx)) for sale, tx in invoiced]
    pdfs: dict[str, str] = {}
    attached = 0
    failures: list[tuple[Sale, BaseException]] = []
    for sale, future in futures:
        error = future.exception()
        if error is not None:
            failures.append((sale, error))
            continue
        was_attached, pdf = future.result()
        attached += was_attached
        if pdf is not None:
            pdfs[sale.external_reference] = pdf
    logger.info("Attached %d breakdowns, %d PDFs in %s", attached, len(pdfs), folder)
    for sale, error in failures:
        logger.error("Documents of %s not complete: %s", sale.external_reference, error)
    if failures:
        raise failures[0][1]
    return pdfs


@task(name="publish-pdf-links", cache_policy=NONE)
def publish_pdf_links(pdfs: dict[str, str], entity: str) -> None:
    if not pdfs:
        return
    lines = [
        f"# Invoice PDFs ({entity})",
        "",
        f"{len(pdfs)} PDFs in `{Path(next(iter(pdfs.values()))).parent}`",
        "",
    ]
    lines += [
        f"- [{reference}]({Path(path).resolve().as_uri()})" for reference, path in sorted(pdfs.items())[:500]
    ]
    create_markdown_artifact(
        key="nightly-sales-sync-pdfs", markdown="\n".join(lines), description="Invoice PDFs"
    )
