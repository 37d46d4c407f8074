"""A flow as a store writes it (YAML or JSON), validated.

name: Default recovery
entry:                     # who enters (all optional)
  min_value: 2000          # minor units of the cart's currency
  min_items: 1
  customer: any            # any | first_time | returning
steps:
  - after: 30m             # measured from the moment the cart was abandoned
    channels: [sms, email] # in order: the first allowed and reachable one is used, and a
    template: reminder     # permanent failure moves on to the next
  - after: 1h
    channel: email         # one channel: same as channels: [email]
    condition: previous_not_sent   # only if the step before sent nothing
    subject: "{{ first_name or 'Hi' }}, did you forget something?"
  - after: 24h
    channels: [whatsapp]
    whatsapp_template: cart_reminder_2   # an approved template; default cartback_<template>
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cartback.core.durations import parse_duration
from cartback.stores.schemas import Channel


class EntryRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_value: int = Field(0, ge=0, description="minimum cart value in minor units")
    min_items: int = Field(1, ge=1)
    customer: Literal["any", "first_time", "returning"] = "any"


class StepDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: str = Field(description="time since abandonment: 90s, 30m, 24h, PT1H")
    channel: Channel | None = Field(None, description="one channel; or use 'channels'")
    channels: list[Channel] | None = Field(
        None, min_length=1, max_length=5, description="in order of preference"
    )
    condition: Literal["always", "previous_not_sent", "previous_sent"] = "always"
    template: str = Field("reminder", pattern=r"^[a-z0-9_]+$")
    subject: str | None = Field(None, max_length=300)
    whatsapp_template: str | None = Field(None, pattern=r"^[a-z0-9_]{1,512}$")
    whatsapp_language: str | None = Field(None, pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")

    @model_validator(mode="after")
    def _one_way_to_name_channels(self) -> StepDef:
        if self.channel is not None and self.channels is not None:
            raise ValueError("give either 'channel' or 'channels', not both")
        if self.channels is not None and len(set(self.channels)) != len(self.channels):
            raise ValueError("'channels' names a channel twice")
        return self

    @property
    def channel_order(self) -> tuple[str, ...]:
        """The channels to try, in order (email when the step names none)."""
        if self.channels is not None:
            return tuple(self.channels)
        return (self.channel or "email",)

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
        if self.steps[0].condition != "always":
            raise ValueError("the first step has no step before it: its condition must be always")
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
