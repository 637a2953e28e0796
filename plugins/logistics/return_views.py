"""Return screens (退换货, LG-9): the list, a return's page with each stage's form, the request form, the PDF.

* ``/logistics/returns`` — the returns of the orders the user may see, filtered by
  status, searchable by return number, order number or customer; "Waiting for me"
  shows what the user's role has to do next (review, approve, receive, inspect).
* ``/logistics/returns/<id>`` — one return: its lines with requested, approved and
  received quantities and QC's dispositions; the form of the current stage, shown only
  to who may act (review → regional manager, decision → marketing director, receipt →
  warehouse, inspection → QC), the freight responsibility and the stamped form upload.
* ``/logistics/orders/<id>/returns/new`` — "Request a return": the order's lines with
  what may still be returned, a quantity, a reason and a detail per line.
* ``/logistics/returns/<id>/form.pdf`` — the return request form (退货申请单) with a box
  for the customer's stamp, in the reader's language (``?lang=zh_CN|en``).

Thin views over :mod:`plugins.logistics.returns`: a refusal is flashed and nothing
changes. The customer's own screens are in :mod:`plugins.logistics.portal_return_views`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as WerkzeugResponse

from core.contrib import MenuItem
from core.documents import (
    check_language,
    environment,
    html_to_pdf,
    logo_data_uri,
    order_company,
    reader_language,
    translations_for,
)
from core.labels import N_
from core.models import Customer, Order, OrderLine, User
from core.services import ServiceError
from core.services.orders import get_order
from core.views.common import abort_for, current_actor, paginate, permission_required, query_args
from core.views.labels import translate
from core.web import db, ordo
from plugins.logistics import flow, stock
from plugins.logistics import returns as service
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import (
    DISPOSITIONS,
    FREIGHT_PARTIES,
    QUALITY_REASONS,
    RETURN_REASONS,
    RETURN_STATUSES,
    LogisticsLocation,
    LogisticsReturn,
)
from plugins.logistics.views import bp

#: Menu entries of these screens.
MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Returns"),
        "logistics.returns",
        flow.STOCK_READ,
        order=68,
        icon="arrow-return-left",
        plugin="logistics",
    ),
)

_FILTERS = ("status", "q", "waiting")
#: Bootstrap colours of the return statuses.
STATUS_COLOURS = {
    "requested": "info",
    "reviewed": "primary",
    "approved": "success",
    "rejected": "danger",
    "received": "warning",
    "closed": "secondary",
}


# --- helpers shared with the portal --------------------------------------------------------


def error_text(exc: ServiceError) -> str:
    """A service's refusal in the reader's language."""
    if isinstance(exc, LogisticsError):
        return exc.localized()
    from core.attachments.views import refusal_text

    return refusal_text(exc)


def view_helpers() -> dict[str, Any]:
    """Labels and colours the return templates use."""
    return {
        "return_status_label": lambda code: translate(RETURN_STATUSES.get(code, code)),
        "return_status_colour": lambda code: STATUS_COLOURS.get(code, "secondary"),
        "reason_label": lambda code: translate(RETURN_REASONS.get(code, code)),
        "disposition_label": lambda code: translate(DISPOSITIONS.get(code, code)),
        "freight_label": lambda code: translate(FREIGHT_PARTIES.get(code, code)),
        "reasons": [(code, translate(label)) for code, label in RETURN_REASONS.items()],
        "quality_reasons": QUALITY_REASONS,
        "dispositions": [(code, translate(label)) for code, label in DISPOSITIONS.items()],
        "freight_parties": [(code, translate(label)) for code, label in FREIGHT_PARTIES.items()],
        "statuses": [(code, translate(label)) for code, label in RETURN_STATUSES.items()],
    }


def parse_quantity(raw: str | None) -> Decimal | None:
    """A quantity typed in a form (``None`` when empty); raises ``ValueError`` when not a number."""
    text = (raw or "").strip().replace(",", "")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(text) from exc
    if not value.is_finite():
        raise ValueError(text)
    return value


def request_rows(session: Session, order: Order) -> list[dict[str, Any]]:
    """The order's lines as the request form lists them: product, shipped, returnable."""
    shipped = stock.shipped_quantities(session, order.id)
    returnable = service.returnable_quantities(session, order)
    return [
        {
            "line": line,
            "product": line.product,
            "ordered": stock.q3(line.quantity),
            "shipped": shipped.get(line.id, Decimal("0")),
            "returnable": returnable.get(line.id, Decimal("0")),
        }
        for line in sorted(order.lines, key=lambda line: line.position)
    ]


