"""The sandbox's operations, registered with `aiq_flows.sandbox.service.handles` on import."""

from aiq_flows.sandbox.operations import accounts, departments, documents, reference

__all__ = ["accounts", "departments", "documents", "reference"]
