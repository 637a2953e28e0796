"""Core's inbox service: what it contributes through the plugin hooks (registered as ``core+inbox``).

The screens and API of the notification service (the bell's list, the outbox for
administrators) and of settings (whose screen is registered with core's screens):
their blueprints and menu entries. The permissions they check (``outbox.manage``,
``settings.manage``) are registered by ``core.notify.hooks`` and :mod:`core.builtin`.
"""

from __future__ import annotations

from flask import Blueprint, Flask

from core.contrib import MenuItem
from core.hookspecs import hookimpl
from core.labels import N_
from core.models import User


@hookimpl
def ordo_register_blueprints(app: Flask) -> list[Blueprint]:
    """The notification list and outbox screens, and the notification, outbox and settings API."""
    from core.api import settings as settings_api
    from core.notify import api, views

    return [views.bp, views.outbox_bp, api.notifications_blp, api.outbox_blp, settings_api.blp]


@hookimpl
def ordo_menu_items(user: User) -> list[MenuItem]:
    """Settings and Outbox in the administration part of the menu."""
    return [
        MenuItem(N_("Settings"), "settings.edit_settings", "settings.manage", order=905),
        MenuItem(N_("Outbox"), "outbox.list_outbox", "outbox.manage", order=915),
    ]
