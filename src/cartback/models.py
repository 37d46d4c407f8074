"""Every table, registered on ``Base.metadata``: for migrations, tests and the app."""

from cartback.callbacks.models import CallbackReceipt
from cartback.carts.models import Cart, Order, TimelineEntry
from cartback.collect.models import CartEmail, PriceWatch, Visitor, VisitorCart
from cartback.contacts.models import Consent, Contact, PushSubscription, Suppression
from cartback.core.db import Base
from cartback.flows.models import Enrollment, Flow
from cartback.ingest.models import Event
from cartback.messages.models import Message
from cartback.queue.models import Job
from cartback.stores.models import ApiKey, InstanceSetting, Store

metadata = Base.metadata

__all__ = [
    "ApiKey",
    "Base",
    "CallbackReceipt",
    "Cart",
    "CartEmail",
    "Consent",
    "Contact",
    "Enrollment",
    "Event",
    "Flow",
    "InstanceSetting",
    "Job",
    "Message",
    "Order",
    "PriceWatch",
    "PushSubscription",
    "Store",
    "Suppression",
    "TimelineEntry",
    "Visitor",
    "VisitorCart",
    "metadata",
]
