"""Dunning ladder, pauses (BL-4)."""

from __future__ import annotations

NOTIFICATIONS: tuple = ()
JOBS: tuple = ()
