"""Screens of collection (BL-4, BL-7): the dunning board, the event log, the ladder, statements.

- "Dunning" (``/billing/dunning``): customers with dues overdue (or whose reminder day has
  come) in the user's scope — days overdue, the last step sent, the next step and its
  date, pauses (add and end them), late interest charged; finance runs the ladder now.
- The event log (``/billing/dunning/events``) with each formal letter's PDF.
- The ladder (``/billing/dunning/levels``): add, change, deactivate or delete levels.
- The statement of account (``/billing/customers/<id>/statement`` and ``.pdf``).
- Charging late interest on an invoice (``POST /billing/invoices/<id>/interest``).

The services (:mod:`plugins.billing.dunning`, :mod:`plugins.billing.interest`,
:mod:`plugins.billing.dunning_documents`) check permissions and scope; refusals are
flashed in the reader's language.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import NotFound as HttpNotFound

from core.clock import company_now
from core.contrib import MenuItem
from core.labels import N_
from core.services import ServiceError
from core.views.common import abort_for, current_actor, paginate, permission_required, safe_target
from core.web import db
from plugins.billing import dunning, dunning_documents, flow, interest
from plugins.billing.errors import BillingError
from plugins.billing.models import (
    DUNNING_KINDS,
    PAUSE_KINDS,
    BillingDunningEvent,
    BillingInvoice,
)
from plugins.billing.views import bp

MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Dunning"),
        "billing.dunning_board",
        permission=flow.INVOICES_READ,
        order=560,
        icon="envelope-exclamation",
        plugin="billing",
    ),
)


def _flash_refusal(exc: ServiceError) -> None:
    abort_for(exc)
    flash(exc.localized() if isinstance(exc, BillingError) else exc.message, "danger")


def _date(name: str, default: dt.date | None = None) -> dt.date | None:
    raw = (request.values.get(name) or "").strip()
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        return None


def _int(name: str) -> int | None:
    raw = (request.values.get(name) or "").strip()
    return int(raw) if raw.isdigit() else None


def _back(default: str) -> Any:
    return redirect(safe_target(request.form.get("next"), default))


@bp.get("/dunning", endpoint="dunning_board")
@permission_required(flow.INVOICES_READ)
def dunning_board() -> str:
    """The dunning board: overdue dues by customer, their ladder steps and pauses."""
    session, actor = db(), current_actor()
    today = company_now().date()
    customers = dunning.board(session, actor, today)
    return render_template(
        "billing/dunning_board.html",
        customers=customers,
        today=today,
        pause_kinds=PAUSE_KINDS,
        dunning_kinds=DUNNING_KINDS,
        may_manage=actor.can(flow.DUNNING_MANAGE),
        interest_enabled=interest.enabled(session),
        title=_("Dunning"),
    )


@bp.post("/dunning/run", endpoint="dunning_run")
@permission_required(flow.DUNNING_MANAGE)
def dunning_run() -> Any:
    """Finance's "Run now": climb the ladder for today."""
    session, actor = db(), current_actor()
    try:
        count = dunning.run_now(session, actor)
    except ServiceError as exc:
        session.rollback()
        _flash_refusal(exc)
    else:
        session.commit()
        flash(_("Dunning run: %(count)s notices sent.", count=count), "success")
    return redirect(url_for("billing.dunning_board"))


@bp.post("/dunning/pauses", endpoint="dunning_pause_add")
@permission_required(flow.DUNNING_MANAGE)
def dunning_pause_add() -> Any:
    """Pause dunning of a customer or one of its invoices (dispute, promise to pay)."""
    session, actor = db(), current_actor()
    customer_id = _int("customer_id")
    if customer_id is None:
        raise HttpNotFound()
    until = _date("until")
    if until is None and (request.form.get("until") or "").strip():
        flash(_("The date is not valid."), "danger")
        return _back(url_for("billing.dunning_board"))
    try:
        dunning.pause_dunning(
            session,
            actor,
            customer_id,
            request.form.get("kind", ""),
            request.form.get("note", ""),
            invoice_id=_int("invoice_id"),
            until=until,
        )
    except ServiceError as exc:
        session.rollback()
        _flash_refusal(exc)
    else:
        session.commit()
        flash(_("Dunning paused."), "success")
    return _back(url_for("billing.dunning_board"))


