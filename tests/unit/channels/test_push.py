from __future__ import annotations

from typing import Any

import pytest

from cartback.channels import OutgoingPush


def _push(**changes: Any) -> OutgoingPush:
    fields: dict[str, Any] = {
        "message_id": "m1",
        "title": "Your cart is waiting",
        "body": "",
        "url": "https://shop.example.com/r/Ab3dE9",
    }
    fields.update(changes)
    return OutgoingPush(**fields)


def test_defaults_keep_a_day_and_have_no_icon() -> None:
    push = _push()

    assert (push.ttl_seconds, push.icon_url) == (86400, None)


@pytest.mark.parametrize("ttl", [0, 2_419_200])
def test_ttl_bounds_are_accepted(ttl: int) -> None:
    assert _push(ttl_seconds=ttl).ttl_seconds == ttl


@pytest.mark.parametrize(
    "changes",
    [
        {"message_id": ""},
        {"title": ""},
        {"url": "javascript:alert(1)"},
        {"url": "/r/Ab3dE9"},
        {"icon_url": "data:image/png;base64,AAAA"},
        {"ttl_seconds": -1},
        {"ttl_seconds": 2_419_201},
        {"ttl_seconds": True},
    ],
)
def test_invalid_pushes_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _push(**changes)
