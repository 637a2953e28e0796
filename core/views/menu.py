"""The navigation: core's and the plugins' menu items that the user may see."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class MenuGroup:
    """Menu items sharing a ``group`` label, shown as one drop-down menu."""

    label: str
    icon: str = ""
    items: list[MenuItem] = field(default_factory=list)


def menu_entries(items: list[MenuItem]) -> list[MenuItem | MenuGroup]:
    """The navigation bar's entries: ungrouped items as they are, grouped ones gathered.

    A group appears where its first item (in menu order) would, with that item's icon.
    """
    entries: list[MenuItem | MenuGroup] = []
    groups: dict[str, MenuGroup] = {}
    for item in items:
        if not item.group:
            entries.append(item)
            continue
        group = groups.get(item.group)
        if group is None:
            group = groups[item.group] = MenuGroup(item.group, item.icon)
            entries.append(group)
        group.items.append(item)
    return entries
