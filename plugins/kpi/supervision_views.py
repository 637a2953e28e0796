"""Supervision screens (KP-5): monthly samples, the checklist of each sampled order, findings.

* ``/kpi/supervision/samples`` (``kpi.samples``) — every month's sample with its progress;
  "draw now" for a past month (``kpi.supervision.manage``, asks first);
* ``/kpi/supervision/samples/<id>`` (``kpi.sample``) — the sampled orders, each with its
  checklist: what the system found, a passed/failed choice and a note per point;
* ``/kpi/supervision/findings`` (``kpi.findings``) — findings filtered by status, owner and
  overdue, exportable (CSV/XLSX); the owner of a finding sees their own even without
  ``kpi.supervision.read``; ``/findings/<id>`` to correct, close or reopen one;
  ``/findings/new`` to record one.

Thin views over :mod:`plugins.kpi.supervision`; refusals are flashed in the reader's language.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from core.contrib import MenuItem
from core.labels import N_
from core.models import Order, User
from core.security.scopes import order_visible
from core.services import ServiceError
from core.views.common import abort_for, current_actor, paginate, permission_required, query_args
from core.web import db
from plugins.kpi import exports, flow, supervision
from plugins.kpi.errors import KpiError
from plugins.kpi.models import CHECK_ITEMS, FINDING_STATUSES, KpiFinding, KpiSample, KpiSampleOrder
from plugins.kpi.views import bp

MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Supervision samples"),
        "kpi.samples",
        permission=flow.SUPERVISION_READ,
        order=60,
        icon="clipboard-check",
        plugin="kpi",
    ),
    MenuItem(
        N_("Supervision findings"),
        "kpi.findings",
        permission=flow.SUPERVISION_READ,
        order=61,
        icon="exclamation-diamond",
        plugin="kpi",
    ),
)

_VERDICT = re.compile(r"^passed-(\d+)$")


def _message(exc: ServiceError) -> str:
    return exc.localized() if isinstance(exc, KpiError) else exc.message


def _refuse(exc: ServiceError) -> None:
    db().rollback()
    abort_for(exc)
    flash(_message(exc), "danger")


def _date(text: str | None) -> dt.date | None:
    raw = (text or "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise KpiError(
            "invalid", N_("%(value)s is not a date."), 422, {"due_date": ["Not a date."]}, value=raw
        ) from None


def _int(text: str | None) -> int | None:
    raw = (text or "").strip()
    return int(raw) if raw.isdigit() else None


# --- samples ------------------------------------------------------------------------------


@bp.get("/supervision/samples")
@permission_required(flow.SUPERVISION_READ)
def samples() -> str:
    """Every month's sample, newest first, with how far its checking is."""
    session = db()
    page = paginate(
        session,
        supervision.samples_query(current_actor()),
        sortable={"month": KpiSample.month},
        default_sort="-month",
        endpoint="kpi.samples",
        args={},
    )
    today = supervision.company_today()
    return render_template(
        "kpi/supervision_samples.html",
        page=page,
        progress=supervision.progress(session, [s.id for s in page.rows]),
        can_manage=current_actor().can(flow.SUPERVISION_MANAGE),
        default_month=supervision.previous_month(today).strftime("%Y-%m"),
    )


@bp.post("/supervision/samples")
@permission_required(flow.SUPERVISION_MANAGE)
def sample_draw() -> Response:
    """Draw a month's sample now (the job does it on the 1st)."""
    session = db()
    month = supervision.parse_month(request.form.get("month"))
    size_text = (request.form.get("size") or "").strip()
    try:
        if month is None:
            raise KpiError("invalid", N_("Give the first day of a month."), 422, {"month": ["Not a month."]})
        size: int | None = None
        if size_text:
            if not size_text.isdigit():
                raise KpiError(
                    "invalid", N_("The sample size must be a whole number from 1 to 500."), 422, {"size": ["1 to 500."]}
                )
            size = int(size_text)
        sample = supervision.draw_sample(session, current_actor(), month, size)
        session.commit()
    except ServiceError as exc:
        _refuse(exc)
        return redirect(url_for("kpi.samples"))
    flash(
        _("%(count)s orders of %(month)s were sampled.", count=sample.size, month=sample.month.strftime("%Y-%m")),
        "success",
    )
    return redirect(url_for("kpi.sample", sample_id=sample.id))


@bp.get("/supervision/samples/<int:sample_id>")
@permission_required(flow.SUPERVISION_READ)
def sample(sample_id: int) -> str:
    """The sampled orders of a month with their checklists."""
    session = db()
    actor = current_actor()
    try:
        found = supervision.get_sample(session, actor, sample_id)
    except ServiceError as exc:
        abort_for(exc)
        raise
    rows = supervision.visible_sample_orders(session, actor, found)
    findings: dict[int, list[KpiFinding]] = {}
    ids = [so.id for so, _order in rows]
    if ids:
        for finding in session.scalars(
            supervision.findings_query(actor).where(KpiFinding.sample_order_id.in_(ids)).order_by(None)
        ):
            findings.setdefault(finding.sample_order_id or 0, []).append(finding)
    return render_template(
        "kpi/supervision_sample.html",
        sample=found,
        rows=rows,
        findings=findings,
        items=CHECK_ITEMS,
        statuses=FINDING_STATUSES,
        found_lines=lambda text: supervision.found_lines(text, _),
        can_manage=actor.can(flow.SUPERVISION_MANAGE),
    )


