"""Logistics' printable documents (to be built in this issue)."""

from __future__ import annotations

from core.contrib import DocumentType

DOCUMENTS: tuple[DocumentType, ...] = ()
