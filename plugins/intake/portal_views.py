"""The portal's catalogue, cart and checkout screens (IN-8): thin views over the cart and checkout.

``/portal/`` lists the active products with the price that applies to the customer
today and adds them to the cart; ``/portal/cart`` reviews the cart at today's prices,
changes or removes lines, and holds the checkout form posting to ``/portal/checkout``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms import BooleanField, SelectField, StringField, TextAreaField

from core.clock import company_now
from core.models import Customer, Product, User
from core.services.orders import default_company
from core.views.common import current_actor, paginate, query_args, select_choices
from core.views.labels import payment_method_label
from core.web import db, ordo
from plugins.intake.models import IntakePriceListItem
from plugins.intake.portal import bp, may_order
from plugins.intake.portal_cart import (
    QuantityError,
    add_to_cart,
    cart_items,
    clear_cart,
    parse_quantity,
    portal_price,
    price_cart,
    save_cart,
)
from plugins.intake.portal_checkout import (
    CheckoutRefused,
    allowed_payment_methods,
    place_order,
    view_only_message,
)
from plugins.intake.pricing import AppliedPrice

_CATALOGUE_SORTS: dict[str, Any] = {"sku": Product.sku, "name": Product.name, "category": Product.category}


class CheckoutForm(FlaskForm):
    """The checkout form; its values are checked by :func:`plugins.intake.portal_checkout.place_order`."""

    requested_date = StringField(_l("Requested delivery date"), render_kw={"type": "date", "required": True})
    payment_method = SelectField(_l("Payment method"), validate_choice=False, render_kw={"required": True})
    address = SelectField(_l("Deliver to"), validate_choice=False, render_kw={"required": True})
    contact = SelectField(_l("Contact"), validate_choice=False, render_kw={"required": True})
    reference = StringField(_l("Your reference"), render_kw={"maxlength": 100})
    note = TextAreaField(_l("Note"), render_kw={"rows": 2, "maxlength": 2000})
    urgent = BooleanField(_l("Urgent order"))


def _customer(session: Session, actor: User) -> Customer:
    customer = session.get(Customer, actor.customer_id)
    assert customer is not None  # a portal user's customer always exists (foreign key)
    return customer


def _currency(session: Session) -> str:
    return default_company(session).currency


def _today() -> Any:
    return company_now().date()


# --- catalogue ------------------------------------------------------------------------------


def catalogue_query(text: str | None) -> Any:
    """Active products, optionally matching ``text`` in SKU, name or spec."""
    stmt = select(Product).where(Product.active.is_(True))
    if text:
        like = f"%{text.strip()}%"
        stmt = stmt.where(or_(Product.sku.ilike(like), Product.name.ilike(like), Product.spec.ilike(like)))
    return stmt


def price_tiers(session: Session, price: AppliedPrice | None, product_id: int) -> list[IntakePriceListItem]:
    """The tiers of the price list that priced a product, when it has more than one (else none)."""
    if price is None or price.price_list is None:
        return []
    items = list(
        session.scalars(
            select(IntakePriceListItem)
            .where(
                IntakePriceListItem.price_list_id == price.price_list.id, IntakePriceListItem.product_id == product_id
            )
            .order_by(IntakePriceListItem.min_quantity)
        )
    )
    return items if len(items) > 1 else []


@bp.route("/", methods=["GET", "POST"])
@login_required
def catalogue() -> Any:
    """The catalogue: active products with today's price for this customer; POST adds one to the cart."""
    session, actor = db(), current_actor()
    errors: dict[int, str] = {}
    ordering = may_order(session, actor)
    if request.method == "POST":
        added = _add(session, actor, ordering, errors)
        if added is not None:
            return added
    text = request.args.get("q", "").strip()
    page = paginate(
        session,
        catalogue_query(text),
        sortable=_CATALOGUE_SORTS,
        default_sort="sku",
        endpoint=f"{bp.name}.catalogue",
        args=query_args("q"),
        tie_breaker=Product.id,
    )
    today, currency = _today(), _currency(session)
    prices = {p.id: portal_price(session, actor.customer_id or 0, p.id, 1, today, currency) for p in page.rows}
    tiers = {p.id: price_tiers(session, prices[p.id], p.id) for p in page.rows}
    return (
        render_template(
            "intake/portal/catalogue.html",
            page=page,
            q=text,
            prices=prices,
            tiers=tiers,
            errors=errors,
            posted=request.form if request.method == "POST" else {},
            ordering=ordering,
            currency=currency,
        ),
        422 if errors else 200,
    )


