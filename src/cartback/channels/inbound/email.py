"""One shape for every email provider's events (integrations.md section 5, ESP webhooks).

Each provider's parser (``ses``, ``sendgrid``, ``mailgun``, ``postmark``) turns its
payload into :class:`EmailEvent` s, one per recipient. What a kind means:

==============  ============================================================
hard_bounce     permanent: the address does not exist or refuses us for good
soft_bounce     temporary: mailbox full, greylisted, blocked for now
complaint       the recipient marked the message as spam
unsubscribed    the recipient unsubscribed through the provider
delivered       the receiving server accepted the message
deferred        the provider will try again
dropped         the provider did not send it (its own suppression list, ...)
opened/clicked  engagement the provider tracked
other           anything else the provider reports
==============  ============================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

__all__ = ["EmailEvent", "EmailEventKind"]


class EmailEventKind(enum.StrEnum):
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBED = "unsubscribed"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    DROPPED = "dropped"
    OPENED = "opened"
    CLICKED = "clicked"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class EmailEvent:
    """One provider event about one recipient.

    ``provider_message_id`` is the provider's id for the message (SES ``mail.messageId``,
    SendGrid's ``sg_message_id`` up to ``.filter``, Mailgun's and Postmark's message id);
    ``message_id_header`` is the RFC 5322 ``Message-ID`` when the event carries it, which
    is what matches a message sent over the provider's SMTP relay. ``detail`` is the
    provider's own words (bounce type, diagnostic, feedback type).
    """

    provider: str
    kind: EmailEventKind
    address: str
    provider_message_id: str | None
    occurred_at: datetime | None
    detail: str | None = None
    message_id_header: str | None = None
