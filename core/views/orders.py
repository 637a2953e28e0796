"""Order screens: the list, the order page with its workflow, and the draft order form.

Thin views over :mod:`core.services.orders`: the form's input goes through the same
marshmallow schema as the API (``load_order_input`` / ``update_order``), the list and
the page go through the user's data scope, and actions go through ``take_action``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as WerkzeugResponse
from wtforms import HiddenField, SelectField, StringField, TextAreaField

from core.contrib import STATUSES, Badge, Finding, Panel
from core.models import Customer, Order, User
from core.schemas import MAX_ID, ActionInSchema
from core.security.fields import hides_person
from core.services import ServiceError
from core.services.audit import order_trail
from core.services.orders import (
    COUNT_CAP,
    OrderFilters,
    copy_order,
    count_orders,
    create_order,
    default_company,
    filtered_orders,
    get_order,
    load_order_input,
    order_page,
    take_action,
    update_order,
)
from core.services.parties import customers_query, products_query
from core.views.audit import entry_context
from core.views.common import (
    FieldErrors,
    abort_for,
    attach_errors,
    current_actor,
    field_errors,
    paginate,
    permission_required,
    plain_number,
    query_args,
    screen_blueprint,
    select_choices,
)
from core.views.export import FORMATS, export_response
from core.views.labels import (
    CHANNEL_LABELS,
    PAYMENT_METHOD_LABELS,
    URGENCY_LABELS,
    action_label,
    channel_label,
    choices,
    payment_method_label,
    status_label,
    step_label,
    urgency_label,
)
from core.views.messages import localize
from core.web import db, ordo
from core.workflow import ActionOption, Workflow, WorkflowError

bp = screen_blueprint("orders", __name__, url_prefix="/orders")

#: The editable fields of an order line, as named in the form (``lines-<n>-<field>``).
LINE_FIELDS = ("product", "description", "quantity", "unit_price", "discount")
_LINE_KEY = re.compile(r"^lines-(\d+)-(\w+)$")
_SHIP_TO = ("contact", "phone", "province", "city", "address")
_HEADER_FIELDS = (
    "channel",
    "reference",
    "reason",
    "payment_method",
    "currency",
    "urgency",
    "contact_name",
    "contact_phone",
    "note",
)


class OrderForm(FlaskForm):
    """The order header; lines are repeated rows handled by :func:`read_lines`.

    No WTForms validators: the order schema is the one validator, on every path.
    """

    customer = SelectField(_l("Customer"), validate_choice=False, render_kw={"required": True})
    channel = SelectField(_l("Channel"), validate_choice=False, render_kw={"required": True})
    reference = StringField(_l("Reference / contract no."), render_kw={"maxlength": 100})
    reason = StringField(_l("Order reason"), render_kw={"maxlength": 500})
    requested_date = StringField(_l("Requested delivery date"), render_kw={"type": "date"})
    payment_method = SelectField(_l("Payment method"), validate_choice=False, render_kw={"required": True})
    currency = StringField(_l("Currency"), default="CNY", render_kw={"maxlength": 3, "required": True})
    urgency = SelectField(_l("Urgency"), validate_choice=False, default="normal")
    contact_name = StringField(_l("Contact"), render_kw={"maxlength": 100, "autocomplete": "off"})
    contact_phone = StringField(_l("Contact phone"), render_kw={"maxlength": 50, "autocomplete": "off"})
    ship_to_contact = StringField(_l("Receiver"), render_kw={"maxlength": 100, "autocomplete": "off"})
    ship_to_phone = StringField(_l("Receiver phone"), render_kw={"maxlength": 50, "autocomplete": "off"})
    ship_to_province = StringField(_l("Province"), render_kw={"maxlength": 64})
    ship_to_city = StringField(_l("City"), render_kw={"maxlength": 64})
    ship_to_address = StringField(_l("Address"), render_kw={"maxlength": 300})
    note = TextAreaField(_l("Note"), render_kw={"rows": 2, "maxlength": 2000})
    version = HiddenField()


# --- the list ---------------------------------------------------------------------------

_ORDER_SORTS: dict[str, Any] = {
    "number": Order.number,
    "created": Order.created_at,
    "requested": Order.requested_date,
    "status": Order.status,
    "total": Order.total,
    "customer": select(Customer.name).where(Customer.id == Order.customer_id).correlate(Order).scalar_subquery(),
}
_FILTER_NAMES = ("status", "step", "customer", "date_from", "date_to", "q")


def _parse_date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        flash(_("“%(value)s” is not a date; that filter was ignored.", value=value), "warning")
        return None


def read_filters() -> OrderFilters:
    """The list's filters from the query string (unknown values are ignored)."""
    args = request.args
    status = args.get("status") or None
    customer = args.get("customer", "")
    return OrderFilters(
        status=status if status in STATUSES else None,
        step=args.get("step") or None,
        customer=int(customer) if customer.isascii() and customer.isdigit() and 0 < int(customer) <= MAX_ID else None,
        date_from=_parse_date(args.get("date_from")),
        date_to=_parse_date(args.get("date_to")),
        text=(args.get("q") or "").strip() or None,
    )


