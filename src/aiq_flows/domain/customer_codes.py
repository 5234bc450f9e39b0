"""Map CRM customer keys to AccountsIQ customer codes, stably.

AIQ codes are upper case, at most 50 characters, without surrounding spaces, from a restricted
alphabet, and AIQ never generates them. The mapping is a pure function of the CRM key, so every
run (and every machine) derives the same code; a key too long to fit keeps a readable prefix and
gets a short hash of the whole key, so two long keys never collide on their common prefix.
"""

from __future__ import annotations

import hashlib
import re

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
