"""Intake screens: pre-check rule settings, product ordering rules and purchase limits (H1)."""

from __future__ import annotations

from core.contrib import MenuItem
from core.views.common import screen_blueprint
from plugins.intake.views import bp as screens

bp = screen_blueprint("intake_rules", __name__, url_prefix="/rules", template_folder="templates")
screens.register_blueprint(bp)

#: Menu entries of these screens (collected by the plugin's ordo_menu_items).
MENU: list[MenuItem] = []
