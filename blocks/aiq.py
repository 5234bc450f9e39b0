"""The AccountsIQ connection for one entity: Integration 1.1 keys, or an Integration 2.0
application's client credentials with the entity chosen per call."""

from __future__ import annotations

import threading
from typing import ClassVar, Literal, Self

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, model_validator

from aiq_flows.gateway.client import (
    AiqCredentials,
    AiqGateway,
    IntegrationCredentials,
    TokenAuthenticator,
    region_endpoint,
)

_gateways: dict[tuple[str, ...], AiqGateway] = {}
_authenticators: dict[tuple[str, ...], TokenAuthenticator] = {}
_lock = threading.Lock()


class AiqConnection(Block):
    """Where and as whom to reach AccountsIQ. Keys and secrets are SecretStr: shown masked in the
    UI, API and logs, and read only when the gateway logs in or asks for a token."""

    _block_type_name: ClassVar[str] = "AIQ Connection"
    _description: ClassVar[str] = (
        "AccountsIQ endpoint and credentials for one entity: Integration 1.1 partner and user keys, "
        "or an Integration 2.0 application's client id and secret."
    )

    api_version: Literal["1.1", "2.0"] = Field(default="1.1", description="Integration API version.")
    endpoint_url: str | None = Field(
        default=None, description="Full .asmx URL; overrides region (the sandbox uses this)."
    )
    region: str = Field(default="eu1", description="uk1, eu1, eu2 or us1, from the AIQ login URL.")
    company_id: str = Field(description="The entity (company) ID, e.g. DEMO_UK.")
    partner_key: SecretStr | None = Field(default=None, description="API 1.1 only.")
    user_key: SecretStr | None = Field(default=None, description="API 1.1 only.")
    client_id: str | None = Field(default=None, description="API 2.0 only: the integration application.")
    client_secret: SecretStr | None = Field(default=None, description="API 2.0 only.")
    timeout_seconds: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _credentials_match_the_version(self) -> Self:
        needed = ("partner_key", "user_key") if self.api_version == "1.1" else ("client_id", "client_secret")
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"API {self.api_version} needs {' and '.join(missing)}")
        return self

    @property
    def url(self) -> str:
        return self.endpoint_url or region_endpoint(self.region, self.api_version)

    def gateway(self) -> AiqGateway:
        """One gateway (session, token) per connection and process, shared by the tasks of a run;
        on 2.0 one token per application, shared by the gateways of its entities."""
        with _lock:
            if self.api_version == "1.1":
                if self.partner_key is None or self.user_key is None:
                    raise ValueError("API 1.1 needs partner_key and user_key")
                key: tuple[str, ...] = ("1.1", self.url, self.company_id, self.user_key.get_secret_value())
                if key not in _gateways:
                    credentials = AiqCredentials(
                        company_id=self.company_id, partner_key=self.partner_key, user_key=self.user_key
                    )
                    _gateways[key] = AiqGateway.login(self.url, credentials, timeout=self.timeout_seconds)
                return _gateways[key]
            if self.client_id is None or self.client_secret is None:
                raise ValueError("API 2.0 needs client_id and client_secret")
            app = ("2.0", self.url, self.client_id, self.client_secret.get_secret_value())
            if app not in _authenticators:
                _authenticators[app] = TokenAuthenticator(
                    IntegrationCredentials(client_id=self.client_id, client_secret=self.client_secret)
                )
            key = (*app, self.company_id)
            if key not in _gateways:
                _gateways[key] = AiqGateway.for_entity(
                    self.url, _authenticators[app], self.company_id, timeout=self.timeout_seconds
                )
            return _gateways[key]
