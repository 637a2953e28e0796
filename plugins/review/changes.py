"""Change and cancellation requests (订单变更申请表) and the revisions they make (RV-8, CORE-5).

A request on a submitted or confirmed order says what changes (lines, quantities,
specification, dates, address, scope), why, the impact on each step and the expected
handling time; the affected departments assess it; a user with
``review.changes.approve`` approves or rejects. On approval the order is revised in
place (lines keep their ids), a new :class:`ReviewOrderRevision` keeps the new state
(revision 1, the state before the first change, is kept first), the order goes back to
the step the change needs (``rewind_to``, e.g. re-review) and departments and customer
are told the new delivery date. A cancellation request, approved, cancels the order
with its reason (RV-9) — unless goods have left (``ordo_review_goods_issued``): then it
is refused, a return is needed. Core's plain ``cancel`` of a confirmed order is refused
while review is enabled: it goes through a cancellation request.

Which departments assess: those whose ``reopen_on`` names a kind the change touches
(``price``, ``quantity``, ``date``); a change of specification or scope, and every
cancellation, goes to every active department; a change touching none of them (a new
ship-to address) waits for approval at once. Everything happens in the caller's
transaction; a refusal (:class:`ReviewError`) changes nothing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from core.clock import company_now
from core.contrib import NotificationTemplate, Step
from core.labels import N_
from core.models import Order, OrderLine, Product, Role, RolePermission, User
from core.notify import notify
from core.notify.recipients import Recipient, ToCustomer, ToRole, ToUser
from core.services import NotFound, audit
from core.services.orders import may_see_order, revise_order
from core.workflow import Workflow
from plugins.review import revisions
from plugins.review.errors import ReviewError
from plugins.review.flow import CHANGES_APPROVE, CHANGES_REQUEST, DECIDE, DEPARTMENT_REVIEW
from plugins.review.models import (
    CHANGE_REQUEST_KINDS,
    VERDICTS,
    ReviewChangeAssessment,
    ReviewChangeRequest,
    ReviewDepartment,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.contrib import Transition
    from core.plugins import Registry

#: Order statuses a request may be filed on (a draft is edited; closed orders stay closed).
REQUESTABLE = ("submitted", "confirmed")
#: Request statuses still waiting for someone.
OPEN_STATUSES = ("assessing", "pending_approval")
#: The action name of the move an approved change makes (history, audit).
REVISE_ACTION = "revise"
#: What a ship-to address holds, with each field's length (as core's ShipToSchema).
SHIP_TO_FIELDS = {"contact": 100, "phone": 50, "province": 64, "city": 64, "address": 300}
#: A new quantity or price may have at most this many digits before the point.
MAX_NUMBER = Decimal(10) ** 12

CANCEL_NEEDS_REQUEST = N_(
    "A confirmed order is cancelled through a cancellation request: file one on the order's change requests."
)
#: Every guard sentence of this module (screens look them up in the catalogue).
GUARD_REASONS = (CANCEL_NEEDS_REQUEST,)

_CLOSED = {
    "cancelled": N_("Order %(number)s is cancelled: it can no longer be changed or cancelled."),
    "rejected": N_("Order %(number)s was rejected: it can no longer be changed or cancelled."),
    "completed": N_("Order %(number)s is completed: it can no longer be changed or cancelled."),
}
_DRAFT = N_("Order %(number)s is still a draft: edit it directly, no change request is needed.")
_GOODS_LEFT = N_("Goods of order %(number)s have left the warehouse: it cannot be cancelled, a return is needed.")
_BELOW_SHIPPED = N_("Line %(position)s (%(product)s): %(shipped)s already shipped; its quantity cannot go below that.")
_REMOVE_SHIPPED = N_("Line %(position)s (%(product)s) has goods shipped; it cannot be removed.")
_LINE_GONE = N_("Line %(line)s is no longer on order %(number)s; file a new change request.")
_INVALID = N_("The change request is not valid.")

# Per-field messages (fixed sentences: screens translate them through the catalogue).
REQUIRED = N_("This field is required.")
NOT_A_NUMBER = N_("Not a valid number.")
NOT_A_DATE = N_("Not a valid date.")
QUANTITY_POSITIVE = N_("Quantity must be greater than zero.")
PRICE_NOT_NEGATIVE = N_("Unit price cannot be negative.")
TOO_LARGE = N_("The number is too large.")
NOT_A_LINE = N_("Not a line of this order.")
UNKNOWN_PRODUCT = N_("Unknown or deactivated product.")
PRODUCT_FIXED = N_("The product of a line cannot be changed: remove the line and add a new one.")
DATE_PAST = N_("The date is in the past.")
BAD_STEP = N_("Not a step this order can go back to.")
UNKNOWN_STEP = N_("Unknown step.")
BAD_DAYS = N_("Give a number of days from 0 to 365.")
BAD_KIND = N_("Choose a change or a cancellation.")
BAD_VERDICT = N_("Choose approve, approve with conditions or reject.")
COMMENT_NEEDED = N_("Say why: a rejection or conditions need a comment.")
NOTHING_TO_CHANGE = N_(
    "Nothing would change: give new lines, quantities, prices, dates, address, specification or scope."
)
TOO_LONG = {
    200: N_("At most 200 characters."),
    300: N_("At most 300 characters."),
    500: N_("At most 500 characters."),
    1000: N_("At most 1000 characters."),
    2000: N_("At most 2000 characters."),
}

# --- notifications --------------------------------------------------------------------------

#: The changes of a request as a list (``changes``: what, line, before, after), per language.
_CHANGES_ZH = (
    '{% set L = {"quantity": "数量", "unit_price": "单价", "description": "规格/描述", "added": "新增行",'
    ' "removed": "删除行", "requested_date": "要求交货日期", "ship_to": "收货地址", "specification": "技术规格",'
    ' "scope": "范围"} %}'
    "{% for c in changes %}- {% if c.line %}{{ c.line }} {% endif %}{{ L.get(c.what, c.what) }}："
    "{% if c.before %}{{ c.before }} → {% endif %}{{ c.after }}\n{% endfor %}"
)
_CHANGES_EN = (
    '{% set L = {"quantity": "quantity", "unit_price": "unit price", "description": "description",'
    ' "added": "new line", "removed": "line removed", "requested_date": "requested date",'
    ' "ship_to": "ship-to address", "specification": "specification", "scope": "scope"} %}'
    "{% for c in changes %}- {% if c.line %}{{ c.line }} {% endif %}{{ L.get(c.what, c.what) }}: "
    "{% if c.before %}{{ c.before }} → {% endif %}{{ c.after }}\n{% endfor %}"
)

CHANGE_REQUESTED = NotificationTemplate(
    "review.change_requested",
    label=N_("Change request to assess (to the affected departments)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 的{% if kind == 'cancel' %}取消{% else %}变更{% endif %}申请"
        "（第 {{ number }} 号）待评估",
        "en": "Order {{ order.number }}: {% if kind == 'cancel' %}cancellation{% else %}change{% endif %} "
        "request {{ number }} to assess",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}）提交了"
        "{% if kind == 'cancel' %}取消{% else %}变更{% endif %}申请（订单变更申请表第 {{ number }} 号），"
        "申请人：{{ requester }}。\n原因：{{ reason }}\n"
        "{% if scope %}范围：{{ scope }}\n{% endif %}"
        "{% if changes %}变更内容：\n" + _CHANGES_ZH + "{% endif %}"
        "{% if expected_days is not none %}预计处理时间：{{ expected_days }} 天\n{% endif %}"
        "请评估对本部门工作的影响并提交意见。\n",
        "en": "A {% if kind == 'cancel' %}cancellation{% else %}change{% endif %} request (No. {{ number }}) was "
        "filed for order {{ order.number }} ({{ order.customer.name }}) by {{ requester }}.\n"
        "Reason: {{ reason }}\n"
        "{% if scope %}Scope: {{ scope }}\n{% endif %}"
        "{% if changes %}Changes:\n" + _CHANGES_EN + "{% endif %}"
        "{% if expected_days is not none %}Expected handling time: {{ expected_days }} days\n{% endif %}"
        "Please assess its impact on your department.\n",
    },
)
CHANGE_TO_APPROVE = NotificationTemplate(
    "review.change_to_approve",
    label=N_("Change request waits for approval (to the approvers)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 的{% if kind == 'cancel' %}取消{% else %}变更{% endif %}申请"
        "（第 {{ number }} 号）待审批",
        "en": "Order {{ order.number }}: {% if kind == 'cancel' %}cancellation{% else %}change{% endif %} "
        "request {{ number }} awaits approval",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}）的"
        "{% if kind == 'cancel' %}取消{% else %}变更{% endif %}申请（第 {{ number }} 号）"
        "{% if assessed %}已由相关部门评估完毕{% else %}不涉及其他部门{% endif %}，请审批。\n原因：{{ reason }}\n"
        "{% if changes %}变更内容：\n" + _CHANGES_ZH + "{% endif %}",
        "en": "The {% if kind == 'cancel' %}cancellation{% else %}change{% endif %} request No. {{ number }} of "
        "order {{ order.number }} ({{ order.customer.name }}) "
        "{% if assessed %}has been assessed by the departments{% else %}affects no department{% endif %}; "
        "please approve or reject it.\nReason: {{ reason }}\n"
        "{% if changes %}Changes:\n" + _CHANGES_EN + "{% endif %}",
    },
)
CHANGE_DECIDED = NotificationTemplate(
    "review.change_decided",
    label=N_("Change request decided (to departments, requester and customer)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 的{% if kind == 'cancel' %}取消{% else %}变更{% endif %}申请"
        "{% if approved %}已批准{% else %}未获批准{% endif %}",
        "en": "Order {{ order.number }}: {% if kind == 'cancel' %}cancellation{% else %}change{% endif %} "
        "{% if approved %}approved{% else %}not approved{% endif %}",
    },
    body={
        "zh_CN": "{% if approved and kind == 'cancel' %}订单 {{ order.number }} 已按取消申请取消。\n"
        "原因：{{ reason }}\n"
        "{% elif approved %}订单 {{ order.number }} 已按变更申请（第 {{ number }} 号）变更，"
        "现为第 {{ revision }} 版。\n"
        "{% if changes %}变更内容：\n" + _CHANGES_ZH + "{% endif %}"
        "{% if new_delivery_date %}新的交货日期：{{ new_delivery_date|date }}\n{% endif %}"
        "{% else %}订单 {{ order.number }} 的{% if kind == 'cancel' %}取消{% else %}变更{% endif %}申请"
        "（第 {{ number }} 号）未获批准。\n理由：{{ decision_reason }}\n{% endif %}",
        "en": "{% if approved and kind == 'cancel' %}Order {{ order.number }} was cancelled as requested.\n"
        "Reason: {{ reason }}\n"
        "{% elif approved %}Order {{ order.number }} was changed as requested (change request No. {{ number }}); "
        "it is now at revision {{ revision }}.\n"
        "{% if changes %}Changes:\n" + _CHANGES_EN + "{% endif %}"
        "{% if new_delivery_date %}New delivery date: {{ new_delivery_date|date }}\n{% endif %}"
        "{% else %}The {% if kind == 'cancel' %}cancellation{% else %}change{% endif %} request No. {{ number }} "
        "of order {{ order.number }} was not approved.\nWhy: {{ decision_reason }}\n{% endif %}",
    },
)

#: Notification templates of this module (collected by the plugin manifest).
NOTIFICATIONS: tuple[NotificationTemplate, ...] = (CHANGE_REQUESTED, CHANGE_TO_APPROVE, CHANGE_DECIDED)


# --- helpers ---------------------------------------------------------------------------------


def _today() -> dt.date:
    return company_now().date()


def goods_issued(registry: Registry, session: Session, order: Order) -> dict[int, Decimal]:
    """The quantity shipped per line id, as the plugins answering ``ordo_review_goods_issued`` say.

    With several answers the largest per line counts; with none, nothing has shipped.
    """
    shipped: dict[int, Decimal] = {}
    for answer in registry.hook.ordo_review_goods_issued(order=order, session=session):
        for line_id, quantity in (answer or {}).items():
            value = Decimal(str(quantity))
            if value > shipped.get(int(line_id), Decimal("0")):
                shipped[int(line_id)] = value
    return shipped


def is_member(user: User, department: ReviewDepartment) -> bool:
    """Whether ``user`` speaks for ``department`` (holds its role and ``review.tasks.decide``)."""
    return user.can(DECIDE) and any(role.code == department.role_code for role in user.roles)


def rewind_choices(registry: Registry, session: Session, order: Order) -> list[Step]:
    """The enabled steps an approved change may send ``order`` back to: after draft, up to its step."""
    workflow = Workflow(registry, session)
    current = workflow.step(order.step).position
    return [s for s in workflow.pipeline() if 0 < s.position <= current]


def default_rewind(registry: Registry, session: Session, order: Order) -> str:
    """Department review when enabled and reached, else ``submitted``, else the order's step."""
    keys = [s.key for s in rewind_choices(registry, session, order)]
    for key in (DEPARTMENT_REVIEW, "submitted"):
        if key in keys:
            return key
    return order.step


