from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cartback.core.durations import parse_duration


class StoreSettings(BaseModel):
    """A store's settings, kept as JSON on the store row; every field has a sane default."""

    model_config = ConfigDict(extra="forbid")

    locale: str = "en"
    currency: str = Field("USD", min_length=3, max_length=3)
    timezone: str = "UTC"
    url: str = "https://shop.example.com"
    sender_email: str = "shop@example.com"
    sender_name: str | None = None
    support_email: str | None = None
    address: str = "Your store's postal address (set it in the store settings)"
    abandon_after: str = "30m"
    attribution_window: str = "5d"
    smtp_url: str | None = None
    utm_source: str = "cartback"
    utm_medium: str = "email"

    @field_validator("abandon_after", "attribution_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("sender_email", "support_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and ("@" not in value or any(c in value for c in "\r\n <>")):
            raise ValueError("must be an email address")
        return value

    @property
    def abandon_delay(self) -> timedelta:
        return parse_duration(self.abandon_after)

    @property
    def attribution(self) -> timedelta:
        return parse_duration(self.attribution_window)
