"""Sales straight from Salesforce, on the same contract as any SQL source (`contract.SalesSource`):
Opportunities (or Orders: any object, by the mapping) with their line items and Accounts, read by
SOQL through simple-salesforce, and the AIQ transaction ID, status and message written back to
the sale's own custom fields through the sObject Collections API (200 records a call).

The mapping is the SQL sources' (`aiq_flows.sources.mapping`), with Salesforce's names: `from`
names an object, `where` is SOQL, `changed_at` is `SystemModstamp` (or `LastModifiedDate`), the
columns are API field names, and `write_back.table` is the sales object itself.

Pages are Salesforce's own: one query for the run's window, in change order, continued with
`nextRecordsUrl` (queryMore); the cursor between pages is that URL. A session that expires
mid-run is renewed once and the call repeated; the org's daily API limit stops the run with
one line (nothing is lost: the watermark moves only when a run completes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from aiq_flows.domain.outcomes import CrmStatus, SaleOutcome
from aiq_flows.domain.values import date_span
from aiq_flows.domain.watermark import Watermark
from aiq_flows.secrets import register_secret
from aiq_flows.sources.contract import SalesPage, SourceRefused, WrittenBack
from aiq_flows.sources.fields import Read, customer_fields, line_fields, mapped, sale_fields
from aiq_flows.sources.mapping import Constant, Mapping, MappingError
from aiq_flows.sources.soql import in_list, literal

T = TypeVar("T")
COLLECTION_SIZE = 200  # records per sObject Collections call, Salesforce's maximum
_IDS_PER_QUERY = 200  # ids per IN (...) list: well inside SOQL's 100,000 characters


class SalesforceRefused(SourceRefused):
    """Salesforce refuses for a reason a retry in seconds does not change: the login, or the
    org's daily API request limit."""


@dataclass(frozen=True)
class SalesforceLogin:
    """A connected app's OAuth 2.0 client credentials, at the org's My Domain login URL."""

    login_url: str  # https://acme.my.salesforce.com
    client_id: str
    client_secret: str
    api_version: str = "62.0"
    ca_bundle: str | None = None  # a CA to trust (a TLS-inspecting proxy; a local stand-in)
    timeout_seconds: float = 60.0


class _Session(requests.Session):
    """A requests session that trusts `ca_bundle` for every call (a session's own `verify` loses to
    REQUESTS_CA_BUNDLE in requests; a call's does not)."""

    def __init__(self, ca_bundle: str | None, timeout: float) -> None:
        super().__init__()
        self._ca_bundle, self._timeout = ca_bundle, timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if self._ca_bundle:
            kwargs.setdefault("verify", self._ca_bundle)
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


def _first_error(error: SalesforceError) -> str:
    content = error.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return f"{content[0].get('errorCode')}: {content[0].get('message')}"
    return f"HTTP {error.status}"


