"""The group ingest's hand-written inserts stay in step with the models they write."""

from __future__ import annotations

import pytest
from sqlalchemy import Table

from cartback.carts.models import Cart, TimelineEntry
from cartback.contacts.models import Contact
from cartback.ingest.models import Event
from cartback.ingest.repository import CART_UPDATE, CARTS, CONTACTS, EVENTS, TIMELINE, Insert


def _table(model: type) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


@pytest.mark.parametrize(
    ("statement", "model"),
    [(EVENTS, Event), (CONTACTS, Contact), (CARTS, Cart), (TIMELINE, TimelineEntry)],
)
def test_an_insert_names_real_columns_and_every_required_one(
    statement: Insert, model: type
) -> None:
    table = _table(model)
    assert statement.table == table.name
    assert set(statement.names) <= set(table.columns.keys())
    # a column the database cannot fill itself (NOT NULL, no server default, not the
    # autoincrement key) must be in the insert: a Python-side default never runs here
    required = {
        column.name
        for column in table.columns
        if not column.nullable
        and column.server_default is None
        and column is not table.autoincrement_column
    }
    assert required <= set(statement.names)


def test_the_cart_update_names_real_columns() -> None:
    assert {name for name, _ in CART_UPDATE} <= set(_table(Cart).columns.keys())
