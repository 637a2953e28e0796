"""Opaque list cursors, shared by every keyset-paged list (orders, customers, products).

A cursor names the kind of list and the key of the last row seen, base64-encoded so
clients treat it as a token and a cursor of one list is refused by another.
"""

from __future__ import annotations

import base64
import binascii

from core.services import ServiceError


def encode_cursor(kind: str, value: object) -> str:
    """An opaque cursor pointing after ``value`` in a list of ``kind``."""
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> str:
    """The value a cursor of ``kind`` points after; a 422 naming ``cursor`` if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raw = ""
    found, sep, value = raw.partition(":")
    if found != kind or not sep or not value:
        raise ServiceError("invalid", "bad cursor", {"cursor": ["Not a valid cursor."]})
    return value
