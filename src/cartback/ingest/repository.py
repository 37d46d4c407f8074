"""The group ingest's SQL, handed to the database driver as it is.

The set-based group write (:mod:`cartback.ingest.batch`) binds about forty values per
event. Through SQLAlchemy Core every row of an ``executemany`` becomes a parameter dict
and each value runs through its type's bind processor (two steps per datetime on SQLite),
which cost more than the database's own work for the same rows. These statements go to
the driver as text, with values already in the database's form: on SQLite, datetimes as
SQLAlchemy's DATETIME text (``2026-01-05 09:00:00.000000``, naive UTC) and JSON as text;
on PostgreSQL, aware datetimes and JSON text cast to ``jsonb``. Reading the rows back
through the models gives the same values as rows the ORM wrote.

One statement per table and group:

- SQLite: a multi-row ``VALUES`` list. Not ``executemany``, because the driver releases
  and takes back the GIL around every row, and in the server each take-back can wait for
  the event loop's thread.
- PostgreSQL: ``unnest`` over one array per column. The statement text stays the same
  whatever the group size, so psycopg prepares it once; a ``VALUES`` list of 64 rows is a
  new 1,000-parameter query for psycopg to parse and the server to plan every time. The
  arrays go in binary (``%b``): psycopg's text format escapes every element with a regex,
  4x slower for a group's JSON payloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

# Rows per SQLite statement: it allows 32,766 bound values (3.32+); 500 rows of at most
# 17 values stays far below.
CHUNK = 500

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Insert:
    """An INSERT of whole rows: the columns in row order, with their PostgreSQL types."""

    table: str
    columns: tuple[tuple[str, str], ...]  # (name, PostgreSQL type)
    tail: str = ""  # ON CONFLICT / RETURNING

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def head(self) -> str:
        return f"INSERT INTO {self.table} ({', '.join(self.names)}) "


_T, _TS, _J, _BIG, _INT = "text", "timestamptz", "jsonb", "bigint", "integer"

EVENTS = Insert(
    "events",
    (
        ("store_id", _T),
        ("event_id", _T),
        ("type", _T),
        ("occurred_at", _TS),
        ("received_at", _TS),
        ("payload", _J),
    ),
    " ON CONFLICT (store_id, event_id) DO NOTHING RETURNING store_id, event_id",
)
CONTACTS = Insert(
    "contacts",
    (
        ("id", _T),
        ("store_id", _T),
        ("email", _T),
        ("first_name", _T),
        ("locale", _T),
        ("timezone", _T),
        ("orders_count", _INT),
        ("created_at", _TS),
        ("updated_at", _TS),
    ),
    # a known contact keeps what a snapshot leaves out
    " ON CONFLICT (store_id, email) DO UPDATE SET "
    "first_name = coalesce(excluded.first_name, contacts.first_name), "
    "locale = coalesce(excluded.locale, contacts.locale), "
    "timezone = coalesce(excluded.timezone, contacts.timezone), "
    "updated_at = excluded.updated_at RETURNING id, store_id, email",
)
CARTS = Insert(
    "carts",
    (
        ("id", _T),
        ("store_id", _T),
        ("external_id", _T),
        ("contact_id", _T),
        ("currency", _T),
        ("items", _J),
        ("value", _BIG),
        ("item_count", _INT),
        ("stage", _T),
        ("status", _T),
        ("restore_url", _T),
        ("snapshot_at", _TS),
        ("last_activity_at", _TS),
        ("abandon_at", _TS),
        ("reminders_sent", _INT),
        ("created_at", _TS),
        ("updated_at", _TS),
    ),
)
TIMELINE = Insert(
    "timeline",
    (("store_id", _T), ("cart_id", _T), ("at", _TS), ("kind", _T), ("data", _J)),
)
# What a snapshot changes on a cart that exists; the row's id comes last.
CART_UPDATE: tuple[tuple[str, str], ...] = (
    ("contact_id", _T),
    ("currency", _T),
    ("items", _J),
    ("value", _BIG),
    ("item_count", _INT),
    ("restore_url", _T),
    ("snapshot_at", _TS),
    ("last_activity_at", _TS),
    ("abandon_at", _TS),
    ("updated_at", _TS),
)
CART_COLUMNS = (
    "id, external_id, status, snapshot_at, last_activity_at, contact_id, restore_url, "
    "currency, {items}, value, item_count, abandon_at"
)


class GroupSql:
    """The group write's statements on the session's connection, for its dialect."""

    def __init__(self, session: Session) -> None:
        self.connection: Connection = session.connection()
        self.sqlite = self.connection.dialect.name == "sqlite"
        self._texts: dict[datetime, str] = {}

    def when(self, value: datetime) -> Any:
        """An aware datetime in the form the driver stores for a ``UTCDateTime`` column."""
        if not self.sqlite:
            return value
        # isoformat costs ~1.5 us here and a group binds each request's `now` and each
        # event's time several times: format each moment once
        text = self._texts.get(value)
        if text is None:
            utc = value if value.tzinfo is UTC else value.astimezone(UTC)
            text = self._texts[value] = utc.replace(tzinfo=None).isoformat(" ", "microseconds")
        return text

    @staticmethod
    def read_when(value: Any) -> datetime:
        """A ``UTCDateTime`` column's raw value back as an aware UTC datetime."""
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    def select_carts(self, store_id: str, external_ids: Sequence[str]) -> list[Row]:
        """The store's carts among ``external_ids``, as the columns of ``CART_COLUMNS``
        (items as JSON text)."""
        if not self.sqlite:
            sql = (
                f"SELECT {CART_COLUMNS.format(items='items::text')} FROM carts "
                "WHERE store_id = %s AND external_id = ANY(%b::text[])"
            )
            return [
                tuple(r) for r in self.connection.exec_driver_sql(sql, (store_id, external_ids))
            ]
        found: list[Row] = []
        for start in range(0, len(external_ids), CHUNK):
            chunk = external_ids[start : start + CHUNK]
            sql = (
                f"SELECT {CART_COLUMNS.format(items='items')} FROM carts "
                f"WHERE store_id = ? AND external_id IN ({', '.join('?' * len(chunk))})"
            )
            found.extend(self._rows(sql, (store_id, *chunk)))
        return found

    def insert(self, statement: Insert, rows: Sequence[Row]) -> list[Row]:
        """Insert ``rows`` (values in ``statement``'s column order); the rows its
        RETURNING clause gives back, if it has one."""
        if not rows:
            return []
        if not self.sqlite:
            arrays = ", ".join(f"%b::{kind}[]" for _, kind in statement.columns)
            sql = f"{statement.head()}SELECT * FROM unnest({arrays}){statement.tail}"
            return self._rows(sql, tuple(list(column) for column in zip(*rows, strict=True)))
        out: list[Row] = []
        one = "(" + ", ".join("?" * len(statement.columns)) + ")"
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            sql = f"{statement.head()}VALUES {', '.join([one] * len(chunk))}{statement.tail}"
            out.extend(self._rows(sql, tuple(value for row in chunk for value in row)))
        return out

    def update_carts(self, rows: Sequence[Row]) -> None:
        """``CART_UPDATE`` values then the cart's id, per row."""
        if not rows:
            return
        names = [name for name, _ in CART_UPDATE]
        if self.sqlite:
            sets = ", ".join(f"{name} = ?" for name in names)
            self.connection.exec_driver_sql(f"UPDATE carts SET {sets} WHERE id = ?", list(rows))
            return
        sets = ", ".join(f"{name} = v.{name}" for name in names)
        arrays = ", ".join(f"%b::{kind}[]" for _, kind in (*CART_UPDATE, ("id", _T)))
        self.connection.exec_driver_sql(
            f"UPDATE carts SET {sets} FROM unnest({arrays}) AS v({', '.join(names)}, id) "
            "WHERE carts.id = v.id",
            tuple(list(column) for column in zip(*rows, strict=True)),
        )

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[Row]:
        result = self.connection.exec_driver_sql(sql, params)
        return [tuple(r) for r in result] if result.returns_rows else []
