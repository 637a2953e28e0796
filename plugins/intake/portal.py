"""The customer portal (H3)."""

from __future__ import annotations

from core.views.common import screen_blueprint

bp = screen_blueprint("intake_portal", __name__, url_prefix="/portal", template_folder="templates")
