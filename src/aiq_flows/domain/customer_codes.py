"""Map CRM customer keys to AccountsIQ customer codes, stably.

AIQ codes are upper case, at most 50 characters, without surrounding spaces, from a restricted
alphabet, and AIQ never generates them. The mapping is a pure function of the CRM key, so every
run (and every machine) derives the same code; a key too long to fit keeps a readable prefix and
gets a short hash of the whole key, so two long keys never collide on their common prefix.
Keys that differ only in case or punctuation do normalise to one code: `code_collisions` finds
them, so that they are refused instead of merged.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MAX_CODE = 50
_HASH_LENGTH = 8
_INVALID = re.compile(r"[^A-Z0-9_.\-/&]+")


def aiq_customer_code(crm_key: str) -> str:
    cleaned = _INVALID.sub("-", crm_key.strip().upper()).strip("-")
    if not cleaned:
        raise ValueError(f"CRM customer key {crm_key!r} has no character usable in an AIQ code")
    if len(cleaned) <= MAX_CODE:
        return cleaned
    digest = hashlib.sha256(crm_key.encode()).hexdigest()[:_HASH_LENGTH].upper()
    return f"{cleaned[: MAX_CODE - _HASH_LENGTH - 1]}-{digest}"


@dataclass(frozen=True)
class CodeClaim:
    """A CRM customer on its AIQ code: `derived` from its key, or given by the source."""

    code: str
    key: str
    derived: bool = True


def code_collisions(claims: Iterable[CodeClaim], owners: Mapping[str, str]) -> dict[str, str]:
    """{key: why} for each CRM customer that may not use its AIQ code, so that two CRM customers
    are never merged into one AIQ account by the normalisation of their keys ("Zeta Traders" and
    "ZETA-TRADERS" are both ZETA-TRADERS).

    A code belongs to the key `owners` records for it (the first customer synced on it). A key
    whose code was derived is refused when the code belongs to another key, or, when nobody owns
    the code yet, when another key is on it too (then every derived key on it is refused: there is
    no telling which is meant). A code the source gives explicitly is the source's decision and is
    never refused.
    """
    keys_on: dict[str, set[str]] = {}
    derived: set[tuple[str, str]] = set()
    for claim in claims:
        keys_on.setdefault(claim.code, set()).add(claim.key)
        if claim.derived:
            derived.add((claim.code, claim.key))
    refused: dict[str, str] = {}
    for code, keys in keys_on.items():
        owner = owners.get(code)
        for key in sorted(keys):
            if (code, key) not in derived or key == owner:
                continue
            if owner is not None:
                refused[key] = (
                    f"{key!r} maps to AIQ customer code {code}, which belongs to CRM customer {owner!r}: "
                    "give this customer its own code in the source, or merge the two in the CRM"
                )
            elif len(keys) > 1:
                *first, last = (repr(k) for k in sorted(keys))
                refused[key] = (
                    f"CRM customers {', '.join(first)} and {last} map to one AIQ customer code, {code}: "
                    "give each its own code in the source, or merge them in the CRM; none of them is "
                    "posted until then"
                )
    return refused
