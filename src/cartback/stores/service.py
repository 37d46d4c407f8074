"""Stores (tenants), their keys and settings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartback.core.ids import hash_secret, new_id, new_secret
from cartback.errors import NotFound, Unauthorized
from cartback.stores.models import ApiKey, InstanceSetting, Store
from cartback.stores.schemas import StoreSettings

API_KEY_PREFIX = "cb_sk_"
PUBLIC_KEY_PREFIX = "cb_pk_"


@dataclass(frozen=True)
class NewStore:
    store: Store
    api_key: str  # shown once, never stored in clear


def create_store(
    session: Session, *, name: str, now: datetime, settings: StoreSettings | None = None
) -> NewStore:
    settings = settings or StoreSettings()
    if settings.sender_name is None:
        settings = settings.model_copy(update={"sender_name": name})
    store = Store(
        id=new_id(),
        name=name,
        public_key=new_secret(PUBLIC_KEY_PREFIX, 16),
        settings=settings.model_dump(mode="json"),
        created_at=now,
    )
    session.add(store)
    session.flush()
    return NewStore(store=store, api_key=add_api_key(session, store_id=store.id, now=now))


def add_api_key(session: Session, *, store_id: str, now: datetime) -> str:
    secret = new_secret(API_KEY_PREFIX)
    session.add(
        ApiKey(
            id=new_id(),
            store_id=store_id,
            key_hash=hash_secret(secret),
            prefix=secret[: len(API_KEY_PREFIX) + 4],
            created_at=now,
        )
    )
    session.flush()
    return secret


def authenticate(session: Session, api_key: str | None) -> Store:
    """The store an API key belongs to; Unauthorized for a missing, unknown or revoked key."""
    if not api_key:
        raise Unauthorized(
            "Send the store's API key as 'Authorization: Bearer <key>'", code="missing_api_key"
        )
    if api_key.startswith(PUBLIC_KEY_PREFIX):
        raise Unauthorized(
            "This is the store's public key; the server API takes the secret API key",
            code="public_key_not_allowed",
        )
    row = session.execute(
        select(Store)
        .join(ApiKey, ApiKey.store_id == Store.id)
        .where(ApiKey.key_hash == hash_secret(api_key), ApiKey.revoked_at.is_(None))
    ).scalar_one_or_none()
    if row is None:
        raise Unauthorized("The API key is not valid", code="invalid_api_key")
    return row


def get_store(session: Session, store_id: str) -> Store:
    store = session.get(Store, store_id)
    if store is None:
        raise NotFound(f"No store with id {store_id!r}", code="store_not_found")
    return store


def find_store(session: Session, ref: str) -> Store:
    """A store by id or by exact name (for the CLI)."""
    store = session.get(Store, ref)
    if store is None:
        store = session.execute(select(Store).where(Store.name == ref)).scalars().first()
    if store is None:
        raise NotFound(f"No store with id or name {ref!r}", code="store_not_found")
    return store


def store_settings(store: Store) -> StoreSettings:
    return StoreSettings.model_validate(store.settings)


def update_settings(session: Session, store: Store, changes: dict[str, object]) -> StoreSettings:
    merged = StoreSettings.model_validate({**store.settings, **changes})
    store.settings = merged.model_dump(mode="json")
    session.flush()
    return merged


def instance_secret(session: Session) -> str:
    """The instance's signing secret, generated once and kept in the database."""
    row = session.get(InstanceSetting, "secret_key")
    if row is None:
        row = InstanceSetting(key="secret_key", value=secrets.token_urlsafe(32))
        session.add(row)
        session.flush()
    return row.value
