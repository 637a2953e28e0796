"""Core's attachments service: what it contributes through the plugin hooks (registered as
``core+attachments``): two permissions, the size and type settings, the order-page panel,
and the screens and API that upload, download and remove attachments."""

from __future__ import annotations

from flask import Blueprint, Flask
from sqlalchemy.orm import Session

from core.attachments.service import ALLOWED_TYPES, DEFAULT_ALLOWED_TYPES, DEFAULT_MAX_MB, MAX_MB, SERVER_MAX_MB
from core.contrib import Panel, Permission, Setting
from core.hookspecs import hookimpl
from core.labels import N_
from core.models import Order, User

PERMISSIONS = (
    Permission(
        "attachments.upload",
        N_("Upload attachments to orders"),
        # Portal customers upload their original order to their own orders (IN-6).
        ("admin", "sales_manager", "sales", "order_clerk", "warehouse", "finance", "customer"),
    ),
    Permission("attachments.remove", N_("Remove attachments from orders"), ("admin", "sales_manager")),
)

SETTINGS = (
    Setting(
        MAX_MB,
        int,
        DEFAULT_MAX_MB,
        N_("Attachment size limit (MB)"),
        help=N_("The largest file accepted as an order attachment, in MB. The server accepts at most 32 MB."),
        minimum=1,
        # Flask's MAX_CONTENT_LENGTH (core/app.py) refuses any body above 32 MB first.
        maximum=SERVER_MAX_MB,
    ),
    Setting(
        ALLOWED_TYPES,
        str,
        DEFAULT_ALLOWED_TYPES,
        N_("Accepted attachment types"),
        help=N_(
            "File types accepted as order attachments, separated by commas. Recognised: pdf, png, jpg, gif, tif, "
            "webp, docx, xlsx, pptx, doc, xls, ppt, txt, csv, ofd. Each file is checked by its content."
        ),
    ),
)


@hookimpl
def ordo_register_permissions() -> list[Permission]:
    return list(PERMISSIONS)


@hookimpl
def ordo_register_settings() -> list[Setting]:
    return list(SETTINGS)


@hookimpl
def ordo_register_blueprints(app: Flask) -> list[Blueprint]:
    from core.attachments.api import blp
    from core.attachments.views import bp

    return [bp, blp]


@hookimpl
def ordo_order_panels(order: Order, user: User, session: Session) -> list[Panel]:
    from core.attachments.panel import attachments_panel
    from core.services.orders import may_see_order

    if not may_see_order(session, user, order):
        return []

    return [attachments_panel(session, order, user)]
