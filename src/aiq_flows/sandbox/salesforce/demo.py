"""Demo data for the Salesforce stand-in: accounts and closed-won opportunities with line items,
a few still open (left out by the mapping's filter) and a few a finance team would stop."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from aiq_flows.sandbox.salesforce.org import SalesforceOrg

ACCOUNTS = [
    ("Northwind Traders", "NORTH01", "York", "YO1 7HH"),
    ("Fabrikam Ltd", "FABRIK01", "Leeds", "LS1 4AP"),
    ("Contoso Group plc", "CONTOSO1", "London", "EC2A 4NE"),
    ("Tailspin Toys", None, "Bristol", "BS1 5TR"),  # no account number: its code is derived
]


@dataclass
class SeededOrg:
    won: list[str] = field(default_factory=list)  # closed-won opportunities
    open: list[str] = field(default_factory=list)  # still open: not invoiced
    bad: dict[str, str] = field(default_factory=dict)  # id -> what is wrong with it


def seed_org(org: SalesforceOrg, opportunities: int = 40, today: date | None = None) -> SeededOrg:
    """`opportunities` in all: every tenth still open, two closed-won but unfit for AIQ."""
    today = today or date.today()
    accounts = [
        org.insert(
            "Account",
            Name=name,
            AccountNumber=number,
            BillingCity=city,
            BillingPostalCode=postcode,
            BillingCountry="United Kingdom",
            Billing_Email__c=f"accounts@{name.split()[0].lower()}.example",
        )
        for name, number, city, postcode in ACCOUNTS
    ]
    seeded = SeededOrg()
    for n in range(1, opportunities + 1):
        stage = "Prospecting" if n % 10 == 0 else "Closed Won"
        opportunity = org.insert(
            "Opportunity",
            Name=f"Renewal {n:05d}",
            AccountId=accounts[n % len(accounts)],
            StageName=stage,
            CloseDate=today - timedelta(days=n % 20),
            CurrencyIsoCode="GBP",
            Description=f"Annual renewal {n}",
        )
        for line in (1, 2):
            org.insert(
                "OpportunityLineItem",
                OpportunityId=opportunity,
                Name=f"Seat licence tier {line}",
                Quantity=Decimal(line * 5),
                UnitPrice=Decimal("12.50") * line,
                SortOrder=line,
                Tax_Code__c="T1",
                GL_Code__c="4000",
            )
        if stage != "Closed Won":
            seeded.open.append(opportunity)
        elif n == 7:
            org.update("Opportunity", opportunity, CloseDate=None)
            seeded.bad[opportunity] = "no close date"
        elif n == 13:
            for item in org.all("OpportunityLineItem"):
                if item["OpportunityId"] == opportunity:
                    org.update("OpportunityLineItem", item["Id"], Tax_Code__c="VAT20")
            seeded.bad[opportunity] = "a tax code AIQ does not have"
        else:
            seeded.won.append(opportunity)
    return seeded
