"""Request bodies of the serving app, and the config it runs with.

Ids are strict integers (``"7"`` or ``7.5`` is refused, not coerced) within BIGINT range, as
the warehouse keys are. The batch-size limit is checked by the app itself, so an oversize
batch gets 413 with the limit in the message rather than a generic validation error; so is the
body size, before a byte of JSON is parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ml_jobs.config import Paths

BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1
MIN_API_KEY_LENGTH = 16
EntityId = Annotated[StrictInt, Field(ge=BIGINT_MIN, le=BIGINT_MAX)]


@dataclass(frozen=True)
class ServeConfig:
    """How ``basketcast serve`` runs."""

    paths: Paths
    online: str = "sqlite"  # "sqlite" | "redis"
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch: int = 1000  # ids per request
    refresh_s: float = 60.0  # how often champion models are re-checked in the registry
    api_key: str | None = None  # when set, /features and /predict/* require it
    max_body_bytes: int = 1 << 20  # larger request bodies get 413 before they are parsed

    def __post_init__(self) -> None:
        if self.api_key is not None and len(self.api_key) < MIN_API_KEY_LENGTH:
            raise ValueError(
                f"the API key must be at least {MIN_API_KEY_LENGTH} characters long "
                f"(got {len(self.api_key)}); e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`"
            )
        if self.max_body_bytes <= 0 or self.max_batch <= 0:
            raise ValueError("max_body_bytes and max_batch must be positive")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeaturesRequest(_Request):
    """Online features of some entities: all of the entity's features, or one service's."""

    entity: str = Field(description="entity name: 'user' or 'item'")
    ids: list[EntityId] = Field(min_length=1, description="entity ids (BIGINT)")
    feature_service: str | None = Field(
        default=None, description="e.g. 'propensity_v1'; default: every feature of the entity"
    )


class DemandRequest(_Request):
    """Demand forecasts of some items from the champion's newest batch run."""

    item_ids: list[EntityId] = Field(min_length=1)
    max_horizon: int | None = Field(
        default=None, ge=1, description="keep horizons 1..max_horizon (default: all)"
    )


class PropensityRequest(_Request):
    """Purchase propensity of some users, scored now on their online features."""

    user_ids: list[EntityId] = Field(min_length=1)
