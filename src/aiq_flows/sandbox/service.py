"""The sandbox's core: authentication, the operation registry, and what every handler shares.

Handlers (in `aiq_flows.sandbox.operations`) receive the deserialised request body as plain dicts
and return the ``Result`` value plus any out-parameters; business refusals raise `Refused`, which
the dispatcher turns into an in-band ``Failure`` envelope with AIQ's real ``ErrorCode`` name, as
AccountsIQ does (HTTP 200, never a fault). Behaviour follows API-NOTES §3, §4 and §9.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiq_flows.gateway.schema import SCHEMA
from aiq_flows.sandbox.ledger import Ledger

CODE_MAX = 50
DESCRIPTION_MAX = 500
CENT = Decimal("0.01")
_DEFAULTS: dict[str, Any] = {
    "int": 0,
    "long": 0,
    "short": 0,
    "unsignedByte": 0,
    "decimal": Decimal(0),
    "double": 0.0,
    "boolean": False,
}
# What each ledger's accounts are called, in the API's names and in its error codes.
ACCOUNT_KINDS = {"Sales": ("Customer", "CUSTOMER"), "Purchases": ("Supplier", "SUPPLIER")}
LEDGER_CLOSED = {
    "Sales": "SALES_LEDGER_ALREADY_CLOSED",
    "Purchases": "PURCHASES_LEDGER_ALREADY_CLOSED",
    "General": "GENERAL_LEDGER_ALREADY_CLOSED",
}


class Refused(Exception):
    """An in-band refusal: AIQ answers Status/ErrorCode/ErrorMessage with HTTP 200."""

    def __init__(self, code: str, message: str, status: str = "Failure") -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class TokenExpired(Exception):
    """The call's credentials are refused unprocessed; ``HasExpired`` tells the caller to renew."""

    def __init__(
        self,
        code: str = "WS_INVALIDTOKEN",
        message: str = "The token has expired; call Login again.",
        has_expired: bool = True,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.has_expired = code, message, has_expired


REFRESH_TOKEN_TTL_SECONDS = 30 * 24 * 3600


def default_value(type_name: str) -> Any:
    """What .NET gives a value-typed member it was not given (0, false, the enum's first name)."""
    if type_name in SCHEMA.enums:
        return SCHEMA.enums[type_name][0]
    return _DEFAULTS.get(type_name)


def blank(type_name: str) -> dict[str, Any]:
    """A value of a complex type with every field present: what .NET serialises for a new object."""
    values: dict[str, Any] = {}
    for f in SCHEMA.all_fields(type_name):
        if f.type == "dateTime" and f.required and not f.nillable:
            values[f.name] = datetime(1, 1, 1)
        elif f.required and not f.nillable:
            values[f.name] = default_value(f.type)
        else:
            values[f.name] = None
    return values


def money(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else 0))


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def check_code(value: str | None, subject: str, where: str, *, nullable: bool = False) -> None:
    """AIQ's rule for every code a document names (GL accounts, tax codes, BI codes): present,
    not empty, upper case, at most 50 characters; refused with ``<subject>_IS_NULL``,
    ``_IS_EMPTY``, ``_IS_NOT_UPPERCASE`` or ``_IS_TOO_LONG``, all in AIQ's error list."""
    if value is None:
        if nullable:
            return
        raise Refused(f"{subject}_IS_NULL", f"{where} is required.")
    if value == "":
        raise Refused(f"{subject}_IS_EMPTY", f"{where} is empty.")
    if value != value.upper():
        raise Refused(f"{subject}_IS_NOT_UPPERCASE", f"{where} '{value}' must be upper case.")
    if len(value) > CODE_MAX:
        raise Refused(f"{subject}_IS_TOO_LONG", f"{where} is longer than {CODE_MAX} characters.")


def check_description(value: str | None, where: str, *, empty_code: str | None = None) -> str:
    """A transaction line's description: not null (and, where AIQ says so, not empty), at most
    500 characters."""
    if value is None:
        raise Refused("TRANSACTION_LINE_DESCRIPTION_IS_NULL", f"{where} has no description.")
    if value == "" and empty_code is not None:
        raise Refused(empty_code, f"{where} has an empty description.")
    if len(value) > DESCRIPTION_MAX:
        raise Refused(
            "TRANSACTION_LINE_DESCRIPTION_IS_TOO_LONG",
            f"{where}: description is longer than {DESCRIPTION_MAX} characters.",
        )
    return value


