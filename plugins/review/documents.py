"""Review's printable documents: review sheet, quotation, change request form.

Why: the procedures keep paper records of a review — the order review sheet (订单评审表)
every department signs, the quotation (报价单) with its costs and margins, and the order
change request form (订单变更申请表) (RV-1 … RV-4, RV-8). They print through core's
documents (WeasyPrint, company letterhead, Chinese or English) from the order page's
document list and ``GET /api/v1/orders/{id}/documents/{type}``; all three are internal
(``for_customer=False``). The review sheet and the change request form need
``review.tasks.read``, the quotation ``review.margins.read`` (it shows costs).

Each ``*_context(session, order)`` gathers what its template prints; codes stay msgids
and templates translate them with ``tr(msgid, language)`` (core's ``_`` would read a
``%`` in a label as a placeholder). An order without a review, quotation or change
request still prints, saying so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.support import NullTranslations
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from core.contrib import DocumentType
from core.labels import N_
from core.models import Order, OrderTransition, Role, User
from core.settings import session_registry
from plugins.review import flow
from plugins.review.figures import FIGURES, RISK_LEVELS
from plugins.review.models import (
    CHANGE_KINDS,
    CHANGE_REQUEST_KINDS,
    CHANGE_REQUEST_STATUSES,
    QUOTATION_LINE_KINDS,
    SHEET_OUTCOMES,
    SHEET_STATUSES,
    TASK_STATUSES,
    VERDICTS,
    ReviewChangeAssessment,
    ReviewChangeRequest,
    ReviewNegotiation,
    ReviewQuotation,
    ReviewSheet,
    ReviewSupervision,
    ReviewTask,
    ReviewTemplate,
)

#: Labels of the parts of a change request's ``content`` (others print under their key).
CONTENT_LABELS = {
    "lines": N_("Lines"),
    "requested_date": N_("Requested date"),
    "ship_to": N_("Ship to"),
    "specification": N_("Specification"),
    "scope": N_("Scope"),
    "payment_method": N_("Payment method"),
    "note": N_("Note"),
}
#: Labels of the fields of a changed line and of a changed address.
CONTENT_FIELD_LABELS = {
    "line_id": N_("Line"),
    "product": N_("Product"),
    "quantity": N_("Quantity"),
    "unit_price": N_("Unit price"),
    "discount": N_("Discount"),
    "description": N_("Description"),
    "contact": N_("Contact"),
    "phone": N_("Phone"),
    "province": N_("Province"),
    "city": N_("City"),
    "address": N_("Address"),
}
#: The decisions taken on a review, as the sheet prints them (step left → how).
DECISION_STEPS = (flow.FINAL_APPROVAL, flow.PRESIDENT, flow.APPEAL, flow.CONSOLIDATION)


def _translator(session: Session) -> Callable[[str | None, str], str]:
    """``tr(msgid, language)``: a label in the document's language (core's and plugins' catalogues)."""
    from core.documents import translations_for

    registry = session_registry(session)
    loaded: dict[str, NullTranslations] = {}

    def tr(msgid: str | None, language: str) -> str:
        if not msgid:
            return ""
        if language not in loaded:
            loaded[language] = translations_for(registry, language)
        return str(loaded[language].gettext(msgid))

    return tr


def _users(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u.name for u in session.scalars(select(User).where(User.id.in_(wanted)))}


def _step_label(session: Session, key: str | None) -> str:
    """The msgid of step ``key`` (its key when no enabled plugin has it)."""
    if not key:
        return ""
    step = session_registry(session).steps.get(key)
    return step.label if step is not None else key