def _customer_options(session: Session, actor: User, *, details: bool = False) -> list[Customer]:
    """Customers the user may pick in a filter or form (their own one for portal users);
    ``details`` loads contacts and addresses too (the form prefills ship-to from them)."""
    if actor.customer_id is not None:
        own = session.get(Customer, actor.customer_id)
        return [own] if own is not None else []
    if not actor.can("customers.read"):
        return []
    stmt = customers_query(actor)
    if details:
        stmt = stmt.options(selectinload(Customer.contacts), selectinload(Customer.addresses))
    return list(session.scalars(stmt))


def _step_options() -> list[tuple[str, str]]:
    registry = ordo().registry
    return [(s.key, step_label(s.key)) for s in sorted(registry.steps.values(), key=lambda s: s.position)]


@bp.get("")
@permission_required("orders.read")
def list_orders() -> str:
    """The orders the user may see, filtered, searched, sorted and paged.

    The count stops at :data:`~core.services.orders.COUNT_CAP` ("10,000+"): an exact count
    would read every order of the scope, a million for the whole company, on every visit.
    """
    session, actor = db(), current_actor()
    filters = read_filters()
    customers = [] if actor.customer_id else _customer_options(session, actor)
    customer_choices = [(c.id, f"{c.code} · {c.name}") for c in customers]
    counted = count_orders(session, actor, filters, cap=COUNT_CAP)
    page = paginate(
        session,
        None,
        sortable=_ORDER_SORTS,
        default_sort="-created",
        endpoint="orders.list_orders",
        args=query_args(*_FILTER_NAMES),
        total=min(counted, COUNT_CAP),
        more=counted > COUNT_CAP,
        tie_breaker=Order.id,
        fetch=lambda ordering, offset, limit: order_page(
            session, actor, filters, ordering, offset=offset, limit=limit, options=(selectinload(Order.customer),)
        ),
    )
    return render_template(
        "orders/list.html",
        page=page,
        badges=order_badges(session, list(page.rows)),
        filters=filters,
        customers=customer_choices,
        steps=_step_options(),
        statuses=[(s, status_label(s)) for s in STATUSES],
        count_cap=COUNT_CAP,
    )


