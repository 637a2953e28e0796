"""Staff order entry (IN-1, IN-2, IN-5, IN-6): orders received by phone, e-mail, fax or offline.

An order clerk keys in the order from the customer's original document and attaches
that document, so the manual check can compare the two. One request, one transaction:
core's ``create_order`` (the clerk is ``created_by``, which four-eyes verification
uses), core's attachment service (the original, kind ``customer_order``), intake's
record of the order (its transaction type) and, for "Save and submit", the workflow's
``submit`` (which runs the automatic pre-check). Any refusal rolls everything back and
shows the message beside its field.

A line without a unit price gets the applicable price (contract, group or list price,
:func:`plugins.intake.pricing.applicable_price`); an entered price is kept as entered.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import Forbidden, RequestEntityTooLarge
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField

from core.attachments.panel import upload_limit_mb
from core.attachments.service import AttachmentRefused, add_attachment, allowed_types, check_file
from core.attachments.views import refusal_text
from core.contrib import MenuItem, Setting
from core.labels import N_
from core.models import Customer, Order, Product, User
from core.services import Conflict, ServiceError, audit
from core.services.orders import (
    build_lines,
    create_order,
    default_company,
    load_order_input,
    may_see_order,
    resolve_customer,
    take_action,
)
from core.services.parties import customers_query, products_query
from core.settings import get_setting
from core.views.common import (
    FieldErrors,
    abort_for,
    attach_errors,
    current_actor,
    field_errors,
    permission_required,
    screen_blueprint,
    select_choices,
)
from core.views.labels import CHANNEL_LABELS, PAYMENT_METHOD_LABELS, URGENCY_LABELS, choices, step_label
from core.views.orders import LINE_FIELDS, OrderForm, describe_refusal, order_input, read_lines
from core.web import db, ordo
from plugins.intake import pricing
from plugins.intake.flow import company_today, intake_record
from plugins.intake.models import TRANSACTION_TYPE_LABELS as TYPE_LABELS
from plugins.intake.models import TRANSACTION_TYPES
from plugins.intake.views import bp as screens

bp = screen_blueprint("intake_entry", __name__, url_prefix="/entry", template_folder="templates")
screens.register_blueprint(bp)

#: The channels staff enter orders for; portal and API orders are recorded by their senders.
STAFF_CHANNELS = ("phone", "email", "fax", "offline")
#: Setting: whether e-mail, fax and offline orders need the customer's original document.
REQUIRE_ORIGINAL = "intake.entry.require_original"
#: The attachment kind the original document is stored as (core's "Customer's original order").
ORIGINAL_KIND = "customer_order"

SETTINGS = (
    Setting(
        REQUIRE_ORIGINAL,
        bool,
        True,
        N_("Staff entry: the customer's original document is required"),
        N_(
            "Orders entered by staff from e-mail, fax or offline need the customer's original order or "
            "contract attached (phone orders never do)."
        ),
    ),
)

#: Transaction types (交易类型, IN-7) as people read them.
TRANSACTION_TYPE_LABELS: dict[str, object] = {code: _l(text) for code, text in TYPE_LABELS.items()}

#: Menu entries of these screens (collected by the plugin's ordo_menu_items).
MENU: list[MenuItem] = [
    MenuItem("Enter order", "intake.intake_entry.new", "orders.create", order=34, icon="pencil", plugin="intake"),
]
#: The menu label, for the plugin's catalogue (menus translate labels when rendered).
_MENU_LABELS = (N_("Enter order"),)


class EntryForm(OrderForm):
    """Core's order header plus what staff entry adds: external reference, transaction type, original."""

    external_reference = StringField(_l("External reference"), render_kw={"maxlength": 100, "autocomplete": "off"})
    transaction_type = SelectField(_l("Transaction type"), validate_choice=False, default="domestic")
    original = FileField(_l("Customer's original document"))


def require_original(session: Session, channel: str) -> bool:
    """Whether an order on ``channel`` needs its original document (setting; never for phone)."""
    return channel != "phone" and bool(get_setting(session, REQUIRE_ORIGINAL))


