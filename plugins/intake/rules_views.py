"""Intake screens: pre-check rule settings, product ordering rules and purchase limits (IN-3).

- **Pre-check rules** (``/intake/rules/``, ``settings.manage``): every rule, intake's and
  other plugins', with an on/off switch, plus the tuning settings (price tolerance,
  duplicate window), saved together through :mod:`core.settings` or not at all.
- **Ordering rules** (``/intake/rules/products``): each product's minimum and maximum
  quantity per order, lead time and regular flag; and which customers have purchase limits.
- **Purchase limits** (``/intake/rules/customers/<id>/limits``): a customer's limits per
  product and month, quarter or year; add and delete.

Seeing ordering rules and limits needs ``intake.prices.read``, changing them
``intake.prices.manage``. Thin views: the services are in :mod:`plugins.intake.limits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from core.contrib import MenuItem, Setting
from core.models import Customer, Product
from core.plugins import Registry
from core.services import ServiceError
from core.settings import InvalidValue, check_value, get_setting, parse_text, set_settings
from core.views.common import (
    FieldErrors,
    abort_for,
    current_actor,
    field_errors,
    permission_required,
    plain_number,
    screen_blueprint,
)
from core.views.labels import translate
from core.views.messages import localize
from core.web import db, ordo
from plugins.intake import limits, precheck
from plugins.intake.models import LIMIT_PERIODS
from plugins.intake.views import bp as screens

bp = screen_blueprint("intake_rules", __name__, url_prefix="/rules", template_folder="templates")
screens.register_blueprint(bp)

#: Menu entries of these screens (collected by the plugin's ordo_menu_items).
MENU: list[MenuItem] = [
    MenuItem(
        "Pre-check rules", "intake.intake_rules.rules", "settings.manage", order=45, icon="sliders", plugin="intake"
    ),
    MenuItem(
        "Ordering rules", "intake.intake_rules.products", "intake.prices.read", order=46, icon="rulers", plugin="intake"
    ),
]

#: The settings that tune the built-in rules, shown below the rules.
TUNING = (precheck.TOLERANCE, precheck.DUPLICATE_WINDOW)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"plain_quantity": plain_number, "period_label": _period_label, "periods": LIMIT_PERIODS}


def _period_label(period: str) -> str:
    """A limit period (month, quarter, year) as the screens show it, translated."""
    return translate(limits.PERIOD_LABELS.get(period, period))


# --- pre-check rules ------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleRow:
    """A pre-check rule as the screen shows it: its switch's setting (None: always on) and state."""

    rule: precheck.PrecheckRule
    plugin_title: str
    setting: Setting | None
    on: bool


def _rule_rows(registry: Registry) -> list[RuleRow]:
    session = db()
    rows = []
    for rule in precheck.precheck_rules(registry):
        setting = registry.settings.get(precheck.RULE_SETTING.format(rule.code))
        on = bool(get_setting(session, setting.key, registry)) if setting is not None else True
        plugin = registry.installed.get(rule.plugin)
        rows.append(RuleRow(rule, plugin.title if plugin is not None else rule.plugin, setting, on))
    return rows


def _tuning(registry: Registry) -> list[tuple[Setting, Any]]:
    session = db()
    return [(registry.settings[key], get_setting(session, key, registry)) for key in TUNING if key in registry.settings]


def _read_rules_form(registry: Registry) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str]]]:
    """The changes the rules form asks for, what was typed, and errors per setting key.

    Only values differing from the current ones count as changes (no audit entry for the rest).
    """
    session = db()
    keys = [row.setting.key for row in _rule_rows(registry) if row.setting is not None]
    keys += [setting.key for setting, _value in _tuning(registry)]
    values: dict[str, Any] = {}
    entered: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for key in keys:
        setting = registry.settings[key]
        raw = request.form.get(key)
        entered[key] = raw is not None if setting.type is bool else (raw or "")
        try:
            value = check_value(setting, parse_text(setting, raw))
        except InvalidValue as exc:
            errors[key] = [localize(str(exc))]
            continue
        current = get_setting(session, key, registry)
        if value != current or type(value) is not type(current):
            values[key] = value
    return values, entered, errors


@bp.route("/", methods=["GET", "POST"])
@permission_required("settings.manage")
def rules() -> Any:
    """Every pre-check rule with its switch, and the tuning settings; saved all together or not at all."""
    registry = ordo().registry
    entered: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        values, entered, errors = _read_rules_form(registry)
        if not errors:
            session = db()
            changed = set_settings(session, values, current_actor(), registry)
            session.commit()
            if changed:
                flash(_("Pre-check rules saved: %(count)s changed.", count=len(changed)), "success")
            else:
                flash(_("Nothing changed."), "info")
            return redirect(url_for(".rules"))
        status = 422
    page = render_template(
        "intake/rules.html", rows=_rule_rows(registry), tuning=_tuning(registry), entered=entered, errors=errors
    )
    return page, status


