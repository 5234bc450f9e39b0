"""Source mappings that ship with the project (the demo CRM's)."""

from __future__ import annotations

from pathlib import Path

DEMO_CRM = Path(__file__).with_name("demo-crm.yaml")