def _customers(session: Session, actor: User) -> list[Customer]:
    """Active customers the clerk may pick, with contacts and addresses (the form prefills from them)."""
    if not actor.can("customers.read"):
        return []
    stmt = customers_query(actor).options(selectinload(Customer.contacts), selectinload(Customer.addresses))
    return list(session.scalars(stmt))


def _setup_choices(form: EntryForm, customers: list[Customer]) -> None:
    form.customer.choices = select_choices(
        [("", _("— choose a customer —")), *((c.code, f"{c.code} · {c.name}") for c in customers)]
    )
    staff = [(code, label) for code, label in choices(CHANNEL_LABELS) if code in STAFF_CHANNELS]
    form.channel.choices = select_choices([("", _("— choose —")), *staff])
    form.payment_method.choices = select_choices([("", _("— choose —")), *choices(PAYMENT_METHOD_LABELS)])
    form.urgency.choices = select_choices(choices(URGENCY_LABELS))
    form.transaction_type.choices = select_choices(choices(TRANSACTION_TYPE_LABELS))


def prefill_from_customer(form: EntryForm, customer: Customer) -> None:
    """Fill the empty contact and ship-to fields from the customer's first contact and address."""
    contact = customer.contacts[0] if customer.contacts else None
    address = customer.addresses[0] if customer.addresses else None
    values = {
        "contact_name": contact.name if contact else "",
        "contact_phone": contact.phone if contact else "",
        "ship_to_contact": contact.name if contact else "",
        "ship_to_phone": contact.phone if contact else "",
        "ship_to_province": address.province if address else "",
        "ship_to_city": address.city if address else "",
        "ship_to_address": address.address if address else "",
    }
    for name, value in values.items():
        if not (form[name].data or "").strip() and value:
            form[name].data = value


def _product(session: Session, ref: int | str) -> Product | None:
    if isinstance(ref, int):
        return session.get(Product, ref)
    return session.scalar(select(Product).where(Product.sku == ref))


def fill_applicable_prices(session: Session, data: dict[str, Any]) -> None:
    """Give each line without a unit price the price that applies to the customer today.

    Lines whose product or customer is unknown are left alone: ``create_order`` names
    them. When no price list and no list price apply, core's list price is used.
    """
    customer_ref = data["customer"]
    customer = (
        session.get(Customer, customer_ref)
        if isinstance(customer_ref, int)
        else session.scalar(select(Customer).where(Customer.code == customer_ref))
    )
    if customer is None:
        return
    today = company_today()
    with session.no_autoflush:
        for line in data["lines"]:
            if line.get("unit_price") is not None:
                continue
            product = _product(session, line["product"])
            if product is None:
                continue
            applied = pricing.applicable_price(
                session, customer.id, product.id, line["quantity"], today, data["currency"]
            )
            if applied is not None:
                line["unit_price"] = Decimal(applied.unit_price)


def _entry_input(form: EntryForm, rows: list[dict[str, str]]) -> dict[str, Any]:
    data = order_input(form, rows)
    data["external_reference"] = (form.external_reference.data or "").strip() or None
    return data


def _upload() -> FileStorage | None:
    upload = request.files.get("original")
    return upload if upload is not None and upload.filename else None


def _check_original(session: Session, actor: User, channel: str, upload: FileStorage | None) -> tuple[bytes, list[str]]:
    """The original's bytes and the problems with it (missing, refused type or size, no permission)."""
    if upload is None:
        if channel in STAFF_CHANNELS and require_original(session, channel):
            return b"", [
                _(
                    "Attach the customer's original order or contract: it is required for e-mail, fax and "
                    "offline orders."
                )
            ]
        return b"", []
    if not actor.can("attachments.upload"):
        return b"", [_("You may not attach files to orders (permission “attachments.upload”).")]
    data = upload.read()
    try:
        check_file(session, upload.filename or "original", data)
    except AttachmentRefused as exc:
        return b"", [refusal_text(exc)]
    return data, []


