"""The sandbox's operations, registered with `aiq_flows.sandbox.service.handles` on import."""

from aiq_flows.sandbox.operations import (
    accounts,
    attachments,
    departments,
    documents,
    invoices,
    receipts,
    reference,
)

__all__ = ["accounts", "attachments", "departments", "documents", "invoices", "receipts", "reference"]
