"""The suite-wide secrets scan: after every test has run, every file the tests left behind (the
Prefect API's database with its logs and artifacts, stores, CRMs, reports, PDFs, results files)
is searched for every key, client secret and token any sandbox issued during the session.

The sandbox's own files are AIQ's side and are not searched. The secrets are `token_urlsafe`
strings of 32 or 43 characters: each file is scanned once for runs of URL-safe characters and
every window of those lengths is looked up, which finds a secret embedded anywhere."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path

SECRET_LENGTHS = (32, 43)
# Secrets issued outside a sandbox database during the session (the Salesforce stand-in's).
ISSUED_ELSEWHERE: set[str] = set()
_URL_SAFE_RUN = re.compile(rb"[A-Za-z0-9_-]{%d,}" % min(SECRET_LENGTHS))


def issued_secrets(sandbox_db: Path) -> set[str]:
    """The partner key, user keys, client secrets and every token the sandbox issued."""
    queries = (
        "SELECT value FROM meta WHERE key = 'partner_key'",
        "SELECT user_key FROM entities",
        "SELECT client_secret FROM integration_apps",
        "SELECT token FROM tokens",
        "SELECT token FROM access_tokens",
    )
    with sqlite3.connect(f"file:{sandbox_db}?mode=ro", uri=True) as db:
        return {str(row[0]) for query in queries for row in db.execute(query)}


def _is_sandbox_file(path: Path) -> bool:
    return path.name.startswith("sandbox.")


def files_to_scan(roots: Iterable[Path]) -> list[Path]:
    return sorted(
        {path for root in roots for path in root.rglob("*") if path.is_file() and not _is_sandbox_file(path)}
    )


def hits(files: Iterable[Path], secrets: set[str]) -> list[tuple[Path, str]]:
    """(file, first four characters) for every secret found in a file."""
    encoded = {secret.encode(): secret for secret in secrets}
    found: list[tuple[Path, str]] = []
    for path in files:
        try:
            content = path.read_bytes()
        except OSError:  # removed while scanning (a server's journal)
            continue
        seen: set[str] = set()
        for run in _URL_SAFE_RUN.finditer(content):
            text = run.group()
            for length in SECRET_LENGTHS:
                for start in range(len(text) - length + 1):
                    secret = encoded.get(text[start : start + length])
                    if secret is not None and secret not in seen:
                        seen.add(secret)
                        found.append((path, secret[:4]))
    return found
