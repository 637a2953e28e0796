"""Ageing of goods ready but unshipped (LG-10): the daily escalation job and the ageing list.

Why: goods that wait in the warehouse tie up stock and usually mean a customer who
does not take delivery or an order nobody follows. The seed's rule (002 销售订单管理 8):
one week unshipped → tell sales; two weeks → abnormal stock, the sales manager; one
month → the general manager. Here the thresholds are WORKING days (settings
``logistics.ageing.sales_days`` 5, ``…abnormal_days`` 10, ``…general_manager_days`` 22),
counted in the company calendar from the day the goods became ready
(:attr:`LogisticsOrder.ready_at`, set when the outbound check released the order, or at
confirmation when the check is disabled).

The job ``logistics.ageing`` (daily 08:30) looks at every confirmed order whose goods
are ready and not fully shipped (:func:`plugins.logistics.progress.fully_shipped`):

- level 1 (≥ sales days): the order's salesperson (its owner) is told;
- level 2 (≥ abnormal days): abnormal stock, the role ``sales_manager`` is told;
- level 3 (≥ general-manager days): the role ``general_manager`` is told.

Each level is told once (``ageing_level`` on the order's facts, and a dedupe key on the
notice); levels never go back. An order found past several thresholds at once (the job
did not run, or the settings were lowered) gets only the highest notice, and that level
is recorded. :func:`ageing_list` feeds the "Unshipped goods" screen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core.calendar import working_days_between
from core.clock import COMPANY_TIMEZONE, company_now
from core.contrib import Job, NotificationTemplate
from core.labels import N_
from core.models import Order, User
from core.notify import notify
from core.notify.recipients import Recipient, ToRole, ToUser
from core.services.orders import visible_orders
from core.settings import get_setting
from plugins.logistics import flow
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import LogisticsOrder
from plugins.logistics.progress import fully_shipped

#: Escalation levels: 0 nothing yet, then who has been told.
LEVELS = {
    0: N_("Waiting"),
    1: N_("Sales told"),
    2: N_("Abnormal stock"),
    3: N_("General manager told"),
}
#: The role told at levels 2 and 3 (level 1 tells the order's salesperson).
LEVEL_ROLES = {2: "sales_manager", 3: "general_manager"}

_BODY_FACTS_ZH = (
    "订单 {{ order.number }}（{{ order.customer.name }}）的货物已于 {{ ready }} 备妥，至今 {{ days }} 个工作日未发货。"
)
_BODY_FACTS_EN = (
    "The goods of order {{ order.number }} ({{ order.customer.name }}) have been ready since {{ ready }} "
    "and have not shipped for {{ days }} working days."
)

AGEING_SALES = NotificationTemplate(
    "logistics.ageing_sales",
    label=N_("Goods ready but unshipped (to the salesperson)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 货物备妥 {{ days }} 个工作日未发货",
        "en": "Order {{ order.number }}: goods ready but unshipped for {{ days }} working days",
    },
    body={
        "zh_CN": _BODY_FACTS_ZH + "请与客户联系安排发货。\n",
        "en": _BODY_FACTS_EN + " Please agree a shipping date with the customer.\n",
    },
    plugin="logistics",
)
AGEING_ABNORMAL = NotificationTemplate(
    "logistics.ageing_abnormal",
    label=N_("Abnormal stock: goods unshipped too long (to the sales manager)"),
    subject={
        "zh_CN": "【异常库存】订单 {{ order.number }} 货物备妥 {{ days }} 个工作日未发货",
        "en": "[Abnormal stock] Order {{ order.number }}: unshipped for {{ days }} working days",
    },
    body={
        "zh_CN": _BODY_FACTS_ZH + "已列为异常库存，请督促处理。\n",
        "en": _BODY_FACTS_EN + " The stock is now abnormal; please follow it up.\n",
    },
    plugin="logistics",
)
AGEING_GENERAL_MANAGER = NotificationTemplate(
    "logistics.ageing_general_manager",
    label=N_("Goods unshipped for a month (to the general manager)"),
    subject={
        "zh_CN": "【呈报总经理】订单 {{ order.number }} 货物备妥 {{ days }} 个工作日未发货",
        "en": "[For the general manager] Order {{ order.number }}: unshipped for {{ days }} working days",
    },
    body={
        "zh_CN": _BODY_FACTS_ZH + "异常库存已超过一个月，请决定处理办法。\n",
        "en": _BODY_FACTS_EN + " The stock has been abnormal for about a month; please decide what to do.\n",
    },
    plugin="logistics",
)

#: The notice of each level.
LEVEL_TEMPLATES = {1: AGEING_SALES, 2: AGEING_ABNORMAL, 3: AGEING_GENERAL_MANAGER}

#: Notification templates of this module (collected by the plugin manifest).
NOTIFICATIONS: tuple[NotificationTemplate, ...] = (AGEING_SALES, AGEING_ABNORMAL, AGEING_GENERAL_MANAGER)


@dataclass(frozen=True)
class Thresholds:
    """The working days after which each level is reached (from the settings)."""

    sales: int
    abnormal: int
    general_manager: int

    def level(self, days: int) -> int:
        """The highest level ``days`` working days reach (0: none)."""
        if days >= self.general_manager:
            return 3
        if days >= self.abnormal:
            return 2
        if days >= self.sales:
            return 1
        return 0


@dataclass(frozen=True)
class AgeingRow:
    """One order with ready, unshipped goods: how long it waits and how far it has escalated."""

    order: Order
    facts: LogisticsOrder
    ready_on: dt.date
    days: int
    #: The level the waiting time reaches now.
    level: int
    #: The level already notified (``ageing_level``).
    notified: int


def thresholds(session: Session) -> Thresholds:
    """The ageing thresholds in working days, from the settings."""
    return Thresholds(
        int(get_setting(session, flow.AGEING_SALES_DAYS)),
        int(get_setting(session, flow.AGEING_ABNORMAL_DAYS)),
        int(get_setting(session, flow.AGEING_GM_DAYS)),
    )


def _company_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(COMPANY_TIMEZONE).date()


def _rows(session: Session, stmt: Select[Any], today: dt.date) -> list[AgeingRow]:
    limits = thresholds(session)
    found: list[AgeingRow] = []
    for order, facts in session.execute(stmt).tuples():
        if facts.ready_at is None or fully_shipped(session, order):
            continue
        ready_on = _company_date(facts.ready_at)
        days = max(0, working_days_between(session, ready_on, today, order.company_id))
        found.append(AgeingRow(order, facts, ready_on, days, limits.level(days), facts.ageing_level))
    return found


def _waiting(base: Select[Any]) -> Select[Any]:
    """``base`` (a SELECT of orders) joined to their facts: confirmed, goods ready."""
    return (
        base.add_columns(LogisticsOrder)
        .join(LogisticsOrder, LogisticsOrder.order_id == Order.id)
        .where(Order.status == "confirmed", LogisticsOrder.ready_at.is_not(None))
        .order_by(LogisticsOrder.ready_at, Order.id)
    )


def ageing_list(session: Session, actor: User, *, today: dt.date | None = None) -> list[AgeingRow]:
    """Orders in ``actor``'s data scope whose goods are ready and not fully shipped, oldest first.

    Needs ``logistics.reports.read`` (403 otherwise).
    """
    if not actor.can(flow.REPORTS_READ):
        raise LogisticsError(
            "forbidden", N_("You need the permission %(permission)s."), 403, permission=flow.REPORTS_READ
        )
    return _rows(session, _waiting(visible_orders(actor)), today or company_now().date())


def _recipients(order: Order, level: int) -> list[Recipient]:
    if level == 1:
        if order.owner_id is not None:
            return [ToUser(order.owner_id)]
        if order.customer is not None and order.customer.owner_id is not None:
            return [ToUser(order.customer.owner_id)]
        return [ToRole("sales")]
    return [ToRole(LEVEL_ROLES[level])]


def escalate(session: Session, now: dt.datetime) -> int:
    """Tell whoever each waiting order's level now calls for, once per level; the number of notices.

    The job ``logistics.ageing``. Only the highest level reached is told; the level is
    recorded so that it is never told again and never goes back.
    """
    today = _company_date(now)
    told = 0
    for row in _rows(session, _waiting(select(Order)), today):
        if row.level <= row.notified:
            continue
        template = LEVEL_TEMPLATES[row.level]
        notify(
            session,
            template.name,
            to=_recipients(row.order, row.level),
            order=row.order,
            context={"days": row.days, "ready": row.ready_on.isoformat(), "level": row.level},
            dedupe_key=f"logistics.ageing:{row.order.id}:{row.level}",
        )
        row.facts.ageing_level = row.level
        told += 1
    session.flush()
    return told


JOBS: tuple[Job, ...] = (
    Job(
        "logistics.ageing",
        "daily:08:30",
        escalate,
        plugin="logistics",
        label=N_("Tell sales, the sales manager and the general manager about goods ready but unshipped"),
    ),
)
