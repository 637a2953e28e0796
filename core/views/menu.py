"""The navigation: core's and the plugins' menu items that the user may see."""

from __future__ import annotations

from flask import current_app

from core.contrib import MenuItem
from core.models import User


def menu_for(user: User | None) -> list[MenuItem]:
    """Menu items for ``user``, permission-filtered and sorted; none when logged out."""
    if user is None:
        return []
    registry = current_app.extensions["ordo"].registry
    items: list[MenuItem] = []
    for group in registry.hook.ordo_menu_items(user=user):
        items.extend(group or ())
    visible = [i for i in items if i.permission is None or user.can(i.permission)]
    return sorted(visible, key=lambda i: (i.order, i.label))
