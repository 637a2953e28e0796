"""Stub: replaced by its helper."""

from __future__ import annotations

NOTIFICATIONS: tuple = ()
JOBS: tuple = ()
METRICS: tuple = ()
