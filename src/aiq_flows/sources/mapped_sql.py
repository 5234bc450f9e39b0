"""Sales from any SQL database that SQLAlchemy reaches, read through a mapping
(`aiq_flows.sources.mapping`): the user's own tables, views or SELECTs, their own column names,
a filter, constants where a CRM has no column, and their own write-back columns or none.

Every value is read as the database holds it, with no type conversion on the way out (a text in a
date column, a float in an amount column reach the domain as they are, to be parsed per record):
a conversion here would stop the whole read at the first bad row, or round an amount unseen.

Sales are read in pages in change order (the mapping's `changed_at`, then `id`), after a cursor
of the last row's own values, so that paging never depends on a value being readable. A page is
one query for the sales joined to their customers (and their write-back columns), then one
`IN (...)` query per 900 sales for their lines.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    MetaData,
    Select,
    Table,
    and_,
    bindparam,
    case,
    column,
    false,
    func,
    literal,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import DBAPIError, NoSuchTableError
from sqlalchemy.types import Date, DateTime, NullType, String

from aiq_flows.db import make_engine
from aiq_flows.domain.outcomes import CrmStatus, SaleOutcome
from aiq_flows.domain.values import ValueRefused, date_span, date_value
from aiq_flows.domain.watermark import Watermark
from aiq_flows.sources.contract import Cursor, SalesPage, WrittenBack
from aiq_flows.sources.fields import Read, customer_fields, line_fields, mapped, sale_fields
from aiq_flows.sources.mapping import Constant, Mapping, MappingError, Source

_IDS_PER_QUERY = 900  # under SQLite's oldest limit of 999 bound parameters


def raw_column(element: ColumnElement[Any], label: str) -> ColumnElement[Any]:
    return type_coerce(element, NullType()).label(label)


def _first_line(error: DBAPIError) -> str:
    return str(error.orig).strip().splitlines()[0] if error.orig is not None else str(error)


@dataclass(frozen=True)
class _Relation:
    """One section's rows: a table, a view or a SELECT, filtered by the section's `where`."""

    key: str  # the mapping key: sales, lines, customers
    rows: FromClause
    described: str

    def column(self, name: str, key: str) -> ColumnElement[Any]:
        columns = self.rows.c
        if name in columns:
            return columns[name]
        folded = {c.key.lower(): c for c in columns}
        if name.lower() in folded:  # PostgreSQL folds unquoted names to lower case
            return folded[name.lower()]
        known = ", ".join(sorted(c.key for c in columns))
        raise MappingError(f"mapping: {key}: no column {name!r} in {self.described} (it has: {known})")


def relation_of(engine: Engine, key: str, section: Any) -> _Relation:
    if section.from_ is not None:
        schema, _, name = section.from_.rpartition(".")
        try:
            rows: FromClause = Table(name, MetaData(), schema=schema or None, autoload_with=engine)
        except NoSuchTableError:
            raise MappingError(
                f"mapping: {key}.from: no table or view {section.from_!r} in the database"
            ) from None
        described = f"table {section.from_!r}"
    else:
        try:
            with engine.connect() as connection:
                probe = connection.execute(text(f"SELECT * FROM ({section.query}) AS probe WHERE 1 = 0"))
                names = list(probe.keys())
        except DBAPIError as error:
            raise MappingError(
                f"mapping: {key}.query: the database refuses it: {_first_line(error)}"
            ) from None
        rows = text(section.query).columns(*(column(name) for name in names)).subquery(f"{key}_query")
        described = f"{key}.query"
    if section.where:
        filtered = select(rows).where(text(section.where)).subquery(f"{key}_rows")
        try:
            with engine.connect() as connection:
                connection.execute(select(literal(1)).select_from(filtered).limit(0))
        except DBAPIError as error:
            raise MappingError(
                f"mapping: {key}.where: the database refuses it: {_first_line(error)}"
            ) from None
        rows = filtered
    return _Relation(key, rows, described)


@dataclass(frozen=True)
class _Plan:
    """The mapping made into SQL, once per source: the sales query (raw values, labelled) and the
    columns the reads filter and order on."""

    query: Select[Any]  # sales joined to their customers (and write-back columns)
    sale_id: ColumnElement[Any]
    changed: ColumnElement[Any]
    sale_date: ColumnElement[Any] | None  # None: a constant date
    status: ColumnElement[Any] | None  # the write-back status column, if any
    lines: _Relation
    write_back: Table | None


class MappedSqlSource:
    """The sales of one SQL database, through its mapping. `name` keys its watermark and, for a
    read-only source, the store's record states."""

    def __init__(self, url: str, mapping: Mapping, name: str = "sales-source") -> None:
        self.engine = make_engine(url)
        self.mapping, self.name = mapping, name
        self._made: _Plan | None = None

    def dispose(self) -> None:
        self.engine.dispose()

    @property
    def read_only(self) -> bool:
        return self.mapping.read_only

    # --- the mapping against the database -----------------------------------------------------

    def check(self) -> list[str]:
        """Every table, view, query, filter and column the mapping names exists: MappingError
        naming the first that does not. Nothing is written. What works but deserves a person's
        eye comes back as warnings."""
        plan = self._plan()
        self._lines_query(plan, [])
        return self._check_change_times(plan)

    def _check_change_times(self, plan: _Plan) -> list[str]:
        """SQLite has no timestamp type: it compares change times with the watermark as text,
        which orders only ISO timestamps (``04/12/2026 10:00`` or an epoch number sorts before
        any watermark). A column mostly in another form is refused, naming it: the watermark would
        never see those sales change. A few odd rows are a warning: each is read while it is
        never synced (and quarantined if its time cannot be read at all)."""
        if self.engine.dialect.name != "sqlite":
            return []
        iso = and_(
            func.typeof(plan.changed) == "text",
            plan.changed.op("GLOB")("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"),
        )
        odd = case((iso, None), else_=plan.changed).label("odd")
        times = plan.query.with_only_columns(odd).where(plan.changed.is_not(None)).subquery("times")
        query = select(func.count(), func.count(times.c.odd), func.max(times.c.odd))
        with self.engine.connect() as connection:
            total, odd_rows, example = connection.execute(query).one()
        if not odd_rows:
            return []
        column_name = self.mapping.sales.changed_at
        if odd_rows * 2 > total:
            raise MappingError(
                f"mapping: sales.changed_at: column {column_name!r} holds {example!r} and "
                f"{odd_rows - 1} more like it, not ISO timestamps (YYYY-MM-DD HH:MM:SS): SQLite "
                "compares change times as text, so the watermark would never see these sales change; "
                "store ISO text, or map a query that converts them"
            )
        return [
            f"sales.changed_at: {odd_rows} of {total} rows of column {column_name!r} hold values SQLite "
            f"cannot order (such as {example!r}): each is read while it is never synced, but a change "
            "after it is posted is not seen"
        ]

    def _plan(self) -> _Plan:
        if self._made is None:
            self._made = self._make_plan()
        return self._made

    def _make_plan(self) -> _Plan:
        m = self.mapping
        sales = relation_of(self.engine, "sales", m.sales)
        customers = relation_of(self.engine, "customers", m.customers)
        lines = relation_of(self.engine, "lines", m.lines)
        sale_id = sales.column(m.sales.id, "sales.id")
        changed = sales.column(m.sales.changed_at, "sales.changed_at")
        columns = [raw_column(sale_id, "id"), raw_column(changed, "changed_at")]
        for field_name, source in m.sales.columns:
            columns += mapped_columns(sales, f"sales.columns.{field_name}", source, f"sale_{field_name}")
        if isinstance(m.sales.columns.customer, Constant):
            raise MappingError("mapping: sales.columns.customer: must be a column (it joins customers.id)")
        customer_id = customers.column(m.customers.id, "customers.id")
        columns.append(raw_column(customer_id, "customer_row"))
        for field_name, source in m.customers.columns:
            columns += mapped_columns(
                customers, f"customers.columns.{field_name}", source, f"customer_{field_name}"
            )
        if m.customers.code_from is not None:
            columns.append(
                raw_column(customers.column(m.customers.code_from, "customers.code_from"), "customer_key")
            )
        customer_ref = sales.column(m.sales.columns.customer, "sales.columns.customer")
        joined = sales.rows.outerjoin(customers.rows, customer_id == customer_ref)
        status: ColumnElement[Any] | None = None
        table: Table | None = None
        if m.write_back is not None:
            table = self._write_back_table()
            written = table.alias("written_back")
            names = m.write_back.columns
            joined = joined.outerjoin(written, written.c[column_key(table, m.write_back.key)] == sale_id)
            status = type_coerce(written.c[column_key(table, names.status)], NullType())
            columns += [
                status.label("aiq_status"),
                raw_column(written.c[column_key(table, names.transaction_id)], "aiq_transaction_id"),
            ]
        day = m.sales.columns.date
        sale_date = None if isinstance(day, Constant) else sales.column(day, "sales.columns.date")
        return _Plan(
            select(*columns).select_from(joined),
            type_coerce(sale_id, NullType()),
            type_coerce(changed, NullType()),
            sale_date,
            status,
            lines,
            table,
        )

    def _write_back_table(self) -> Table:
        write_back = self.mapping.write_back
        if write_back is None:  # pragma: no cover - callers check
            raise MappingError("mapping: write_back: none")
        schema, _, name = write_back.table.rpartition(".")
        try:
            table = Table(name, MetaData(), schema=schema or None, autoload_with=self.engine)
        except NoSuchTableError:
            raise MappingError(
                f"mapping: write_back.table: no table {write_back.table!r} in the database"
            ) from None
        target = _Relation("write_back", table, f"table {write_back.table!r}")
        target.column(write_back.key, "write_back.key")
        for field_name, column_name in write_back.columns.model_dump().items():
            if column_name is not None:
                target.column(column_name, f"write_back.columns.{field_name}")
        return table

    # --- reading ------------------------------------------------------------------------------

    def _changed_since(self, plan: _Plan, since: Watermark, overlap: timedelta) -> ColumnElement[bool]:
        """Changed since the watermark (less the overlap), or, with write-back columns, never
        synced or left pending (a read-only source has the store say which those are)."""
        window = plan.changed >= bindparam("window_start", since.updated_at - overlap)
        if plan.status is None:
            return window
        return or_(window, plan.status.is_(None), plan.status == CrmStatus.PENDING.value)

    def _order(self, plan: _Plan) -> tuple[ColumnElement[Any], ...]:
        unset = case((plan.changed.is_(None), 0), else_=1)  # records without a change time first
        return unset, plan.changed, plan.sale_id

    def _after(self, plan: _Plan, cursor: Cursor) -> ColumnElement[bool]:
        at, last = cursor
        if at is None:
            return or_(and_(plan.changed.is_(None), plan.sale_id > last), plan.changed.is_not(None))
        return and_(
            plan.changed.is_not(None), or_(plan.changed > at, and_(plan.changed == at, plan.sale_id > last))
        )

    def changed_sales(
        self,
        since: Watermark,
        overlap: timedelta,
        limit: int | None = None,
        after: Cursor | None = None,
    ) -> SalesPage:
        """Sales changed since the watermark (minus an overlap for late commits), plus, with
        write-back columns, every sale never synced or left pending; in change order; a page of
        `limit` of them after `after` (the previous page's cursor)."""
        plan = self._plan()
        query = plan.query.where(self._changed_since(plan, since, overlap)).order_by(*self._order(plan))
        if after is not None:
            query = query.where(self._after(plan, after))
        if limit:
            query = query.limit(limit)
        rows = self._read(plan, query)
        full = limit is not None and len(rows) == limit
        cursor = (rows[-1][0].changed_at, rows[-1][0].id) if full else None
        return SalesPage([record for _, record in rows], cursor)

    def sales_by_id(self, ids: Sequence[Any], since: Watermark, overlap: timedelta) -> list[dict[str, Any]]:
        """These sales, but not those the changed window reads anyway (for a read-only source: the
        ones the store says are pending or never synced)."""
        plan = self._plan()
        outside = ~self._changed_since(plan, since, overlap)
        records: list[dict[str, Any]] = []
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = list(ids[start : start + _IDS_PER_QUERY])
            query = plan.query.where(plan.sale_id.in_(chunk), outside).order_by(*self._order(plan))
            records += [record for _, record in self._read(plan, query)]
        return records

    def ids(self, page: int = 5000) -> Iterator[list[Any]]:
        """Every sale's id, a page at a time (memory stays flat): for a read-only source, the store
        tells which were never synced."""
        plan = self._plan()
        last: Any = None
        while True:
            query = plan.query.with_only_columns(plan.sale_id.label("id")).order_by(plan.sale_id).limit(page)
            if last is not None:
                query = query.where(plan.sale_id > last)
            with self.engine.connect() as connection:
                found = list(connection.scalars(query))
            if not found:
                return
            yield found
            last = found[-1]

    def changed_window(self, since: Watermark, overlap: timedelta) -> tuple[date, date] | None:
        """The first and last readable sale date among the sales `changed_sales` will return."""
        plan = self._plan()
        day = self.mapping.sales.columns.date
        if plan.sale_date is None and isinstance(day, Constant):
            return date_span([day.value])
        query = (
            plan.query.with_only_columns(raw_column(plan.sale_date, "day"))  # type: ignore[arg-type]
            .where(self._changed_since(plan, since, overlap))
            .distinct()
        )
        with self.engine.connect() as connection:
            return date_span(connection.scalars(query))

    def sales_between(self, start: date, end: date) -> list[dict[str, Any]]:
        """Every sale dated in the range (inclusive), with what the sync wrote back (reconciliation).
        A date column of a date type is filtered by the database; one kept as text (``04/11/2026``)
        or given by a query is read whole and its dates read as the domain reads them."""
        plan, query = self._plan(), self._plan().query
        if plan.sale_date is not None and isinstance(plan.sale_date.type, Date | DateTime):
            query = query.where(and_(plan.sale_date >= start, plan.sale_date <= end))
        records = [record for _, record in self._read(plan, query.order_by(*self._order(plan)))]
        return [record for record in records if self._dated_within(record.get("sale_date"), start, end)]

    def _dated_within(self, value: Any, start: date, end: date) -> bool:
        try:
            day = date_value(value, day_first=self.mapping.day_first)
        except ValueRefused:
            return False
        return day is not None and start <= day <= end

    def _read(self, plan: _Plan, query: Select[Any]) -> list[tuple[Row[Any], dict[str, Any]]]:
        with self.engine.connect() as connection:
            sales = list(connection.execute(query))
            lines = self._lines(connection, plan, [sale.id for sale in sales])
        return [(sale, self._record(sale, lines.get(str(sale.id), []))) for sale in sales]

    # --- lines --------------------------------------------------------------------------------

    def _lines_query(self, plan: _Plan, ids: list[Any]) -> Select[Any]:
        lines, m = plan.lines, self.mapping.lines
        owner: ColumnElement[Any] = type_coerce(lines.column(m.sale, "lines.sale"), NullType())
        columns: list[ColumnElement[Any]] = [owner.label("sale")]
        for field_name, source in m.columns:
            columns += mapped_columns(lines, f"lines.columns.{field_name}", source, field_name)
        order: list[ColumnElement[Any]] = [owner]
        if m.order_by is not None:
            order.append(lines.column(m.order_by, "lines.order_by"))
        query: Select[Any] = select(*columns).select_from(lines.rows)
        return query.where(owner.in_(ids) if ids else false()).order_by(*order)

    def _lines(self, connection: Any, plan: _Plan, sale_ids: list[Any]) -> dict[str, list[dict[str, Any]]]:
        by_sale: dict[str, list[dict[str, Any]]] = {}
        columns = self.mapping.lines.columns
        for start in range(0, len(sale_ids), _IDS_PER_QUERY):
            for line in connection.execute(self._lines_query(plan, sale_ids[start : start + _IDS_PER_QUERY])):
                lines = by_sale.setdefault(str(line.sale), [])
                lines.append(line_fields(columns, len(lines) + 1, row_reader(line._mapping)))
        return by_sale

    # --- records ------------------------------------------------------------------------------

    def _record(self, sale: Row[Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
        values, m = sale._mapping, self.mapping

        customer = None
        if values["customer_row"] is not None:
            code = mapped(m.customers.columns, "code", row_reader(values, "customer_"))
            key = values.get("customer_key") if m.customers.code_from else (code or values["customer_row"])
            customer = customer_fields(m.customers.columns, key, row_reader(values, "customer_"))
        record = {
            "sale_id": values["id"],
            "reference_prefix": m.reference_prefix,
            "updated_at": values["changed_at"],
            **sale_fields(m.sales.columns, row_reader(values, "sale_")),
            "customer": customer,
            "lines": lines,
        }
        if m.write_back is not None:
            record["aiq_status"] = values.get("aiq_status")
            record["aiq_transaction_id"] = values.get("aiq_transaction_id")
        return record

    # --- writing back -------------------------------------------------------------------------

    def write_back(self, outcomes: Sequence[SaleOutcome]) -> WrittenBack:
        """Status, message, transaction ID and sync time per sale, in the mapping's columns. A sale
        written back as posted is never downgraded, and a row whose columns already say the same
        is not touched at all: a CRM that bumps its change time on every update would otherwise
        read every written-back sale as changed the next night."""
        write_back, table = self.mapping.write_back, self._plan().write_back
        if write_back is None or table is None or not outcomes:
            return WrittenBack(0)
        names = write_back.columns
        key = type_coerce(table.c[column_key(table, write_back.key)], NullType())
        status = table.c[column_key(table, names.status)]
        transaction = table.c[column_key(table, names.transaction_id)]
        values: dict[str, Any] = {status.key: bindparam("new_status"), transaction.key: bindparam("new_tx")}
        differs = or_(
            status.is_distinct_from(bindparam("new_status")),
            transaction.is_distinct_from(bindparam("new_tx")),
        )
        if names.message:  # no new message: the one there stays (`SaleOutcome.crm_message`)
            message = table.c[column_key(table, names.message)]
            kept = func.coalesce(bindparam("new_message", type_=String), message)
            values[message.key] = kept
            differs = or_(differs, message.is_distinct_from(kept))
        if names.synced_at:
            values[table.c[column_key(table, names.synced_at)].key] = datetime.now(UTC).replace(tzinfo=None)
        never_downgraded = or_(status.is_(None), status != CrmStatus.POSTED.value, bindparam("new_posted"))
        statement = (
            update(table).where(key == bindparam("new_id"), differs, never_downgraded).values(**values)
        )
        rows = [
            {
                "new_id": o.sale_id,
                "new_status": o.crm_status.value,
                "new_posted": o.crm_status is CrmStatus.POSTED,
                "new_tx": o.transaction_id if o.crm_status is CrmStatus.POSTED else None,
                "new_message": o.crm_message,
            }
            for o in outcomes
            if o.sale_id is not None
        ]
        with self.engine.begin() as connection:
            return WrittenBack(connection.execute(statement, rows).rowcount or 0)


def column_key(table: Table, name: str) -> str:
    """A column's key in a reflected table, matched without regard to case where it must be."""
    if name in table.c:
        return name
    return next((c.key for c in table.c if c.key.lower() == name.lower()), name)


def mapped_columns(
    relation: _Relation, key: str, source: Source | None, label: str
) -> list[ColumnElement[Any]]:
    """The raw column a mapping key names; none for an absent key or a constant."""
    if source is None or isinstance(source, Constant):
        return []
    return [raw_column(relation.column(source, key), label)]


def row_reader(values: Any, prefix: str = "") -> Read:
    """Reads a mapped value from a row of the plan's query, where it is labelled by its key."""

    def read(key: str, column_name: str) -> Any:
        return values.get(f"{prefix}{key}")

    return read
