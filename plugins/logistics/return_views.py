"""Screens: (to be built in this issue). Routes are added to :data:`plugins.logistics.views.bp`."""

from __future__ import annotations

from core.contrib import MenuItem

MENU: tuple[MenuItem, ...] = ()
