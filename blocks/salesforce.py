"""Salesforce as the source of sales: a connected app's OAuth credentials (the secret as
SecretStr) and the mapping of its objects to sales (`aiq_flows/mappings/salesforce-opportunities.yaml`
is a starting point)."""

from __future__ import annotations

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator

from aiq_flows.sources.mapping import load_mapping
from aiq_flows.sources.salesforce import SalesforceApi, SalesforceLogin, SalesforceSalesSource


class SalesforceSource(Block):
    _block_type_name: ClassVar[str] = "Salesforce Source"
    _description: ClassVar[str] = (
        "A Salesforce org read through a connected app (OAuth 2.0 client credentials flow) and a "
        "mapping of its objects (Opportunities, Orders...) and fields to sales."
    )

    login_url: str = Field(description="The org's My Domain URL, e.g. https://acme.my.salesforce.com")
    client_id: str = Field(description="The connected app's consumer key")
    client_secret: SecretStr = Field(description="The connected app's consumer secret")
    mapping: str = Field(description="The mapping (YAML text), or the path of a mapping file")
    api_version: str = "62.0"
    ca_bundle: str | None = Field(
        default=None, description="A CA bundle to trust (a TLS-inspecting proxy); default: the system's"
    )
    timeout_seconds: float = 60.0

    @field_validator("mapping")
    @classmethod
    def _mapping_reads(cls, value: str) -> str:
        load_mapping(value)  # refused on save, naming the key that is wrong
        return value

    def source(self, name: str = "salesforce") -> SalesforceSalesSource:
        login = SalesforceLogin(
            self.login_url,
            self.client_id,
            self.client_secret.get_secret_value(),
            self.api_version,
            self.ca_bundle,
            self.timeout_seconds,
        )
        return SalesforceSalesSource(SalesforceApi(login), load_mapping(self.mapping), name)
