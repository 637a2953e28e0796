"""Returns (退换货, LG-9): request, review, approval, receipt and QC disposition of returned goods.

The company's return procedure (产品退货管理制度) as a small state machine on
:class:`~plugins.logistics.models.LogisticsReturn`::

    requested ──review──▶ reviewed ──decide──▶ approved ──receive──▶ received ──inspect──▶ closed
        └────────── rejected ◀───────────────────┘

- **Request** (``RETURNS_REQUEST``: sales, or the customer's portal user for its own
  order): per delivered order line a quantity, never above what was shipped minus what
  other returns (not rejected) already take back (:func:`returnable_quantities`), and a
  reason code (:data:`~plugins.logistics.models.RETURN_REASONS`). The customer stamps the
  printed request form (退货申请单); the scan is kept as an order attachment
  (:func:`attach_stamped_request`).
- **Review** by the role named in setting ``logistics.returns.review_role`` (the
  regional manager), then **decision** by the role in ``logistics.returns.approve_role``
  (the marketing director), who may approve less than requested. Normally only quality
  problems are accepted (:data:`~plugins.logistics.models.QUALITY_REASONS`); approving a
  line for another reason needs an exception with its reason.
- **Receipt** of the returned goods by the warehouse: never more than approved.
- **Inspection** by QC: per line, dispositions whose quantities add up to exactly what
  was received, each posting its stock move (:func:`inspect_return`). Closing the return
  calls the hook ``ordo_logistics_return_inspected`` (billing's credit note).

Who pays the return freight is recorded (:func:`set_freight_responsibility`). Services
check permissions and the order's data scope, validate everything before the first
change, write audit entries and notifications, and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from core.clock import company_now
from core.contrib import NotificationTemplate
from core.db import utcnow
from core.labels import N_
from core.models import Order, OrderLine, User
from core.notify import Recipient, ToCustomer, ToRole, ToUser, notify
from core.security.scopes import through_order
from core.services import audit
from core.services.numbering import next_serial
from core.services.orders import get_order
from core.settings import get_setting, session_registry
from plugins.logistics import flow, stock
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import (
    DISPOSITIONS,
    FREIGHT_PARTIES,
    QUALITY_REASONS,
    RETURN_REASONS,
    RETURN_STATUSES,
    LogisticsDisposition,
    LogisticsLocation,
    LogisticsObjection,
    LogisticsOrder,
    LogisticsReturn,
    LogisticsReturnLine,
)

#: The numbering code of return requests (``RET2026-000001``).
NUMBER_CODE = "RET"
ZERO = Decimal("0")
#: Statuses in which a return still takes goods back (rejected ones take nothing).
OPEN_STATUSES = ("requested", "reviewed", "approved")
#: Statuses in which nothing more happens to a return.
FINAL_STATUSES = ("rejected", "closed")
#: The stock move each disposition posts, and the blocked area it lands in (``None``: sellable).
DISPOSITION_MOVES = {
    "restock": ("return", None),
    "rework": ("rework", "rework"),
    "downgrade": ("downgrade", "downgrade"),
    "scrap": ("return", "scrap"),
}
#: Kind of the order attachment holding the customer-stamped request form.
STAMPED_KIND = "other"

_LINK_ZH = "{% if link %}\n查看：{{ link }}{% endif %}"
_LINK_EN = "{% if link %}\nOpen: {{ link }}{% endif %}"

RETURN_REQUESTED = NotificationTemplate(
    "logistics.return_requested",
    label=N_("Return requested (to the role that reviews returns)"),
    subject={
        "zh_CN": "退货申请 {{ number }} 待审核（订单 {{ order.number }}）",
        "en": "Return request {{ number }} awaits your review (order {{ order.number }})",
    },
    body={
        "zh_CN": "{{ order.customer.name }} 对订单 {{ order.number }} 提出退货申请 {{ number }}：\n"
        "{% for line in lines %}- {{ line.sku }} {{ line.name }}：{{ line.quantity }}（{{ line.reason_zh }}）\n"
        "{% endfor %}"
        "{% if note %}说明：{{ note }}\n{% endif %}请审核。" + _LINK_ZH,
        "en": "{{ order.customer.name }} asks to return goods of order {{ order.number }} ({{ number }}):\n"
        "{% for line in lines %}- {{ line.sku }} {{ line.name }}: {{ line.quantity }} ({{ line.reason_en }})\n"
        "{% endfor %}"
        "{% if note %}Note: {{ note }}\n{% endif %}Please review it." + _LINK_EN,
    },
    plugin="logistics",
)
RETURN_REVIEWED = NotificationTemplate(
    "logistics.return_reviewed",
    label=N_("Return reviewed, awaiting approval (to the role that approves returns)"),
    subject={
        "zh_CN": "退货申请 {{ number }} 已审核，待审批（订单 {{ order.number }}）",
        "en": "Return request {{ number }} was reviewed and awaits your approval (order {{ order.number }})",
    },
    body={
        "zh_CN": "退货申请 {{ number }}（{{ order.customer.name }}，订单 {{ order.number }}）"
        "已由 {{ reviewer }} 审核通过。"
        "{% if note %}\n审核意见：{{ note }}{% endif %}\n请审批。" + _LINK_ZH,
        "en": "Return request {{ number }} ({{ order.customer.name }}, order {{ order.number }}) was reviewed "
        "by {{ reviewer }}.{% if note %}\nReview note: {{ note }}{% endif %}\nPlease decide on it." + _LINK_EN,
    },
    plugin="logistics",
)
RETURN_DECIDED = NotificationTemplate(
    "logistics.return_decided",
    label=N_("Return approved or rejected (to the requester and the customer)"),
    subject={
        "zh_CN": "退货申请 {{ number }}{% if approved %}已批准{% else %}未获批准{% endif %}（订单 {{ order.number }}）",
        "en": "Return request {{ number }} {% if approved %}approved{% else %}rejected{% endif %} "
        "(order {{ order.number }})",
    },
    body={
        "zh_CN": "订单 {{ order.number }} 的退货申请 {{ number }}{% if approved %}已批准：\n"
        "{% for line in lines %}- {{ line.sku }} {{ line.name }}：批准 {{ line.approved }} / 申请 {{ line.quantity }}\n"
        "{% endfor %}请将货物退回我司仓库，并随货附上盖章的退货申请单。{% else %}未获批准。{% endif %}"
        "{% if note %}\n说明：{{ note }}{% endif %}" + _LINK_ZH,
        "en": "Return request {{ number }} of order {{ order.number }} {% if approved %}was approved:\n"
        "{% for line in lines %}- {{ line.sku }} {{ line.name }}: {{ line.approved }} approved of {{ line.quantity }}\n"
        "{% endfor %}Please send the goods back to our warehouse with the stamped return request form."
        "{% else %}was rejected.{% endif %}{% if note %}\nNote: {{ note }}{% endif %}" + _LINK_EN,
    },
    plugin="logistics",
)
RETURN_CLOSED = NotificationTemplate(
    "logistics.return_closed",
    label=N_("Returned goods received and inspected (to the requester and the customer)"),
    subject={
        "zh_CN": "退货 {{ number }} 已收货并完成质检（订单 {{ order.number }}）",
        "en": "Return {{ number }} received and inspected (order {{ order.number }})",
    },
    body={
        "zh_CN": "订单 {{ order.number }} 的退货 {{ number }} 已收到并完成质检：\n"
        "{% for line in lines %}- {{ line.sku }} {{ line.name }}：收到 {{ line.received }}\n{% endfor %}" + _LINK_ZH,
        "en": "The goods of return {{ number }} (order {{ order.number }}) were received and inspected:\n"
        "{% for line in lines %}- {{ line.sku }} {{ line.name }}: {{ line.received }} received\n{% endfor %}"
        + _LINK_EN,
    },
    plugin="logistics",
)

#: The notification templates of returns (registered by the plugin).
NOTIFICATIONS: tuple[NotificationTemplate, ...] = (RETURN_REQUESTED, RETURN_REVIEWED, RETURN_DECIDED, RETURN_CLOSED)


@dataclass(frozen=True)
class ReturnLineInput:
    """One line of a return request: which order line, how many, why."""

    order_line_id: int
    quantity: Decimal
    reason: str
    detail: str = ""


# --- reading -----------------------------------------------------------------------------


def counted_quantity(line: LogisticsReturnLine) -> Decimal:
    """What a return line takes back: received once received, else approved once set, else requested."""
    if line.received_quantity is not None:
        return stock.q3(line.received_quantity)
    if line.approved_quantity is not None:
        return stock.q3(line.approved_quantity)
    return stock.q3(line.quantity)


def _lines_taking_back(session: Session, order_id: int) -> list[LogisticsReturnLine]:
    return list(
        session.scalars(
            select(LogisticsReturnLine)
            .join(LogisticsReturn, LogisticsReturn.id == LogisticsReturnLine.return_id)
            .where(LogisticsReturn.order_id == order_id, LogisticsReturn.status != "rejected")
        )
    )


def requested_back(session: Session, order_id: int) -> dict[int, Decimal]:
    """Per order line id, what returns of the order (not rejected) take back (:func:`counted_quantity`)."""
    totals: dict[int, Decimal] = {}
    for line in _lines_taking_back(session, order_id):
        totals[line.order_line_id] = totals.get(line.order_line_id, ZERO) + counted_quantity(line)
    return totals


def returned_quantities(session: Session, order_id: int) -> dict[int, Decimal]:
    """Per order line id, the goods actually returned (received on returns that are received or closed)."""
    totals: dict[int, Decimal] = {}
    for line in _lines_taking_back(session, order_id):
        if line.received_quantity is not None:
            totals[line.order_line_id] = totals.get(line.order_line_id, ZERO) + stock.q3(line.received_quantity)
    return totals


def returnable_quantities(session: Session, order: Order) -> dict[int, Decimal]:
    """Per order line id, what may still be returned: shipped minus what returns (not rejected) take back.

    Every line of the order is listed; a line nothing was shipped of (or all of it is
    being returned already) has zero.
    """
    shipped = stock.shipped_quantities(session, order.id)
    taken = requested_back(session, order.id)
    return {
        line.id: max(ZERO, shipped.get(line.id, ZERO) - taken.get(line.id, ZERO))
        for line in sorted(order.lines, key=lambda line: line.position)
    }


def visible_returns(actor: User) -> Select[tuple[LogisticsReturn]]:
    """A SELECT of the returns on orders in ``actor``'s data scope."""
    return through_order(select(LogisticsReturn), LogisticsReturn.order_id, actor)


