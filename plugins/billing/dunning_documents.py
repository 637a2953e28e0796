"""Dunning letter (催款函) and statement of account (对账单) PDFs."""

from __future__ import annotations

DOCUMENTS: tuple = ()
