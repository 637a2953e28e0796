"""The quotation screen (报价单): an order's latest quotation, its margins, and the edit form.

Why: sales, finance and engineering put an order's costs together while it is reviewed,
and everybody deciding on it sees whether the margins hold (RV-1, RV-2).

``/review/orders/<order_id>/quotation`` shows the latest quotation (``?number=N`` an
earlier one, read only) with its cost lines, and — for holders of
``review.margins.read`` — its totals and margins against the configured minima; a
quotation under them carries a red "below minimum" badge. Holders of
``review.quotation.manage`` edit the cost lines (kind, description, amount; an empty row
is dropped, "Add row" gives another) while the order is in department review,
consolidation or at the president. Reaching the page needs one of the two permissions
(403 without): a salesperson prepares costs without seeing the margins. An order outside
the user's data scope answers 404. Thin views over :mod:`plugins.review.quotation`.
"""

from __future__ import annotations

import re
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.exceptions import Forbidden, NotFound

from core.contrib import MenuItem
from core.models import Order, User
from core.services import ServiceError
from core.services.orders import get_order
from core.views.common import FieldErrors, current_actor, permission_required, screen_blueprint
from core.web import db, ordo
from plugins.review import flow
from plugins.review import quotation as quotes
from plugins.review.errors import ReviewError
from plugins.review.models import QUOTATION_LINE_KINDS, ReviewQuotation
from plugins.review.views import bp as screens

bp = screen_blueprint("review_quotation", __name__, url_prefix="/orders", template_folder="templates")
screens.register_blueprint(bp)

#: Menu entries of these screens: none (reached from the order panel and the sheet page).
MENU: list[MenuItem] = []

#: The rows posted by the form: ``kind-3``, ``description-3``, ``amount-3``.
_ROW_FIELD = re.compile(r"^(kind|description|amount)-(\d{1,4})$")
#: Blank rows offered below the lines (more with "Add row").
_BLANK_ROWS = 1


def _order(order_id: int) -> Order:
    try:
        return get_order(db(), current_actor(), order_id)
    except ServiceError as exc:
        raise NotFound() from exc


def _may_view(user: User) -> bool:
    return user.can(flow.MARGINS_READ) or user.can(flow.QUOTATION_MANAGE)


def _may_edit(user: User, order: Order) -> bool:
    return user.can(flow.QUOTATION_MANAGE) and order.step in quotes.EDITABLE_STEPS


def _rows_of(shown: ReviewQuotation | None) -> list[dict[str, str]]:
    if shown is None:
        return []
    return [{"kind": line.kind, "description": line.description, "amount": str(line.amount)} for line in shown.lines]


def _blank() -> dict[str, str]:
    return {"kind": "material", "description": "", "amount": ""}


def posted_rows() -> list[dict[str, str]]:
    """The form's rows in order, rows without description and amount left out."""
    found: dict[int, dict[str, str]] = {}
    for key, value in request.form.items():
        match = _ROW_FIELD.match(key)
        if match:
            found.setdefault(int(match.group(2)), {})[match.group(1)] = value.strip()
    rows = []
    for index in sorted(found):
        row = found[index]
        if not row.get("description") and not row.get("amount"):
            continue
        rows.append(
            {"kind": row.get("kind", ""), "description": row.get("description", ""), "amount": row.get("amount", "")}
        )
    return rows


def _errors(exc: ReviewError) -> FieldErrors:
    """The refusal's messages in the reader's language: per row and field, or general."""
    errors = FieldErrors()
    details = exc.details if isinstance(exc.details, dict) else {}
    lines = details.get("lines")
    if isinstance(lines, dict):
        for index, row in lines.items():
            errors.rows.setdefault("lines", {})[int(index)] = {
                str(name): [_(message) for message in messages] for name, messages in row.items()
            }
    for name in ("payment_terms", "note"):
        if name in details:
            errors.fields[name] = [_(message) for message in details[name]]
    if not errors.rows and not errors.fields:
        errors.general.append(exc.localized())
    return errors