def returns_of_order(session: Session, order_id: int) -> list[LogisticsReturn]:
    """The returns of an order, newest first (the caller has checked the order's scope)."""
    return list(
        session.scalars(
            select(LogisticsReturn)
            .where(LogisticsReturn.order_id == order_id)
            .options(selectinload(LogisticsReturn.lines))
            .order_by(LogisticsReturn.id.desc())
        )
    )


def get_return(session: Session, actor: User, return_id: int, *, for_update: bool = False) -> LogisticsReturn:
    """The return ``return_id`` if its order lies in ``actor``'s scope; 404 otherwise."""
    request = session.get(LogisticsReturn, return_id) if 0 < return_id < 2**63 else None
    if request is None:
        raise LogisticsError("not_found", N_("Return %(id)s does not exist."), status=404, id=return_id)
    get_order(session, actor, request.order_id, for_update=for_update)  # 404 outside the scope
    if for_update:
        session.refresh(request)
    return request


def review_role(session: Session) -> str:
    """The code of the role that reviews return requests (setting; the regional manager by default)."""
    return str(get_setting(session, flow.RETURNS_REVIEW_ROLE) or "").strip()


def approve_role(session: Session) -> str:
    """The code of the role that approves return requests (setting; the marketing director by default)."""
    return str(get_setting(session, flow.RETURNS_APPROVE_ROLE) or "").strip()


