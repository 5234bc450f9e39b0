"""Deterministic external references: the key that makes every AIQ document exactly-once.

AccountsIQ does not enforce unique references and allows at most 50 characters; the same source
record must always map to the same reference so that a re-run finds what an earlier run posted.
"""

from __future__ import annotations

MAX_EXTERNAL_REFERENCE = 50


class ReferenceTooLong(ValueError):
    pass


def checked(reference: str) -> str:
    """`reference`, if AIQ can store it."""
    if len(reference) > MAX_EXTERNAL_REFERENCE:
        raise ReferenceTooLong(
            f"external reference {reference!r} is longer than {MAX_EXTERNAL_REFERENCE} characters"
        )
    return reference


def sale_reference(sale_id: str | int) -> str:
    """The batch or item invoice for one CRM sale: ``S-<sale id>``."""
    return checked(f"S-{sale_id}")