def open_request(session: Session, order_id: int) -> ReviewChangeRequest | None:
    """The order's request still being assessed or waiting for approval, if any."""
    return session.scalar(
        select(ReviewChangeRequest)
        .where(ReviewChangeRequest.order_id == order_id, ReviewChangeRequest.status.in_(OPEN_STATUSES))
        .order_by(ReviewChangeRequest.id)
        .limit(1)
    )


def _refuse_closed(order: Order) -> None:
    if order.status == "draft":
        raise ReviewError("order_is_draft", _DRAFT, 409, number=order.number)
    if order.status not in REQUESTABLE:
        raise ReviewError(
            "order_closed",
            _CLOSED.get(order.status, _CLOSED["cancelled"]),
            409,
            number=order.number,
        )


def _text(value: Any, limit: int, errors: dict[str, Any], name: str, *, required: bool = False) -> str:
    text = "" if value is None else str(value).strip()
    if required and not text:
        errors[name] = [REQUIRED]
    elif len(text) > limit:
        errors[name] = [TOO_LONG[limit]]
    return text


def _number(value: Any) -> Decimal | None:
    """``value`` as a finite Decimal, or None when it is not a number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _date(value: Any) -> dt.date | str | None:
    """``value`` as a date; None when empty; the string ``"bad"`` when not a date."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        return "bad"


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _clean_line(session: Session, order: Order, item: Any, errors: dict[str, list[str]]) -> dict[str, Any] | None:
    """One requested line as stored (only what differs from the order), or None if unchanged."""
    if not isinstance(item, dict):
        errors["line"] = [NOT_A_LINE]
        return None
    lines = {line.id: line for line in order.lines}
    raw_id = item.get("line_id", item.get("id"))
    line = None
    if raw_id not in (None, ""):
        try:
            line = lines.get(int(raw_id))
        except (TypeError, ValueError):
            line = None
        if line is None:
            errors["line_id"] = [NOT_A_LINE]
            return None
    remove = str(item.get("remove", "")).lower() in ("1", "true", "on", "yes")
    if line is not None and remove:
        return {
            "line_id": line.id,
            "position": line.position,
            "product": line.product.sku,
            "remove": True,
            "was": {"quantity": _plain(line.quantity), "unit_price": _plain(line.unit_price)},
        }
    out: dict[str, Any] = {}
    was: dict[str, str] = {}
    product = line.product if line is not None else None
    given_product = str(item.get("product") or "").strip()
    if line is None:
        if not given_product:
            errors["product"] = [REQUIRED]
        else:
            found = session.scalar(select(Product).where(Product.sku == given_product))
            if found is None and given_product.isdigit():
                found = session.get(Product, int(given_product))
            if found is None or not found.active:
                errors["product"] = [UNKNOWN_PRODUCT]
            product = found
    elif given_product and given_product not in (line.product.sku, str(line.product_id)):
        errors["product"] = [PRODUCT_FIXED]
    raw_quantity = item.get("quantity")
    if raw_quantity not in (None, ""):
        quantity = _number(raw_quantity)
        if quantity is None:
            errors["quantity"] = [NOT_A_NUMBER]
        elif quantity <= 0:
            errors["quantity"] = [QUANTITY_POSITIVE]
        elif quantity >= MAX_NUMBER:
            errors["quantity"] = [TOO_LARGE]
        elif line is None or quantity != line.quantity:
            out["quantity"] = _plain(quantity)
            if line is not None:
                was["quantity"] = _plain(line.quantity)
    elif line is None:
        errors["quantity"] = [REQUIRED]
    raw_price = item.get("unit_price")
    if raw_price not in (None, ""):
        price = _number(raw_price)
        if price is None:
            errors["unit_price"] = [NOT_A_NUMBER]
        elif price < 0:
            errors["unit_price"] = [PRICE_NOT_NEGATIVE]
        elif price >= MAX_NUMBER:
            errors["unit_price"] = [TOO_LARGE]
        elif line is None or price != line.unit_price:
            out["unit_price"] = _plain(price)
            if line is not None:
                was["unit_price"] = _plain(line.unit_price)
    if "description" in item and item["description"] is not None:
        description = str(item["description"]).strip()
        if len(description) > 500:
            errors["description"] = [TOO_LONG[500]]
        elif line is None or (description and description != line.description):
            out["description"] = description
            if line is not None:
                was["description"] = line.description
    if errors:
        return None
    if line is not None:
        if not out:
            return None
        return {"line_id": line.id, "position": line.position, "product": line.product.sku, **out, "was": was}
    assert product is not None
    if "unit_price" not in out:
        out["unit_price"] = _plain(product.list_price)
    return {"product": product.sku, "product_id": product.id, **out}