def holds_role(actor: User, code: str) -> bool:
    """Whether ``actor`` holds the role ``code``."""
    return bool(code) and any(role.code == code for role in actor.roles)


def may_request(actor: User) -> bool:
    """Whether ``actor`` may request returns (staff with the permission, or a portal user)."""
    return actor.can(flow.RETURNS_REQUEST)


def may_review(session: Session, actor: User) -> bool:
    """Whether ``actor`` reviews return requests: the permission and the role the settings name."""
    return actor.can(flow.RETURNS_REVIEW) and holds_role(actor, review_role(session))


def may_decide(session: Session, actor: User) -> bool:
    """Whether ``actor`` approves return requests: the permission and the role the settings name."""
    return actor.can(flow.RETURNS_APPROVE) and holds_role(actor, approve_role(session))


def waiting_statuses(session: Session, actor: User) -> list[str]:
    """The statuses of returns waiting for ``actor``: review, decision, receipt, inspection."""
    statuses = []
    if may_review(session, actor):
        statuses.append("requested")
    if may_decide(session, actor):
        statuses.append("reviewed")
    if actor.can(flow.RETURNS_RECEIVE):
        statuses.append("approved")
    if actor.can(flow.RETURNS_INSPECT):
        statuses.append("received")
    return statuses


def return_warehouse_id(session: Session, order_id: int) -> int | None:
    """The warehouse returned goods of an order go back into: the order's, else the default one."""
    facts = session.get(LogisticsOrder, order_id)
    if facts is not None and facts.warehouse_id is not None:
        return facts.warehouse_id
    warehouse = stock.default_warehouse(session)
    return warehouse.id if warehouse is not None else None


def sellable_locations(session: Session, warehouse_id: int) -> list[LogisticsLocation]:
    """The active, not blocked locations of a warehouse in picking order (where restocked goods go)."""
    return list(
        session.scalars(
            select(LogisticsLocation)
            .where(
                LogisticsLocation.warehouse_id == warehouse_id,
                LogisticsLocation.blocked.is_(False),
                LogisticsLocation.active.is_(True),
            )
            .order_by(LogisticsLocation.sequence, LogisticsLocation.code)
        )
    )


# --- checks --------------------------------------------------------------------------------


