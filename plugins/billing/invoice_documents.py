"""The invoice PDF."""

from __future__ import annotations

DOCUMENTS: tuple = ()
