"""The customer portal (客户门户, DOMAIN.md IN-8): where a customer's own users order and follow orders.

A portal user is a core :class:`~core.models.User` with ``customer_id`` set. This module
owns what makes the portal a place of its own:

- the blueprint ``intake_portal`` at ``/portal`` (screens in :mod:`plugins.intake.portal_views`
  and :mod:`plugins.intake.portal_orders`);
- the gate: a logged-in portal user asking for any staff screen is sent to the portal
  (only the endpoints in :data:`ALLOWED_ENDPOINTS`, the portal's own, other plugins'
  portal blueprints (named ``*_portal``) and the API stay open to it), and staff asking
  for the portal get 403;
- the portal navigation, also shown instead of the staff menu on the core pages a portal
  user may open (notifications, error pages);
- ordering accounts (CORE-3 "one ordering account per customer"): only the first
  ``intake.portal.ordering_accounts`` active portal users of a customer may place orders;
  the others are view-only.
"""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers import Response

from core.contrib import MenuItem, Setting
from core.labels import N_
from core.models import User
from core.settings import get_setting
from core.views.common import screen_blueprint

bp = screen_blueprint("intake_portal", __name__, url_prefix="/portal", template_folder="templates")

#: The setting limiting how many portal users of one customer may place orders.
ORDERING_ACCOUNTS = "intake.portal.ordering_accounts"

SETTINGS = (
    Setting(
        ORDERING_ACCOUNTS,
        int,
        1,
        N_("Portal: ordering accounts per customer"),
        N_(
            "How many portal users of one customer may place orders: the first ones created that are "
            "active. The customer's other portal users can browse the catalogue and follow orders only."
        ),
        minimum=1,
        maximum=50,
    ),
)

#: Core endpoints a portal user may open besides the portal's own: logging in and out,
#: the language, static files, its notifications, and the downloads core allows it for
#: its own orders (core checks the order's scope and the permission again).
ALLOWED_ENDPOINTS = frozenset(
    {
        "auth.login",
        "auth.logout",
        "auth.set_language",
        "static",
        "notifications.list_notifications",
        "notifications.read_notification",
        "notifications.read_all_notifications",
        "documents.order_document",
        "documents.issued_document",
        "attachments.download_attachment",
    }
)
#: Paths with their own authentication and scope rules (the API).
OPEN_PREFIXES = ("/api/",)


def is_portal_user(user: Any) -> bool:
    """Whether ``user`` is a logged-in customer's portal user (a user with ``customer_id``)."""
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "customer_id", None) is not None)


def portal_may_open(endpoint: str | None, path: str) -> bool:
    """Whether a portal user may open ``endpoint`` (at ``path``) rather than being sent to the portal."""
    if endpoint is None:  # no route: the 404 page
        return True
    if endpoint.startswith(f"{bp.name}.") or endpoint in ALLOWED_ENDPOINTS or endpoint.endswith(".static"):
        return True
    if endpoint.split(".", 1)[0].endswith("_portal"):  # another plugin's portal screens
        return True
    return path.startswith(OPEN_PREFIXES)


@bp.before_app_request
def _keep_portal_users_in_the_portal() -> Response | None:
    """Send a portal user asking for a staff screen to the portal (its order page for an order)."""
    if not is_portal_user(current_user) or portal_may_open(request.endpoint, request.path):
        return None
    args = request.view_args or {}
    if request.endpoint == "orders.view_order" and "order_id" in args:
        return redirect(url_for(f"{bp.name}.order_detail", order_id=args["order_id"]))
    return redirect(url_for(f"{bp.name}.catalogue"))


@bp.before_request
def _portal_users_only() -> None:
    """Staff never use the portal: 403 (anonymous visitors are sent to log in by each view)."""
    if current_user.is_authenticated and not is_portal_user(current_user):
        raise Forbidden()


# --- ordering accounts ---------------------------------------------------------------------


def ordering_accounts(session: Session) -> int:
    """How many portal users per customer may place orders (setting, 1 by default)."""
    return int(get_setting(session, ORDERING_ACCOUNTS))


def ordering_account_ids(session: Session, customer_id: int) -> list[int]:
    """The ids of the customer's portal users who may place orders: the first N active ones by id."""
    stmt = (
        select(User.id)
        .where(User.customer_id == customer_id, User.active.is_(True))
        .order_by(User.id)
        .limit(ordering_accounts(session))
    )
    return list(session.scalars(stmt))


def may_order(session: Session, user: User) -> bool:
    """Whether portal user ``user`` may place orders: an ordering account holding the permissions."""
    if user.customer_id is None or not (user.can("orders.create") and user.can("orders.submit")):
        return False
    return user.id in ordering_account_ids(session, user.customer_id)


# --- navigation ------------------------------------------------------------------------------


def other_portal_items(user: Any) -> list[MenuItem]:
    """Other plugins' portal screens in the user's menu (endpoints of ``*_portal`` blueprints)."""
    from core.views.menu import menu_for

    return [
        item
        for item in menu_for(user)
        if item.endpoint.split(".", 1)[0].endswith("_portal") and not item.endpoint.startswith(f"{bp.name}.")
    ]


def portal_menu(cart_count: int, user: Any = None) -> list[MenuItem]:
    """The portal's navigation as menu items (what core's layout shows a portal user).

    Intake's own screens first, then other plugins' portal screens (logistics' deliveries).
    """
    cart = _("Cart") + (f" ({cart_count})" if cart_count else "")
    return [
        MenuItem(_("Catalogue"), f"{bp.name}.catalogue", order=1, icon="grid", plugin="intake"),
        MenuItem(cart, f"{bp.name}.cart", order=2, icon="cart3", plugin="intake"),
        MenuItem(_("My orders"), f"{bp.name}.orders", order=3, icon="receipt", plugin="intake"),
        *(other_portal_items(user) if user is not None else ()),
    ]


@bp.context_processor
def _portal_layout() -> dict[str, Any]:
    # What the portal's layout shows on every portal page: the customer, the cart's
    # count and whether this account may order (else the view-only notice).
    from core.models import Customer
    from core.web import db
    from plugins.intake.portal_cart import cart_count
    from plugins.intake.portal_checkout import view_only_message

    if not is_portal_user(current_user):
        return {"portal_cart_count": 0, "portal_ordering": True, "portal_customer": None, "portal_more_menu": []}
    session = db()
    user = current_user._get_current_object()
    return {
        "portal_more_menu": other_portal_items(user),
        "portal_cart_count": cart_count(),
        "portal_ordering": may_order(session, user) if session.is_active else True,
        "portal_view_only_message": view_only_message(),
        "portal_customer": session.get(Customer, user.customer_id) if session.is_active else None,
    }


@bp.app_context_processor
def _portal_menu_on_core_pages() -> dict[str, Any]:
    # Registered after core's layout processor, so for a portal user this menu replaces
    # the staff menu on the core pages it may open (notifications, error pages).
    if not is_portal_user(current_user):
        return {}
    from plugins.intake.portal_cart import cart_count

    return {"menu": portal_menu(cart_count(), current_user._get_current_object())}


# The screens register themselves on ``bp``.
from plugins.intake import portal_orders, portal_views  # noqa: E402,F401