def read_request_form(rows: list[dict[str, Any]]) -> tuple[list[service.ReturnLineInput], list[str]]:
    """The lines the user wants to return (quantity given and not zero) and any typing errors."""
    lines: list[service.ReturnLineInput] = []
    problems: list[str] = []
    for row in rows:
        line: OrderLine = row["line"]
        try:
            quantity = parse_quantity(request.form.get(f"qty_{line.id}"))
        except ValueError:
            problems.append(_("The quantity of %(sku)s is not a number.", sku=row["product"].sku))
            continue
        if quantity is None or quantity == 0:
            continue
        lines.append(
            service.ReturnLineInput(
                order_line_id=line.id,
                quantity=quantity,
                reason=request.form.get(f"reason_{line.id}", ""),
                detail=request.form.get(f"detail_{line.id}", ""),
            )
        )
    return lines, problems


def return_lines(session: Session, ret: LogisticsReturn) -> list[dict[str, Any]]:
    """A return's lines with their order line, product and locations of the dispositions."""
    rows = []
    for line in ret.lines:
        order_line = session.get(OrderLine, line.order_line_id)
        rows.append(
            {
                "line": line,
                "order_line": order_line,
                "product": order_line.product if order_line is not None else None,
                "dispositions": [
                    (d, session.get(LogisticsLocation, d.location_id) if d.location_id else None)
                    for d in line.dispositions
                ],
            }
        )
    return rows


def user_names(session: Session, ret: LogisticsReturn) -> dict[int, str]:
    """The names of the people who handled a return, by user id."""
    ids = {ret.requested_by_id, ret.reviewed_by_id, ret.approved_by_id, ret.received_by_id}
    ids |= {d.inspected_by_id for line in ret.lines for d in line.dispositions}
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return {u.id: u.name for u in session.scalars(select(User).where(User.id.in_(wanted)))}


def return_pdf(session: Session, ret: LogisticsReturn, order: Order, language: str) -> WerkzeugResponse:
    """The return request form (退货申请单) as a PDF download in ``language``."""
    from core.clock import TIMEZONE_NAME, company_now

    registry = ordo().registry
    check_language(language)
    company = order_company(session, order)
    tr = translations_for(registry, language)
    html = (
        environment(registry, language)
        .get_template("logistics/documents/return_request.html")
        .render(
            order=order,
            request=ret,
            lines=return_lines(session, ret),
            users=user_names(session, ret),
            title=tr.gettext("Return request form"),
            company=company,
            logo=logo_data_uri(session, company),
            printed_at=company_now(),
            timezone=TIMEZONE_NAME,
            language=language,
            reason_label=lambda code: tr.gettext(RETURN_REASONS.get(code) or str(code)),
            status_label_of=lambda code: tr.gettext(RETURN_STATUSES.get(code) or str(code)),
            disposition_label=lambda code: tr.gettext(DISPOSITIONS.get(code) or str(code)),
            freight_label=lambda code: tr.gettext(FREIGHT_PARTIES.get(code) or str(code)),
        )
    )
    pdf = html_to_pdf(html)
    filename = f"{ret.number}.pdf"
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "private, no-store"},
    )


def pdf_language(user: User) -> str:
    """The language asked for with ``?lang=``, else the reader's."""
    wanted = request.args.get("lang", "").strip()
    return wanted if wanted in ("zh_CN", "en") else reader_language(user)


# --- the list --------------------------------------------------------------------------------