# --- products' ordering rules ----------------------------------------------------------------


@bp.get("/products")
@permission_required("intake.prices.read")
def products() -> str:
    """Each product's ordering rules, and the customers with purchase limits."""
    session, user = db(), current_actor()
    return render_template(
        "intake/product_rules.html",
        rows=limits.product_rules(session, user),
        customers=list(session.scalars(select(Customer).order_by(Customer.code))),
        limit_counts=limits.limit_counts(session, user),
    )


def _rule_form(product: Product) -> dict[str, Any]:
    rule = limits.product_rule_of(db(), product.id)
    if request.method == "POST":
        form = request.form
        return {
            "min_quantity": form.get("min_quantity", ""),
            "max_quantity": form.get("max_quantity", ""),
            "lead_time_days": form.get("lead_time_days", ""),
            "regular": "regular" in form,
        }
    return {
        "min_quantity": plain_number(rule.min_quantity) if rule else "",
        "max_quantity": plain_number(rule.max_quantity) if rule else "",
        "lead_time_days": str(rule.lead_time_days) if rule else "0",
        "regular": rule.regular if rule else False,
    }


@bp.route("/products/<int:product_id>", methods=["GET", "POST"])
@permission_required("intake.prices.manage")
def edit_product(product_id: int) -> Any:
    """Change one product's ordering rules."""
    session, user = db(), current_actor()
    try:
        product = limits.get_product(session, user, product_id)
    except ServiceError as exc:
        abort_for(exc)
        raise
    values = _rule_form(product)
    errors = FieldErrors()
    if request.method == "POST":
        try:
            limits.save_product_rule(session, user, product, values)
        except ServiceError as exc:
            session.rollback()
            abort_for(exc)
            errors = field_errors(exc.details)
        else:
            session.commit()
            flash(_("Ordering rules of %(sku)s saved.", sku=product.sku), "success")
            return redirect(url_for(".products"))
    page = render_template("intake/product_rule_form.html", product=product, values=values, errors=errors)
    return page, 422 if errors else 200


# --- customers' purchase limits ----------------------------------------------------------------


def _customer(customer_id: int) -> Customer:
    try:
        return limits.get_customer(db(), current_actor(), customer_id)
    except ServiceError as exc:
        abort_for(exc)
        raise


def _limits_page(customer: Customer, values: dict[str, str], errors: FieldErrors, status: int = 200) -> Any:
    session = db()
    found = limits.customer_limits(session, current_actor(), customer)
    skus = {p.id: p.sku for p in session.scalars(select(Product))}
    products = [p for p in session.scalars(select(Product).order_by(Product.sku)) if p.active]
    page = render_template(
        "intake/limits.html",
        customer=customer,
        limits=found,
        skus=skus,
        products=products,
        values=values,
        errors=errors,
    )
    return page, status


@bp.get("/customers/<int:customer_id>/limits")
@permission_required("intake.prices.read")
def customer_limits(customer_id: int) -> Any:
    """A customer's purchase limits, with a form to add one."""
    customer = _customer(customer_id)
    return _limits_page(customer, {"product": "", "period": "month", "max_quantity": ""}, FieldErrors())


@bp.post("/customers/<int:customer_id>/limits")
@permission_required("intake.prices.manage")
def add_limit(customer_id: int) -> Any:
    """Add a purchase limit (product SKU, period, maximum quantity) to the customer."""
    session, user = db(), current_actor()
    customer = _customer(customer_id)
    values = {key: request.form.get(key, "").strip() for key in ("product", "period", "max_quantity")}
    try:
        limits.add_purchase_limit(session, user, customer, values)
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        return _limits_page(customer, values, field_errors(exc.details), 422)
    session.commit()
    flash(_("Purchase limit for %(sku)s added.", sku=values["product"]), "success")
    return redirect(url_for(".customer_limits", customer_id=customer.id))


@bp.post("/customers/<int:customer_id>/limits/<int:limit_id>/delete")
@permission_required("intake.prices.manage")
def delete_limit(customer_id: int, limit_id: int) -> Response:
    """Remove one of the customer's purchase limits (the page asks for confirmation first)."""
    session, user = db(), current_actor()
    customer = _customer(customer_id)
    try:
        limits.delete_purchase_limit(session, user, customer, limit_id)
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        raise
    session.commit()
    flash(_("Purchase limit removed."), "success")
    return redirect(url_for(".customer_limits", customer_id=customer.id))
