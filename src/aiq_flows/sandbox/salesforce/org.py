"""A Salesforce org in memory: Accounts, Opportunities and their line items, OAuth access tokens,
the daily API request limit, and the faults a real org shows (a session that expires, a
validation rule that refuses an update). `server` speaks Salesforce's REST API over it."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiq_flows.sandbox.salesforce import soql

_SYSTEM = {"CreatedDate": "datetime", "LastModifiedDate": "datetime", "SystemModstamp": "datetime"}
SCHEMA: dict[str, dict[str, str]] = {
    "Account": {
        "Id": "id",
        "Name": "string",
        "AccountNumber": "string",
        "Phone": "phone",
        "BillingStreet": "textarea",
        "BillingCity": "string",
        "BillingPostalCode": "string",
        "BillingCountry": "string",
        "Billing_Email__c": "email",
        **_SYSTEM,
    },
    "Opportunity": {
        "Id": "id",
        "Name": "string",
        "AccountId": "reference",
        "StageName": "picklist",
        "CloseDate": "date",
        "Amount": "currency",
        "CurrencyIsoCode": "picklist",
        "Description": "textarea",
        "Service_Start__c": "date",
        "Service_Months__c": "double",
        "AIQ_Transaction_ID__c": "double",
        "AIQ_Status__c": "string",
        "AIQ_Message__c": "textarea",
        "AIQ_Synced_At__c": "datetime",
        **_SYSTEM,
    },
    "OpportunityLineItem": {
        "Id": "id",
        "OpportunityId": "reference",
        "Name": "string",
        "Description": "textarea",
        "ProductCode": "string",
        "Quantity": "double",
        "UnitPrice": "currency",
        "SortOrder": "int",
        "Tax_Code__c": "string",
        "GL_Code__c": "string",
        **_SYSTEM,
    },
}
_PREFIX = {"Account": "001", "Opportunity": "006", "OpportunityLineItem": "00k"}
_READ_ONLY = {"Id", *_SYSTEM}
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def record_id(object_name: str, number: int) -> str:
    """An 18-character Salesforce id: key prefix, pod, number in base 62, case checksum."""
    digits = ""
    while number or len(digits) < 9:
        number, digit = divmod(number, 62)
        digits = _BASE62[digit] + digits
    short = f"{_PREFIX[object_name]}5g0{digits}"[:15]
    suffix = ""
    for chunk in (short[0:5], short[5:10], short[10:15]):
        bits = sum(1 << i for i, char in enumerate(chunk) if char.isupper())
        suffix += _CHECKSUM[bits]
    return short + suffix


class SalesforceFault(Exception):
    """An error as Salesforce's REST API returns it: an HTTP status, an errorCode, a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class _Locator:
    object_name: str
    rows: list[dict[str, Any]]
    batch_size: int  # the query's, kept for its queryMore calls