def _decimal(value: Any, msgid: str, **params: Any) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise LogisticsError("invalid_quantity", msgid, **params) from exc
    if not number.is_finite():
        raise LogisticsError("invalid_quantity", msgid, **params)
    return stock.q3(number) if number.copy_abs() < Decimal("1e12") else number


def _text(value: str | None, limit: int, label: str) -> str:
    text = (value or "").strip()
    if len(text) > limit:
        raise LogisticsError(
            "too_long", N_("%(field)s may be at most %(limit)s characters long."), field=label, limit=limit
        )
    return text


def _require(actor: User, permission: str) -> None:
    if not actor.can(permission):
        raise LogisticsError(
            "forbidden", N_("You lack the permission %(permission)s."), status=403, permission=permission
        )


def _require_status(request: LogisticsReturn, *statuses: str) -> None:
    if request.status not in statuses:
        raise LogisticsError(
            "wrong_status",
            N_("This is not possible while return %(number)s is “%(state)s”."),
            status=409,
            number=request.number,
            state=RETURN_STATUSES.get(request.status, request.status),
        )


def _product_label(line: OrderLine) -> str:
    product = line.product
    return product.sku if product is not None else str(line.product_id)


# --- notifications -------------------------------------------------------------------------


def _link(request: LogisticsReturn, *, portal: bool = False) -> str:
    """The absolute URL of the return's page, when a request is being served ('' otherwise)."""
    from flask import has_request_context, url_for

    if not has_request_context():
        return ""
    endpoint = "logistics_portal.return_detail" if portal else "logistics.return_detail"
    try:
        return url_for(endpoint, return_id=request.id, _external=True)
    except Exception:  # the screens are not registered (a job or a command)
        return ""


def _line_rows(session: Session, request: LogisticsReturn) -> list[dict[str, Any]]:
    from core.documents import translations_for

    chinese = translations_for(session_registry(session), "zh_CN")
    rows = []
    for line in request.lines:
        order_line = session.get(OrderLine, line.order_line_id)
        product = order_line.product if order_line is not None else None
        reason = RETURN_REASONS.get(line.reason, line.reason)
        rows.append(
            {
                "sku": product.sku if product is not None else "",
                "name": product.name if product is not None else "",
                "quantity": format(stock.q3(line.quantity).normalize(), "f"),
                "approved": format(stock.q3(line.approved_quantity).normalize(), "f"),
                "received": format(stock.q3(line.received_quantity).normalize(), "f"),
                "reason_zh": chinese.gettext(reason),
                "reason_en": reason,
            }
        )
    return rows


def _tell(
    session: Session,
    template: str,
    request: LogisticsReturn,
    order: Order,
    to: Sequence[Recipient],
    *,
    portal: bool = False,
    **context: Any,
) -> None:
    if not to:
        return
    notify(
        session,
        template,
        to=list(to),
        order=order,
        context={
            "number": request.number,
            "lines": _line_rows(session, request),
            "link": _link(request, portal=portal),
            **context,
        },
        dedupe_key=f"{template}:{request.id}:{request.status}:{'customer' if portal else 'staff'}",
    )


def _tell_requester_and_customer(
    session: Session, template: str, request: LogisticsReturn, order: Order, **context: Any
) -> None:
    """Tell the staff member who asked (with a link to the return's page) and the customer (with
    a link to the portal's page); a portal user who asked is reached through the customer."""
    if request.requested_by_id is not None:
        requester = session.get(User, request.requested_by_id)
        if requester is not None and requester.customer_id is None:
            _tell(session, template, request, order, [ToUser(requester.id)], **context)
    _tell(session, template, request, order, [ToCustomer(order.customer_id)], portal=True, **context)


# --- the procedure -------------------------------------------------------------------------


