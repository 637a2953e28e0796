"""Screens for complaints, follow-up visits and satisfaction surveys (KP-2, KP-6), and the portal survey form.

Staff screens on ``views.bp`` (``/kpi``):

* ``/kpi/complaints`` — complaints in the reader's scope, filtered by status, owner and
  customer; ``/kpi/complaints/new`` records one; ``/kpi/complaints/<id>`` shows it with
  the assign form (owner, due date) and the resolve form (resolution, root cause);
* ``/kpi/visits`` — follow-up visits, ``/kpi/visits/new`` plans one, ``/kpi/visits/<id>``
  records its outcome;
* ``/kpi/surveys`` — surveys sent and answered with their scores and comments, and
  "send the survey of an order".

The customer's screens on the ``kpi_portal`` blueprint (its name ends in ``_portal`` so
intake's portal lets portal users in; staff get 403): ``/kpi/surveys/<token>`` — the
form the invitation links to (1–5 per question and a comment) — and
``/kpi/portal/surveys``, "My surveys", the customer's open surveys. The blueprint is
registered with the app together with ``views.bp`` (a deferred registration below), so
kpi's ``__init__`` needs no change. Thin views over :mod:`plugins.kpi.surveys` and
:mod:`plugins.kpi.feedback`.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.exceptions import Forbidden, NotFound
from werkzeug.wrappers import Response

from core.contrib import MenuItem
from core.labels import N_
from core.models import Customer, Order, User
from core.security.scopes import customer_scope, order_scope
from core.views.common import current_actor, paginate, permission_required, query_args, screen_blueprint
from core.web import db
from plugins.kpi import feedback, flow, surveys
from plugins.kpi.errors import KpiError
from plugins.kpi.models import (
    COMPLAINT_STATUSES,
    SURVEY_KINDS,
    VISIT_KINDS,
    VISIT_STATUSES,
    KpiComplaint,
    KpiSurvey,
    KpiVisit,
)
from plugins.kpi.views import bp

#: The customer's survey screens (``kpi_portal``: intake's portal lets portal users open them).
portal_bp = screen_blueprint("kpi_portal", __name__, url_prefix="/kpi", template_folder="templates")


def _register_portal(state: BlueprintSetupState) -> None:
    state.app.register_blueprint(portal_bp)


bp.record_once(_register_portal)

#: The staff menu entries (kpi puts them in its KPI drop-down).
MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Complaints"),
        "kpi.complaints",
        permission=flow.FEEDBACK_READ,
        order=60,
        icon="exclamation-octagon",
        plugin="kpi",
    ),
    MenuItem(
        N_("Follow-up visits"), "kpi.visits", permission=flow.FEEDBACK_READ, order=61, icon="telephone", plugin="kpi"
    ),
    MenuItem(
        N_("Satisfaction surveys"),
        "kpi.surveys",
        permission=flow.FEEDBACK_READ,
        order=62,
        icon="emoji-smile",
        plugin="kpi",
    ),
)
#: The customer's menu entry in the portal.
PORTAL_MENU: tuple[MenuItem, ...] = (
    MenuItem(N_("My surveys"), "kpi_portal.my_surveys", permission=None, order=6, icon="emoji-smile", plugin="kpi"),
)


# --- helpers -------------------------------------------------------------------------------


def _customers(actor: User) -> list[Customer]:
    return list(
        db().scalars(
            select(Customer).where(customer_scope(actor), Customer.active.is_(True)).order_by(Customer.code).limit(1000)
        )
    )


def _names(ids: set[int | None], model: Any) -> dict[int, Any]:
    """The rows of ``model`` with these ids; orders only within the current user's scope.

    A complaint or visit is listed when its customer is in scope, but its order may not be
    (another branch's order of a shared customer): such an order is shown as "—".
    """
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    stmt = select(model).where(model.id.in_(wanted))
    if model is Order:
        stmt = stmt.where(order_scope(current_actor()))
    return {row.id: row for row in db().scalars(stmt)}


def _visible_order(order_id: int | None) -> Order | None:
    """The order ``order_id`` if the current user may see it (else None, shown as "—")."""
    if not order_id:
        return None
    return db().scalar(select(Order).where(Order.id == order_id, order_scope(current_actor())))


def _order_id(actor: User, number: str) -> int | None:
    """The id of the order numbered ``number`` in the actor's scope (-1 when there is none), None when blank."""
    text = (number or "").strip()
    if not text:
        return None
    found = db().scalar(select(Order.id).where(Order.number == text, order_scope(actor)))
    return found if found is not None else -1


def _refused(exc: KpiError) -> dict[str, list[str]]:
    """A refusal as errors per field (a 404 of the customer or order shown beside it; others abort)."""
    fields = exc.details if isinstance(exc.details, dict) else {}
    if exc.status == 403 or (exc.status == 404 and not fields):
        raise Forbidden() if exc.status == 403 else NotFound()
    key = next(iter(fields), "") if fields else ""
    return {key: [exc.localized()]}


# --- complaints ----------------------------------------------------------------------------


@bp.get("/complaints")
@permission_required(flow.FEEDBACK_READ)
def complaints() -> str:
    """Complaints in the reader's scope: filter by status, owner and customer; newest first."""
    actor, session = current_actor(), db()
    args = query_args("status", "owner", "customer", "q")
    stmt = select(KpiComplaint).where(feedback.complaint_scope(actor))
    if args.get("status") in COMPLAINT_STATUSES:
        stmt = stmt.where(KpiComplaint.status == args["status"])
    elif args.get("status") == "overdue":
        stmt = stmt.where(KpiComplaint.status != "resolved", KpiComplaint.due_date < feedback.today())
    if args.get("owner", "").isdigit():
        stmt = stmt.where(KpiComplaint.owner_id == int(args["owner"]))
    if args.get("customer", "").isdigit():
        stmt = stmt.where(KpiComplaint.customer_id == int(args["customer"]))
    if args.get("q"):
        like = f"%{args['q']}%"
        stmt = stmt.where(KpiComplaint.number.ilike(like) | KpiComplaint.description.ilike(like))
    page = paginate(
        session,
        stmt,
        sortable={
            "received_at": KpiComplaint.received_at,
            "number": KpiComplaint.number,
            "due_date": KpiComplaint.due_date,
            "status": KpiComplaint.status,
        },
        default_sort="-received_at",
        endpoint="kpi.complaints",
        args=args,
        tie_breaker=KpiComplaint.id,
    )
    owners = feedback.owners(session)
    customers = _customers(actor)
    statuses = [(code, _(label)) for code, label in COMPLAINT_STATUSES.items()] + [("overdue", _("Overdue"))]
    filters = [
        {
            "name": "status",
            "label": _("Status"),
            "kind": "select",
            "value": args.get("status", ""),
            "options": statuses,
        },
        {
            "name": "owner",
            "label": _("Owner"),
            "kind": "select",
            "value": args.get("owner", ""),
            "options": [(u.id, u.name) for u in owners],
        },
        {
            "name": "customer",
            "label": _("Customer"),
            "kind": "select",
            "value": args.get("customer", ""),
            "options": [(c.id, f"{c.code} {c.name}") for c in customers],
        },
    ]
    return render_template(
        "kpi/feedback_complaints.html",
        page=page,
        filters=filters,
        search=args.get("q", ""),
        customers=_names({c.customer_id for c in page.rows}, Customer),
        orders=_names({c.order_id for c in page.rows}, Order),
        users=_names({c.owner_id for c in page.rows}, User),
        statuses=COMPLAINT_STATUSES,
        categories=feedback.COMPLAINT_CATEGORIES,
        today=feedback.today(),
        can_manage=actor.can(flow.FEEDBACK_MANAGE),
    )


def _complaint_form(values: dict[str, Any], errors: dict[str, list[str]], status: int = 200) -> Any:
    actor, session = current_actor(), db()
    return (
        render_template(
            "kpi/feedback_complaint_form.html",
            values=values,
            errors=errors,
            customers=_customers(actor),
            owners=feedback.owners(session),
            categories=feedback.COMPLAINT_CATEGORIES,
        ),
        status,
    )


@bp.route("/complaints/new", methods=["GET", "POST"])
@permission_required(flow.FEEDBACK_MANAGE)
def complaint_new() -> Any:
    """Record a complaint: customer, order (number), category, description, owner, due date."""
    if request.method == "GET":
        return _complaint_form(
            {"customer_id": request.args.get("customer", ""), "order": request.args.get("order", "")}, {}
        )
    actor, session = current_actor(), db()
    values = {
        key: request.form.get(key, "")
        for key in ("customer_id", "order", "category", "description", "owner_id", "due_date")
    }
    try:
        complaint = feedback.record_complaint(
            session,
            actor,
            values["customer_id"] or -1,  # type: ignore[arg-type]
            values["description"],
            order_id=_order_id(actor, values["order"]),
            category=values["category"],
            owner_id=values["owner_id"] or None,  # type: ignore[arg-type]
            due_date=values["due_date"] or None,
        )
        session.commit()
    except KpiError as exc:
        session.rollback()
        errors = _refused(exc)
        if "order_id" in errors:
            errors["order"] = errors.pop("order_id")
        return _complaint_form(values, errors, exc.status)
    flash(_("Complaint %(number)s was recorded.", number=complaint.number), "success")
    return redirect(url_for("kpi.complaint_detail", complaint_id=complaint.id))


def _complaint_page(complaint: KpiComplaint, errors: dict[str, list[str]] | None = None, status: int = 200) -> Any:
    session = db()
    actor = current_actor()
    return (
        render_template(
            "kpi/feedback_complaint.html",
            complaint=complaint,
            customer=session.get(Customer, complaint.customer_id),
            order=_visible_order(complaint.order_id),
            owner=session.get(User, complaint.owner_id) if complaint.owner_id else None,
            owners=feedback.owners(session),
            statuses=COMPLAINT_STATUSES,
            categories=feedback.COMPLAINT_CATEGORIES,
            errors=errors or {},
            values=request.form if request.method == "POST" else {},
            today=feedback.today(),
            can_manage=actor.can(flow.FEEDBACK_MANAGE),
        ),
        status,
    )


@bp.get("/complaints/<int:complaint_id>")
@permission_required(flow.FEEDBACK_READ)
def complaint_detail(complaint_id: int) -> Any:
    """One complaint with its assign and resolve forms."""
    try:
        complaint = feedback.get_complaint(db(), current_actor(), complaint_id)
    except KpiError:
        raise NotFound() from None
    return _complaint_page(complaint)


@bp.post("/complaints/<int:complaint_id>/assign")
@permission_required(flow.FEEDBACK_MANAGE)
def complaint_assign(complaint_id: int) -> Any:
    """Assign an owner and due date (the complaint goes in progress)."""
    actor, session = current_actor(), db()
    try:
        feedback.update_complaint(
            session,
            actor,
            complaint_id,
            owner_id=request.form.get("owner_id") or None,
            due_date=request.form.get("due_date", ""),
        )
        session.commit()
    except KpiError as exc:
        session.rollback()
        errors = _refused(exc)
        if exc.status == 409:
            flash(exc.localized(), "danger")
            return redirect(url_for("kpi.complaint_detail", complaint_id=complaint_id))
        return _complaint_page(feedback.get_complaint(session, actor, complaint_id), errors, exc.status)
    flash(_("The complaint was assigned."), "success")
    return redirect(url_for("kpi.complaint_detail", complaint_id=complaint_id))


@bp.post("/complaints/<int:complaint_id>/resolve")
@permission_required(flow.FEEDBACK_MANAGE)
def complaint_resolve(complaint_id: int) -> Any:
    """Resolve the complaint with its resolution and root cause."""
    actor, session = current_actor(), db()
    try:
        complaint = feedback.resolve_complaint(
            session, actor, complaint_id, request.form.get("resolution", ""), request.form.get("root_cause", "")
        )
        session.commit()
    except KpiError as exc:
        session.rollback()
        errors = _refused(exc)
        if exc.status == 409:
            flash(exc.localized(), "danger")
            return redirect(url_for("kpi.complaint_detail", complaint_id=complaint_id))
        return _complaint_page(feedback.get_complaint(session, actor, complaint_id), errors, exc.status)
    flash(_("Complaint %(number)s was resolved.", number=complaint.number), "success")
    return redirect(url_for("kpi.complaint_detail", complaint_id=complaint_id))


# --- visits --------------------------------------------------------------------------------


@bp.get("/visits")
@permission_required(flow.FEEDBACK_READ)
def visits() -> str:
    """Follow-up visits in the reader's scope: filter by status, owner and customer; by date."""
    actor, session = current_actor(), db()
    args = query_args("status", "owner", "customer")
    stmt = select(KpiVisit).where(feedback.visit_scope(actor))
    if args.get("status") in VISIT_STATUSES:
        stmt = stmt.where(KpiVisit.status == args["status"])
    elif args.get("status") == "overdue":
        stmt = stmt.where(KpiVisit.status == "planned", KpiVisit.due_date < feedback.today())
    if args.get("owner", "").isdigit():
        stmt = stmt.where(KpiVisit.owner_id == int(args["owner"]))
    if args.get("customer", "").isdigit():
        stmt = stmt.where(KpiVisit.customer_id == int(args["customer"]))
    page = paginate(
        session,
        stmt,
        sortable={"due_date": KpiVisit.due_date, "status": KpiVisit.status, "created_at": KpiVisit.created_at},
        default_sort="-due_date",
        endpoint="kpi.visits",
        args=args,
        tie_breaker=KpiVisit.id,
    )
    owners = feedback.owners(session)
    statuses = [(code, _(label)) for code, label in VISIT_STATUSES.items()] + [("overdue", _("Overdue"))]
    filters = [
        {
            "name": "status",
            "label": _("Status"),
            "kind": "select",
            "value": args.get("status", ""),
            "options": statuses,
        },
        {
            "name": "owner",
            "label": _("Owner"),
            "kind": "select",
            "value": args.get("owner", ""),
            "options": [(u.id, u.name) for u in owners],
        },
        {
            "name": "customer",
            "label": _("Customer"),
            "kind": "select",
            "value": args.get("customer", ""),
            "options": [(c.id, f"{c.code} {c.name}") for c in _customers(actor)],
        },
    ]
    return render_template(
        "kpi/feedback_visits.html",
        page=page,
        filters=filters,
        customers=_names({v.customer_id for v in page.rows}, Customer),
        orders=_names({v.order_id for v in page.rows}, Order),
        users=_names({v.owner_id for v in page.rows}, User),
        statuses=VISIT_STATUSES,
        kinds=VISIT_KINDS,
        today=feedback.today(),
        can_manage=actor.can(flow.FEEDBACK_MANAGE),
    )


def _visit_form(values: dict[str, Any], errors: dict[str, list[str]], status: int = 200) -> Any:
    actor, session = current_actor(), db()
    return (
        render_template(
            "kpi/feedback_visit_form.html",
            values=values,
            errors=errors,
            customers=_customers(actor),
            owners=feedback.owners(session),
            kinds=VISIT_KINDS,
        ),
        status,
    )


@bp.route("/visits/new", methods=["GET", "POST"])
@permission_required(flow.FEEDBACK_MANAGE)
def visit_new() -> Any:
    """Plan a follow-up visit: customer, order (number), kind, date, owner, purpose."""
    actor = current_actor()
    if request.method == "GET":
        return _visit_form(
            {"customer_id": request.args.get("customer", ""), "kind": "phone", "owner_id": str(actor.id)}, {}
        )
    session = db()
    values = {
        key: request.form.get(key, "") for key in ("customer_id", "order", "kind", "due_date", "owner_id", "purpose")
    }
    try:
        visit = feedback.plan_visit(
            session,
            actor,
            values["customer_id"] or -1,  # type: ignore[arg-type]
            values["due_date"],
            kind=values["kind"],
            owner_id=values["owner_id"] or None,  # type: ignore[arg-type]
            order_id=_order_id(actor, values["order"]),
            purpose=values["purpose"],
        )
        session.commit()
    except KpiError as exc:
        session.rollback()
        errors = _refused(exc)
        if "order_id" in errors:
            errors["order"] = errors.pop("order_id")
        return _visit_form(values, errors, exc.status)
    flash(_("The follow-up visit was planned."), "success")
    return redirect(url_for("kpi.visit_detail", visit_id=visit.id))


def _visit_page(visit: KpiVisit, errors: dict[str, list[str]] | None = None, status: int = 200) -> Any:
    session = db()
    return (
        render_template(
            "kpi/feedback_visit.html",
            visit=visit,
            customer=session.get(Customer, visit.customer_id),
            order=_visible_order(visit.order_id),
            owner=session.get(User, visit.owner_id) if visit.owner_id else None,
            statuses=VISIT_STATUSES,
            kinds=VISIT_KINDS,
            errors=errors or {},
            values=request.form if request.method == "POST" else {},
            can_manage=current_actor().can(flow.FEEDBACK_MANAGE),
        ),
        status,
    )


@bp.get("/visits/<int:visit_id>")
@permission_required(flow.FEEDBACK_READ)
def visit_detail(visit_id: int) -> Any:
    """One visit, with the form recording its outcome while planned."""
    try:
        visit = feedback.get_visit(db(), current_actor(), visit_id)
    except KpiError:
        raise NotFound() from None
    return _visit_page(visit)


@bp.post("/visits/<int:visit_id>/done")
@permission_required(flow.FEEDBACK_MANAGE)
def visit_done(visit_id: int) -> Any:
    """Record the visit as done: outcome, issue, root cause."""
    actor, session = current_actor(), db()
    try:
        feedback.record_visit(
            session,
            actor,
            visit_id,
            request.form.get("outcome", ""),
            request.form.get("issue", ""),
            request.form.get("root_cause", ""),
        )
        session.commit()
    except KpiError as exc:
        session.rollback()
        errors = _refused(exc)
        if exc.status == 409:
            flash(exc.localized(), "danger")
            return redirect(url_for("kpi.visit_detail", visit_id=visit_id))
        return _visit_page(feedback.get_visit(session, actor, visit_id), errors, exc.status)
    flash(_("The follow-up visit was recorded."), "success")
    return redirect(url_for("kpi.visit_detail", visit_id=visit_id))


# --- surveys (staff) -----------------------------------------------------------------------


@bp.get("/surveys", endpoint="surveys")
@permission_required(flow.FEEDBACK_READ)
def surveys_list() -> str:
    """Surveys sent to customers in the reader's scope: answered or not, scores and comments."""
    actor, session = current_actor(), db()
    args = query_args("kind", "answered", "customer")
    stmt = select(KpiSurvey).where(surveys.survey_scope(actor))
    if args.get("kind") in SURVEY_KINDS:
        stmt = stmt.where(KpiSurvey.kind == args["kind"])
    if args.get("answered") == "1":
        stmt = stmt.where(KpiSurvey.answered_at.is_not(None))
    elif args.get("answered") == "0":
        stmt = stmt.where(KpiSurvey.answered_at.is_(None))
    if args.get("customer", "").isdigit():
        stmt = stmt.where(KpiSurvey.customer_id == int(args["customer"]))
    page = paginate(
        session,
        stmt,
        sortable={"sent_at": KpiSurvey.sent_at, "answered_at": KpiSurvey.answered_at, "score": KpiSurvey.score},
        default_sort="-sent_at",
        endpoint="kpi.surveys",
        args=args,
        tie_breaker=KpiSurvey.id,
    )
    filters = [
        {
            "name": "kind",
            "label": _("Kind"),
            "kind": "select",
            "value": args.get("kind", ""),
            "options": [(code, _(label)) for code, label in SURVEY_KINDS.items()],
        },
        {
            "name": "answered",
            "label": _("Answered"),
            "kind": "select",
            "value": args.get("answered", ""),
            "options": [("1", _("Answered")), ("0", _("Not answered"))],
        },
        {
            "name": "customer",
            "label": _("Customer"),
            "kind": "select",
            "value": args.get("customer", ""),
            "options": [(c.id, f"{c.code} {c.name}") for c in _customers(actor)],
        },
    ]
    return render_template(
        "kpi/survey_list.html",
        page=page,
        filters=filters,
        customers=_names({s.customer_id for s in page.rows}, Customer),
        orders=_names({s.order_id for s in page.rows}, Order),
        kinds=SURVEY_KINDS,
        questions=surveys.QUESTIONS,
        expired={s.id for s in page.rows if surveys.is_expired(s)},
        can_manage=actor.can(flow.FEEDBACK_MANAGE),
    )


@bp.post("/surveys/send")
@permission_required(flow.FEEDBACK_MANAGE)
def survey_send() -> Response:
    """Send the survey of an order (by number) by hand: delivered or completed, once."""
    actor, session = current_actor(), db()
    number = request.form.get("order", "").strip()
    order_id = _order_id(actor, number) or -1
    try:
        surveys.send_survey_for(session, actor, order_id)
        session.commit()
    except KpiError as exc:
        session.rollback()
        if exc.status == 403:
            raise Forbidden() from None
        flash(exc.localized() if exc.status != 404 else _("Order %(order)s was not found.", order=number), "danger")
        return redirect(url_for("kpi.surveys"))
    flash(_("The survey of order %(order)s was sent to the customer.", order=number), "success")
    return redirect(url_for("kpi.surveys"))


# --- the customer's survey form (portal) --------------------------------------------------


@portal_bp.before_request
def _customers_only() -> None:
    """Staff never answer surveys: 403 (visitors are sent to log in by each view)."""
    if current_user.is_authenticated and getattr(current_user, "customer_id", None) is None:
        raise Forbidden()


def _answer_page(
    survey: KpiSurvey,
    action: str,
    values: Any = None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
    message: str = "",
) -> Any:
    session = db()
    return (
        render_template(
            "kpi/survey_form.html",
            survey=survey,
            action=action,
            order=_visible_order(survey.order_id),
            questions=[(code, surveys.QUESTIONS[code]) for code in surveys.questions(session)],
            scores=surveys.SCORES,
            values=values or {},
            errors=errors or {},
            message=message,
            answered=survey.answered_at is not None,
        ),
        status,
    )


def _answer(survey_of: Any, action: str) -> Any:
    user, session = current_actor(), db()
    try:
        survey = survey_of(session, user)
    except KpiError:
        raise NotFound() from None
    if request.method == "GET":
        try:
            surveys.check_answerable(survey)
        except KpiError as exc:
            return _answer_page(survey, action, status=exc.status, message=exc.localized())
        return _answer_page(survey, action)
    scores = {key[len("score-") :]: value for key, value in request.form.items() if key.startswith("score-")}
    try:
        surveys.answer(session, user, survey, scores, request.form.get("comment", ""))
        session.commit()
    except KpiError as exc:
        session.rollback()
        if exc.status in (409, 410):
            return _answer_page(
                session.get(KpiSurvey, survey.id) or survey, action, status=exc.status, message=exc.localized()
            )
        fields = exc.details if isinstance(exc.details, dict) else {}
        key = next(iter(fields), "scores")
        return _answer_page(survey, action, request.form, {key: [exc.localized()]}, exc.status)
    flash(_("Thank you! Your answers were recorded."), "success")
    return redirect(url_for("kpi_portal.my_surveys"))


@portal_bp.route("/surveys/<token>", methods=["GET", "POST"])
@login_required
def survey_answer(token: str) -> Any:
    """The survey form the invitation links to: the customer's own portal user answers it once."""
    return _answer(
        lambda session, user: surveys.survey_by_token(session, user, token),
        url_for("kpi_portal.survey_answer", token=token),
    )


@portal_bp.route("/portal/surveys/<int:survey_id>", methods=["GET", "POST"])
@login_required
def survey_own(survey_id: int) -> Any:
    """The same form reached from "My surveys" (the login identifies the customer)."""
    return _answer(
        lambda session, user: surveys.own_survey(session, user, survey_id),
        url_for("kpi_portal.survey_own", survey_id=survey_id),
    )


@portal_bp.get("/portal/surveys")
@login_required
def my_surveys() -> str:
    """The customer's open surveys (not answered, not expired), and the ones answered lately."""
    user, session = current_actor(), db()
    answered = list(
        session.scalars(
            select(KpiSurvey)
            .where(KpiSurvey.customer_id == user.customer_id, KpiSurvey.answered_at.is_not(None))
            .order_by(KpiSurvey.answered_at.desc())
            .limit(10)
        )
    )
    open_ = surveys.open_surveys(session, user)
    return render_template(
        "kpi/survey_mine.html",
        open_surveys=open_,
        answered=answered,
        orders=_names({s.order_id for s in [*open_, *answered]}, Order),
        kinds=SURVEY_KINDS,
    )