def items(wrapper: Any, item: str) -> list[Any]:
    """The elements of an ASP.NET array parameter (``{'string': [...]}``; None when absent)."""
    return list((wrapper or {}).get(item) or [])


@dataclass
class Reply:
    result: Any = None
    out: dict[str, Any] = field(default_factory=dict)
    status: str = "Success"


@dataclass
class Call:
    entity: str
    params: dict[str, Any]


Handler = Callable[["SandboxService", Call], Reply]
HANDLERS: dict[str, Handler] = {}
# Out-parameter values AIQ returns when a GetBack... operation fails.
FAILED_OUT: dict[str, dict[str, Any]] = {
    "CreateBatchSalesInvoiceGetBackTransactionID": {"transactionID": -1},
    "CreateBatchPurchasesInvoiceGetBackTransactionID": {"transactionID": -1},
    "PostInvoiceGetBackTransactionID": {"transactionID": -1},
    "PostCreditNoteGetBackTransactionID": {"transactionID": -1},
}


def handles(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


class SandboxService:
    def __init__(self, ledger: Ledger, token_ttl_seconds: float = 1200.0) -> None:
        self.ledger = ledger
        self.token_ttl_seconds = token_ttl_seconds

    # --- authentication --------------------------------------------------------------------------

    def login(self, company_id: str | None, partner_key: str | None, user_key: str | None) -> str | None:
        creds = self.ledger.credentials()
        for entity in creds["entities"]:
            if (
                entity["company_id"] == company_id
                and secrets.compare_digest(creds["partner_key"], partner_key or "")
                and secrets.compare_digest(entity["user_key"], user_key or "")
            ):
                token = secrets.token_urlsafe(32)
                with self.ledger.transaction() as db:
                    db.execute(
                        "INSERT INTO tokens VALUES (?, ?, ?)",
                        (token, company_id, time.time() + self.token_ttl_seconds),
                    )
                return token
        return None

    def entity_for(self, token: str | None) -> str:
        row = self.ledger.query_one("SELECT entity, expires_at FROM tokens WHERE token = ?", token or "")
        if row is None or row["expires_at"] <= time.time():
            raise TokenExpired()
        return str(row["entity"])

    def expire_tokens(self, token: str | None = None) -> None:
        """Expire 1.1 session tokens and 2.0 access tokens (all, or the one given)."""
        with self.ledger.transaction() as db:
            if token is None:
                db.execute("UPDATE tokens SET expires_at = 0")
                db.execute("UPDATE access_tokens SET expires_at = 0 WHERE kind = 'access'")
            else:
                db.execute("UPDATE tokens SET expires_at = 0 WHERE token = ?", (token,))
                db.execute("UPDATE access_tokens SET expires_at = 0 WHERE token = ?", (token,))

    # --- API 2.0: integration applications, access and refresh tokens -----------------------------

    def _app(self, client_id: str | None, client_secret: str | None) -> dict[str, Any]:
        if not client_id:
            raise Refused("OAUTH_INTEGRATION_APPS_CLIENTID_IS_NULL_OR_EMPTY", "clientId is required.")
        if not client_secret:
            raise Refused("OAUTH_INTEGRATION_APPS_CLIENTSECRET_IS_NULL_OR_EMPTY", "clientSecret is required.")
        row = self.ledger.query_one("SELECT * FROM integration_apps WHERE client_id = ?", client_id)
        if row is None or not secrets.compare_digest(row["client_secret"], client_secret):
            raise Refused(
                "OAUTH_INTEGRATION_APPS_APP_NOT_FOUND", "No integration application has these credentials."
            )
        return dict(row)

    def _issue(self, client_id: str) -> dict[str, str]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.time()
        with self.ledger.transaction() as db:
            db.execute(
                "INSERT INTO access_tokens VALUES (?, 'access', ?, ?)",
                (access, client_id, now + self.token_ttl_seconds),
            )
            db.execute(
                "INSERT INTO access_tokens VALUES (?, 'refresh', ?, ?)",
                (refresh, client_id, now + REFRESH_TOKEN_TTL_SECONDS),
            )
        return {"AccessToken": access, "RefreshToken": refresh}

    def token_get(self, client_id: str | None, client_secret: str | None) -> dict[str, str]:
        return self._issue(self._app(client_id, client_secret)["client_id"])

    def token_refresh(
        self, client_id: str | None, client_secret: str | None, refresh_token: str | None
    ) -> dict[str, str]:
        """A new access and refresh token; the refresh token used is spent (rotation)."""
        app = self._app(client_id, client_secret)
        with self.ledger.transaction() as db:
            spent = db.execute(
                "DELETE FROM access_tokens WHERE token = ? AND kind = 'refresh' AND client_id = ? "
                "AND expires_at > ?",
                (refresh_token or "", app["client_id"], time.time()),
            ).rowcount
        if not spent:
            raise Refused(
                "OAUTH_INTEGRATION_APPS_REFRESH_TOKEN_EXPIRED", "The refresh token is expired or unknown."
            )
        return self._issue(app["client_id"])

    def app_for_access(self, access_token: str | None) -> dict[str, Any]:
        if not access_token:
            raise TokenExpired(
                "OAUTH_INTEGRATION_APPS_TOKEN_NOT_PROVIDED_IN_AUTHORIZATION_HEADER",
                "No access token: send the AiqSoapHeader with the AccessToken from TokenGet.",
                has_expired=False,
            )
        row = self.ledger.query_one(
            "SELECT a.*, t.expires_at FROM access_tokens t JOIN integration_apps a "
            "ON a.client_id = t.client_id WHERE t.token = ? AND t.kind = 'access'",
            access_token or "",
        )
        if row is None:
            raise TokenExpired(
                "OAUTH_INTEGRATION_APPS_TOKEN_IS_INVALID", "The access token is not valid.", has_expired=False
            )
        if row["expires_at"] <= time.time():
            raise TokenExpired(
                "OAUTH_INTEGRATION_APPS_TOKEN_EXPIRED", "The access token has expired; call TokenRefresh."
            )
        return {**dict(row), "entities": json.loads(row["entities"])}

    def entity_for_header(self, access_token: str | None, entity: str | None) -> str:
        """The entity a 2.0 call acts on: the header's, if it exists and the token's application
        may reach it (an entity that exists nowhere is a different refusal from one out of reach)."""
        app = self.app_for_access(access_token)
        if not entity:
            raise Refused(
                "OAUTH_INTEGRATION_APPS_NO_ENTITY_PROVIDED_IN_HEADER", "AiqSoapHeader.Entity is required."
            )
        if self.ledger.query_one("SELECT 1 FROM entities WHERE company_id = ?", entity) is None:
            raise Refused("API_LAYER_ENTITY_ID_NOT_FOUND", f"Entity {entity} does not exist.")
        if entity not in app["entities"]:
            raise Refused(
                "OAUTH_INTEGRATION_APPS_TOKEN_DOES_NOT_HAVE_PERMISSION",
                f"The integration application cannot reach entity {entity}.",
            )
        return entity

    def entities_of(self, access_token: str | None) -> list[dict[str, Any]]:
        app = self.app_for_access(access_token)
        found = []
        for entity in app["entities"]:
            settings = self.ledger.entity_settings(entity)
            found.append(
                {
                    "EntityID": entity,
                    "EntityName": settings["name"],
                    "BaseCurrency": settings["base_currency"],
                }
            )
        return found

    def handle(self, operation: str, entity: str, params: dict[str, Any]) -> Reply:
        return HANDLERS[operation](self, Call(entity, params))

    # --- lookups shared by handlers --------------------------------------------------------------

    def account(self, entity: str, ledger: str, code: str | None) -> dict[str, Any]:
        found = self.ledger.account(entity, ledger, code or "")
        if found is None:
            kind, prefix = ACCOUNT_KINDS[ledger]
            raise Refused(f"{prefix}_CODE_DOES_NOT_EXIST", f"{kind} code '{code}' does not exist.")
        return found

    def account_by_id(self, entity: str, ledger: str, account_id: int | None) -> dict[str, Any]:
        if not account_id or account_id <= 0:
            raise Refused("ACCOUNT_ID_IS_NEGATIVE_OR_ZERO", "AccountID must be greater than 0.")
        row = self.ledger.query_one(
            "SELECT code FROM accounts WHERE entity = ? AND ledger = ? AND account_id = ?",
            entity,
            ledger,
            account_id,
        )
        if row is None:
            raise Refused("ACCOUNT_ID_DOES_NOT_EXIST", f"Account {account_id} does not exist.")
        return self.account(entity, ledger, row["code"])

    def exchange_rate(self, entity: str, currency: str | None) -> Decimal:
        """Units of ``currency`` per unit of the entity's base currency."""
        base = self.ledger.entity_settings(entity)["base_currency"]
        row = self.ledger.query_one(
            "SELECT rate FROM currencies WHERE entity = ? AND code = ?", entity, currency or base
        )
        return Decimal(row["rate"]) if row else Decimal(1)

    def attachment_count(self, entity: str, master_id: str) -> int:
        row = self.ledger.query_one(
            "SELECT COUNT(*) AS n FROM attachments WHERE entity = ? AND master_type = 'Transaction' "
            "AND master_id = ?",
            entity,
            master_id,
        )
        return int(row["n"]) if row else 0

    def exists(self, table: str, entity: str, code: str | None) -> bool:
        key = "department_id" if table == "departments" else "code"
        return (
            self.ledger.query_one(f"SELECT 1 FROM {table} WHERE entity = ? AND {key} = ?", entity, code or "")
            is not None
        )

    def check_department(
        self, entity: str, department: str | None, where: str, gl_code: str | None = None
    ) -> None:
        """A posting line's BI code: absent, or a well-formed code that exists and is active; and a
        departmental GL account is never posted without one.

        An inactive code is refused (``UNKNOWN_DEPARTMENT``): retiring a code with
        ``UpdateDepartment(active=false)`` is how AIQ's guide says to stop its use, inactive codes
        leave AIQ's lookups, and AIQ's own error list names inactive BI codes where it checks
        them (``WORKFLOW_BI_CODE_INACTIVE``, ``PROJECT_INACTIVE_BI_CODE``). Which code AIQ answers
        on a posting line is not published; this one is inferred (README, "Field rules")."""
        if department is not None:
            check_code(department, "DEPARTMENT_ID", f"{where}: department", nullable=True)
            row = self.ledger.query_one(
                "SELECT active FROM departments WHERE entity = ? AND department_id = ?", entity, department
            )
            if row is None:
                raise Refused(
                    "DEPARTMENT_ID_DOES_NOT_EXIST", f"{where}: department '{department}' does not exist."
                )
            if not row["active"]:
                raise Refused(
                    "UNKNOWN_DEPARTMENT",
                    f"{where}: department '{department}' is inactive; reactivate it or use another BI code.",
                )
        gl = self.ledger.gl_account(entity, gl_code) if gl_code and department is None else None
        if gl is not None and gl["departmental"]:
            raise Refused(
                "GLACCOUNT_NO_DEPARTMENT_IS_DEPARTMENTAL",
                f"{where}: GL account '{gl_code}' is departmental and needs a department (BI code).",
            )

    def open_period(self, entity: str, ledger: str, day: datetime) -> int:
        period = self.ledger.period_for(entity, day.date())
        if period is None:
            raise Refused("DATE_IS_OUT_OF_RANGE", f"{day.date()} is outside the entity's periods.")
        if not period.open[ledger]:
            raise Refused(
                LEDGER_CLOSED[ledger],
                f"The {ledger.lower()} ledger is closed for {period.year}-{period.number:02d}.",
            )
        return period.period_id

    def due_date(self, entity: str, credit_term: str | None, invoice_date: datetime) -> datetime:
        row = self.ledger.query_one(
            "SELECT * FROM credit_terms WHERE entity = ? AND code = ?", entity, credit_term or ""
        )
        if row is None:
            return invoice_date
        start = invoice_date
        if row["end_of_month"]:
            next_month = (invoice_date.replace(day=28) + timedelta(days=4)).replace(day=1)
            start = next_month - timedelta(days=1)
        return start + timedelta(days=row["days"])


def today() -> datetime:
    return datetime.combine(date.today(), datetime.min.time())
