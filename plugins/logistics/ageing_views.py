"""Screen "Unshipped goods" (``/logistics/ageing``): ready goods waiting to ship, oldest first (LG-10).

Warehouse staff and the sales and general managers (``logistics.reports.read``) see
every order of their data scope whose goods are ready and not fully shipped, with the
working days waited, the ageing level reached (sales told, abnormal stock, general
manager told) and who was told already. The figures come from
:func:`plugins.logistics.ageing.ageing_list`, the same the daily job uses, so the screen
and the notices never disagree. Routes are added to :data:`plugins.logistics.views.bp`.
"""

from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _

from core.contrib import MenuItem
from core.labels import N_
from core.views.common import PAGE_SIZES, Page, current_actor, permission_required
from core.views.orders import order_badges
from core.web import db
from plugins.logistics import ageing, flow
from plugins.logistics.stock import shipped_quantities
from plugins.logistics.views import bp

#: Menu entries of this screen (collected by the plugin's ordo_menu_items).
MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Unshipped goods"),
        "logistics.ageing",
        permission=flow.REPORTS_READ,
        order=58,
        icon="hourglass-split",
        plugin="logistics",
    ),
)

#: The level filter: every waiting order, or those at a level or above.
LEVEL_FILTERS = {
    "1": N_("Sales told or more"),
    "2": N_("Abnormal stock or more"),
    "3": N_("General manager told"),
}
#: Bootstrap colour of each level's badge.
LEVEL_COLOURS = {0: "light", 1: "info", 2: "warning", 3: "danger"}


def _number(name: str, default: int, allowed: tuple[int, ...] | None = None) -> int:
    raw = request.args.get(name, "")
    value = int(raw) if raw.isdigit() and int(raw) > 0 else default
    return value if allowed is None or value in allowed else default


@bp.get("/ageing", endpoint="ageing")
@permission_required(flow.REPORTS_READ)
def ageing_screen() -> str:
    """Orders with ready, unshipped goods: days waited, level reached, filtered by level and paged."""
    session, actor = db(), current_actor()
    level = request.args.get("level", "")
    if level not in LEVEL_FILTERS:
        level = ""
    rows = ageing.ageing_list(session, actor)
    if level:
        rows = [row for row in rows if row.level >= int(level)]
    size = _number("size", PAGE_SIZES[0], PAGE_SIZES)
    pages = max(1, -(-len(rows) // size))
    number = min(_number("page", 1), pages)
    shown = rows[(number - 1) * size : number * size]
    page = Page(shown, len(rows), number, size, "", "logistics.ageing", {"level": level} if level else {})
    shipped = {row.order.id: shipped_quantities(session, row.order.id) for row in shown}
    return render_template(
        "logistics/ageing.html",
        page=page,
        level=level,
        level_filters=LEVEL_FILTERS,
        levels=ageing.LEVELS,
        level_colours=LEVEL_COLOURS,
        limits=ageing.thresholds(session),
        badges=order_badges(session, [row.order for row in shown]),
        shipped=shipped,
        title=_("Unshipped goods"),
    )
