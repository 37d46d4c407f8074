"""Alembic migrations, shipped inside the package so ``cartback db upgrade`` works after pip."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from cartback.core.db import normalize_url

HERE = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", normalize_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