@bp.get("/export.<fmt>")
@permission_required("orders.read")
def export_orders(fmt: str) -> Response:
    """The filtered list as CSV or XLSX, in the user's language (only orders in scope)."""
    if fmt not in FORMATS:
        abort(404)
    actor = current_actor()
    stmt = filtered_orders(actor, read_filters()).options(selectinload(Order.customer)).order_by(Order.id.desc())
    header = [
        _("Number"),
        _("Customer code"),
        _("Customer"),
        _("Status"),
        _("Step"),
        _("Channel"),
        _("Reference / contract no."),
        _("Requested delivery date"),
        _("Payment method"),
        _("Urgency"),
        _("Currency"),
        _("Untaxed"),
        _("Tax"),
        _("Total"),
        _("Created"),
    ]

    def rows() -> Iterator[list[object]]:
        # A streamed download outlives the request's session, so it reads in its own.
        with ordo().read_sessions() as reading:
            for order in reading.scalars(stmt.execution_options(yield_per=500)):
                yield [
                    order.number,
                    order.customer.code,
                    order.customer.name,
                    status_label(order.status),
                    step_label(order.step),
                    channel_label(order.channel),
                    order.reference,
                    order.requested_date or "",
                    payment_method_label(order.payment_method),
                    urgency_label(order.urgency),
                    order.currency,
                    order.untaxed_amount,
                    order.tax_amount,
                    order.total,
                    order.created_at.isoformat(timespec="seconds"),
                ]

    return export_response(fmt, "orders", header, rows())


# --- the order page -------------------------------------------------------------------


def _get(order_id: int, *, for_update: bool = False) -> Order:
    try:
        return get_order(db(), current_actor(), order_id, for_update=for_update)
    except ServiceError as exc:
        raise NotFound() from exc


def order_timeline(session: Session, order: Order, viewer: User) -> list[dict[str, Any]]:
    """The order's history, oldest first: its creation, then every transition (CORE-6).

    Each entry has ``at``, ``actor``, ``action``, ``title``, ``detail``, ``status`` and
    ``reason``. A portal user sees its own company's names; the supplier's people show
    as "Staff". Public so that other screens (the customer portal) show the same history.
    """
    transitions = list(order.transitions)
    ids = {i for i in (order.created_by_id, *(t.actor_id for t in transitions)) if i is not None}
    names: dict[int | None, str] = {
        person.id: _("Staff") if hides_person(viewer, person) else person.name
        for person in session.scalars(select(User).where(User.id.in_(ids)))
    }
    entries = [
        {
            "at": order.created_at,
            "actor": names.get(order.created_by_id, ""),
            "action": "",
            "title": _("Created"),
            "detail": "",
            "status": "draft",
            "reason": "",
        }
    ]
    for t in transitions:
        entries.append(
            {
                "at": t.at,
                "actor": names.get(t.actor_id, _("System")) if t.actor_id else _("System"),
                "action": t.action,
                "title": action_label(t.action),
                "detail": f"{step_label(t.from_step)} → {step_label(t.to_step)}",
                "status": t.to_status,
                "reason": t.reason,
            }
        )
    return entries


def _options(session: Session, order: Order, actor: User) -> tuple[list[ActionOption], str | None]:
    try:
        return Workflow(ordo().registry, session).options(order, actor), None
    except WorkflowError as exc:
        if exc.code == "unknown_step":
            return [], _("This order waits in step “%(step)s”, whose plugin is not enabled.", step=order.step)
        return [], localize(exc.message)


def order_badges(session: Session, orders: list[Order]) -> dict[int, list[Badge]]:
    """Plugins' marks for a page of orders (``ordo_order_badges``), by order id.

    Public so that other order lists (a plugin's queue) show the same marks.
    """
    badges: dict[int, list[Badge]] = {}
    if not orders:
        return badges
    for plugin, answer in ordo().registry.results_by_plugin("ordo_order_badges", orders=orders, session=session):
        for order_id, marks in (answer or {}).items():
            badges.setdefault(order_id, []).extend(replace(m, plugin=plugin) for m in marks)
    return badges


def _panels(session: Session, order: Order, actor: User) -> list[Panel]:
    panels = [
        replace(p, plugin=plugin)
        for plugin, group in ordo().registry.results_by_plugin(
            "ordo_order_panels", order=order, user=actor, session=session
        )
        for p in group
    ]
    return sorted(panels, key=lambda p: (p.order, p.plugin, p.title))


