"""What the push adapters share: the message, the "gone" error and the default timeout.

Two adapters send an :class:`OutgoingPush`:

- :class:`cartback.channels.webpush.WebPushSender` to a browser's push subscription
  (RFC 8030 / 8291 / 8292),
- :class:`cartback.channels.fcm.FcmSender` to an app's Firebase registration token (FCM HTTP v1).

Errors add one leaf to the channel tree (see :mod:`cartback.channels.base`)::

    ChannelError
    ├── TransientSendError
    │   └── SendOutcomeUnknown
    └── PermanentSendError
        └── PushGone             the subscription / token no longer exists: delete it
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from cartback.channels.base import PermanentSendError

__all__ = ["DEFAULT_PUSH_TIMEOUT", "MAX_TTL_SECONDS", "OutgoingPush", "PushGone"]

# Push services answer in well under a second; a connect that takes more than 5 s means the
# route is broken, so fail it fast and retry (same reasoning as SMS).
DEFAULT_PUSH_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# FCM refuses a TTL over 4 weeks, and web push services cap theirs at about that.
MAX_TTL_SECONDS = 28 * 24 * 3600


@dataclass(frozen=True, slots=True)
class OutgoingPush:
    """One push notification ready to send.

    ``message_id`` is ours. ``url`` is where a tap on the notification goes (the
    recovery link); ``icon_url`` is the notification's image, if any. ``ttl_seconds`` is how
    long the push service keeps the message for an offline device; 0 means "now or never".
    """

    message_id: str
    title: str
    body: str
    url: str
    icon_url: str | None = None
    ttl_seconds: int = 86400

    def __post_init__(self) -> None:
        if not self.message_id:
            raise ValueError("message_id must not be empty")
        if not self.title:
            raise ValueError("title must not be empty")
        if not self.url.startswith(("https://", "http://")):
            raise ValueError("url must be an http(s) URL")
        if self.icon_url is not None and not self.icon_url.startswith(("https://", "http://")):
            raise ValueError("icon_url must be an http(s) URL")
        if isinstance(self.ttl_seconds, bool) or not 0 <= self.ttl_seconds <= MAX_TTL_SECONDS:
            raise ValueError(f"ttl_seconds must be 0-{MAX_TTL_SECONDS}")


class PushGone(PermanentSendError):
    """This subscription / registration token no longer exists: delete it, do not send again."""
