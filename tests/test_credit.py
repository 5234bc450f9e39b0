"""The credit check: properties of the rule, and the nightly sync holding and releasing sales."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from aiq_flows.domain.credit import Charge, CreditPosition, check

D = Decimal
money = st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2)
customers = st.sampled_from(["A", "B", "C"])


@given(
    st.lists(st.tuples(customers, money), max_size=40),
    st.dictionaries(customers, st.tuples(st.decimals(min_value=D(0), max_value=D("3000"), places=2), money)),
)
def test_accepted_charges_never_take_a_customer_over_its_limit(
    charges: list[tuple[str, Decimal]], positions: dict[str, tuple[Decimal, Decimal]]
) -> None:
    given_charges = [Charge(n, customer, gross) for n, (customer, gross) in enumerate(charges)]
    held = check(
        given_charges, {c: CreditPosition(balance, limit) for c, (balance, limit) in positions.items()}
    )
    accepted: dict[str, Decimal] = {}
    for charge in given_charges:
        if charge.key in held:
            balance, limit = positions[charge.customer]
            # held only when this charge on top of what was accepted before would exceed the limit
            assert balance + accepted.get(charge.customer, D(0)) + charge.gross > limit
            assert held[charge.key].exposure == balance + accepted.get(charge.customer, D(0)) + charge.gross
            continue
        accepted[charge.customer] = accepted.get(charge.customer, D(0)) + charge.gross
        if charge.customer in positions:
            balance, limit = positions[charge.customer]
            assert balance + accepted[charge.customer] <= limit


def test_golden_running_exposure_lets_a_smaller_later_sale_through() -> None:
    charges = [
        Charge(1, "A", D("600")),
        Charge(2, "A", D("500")),
        Charge(3, "A", D("300")),
        Charge(4, "B", D("9")),
    ]
    held = check(charges, {"A": CreditPosition(D("100"), D("1000")), "B": CreditPosition(D("0"), D("0"))})
    # 100 + 600 = 700 ok; 700 + 500 = 1200 > 1000 held; 700 + 300 = 1000 ok; B has no limit
    assert list(held) == [2]
    assert held[2].exposure == D("1200") and "over by 200" in held[2].reason


def test_overdue_debt_holds_every_sale_of_the_customer() -> None:
    held = check([Charge(1, "A", D("1")), Charge(2, "B", D("1"))], {"A": CreditPosition(D(0), D(0), D("50"))})
    assert list(held) == [1] and "50 overdue" in held[1].reason
