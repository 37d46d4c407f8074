"""``cartback.js`` as served: minified with rjsmin, gzipped, and named by its hash, once
per process.

rjsmin only drops comments and whitespace (it renames nothing), so what a store's
developer reads in the browser's source view is the readable source, squeezed.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

import rjsmin  # type: ignore[import-untyped]  # a C extension without type information

SOURCE = "cartback.js"


@dataclass(frozen=True)
class Bundle:
    """The minified snippet, its gzip encoding and its ETag (a strong validator)."""

    body: bytes
    gzipped: bytes
    etag: str


def minify(source: str) -> str:
    """Comments and whitespace out; the ``/*! ... */`` header comment stays."""
    minified: str = rjsmin.jsmin(source, keep_bang_comments=True)
    return minified


def source() -> str:
    return resources.files("cartback.snippet").joinpath(SOURCE).read_text(encoding="utf-8")


@functools.cache
def bundle() -> Bundle:
    body = minify(source()).encode()
    digest = hashlib.sha256(body).hexdigest()[:32]
    # mtime=0: the same bytes in every process, so every API process sends the same ETag
    return Bundle(body=body, gzipped=gzip.compress(body, 9, mtime=0), etag=f'"{digest}"')
