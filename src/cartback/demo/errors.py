"""Why the demo could not run or stopped."""

from __future__ import annotations

from cartback.errors import CartbackError


class DemoError(CartbackError):
    """The demo cannot start (busy port, a file that is not the demo's), or the API
    answered the simulator in a way a store's integration would not expect."""