@bp.get("/returns")
@permission_required(flow.STOCK_READ)
def returns() -> str:
    """The returns of the orders the user may see, or those waiting for the user."""
    session, actor = db(), current_actor()
    args = query_args(*_FILTERS)
    stmt = (
        service.visible_returns(actor)
        .join(Order, Order.id == LogisticsReturn.order_id)
        .join(Customer, Customer.id == Order.customer_id)
        .options(selectinload(LogisticsReturn.lines))
    )
    waiting = service.waiting_statuses(session, actor)
    if args.get("waiting"):
        stmt = stmt.where(LogisticsReturn.status.in_(waiting or ["-"]))
    if args.get("status") in RETURN_STATUSES:
        stmt = stmt.where(LogisticsReturn.status == args["status"])
    if args.get("q"):
        like = f"%{args['q']}%"
        stmt = stmt.where(
            or_(
                LogisticsReturn.number.ilike(like),
                Order.number.ilike(like),
                Customer.name.ilike(like),
                Customer.code.ilike(like),
            )
        )
    page = paginate(
        session,
        stmt,
        sortable={
            "number": LogisticsReturn.number,
            "requested": LogisticsReturn.requested_at,
            "status": LogisticsReturn.status,
        },
        default_sort="-requested",
        endpoint="logistics.returns",
        args=args,
        tie_breaker=LogisticsReturn.id,
    )
    orders = {o.id: o for o in session.scalars(select(Order).where(Order.id.in_({r.order_id for r in page.rows})))}
    return render_template(
        "logistics/returns.html",
        page=page,
        args=args,
        orders=orders,
        waiting=waiting,
        **view_helpers(),
    )


# --- one return ------------------------------------------------------------------------------


def _return(return_id: int, *, for_update: bool = False) -> LogisticsReturn:
    try:
        return service.get_return(db(), current_actor(), return_id, for_update=for_update)
    except ServiceError as exc:
        raise NotFound() from exc


def _order(order_id: int) -> Order:
    try:
        return get_order(db(), current_actor(), order_id)
    except ServiceError as exc:
        raise NotFound() from exc


def _back(return_id: int) -> WerkzeugResponse:
    return redirect(url_for("logistics.return_detail", return_id=return_id))


def _done(return_id: int, message: str) -> WerkzeugResponse:
    db().commit()
    flash(message, "success")
    return _back(return_id)


def _refused(return_id: int, exc: ServiceError) -> WerkzeugResponse:
    db().rollback()
    abort_for(exc)
    flash(error_text(exc), "danger")
    return _back(return_id)


@bp.get("/returns/<int:return_id>")
@permission_required(flow.STOCK_READ)
def return_detail(return_id: int) -> str:
    """One return: its lines, who did what, and the form of the stage the user may act on."""
    session, actor = db(), current_actor()
    ret = _return(return_id)
    order = _order(ret.order_id)
    open_ = ret.status not in service.FINAL_STATUSES
    warehouse_id = service.return_warehouse_id(session, ret.order_id)
    return render_template(
        "logistics/return.html",
        ret=ret,
        order=order,
        lines=return_lines(session, ret),
        users=user_names(session, ret),
        can_review=ret.status == "requested" and service.may_review(session, actor),
        can_decide=ret.status == "reviewed" and service.may_decide(session, actor),
        can_receive=ret.status == "approved" and actor.can(flow.RETURNS_RECEIVE),
        can_inspect=ret.status == "received" and actor.can(flow.RETURNS_INSPECT),
        can_freight=open_
        and any(actor.can(c) for c in (flow.RETURNS_REVIEW, flow.RETURNS_APPROVE, flow.RETURNS_RECEIVE)),
        can_attach=open_
        and actor.can("attachments.upload")
        and any(
            actor.can(c)
            for c in (flow.RETURNS_REQUEST, flow.RETURNS_REVIEW, flow.RETURNS_APPROVE, flow.RETURNS_RECEIVE)
        ),
        review_role=service.review_role(session),
        approve_role=service.approve_role(session),
        locations=service.sellable_locations(session, warehouse_id) if warehouse_id else [],
        **view_helpers(),
    )


