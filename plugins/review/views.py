"""Review's screens blueprint (``/review``); the screen modules nest their blueprints in it.

Each screen module (tasks, sheet, consolidation, approvals, changes, settings) registers
its own blueprint under :data:`bp` when imported and lists its menu entries in ``MENU``.
"""

from __future__ import annotations

from core.views.common import screen_blueprint

bp = screen_blueprint("review", __name__, url_prefix="/review", template_folder="templates")
