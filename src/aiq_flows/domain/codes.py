"""The error codes the project itself writes on an outcome, the store and the CRM. AccountsIQ's own
ErrorCodes (ACCOUNT_EMAIL_INVALID_FORMAT, SALES_LEDGER_ALREADY_CLOSED, ...) pass through as AIQ
sends them; these are the others, one name each, so a report, a runbook and a test mean the same."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # Sending: what the exactly-once engine records.
    TRANSIENT = "TRANSIENT"  # AIQ out of reach, nothing sent: retried next run
    UNKNOWN_OUTCOME = "UNKNOWN_OUTCOME"  # sent, answer lost, not visible yet: read before any resend
    UNEXPECTED_ERROR = "UNEXPECTED_ERROR"  # an error nobody foresaw while sending: treated as unknown
    CHANGED_AFTER_POSTING = "CHANGED_AFTER_POSTING"  # the source changed after its document was posted
    REQUEST_NOT_SENDABLE = "REQUEST_NOT_SENDABLE"  # text XML cannot carry: refused before sending
    DOCUMENT_NOT_BUILT = "DOCUMENT_NOT_BUILT"  # this record's document could not be made
    CHUNK_FAILED = "CHUNK_FAILED"  # a posting chunk failed as a whole: its records stay pending
    # Pairs (back-to-back, intercompany).
    DUPLICATE_LEG = "DUPLICATE_LEG"  # AIQ holds a leg's reference posted twice: a person must look
    TOTALS_DIFFER = "TOTALS_DIFFER"  # AIQ computed other totals than the source's pricing
    NO_COMPENSATION = "NO_COMPENSATION"  # a posted leg of a withdrawn pair has no way to be reversed
    # Before sending.
    HELD = "HELD"  # valid, waiting for a person or AIQ (limits, periods, credit)
    PERIOD_CLOSED = "PERIOD_CLOSED"  # no open period to post a journal in, under the policy


def invalid(field: str) -> str:
    """The code of a quarantined record: INVALID:<the field that refused it>."""
    return f"INVALID:{field}"