def _own_problems(form: EntryForm) -> dict[str, list[str]]:
    """Problems with the fields core does not judge: the staff channel and the transaction type."""
    problems: dict[str, list[str]] = {}
    channel = form.channel.data or ""
    if channel and channel not in STAFF_CHANNELS:
        problems["channel"] = [
            _("Staff enter phone, e-mail, fax and offline orders; portal and API orders arrive by themselves.")
        ]
    if form.transaction_type.data not in TRANSACTION_TYPES:
        problems["transaction_type"] = [_("Choose a transaction type from the list.")]
    return problems


def _merge(errors: FieldErrors, details: Any) -> None:
    """Add a service refusal's ``details`` to ``errors``, skipping messages already shown."""
    more = field_errors(details, groups=("lines",))
    for name, messages in more.fields.items():
        shown = errors.fields.setdefault(name, [])
        shown.extend(m for m in messages if m not in shown)
    for n, row in more.rows.get("lines", {}).items():
        target = errors.rows.setdefault("lines", {}).setdefault(n, {})
        for name, messages in row.items():
            shown = target.setdefault(name, [])
            shown.extend(m for m in messages if m not in shown)


def reference_problems(session: Session, customer: str, rows: list[dict[str, str]], errors: FieldErrors) -> None:
    """Add unknown or deactivated customer and products to ``errors`` (core's checks and messages).

    Used when the order schema refused the form, so that ``create_order`` never ran: the
    clerk then sees every problem at once instead of one round after the other.
    """
    with session.no_autoflush:
        if customer:
            try:
                resolve_customer(session, customer)
            except ServiceError as exc:
                _merge(errors, exc.details)
        named = [n for n, row in enumerate(rows) if row["product"]]
        try:
            build_lines(session, [{"product": rows[n]["product"], "quantity": Decimal(1)} for n in named])
        except ServiceError as exc:
            found = exc.details.get("lines", {}) if isinstance(exc.details, dict) else {}
            _merge(errors, {"lines": {named[i]: row for i, row in found.items() if isinstance(row, dict)}})


def _duplicate_message(exc: Conflict) -> tuple[str, dict[str, Any]]:
    details = exc.details if isinstance(exc.details, dict) else {}
    message = _(
        "Order %(number)s already has the external reference “%(reference)s” from this customer on this "
        "channel. This is a duplicate: open that order instead of entering it again.",
        number=details.get("number", ""),
        reference=details.get("external_reference", ""),
    )
    return message, details