def _decimal(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def figure_rows(kind: str, figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A verdict's figures as printable rows: label (msgid), type and the value to format.

    Money and percentages become Decimals, dates dates, choices their label's msgid;
    figures the department kind does not know (an older form) print as text.
    """
    rows: list[dict[str, Any]] = []
    known = {f.name: f for f in FIGURES.get(kind, ())}
    for figure in FIGURES.get(kind, ()):
        if figure.name not in figures:
            continue
        raw = figures[figure.name]
        value: Any = raw
        shown = figure.type
        if figure.type in ("money", "percent"):
            value = _decimal(raw)
            shown = figure.type if value is not None else "text"
            value = value if value is not None else raw
        elif figure.type == "date":
            try:
                value = dt.date.fromisoformat(str(raw))
            except ValueError:
                shown = "text"
        elif figure.type == "choice":
            value = dict(figure.choices).get(str(raw), RISK_LEVELS.get(str(raw), str(raw)))
        elif figure.type == "bool":
            value = bool(raw)
        rows.append({"label": figure.label, "type": shown, "value": value})
    for name, raw in figures.items():
        if name not in known:
            rows.append({"label": name, "type": "text", "value": str(raw)})
    return rows


# --- 订单评审表 ------------------------------------------------------------------------------


def _decisions(session: Session, order: Order, since: dt.datetime | None) -> list[OrderTransition]:
    """The moves of ``order`` out of the decision steps (approval, president, appeal…) since ``since``."""
    stmt = select(OrderTransition).where(
        OrderTransition.order_id == order.id, OrderTransition.from_step.in_(DECISION_STEPS)
    )
    if since is not None:
        stmt = stmt.where(OrderTransition.at >= since)
    return list(session.scalars(stmt.order_by(OrderTransition.id)))


def review_sheet_context(session: Session, order: Order) -> dict[str, Any]:
    """What the review sheet prints: the latest round's tasks and verdicts, decisions, earlier rounds."""
    sheets = list(
        session.scalars(
            select(ReviewSheet)
            .where(ReviewSheet.order_id == order.id)
            .options(selectinload(ReviewSheet.tasks).selectinload(ReviewTask.verdicts))
            .order_by(ReviewSheet.round.desc())
        )
    )
    sheet = sheets[0] if sheets else None
    tiers: list[dict[str, Any]] = []
    negotiations: list[ReviewNegotiation] = []
    decisions: list[OrderTransition] = []
    template = None
    approver = ""
    user_ids: list[int | None] = [order.owner_id]
    if sheet is not None:
        template = session.get(ReviewTemplate, sheet.template_id) if sheet.template_id else None
        for tier in sorted({task.tier for task in sheet.tasks}):
            tasks = []
            for task in (t for t in sheet.tasks if t.tier == tier):
                kind = task.department.kind
                verdicts = [
                    {
                        "verdict": v,
                        "label": VERDICTS.get(v.verdict, v.verdict),
                        "figures": figure_rows(kind, v.figures or {}),
                    }
                    for v in task.verdicts
                ]
                user_ids += [v.decided_by_id for v in task.verdicts]
                tasks.append(
                    {
                        "task": task,
                        "department": task.department,
                        "status": TASK_STATUSES.get(task.status, task.status),
                        "verdicts": verdicts,
                    }
                )
            tiers.append({"tier": tier, "tasks": tasks})
        negotiations = list(
            session.scalars(
                select(ReviewNegotiation).where(ReviewNegotiation.sheet_id == sheet.id).order_by(ReviewNegotiation.id)
            )
        )
        user_ids += [n.by_id for n in negotiations]
        decisions = _decisions(session, order, sheet.opened_at)
        user_ids += [d.actor_id for d in decisions]
        if sheet.approver_role:
            role = session.scalar(select(Role).where(Role.code == sheet.approver_role))
            approver = role.name if role is not None else sheet.approver_role
    return {
        "tr": _translator(session),
        "sheet": sheet,
        "earlier_sheets": sheets[1:],
        "template": template,
        "tiers": tiers,
        "negotiations": negotiations,
        "change_kinds": CHANGE_KINDS,
        "decisions": decisions,
        "step_label_of": lambda key: _step_label(session, key),
        "action_label_of": lambda name: _action_label(session, name),
        "approver": approver,
        "supervised": session.get(ReviewSupervision, order.id),
        "sheet_statuses": SHEET_STATUSES,
        "sheet_outcomes": SHEET_OUTCOMES,
        "users": _users(session, user_ids),
    }


def _action_label(session: Session, name: str | None) -> str:
    """The msgid of workflow action ``name`` (its name when no enabled step has it)."""
    if not name:
        return ""
    for step in session_registry(session).steps.values():
        for action in step.actions:
            if action.name == name:
                return action.label
        for automatic, label in step.automatic:
            if automatic == name:
                return label
    return name


# --- 报价单 ---------------------------------------------------------------------------------


def quotation_context(session: Session, order: Order) -> dict[str, Any]:
    """What the quotation prints: the latest quotation's lines, totals, margins and flag; earlier ones."""
    from plugins.review.quotation import minima

    quotations = list(
        session.scalars(
            select(ReviewQuotation)
            .where(ReviewQuotation.order_id == order.id)
            .options(selectinload(ReviewQuotation.lines))
            .order_by(ReviewQuotation.number.desc())
        )
    )
    quotation = quotations[0] if quotations else None
    min_gross, min_profit = minima(session)
    return {
        "tr": _translator(session),
        "quotation": quotation,
        "earlier_quotations": quotations[1:],
        "line_kinds": QUOTATION_LINE_KINDS,
        "min_gross_margin": min_gross,
        "min_profit_margin": min_profit,
        "users": _users(session, [q.created_by_id for q in quotations]),
    }


# --- 订单变更申请表 --------------------------------------------------------------------------


def _plain(value: Any) -> str:
    """A content value as one line of text (dicts as ``key: value``; lists joined)."""
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items() if v not in (None, ""))
    if isinstance(value, list | tuple):
        return "; ".join(_plain(v) for v in value)
    return "" if value is None else str(value)


def content_rows(order: Order, content: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A request's ``content`` as (changed lines, other changes) to print.

    A changed line names the order line it changes (position and product) or a new
    product; its other fields print as label/value pairs. Other parts print as
    label (msgid) and text; an address prints its parts.
    """
    by_id = {line.id: line for line in order.lines}
    lines: list[dict[str, Any]] = []
    raw_lines = content.get("lines") or []
    for raw in raw_lines if isinstance(raw_lines, list) else []:
        if not isinstance(raw, Mapping):
            lines.append({"line": None, "product": "", "fields": [(N_("Description"), _plain(raw))]})
            continue
        line_id = raw.get("line_id")
        line = by_id.get(line_id) if isinstance(line_id, int) else None
        fields = [
            (CONTENT_FIELD_LABELS.get(str(k), str(k)), _plain(v))
            for k, v in raw.items()
            if k not in ("line_id", "product") and v not in (None, "")
        ]
        lines.append({"line": line, "product": _plain(raw.get("product") or ""), "fields": fields})
    others: list[dict[str, Any]] = []
    for key, value in content.items():
        if key == "lines" or value in (None, "", [], {}):
            continue
        if isinstance(value, Mapping):
            parts = [(CONTENT_FIELD_LABELS.get(str(k), str(k)), _plain(v)) for k, v in value.items() if v]
            others.append({"label": CONTENT_LABELS.get(key, key), "parts": parts})
        else:
            others.append({"label": CONTENT_LABELS.get(key, key), "text": _plain(value)})
    return lines, others


def change_request_context(session: Session, order: Order) -> dict[str, Any]:
    """What the change request form prints: each request of the order, oldest first."""
    requests = list(
        session.scalars(
            select(ReviewChangeRequest)
            .where(ReviewChangeRequest.order_id == order.id)
            .options(selectinload(ReviewChangeRequest.assessments).selectinload(ReviewChangeAssessment.department))
            .order_by(ReviewChangeRequest.number)
        )
    )
    user_ids: list[int | None] = []
    printed = []
    for request in requests:
        user_ids += [request.requested_by_id, request.decided_by_id]
        user_ids += [a.assessed_by_id for a in request.assessments]
        lines, others = content_rows(order, request.content or {})
        printed.append(
            {
                "request": request,
                "kind": CHANGE_REQUEST_KINDS.get(request.kind, request.kind),
                "status": CHANGE_REQUEST_STATUSES.get(request.status, request.status),
                "lines": lines,
                "others": others,
                "impact": [
                    (_step_label(session, step), str(text))
                    for step, text in (request.impact or {}).items()
                    if str(text or "").strip()
                ],
                "rewind_to": _step_label(session, request.rewind_to),
                "assessments": [
                    {"assessment": a, "verdict": VERDICTS.get(a.verdict, a.verdict) if a.verdict else ""}
                    for a in request.assessments
                ],
            }
        )
    return {"tr": _translator(session), "requests": printed, "users": _users(session, user_ids)}


DOCUMENTS: tuple[DocumentType, ...] = (
    DocumentType(
        "review_sheet",
        N_("Order review sheet"),
        "review/documents/review_sheet.html",
        flow.READ,
        context=review_sheet_context,
        for_customer=False,
    ),
    DocumentType(
        "quotation",
        N_("Quotation"),
        "review/documents/quotation.html",
        flow.MARGINS_READ,
        context=quotation_context,
        for_customer=False,
    ),
    DocumentType(
        "change_request",
        N_("Order change request form"),
        "review/documents/change_request.html",
        flow.READ,
        context=change_request_context,
        for_customer=False,
    ),
)