@dataclass
class SalesforceOrg:
    client_id: str = field(default_factory=lambda: "3MVG9" + secrets.token_urlsafe(24))
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    batch_size: int = 2000  # a query's first batch and each queryMore's
    request_limit: int | None = None  # the org's API requests left for the day: None, no limit
    session_seconds: float = 7200.0
    session_requests: int | None = None  # a session expires after this many calls (mid-run expiry)
    records: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {name: {} for name in SCHEMA}
    )
    refuse_updates: dict[str, str] = field(default_factory=dict)  # id -> the validation rule's message
    calls: Counter[str] = field(default_factory=Counter)
    collection_sizes: list[int] = field(default_factory=list)  # records per sObject Collections update
    requests_made: int = 0
    issued: list[str] = field(default_factory=list)  # every access token issued (for the secrets scan)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._tokens: dict[str, float] = {}
        self._uses: Counter[str] = Counter()
        self._locators: dict[str, _Locator] = {}
        self._numbers = Counter[str]()
        self._last_stamp = datetime(2000, 1, 1, tzinfo=UTC)

    # --- data, as an administrator or a user in the UI would change it ------------------------

    def _stamp(self) -> datetime:
        """Now, at Salesforce's millisecond precision, never twice the same."""
        now = datetime.now(UTC).replace(microsecond=datetime.now(UTC).microsecond // 1000 * 1000)
        self._last_stamp = max(now, self._last_stamp + timedelta(milliseconds=1))
        return self._last_stamp

    def insert(self, object_name: str, **values: Any) -> str:
        with self._lock:
            self._numbers[object_name] += 1
            new_id = record_id(object_name, self._numbers[object_name])
            stamp = self._stamp()
            record = dict.fromkeys(SCHEMA[object_name])
            record.update(values, Id=new_id, CreatedDate=stamp, LastModifiedDate=stamp, SystemModstamp=stamp)
            self.records[object_name][new_id] = record
            return new_id

    def update(self, object_name: str, record_id_: str, **values: Any) -> None:
        with self._lock:
            stamp = self._stamp()
            self.records[object_name][record_id_].update(values, LastModifiedDate=stamp, SystemModstamp=stamp)

    def get(self, object_name: str, record_id_: str) -> dict[str, Any]:
        with self._lock:
            return dict(self.records[object_name][record_id_])

    def all(self, object_name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(record) for record in self.records[object_name].values()]

    def secrets(self) -> set[str]:
        """What must never show up anywhere: the client secret, and each token's secret part."""
        with self._lock:
            return {self.client_secret, *(token.split("!", 1)[1] for token in self.issued)}

    def expire_sessions(self) -> None:
        with self._lock:
            self._tokens.clear()

    # --- the API --------------------------------------------------------------------------------

    def token(self, form: Mapping[str, str], instance_url: str) -> dict[str, Any]:
        """OAuth 2.0 client credentials flow (a connected app's client id and secret)."""
        with self._lock:
            self.calls["oauth2/token"] += 1
            if form.get("grant_type") != "client_credentials":
                raise SalesforceFault(400, "unsupported_grant_type", "grant type not supported")
            if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
                raise SalesforceFault(400, "invalid_client", "invalid client credentials")
            token = "00D5g000004Xyz!" + secrets.token_urlsafe(32)
            self._tokens[token] = time.monotonic() + self.session_seconds
            self.issued.append(token)
            return {
                "access_token": token,
                "instance_url": instance_url,
                "id": f"{instance_url}/id/00D5g000004XyzEAA/0055g00000AbcdEAAA",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "signature": secrets.token_urlsafe(32),
            }

    def authorize(self, header: str | None, call: str) -> str:
        """The caller's session is live and the org has requests left; the call is counted."""
        with self._lock:
            token = (header or "").removeprefix("Bearer ").strip()
            expiry = self._tokens.get(token)
            self._uses[token] += 1
            worn = self.session_requests is not None and self._uses[token] > self.session_requests
            if expiry is None or expiry < time.monotonic() or worn:
                raise SalesforceFault(401, "INVALID_SESSION_ID", "Session expired or invalid")
            self.requests_made += 1
            if self.request_limit is not None and self.requests_made > self.request_limit:
                raise SalesforceFault(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self.calls[call] += 1
            return f"api-usage={self.requests_made}/{self.request_limit or 15000}"

    def query(self, text: str, base: str, batch_size: int | None = None) -> dict[str, Any]:
        with self._lock:
            try:
                parsed = soql.parse(text, SCHEMA)
            except soql.SoqlError as error:
                raise SalesforceFault(400, error.code, error.message) from None
            rows = soql.run(parsed, self.records[parsed.object_name].values())
            if parsed.aggregates:
                if parsed.aggregates == [("COUNT", None, parsed.aggregates[0][2])]:
                    return {"totalSize": rows[0][parsed.aggregates[0][2]], "done": True, "records": []}
                return {
                    "totalSize": 1,
                    "done": True,
                    "records": [{"attributes": {"type": "AggregateResult"}, **rows[0]}],
                }
            locator = f"01g5g00000{secrets.token_hex(4).upper()}"
            size = min(batch_size or self.batch_size, self.batch_size)
            self._locators[locator] = _Locator(parsed.object_name, rows, size)
            return self._batch(locator, 0, base, size)

    def query_more(self, locator: str, position: int, base: str) -> dict[str, Any]:
        with self._lock:
            if locator not in self._locators:
                raise SalesforceFault(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            return self._batch(locator, position, base, self._locators[locator].batch_size)

    def _batch(self, locator: str, position: int, base: str, size: int) -> dict[str, Any]:
        held = self._locators[locator]
        rows = held.rows[position : position + size]
        done = position + size >= len(held.rows)
        result: dict[str, Any] = {
            "totalSize": len(held.rows),
            "done": done,
            "records": [
                {
                    "attributes": {
                        "type": held.object_name,
                        "url": f"{base}/sobjects/{held.object_name}/{row.get('Id')}",
                    },
                    **row,
                }
                for row in rows
            ],
        }
        if done:
            del self._locators[locator]
        else:
            result["nextRecordsUrl"] = f"{base}/query/{locator}-{position + size}"
        return result

    def describe(self, object_name: str) -> dict[str, Any]:
        with self._lock:
            if object_name not in SCHEMA:
                raise SalesforceFault(404, "NOT_FOUND", "The requested resource does not exist")
            return {
                "name": object_name,
                "queryable": True,
                "updateable": True,
                "fields": [
                    {
                        "name": name,
                        "type": kind,
                        "updateable": name not in _READ_ONLY,
                        "nillable": name != "Id",
                    }
                    for name, kind in SCHEMA[object_name].items()
                ],
            }

    def update_collection(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """sObject Collections update: up to 200 records, a SaveResult each, in order."""
        records = body.get("records")
        if not isinstance(records, list):
            raise SalesforceFault(400, "JSON_PARSER_ERROR", "records: a list of sObjects is required")
        if len(records) > 200:
            raise SalesforceFault(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        results = []
        with self._lock:
            self.collection_sizes.append(len(records))
            for record in records:
                results.append(self._update_one(record))
        if body.get("allOrNone") and not all(r["success"] for r in results):  # pragma: no cover - unused
            raise SalesforceFault(400, "ALL_OR_NONE_OPERATION_ROLLED_BACK", "rolled back")
        return results

    def _update_one(self, record: Mapping[str, Any]) -> dict[str, Any]:
        object_name = (record.get("attributes") or {}).get("type")
        record_id_ = record.get("id") or record.get("Id")
        fields = {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}

        def refused(code: str, message: str, on: list[str] | None = None) -> dict[str, Any]:
            return {
                "id": record_id_,
                "success": False,
                "errors": [{"statusCode": code, "message": message, "fields": on or []}],
            }

        if object_name not in SCHEMA:
            return refused("INVALID_TYPE", f"sObject type '{object_name}' is not supported.")
        held = self.records[object_name].get(str(record_id_))
        if held is None:
            return refused("ENTITY_IS_DELETED", "entity is deleted")
        for name in fields:
            if name not in SCHEMA[object_name]:
                return refused(
                    "INVALID_FIELD", f"No such column '{name}' on sobject of type {object_name}", [name]
                )
            if name in _READ_ONLY:
                return refused(
                    "INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {name}.", [name]
                )
        if str(record_id_) in self.refuse_updates:
            return refused("FIELD_CUSTOM_VALIDATION_EXCEPTION", self.refuse_updates[str(record_id_)])
        values = {name: _stored(SCHEMA[object_name][name], value) for name, value in fields.items()}
        self.update(object_name, str(record_id_), **values)
        return {"id": record_id_, "success": True, "errors": []}


def _stored(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    if kind in ("double", "currency", "int"):
        return Decimal(str(value))
    return value
