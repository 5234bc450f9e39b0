"""A record raised in AccountsIQ as a pair of legs: a back-to-back job (a purchase leg and a sales
leg in one entity), an intercompany charge (a sales leg in the seller, a purchase leg in the
buyer). What they share: the pair's references and the version that tells a changed source."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from aiq_flows.domain.fields import Moment
from aiq_flows.domain.references import PairKind, leg_reference, pair_key


class PairSource(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: ClassVar[PairKind]
    updated_at: Moment

    @property
    def source_id(self) -> int | str:
        raise NotImplementedError

    @model_validator(mode="after")
    def _references_fit(self) -> PairSource:
        leg_reference(self.kind, self.source_id, "purchase")  # both legs fit AIQ's 50 characters
        return self

    @property
    def pair_key(self) -> str:
        return pair_key(self.kind, self.source_id)

    @property
    def purchase_reference(self) -> str:
        return leg_reference(self.kind, self.source_id, "purchase")

    @property
    def sales_reference(self) -> str:
        return leg_reference(self.kind, self.source_id, "sales")

    @property
    def version(self) -> str:
        """What the source looked like when sent: a refused pair is sent again once it changes."""
        return self.updated_at.isoformat()
