"""The dirty-rows property at scale: arbitrary values in every column of a SQLite CRM, through the
CRM read, validation and the SOAP envelopes, many more examples than `make test` runs. Prints
how the examples ended (refused per field, or valid with their envelopes built) and the rate.

    .venv/bin/python bench/dirty_rows.py [--examples 5000] [--seed 1]

Any example that raises out of the read, validation or the envelope, or that is refused without
naming its field, stops the run with hypothesis's minimal failing example.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from hypothesis import HealthCheck, given, seed, settings

    from aiq_flows.sources.crm_sql import SqlCrm
    from tests.support.processes import Sandbox
    from tests.test_dirty_crm import CUSTOMERS, LINES, SALES, Templates, check_one_record
    from tests.test_gateway_sandbox import gateway_for

    with tempfile.TemporaryDirectory(prefix="aiq-dirty-rows-") as folder:
        sandbox = Sandbox(Path(folder))
        try:
            gateway = gateway_for(sandbox)
            templates = Templates(
                gateway.new_batch_sales_invoice("ACME01"), gateway.new_sales_invoice("ACME01")
            )
            gateway.close()
        finally:
            sandbox.stop()
        crm = SqlCrm(f"sqlite:///{Path(folder) / 'crm.db'}")
        crm.create_schema()
        ended: Counter[str] = Counter()

        @seed(args.seed)
        @settings(
            max_examples=args.examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(sale=SALES, lines=LINES, customer=CUSTOMERS)
        def every_row(sale: dict[str, Any], lines: list[dict[str, Any]], customer: dict[str, Any]) -> None:
            ended[check_one_record(crm, templates, sale, lines, customer)] += 1

        started = time.perf_counter()
        every_row()
        seconds = time.perf_counter() - started
        crm.dispose()

    total = sum(ended.values())
    print(f"examples          : {total:,} in {seconds:.1f} s ({total / seconds:,.0f}/s), none raised")
    for outcome, count in ended.most_common():
        print(f"  {outcome:<40}: {count:6,} ({count / total:6.1%})")


if __name__ == "__main__":
    main()
