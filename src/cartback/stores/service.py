"""Stores (tenants), their keys and settings."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import orjson
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
    """The store's parsed settings, validated once per (store, settings) and process
    (:func:`settings_from_json`). Read-only: never change the returned object."""
    raw = orjson.dumps(store.settings, option=orjson.OPT_SORT_KEYS).decode()
    return settings_from_json(store.id, raw)


class _SettingsCache:
    """Parsed settings by (store id, the settings' JSON text): a bounded LRU shared by the
    worker threads. Validating a store's settings costs ~150 µs; a journey step needs
    them every time, and they change rarely. A change is a new text, hence a new key, so
    a cached value never goes stale. Callers must treat the result as read-only."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], StoreSettings] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, store_id: str, raw: str) -> StoreSettings:
        key = (store_id, raw)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        parsed = StoreSettings.model_validate(orjson.loads(raw))
        with self._lock:
            self._items[key] = parsed
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return parsed


_settings_cache = _SettingsCache()


def settings_from_json(store_id: str, raw: str) -> StoreSettings:
    """The store's settings from the JSON text of its ``settings`` column, parsed once per
    (store, text) and process. Read-only: never change the returned object."""
    return _settings_cache.get(store_id, raw)


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