class SalesforceApi:
    """simple-salesforce, logged in with the client credentials flow, and logged in again (once per
    call) when the session expires. Counts its logins; `usage` is the org's API usage as
    Salesforce last reported it."""

    def __init__(self, login: SalesforceLogin) -> None:
        self.login = login
        self.session = _Session(login.ca_bundle, login.timeout_seconds)
        self._client: Salesforce | None = None
        self.logins = 0

    def _connect(self) -> Salesforce:
        register_secret(self.login.client_secret)
        response = self.session.post(
            f"{self.login.login_url.rstrip('/')}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.login.client_id,
                "client_secret": self.login.client_secret,
            },
        )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            raise SalesforceRefused(
                f"Salesforce refused the login at {self.login.login_url}: "
                f"{body.get('error', f'HTTP {response.status_code}')}: {body.get('error_description', '')}"
            )
        register_secret(body["access_token"])
        self.logins += 1
        return Salesforce(
            instance_url=body["instance_url"],
            session_id=body["access_token"],
            version=self.login.api_version,
            session=self.session,
            parse_float=Decimal,  # amounts exactly as Salesforce wrote them
        )

    def call(self, action: Callable[[Salesforce], T]) -> T:
        if self._client is None:
            self._client = self._connect()
        try:
            try:
                return action(self._client)
            except SalesforceExpiredSession:
                self._client = self._connect()  # expired mid-run: a new session, the same call
                return action(self._client)
        except SalesforceRefusedRequest as error:
            raise SalesforceRefused(
                f"Salesforce refused the request: {_first_error(error)} (the org's API limit resets "
                "within 24 hours; the next run picks up where this one stopped)"
            ) from None

    @property
    def usage(self) -> str:
        usage = self._client.api_usage.get("api-usage") if self._client else None
        return f"{usage.used}/{usage.total}" if usage is not None else "unknown"

    def query(self, soql: str, batch_size: int | None = None) -> dict[str, Any]:
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else {}
        return dict(self.call(lambda sf: sf.query(soql, headers=headers)))

    def query_more(self, next_records_url: str) -> dict[str, Any]:
        return dict(self.call(lambda sf: sf.query_more(next_records_url, identifier_is_url=True)))

    def records(self, soql: str) -> Iterator[dict[str, Any]]:
        """Every record the query returns, batch after batch (queryMore)."""
        result = self.query(soql)
        while True:
            yield from result["records"]
            if result.get("done", True) or not result.get("nextRecordsUrl"):
                return
            result = self.query_more(result["nextRecordsUrl"])

    def describe(self, object_name: str) -> dict[str, Any]:
        return dict(self.call(lambda sf: getattr(sf, object_name).describe()))

    def update(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One sObject Collections update (at most 200 records): a SaveResult each, in order."""
        payload = {"allOrNone": False, "records": records}
        return list(
            self.call(lambda sf: sf.restful("composite/sobjects", method="PATCH", json=payload)) or []
        )


def _field(record: dict[str, Any], name: str) -> Any:
    """A field of a record as the API returned it (names are case-insensitive in SOQL; a dotted
    name walks a relationship)."""
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        if part in value:
            value = value[part]
        else:
            value = next((v for k, v in value.items() if k.lower() == part.lower()), None)
    return value


def _reader(record: dict[str, Any]) -> Read:
    def read(key: str, field_name: str) -> Any:
        return _field(record, field_name)

    return read


def _fields(columns: Any) -> list[str]:
    return [source for _, source in columns if isinstance(source, str)]


class SalesforceSalesSource:
    """The sales of one Salesforce org, through its mapping."""

    def __init__(self, api: SalesforceApi, mapping: Mapping, name: str = "salesforce") -> None:
        self.api, self.mapping, self.name = api, mapping, name
        for key, section in (
            ("sales", mapping.sales),
            ("lines", mapping.lines),
            ("customers", mapping.customers),
        ):
            if section.from_ is None:
                raise MappingError(
                    f"mapping: {key}.query: Salesforce sources name an object in 'from' (SOQL: use 'where')"
                )
        write_back = mapping.write_back
        if write_back is not None:
            if write_back.table.lower() != (mapping.sales.from_ or "").lower():
                raise MappingError(
                    f"mapping: write_back.table: {write_back.table!r} must be the sales object "
                    f"{mapping.sales.from_!r} (the transaction ID goes on the sale's own record)"
                )
            if write_back.key.lower() != "id":
                raise MappingError("mapping: write_back.key: must be Id (records are updated by their id)")

    def dispose(self) -> None:
        self.api.session.close()

    @property
    def read_only(self) -> bool:
        return self.mapping.read_only

    # --- the mapping against the org ----------------------------------------------------------

    def check(self) -> list[str]:
        """Every object and field the mapping names exists (and every write-back field can be
        written), and Salesforce accepts every `where`: MappingError naming the first that does not."""
        m = self.mapping
        sections = (
            ("sales", m.sales.from_, [m.sales.id, m.sales.changed_at, *_fields(m.sales.columns)]),
            (
                "lines",
                m.lines.from_,
                [m.lines.sale, *([m.lines.order_by] if m.lines.order_by else []), *_fields(m.lines.columns)],
            ),
            (
                "customers",
                m.customers.from_,
                [
                    m.customers.id,
                    *([m.customers.code_from] if m.customers.code_from else []),
                    *_fields(m.customers.columns),
                ],
            ),
        )
        for key, object_name, field_names in sections:
            try:
                described = self.api.describe(object_name or "")
            except SalesforceResourceNotFound:
                raise MappingError(f"mapping: {key}.from: no object {object_name!r} in this org") from None
            known = {f["name"].lower(): f for f in described["fields"]}
            for field_name in field_names:
                if field_name.split(".")[0].lower() not in known and "." not in field_name:
                    raise MappingError(
                        f"mapping: {key}: no field {field_name!r} on {object_name} (custom fields end in __c)"
                    )
            section = getattr(m, key)
            if section.where:
                try:
                    self.api.query(f"SELECT Id FROM {object_name} WHERE {section.where} LIMIT 1")
                except SalesforceError as error:
                    raise MappingError(
                        f"mapping: {key}.where: Salesforce refuses it: {_first_error(error)}"
                    ) from None
            if key == "sales" and m.write_back is not None:
                for name, field_name in m.write_back.columns.model_dump().items():
                    if field_name is None:
                        continue
                    described_field = known.get(field_name.lower())
                    if described_field is None or not described_field.get("updateable", True):
                        raise MappingError(
                            f"mapping: write_back.columns.{name}: {object_name} has no field {field_name!r} "
                            "that can be written (create it as a custom field, e.g. AIQ_Transaction_ID__c)"
                        )
        return []

    # --- reading ------------------------------------------------------------------------------

    def _sale_fields(self) -> list[str]:
        m = self.mapping
        names = [m.sales.id, m.sales.changed_at, *_fields(m.sales.columns)]
        if m.write_back is not None:
            names += [v for v in m.write_back.columns.model_dump().values() if v is not None]
        return list(dict.fromkeys(names))  # once each, in order

    def _window(self, since: Watermark, overlap: timedelta) -> str:
        m = self.mapping
        window = f"{m.sales.changed_at} >= {literal(since.updated_at - overlap)}"
        if m.write_back is None:
            return window
        status = m.write_back.columns.status
        return f"({window} OR {status} = null OR {status} = {literal(CrmStatus.PENDING.value)})"

    def _soql(self, *conditions: str, order: bool = True) -> str:
        m = self.mapping
        where = [f"({m.sales.where})" if m.sales.where else "", *conditions]
        clause = " AND ".join(c for c in where if c)
        soql = f"SELECT {', '.join(self._sale_fields())} FROM {m.sales.from_}"
        soql += f" WHERE {clause}" if clause else ""
        if order:
            soql += f" ORDER BY {m.sales.changed_at} ASC NULLS FIRST, {m.sales.id} ASC"
        return soql

    def changed_sales(
        self, since: Watermark, overlap: timedelta, limit: int | None = None, after: Any = None
    ) -> SalesPage:
        """A batch of the window's sales, in change order: the first of one query, or the one
        after `after` (its `nextRecordsUrl`)."""
        if after is None:
            size = None if limit is None else max(200, min(2000, limit))  # Salesforce's bounds
            result = self.api.query(self._soql(self._window(since, overlap)), size)
        else:
            result = self.api.query_more(after)
        done = result.get("done", True) or not result.get("nextRecordsUrl")
        return SalesPage(self._records(result["records"]), None if done else result["nextRecordsUrl"])

    def sales_by_id(self, ids: Sequence[Any], since: Watermark, overlap: timedelta) -> list[dict[str, Any]]:
        outside = f"(NOT {self._window(since, overlap)})"
        records: list[dict[str, Any]] = []
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            records += self._records(
                list(self.api.records(self._soql(in_list(self.mapping.sales.id, chunk), outside)))
            )
        return records

    def ids(self, page: int = 5000) -> Iterator[list[Any]]:
        m = self.mapping
        soql = f"SELECT {m.sales.id} FROM {m.sales.from_}" + (
            f" WHERE {m.sales.where}" if m.sales.where else ""
        )
        batch: list[Any] = []
        for record in self.api.records(soql + f" ORDER BY {m.sales.id}"):
            batch.append(_field(record, m.sales.id))
            if len(batch) >= page:
                yield batch
                batch = []
        if batch:
            yield batch

    def changed_window(self, since: Watermark, overlap: timedelta) -> tuple[date, date] | None:
        m = self.mapping
        day = m.sales.columns.date
        if isinstance(day, Constant):
            return date_span([day.value])
        where = [f"({m.sales.where})" if m.sales.where else "", self._window(since, overlap)]
        soql = f"SELECT MIN({day}) first_day, MAX({day}) last_day FROM {m.sales.from_} WHERE "
        result = self.api.query(soql + " AND ".join(c for c in where if c))
        [row] = result["records"] or [{}]
        return date_span([row.get("first_day"), row.get("last_day")])

    def sales_between(self, start: date, end: date) -> list[dict[str, Any]]:
        day = self.mapping.sales.columns.date
        if isinstance(day, Constant):
            return self._records(list(self.api.records(self._soql())))
        between = f"{day} >= {literal(start)} AND {day} <= {literal(end)}"
        return self._records(list(self.api.records(self._soql(between))))

    # --- records ------------------------------------------------------------------------------

    def _records(self, sales: list[dict[str, Any]]) -> list[dict[str, Any]]:
        m = self.mapping
        customer_refs = {
            v for s in sales if (v := mapped(m.sales.columns, "customer", _reader(s))) is not None
        }
        customers = self._customers(sorted(customer_refs))
        lines = self._lines([_field(s, m.sales.id) for s in sales])
        records = []
        for sale in sales:
            read = _reader(sale)
            sale_id = _field(sale, m.sales.id)
            account = customers.get(mapped(m.sales.columns, "customer", read))
            record: dict[str, Any] = {
                "sale_id": sale_id,
                "reference_prefix": m.reference_prefix,
                "updated_at": _field(sale, m.sales.changed_at),
                **sale_fields(m.sales.columns, read),
                "customer": self._customer(account) if account is not None else None,
                "lines": lines.get(sale_id, []),
            }
            if m.write_back is not None:
                record["aiq_status"] = _field(sale, m.write_back.columns.status)
                transaction = _field(sale, m.write_back.columns.transaction_id)
                record["aiq_transaction_id"] = int(transaction) if transaction is not None else None
            records.append(record)
        return records

    def _customer(self, account: dict[str, Any]) -> dict[str, Any]:
        m, read = self.mapping.customers, _reader(account)
        code = mapped(m.columns, "code", read)
        key = _field(account, m.code_from) if m.code_from else (code or _field(account, m.id))
        return customer_fields(m.columns, key, read)

    def _customers(self, ids: list[Any]) -> dict[Any, dict[str, Any]]:
        m = self.mapping.customers
        names = list(dict.fromkeys([m.id, *([m.code_from] if m.code_from else []), *_fields(m.columns)]))
        found: dict[Any, dict[str, Any]] = {}
        for start in range(0, len(ids), _IDS_PER_QUERY):
            conditions = [in_list(m.id, ids[start : start + _IDS_PER_QUERY])] + (
                [f"({m.where})"] if m.where else []
            )
            soql = f"SELECT {', '.join(names)} FROM {m.from_} WHERE {' AND '.join(conditions)}"
            found.update({_field(account, m.id): account for account in self.api.records(soql)})
        return found

    def _lines(self, sale_ids: list[Any]) -> dict[Any, list[dict[str, Any]]]:
        m = self.mapping.lines
        names = list(dict.fromkeys([m.sale, *([m.order_by] if m.order_by else []), *_fields(m.columns)]))
        order = f" ORDER BY {m.sale}" + (f", {m.order_by}" if m.order_by else "")
        by_sale: dict[Any, list[dict[str, Any]]] = {}
        for start in range(0, len(sale_ids), _IDS_PER_QUERY):
            conditions = [in_list(m.sale, sale_ids[start : start + _IDS_PER_QUERY])] + (
                [f"({m.where})"] if m.where else []
            )
            soql = f"SELECT {', '.join(names)} FROM {m.from_} WHERE {' AND '.join(conditions)}{order}"
            for line in self.api.records(soql):
                lines = by_sale.setdefault(_field(line, m.sale), [])
                lines.append(line_fields(m.columns, len(lines) + 1, _reader(line)))
        return by_sale

    # --- writing back -------------------------------------------------------------------------

    def write_back(self, outcomes: Sequence[SaleOutcome]) -> WrittenBack:
        """Status, transaction ID, message and sync time on each sale's own record, 200 a call.
        What the record already says is read first: a posted sale is never downgraded, and one
        already saying the same is not updated at all (every update stamps SystemModstamp, and the
        next run would read it as changed). A record Salesforce refuses (a validation rule, a
        lock) keeps its fields, so the next run reads it again as never synced and writes it."""
        write_back = self.mapping.write_back
        if write_back is None or not outcomes:
            return WrittenBack(0)
        names = write_back.columns
        by_id = {str(o.sale_id): o for o in outcomes if o.sale_id is not None}
        current = self._current(
            list(by_id), [names.status, names.transaction_id, *([names.message] if names.message else [])]
        )
        updates: list[dict[str, Any]] = []
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        for sale_id, outcome in by_id.items():
            held = current.get(sale_id)
            if held is None:
                continue  # no longer in Salesforce (deleted): nothing to write on
            status = outcome.crm_status
            transaction = outcome.transaction_id if status is CrmStatus.POSTED else None
            message = outcome.crm_message
            was = _field(held, names.status)
            if was == CrmStatus.POSTED.value and status is not CrmStatus.POSTED:
                continue
            held_tx = _field(held, names.transaction_id)
            same = (
                was == status.value
                and (int(held_tx) if held_tx is not None else None) == transaction
                and (message is None or not names.message or _field(held, names.message) == message)
            )
            if same:
                continue
            update: dict[str, Any] = {"attributes": {"type": self.mapping.sales.from_}, "id": sale_id}
            update[names.status] = status.value
            update[names.transaction_id] = transaction
            if names.message and message is not None:
                update[names.message] = message
            if names.synced_at:
                update[names.synced_at] = now
            updates.append(update)
        written, refused = 0, {}
        for start in range(0, len(updates), COLLECTION_SIZE):
            chunk = updates[start : start + COLLECTION_SIZE]
            for update, result in zip(chunk, self.api.update(chunk), strict=True):
                if result.get("success"):
                    written += 1
                else:
                    errors = result.get("errors") or [{}]
                    refused[update["id"]] = f"{errors[0].get('statusCode')}: {errors[0].get('message')}"
        return WrittenBack(written, refused)

    def _current(self, ids: list[str], field_names: list[str]) -> dict[str, dict[str, Any]]:
        m = self.mapping.sales
        found: dict[str, dict[str, Any]] = {}
        names = ", ".join(dict.fromkeys([m.id, *field_names]))
        for start in range(0, len(ids), _IDS_PER_QUERY):
            soql = f"SELECT {names} FROM {m.from_} WHERE {in_list(m.id, ids[start : start + _IDS_PER_QUERY])}"
            found.update({str(_field(r, m.id)): r for r in self.api.records(soql)})
        return found
