"""The callback rules that need no database: which report may move a message, and the
Telegram deep link's token."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartback.callbacks.service import may_move, telegram_contact_id, telegram_link
from cartback.core.ids import new_id
from cartback.core.signing import Signer
from cartback.messages.models import MessageStatus as S

SIGNER = Signer("test-secret-key-0123456789")
PROGRESS = [S.QUEUED, S.SENDING, S.UNKNOWN, S.SENT, S.DELIVERED, S.OPENED, S.CLICKED]
FINAL = [S.FAILED, S.BOUNCED, S.COMPLAINED, S.UNSUBSCRIBED]


@pytest.mark.parametrize(
    ("current", "target", "moves"),
    [
        (S.SENDING, S.SENT, True),
        (S.SENT, S.DELIVERED, True),
        (S.UNKNOWN, S.DELIVERED, True),
        (S.DELIVERED, S.SENT, False),
        (S.DELIVERED, S.DELIVERED, False),
        (S.OPENED, S.DELIVERED, False),
        (S.SENT, S.FAILED, True),
        (S.DELIVERED, S.FAILED, False),
        (S.DELIVERED, S.BOUNCED, True),
        (S.OPENED, S.BOUNCED, False),
        (S.CLICKED, S.COMPLAINED, True),
        (S.SENT, S.UNSUBSCRIBED, True),
    ],
)
def test_which_reports_move_a_message(current: S, target: S, moves: bool) -> None:
    assert may_move(current, target) is moves


@pytest.mark.parametrize("current", FINAL)
@pytest.mark.parametrize("target", [*PROGRESS, *FINAL])
def test_nothing_moves_a_final_message(current: S, target: S) -> None:
    assert may_move(current, target) is False


@given(st.lists(st.sampled_from([S.SENT, S.DELIVERED, S.FAILED, S.BOUNCED, S.COMPLAINED])))
def test_any_order_of_reports_settles_and_a_replay_never_moves_it(reports: list[S]) -> None:
    status: S = S.SENT
    for report in reports:
        if may_move(status, report):
            status = report
        assert not may_move(status, status)  # the same report again changes nothing


def test_a_deep_link_carries_the_contact_in_a_start_parameter() -> None:
    contact_id = new_id()

    url = telegram_link(SIGNER, "acme_bot", contact_id)

    token = url.removeprefix("https://t.me/acme_bot?start=")
    assert len(token) <= 64
    assert token.replace("-", "").replace("_", "").isalnum()
    assert telegram_contact_id(SIGNER, token) == contact_id


def test_a_token_that_was_changed_or_signed_elsewhere_names_no_contact() -> None:
    contact_id = "5f0c2b9e8d7a4c3b9a1e2d3c4b5a6978"
    token = telegram_link(SIGNER, "acme_bot", contact_id).rpartition("=")[2]
    elsewhere = telegram_link(Signer("another-secret-key-98765"), "acme_bot", contact_id)

    assert telegram_contact_id(SIGNER, token) == contact_id
    assert telegram_contact_id(SIGNER, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert telegram_contact_id(SIGNER, "6" + token[1:]) is None
    assert telegram_contact_id(SIGNER, token[:10]) is None
    assert telegram_contact_id(SIGNER, "") is None
    assert telegram_contact_id(SIGNER, elsewhere.rpartition("=")[2]) is None


def test_a_contact_id_too_long_for_telegram_is_refused() -> None:
    with pytest.raises(ValueError):
        telegram_link(SIGNER, "acme_bot", "x" * 41)
