"""Core's company service: what it contributes through the plugin hooks (registered as ``core+company``).

The "Company" screen with its menu entry (letterhead, working week, logo) and the
company API; both need ``settings.manage`` to change anything.
"""

from __future__ import annotations

from flask import Blueprint, Flask

from core.contrib import MenuItem
from core.hookspecs import hookimpl
from core.labels import N_
from core.models import User


@hookimpl
def ordo_menu_items(user: User) -> list[MenuItem]:
    """The "Company" entry, for users who may change settings."""
    return [MenuItem(N_("Company"), "company.company_page", "settings.manage", order=902)]


@hookimpl
def ordo_register_blueprints(app: Flask) -> list[Blueprint]:
    """The company screen (``/admin/company``) and API (``/api/v1/company``)."""
    from core.company.api import blp
    from core.company.views import bp

    return [bp, blp]
