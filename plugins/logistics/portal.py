"""The customer's delivery screens (blueprint ``logistics_portal`` at ``/portal/deliveries``).

Customers (portal users: users with ``customer_id``) follow their shipments' tracking
and confirm receipt or object here (LG-4, LG-7); the routes are in
:mod:`plugins.logistics.portal_views`. The blueprint's name ends in ``_portal``, so
intake's portal gate lets portal users open it; staff get 403. The pages work with
intake disabled too (core's layout, core's order page links here through the panel).
"""

from __future__ import annotations

from flask_login import current_user
from werkzeug.exceptions import Forbidden

from core.contrib import MenuItem
from core.labels import N_
from core.views.common import screen_blueprint

bp = screen_blueprint("logistics_portal", __name__, url_prefix="/portal/deliveries", template_folder="templates")


@bp.before_request
def _customers_only() -> None:
    """Staff never use the customer's delivery screens: 403 (visitors are sent to log in by each view)."""
    if current_user.is_authenticated and getattr(current_user, "customer_id", None) is None:
        raise Forbidden()


#: The customer's menu entries (core's menu, or intake's portal navigation when enabled).
MENU = (
    MenuItem(N_("Deliveries"), "logistics_portal.deliveries", "orders.read", order=4, icon="truck", plugin="logistics"),
    MenuItem(
        N_("Returns"),
        "logistics_portal.returns",
        "logistics.returns.request",
        order=5,
        icon="arrow-return-left",
        plugin="logistics",
    ),
)