def request_return(
    session: Session,
    actor: User,
    order_id: int,
    lines: Sequence[ReturnLineInput],
    *,
    note: str = "",
    exception_reason: str = "",
    objection_id: int | None = None,
) -> LogisticsReturn:
    """Ask to return delivered goods of an order: a request (``RET…``) waiting for review.

    ``actor`` needs ``RETURNS_REQUEST`` (sales, or the customer's portal user — the data
    scope limits them to their own orders). Each line: an order line of this order, a
    quantity above zero and not above :func:`returnable_quantities`, a reason of
    ``RETURN_REASONS``. Refused (422) with nothing changed otherwise. The review role
    is notified.
    """
    _require(actor, flow.RETURNS_REQUEST)
    order = get_order(session, actor, order_id, for_update=True)
    if not lines:
        raise LogisticsError("no_lines", N_("Choose at least one line to return."))
    note = _text(note, 1000, N_("Note"))
    exception_reason = _text(exception_reason, 1000, N_("Exception reason"))
    order_lines = {line.id: line for line in order.lines}
    returnable = returnable_quantities(session, order)
    seen: set[int] = set()
    checked: list[tuple[OrderLine, Decimal, str, str]] = []
    for item in lines:
        order_line = order_lines.get(item.order_line_id)
        if order_line is None:
            raise LogisticsError("unknown_line", N_("Line %(id)s is not a line of this order."), id=item.order_line_id)
        sku = _product_label(order_line)
        if order_line.id in seen:
            raise LogisticsError("duplicate_line", N_("%(sku)s is listed twice; give it once."), sku=sku)
        seen.add(order_line.id)
        quantity = _decimal(item.quantity, N_("The quantity of %(sku)s is not a number."), sku=sku)
        if quantity <= ZERO:
            raise LogisticsError(
                "invalid_quantity", N_("The quantity to return of %(sku)s must be greater than zero."), sku=sku
            )
        most = returnable.get(order_line.id, ZERO)
        if quantity > most:
            raise LogisticsError(
                "above_returnable",
                N_("You can return at most %(max)s of %(sku)s."),
                max=format(most.normalize(), "f") if most else "0",
                sku=sku,
            )
        if item.reason not in RETURN_REASONS:
            raise LogisticsError("invalid_reason", N_("Choose a reason for returning %(sku)s from the list."), sku=sku)
        detail = _text(item.detail, 500, N_("Reason detail"))
        checked.append((order_line, quantity, item.reason, detail))
    if objection_id is not None:
        objection = session.get(LogisticsObjection, objection_id)
        if objection is None or objection.order_id != order.id:
            raise LogisticsError(
                "unknown_objection", N_("Objection %(id)s is not an objection to this order."), id=objection_id
            )
    year = company_now().year
    serial = next_serial(session, order.company_id, NUMBER_CODE, year)
    request = LogisticsReturn(
        number=f"{NUMBER_CODE}{year}-{serial:06d}",
        order_id=order.id,
        status="requested",
        objection_id=objection_id,
        exception_reason=exception_reason,
        note=note,
        requested_by_id=actor.id,
        requested_at=utcnow(),
        lines=[
            LogisticsReturnLine(
                order_line_id=order_line.id,
                product_id=order_line.product_id,
                reason=reason,
                reason_detail=detail,
                quantity=quantity,
            )
            for order_line, quantity, reason, detail in checked
        ],
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        actor,
        "logistics_return",
        request.id,
        "request",
        {
            "number": request.number,
            "lines": {str(order_line.id): f"{quantity} {reason}" for order_line, quantity, reason, _d in checked},
            "objection_id": objection_id,
        },
        reason=note,
        order_id=order.id,
    )
    role = review_role(session)
    if role:
        _tell(session, RETURN_REQUESTED.name, request, order, [ToRole(role)], note=note)
    return request


def review_return(session: Session, actor: User, return_id: int, *, approve: bool, note: str = "") -> LogisticsReturn:
    """The regional manager's review: ``requested`` → ``reviewed`` (or ``rejected``, with a note).

    Only a holder of the role named in setting ``logistics.returns.review_role`` with
    ``RETURNS_REVIEW`` may review (403). Reviewed: the approve role is notified;
    rejected: the requester and the customer are.
    """
    _require(actor, flow.RETURNS_REVIEW)
    role = review_role(session)
    if not holds_role(actor, role):
        raise LogisticsError(
            "wrong_role", N_("Only the role %(role)s reviews return requests."), status=403, role=role or "-"
        )
    request = get_return(session, actor, return_id, for_update=True)
    _require_status(request, "requested")
    note = _text(note, 1000, N_("Note"))
    if not approve and not note:
        raise LogisticsError("reason_required", N_("Say why the return is rejected."))
    order = get_order(session, actor, request.order_id)
    request.status = "reviewed" if approve else "rejected"
    request.reviewed_by_id = actor.id
    request.reviewed_at = utcnow()
    request.review_note = note
    audit.record(
        session,
        actor,
        "logistics_return",
        request.id,
        "review" if approve else "reject",
        {"status": request.status},
        reason=note,
        order_id=order.id,
    )
    session.flush()
    if approve:
        target = approve_role(session)
        if target:
            _tell(session, RETURN_REVIEWED.name, request, order, [ToRole(target)], note=note, reviewer=actor.name)
    else:
        _tell_requester_and_customer(
            session,
            RETURN_DECIDED.name,
            request,
            order,
            approved=False,
            note=note,
        )
    return request