@bp.post("/dunning/pauses/<int:pause_id>/end", endpoint="dunning_pause_end")
@permission_required(flow.DUNNING_MANAGE)
def dunning_pause_end(pause_id: int) -> Any:
    """End a pause: dunning resumes at the next run."""
    session, actor = db(), current_actor()
    try:
        dunning.end_pause(session, actor, pause_id, request.form.get("note", ""))
    except ServiceError as exc:
        session.rollback()
        _flash_refusal(exc)
    else:
        session.commit()
        flash(_("The pause has ended; dunning resumes at the next run."), "success")
    return _back(url_for("billing.dunning_board"))


@bp.get("/dunning/events", endpoint="dunning_events")
@permission_required(flow.INVOICES_READ)
def dunning_events() -> str:
    """The log of dunning steps sent, newest first, with the letters."""
    session, actor = db(), current_actor()
    customer_id = _int("customer_id")
    args = {"customer_id": customer_id} if customer_id else {}
    page = paginate(
        session,
        dunning.events_query(actor, customer_id=customer_id),
        sortable={"sent_at": BillingDunningEvent.sent_at, "open_amount": BillingDunningEvent.open_amount},
        default_sort="-sent_at",
        endpoint="billing.dunning_events",
        args=args,
        tie_breaker=BillingDunningEvent.id,
    )
    invoices = {
        inv.id: inv
        for inv in session.query(BillingInvoice).filter(BillingInvoice.id.in_([e.invoice_id for e in page.rows]))
    }
    from core.models import Customer

    customers = {c.id: c for c in session.query(Customer).filter(Customer.id.in_([e.customer_id for e in page.rows]))}
    return render_template(
        "billing/dunning_events.html",
        page=page,
        invoices=invoices,
        customers=customers,
        levels={level.id: level for level in dunning.levels(session)},
        dunning_kinds=DUNNING_KINDS,
        title=_("Dunning log"),
    )


@bp.get("/dunning/events/<int:event_id>/letter.pdf", endpoint="dunning_letter_pdf")
@permission_required(flow.INVOICES_READ)
def dunning_letter_pdf(event_id: int) -> Response:
    """The formal dunning letter (催款函) of a step sent, as archived (or in ``?lang=``)."""
    session, actor = db(), current_actor()
    language = request.args.get("lang") or None
    try:
        name, pdf = dunning_documents.letter_pdf(session, actor, event_id, language)
    except ServiceError as exc:
        abort_for(exc)
        raise HttpNotFound() from None
    return _pdf(pdf, name)


