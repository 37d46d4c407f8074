"""The storefront snippet: ``cartback.js`` (readable source in this package) and the
route that serves it minified (:mod:`cartback.snippet.api`)."""

from cartback.snippet.bundle import Bundle, bundle

__all__ = ["Bundle", "bundle"]