def _render(
    form: EntryForm,
    customers: list[Customer],
    rows: list[dict[str, str]],
    errors: FieldErrors,
    duplicate: dict[str, Any] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    session, actor = db(), current_actor()
    products = list(session.scalars(products_query(actor))) if actor.can("products.read") else []
    return (
        render_template(
            "intake/entry.html",
            form=form,
            customers=customers,
            products=products,
            rows=rows or [dict.fromkeys(LINE_FIELDS, "")],
            errors=errors,
            duplicate=duplicate,
            required_original=bool(get_setting(session, REQUIRE_ORIGINAL)),
            upload_mb=upload_limit_mb(session),
            upload_types=", ".join(allowed_types(session)),
        ),
        status,
    )


def _staff_only(actor: User) -> None:
    """Customers' portal users order through the portal, never here (403)."""
    if actor.customer_id is not None:
        raise Forbidden()


@bp.get("/new")
@permission_required("orders.create")
def new() -> tuple[str, int]:
    """The entry form; ``?customer=<code>`` preselects a customer and fills contact and ship-to."""
    session, actor = db(), current_actor()
    _staff_only(actor)
    form = EntryForm(formdata=None)
    customers = _customers(session, actor)
    _setup_choices(form, customers)
    form.currency.data = default_company(session).currency
    form.transaction_type.data = "domestic"
    chosen = next((c for c in customers if c.code == request.args.get("customer", "")), None)
    if chosen is not None:
        form.customer.data = chosen.code
        prefill_from_customer(form, chosen)
    return _render(form, customers, [], FieldErrors())


@bp.post("/new")
@permission_required("orders.create")
def save() -> Any:
    """Save the entered order as a draft, or save and submit it (pre-check); all or nothing."""
    session, actor = db(), current_actor()
    _staff_only(actor)
    form = EntryForm()
    customers = _customers(session, actor)
    _setup_choices(form, customers)
    rows = read_lines(request.form)
    submit = request.form.get("save") == "submit"
    problems = _own_problems(form)
    upload = _upload()
    data, original_problems = _check_original(session, actor, form.channel.data or "", upload)
    if original_problems:
        problems["original"] = original_problems
    errors = FieldErrors()
    duplicate: dict[str, Any] | None = None
    order: Order | None = None
    loaded = False
    try:
        values = load_order_input(_entry_input(form, rows))
        loaded = True
        fill_applicable_prices(session, values)
        order = create_order(session, actor, values)
        if not may_see_order(session, actor, order):
            problems.setdefault("customer", []).append(
                _(
                    "Customer %(code)s lies outside your data scope; you may not enter orders for it.",
                    code=order.customer.code,
                )
            )
    except ServiceError as exc:
        abort_for(exc)
        if isinstance(exc, Conflict) and exc.code == "duplicate_external_reference":
            message, duplicate = _duplicate_message(exc)
            problems.setdefault("external_reference", []).append(message)
        else:
            errors = field_errors(exc.details, groups=("lines",))
            if not loaded:
                reference_problems(session, form.customer.data or "", rows, errors)
    for name, messages in problems.items():
        errors.fields[name] = [*errors.fields.get(name, []), *messages]
    if errors or order is None:
        session.rollback()
        attach_errors(form, errors)
        return _render(form, customers, rows, errors, duplicate, 422)
    try:
        attachment = None
        if upload is not None and data:
            attachment = add_attachment(
                session,
                actor,
                order.id,
                filename=upload.filename or "original",
                data=data,
                kind=ORIGINAL_KIND,
                note=_("Original document (%(channel)s)", channel=CHANNEL_LABELS.get(order.channel, order.channel)),
            )
        record = intake_record(session, order)
        record.transaction_type = form.transaction_type.data or "domestic"
        session.flush()
        audit.record(
            session,
            actor,
            "intake_order",
            order.id,
            "enter",
            {
                "channel": order.channel,
                "transaction_type": record.transaction_type,
                "original_attachment_id": attachment.id if attachment else None,
            },
            order_id=order.id,
        )
        if submit:
            take_action(session, ordo().registry, actor, order, "submit")
    except ServiceError as exc:
        # Nothing the clerk typed is lost: the form comes back with the refusal (e.g. a
        # guard vetoing the submission, or no permission to submit), and nothing is saved.
        general = describe_refusal(exc, order, "submit") if submit else [refusal_text(exc)]
        session.rollback()
        errors.general.extend(general)
        return _render(form, customers, rows, errors, None, exc.status)
    session.commit()
    _flash_saved(order, submit)
    return redirect(url_for("orders.view_order", order_id=order.id))


def _flash_saved(order: Order, submitted: bool) -> None:
    if not submitted:
        flash(_("Order %(number)s was saved as a draft.", number=order.number), "success")
    elif order.status == "rejected":
        flash(
            _(
                "Order %(number)s was saved and submitted, but the pre-check rejected it; the reasons are in "
                "its history.",
                number=order.number,
            ),
            "warning",
        )
    else:
        flash(
            _(
                "Order %(number)s was saved and submitted; it is now at step “%(step)s”.",
                number=order.number,
                step=step_label(order.step),
            ),
            "success",
        )


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge) -> Response:
    # The server refuses a body above its limit before the view runs: say so, nothing was saved.
    limit = upload_limit_mb(db())
    flash(_("The file is larger than %(limit)s MB, the most accepted. Nothing was saved.", limit=limit), "danger")
    return redirect(url_for(".new"))
