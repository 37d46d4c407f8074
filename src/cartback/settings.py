"""Typed settings, read once from the environment (prefix ``CARTBACK_``) and passed in."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cartback.errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARTBACK_", extra="ignore")

    database_url: str = Field(
        "sqlite:///./cartback.db",
        description="SQLAlchemy URL: sqlite:///path.db or postgresql://user@host/db",
    )
    smtp_url: SecretStr | None = Field(
        None,
        description="smtp://user:pass@host:587?starttls=1 or smtps://...; unset = embedded outbox",
    )
    base_url: str = Field("http://127.0.0.1:8000", description="Public URL for tracked links")
    secret_key: SecretStr | None = Field(
        None, description="Signs link tokens; unset = generated once and kept in the database"
    )
    outbox_dir: str = Field("./cartback-outbox", description="Where the outbox keeps .eml files")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    worker_concurrency: int = Field(4, ge=1, le=64)
    worker_batch: int = Field(50, ge=1, le=1000)
    poll_interval: float = Field(1.0, gt=0, le=60)
    cart_expiry_days: int = Field(30, ge=1)
    event_retention_days: int = Field(90, ge=1)
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql", "postgres:")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() == "":
            return None
        if value is not None and not value.get_secret_value().startswith(("smtp://", "smtps://")):
            raise ValueError("must start with smtp:// or smtps://")
        return value

    @property
    def cart_expiry(self) -> timedelta:
        return timedelta(days=self.cart_expiry_days)

    @property
    def event_retention(self) -> timedelta:
        return timedelta(days=self.event_retention_days)


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus explicit overrides (CLI options).

    Raises ConfigError with one line per bad setting, naming its variable.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = "CARTBACK_" + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"  {name}: {err['msg']}")
        raise ConfigError("Invalid settings:\n" + "\n".join(lines)) from None
