"""What a provider callback can be refused for, before anything is looked up or written."""

from __future__ import annotations

__all__ = ["InvalidCallback"]


class InvalidCallback(ValueError):
    """The request is not a well-formed callback of its provider (a 4xx for the caller).

    ``code`` is stable and dotted-free (``malformed_json``, ``missing_field``, ...);
    ``detail`` names the field or the problem for people. A bad *signature* is not an
    InvalidCallback: the verifiers answer ``False`` for it.
    """

    def __init__(self, detail: str, *, code: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