def _add(session: Session, actor: User, ordering: bool, errors: dict[int, str]) -> Response | None:
    """Add the posted product and quantity to the cart; a redirect, or None with ``errors`` set."""
    back = request.full_path.rstrip("?")
    if not ordering:
        flash(view_only_message(), "warning")
        return redirect(back)
    raw = request.form.get("product", "")
    product = session.get(Product, int(raw)) if raw.isdigit() and len(raw) < 10 else None
    if product is None or not product.active:
        flash(_("That product is not offered; nothing was added to your cart."), "danger")
        return redirect(back)
    try:
        quantity = parse_quantity(request.form.get("quantity"))
        price = portal_price(session, actor.customer_id or 0, product.id, quantity, _today(), _currency(session))
        if price is None:
            raise QuantityError(
                _("No price applies to %(sku)s for your company; please contact us for a quote.", sku=product.sku)
            )
        add_to_cart(product.id, quantity)
    except QuantityError as exc:
        errors[product.id] = str(exc)
        return None
    flash(
        _("Added %(quantity)s × %(sku)s to your cart.", quantity=_plain(quantity), sku=product.sku),
        "success",
    )
    return redirect(back)


def _plain(value: Decimal) -> str:
    return format(value, "f")


# --- cart -----------------------------------------------------------------------------------


def _checkout_form(session: Session, customer: Customer) -> CheckoutForm:
    form = CheckoutForm()
    form.payment_method.choices = select_choices(
        [("", _("— choose —")), *((m, payment_method_label(m)) for m in allowed_payment_methods(session, customer.id))]
    )
    form.address.choices = select_choices(
        [("", _("— choose —"))]
        + [
            (
                str(a.id),
                " · ".join(p for p in (a.label, f"{a.province} {a.city} {a.district} {a.address}") if p.strip()),
            )
            for a in customer.addresses
        ]
    )
    form.contact.choices = select_choices(
        [("", _("— choose —"))]
        + [(str(c.id), " · ".join(p for p in (c.name, c.phone) if p)) for c in customer.contacts]
    )
    if request.method == "GET":
        if len(customer.addresses) == 1:
            form.address.data = str(customer.addresses[0].id)
        if len(customer.contacts) == 1:
            form.contact.data = str(customer.contacts[0].id)
    return form


def _render_cart(
    session: Session,
    actor: User,
    *,
    quantity_errors: dict[int, str] | None = None,
    refusal: CheckoutRefused | None = None,
    status: int = 200,
) -> tuple[str, int]:
    customer = _customer(session, actor)
    cart = price_cart(session, customer.id, cart_items(), _today(), _currency(session))
    form = _checkout_form(session, customer)
    if refusal is not None:
        for name, messages in refusal.fields.items():
            if name in form:
                form[name].errors = list(messages)
    return (
        render_template(
            "intake/portal/cart.html",
            cart=cart,
            form=form,
            customer=customer,
            ordering=may_order(session, actor),
            quantity_errors=quantity_errors or {},
            posted=request.form,
            refusal=refusal,
            today=_today(),
        ),
        status,
    )


@bp.get("/cart")
@login_required
def cart() -> tuple[str, int]:
    """The cart at today's prices, with the checkout form."""
    return _render_cart(db(), current_actor())


@bp.post("/cart")
@login_required
def update_cart() -> Any:
    """Change the cart's quantities (``qty-<product id>``); every bad one is shown and nothing changes."""
    session, actor = db(), current_actor()
    if not may_order(session, actor):
        flash(view_only_message(), "warning")
        return redirect(url_for(".cart"))
    items = cart_items()
    errors: dict[int, str] = {}
    for product_id in list(items):
        raw = request.form.get(f"qty-{product_id}")
        if raw is None:
            continue
        try:
            items[product_id] = parse_quantity(raw)
        except QuantityError as exc:
            errors[product_id] = str(exc)
    if errors:
        return _render_cart(session, actor, quantity_errors=errors, status=422)
    save_cart(items)
    flash(_("Your cart was updated."), "success")
    return redirect(url_for(".cart"))


@bp.post("/cart/remove/<int:product_id>")
@login_required
def remove_from_cart(product_id: int) -> Response:
    """Take a product out of the cart."""
    items = cart_items()
    if items.pop(product_id, None) is not None:
        save_cart(items)
        flash(_("The product was removed from your cart."), "success")
    return redirect(url_for(".cart"))


@bp.post("/checkout")
@login_required
def checkout() -> Any:
    """Place the order for the cart as reviewed: created at today's prices and submitted, in one transaction."""
    session, actor = db(), current_actor()
    cart = price_cart(session, actor.customer_id or 0, cart_items(), _today(), _currency(session))
    try:
        order = place_order(session, ordo().registry, actor, cart, request.form, _today())
        session.commit()
    except CheckoutRefused as refusal:
        session.rollback()
        return _render_cart(session, actor, refusal=refusal, status=refusal.status)
    clear_cart()
    if order.status == "rejected":
        flash(_("Order %(number)s could not be accepted; the reasons are shown below.", number=order.number), "danger")
    else:
        flash(_("Thank you! We received order %(number)s and are checking it.", number=order.number), "success")
    return redirect(url_for(".order_detail", order_id=order.id))