def _findings(session: Session, order: Order) -> list[Finding]:
    found = [
        replace(f, plugin=plugin)
        for plugin, group in ordo().registry.results_by_plugin("ordo_order_validate", order=order, session=session)
        for f in group
    ]
    rank = {"reject": 0, "warn": 1, "pass": 2}
    return sorted(found, key=lambda f: rank.get(f.level, 3))


@bp.get("/<int:order_id>")
@permission_required("orders.read")
def view_order(order_id: int) -> str:
    """The order page: header, lines, what can be done next, history, plugin panels."""
    session, actor = db(), current_actor()
    order = _get(order_id)
    options, workflow_problem = _options(session, order, actor)
    owner = session.get(User, order.owner_id) if order.owner_id else None
    return render_template(
        "orders/view.html",
        order=order,
        owner=owner,
        options=options,
        workflow_problem=workflow_problem,
        timeline=order_timeline(session, order, actor),
        panels=_panels(session, order, actor),
        findings=_findings(session, order) if order.status in ("draft", "submitted") else [],
        can_edit=order.status == "draft" and actor.can("orders.edit"),
        can_copy=actor.can("orders.create") and actor.customer_id is None,
        audit_trail=_audit_trail(session, order, actor),
    )


def _audit_trail(session: Session, order: Order, actor: User) -> dict[str, Any] | None:
    """The order's own audit entries and what showing them needs; None without ``audit.read``."""
    if not actor.can("audit.read"):
        return None
    entries = order_trail(session, actor, order.id)
    return {"entries": entries, **entry_context(session, entries)}


def describe_refusal(exc: ServiceError, order: Order, action: str) -> list[str]:
    """What to tell the user when an action was refused, in their language."""
    label = action_label(action)
    if exc.code == "reason_required":
        return [_("“%(action)s” needs a reason. Please say why.", action=label)]
    if exc.code == "action_not_available":
        return [
            _(
                "“%(action)s” is not possible while the order is at step “%(step)s”.",
                action=label,
                step=step_label(order.step),
            )
        ]
    if exc.code == "unknown_action":
        return [_("There is no action “%(action)s”.", action=action)]
    if exc.code == "forbidden":
        return [_("You may not do “%(action)s”: %(why)s", action=label, why=localize(exc.message))]
    if exc.code == "stale_version":
        return [_("Someone changed this order meanwhile, so nothing was done. Check its current state and try again.")]
    if exc.code == "unknown_step":
        return [_("This order waits in step “%(step)s”, whose plugin is not enabled.", step=order.step)]
    if exc.code == "transition_refused":
        reasons = exc.details.get("reasons", []) if isinstance(exc.details, dict) else []
        return [_("“%(action)s” was refused:", action=label), *(localize(r) for r in reasons)]
    return [localize(exc.message)]


@bp.post("/<int:order_id>/act")
@permission_required("orders.read")
def take_order_action(order_id: int) -> WerkzeugResponse:
    """Take a workflow action on the order (with its reason) and come back to the page."""
    session, actor = db(), current_actor()
    order = _get(order_id, for_update=True)
    name = request.form.get("action", "")
    version = request.form.get("version", "")
    try:
        reason = ActionInSchema().load({"reason": request.form.get("reason", "")})["reason"]
    except ValidationError:
        flash(_("The reason is too long (at most 1000 characters)."), "danger")
        return redirect(url_for(".view_order", order_id=order.id))
    try:
        transition = take_action(
            session, ordo().registry, actor, order, name, reason, int(version) if version.isdigit() else None
        )
        session.commit()
    except ServiceError as exc:
        session.rollback()
        messages = describe_refusal(exc, order, name)
        flash(" ".join(messages), "danger")
        return redirect(url_for(".view_order", order_id=order_id))
    except StaleDataError:
        session.rollback()
        flash(
            _("Someone changed this order meanwhile, so nothing was done. Check its current state and try again."),
            "danger",
        )
        return redirect(url_for(".view_order", order_id=order_id))
    flash(
        _(
            "Order %(number)s: “%(action)s” done; it is now at step “%(step)s”.",
            number=order.number,
            action=action_label(transition.action),
            step=step_label(transition.to_step),
        ),
        "success",
    )
    return redirect(url_for(".view_order", order_id=order.id))


