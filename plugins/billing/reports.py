"""Receivables ageing, balances, collections."""

from __future__ import annotations
