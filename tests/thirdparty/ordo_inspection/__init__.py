"""Inspection: pre-shipment inspection (验货) of an order's goods before fulfilment.

An inspector records a report for each inspection; an order leaves the inspection step
only once its latest report passed. A third-party plugin and the worked example of
``docs/plugins.md``: everything it brings, it brings through the hooks below.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, render_template, request
from markupsafe import Markup
from sqlalchemy.orm import Session

from core import hookimpl
from core.contrib import (
    Action,
    DocumentType,
    Job,
    MenuItem,
    MigrationBranch,
    NotificationTemplate,
    Panel,
    Permission,
    Setting,
    Step,
    Transition,
)
from core.models import Order, User

#: The plugin's name: its entry point, migration branch label and table prefix.
name = "inspection"
#: The plugin's version.
version = "1.0.0"
#: Plugins that must be enabled for this one to work (none: it builds on core alone).
requires: tuple[str, ...] = ()
#: Bridge modules registered only when another plugin is enabled too (none yet).
extras: dict[str, str] = {}

#: The workflow step an order waits in until its goods pass inspection.
STEP = "inspection.inspect"
#: The action that moves a passed order on.
PASS_ACTION = "pass_inspection"
#: Setting: let urgent orders (CORE-9) pass inspection without a report.
URGENT_WITHOUT_REPORT = "inspection.urgent_without_report"
#: Setting: how many working days an order may wait for inspection before the warehouse is reminded.
REMIND_AFTER_DAYS = "inspection.remind_after_days"

PERMISSIONS = (
    Permission(
        "inspection.report.create",
        "Record inspection reports and pass orders through inspection",
        ("warehouse", "general_manager"),
    ),
    Permission(
        "inspection.report.read",
        "See inspection reports",
        ("warehouse", "general_manager", "sales_manager", "sales", "auditor"),
    ),
)

SETTINGS = (
    Setting(
        URGENT_WITHOUT_REPORT,
        bool,
        False,
        "Urgent orders may skip inspection",
        help="When on, an urgent order may pass inspection without a report (it is inspected on delivery instead).",
    ),
    Setting(
        REMIND_AFTER_DAYS,
        int,
        2,
        "Remind the warehouse after (working days)",
        help="An order waiting this many working days for inspection is reminded to the warehouse each morning.",
    ),
)

NOTIFICATIONS = (
    NotificationTemplate(
        "inspection.failed",
        subject={
            "zh_CN": "订单 {{ order.number }} 验货未通过",
            "en": "Order {{ order.number }} failed inspection",
        },
        body={
            "zh_CN": "{{ recipient }}，您好：\n\n订单 {{ order.number }} 验货未通过：{{ note }}\n"
            "请处理后重新安排验货。",
            "en": "Dear {{ recipient }},\n\nOrder {{ order.number }} failed inspection: {{ note }}\n"
            "Please have it put right and inspected again.",
        },
        label="Inspection failed",
    ),
    NotificationTemplate(
        "inspection.waiting",
        subject={
            "zh_CN": "订单 {{ order.number }} 已等待验货 {{ days }} 个工作日",
            "en": "Order {{ order.number }} has waited {{ days }} working days for inspection",
        },
        body={
            "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}）自 {{ since }} 起等待验货，请尽快安排。",
            "en": "Order {{ order.number }} ({{ order.customer.name }}) has waited for inspection since {{ since }}.",
        },
        label="Order waiting for inspection",
    ),
)


@hookimpl
def ordo_register_models() -> list[str]:
    return ["ordo_inspection.models"]


@hookimpl
def ordo_register_migrations() -> list[MigrationBranch]:
    return [MigrationBranch(name, Path(__file__).parent / "migrations" / "versions")]


@hookimpl
def ordo_register_permissions() -> list[Permission]:
    return list(PERMISSIONS)


@hookimpl
def ordo_register_settings() -> list[Setting]:
    return list(SETTINGS)


@hookimpl
def ordo_register_notifications() -> list[NotificationTemplate]:
    return list(NOTIFICATIONS)


@hookimpl
def ordo_register_jobs() -> list[Job]:
    return [
        Job(
            "inspection.remind_waiting",
            "daily:08:30",
            remind_waiting,
            label="Remind the warehouse of orders waiting for inspection",
        )
    ]


def remind_waiting(session: Session, now: Any) -> None:
    """The daily job: remind the warehouse of orders that wait too long for inspection."""
    from ordo_inspection.services import remind_waiting as remind

    remind(session, now)


@hookimpl
def ordo_register_steps() -> list[Step]:
    return [
        Step(
            STEP,
            "Inspection 验货",
            300,
            (
                Action(
                    PASS_ACTION,
                    "Pass inspection",
                    permission="inspection.report.create",
                    style="success",
                ),
            ),
            help="The goods are inspected before the order is fulfilled; a passing report lets it go on.",
        )
    ]


@hookimpl
def ordo_register_blueprints(app: Flask) -> list[Blueprint]:
    from ordo_inspection.views import bp

    return [bp]


@hookimpl
def ordo_register_documents() -> list[DocumentType]:
    return [
        DocumentType(
            "inspection.certificate",
            "Inspection certificate 验货报告",
            "inspection/certificate.html",
            "inspection.report.read",
            context=certificate_context,
        )
    ]


def certificate_context(session: Session, order: Order) -> Mapping[str, Any]:
    """The certificate's variables: every report on ``order``, newest first."""
    from ordo_inspection.services import reports_of

    return {"reports": reports_of(session, order)}


@hookimpl
def ordo_menu_items(user: User) -> list[MenuItem]:
    return [MenuItem("Inspections", "inspection.list_reports", "inspection.report.read", order=60)]


@hookimpl
def ordo_order_panels(order: Order, user: User, session: Session) -> list[Panel]:
    if not user.can("inspection.report.read"):
        return []
    from ordo_inspection.services import reports_of

    # The template escapes what it shows, so its output is trusted as Markup; a plain
    # str would be escaped on the order page.
    html = Markup(
        render_template(
            "inspection/panel.html",
            order=order,
            reports=reports_of(session, order),
            can_record=order.step == STEP and user.can("inspection.report.create"),
            back=request.path,
        )
    )
    return [Panel("Inspection 验货", html, order=60)]


@hookimpl
def ordo_order_guard(order: Order, action: str, transition: Transition, session: Session) -> list[str]:
    if action != PASS_ACTION:
        return []
    from ordo_inspection.services import pass_refusals

    return pass_refusals(session, order)