def _render(
    order: Order,
    shown: ReviewQuotation | None,
    *,
    rows: list[dict[str, str]] | None = None,
    payment_terms: str | None = None,
    note: str | None = None,
    errors: FieldErrors | None = None,
    blank_rows: int = _BLANK_ROWS,
    status: int = 200,
) -> tuple[str, int]:
    session, actor = db(), current_actor()
    every = quotes.all_for(session, order.id)
    latest = every[0] if every else None
    editable = _may_edit(actor, order) and (shown is None or shown is latest)
    min_gross, min_profit = quotes.minima(session)
    form_rows = list(rows if rows is not None else _rows_of(shown))
    form_rows += [_blank() for _i in range(blank_rows if form_rows else max(blank_rows, 3))]
    return (
        render_template(
            "review/quotation/quotation.html",
            order=order,
            shown=shown,
            latest=latest,
            quotations=every,
            editable=editable,
            show_margins=actor.can(flow.MARGINS_READ),
            min_gross=min_gross,
            min_profit=min_profit,
            kinds=[(code, _(label)) for code, label in QUOTATION_LINE_KINDS.items()],
            kind_labels={code: _(label) for code, label in QUOTATION_LINE_KINDS.items()},
            step_name=_(_step_label(order.step)),
            rows=form_rows,
            payment_terms=payment_terms if payment_terms is not None else (shown.payment_terms if shown else ""),
            note=note if note is not None else (shown.note if shown else ""),
            errors=errors or FieldErrors(),
            max_description=quotes.MAX_DESCRIPTION,
            blank_rows=blank_rows,
        ),
        status,
    )


def _step_label(key: str) -> str:
    step = ordo().registry.steps.get(key)
    return step.label if step is not None else key


@bp.get("/<int:order_id>/quotation")
@login_required
def quotation(order_id: int) -> Any:
    """The order's latest quotation (or ``?number=N``), its margins and the edit form.

    Needs ``review.margins.read`` or ``review.quotation.manage`` (either; margins only
    with the first), so it declares no single permission.
    """
    actor = current_actor()
    if not _may_view(actor):
        raise Forbidden()
    order = _order(order_id)
    number = request.args.get("number", "")
    shown: ReviewQuotation | None
    if number:
        if not number.isdigit():
            raise NotFound()
        shown = next((q for q in quotes.all_for(db(), order.id) if q.number == int(number)), None)
        if shown is None:
            raise NotFound()
    else:
        shown = quotes.latest(db(), order.id)
    return _render(order, shown)


@bp.post("/<int:order_id>/quotation")
@permission_required(flow.QUOTATION_MANAGE)
def save(order_id: int) -> Any:
    """Save the edited cost lines (or, with "Add row", show one more blank row), then show the quotation."""
    session, actor = db(), current_actor()
    order = _order(order_id)
    rows = posted_rows()
    payment_terms = request.form.get("payment_terms", "")
    note = request.form.get("note", "")
    shown = quotes.latest(session, order.id)
    if request.form.get("add_row"):
        extra = request.form.get("blank_rows", "")
        blanks = min(int(extra) + 1, 20) if extra.isdigit() else _BLANK_ROWS + 1
        return _render(order, shown, rows=rows, payment_terms=payment_terms, note=note, blank_rows=blanks)
    try:
        saved = quotes.save(session, actor, order, lines=rows, payment_terms=payment_terms, note=note)
    except ReviewError as exc:
        session.rollback()
        if exc.status in (403, 404):
            abort(exc.status)
        order = _order(order_id)
        shown = quotes.latest(session, order.id)
        if exc.status == 409:
            flash(exc.localized(), "danger")
            return _render(order, shown, status=409)
        return _render(
            order, shown, rows=rows, payment_terms=payment_terms, note=note, errors=_errors(exc), status=exc.status
        )
    session.commit()
    if saved.below_minimum:
        flash(_("Quotation %(number)s saved; its margins are below the minimum.", number=saved.number), "warning")
    else:
        flash(_("Quotation %(number)s saved.", number=saved.number), "success")
    return redirect(url_for(".quotation", order_id=order.id))
