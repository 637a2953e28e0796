"""Review's printable documents: review sheet, quotation, change request form (helper "quotation")."""

from __future__ import annotations

from core.contrib import DocumentType

DOCUMENTS: tuple[DocumentType, ...] = ()