def _kinds_of(content: dict[str, Any], scope: str) -> set[str]:
    """What a change touches: ``price``, ``quantity``, ``date``, ``specification``, ``scope``, ``address``."""
    kinds: set[str] = set()
    for line in content.get("lines", []):
        if line.get("remove") or "line_id" not in line:
            kinds |= {"quantity", "price"}
            if "line_id" not in line:
                kinds.add("specification")
            continue
        if "quantity" in line:
            kinds.add("quantity")
        if "unit_price" in line:
            kinds.add("price")
        if "description" in line:
            kinds.add("specification")
    if "requested_date" in content:
        kinds.add("date")
    if content.get("ship_to"):
        kinds.add("address")
    if content.get("specification"):
        kinds.add("specification")
    if scope:
        kinds.add("scope")
    return kinds


def affected_departments(session: Session, kind: str, kinds: set[str]) -> list[ReviewDepartment]:
    """The active departments a request must be assessed by (see the module doc)."""
    active = list(
        session.scalars(
            select(ReviewDepartment).where(ReviewDepartment.active.is_(True)).order_by(ReviewDepartment.position)
        )
    )
    if kind == "cancel" or kinds & {"specification", "scope"}:
        return active
    return [d for d in active if {k.strip() for k in d.reopen_on.split(",") if k.strip()} & kinds]