def decide_return(
    session: Session,
    actor: User,
    return_id: int,
    *,
    approve: bool,
    note: str = "",
    approved_quantities: Mapping[int, Decimal] | None = None,
    exception_reason: str = "",
) -> LogisticsReturn:
    """The marketing director's decision: ``reviewed`` → ``approved`` or ``rejected``.

    ``approved_quantities`` maps return line ids to the approved quantity (0 … requested;
    default: all requested). A line approved for a reason outside ``QUALITY_REASONS``
    needs an exception reason (given here or with the request), else 422. Approving
    nothing at all is refused (reject instead). The requester and the customer are told.
    """
    _require(actor, flow.RETURNS_APPROVE)
    role = approve_role(session)
    if not holds_role(actor, role):
        raise LogisticsError(
            "wrong_role", N_("Only the role %(role)s approves return requests."), status=403, role=role or "-"
        )
    request = get_return(session, actor, return_id, for_update=True)
    _require_status(request, "reviewed")
    note = _text(note, 1000, N_("Note"))
    exception_reason = _text(exception_reason, 1000, N_("Exception reason")) or request.exception_reason
    order = get_order(session, actor, request.order_id)
    if not approve:
        if not note:
            raise LogisticsError("reason_required", N_("Say why the return is rejected."))
        request.status = "rejected"
        request.approved_by_id = actor.id
        request.approved_at = utcnow()
        request.decision_note = note
        audit.record(session, actor, "logistics_return", request.id, "reject", {"status": "rejected"}, note, order.id)
        session.flush()
        _tell_requester_and_customer(
            session,
            RETURN_DECIDED.name,
            request,
            order,
            approved=False,
            note=note,
        )
        return request
    lines = {line.id: line for line in request.lines}
    given = dict(approved_quantities or {})
    unknown = [key for key in given if key not in lines]
    if unknown:
        raise LogisticsError("unknown_line", N_("Line %(id)s is not a line of this return."), id=unknown[0])
    decided: dict[int, Decimal] = {}
    for line_id, line in lines.items():
        sku = _sku(session, line)
        value = given.get(line_id, line.quantity)
        quantity = _decimal(value, N_("The quantity of %(sku)s is not a number."), sku=sku)
        if quantity < ZERO:
            raise LogisticsError(
                "invalid_quantity", N_("The approved quantity of %(sku)s cannot be negative."), sku=sku
            )
        if quantity > stock.q3(line.quantity):
            raise LogisticsError(
                "above_requested",
                N_("At most %(max)s of %(sku)s can be approved: that is what was requested."),
                max=format(stock.q3(line.quantity).normalize(), "f"),
                sku=sku,
            )
        if quantity > ZERO and line.reason not in QUALITY_REASONS and not exception_reason:
            raise LogisticsError(
                "exception_required",
                N_(
                    "%(sku)s is returned for a reason other than a quality problem; approving it needs an "
                    "exception with its reason."
                ),
                sku=sku,
            )
        decided[line_id] = quantity
    if not any(quantity > ZERO for quantity in decided.values()):
        raise LogisticsError("nothing_approved", N_("Approve at least one unit, or reject the return."))
    for line_id, quantity in decided.items():
        lines[line_id].approved_quantity = quantity
    request.status = "approved"
    request.approved_by_id = actor.id
    request.approved_at = utcnow()
    request.decision_note = note
    request.exception_reason = exception_reason
    audit.record(
        session,
        actor,
        "logistics_return",
        request.id,
        "approve",
        {"approved": {str(k): str(v) for k, v in decided.items()}, "exception_reason": exception_reason},
        note,
        order.id,
    )
    session.flush()
    _tell_requester_and_customer(
        session,
        RETURN_DECIDED.name,
        request,
        order,
        approved=True,
        note=note,
    )
    return request


def _sku(session: Session, line: LogisticsReturnLine) -> str:
    order_line = session.get(OrderLine, line.order_line_id)
    return _product_label(order_line) if order_line is not None else str(line.product_id)


def _file_parts(file: Any) -> tuple[str, bytes]:
    """``(filename, bytes)`` of an upload: a ``(name, data[, type])`` tuple or a file storage."""
    if isinstance(file, tuple | list):
        return str(file[0] or ""), bytes(file[1])
    return str(getattr(file, "filename", "") or ""), file.read()


def attach_stamped_request(session: Session, actor: User, return_id: int, file: Any) -> LogisticsReturn:
    """Keep the customer-stamped return request form (a scan) as an attachment of the order.

    ``file`` is ``(filename, bytes)`` (a content type may follow) or an uploaded file.
    Anyone taking part in the return may file it (request, review, approve, receive);
    the upload itself follows core's attachment rules (type, size, ``attachments.upload``).
    Not possible once the return is rejected or closed (409).
    """
    from core.attachments.service import add_attachment

    if not any(
        actor.can(code)
        for code in (flow.RETURNS_REQUEST, flow.RETURNS_REVIEW, flow.RETURNS_APPROVE, flow.RETURNS_RECEIVE)
    ):
        raise LogisticsError(
            "forbidden", N_("You lack the permission %(permission)s."), status=403, permission=flow.RETURNS_REQUEST
        )
    request = get_return(session, actor, return_id, for_update=True)
    _require_status(request, "requested", "reviewed", "approved", "received")
    filename, data = _file_parts(file)
    attachment = add_attachment(
        session,
        actor,
        request.order_id,
        filename=filename,
        data=data,
        kind=STAMPED_KIND,
        note=f"Stamped return request {request.number}",
        customer_visible=True,
    )
    previous = request.stamped_attachment_id
    request.stamped_attachment_id = attachment.id
    audit.record(
        session,
        actor,
        "logistics_return",
        request.id,
        "attach_stamped",
        {"stamped_attachment_id": [previous, attachment.id]},
        order_id=request.order_id,
    )
    session.flush()
    return request


