"""The credit check before posting: would this run's invoices take a customer over its credit
limit (counting the invoices already accepted in the same run), or is the customer's debt
overdue beyond the policy's days? Pure rules; AIQ's balances are read by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class CreditPolicy(StrEnum):
    POST = "post"  # no check
    HOLD = "hold"  # hold the sales that fail it; the next run tries them again
    POST_AND_WARN = "post_and_warn"  # post them, and say so in the report


@dataclass(frozen=True)
class CreditPosition:
    balance: Decimal  # what the customer owes now (AIQ)
    limit: Decimal  # 0: no limit
    overdue: Decimal = Decimal(0)  # owed for longer than the policy allows (AIQ's statement)


@dataclass(frozen=True)
class Ageing:
    """What a customer owes by days past the due date (AIQ's statement buckets)."""

    days_0_30: Decimal = Decimal(0)
    days_30_60: Decimal = Decimal(0)
    days_60_90: Decimal = Decimal(0)
    days_90_120: Decimal = Decimal(0)
    days_120_plus: Decimal = Decimal(0)

    def overdue_beyond(self, days: int) -> Decimal:
        """What has been owed for longer than `days` past due: the buckets that start at or after
        it (AIQ's buckets are 30 days wide, so a policy of 45 days counts from 60)."""
        buckets = (
            (0, self.days_0_30),
            (30, self.days_30_60),
            (60, self.days_60_90),
            (90, self.days_90_120),
            (120, self.days_120_plus),
        )
        return sum((amount for start, amount in buckets if start >= days), Decimal(0))


@dataclass(frozen=True)
class Charge:
    key: int | str  # the sale
    customer: str
    gross: Decimal


@dataclass(frozen=True)
class CreditVerdict:
    key: int | str
    customer: str
    exposure: Decimal  # balance + this run's accepted invoices + this one
    reason: str


def check(
    charges: Iterable[Charge], positions: Mapping[str, CreditPosition]
) -> dict[int | str, CreditVerdict]:
    """The charges that fail, in the order given: a charge fails when its customer has overdue
    debt, or when the customer's balance, plus the charges already accepted in this run, plus
    this one, exceed a non-zero limit. A failed charge adds nothing to the exposure, so a later,
    smaller one may still fit."""
    accepted: dict[str, Decimal] = {}
    failed: dict[int | str, CreditVerdict] = {}
    for charge in charges:
        position = positions.get(charge.customer)
        if position is None:
            continue
        exposure = position.balance + accepted.get(charge.customer, Decimal(0)) + charge.gross
        if position.overdue > 0:
            reason = f"{charge.customer} has {position.overdue} overdue beyond the policy's days"
        elif position.limit > 0 and exposure > position.limit:
            reason = (
                f"{charge.customer} would owe {exposure} against a credit limit of {position.limit} "
                f"(over by {exposure - position.limit})"
            )
        else:
            accepted[charge.customer] = accepted.get(charge.customer, Decimal(0)) + charge.gross
            continue
        failed[charge.key] = CreditVerdict(charge.key, charge.customer, exposure, reason)
    return failed