@bp.route("/orders/<int:order_id>/returns/new", methods=["GET", "POST"])
@permission_required(flow.RETURNS_REQUEST)
def request_return(order_id: int) -> str | WerkzeugResponse | tuple[str, int]:
    """ "Request a return" of an order: per line a quantity (up to what may be returned), a reason, a detail."""
    session, actor = db(), current_actor()
    if actor.customer_id is not None:  # customers use the portal's form
        return redirect(url_for("logistics_portal.request_return", order_id=order_id))
    order = _order(order_id)
    rows = request_rows(session, order)
    if request.method == "POST":
        lines, problems = read_request_form(rows)
        if not problems:
            try:
                ret = service.request_return(
                    session,
                    actor,
                    order.id,
                    lines,
                    note=request.form.get("note", ""),
                    exception_reason=request.form.get("exception_reason", ""),
                )
            except ServiceError as exc:
                session.rollback()
                abort_for(exc)
                problems = [error_text(exc)]
            else:
                session.commit()
                flash(
                    _("Return request %(number)s was sent for review.", number=ret.number),
                    "success",
                )
                return redirect(url_for("logistics.return_detail", return_id=ret.id))
        order = _order(order_id)
        return (
            render_template(
                "logistics/return_form.html",
                order=order,
                rows=request_rows(session, order),
                problems=problems,
                form=request.form,
                cancel_url=url_for("orders.view_order", order_id=order.id),
                action=url_for("logistics.request_return", order_id=order.id),
                **view_helpers(),
            ),
            422,
        )
    return render_template(
        "logistics/return_form.html",
        order=order,
        rows=rows,
        problems=[],
        form={},
        cancel_url=url_for("orders.view_order", order_id=order.id),
        action=url_for("logistics.request_return", order_id=order.id),
        **view_helpers(),
    )


def _approve() -> bool | None:
    """The decision posted (``approve`` or ``reject``); ``None`` when neither."""
    decision = request.form.get("decision", "")
    return {"approve": True, "reject": False}.get(decision)


@bp.post("/returns/<int:return_id>/review")
@permission_required(flow.RETURNS_REVIEW)
def review_return(return_id: int) -> WerkzeugResponse:
    """The regional manager's review: on to the approver, or rejected (with a reason)."""
    session, actor = db(), current_actor()
    ret = _return(return_id, for_update=True)
    approve = _approve()
    if approve is None:
        flash(_("Choose whether to pass the return on or reject it."), "danger")
        return _back(ret.id)
    try:
        service.review_return(session, actor, ret.id, approve=approve, note=request.form.get("note", ""))
    except ServiceError as exc:
        return _refused(ret.id, exc)
    if approve:
        return _done(ret.id, _("Return %(number)s was reviewed and waits for approval.", number=ret.number))
    return _done(ret.id, _("Return %(number)s was rejected.", number=ret.number))


@bp.post("/returns/<int:return_id>/decision")
@permission_required(flow.RETURNS_APPROVE)
def decide_return(return_id: int) -> WerkzeugResponse:
    """The marketing director's decision: approved quantities (with an exception where needed) or rejected."""
    session, actor = db(), current_actor()
    ret = _return(return_id, for_update=True)
    approve = _approve()
    if approve is None:
        flash(_("Choose whether to approve or reject the return."), "danger")
        return _back(ret.id)
    quantities: dict[int, Decimal] = {}
    if approve:
        for line in ret.lines:
            try:
                value = parse_quantity(request.form.get(f"approved_{line.id}"))
            except ValueError:
                flash(_("The approved quantities must be numbers."), "danger")
                return _back(ret.id)
            if value is not None:
                quantities[line.id] = value
    try:
        service.decide_return(
            session,
            actor,
            ret.id,
            approve=approve,
            note=request.form.get("note", ""),
            approved_quantities=quantities,
            exception_reason=request.form.get("exception_reason", ""),
        )
    except ServiceError as exc:
        return _refused(ret.id, exc)
    if approve:
        return _done(ret.id, _("Return %(number)s was approved.", number=ret.number))
    return _done(ret.id, _("Return %(number)s was rejected.", number=ret.number))


