"""Benchmark: spread 100,000 contracts x 12 months with the vectorised engine and with a per-row
Python loop over the scalar engine; print both and the ratio (target >= 20x).

    .venv/bin/python bench/spreading.py [--contracts N] [--method actual_days]
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import date, timedelta
from decimal import Decimal

import pandas as pd

from aiq_flows.domain.spreading import Method, service_end, spread, spread_many, with_decimal_amounts


def contracts(count: int, seed: int = 7) -> pd.DataFrame:
    rng = random.Random(seed)
    starts = [date(2026, 1, 1) + timedelta(days=rng.randrange(365)) for _ in range(count)]
    pence = [rng.randrange(1_000, 10_000_000) for _ in range(count)]
    return pd.DataFrame(
        {
            "contract_id": range(count),
            "total": [Decimal(p).scaleb(-2) for p in pence],  # what the per-row loop takes
            "total_minor": pence,  # what the vectorised engine takes, as read_sql would give it
            "start": starts,
            "end": [service_end(s, 12) for s in starts],
            "currency": "GBP",
        }
    )


def timed(label: str, seconds: float, parts: int) -> None:
    print(f"{label:<32}: {seconds:7.2f} s {parts / seconds:12,.0f} parts/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contracts", type=int, default=100_000)
    parser.add_argument("--method", choices=[m.value for m in Method], default=Method.ACTUAL_DAYS.value)
    args = parser.parse_args()
    method = Method(args.method)
    frame = contracts(args.contracts)
    # held the pandas way: datetime64 columns, as read_sql or read_csv(parse_dates=...) give them
    columnar = frame.assign(start=pd.to_datetime(frame["start"]), end=pd.to_datetime(frame["end"]))

    started = time.perf_counter()
    vectorised = spread_many(columnar, method=method)
    engine_seconds = time.perf_counter() - started
    started = time.perf_counter()
    as_decimals = with_decimal_amounts(vectorised)
    with_decimals_seconds = engine_seconds + time.perf_counter() - started

    started = time.perf_counter()
    looped = [
        part
        for total, start, end in zip(frame["total"], frame["start"], frame["end"], strict=True)
        for part in spread(total, start, end, method=method)
    ]
    loop_seconds = time.perf_counter() - started

    assert [p.amount for p in looped] == list(as_decimals["amount"])
    assert sum(as_decimals["amount"]) == sum(frame["total"])
    parts = len(looped)
    print(f"{args.contracts:,} contracts x 12 months ({method.value}): {parts:,} monthly parts")
    timed("vectorised engine (int minor)", engine_seconds, parts)
    timed("vectorised + Decimal objects", with_decimals_seconds, parts)
    timed("per-row Python loop (Decimal)", loop_seconds, parts)
    print(f"{'ratio, engine':<32}: {loop_seconds / engine_seconds:7.1f} x")
    print(f"{'ratio, with Decimal objects':<32}: {loop_seconds / with_decimals_seconds:7.1f} x")


if __name__ == "__main__":
    main()
