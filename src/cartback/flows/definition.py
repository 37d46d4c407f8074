"""A flow as a store writes it (YAML or JSON), validated.

name: Default recovery
entry:                     # who enters (all optional)
  min_value: 2000          # minor units of the cart's currency
  min_items: 1
  customer: any            # any | first_time | returning
steps:
  - after: 1h              # measured from the moment the cart was abandoned
    channel: email
    template: reminder
    subject: "{{ first_name or 'Hi' }}, did you forget something?"
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cartback.core.durations import parse_duration


class EntryRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_value: int = Field(0, ge=0, description="minimum cart value in minor units")
    min_items: int = Field(1, ge=1)
    customer: Literal["any", "first_time", "returning"] = "any"


class StepDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: str = Field(description="time since abandonment: 90s, 30m, 24h, PT1H")
    channel: Literal["email"] = "email"
    template: str = Field("reminder", pattern=r"^[a-z0-9_]+$")
    subject: str | None = Field(None, max_length=300)

    @field_validator("after")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def offset(self) -> timedelta:
        return parse_duration(self.after)


class FlowDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("Cart recovery", min_length=1, max_length=200)
    enabled: bool = True
    entry: EntryRules = Field(default_factory=EntryRules)
    steps: list[StepDef] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _steps_in_order(self) -> FlowDefinition:
        offsets = [s.offset for s in self.steps]
        if offsets != sorted(offsets):
            raise ValueError(
                "steps must be in order of 'after' (each no earlier than the one before)"
            )
        return self


DEFAULT_FLOW: dict[str, Any] = {
    "name": "Cart recovery (built-in)",
    "entry": {"min_value": 0, "min_items": 1, "customer": "any"},
    "steps": [
        {"after": "1h", "channel": "email", "template": "reminder"},
        {"after": "24h", "channel": "email", "template": "help"},
        {"after": "72h", "channel": "email", "template": "last_chance"},
    ],
}


def default_flow() -> FlowDefinition:
    return FlowDefinition.model_validate(DEFAULT_FLOW)