@bp.post("/returns/<int:return_id>/receipt")
@permission_required(flow.RETURNS_RECEIVE)
def receive_return(return_id: int) -> WerkzeugResponse:
    """The warehouse records what arrived of each approved line."""
    session, actor = db(), current_actor()
    ret = _return(return_id, for_update=True)
    received: dict[int, Decimal] = {}
    for line in ret.lines:
        try:
            value = parse_quantity(request.form.get(f"received_{line.id}"))
        except ValueError:
            flash(_("The received quantities must be numbers."), "danger")
            return _back(ret.id)
        if value is not None:
            received[line.id] = value
    try:
        service.receive_return(session, actor, ret.id, received)
    except ServiceError as exc:
        return _refused(ret.id, exc)
    return _done(
        ret.id, _("The goods of return %(number)s were received; they wait for inspection.", number=ret.number)
    )


@bp.post("/returns/<int:return_id>/inspection")
@permission_required(flow.RETURNS_INSPECT)
def inspect_return(return_id: int) -> WerkzeugResponse:
    """QC's dispositions per line (restock, rework, downgrade, scrap), each posting its stock move."""
    session, actor = db(), current_actor()
    ret = _return(return_id, for_update=True)
    decisions: list[tuple[int, str, Decimal, int | None, str]] = []
    for line in ret.lines:
        note = request.form.get(f"note_{line.id}", "")
        location = request.form.get(f"location_{line.id}", "").strip()
        for code in DISPOSITIONS:
            try:
                value = parse_quantity(request.form.get(f"{code}_{line.id}"))
            except ValueError:
                flash(_("The quantities of the dispositions must be numbers."), "danger")
                return _back(ret.id)
            if value is None or value == 0:
                continue
            location_id = int(location) if code == "restock" and location.isdigit() else None
            decisions.append((line.id, code, value, location_id, note))
    try:
        service.inspect_return(session, actor, ret.id, decisions)
    except ServiceError as exc:
        return _refused(ret.id, exc)
    return _done(
        ret.id, _("Return %(number)s was inspected and closed; the stock moves are posted.", number=ret.number)
    )


@bp.post("/returns/<int:return_id>/freight")
@permission_required(flow.STOCK_READ)
def return_freight(return_id: int) -> WerkzeugResponse:
    """Record who pays the return freight."""
    session, actor = db(), current_actor()
    ret = _return(return_id, for_update=True)
    try:
        service.set_freight_responsibility(session, actor, ret.id, request.form.get("party", ""))
    except ServiceError as exc:
        return _refused(ret.id, exc)
    return _done(ret.id, _("The freight responsibility was recorded."))


@bp.post("/returns/<int:return_id>/stamped")
@permission_required("attachments.upload")
def return_stamped(return_id: int) -> WerkzeugResponse:
    """File the customer-stamped return request form (a scan) as an attachment of the order."""
    session, actor = db(), current_actor()
    ret = _return(return_id, for_update=True)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(_("Choose the scanned, stamped form to upload."), "danger")
        return _back(ret.id)
    try:
        service.attach_stamped_request(session, actor, ret.id, (upload.filename, upload.read()))
    except ServiceError as exc:
        return _refused(ret.id, exc)
    return _done(ret.id, _("The stamped return request form was filed with the order."))


@bp.get("/returns/<int:return_id>/form.pdf")
@permission_required(flow.STOCK_READ)
def return_form_pdf(return_id: int) -> WerkzeugResponse:
    """The return request form (退货申请单) to print, stamp and send back with the goods."""
    session, actor = db(), current_actor()
    ret = _return(return_id)
    return return_pdf(session, ret, _order(ret.order_id), pdf_language(actor))
