"""A source record's version: what the sync compares to tell whether a record changed after its
document was posted.

The version is a hash of the record's content as the sync read and validated it, never its change
time: most CRMs bump their ``modified`` column on every update, the sync's own write-back
included, and a change time would then report every written-back sale as changed after posting.

Versions of different kinds are not compared: a store written by release 0.1 holds change times
where this release holds hashes, and the two say nothing about each other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

CONTENT = "sha256:"


def content_version(fields: Mapping[str, Any]) -> str:
    """``sha256:`` and the hash of the fields as canonical JSON (sorted keys; values as text)."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return CONTENT + hashlib.sha256(canonical.encode()).hexdigest()[:48]


def changed_since(posted: str | None, now: str) -> bool:
    """Whether the source changed since the version that was posted: False when the posted
    version is unknown or of another kind (see the module's docstring)."""
    if posted is None or posted.startswith(CONTENT) != now.startswith(CONTENT):
        return False
    return posted != now
