"""Deterministic external references: the key that makes every AIQ document exactly-once.

AccountsIQ does not enforce unique references and allows at most 50 characters; the same source
record must always map to the same reference so that a re-run finds what an earlier run posted.
Every format the project uses is built here, and read back here:

- ``S-<sale id>``: a sale's batch or item invoice (the prefix is the source's, ``S-`` by default);
- ``DEF-<sale reference>-<yyyymm>``: the journal releasing one month of a deferred sale, and
  ``DEF-<sale reference>-CR`` the one releasing what remained when the sale was credited;
- ``B2B-<job>-P`` / ``-S``: a back-to-back job's purchase and sales legs, ``B2B-<job>`` the pair;
- ``IC-<charge>-S`` / ``-P``: an intercompany charge's sales and purchase legs, ``IC-<charge>`` the pair;
- ``<reference>-CN``: the credit note reversing a posted sales leg;
- ``R-<payment id>``: the receipt of a customer's payment (AIQ keeps it in the receipt's
  CheckReference, its external reference).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

MAX_EXTERNAL_REFERENCE = 50
SALE_PREFIX = "S-"


class ReferenceTooLong(ValueError):
    pass


def checked(reference: str) -> str:
    """`reference`, if AIQ can store it."""
    if len(reference) > MAX_EXTERNAL_REFERENCE:
        raise ReferenceTooLong(
            f"external reference {reference!r} is longer than {MAX_EXTERNAL_REFERENCE} characters"
        )
    return reference


def sale_reference(sale_id: str | int, prefix: str = SALE_PREFIX) -> str:
    """The batch or item invoice for one CRM sale: ``S-<sale id>``."""
    return checked(f"{prefix}{sale_id}")


def receipt_reference(payment_id: str | int) -> str:
    """The receipt for one payment: ``R-<payment id>``."""
    return checked(f"R-{payment_id}")


def is_sale_reference(reference: str, prefix: str = SALE_PREFIX) -> bool:
    """Whether an AIQ document's reference is one of a source's sales (``S-<sale id>``)."""
    return reference.startswith(prefix) and len(reference) > len(prefix)


def release_reference(sale_reference: str, month: date) -> str:
    """``DEF-<sale ref>-<yyyymm>``: the journal that releases one month of one sale."""
    return checked(f"DEF-{sale_reference}-{month:%Y%m}")


def release_credit_reference(sale_reference: str) -> str:
    """``DEF-<sale ref>-CR``: the journal that releases what remained when the sale was credited."""
    return checked(f"DEF-{sale_reference}-CR")


class PairKind(StrEnum):
    BACK_TO_BACK = "B2B"  # a purchase leg (P) and a sales leg (S) in one entity
    INTERCOMPANY = "IC"  # a sales leg (S) in the seller, a purchase leg (P) in the buyer


Leg = Literal["purchase", "sales"]


def pair_key(kind: PairKind, source_id: str | int) -> str:
    """The pair's own record in the store: ``B2B-<job>``, ``IC-<charge>``."""
    return checked(f"{kind.value}-{source_id}")


def leg_reference(kind: PairKind, source_id: str | int, leg: Leg) -> str:
    """One leg of a pair: ``B2B-<job>-P``, ``IC-<charge>-S``."""
    return checked(f"{pair_key(kind, source_id)}-{'P' if leg == 'purchase' else 'S'}")


def credit_note_reference(reference: str) -> str:
    """``<reference>-CN``: the credit note that reverses a posted sales leg."""
    return checked(f"{reference}-CN")