def set_freight_responsibility(session: Session, actor: User, return_id: int, party: str) -> LogisticsReturn:
    """Record who pays the return freight: our company, the customer or the carrier (``FREIGHT_PARTIES``).

    The reviewer, the approver or the warehouse may record it while the return is open.
    """
    if not any(actor.can(code) for code in (flow.RETURNS_REVIEW, flow.RETURNS_APPROVE, flow.RETURNS_RECEIVE)):
        raise LogisticsError(
            "forbidden", N_("You lack the permission %(permission)s."), status=403, permission=flow.RETURNS_APPROVE
        )
    if party not in FREIGHT_PARTIES:
        raise LogisticsError("invalid_party", N_("Choose who pays the return freight from the list."))
    request = get_return(session, actor, return_id, for_update=True)
    _require_status(request, "requested", "reviewed", "approved", "received")
    previous = request.freight_paid_by
    request.freight_paid_by = party
    audit.record(
        session,
        actor,
        "logistics_return",
        request.id,
        "freight",
        {"freight_paid_by": [previous, party]},
        order_id=request.order_id,
    )
    session.flush()
    return request


def receive_return(session: Session, actor: User, return_id: int, received: Mapping[int, Decimal]) -> LogisticsReturn:
    """The warehouse receives the returned goods: per return line id the quantity that arrived.

    Only approved returns (409); each quantity from zero to the approved quantity (LG-9:
    the actual quantity may not exceed the approved one, 422); lines not given count as
    nothing received; at least something must have arrived. Status ``received``; the
    goods wait for QC (:func:`inspect_return` posts the stock moves).
    """
    _require(actor, flow.RETURNS_RECEIVE)
    request = get_return(session, actor, return_id, for_update=True)
    _require_status(request, "approved")
    lines = {line.id: line for line in request.lines}
    unknown = [key for key in received if key not in lines]
    if unknown:
        raise LogisticsError("unknown_line", N_("Line %(id)s is not a line of this return."), id=unknown[0])
    counted: dict[int, Decimal] = {}
    for line_id, line in lines.items():
        sku = _sku(session, line)
        quantity = _decimal(received.get(line_id, ZERO), N_("The quantity of %(sku)s is not a number."), sku=sku)
        if quantity < ZERO:
            raise LogisticsError(
                "invalid_quantity", N_("The received quantity of %(sku)s cannot be negative."), sku=sku
            )
        approved = stock.q3(line.approved_quantity)
        if quantity > approved:
            raise LogisticsError(
                "above_approved",
                N_("At most %(max)s of %(sku)s can be received: that is what was approved."),
                max=format(approved.normalize(), "f") if approved else "0",
                sku=sku,
            )
        counted[line_id] = quantity
    if not any(quantity > ZERO for quantity in counted.values()):
        raise LogisticsError("nothing_received", N_("Enter the quantity received for at least one line."))
    for line_id, quantity in counted.items():
        lines[line_id].received_quantity = quantity
    request.status = "received"
    request.received_by_id = actor.id
    request.received_at = utcnow()
    audit.record(
        session,
        actor,
        "logistics_return",
        request.id,
        "receive",
        {"received": {str(k): str(v) for k, v in counted.items()}},
        order_id=request.order_id,
    )
    session.flush()
    return request