def change_items(request: ReviewChangeRequest) -> list[dict[str, str]]:
    """The request's changes as rows (what, line, before, after) for notices, screens and documents."""
    content = request.content or {}
    items: list[dict[str, str]] = []
    for line in content.get("lines", []):
        label = f"#{line.get('position', '')} {line.get('product', '')}" if "line_id" in line else line["product"]
        if line.get("remove"):
            items.append({"what": "removed", "line": label, "before": line["was"]["quantity"], "after": "0"})
            continue
        if "line_id" not in line:
            after = f"{line['quantity']} @ {line['unit_price']}"
            items.append({"what": "added", "line": label, "before": "", "after": after})
            continue
        was = line.get("was", {})
        for name in ("quantity", "unit_price", "description"):
            if name in line:
                items.append({"what": name, "line": label, "before": was.get(name, ""), "after": line[name]})
    before = content.get("before", {})
    if "requested_date" in content:
        items.append(
            {
                "what": "requested_date",
                "line": "",
                "before": before.get("requested_date") or "",
                "after": content["requested_date"] or "",
            }
        )
    if content.get("ship_to"):
        old_ship = before.get("ship_to", {})
        items.append(
            {
                "what": "ship_to",
                "line": "",
                "before": " ".join(old_ship.get(k, "") for k in content["ship_to"]).strip(),
                "after": " ".join(content["ship_to"].values()).strip(),
            }
        )
    if content.get("specification"):
        items.append({"what": "specification", "line": "", "before": "", "after": content["specification"]})
    if request.scope:
        items.append({"what": "scope", "line": "", "before": "", "after": request.scope})
    return items


