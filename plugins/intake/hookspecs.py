"""Intake's own hooks: other plugins add pre-check rules and blocks of the portal's order page.

Added to the plugin manager through ``ordo_add_hookspecs`` when intake is enabled.
Implement them with ``@hookimpl(optionalhook=True)`` so the implementing plugin still
loads when intake is disabled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core import hookspec

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.contrib import Panel
    from core.models import Order, User
    from plugins.intake.precheck import PrecheckRule


@hookspec
def ordo_intake_precheck_rules() -> list[PrecheckRule]:  # type: ignore[empty-body]
    """Return pre-check rules to run on every order besides intake's built-in ones.

    Each :class:`plugins.intake.precheck.PrecheckRule` has a code unique across plugins
    and a function ``(session, order, settings) -> list[Finding]``. A rule is skipped
    when a bool setting ``intake.precheck.rule.<code>`` is registered and off.
    """


@hookspec
def ordo_intake_portal_panels(order: Order, user: User, session: Session) -> list[Panel]:  # type: ignore[empty-body]
    """Return blocks for the customer's page of ``order`` in the portal (logistics' tracking).

    ``user`` is the customer's portal user and the order is the customer's own; show
    only what the customer may see. Same rules as core's ``ordo_order_panels`` (a
    ``Markup`` is trusted, a ``str`` escaped). Screens a block links to should live in a
    blueprint whose name ends in ``_portal``: the portal lets its users open those.
    """
