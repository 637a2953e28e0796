"""Core's calendar service: what it contributes through the plugin hooks (registered as ``core+calendar``).

The ``calendar.manage`` permission, the "Working calendar" screen with its menu entry,
and the calendar API.
"""

from __future__ import annotations

from flask import Blueprint, Flask

from core.contrib import MenuItem, Permission
from core.hookspecs import hookimpl
from core.labels import N_
from core.models import User

PERMISSIONS = (Permission("calendar.manage", N_("Manage the working calendar"), ("admin", "general_manager")),)


@hookimpl
def ordo_register_permissions() -> list[Permission]:
    """``calendar.manage``: keep holidays and make-up working days (administrators, general managers)."""
    return list(PERMISSIONS)


@hookimpl
def ordo_menu_items(user: User) -> list[MenuItem]:
    """The "Working calendar" entry, for users who may manage it."""
    return [MenuItem(N_("Working calendar"), "calendar.calendar_page", "calendar.manage", order=935)]


@hookimpl
def ordo_register_blueprints(app: Flask) -> list[Blueprint]:
    """The calendar screen (``/admin/calendar``) and API (``/api/v1/calendar``)."""
    from core.calendar.api import blp
    from core.calendar.views import bp

    return [bp, blp]