@bp.post("/<int:order_id>/copy")
@permission_required("orders.create")
def copy_order_view(order_id: int) -> WerkzeugResponse:
    """Copy the order into a new draft (after the guards agree) and open the copy."""
    session, actor = db(), current_actor()
    source = _get(order_id)
    try:
        order = copy_order(session, ordo().registry, actor, source)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        reasons = exc.details.get("reasons", []) if isinstance(exc.details, dict) else []
        messages = [localize(r) for r in reasons] or [localize(exc.message)]
        flash(" ".join([_("Copying was refused:"), *messages]), "danger")
        return redirect(url_for(".view_order", order_id=order_id))
    flash(
        _("Order %(source)s copied into the new draft %(number)s.", source=source.number, number=order.number),
        "success",
    )
    return redirect(url_for(".view_order", order_id=order.id))


# --- the form ---------------------------------------------------------------------------


def read_lines(form_data: Any) -> list[dict[str, str]]:
    """The line rows posted as ``lines-<n>-<field>``, in row order, blank rows dropped."""
    rows: dict[int, dict[str, str]] = {}
    for key, value in form_data.items(multi=True):
        match = _LINE_KEY.match(key)
        if match and match.group(2) in LINE_FIELDS:
            rows.setdefault(int(match.group(1)), {})[match.group(2)] = value.strip()
    ordered = [rows[n] for n in sorted(rows)]
    return [{f: row.get(f, "") for f in LINE_FIELDS} for row in ordered if any(row.values())]


def order_input(form: OrderForm, rows: list[dict[str, str]]) -> dict[str, Any]:
    """The form's values in the API's JSON shape, untouched so the schema judges them."""
    data: dict[str, Any] = {
        "channel": form.channel.data or None,
        "payment_method": form.payment_method.data or None,
        "currency": (form.currency.data or "").strip().upper(),
        "urgency": form.urgency.data or "normal",
        "requested_date": (form.requested_date.data or "").strip() or None,
        "ship_to": {key: (form[f"ship_to_{key}"].data or "").strip() for key in _SHIP_TO},
        "lines": [],
    }
    for name in ("reference", "reason", "contact_name", "contact_phone", "note"):
        data[name] = (form[name].data or "").strip()
    if form.customer.data:
        data["customer"] = form.customer.data
    for name in ("channel", "payment_method"):
        if data[name] is None:
            del data[name]
    for row in rows:
        line: dict[str, Any] = {"description": row["description"]}
        for name in ("product", "quantity", "unit_price", "discount"):
            if row[name]:
                line[name] = row[name]
        data["lines"].append(line)
    return data


def _setup_choices(form: OrderForm, session: Session, actor: User, current: Customer | None = None) -> list[Customer]:
    customers = _customer_options(session, actor, details=True)
    if current is not None and current not in customers:
        customers.append(current)
    form.customer.choices = select_choices(
        [("", _("— choose a customer —")), *((c.code, f"{c.code} · {c.name}") for c in customers)]
    )
    channels = choices(CHANNEL_LABELS)
    if actor.customer_id is not None:
        channels = [(k, v) for k, v in channels if k == "portal"]
    form.channel.choices = select_choices([("", _("— choose —")), *channels])
    form.payment_method.choices = select_choices([("", _("— choose —")), *choices(PAYMENT_METHOD_LABELS)])
    form.urgency.choices = select_choices(choices(URGENCY_LABELS))
    return customers