def _clean(session: Session, registry: Registry, order: Order, data: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The request's fields checked and normalised; every bad field refused at once (422)."""
    errors: dict[str, Any] = {}
    kind = str(data.get("kind") or "change").strip()
    if kind not in CHANGE_REQUEST_KINDS:
        errors["kind"] = [BAD_KIND]
    reason = _text(data.get("reason"), 1000, errors, "reason", required=True)
    scope = _text(data.get("scope"), 2000, errors, "scope")
    raw = data.get("content") or {}
    if not isinstance(raw, dict):
        raw = {}
    content: dict[str, Any] = {}
    if kind == "change":
        line_errors: dict[int, dict[str, list[str]]] = {}
        lines: list[dict[str, Any]] = []
        seen: set[int] = set()
        for index, item in enumerate(raw.get("lines") or []):
            if not item:
                continue  # a blank row of the form
            row_errors: dict[str, list[str]] = {}
            cleaned = _clean_line(session, order, item, row_errors)
            if cleaned is not None and "line_id" in cleaned:
                if cleaned["line_id"] in seen:
                    row_errors["line_id"] = [NOT_A_LINE]
                seen.add(cleaned["line_id"])
            if row_errors:
                line_errors[index] = row_errors
            elif cleaned is not None:
                lines.append(cleaned)
        if line_errors:
            errors["lines"] = line_errors
        if lines:
            content["lines"] = lines
        before: dict[str, Any] = {}
        if "requested_date" in raw:
            requested = _date(raw.get("requested_date"))
            if requested == "bad":
                errors["requested_date"] = [NOT_A_DATE]
            elif isinstance(requested, dt.date) and requested < _today():
                errors["requested_date"] = [DATE_PAST]
            elif isinstance(requested, dt.date) and requested != order.requested_date:
                content["requested_date"] = requested.isoformat()
                before["requested_date"] = order.requested_date.isoformat() if order.requested_date else ""
        ship_to = raw.get("ship_to") or {}
        if isinstance(ship_to, dict):
            new_ship: dict[str, str] = {}
            old_ship: dict[str, str] = {}
            for key, limit in SHIP_TO_FIELDS.items():
                if key not in ship_to or ship_to[key] is None:
                    continue
                value = str(ship_to[key]).strip()
                if len(value) > limit:
                    errors[f"ship_to.{key}"] = [TOO_LONG.get(limit, TOO_LONG[300])]
                    continue
                current = getattr(order, f"ship_to_{key}")
                if value != current:
                    new_ship[key] = value
                    old_ship[key] = current
            if new_ship:
                content["ship_to"] = new_ship
                before["ship_to"] = old_ship
        specification = _text(raw.get("specification"), 2000, errors, "specification")
        if specification:
            content["specification"] = specification
        if before:
            content["before"] = before
    impact: dict[str, str] = {}
    raw_impact = data.get("impact") or {}
    if isinstance(raw_impact, dict):
        for key, text in raw_impact.items():
            value = "" if text is None else str(text).strip()
            if not value:
                continue
            if key not in registry.steps:
                errors[f"impact.{key}"] = [UNKNOWN_STEP]
            elif len(value) > 1000:
                errors[f"impact.{key}"] = [TOO_LONG[1000]]
            else:
                impact[str(key)] = value
    expected_days: int | None = None
    raw_days = data.get("expected_days")
    if raw_days not in (None, ""):
        days = _number(raw_days)
        if days is None or days != days.to_integral_value() or not 0 <= days <= 365:
            errors["expected_days"] = [BAD_DAYS]
        else:
            expected_days = int(days)
    new_delivery = _date(data.get("new_delivery_date"))
    if new_delivery == "bad":
        errors["new_delivery_date"] = [NOT_A_DATE]
    elif isinstance(new_delivery, dt.date) and new_delivery < _today():
        errors["new_delivery_date"] = [DATE_PAST]
    rewind_to = str(data.get("rewind_to") or "").strip()
    if kind == "change":
        if not rewind_to:
            rewind_to = default_rewind(registry, session, order)
        elif rewind_to not in {s.key for s in rewind_choices(registry, session, order)}:
            errors["rewind_to"] = [BAD_STEP]
    else:
        rewind_to = ""
    if errors:
        raise ReviewError("invalid", _INVALID, 422, details=errors)
    kinds = _kinds_of(content, scope) if kind == "change" else set()
    if kind == "change" and not kinds:
        raise ReviewError("nothing_to_change", NOTHING_TO_CHANGE, 422)
    cleaned = {
        "kind": kind,
        "reason": reason,
        "scope": scope,
        "content": content,
        "impact": impact,
        "expected_days": expected_days,
        "new_delivery_date": new_delivery if isinstance(new_delivery, dt.date) else None,
        "rewind_to": rewind_to,
    }
    return cleaned, kinds


def _check_shipped(order: Order, content: dict[str, Any], shipped: dict[int, Decimal]) -> None:
    """Refuse a change taking a line below what has shipped, or removing a shipped line."""
    for line in content.get("lines", []):
        line_id = line.get("line_id")
        if line_id is None:
            continue
        left = shipped.get(int(line_id), Decimal("0"))
        if left <= 0:
            continue
        if line.get("remove"):
            raise ReviewError(
                "line_shipped", _REMOVE_SHIPPED, 422, position=line.get("position", ""), product=line["product"]
            )
        if "quantity" in line and Decimal(line["quantity"]) < left:
            raise ReviewError(
                "below_shipped",
                _BELOW_SHIPPED,
                422,
                position=line.get("position", ""),
                product=line["product"],
                shipped=_plain(left),
            )


def _refuse_if_goods_left(order: Order, shipped: dict[int, Decimal]) -> None:
    if any(quantity > 0 for quantity in shipped.values()):
        raise ReviewError("goods_issued", _GOODS_LEFT, 409, number=order.number)


def _approver_roles(session: Session) -> list[str]:
    """The codes of the roles granting ``review.changes.approve``."""
    return list(
        session.scalars(
            select(Role.code)
            .join(RolePermission, RolePermission.role_id == Role.id)
            .where(RolePermission.code == CHANGES_APPROVE)
            .order_by(Role.code)
        )
    )


def _context(request: ReviewChangeRequest, **extra: Any) -> dict[str, Any]:
    return {
        "number": request.number,
        "kind": request.kind,
        "reason": request.reason,
        "scope": request.scope,
        "changes": change_items(request),
        "expected_days": request.expected_days,
        **extra,
    }


def _to_roles(codes: list[str]) -> list[Recipient]:
    return [ToRole(code) for code in dict.fromkeys(codes)]


def _tell_approvers(session: Session, order: Order, request: ReviewChangeRequest) -> None:
    roles = _approver_roles(session)
    if roles:
        notify(
            session,
            CHANGE_TO_APPROVE.name,
            to=_to_roles(roles),
            order=order,
            context=_context(request, assessed=bool(request.assessments)),
            dedupe_key=f"review.change_to_approve:{request.id}",
        )


def _order_of(session: Session, request: ReviewChangeRequest) -> Order:
    order = session.get(Order, request.order_id)
    if order is None:  # pragma: no cover - the request is deleted with its order
        raise NotFound("order", request.order_id)
    return order


# --- the hook reactions ----------------------------------------------------------------------


def on_transitioned(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Keep revision 1 when an order is first confirmed.

    An order leaving for good (cancelled, rejected, completed) withdraws its open
    request, which could no longer be carried out.
    """
    first = transition.to_status == "confirmed" and transition.from_status != "confirmed"
    if first and not revisions.revisions_of(session, order.id):
        revisions.keep(session, order, "confirmed", user)
    if transition.to_status in ("cancelled", "rejected", "completed"):
        request = open_request(session, order.id)
        if request is not None:
            request.status = "withdrawn"
            request.decided_at = dt.datetime.now(dt.UTC)
            request.decided_by_id = user.id if user is not None else None
            request.decision_reason = f"The order was {transition.to_status}."


def guard(session: Session, order: Order, action: str, transition: Transition, user: User | None) -> list[str]:
    """Refuse a plain ``cancel`` of a confirmed order (it needs a cancellation request)."""
    if action == "cancel" and order.status == "confirmed":
        return [CANCEL_NEEDS_REQUEST]
    return []


# --- the services ----------------------------------------------------------------------------


def file_request(
    session: Session, registry: Registry, actor: User, order: Order, data: dict[str, Any]
) -> ReviewChangeRequest:
    """File a change or cancellation request (validated; see the module doc); audited.

    ``data``: ``kind`` (change | cancel), ``reason`` (required), ``scope``, ``content``
    (``lines``: ``[{line_id?, product?, quantity, unit_price, description, remove?}]``
    — a line without ``line_id`` is added, ``remove`` drops one; ``requested_date``,
    ``ship_to`` {contact, phone, province, city, address}, ``specification``),
    ``impact`` (step key → text), ``expected_days``, ``new_delivery_date`` and
    ``rewind_to`` (an enabled step at or before the order's; default department review,
    else ``submitted``). Only what differs from the order is kept.
    """
    if not actor.can(CHANGES_REQUEST):
        raise ReviewError("forbidden", N_("You may not request changes or cancellations of orders."), 403)
    if not may_see_order(session, actor, order):
        raise NotFound("order", order.id)
    _refuse_closed(order)
    existing = open_request(session, order.id)
    if existing is not None:
        raise ReviewError(
            "request_open",
            N_("Order %(number)s already has an open change request (No. %(request)s): it must be decided first."),
            409,
            number=order.number,
            request=existing.number,
        )
    cleaned, kinds = _clean(session, registry, order, data)
    shipped = goods_issued(registry, session, order)
    if cleaned["kind"] == "cancel":
        _refuse_if_goods_left(order, shipped)
    else:
        _check_shipped(order, cleaned["content"], shipped)
    latest = session.scalar(
        select(func.max(ReviewChangeRequest.number)).where(ReviewChangeRequest.order_id == order.id)
    )
    departments = affected_departments(session, cleaned["kind"], kinds)
    request = ReviewChangeRequest(
        order_id=order.id,
        number=(latest or 0) + 1,
        kind=cleaned["kind"],
        status="assessing" if departments else "pending_approval",
        content=cleaned["content"],
        scope=cleaned["scope"],
        reason=cleaned["reason"],
        impact=cleaned["impact"],
        expected_days=cleaned["expected_days"],
        new_delivery_date=cleaned["new_delivery_date"],
        rewind_to=cleaned["rewind_to"],
        requested_by_id=actor.id,
        assessments=[ReviewChangeAssessment(department_id=d.id, department=d) for d in departments],
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        actor,
        "review_change_request",
        request.id,
        "file",
        {
            "number": request.number,
            "kind": request.kind,
            "touches": sorted(kinds),
            "departments": [d.code for d in departments],
            "content": request.content,
            "rewind_to": request.rewind_to,
        },
        reason=request.reason,
        order_id=order.id,
    )
    if departments:
        notify(
            session,
            CHANGE_REQUESTED.name,
            to=_to_roles([d.role_code for d in departments]),
            order=order,
            context=_context(request, requester=actor.name),
            dedupe_key=f"review.change_requested:{request.id}",
        )
    else:
        _tell_approvers(session, order, request)
    return request


def assess(
    session: Session,
    actor: User,
    request: ReviewChangeRequest,
    *,
    verdict: str,
    comment: str = "",
    department_id: int | None = None,
) -> ReviewChangeRequest:
    """An affected department's assessment; when all have assessed, it waits for approval.

    The actor must be a member of the department (its role and ``review.tasks.decide``);
    with ``department_id`` None, the first department the actor may still assess for.
    Each department assesses once; a reject or conditions need a comment.
    """
    if request.status != "assessing":
        raise ReviewError(
            "not_assessing", N_("Change request %(number)s is no longer being assessed."), 409, number=request.number
        )
    order = _order_of(session, request)
    if not may_see_order(session, actor, order):
        raise NotFound("order", order.id)
    mine = [
        a
        for a in request.assessments
        if is_member(actor, a.department) and (department_id is None or a.department_id == department_id)
    ]
    if not mine:
        raise ReviewError(
            "not_department_member",
            N_("Only a member of an affected department may assess this change request."),
            403,
        )
    pending = [a for a in mine if not a.verdict]
    if not pending:
        raise ReviewError("already_assessed", N_("Your department has already assessed this change request."), 409)
    comment = (comment or "").strip()
    errors: dict[str, list[str]] = {}
    if verdict not in VERDICTS:
        errors["verdict"] = [BAD_VERDICT]
    elif verdict != "approve" and not comment:
        errors["comment"] = [COMMENT_NEEDED]
    if len(comment) > 2000:
        errors["comment"] = [TOO_LONG[2000]]
    if errors:
        raise ReviewError("invalid", N_("The assessment is not valid."), 422, details=errors)
    assessment = pending[0]
    assessment.verdict = verdict
    assessment.comment = comment
    assessment.assessed_by_id = actor.id
    assessment.assessed_at = dt.datetime.now(dt.UTC)
    audit.record(
        session,
        actor,
        "review_change_request",
        request.id,
        "assess",
        {"department": assessment.department.code, "verdict": verdict},
        reason=comment,
        order_id=order.id,
    )
    if all(a.verdict for a in request.assessments):
        request.status = "pending_approval"
        session.flush()
        _tell_approvers(session, order, request)
    return request


def _apply_lines(session: Session, order: Order, content: dict[str, Any]) -> None:
    """Change the order's lines in place: lines keep their ids, new ones are appended."""
    lines = {line.id: line for line in order.lines}
    position = max((line.position for line in order.lines), default=0)
    for item in content.get("lines", []):
        if "line_id" in item:
            line = lines.get(int(item["line_id"]))
            if line is None:
                raise ReviewError("line_gone", _LINE_GONE, 409, line=item.get("position", ""), number=order.number)
            if item.get("remove"):
                order.lines.remove(line)
                continue
            if "quantity" in item:
                line.quantity = Decimal(item["quantity"])
            if "unit_price" in item:
                line.unit_price = Decimal(item["unit_price"])
            if "description" in item:
                line.description = item["description"]
            continue
        product = session.get(Product, int(item["product_id"]))
        if product is None or not product.active:
            raise ReviewError("invalid", _INVALID, 422, details={"lines": {"product": [UNKNOWN_PRODUCT]}})
        position += 1
        order.lines.append(
            OrderLine(
                position=position,
                product=product,
                description=item.get("description") or product.spec,
                quantity=Decimal(item["quantity"]),
                unit=product.unit,
                unit_price=Decimal(item["unit_price"]),
                discount=Decimal("0"),
                tax_rate=product.tax_rate,
            )
        )


def _header_values(order: Order, request: ReviewChangeRequest) -> dict[str, Any]:
    """The header changes as ``revise_order`` takes them (``OrderPatchSchema`` names)."""
    content = request.content or {}
    values: dict[str, Any] = {}
    if "requested_date" in content:
        values["requested_date"] = dt.date.fromisoformat(content["requested_date"])
    if content.get("ship_to"):
        values["ship_to"] = dict(content["ship_to"])
    if content.get("specification"):
        note = f"{order.note}\n" if order.note else ""
        values["note"] = f"{note}[Change request {request.number}] {content['specification']}"[-2000:]
    return values


def _decide_reason(request: ReviewChangeRequest, reason: str) -> str:
    kind = "Cancellation" if request.kind == "cancel" else "Change"
    text = f"{kind} request {request.number}: {request.reason}"
    if reason:
        text += f" — {reason}"
    return text[:1000]


def decide(
    session: Session, registry: Registry, actor: User, request: ReviewChangeRequest, *, approve: bool, reason: str
) -> ReviewChangeRequest:
    """Approve (revise or cancel the order, rewind, notify) or reject the request.

    Refused: without ``review.changes.approve`` (403); not waiting for approval (409);
    a rejection without a reason (422); the order closed meanwhile (409); goods shipped
    meanwhile below the new quantities, or at all for a cancellation.
    """
    if not actor.can(CHANGES_APPROVE):
        raise ReviewError("forbidden", N_("You may not approve or reject change requests."), 403)
    order = _order_of(session, request)
    if not may_see_order(session, actor, order):
        raise NotFound("order", order.id)
    ready = request.status == "pending_approval" or (
        request.status == "assessing" and all(a.verdict for a in request.assessments)
    )
    if not ready:
        raise ReviewError(
            "not_pending",
            N_("Change request %(number)s is not waiting for approval."),
            409,
            number=request.number,
        )
    reason = (reason or "").strip()
    if not approve and not reason:
        raise ReviewError(
            "reason_required",
            N_("Say why the request is rejected."),
            422,
            details={"reason": [REQUIRED]},
        )
    if len(reason) > 1000:
        raise ReviewError("invalid", _INVALID, 422, details={"reason": [TOO_LONG[1000]]})
    if approve:
        # Refused before anything is written: the order closed, or goods shipped meanwhile.
        _refuse_closed(order)
        shipped = goods_issued(registry, session, order)
        if request.kind == "cancel":
            _refuse_if_goods_left(order, shipped)
        else:
            _check_shipped(order, request.content or {}, shipped)
    request.decided_by_id = actor.id
    request.decided_at = dt.datetime.now(dt.UTC)
    request.decision_reason = reason
    departments = [a.department.role_code for a in request.assessments]
    if not approve:
        request.status = "rejected"
        audit.record(
            session, actor, "review_change_request", request.id, "reject", {"number": request.number}, reason, order.id
        )
        to: list[Recipient] = [ToUser(request.requested_by_id), *_to_roles(departments)]
        notify(
            session,
            CHANGE_DECIDED.name,
            to=to,
            order=order,
            context=_context(request, approved=False, decision_reason=reason, revision=None, new_delivery_date=None),
        )
        return request
    text = _decide_reason(request, reason)
    workflow = Workflow(registry, session)
    revision_number: int | None = None
    if request.kind == "cancel":
        request.status = "approved"
        workflow.apply(order, "cancel", "cancelled", actor, text, extra={"customer_notice": CHANGE_DECIDED.name})
    else:
        if not revisions.revisions_of(session, order.id):
            note = "confirmed" if order.status == "confirmed" else f"before change request {request.number}"
            revisions.keep(session, order, note, actor)
        _apply_lines(session, order, request.content or {})
        revise_order(session, actor, order, _header_values(order, request), action=REVISE_ACTION, reason=text)
        revision = revisions.keep(session, order, f"change request {request.number}", actor)
        request.revision_id = revision.id
        revision_number = revision.number
        request.status = "approved"
        target = request.rewind_to
        reachable = {s.key for s in rewind_choices(registry, session, order)}
        if target and target != order.step and target in reachable:
            workflow.apply(order, REVISE_ACTION, target, actor, text, extra={"customer_notice": CHANGE_DECIDED.name})
    audit.record(
        session,
        actor,
        "review_change_request",
        request.id,
        "approve",
        {"number": request.number, "kind": request.kind, "revision": revision_number, "step": order.step},
        reason,
        order.id,
    )
    everyone = [d.role_code for d in affected_departments(session, "cancel", set())]
    context = _context(
        request,
        approved=True,
        decision_reason=reason,
        revision=revision_number,
        new_delivery_date=request.new_delivery_date,
    )
    notify(
        session,
        CHANGE_DECIDED.name,
        to=[ToUser(request.requested_by_id), *_to_roles([*departments, *everyone]), ToCustomer(order.customer_id)],
        order=order,
        context=context,
        dedupe_key=f"review.change_decided:{request.id}",
    )
    return request


def withdraw(session: Session, actor: User, request: ReviewChangeRequest, *, reason: str) -> ReviewChangeRequest:
    """The requester (or an approver) withdraws an open request; the reason is kept."""
    if request.requested_by_id != actor.id and not actor.can(CHANGES_APPROVE):
        raise ReviewError("forbidden", N_("Only the requester or an approver may withdraw a change request."), 403)
    order = _order_of(session, request)
    if not may_see_order(session, actor, order):
        raise NotFound("order", order.id)
    if request.status not in OPEN_STATUSES:
        raise ReviewError("not_open", N_("Change request %(number)s is already decided."), 409, number=request.number)
    reason = (reason or "").strip()
    if not reason:
        raise ReviewError(
            "reason_required", N_("Say why the request is withdrawn."), 422, details={"reason": [REQUIRED]}
        )
    request.status = "withdrawn"
    request.decided_by_id = actor.id
    request.decided_at = dt.datetime.now(dt.UTC)
    request.decision_reason = reason[:1000]
    audit.record(
        session, actor, "review_change_request", request.id, "withdraw", {"number": request.number}, reason, order.id
    )
    return request
