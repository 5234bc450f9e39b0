"""Source mappings that ship with the project: the demo CRM's, and a Salesforce org's
Opportunities (a starting point for your own)."""

from __future__ import annotations

from pathlib import Path

DEMO_CRM = Path(__file__).with_name("demo-crm.yaml")
SALESFORCE_OPPORTUNITIES = Path(__file__).with_name("salesforce-opportunities.yaml")
DEMO_CRM_IE = Path(__file__).with_name("demo-crm-ie.yaml")
