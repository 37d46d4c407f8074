"""Provider callbacks in: verify each provider's signature and read its payload.

Pure: no database, no domain models, no settings. Each module checks one provider's proof
(a signature, a shared secret, basic auth) over the exact bytes received and turns the
payload into small dataclasses; ``cartback.callbacks`` decides what they change.

================  =====================================  ===============================
module            proof                                  payload
================  =====================================  ===============================
``twilio``        X-Twilio-Signature (HMAC-SHA1, URL +   status callbacks, inbound SMS
                  sorted form params)                    keywords, TwiML replies
``whatsapp``      X-Hub-Signature-256 (HMAC-SHA256);     ``statuses[]``
                  GET hub.verify_token handshake
``telegram``      X-Telegram-Bot-Api-Secret-Token        ``/start <payload>``, buttons
``ses``           SNS RSA signature (SHA1 / SHA256),     SES Bounce / Complaint /
                  certificate from sns.<region>          Delivery records
``sendgrid``      ECDSA P-256 over timestamp + body      event batches
``mailgun``       HMAC-SHA256 over timestamp + token,    one event
                  5-minute freshness
``postmark``      HTTP basic auth                        one event
================  =====================================  ===============================

Email events of every provider come out as one :class:`EmailEvent`.
"""

from cartback.channels.inbound import mailgun, postmark, sendgrid, ses, telegram, twilio, whatsapp
from cartback.channels.inbound.email import EmailEvent, EmailEventKind
from cartback.channels.inbound.errors import InvalidCallback

__all__ = [
    "EmailEvent",
    "EmailEventKind",
    "InvalidCallback",
    "mailgun",
    "postmark",
    "sendgrid",
    "ses",
    "telegram",
    "twilio",
    "whatsapp",
]