def inspect_return(
    session: Session,
    actor: User,
    return_id: int,
    decisions: Iterable[tuple[int, str, Decimal, int | None, str]],
) -> LogisticsReturn:
    """QC's disposition of the received goods, posting each one's stock move; closes the return.

    ``decisions`` are ``(return_line_id, disposition, quantity, location_id | None, note)``;
    per line their quantities must add up to exactly the received quantity (422). Moves
    (each with ``return_id``, at the warehouse of the order):

    - restock: ``+qty`` kind ``return`` at a sellable location (given, else the first in
      picking order), then waiting backorders of the product are served;
    - rework / downgrade: ``+qty`` kind ``rework`` / ``downgrade`` at the blocked area
      ``QC-REWORK`` / ``QC-DOWNGRADE`` (never reserved for orders);
    - scrap: ``+qty`` kind ``return`` then ``−qty`` kind ``scrap`` at ``QC-SCRAP`` (the
      ledger shows the goods came back and were scrapped; stock nets to zero).

    Then the return is closed, ``ordo_logistics_return_inspected`` is called once
    (billing's credit note) and the requester and the customer are told.
    """
    from plugins.logistics import warehouses

    _require(actor, flow.RETURNS_INSPECT)
    request = get_return(session, actor, return_id, for_update=True)
    _require_status(request, "received")
    lines = {line.id: line for line in request.lines}
    warehouse_id = return_warehouse_id(session, request.order_id)
    if warehouse_id is None:
        raise LogisticsError("no_warehouse", N_("There is no warehouse to take the returned goods into."), status=409)
    sellable = sellable_locations(session, warehouse_id)
    planned: list[tuple[LogisticsReturnLine, str, Decimal, int | None, str]] = []
    totals: dict[int, Decimal] = {line_id: ZERO for line_id in lines}
    for line_id, disposition, raw_quantity, location_id, raw_note in decisions:
        line = lines.get(line_id)
        if line is None:
            raise LogisticsError("unknown_line", N_("Line %(id)s is not a line of this return."), id=line_id)
        sku = _sku(session, line)
        if disposition not in DISPOSITIONS:
            raise LogisticsError("invalid_disposition", N_("Choose a disposition for %(sku)s from the list."), sku=sku)
        quantity = _decimal(raw_quantity, N_("The quantity of %(sku)s is not a number."), sku=sku)
        if quantity <= ZERO:
            raise LogisticsError(
                "invalid_quantity", N_("Each disposition of %(sku)s needs a quantity above zero."), sku=sku
            )
        note = _text(raw_note, 500, N_("Note"))
        if disposition == "restock":
            if location_id is not None:
                if location_id not in {location.id for location in sellable}:
                    raise LogisticsError(
                        "invalid_location",
                        N_("Restocked goods go to a sellable location of the order's warehouse."),
                    )
            elif not sellable:
                raise LogisticsError(
                    "no_location", N_("The order's warehouse has no sellable location to restock into."), status=409
                )
            else:
                location_id = sellable[0].id
        else:
            location_id = None  # rework, downgrade and scrap go to their blocked areas
        totals[line_id] += quantity
        planned.append((line, disposition, quantity, location_id, note))
    for line_id, line in lines.items():
        received = stock.q3(line.received_quantity)
        if totals[line_id] != received:
            raise LogisticsError(
                "dispositions_mismatch",
                N_("The dispositions of %(sku)s add up to %(total)s, but %(received)s were received."),
                sku=_sku(session, line),
                total=format(totals[line_id].normalize(), "f"),
                received=format(received.normalize(), "f"),
            )
    # Everything is checked: post the moves.
    restocked: set[int] = set()
    now = utcnow()
    for line, disposition, quantity, location_id, note in planned:
        kind, area = DISPOSITION_MOVES[disposition]
        if area is not None:
            location_id = warehouses.special_location(session, warehouse_id, area).id
        assert location_id is not None
        for move_kind, signed in (
            ((kind, quantity), ("scrap", -quantity)) if disposition == "scrap" else ((kind, quantity),)
        ):
            stock.post_move(
                session,
                actor,
                kind=move_kind,
                product_id=line.product_id,
                location_id=location_id,
                quantity=signed,
                order_id=request.order_id,
                order_line_id=line.order_line_id,
                return_id=request.id,
                reference=request.number,
                note=note,
            )
        if disposition == "restock":
            restocked.add(line.product_id)
        line.dispositions.append(
            LogisticsDisposition(
                disposition=disposition,
                quantity=quantity,
                location_id=location_id,
                note=note,
                inspected_by_id=actor.id,
                inspected_at=now,
            )
        )
    request.status = "closed"
    request.closed_at = now
    audit.record(
        session,
        actor,
        "logistics_return",
        request.id,
        "inspect",
        {"dispositions": [f"{line.id}:{d}:{q}" for line, d, q, _l, _n in planned]},
        order_id=request.order_id,
    )
    session.flush()
    if restocked:
        stock.reserve_backorders(session, sorted(restocked), actor)
    session_registry(session).hook.ordo_logistics_return_inspected(request=request, session=session)
    order = session.get(Order, request.order_id)
    assert order is not None
    _tell_requester_and_customer(session, RETURN_CLOSED.name, request, order)
    return request


def closed_between(session: Session, start: dt.datetime, end: dt.datetime) -> list[LogisticsReturn]:
    """Returns closed in ``[start, end)`` (reports, KPI's return rate by reason)."""
    return list(
        session.scalars(
            select(LogisticsReturn)
            .where(LogisticsReturn.closed_at >= start, LogisticsReturn.closed_at < end)
            .options(selectinload(LogisticsReturn.lines))
        )
    )
