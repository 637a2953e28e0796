"""Screens (stub)."""

from __future__ import annotations

from plugins.billing.views import bp  # noqa: F401

MENU: tuple = ()
