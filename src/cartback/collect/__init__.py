"""The storefront snippet's server side: ``/v1/collect`` (the public key, a CORS allowlist,
rate limits, bot filtering) and what it keeps: visitors, price watches and the one-off
"here is your cart" emails. The wire contract is docs/snippet-protocol.md."""

from cartback.collect.api import router
from cartback.collect.jobs import CollectDeps, register

__all__ = ["CollectDeps", "register", "router"]