@bp.post("/supervision/sampled/<int:sample_order_id>/checks")
@permission_required(flow.SUPERVISION_MANAGE)
def sample_checks(sample_order_id: int) -> Response:
    """Save the verdicts (``passed-<check id>`` = 1 or 0) and notes of one sampled order's checklist."""
    session = db()
    actor = current_actor()
    sample_order = session.scalar(
        select(KpiSampleOrder).where(
            KpiSampleOrder.id == sample_order_id, order_visible(KpiSampleOrder.order_id, actor)
        )
    )
    if sample_order is None:
        abort(404)
    back = url_for("kpi.sample", sample_id=sample_order.sample_id, _anchor=f"so-{sample_order_id}")
    own = {c.id for c in sample_order.checks}
    saved = 0
    try:
        for key, value in request.form.items():
            match = _VERDICT.match(key)
            if not match or value not in ("1", "0"):
                continue
            check_id = int(match.group(1))
            if check_id not in own:
                abort(404)
            supervision.record_check(session, actor, check_id, value == "1", request.form.get(f"note-{check_id}", ""))
            saved += 1
        session.commit()
    except ServiceError as exc:
        _refuse(exc)
        return redirect(back)
    if saved:
        flash(_("%(count)s checks were saved.", count=saved), "success")
    else:
        flash(_("Choose passed or failed."), "warning")
    return redirect(back)


# --- findings ---------------------------------------------------------------------------


def _filters() -> dict[str, Any]:
    args = query_args(*supervision.FINDING_FILTERS)
    status = args.get("status")
    return {
        "status": status if status in FINDING_STATUSES else None,
        "owner_id": _int(args.get("owner_id")),
        "overdue": args.get("overdue") == "1",
    }


def _staff(session: Any) -> list[User]:
    return list(
        session.scalars(select(User).where(User.active.is_(True), User.customer_id.is_(None)).order_by(User.name))
    )


def _names(session: Any, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u.name for u in session.scalars(select(User).where(User.id.in_(wanted)))}


def _orders(session: Any, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(Order.id, Order.number).where(Order.id.in_(wanted))).tuples().all())


@bp.get("/supervision/findings")
@permission_required()
def findings() -> str:
    """Findings (yours only, unless you read supervision), filtered by status, owner, overdue."""
    session = db()
    actor = current_actor()
    filters = _filters()
    page = paginate(
        session,
        supervision.findings_query(actor, **filters),
        sortable={"id": KpiFinding.id, "due": KpiFinding.due_date, "status": KpiFinding.status},
        default_sort="-id",
        endpoint="kpi.findings",
        args=query_args(*supervision.FINDING_FILTERS),
        tie_breaker=KpiFinding.id,
    )
    reader = supervision.can_read_findings(actor)
    return render_template(
        "kpi/supervision_findings.html",
        page=page,
        filters=filters,
        statuses=FINDING_STATUSES,
        items=CHECK_ITEMS,
        owners=_staff(session) if reader else [],
        names=_names(session, {f.owner_id for f in page.rows}),
        orders=_orders(session, {f.order_id for f in page.rows}),
        today=supervision.company_today(),
        can_manage=actor.can(flow.SUPERVISION_MANAGE),
        reader=reader,
    )


@bp.get("/supervision/findings/export.<fmt>")
@permission_required()
def findings_export(fmt: str) -> Response:
    """The filtered findings as CSV or XLSX."""
    if fmt not in ("csv", "xlsx"):
        abort(404)
    session = db()
    actor = current_actor()
    rows = list(session.scalars(supervision.findings_query(actor, **_filters())))
    names = _names(session, {f.owner_id for f in rows} | {f.closed_by_id for f in rows})
    orders = _orders(session, {f.order_id for f in rows})
    today = supervision.company_today()
    header = [
        _("Finding"),
        _("Order"),
        _("Checklist point"),
        _("Description"),
        _("Owner"),
        _("Correction deadline"),
        _("Status"),
        _("Overdue"),
        _("Correction"),
        _("Corrected"),
        _("Closed by"),
        _("Closed"),
    ]

    def lines() -> Iterator[list[Any]]:
        for f in rows:
            yield [
                f.id,
                orders.get(f.order_id or 0, ""),
                _(CHECK_ITEMS[f.item]) if f.item in CHECK_ITEMS else "",
                f.description,
                names.get(f.owner_id or 0, ""),
                f.due_date.isoformat(),
                _(FINDING_STATUSES.get(f.status, f.status)),
                _("Yes") if supervision.is_overdue(f, today) else "",
                f.correction,
                f.corrected_at.isoformat(timespec="seconds") if f.corrected_at else "",
                names.get(f.closed_by_id or 0, ""),
                f.closed_at.isoformat(timespec="seconds") if f.closed_at else "",
            ]

    filename = f"kpi-findings-{today.isoformat()}.{fmt}"
    table = list(lines())  # read now: a streamed download outlives the request's session
    if fmt == "xlsx":
        return exports.xlsx_response(filename, header, table)
    return exports.csv_response(filename, header, table)


