"""The AccountsIQ connection for one entity (Integration 1.1 keys)."""

from __future__ import annotations

import threading
from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from aiq_flows.gateway.client import AiqCredentials, AiqGateway, region_endpoint

_gateways: dict[tuple[str, str, str], AiqGateway] = {}
_lock = threading.Lock()


class AiqConnection(Block):
    """Where and as whom to reach AccountsIQ. Keys are SecretStr: shown masked in the UI, API and
    logs, and read only when the gateway logs in."""

    _block_type_name: ClassVar[str] = "AIQ Connection"
    _description: ClassVar[str] = "AccountsIQ Integration 1.1 endpoint and keys for one entity."

    endpoint_url: str | None = Field(
        default=None, description="Full .asmx URL; overrides region (the sandbox uses this)."
    )
    region: str = Field(default="eu1", description="uk1, eu1, eu2 or us1, from the AIQ login URL.")
    company_id: str = Field(description="The entity (company) ID, e.g. DEMO_UK.")
    partner_key: SecretStr
    user_key: SecretStr
    timeout_seconds: float = Field(default=60.0, gt=0)

    @property
    def url(self) -> str:
        return self.endpoint_url or region_endpoint(self.region)

    def gateway(self) -> AiqGateway:
        """One gateway (session, token) per connection and process, shared by the tasks of a run."""
        key = (self.url, self.company_id, self.user_key.get_secret_value())
        with _lock:
            gateway = _gateways.get(key)
            if gateway is None:
                credentials = AiqCredentials(
                    company_id=self.company_id, partner_key=self.partner_key, user_key=self.user_key
                )
                gateway = AiqGateway.login(self.url, credentials, timeout=self.timeout_seconds)
                _gateways[key] = gateway
            return gateway
