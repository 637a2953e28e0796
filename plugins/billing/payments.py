"""Payments and allocation (BL-6, BL-7)."""

from __future__ import annotations

NOTIFICATIONS: tuple = ()
