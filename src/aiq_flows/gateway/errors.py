"""What can go wrong when calling AccountsIQ, told apart by what the caller may safely do next.

- `AiqBusinessError`: AIQ answered and refused (in-band ``Failure``, ``NotCreated``, ...). Nothing
  changed; retrying the same request gives the same answer. Carries ``Status``, ``ErrorCode``,
  ``ErrorMessage``.
- `AiqTransientError`: the request certainly did not take effect (connection refused, HTTP 503
  before processing, a read that timed out). Safe to retry. `AiqRateLimited` is the rate
  limiter's refusal (2.0 ``..._TOO_MANY_API_CALLS``, HTTP 429).
- `AiqUnknownOutcome`: a *write* was sent and no answer came back (timeout, dropped connection,
  HTTP 5xx). AIQ may or may not have committed it: read back by external reference before any
  retry.
- `AiqRequestInvalid`: refused before sending (a value XML cannot carry); nothing was sent.
- `AiqAuthenticationError`: Login gave no token (bad keys, wrong region or environment).

Messages never contain keys or tokens: they name the operation, never the request body.
"""

from __future__ import annotations

from aiq_flows.domain.codes import ErrorCode


class AiqError(Exception):
    """Base class for every error raised by the gateway."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(f"{operation}: {message}")
        self.operation = operation


class AiqAuthenticationError(AiqError):
    pass


class AiqTransientError(AiqError):
    pass


class AiqRateLimited(AiqTransientError):
    """AIQ's rate limiter refused the call before processing it: safe to repeat, even a write,
    after a pause."""


class AiqUnknownOutcome(AiqError):
    pass


class AiqBusinessError(AiqError):
    def __init__(self, operation: str, status: str, error_code: str, error_message: str | None):
        self.status = status
        self.error_code = error_code
        self.error_message = error_message or ""
        super().__init__(operation, f"{status} {error_code}: {self.error_message}".rstrip(": "))


class AiqRequestInvalid(AiqBusinessError):
    """Refused here, before anything was sent: the request holds a value AccountsIQ's XML cannot
    carry (a control character, say). Like AIQ's own refusals, sending it again changes nothing."""

    CODE = ErrorCode.REQUEST_NOT_SENDABLE

    def __init__(self, operation: str, where: str) -> None:
        super().__init__(operation, "NotSent", self.CODE, where)


class AiqNotFound(AiqBusinessError):
    """A read for something that does not exist (e.g. CUSTOMER_CODE_DOES_NOT_EXIST)."""


NOT_FOUND_CODES = frozenset(
    {
        "CUSTOMER_CODE_DOES_NOT_EXIST",
        "SUPPLIER_CODE_DOES_NOT_EXIST",
        "DEPARTMENT_ID_DOES_NOT_EXIST",
        "TRANSACTION_NOT_FOUND",
        "INVOICE_ID_DOES_NOT_EXIST",
        "STOCKITEM_ID_DOES_NOT_EXIST",
        "NOT_FOUND",
    }
)
