"""Stub: replaced by its helper."""

from __future__ import annotations

from core.contrib import MenuItem

MENU: tuple[MenuItem, ...] = ()
