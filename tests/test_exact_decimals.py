"""Money and other decimals stored losslessly on every backend: SQLite's NUMERIC keeps a float
(9,999,999,999,999.9999 comes back as 10,000,000,000,000), so every decimal column of the
project's own databases (the demo CRM, jobs, charges, the store's schedules) is `ExactDecimal`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import Column, Integer, MetaData, Numeric, Table, insert, select, text

from aiq_flows.db import ExactDecimal, make_engine
from aiq_flows.sources.crm_sql import CrmSaleLine
from aiq_flows.sources.intercompany_sql import ChargeLineRow
from aiq_flows.sources.jobs_sql import JobLineRow, JobRow
from aiq_flows.store.schedules import ScheduleRow
from tests.conftest import POSTGRES_URL

VALUES = [
    Decimal("9999999999999.9999"),  # 17 significant digits: past what a float holds
    Decimal("0.1") + Decimal("0.2"),  # 0.3, not 0.30000000000000004
    Decimal("1234567.8912"),
    Decimal("0.0001"),
    Decimal("-42.5"),
]
COLUMNS = [
    CrmSaleLine.__table__.c.net_amount,
    CrmSaleLine.__table__.c.tax_amount,
    ChargeLineRow.__table__.c.amount,
    JobLineRow.__table__.c.amount,
    JobLineRow.__table__.c.rate,
    JobRow.__table__.c.fixed_fee,
    ScheduleRow.__table__.c.amount,
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[sqlalchemy.Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'exact.db'}")
        yield engine
        engine.dispose()
        return
    schema = f"exact_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    yield engine
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def _table(value_type: Any) -> Table:
    return Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("value", value_type))


@pytest.mark.parametrize("column", COLUMNS, ids=lambda c: f"{c.table.name}.{c.name}")
def test_every_decimal_column_round_trips_every_digit(engine: sqlalchemy.Engine, column: Any) -> None:
    """The column's own type, in a table of its own (the real tables need their foreign rows)."""
    table = _table(column.type)
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": n, "value": v} for n, v in enumerate(VALUES)])
    with engine.connect() as connection:
        back = [row.value for row in connection.execute(select(table).order_by(table.c.id))]
    assert back == VALUES
    assert str(back[0]) == "9999999999999.9999"


def test_a_float_written_before_the_column_was_exact_reads_as_the_decimal_it_prints_as(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    old = _table(Numeric(18, 4))
    old.create(engine)
    with engine.begin() as connection:
        connection.execute(insert(old), [{"id": 1, "value": Decimal("12.34")}])
    new = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("value", ExactDecimal(18, 4))
    )
    with engine.connect() as connection:
        assert connection.execute(select(new.c.value)).scalar_one() == Decimal("12.34")
    engine.dispose()


def test_sqlite_numeric_would_have_lost_the_digits(tmp_path: Any) -> None:
    """Why: the same value through a plain Numeric column on SQLite comes back different."""
    engine = make_engine(f"sqlite:///{tmp_path / 'float.db'}")
    table = _table(Numeric(18, 4))
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": 1, "value": VALUES[0]}])
    with engine.connect() as connection:
        assert connection.execute(select(table.c.value)).scalar_one() != VALUES[0]
    engine.dispose()