@bp.route("/supervision/findings/new", methods=["GET", "POST"])
@permission_required(flow.SUPERVISION_MANAGE)
def finding_new() -> Any:
    """Record a finding: what, for which (sampled) order, who corrects it and by when."""
    session = db()
    actor = current_actor()
    source = request.form if request.method == "POST" else request.args
    values = {
        "sample_order_id": source.get("sample_order_id", ""),
        "order_id": source.get("order_id", ""),
        "item": source.get("item", ""),
        "description": source.get("description", ""),
        "owner_id": source.get("owner_id", ""),
        "due_date": source.get("due_date", ""),
    }
    error = ""
    status = 200
    if request.method == "POST":
        try:
            finding = supervision.open_finding(
                session,
                actor,
                sample_order_id=_int(values["sample_order_id"]),
                order_id=_int(values["order_id"]),
                item=values["item"],
                description=values["description"],
                owner_id=_int(values["owner_id"]),  # type: ignore[arg-type]
                due_date=_date(values["due_date"]),
            )
            session.commit()
        except ServiceError as exc:
            session.rollback()
            abort_for(exc)
            error, status = _message(exc), exc.status
        else:
            flash(_("Finding %(id)s was recorded and its owner told.", id=finding.id), "success")
            return redirect(url_for("kpi.finding", finding_id=finding.id))
    order_number = ""
    order_id = _int(values["order_id"])
    if order_id is None and _int(values["sample_order_id"]) is not None:
        so = session.scalar(
            select(KpiSampleOrder).where(
                KpiSampleOrder.id == _int(values["sample_order_id"]), order_visible(KpiSampleOrder.order_id, actor)
            )
        )
        order_id = so.order_id if so else None
    if order_id is not None:
        order_number = (
            session.scalar(select(Order.number).where(Order.id == order_id, order_visible(Order.id, actor))) or ""
        )
    return (
        render_template(
            "kpi/supervision_finding_form.html",
            values=values,
            error=error,
            items=CHECK_ITEMS,
            owners=_staff(session),
            order_number=order_number,
        ),
        status,
    )


@bp.get("/supervision/findings/<int:finding_id>")
@permission_required()
def finding(finding_id: int) -> str:
    """A finding with its history and the forms to correct, close or reopen it."""
    session = db()
    actor = current_actor()
    try:
        found = supervision.get_finding(session, actor, finding_id)
    except ServiceError as exc:
        abort_for(exc)
        raise
    corrector = supervision.corrected_by(session, found.id)
    names = _names(session, {found.owner_id, found.created_by_id, found.closed_by_id, corrector})
    is_manager = actor.can(flow.SUPERVISION_MANAGE)
    return render_template(
        "kpi/supervision_finding.html",
        finding=found,
        names=names,
        corrector=corrector,
        order_number=_orders(session, {found.order_id}).get(found.order_id or 0, ""),
        items=CHECK_ITEMS,
        statuses=FINDING_STATUSES,
        overdue=supervision.is_overdue(found),
        can_correct=found.status == "open" and (found.owner_id == actor.id or is_manager),
        can_close=found.status == "corrected" and is_manager and actor.id not in (found.owner_id, corrector),
        can_reopen=found.status != "open" and is_manager,
    )


def _finding_action(finding_id: int, run: Any, done: str) -> Response:
    session = db()
    try:
        run(session, current_actor())
        session.commit()
    except ServiceError as exc:
        _refuse(exc)
    else:
        flash(done, "success")
    return redirect(url_for("kpi.finding", finding_id=finding_id))


@bp.post("/supervision/findings/<int:finding_id>/correct")
@permission_required()
def finding_correct(finding_id: int) -> Response:
    """Record the correction (the owner, or a supervisor)."""
    correction = request.form.get("correction", "")
    return _finding_action(
        finding_id,
        lambda s, a: supervision.correct_finding(s, a, finding_id, correction),
        _("The correction was recorded; a supervisor will verify it."),
    )


@bp.post("/supervision/findings/<int:finding_id>/close")
@permission_required(flow.SUPERVISION_MANAGE)
def finding_close(finding_id: int) -> Response:
    """Close a corrected finding after verifying it (not its owner nor its corrector)."""
    note = request.form.get("note", "")
    return _finding_action(
        finding_id, lambda s, a: supervision.close_finding(s, a, finding_id, note), _("The finding was closed.")
    )


@bp.post("/supervision/findings/<int:finding_id>/reopen")
@permission_required(flow.SUPERVISION_MANAGE)
def finding_reopen(finding_id: int) -> Response:
    """Send a corrected or closed finding back to its owner with a reason and a new deadline."""
    reason = request.form.get("reason", "")
    due = request.form.get("due_date", "")
    return _finding_action(
        finding_id,
        lambda s, a: supervision.reopen_finding(s, a, finding_id, reason, _date(due)),
        _("The finding was reopened and its owner told."),
    )
