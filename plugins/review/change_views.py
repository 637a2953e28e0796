"""Review screens: change_views (filled in by its helper).

Imported for its side effect: nests its blueprint in :data:`plugins.review.views.bp`.
"""

from __future__ import annotations

from core.contrib import MenuItem

#: Menu entries of these screens (collected by the plugin's ordo_menu_items).
MENU: list[MenuItem] = []