def _pdf(data: bytes, filename: str) -> Response:
    from urllib.parse import quote

    fallback = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in filename)
    return Response(
        data,
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


@bp.get("/dunning/levels", endpoint="dunning_levels")
@permission_required(flow.SETTINGS_MANAGE)
def dunning_levels() -> str:
    """The dunning ladder: its levels, a form to add one."""
    session = db()
    return render_template(
        "billing/dunning_levels.html",
        levels=dunning.levels(session),
        dunning_kinds=DUNNING_KINDS,
        title=_("Dunning ladder"),
    )


@bp.post("/dunning/levels", endpoint="dunning_level_add")
@permission_required(flow.SETTINGS_MANAGE)
def dunning_level_add() -> Any:
    """Add a level to the ladder."""
    return _save_level(None)


@bp.post("/dunning/levels/<int:level_id>", endpoint="dunning_level_save")
@permission_required(flow.SETTINGS_MANAGE)
def dunning_level_save(level_id: int) -> Any:
    """Change a level of the ladder."""
    return _save_level(level_id)


def _save_level(level_id: int | None) -> Any:
    session, actor = db(), current_actor()
    values: dict[str, Any] = {
        "code": request.form.get("code", ""),
        "days": request.form.get("days", ""),
        "kind": request.form.get("kind", ""),
        "letter": request.form.get("letter") == "on",
        "notify_sales": request.form.get("notify_sales") == "on",
        "active": request.form.get("active") == "on",
    }
    try:
        dunning.save_level(session, actor, values, level_id)
    except ServiceError as exc:
        session.rollback()
        _flash_refusal(exc)
    else:
        session.commit()
        flash(_("The dunning ladder was saved."), "success")
    return redirect(url_for("billing.dunning_levels"))


@bp.post("/dunning/levels/<int:level_id>/delete", endpoint="dunning_level_delete")
@permission_required(flow.SETTINGS_MANAGE)
def dunning_level_delete(level_id: int) -> Any:
    """Delete a level never sent."""
    session, actor = db(), current_actor()
    try:
        dunning.delete_level(session, actor, level_id)
    except ServiceError as exc:
        session.rollback()
        _flash_refusal(exc)
    else:
        session.commit()
        flash(_("The level was deleted."), "success")
    return redirect(url_for("billing.dunning_levels"))


def _period() -> tuple[dt.date, dt.date] | None:
    today = company_now().date()
    end = _date("end", today)
    start = _date("start", today.replace(day=1) if end is None else (end or today).replace(day=1))
    if start is None or end is None:
        return None
    return start, end


@bp.get("/customers/<int:customer_id>/statement", endpoint="statement")
@permission_required(flow.INVOICES_READ)
def statement_screen(customer_id: int) -> Any:
    """The statement of account (对账单) of a customer for a period, with the ledger check."""
    session, actor = db(), current_actor()
    period = _period()
    if period is None:
        flash(_("The date is not valid."), "danger")
        today = company_now().date()
        period = (today.replace(day=1), today)
    try:
        result = dunning_documents.statement(session, actor, customer_id, *period)
    except ServiceError as exc:
        _flash_refusal(exc)
        today = company_now().date()
        result = dunning_documents.statement(session, actor, customer_id, today.replace(day=1), today)
    return render_template(
        "billing/dunning_statement.html",
        statement=result,
        entry_kinds=dunning_documents.ENTRY_KINDS,
        title=_("Statement of account"),
    )


@bp.get("/customers/<int:customer_id>/statement.pdf", endpoint="statement_pdf")
@permission_required(flow.INVOICES_READ)
def statement_pdf(customer_id: int) -> Response:
    """The statement of account as PDF (``?start=&end=&lang=``)."""
    session, actor = db(), current_actor()
    period = _period()
    if period is None:
        raise HttpNotFound()
    try:
        result = dunning_documents.statement(session, actor, customer_id, *period)
    except ServiceError as exc:
        abort_for(exc)
        flash(exc.localized() if isinstance(exc, BillingError) else exc.message, "danger")
        return redirect(url_for("billing.statement", customer_id=customer_id))  # type: ignore[return-value]
    language = request.args.get("lang") or None
    if language not in (None, "zh_CN", "en"):
        language = None
    from core.settings import session_registry

    pdf = dunning_documents.render_statement_pdf(session, session_registry(session), result, language)
    return _pdf(pdf, dunning_documents.statement_filename(result))


@bp.post("/invoices/<int:invoice_id>/interest", endpoint="charge_interest")
@permission_required(flow.DUNNING_MANAGE)
def charge_interest(invoice_id: int) -> Any:
    """Charge the late interest due on an invoice up to a date (default today)."""
    session, actor = db(), current_actor()
    until = _date("until", company_now().date())
    if until is None:
        flash(_("The date is not valid."), "danger")
        return _back(url_for("billing.dunning_board"))
    try:
        charge = interest.charge_interest(session, actor, invoice_id, until)
    except ServiceError as exc:
        session.rollback()
        _flash_refusal(exc)
    else:
        session.commit()
        if charge is not None:
            flash(_("Late interest of %(amount)s charged.", amount=f"{charge.amount:,.2f}"), "success")
    return _back(url_for("billing.dunning_board"))