def _render_form(
    form: OrderForm,
    customers: list[Customer],
    rows: list[dict[str, str]],
    errors: FieldErrors,
    order: Order | None,
    status: int = 200,
) -> tuple[str, int]:
    actor = current_actor()
    products = list(db().scalars(products_query(actor))) if actor.can("products.read") else []
    return (
        render_template(
            "orders/form.html",
            form=form,
            customers=customers,
            products=products,
            rows=rows or [dict.fromkeys(LINE_FIELDS, "")],
            errors=errors,
            order=order,
        ),
        status,
    )


@bp.route("/new", methods=["GET", "POST"])
@permission_required("orders.create")
def new_order() -> Any:
    """Enter a new draft order; the server validates and recomputes every amount."""
    session, actor = db(), current_actor()
    form = OrderForm()
    customers = _setup_choices(form, session, actor)
    errors = FieldErrors()
    if request.method == "GET":
        form.currency.data = default_company(session).currency
        if actor.customer_id is not None:
            form.customer.data = customers[0].code if customers else ""
            form.channel.data = "portal"
        return _render_form(form, customers, [], errors, None)
    rows = read_lines(request.form)
    try:
        order = create_order(session, actor, load_order_input(order_input(form, rows)))
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        errors = field_errors(exc.details, groups=("lines",))
        attach_errors(form, errors)
        return _render_form(form, customers, rows, errors, None, 422)
    flash(_("Order %(number)s was saved as a draft.", number=order.number), "success")
    return redirect(url_for(".view_order", order_id=order.id))


def _form_from_order(form: OrderForm, order: Order) -> list[dict[str, str]]:
    for name in _HEADER_FIELDS:
        form[name].data = getattr(order, name)
    for key in _SHIP_TO:
        form[f"ship_to_{key}"].data = getattr(order, f"ship_to_{key}")
    form.customer.data = order.customer.code
    form.requested_date.data = order.requested_date.isoformat() if order.requested_date else ""
    form.version.data = str(order.version)
    return [
        {
            "product": line.product.sku,
            "description": line.description,
            "quantity": plain_number(line.quantity),
            "unit_price": plain_number(line.unit_price, 2),
            "discount": plain_number(line.discount) if line.discount else "",
        }
        for line in order.lines
    ]


@bp.route("/<int:order_id>/edit", methods=["GET", "POST"])
@permission_required("orders.edit")
def edit_order(order_id: int) -> Any:
    """Change a draft order; a stale form (someone saved meanwhile) is refused, never merged."""
    session, actor = db(), current_actor()
    order = _get(order_id, for_update=request.method == "POST")
    if order.status != "draft":
        flash(
            _(
                "Order %(number)s is %(status)s; only drafts can be edited.",
                number=order.number,
                status=status_label(order.status),
            ),
            "warning",
        )
        return redirect(url_for(".view_order", order_id=order.id))
    form = OrderForm()
    customers = _setup_choices(form, session, actor, order.customer)
    errors = FieldErrors()
    if request.method == "GET":
        return _render_form(form, customers, _form_from_order(form, order), errors, order)
    rows = read_lines(request.form)
    data = order_input(form, rows)
    data["version"] = int(form.version.data) if (form.version.data or "").isdigit() else 0
    try:
        update_order(session, actor, order, data)
        session.commit()
    except (ServiceError, StaleDataError) as exc:
        session.rollback()
        if isinstance(exc, ServiceError):
            abort_for(exc)
        if isinstance(exc, StaleDataError) or exc.code == "stale_version":
            errors.general.append(
                _(
                    "Someone else saved this order after you opened it, so your changes were not saved. "
                    "Open the order again to see the current version, then redo your changes."
                )
            )
            return _render_form(form, customers, rows, errors, order, 409)
        if exc.code == "not_editable":
            flash(_("Order %(number)s is no longer a draft; it was not changed.", number=order.number), "warning")
            return redirect(url_for(".view_order", order_id=order.id))
        errors = field_errors(exc.details, groups=("lines",))
        attach_errors(form, errors)
        return _render_form(form, customers, rows, errors, order, 422)
    flash(_("Order %(number)s was saved.", number=order.number), "success")
    return redirect(url_for(".view_order", order_id=order.id))
