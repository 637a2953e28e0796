"""Carrier settings screens (``/logistics/carriers…``): carriers, services, transit times, rates,
the webhook secret and the rate calculator (LG-3, LG-11).

- **Carriers**: a paginated list; a form per carrier (code, name, liability terms, insurance
  rate and minimum, connector, active) with its services underneath; delete (only never
  used carriers — deactivate the others).
- **Services**: a form per service (code, name, volumetric divisor, active) with its transit
  and rate tables, rows added and removed inline.
- **Webhook secret**: generated on request (with a confirmation, as it replaces the
  previous one) and shown once with the URL the carrier posts tracking updates to.
- **Rate calculator**: from/to province, weight, volume, promised date → the same
  suggestion table a shipment shows (:func:`plugins.logistics.carriers.suggest`).

Everything needs ``logistics.carriers.manage``. The services in :mod:`plugins.logistics.carriers`
check the input; their refusals are shown beside the fields in the reader's language.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.clock import company_now
from core.contrib import MenuItem
from core.labels import N_
from core.views.common import abort_for, current_actor, paginate, permission_required, plain_number, query_args
from core.web import db
from plugins.logistics import carriers, flow
from plugins.logistics.carriers import CarrierInputError, Parcel
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import RATE_BASES, LogisticsCarrier, LogisticsService
from plugins.logistics.remote import home_region
from plugins.logistics.views import bp

#: Menu entries of these screens (collected by the plugin's ordo_menu_items).
MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Carriers"), "logistics.carrier_list", flow.CARRIERS_MANAGE, order=78, icon="truck", plugin="logistics"
    ),
    MenuItem(
        N_("Rate calculator"),
        "logistics.rate_calculator",
        flow.CARRIERS_MANAGE,
        order=79,
        icon="calculator",
        plugin="logistics",
    ),
)

Errors = dict[str, list[str]]

_CARRIER_FORM = ("code", "name", "liability", "insurance_rate", "insurance_minimum", "connector")
_SERVICE_FORM = ("code", "name", "volumetric_divisor")
_TRANSIT_FORM = ("from_province", "to_province", "days")
_RATE_FORM = (
    "to_province",
    "basis",
    "first_unit",
    "first_price",
    "additional_unit",
    "additional_price",
    "minimum_charge",
)


def _typed(names: tuple[str, ...]) -> dict[str, Any]:
    return {name: request.form.get(name, "").strip() for name in names}


def _refused(exc: LogisticsError) -> Errors:
    """The refusal as errors per field (a general one under ``""``); 403/404 become error pages."""
    abort_for(exc)
    if isinstance(exc, CarrierInputError):
        return exc.localized_fields()
    return {"": [exc.localized()]}


def _get_carrier(carrier_id: int) -> LogisticsCarrier:
    carrier = db().get(LogisticsCarrier, carrier_id)
    if carrier is None:
        raise NotFound()
    return carrier


def _get_service(service_id: int) -> LogisticsService:
    service = db().get(LogisticsService, service_id)
    if service is None:
        raise NotFound()
    return service


def _money_text(value: Decimal) -> str:
    return plain_number(value, 2)


# --- carriers ---------------------------------------------------------------------------------


@bp.get("/carriers")
@permission_required(flow.CARRIERS_MANAGE)
def carrier_list() -> str:
    """Every carrier with its number of services, filtered by code or name."""
    session = db()
    args = query_args("q")
    stmt = select(LogisticsCarrier)
    if "q" in args:
        pattern = f"%{args['q']}%"
        stmt = stmt.where(LogisticsCarrier.code.ilike(pattern) | LogisticsCarrier.name.ilike(pattern))
    page = paginate(
        session,
        stmt,
        sortable={"code": LogisticsCarrier.code, "name": LogisticsCarrier.name},
        default_sort="code",
        endpoint="logistics.carrier_list",
        args=args,
        tie_breaker=LogisticsCarrier.id,
    )
    counts = dict(
        session.execute(
            select(LogisticsService.carrier_id, func.count())
            .where(LogisticsService.carrier_id.in_([c.id for c in page.rows]))
            .group_by(LogisticsService.carrier_id)
        )
        .tuples()
        .all()
    )
    return render_template("logistics/carriers.html", page=page, counts=counts, search=args.get("q", ""))


def _carrier_values(carrier: LogisticsCarrier | None) -> dict[str, Any]:
    if carrier is None:
        return {"insurance_rate": "0", "insurance_minimum": "0", "active": True}
    return {
        "code": carrier.code,
        "name": carrier.name,
        "liability": carrier.liability,
        "insurance_rate": plain_number(carrier.insurance_rate),
        "insurance_minimum": _money_text(carrier.insurance_minimum),
        "connector": carrier.connector,
        "active": carrier.active,
    }


def _carrier_page(carrier: LogisticsCarrier | None, values: dict[str, Any], errors: Errors, status: int = 200) -> Any:
    session = db()
    connectors = carriers.connector_keys(session)
    if carrier is not None and carrier.connector and carrier.connector not in connectors:
        connectors[carrier.connector] = carrier.connector
    return (
        render_template(
            "logistics/carrier_form.html",
            carrier=carrier,
            values=values,
            errors=errors,
            connectors=connectors,
            webhook_url=request.host_url.rstrip("/") + carriers.webhook_path(carrier) if carrier else "",
        ),
        status,
    )


@bp.route("/carriers/new", methods=["GET", "POST"])
@permission_required(flow.CARRIERS_MANAGE)
def carrier_new() -> Any:
    """Create a carrier, then add its services on its page."""
    if request.method == "GET":
        return _carrier_page(None, _carrier_values(None), {})
    session, actor = db(), current_actor()
    typed = {**_typed(_CARRIER_FORM), "active": "active" in request.form}
    try:
        carrier = carriers.create_carrier(session, actor, **typed)
    except LogisticsError as exc:
        session.rollback()
        return _carrier_page(None, typed, _refused(exc), 422)
    session.commit()
    flash(_("Carrier %(name)s created. Add its services below.", name=carrier.name), "success")
    return redirect(url_for("logistics.carrier_edit", carrier_id=carrier.id))


@bp.route("/carriers/<int:carrier_id>", methods=["GET", "POST"])
@permission_required(flow.CARRIERS_MANAGE)
def carrier_edit(carrier_id: int) -> Any:
    """A carrier's form, its services and its webhook."""
    carrier = _get_carrier(carrier_id)
    if request.method == "GET":
        return _carrier_page(carrier, _carrier_values(carrier), {})
    session, actor = db(), current_actor()
    typed = {**_typed(_CARRIER_FORM), "active": "active" in request.form}
    try:
        carriers.update_carrier(session, actor, carrier.id, **typed)
    except LogisticsError as exc:
        session.rollback()
        return _carrier_page(_get_carrier(carrier_id), typed, _refused(exc), 422)
    session.commit()
    flash(_("Carrier %(name)s saved.", name=carrier.name), "success")
    return redirect(url_for("logistics.carrier_edit", carrier_id=carrier.id))


@bp.post("/carriers/<int:carrier_id>/delete")
@permission_required(flow.CARRIERS_MANAGE)
def carrier_delete(carrier_id: int) -> Response:
    """Delete a carrier never used by a shipment."""
    session, actor = db(), current_actor()
    carrier = _get_carrier(carrier_id)
    name = carrier.name
    try:
        carriers.delete_carrier(session, actor, carrier.id)
    except LogisticsError as exc:
        session.rollback()
        abort_for(exc)
        flash(exc.localized(), "danger")
        return redirect(url_for("logistics.carrier_edit", carrier_id=carrier_id))
    session.commit()
    flash(_("Carrier %(name)s deleted.", name=name), "success")
    return redirect(url_for("logistics.carrier_list"))


@bp.post("/carriers/<int:carrier_id>/webhook-secret")
@permission_required(flow.CARRIERS_MANAGE)
def carrier_secret(carrier_id: int) -> Any:
    """Generate a new webhook secret and show it this once (it is stored only hashed)."""
    session, actor = db(), current_actor()
    carrier = _get_carrier(carrier_id)
    try:
        secret = carriers.set_webhook_secret(session, actor, carrier.id)
    except LogisticsError as exc:
        session.rollback()
        abort_for(exc)
        flash(exc.localized(), "danger")
        return redirect(url_for("logistics.carrier_edit", carrier_id=carrier_id))
    session.commit()
    response = render_template(
        "logistics/carrier_secret.html",
        carrier=carrier,
        secret=secret,
        webhook_url=request.host_url.rstrip("/") + carriers.webhook_path(carrier),
    )
    return response, 200, {"Cache-Control": "no-store"}


@bp.post("/carriers/<int:carrier_id>/webhook-secret/clear")
@permission_required(flow.CARRIERS_MANAGE)
def carrier_secret_clear(carrier_id: int) -> Response:
    """Close the carrier's webhook: no secret is accepted any more."""
    session, actor = db(), current_actor()
    carrier = _get_carrier(carrier_id)
    try:
        carriers.clear_webhook_secret(session, actor, carrier.id)
    except LogisticsError as exc:
        session.rollback()
        abort_for(exc)
        flash(exc.localized(), "danger")
        return redirect(url_for("logistics.carrier_edit", carrier_id=carrier_id))
    session.commit()
    flash(_("The webhook of %(name)s is closed.", name=carrier.name), "success")
    return redirect(url_for("logistics.carrier_edit", carrier_id=carrier_id))


# --- services, transit times and rates ------------------------------------------------------


def _service_values(service: LogisticsService | None) -> dict[str, Any]:
    if service is None:
        return {"volumetric_divisor": "6000", "active": True}
    return {
        "code": service.code,
        "name": service.name,
        "volumetric_divisor": str(service.volumetric_divisor),
        "active": service.active,
    }


def _service_page(
    carrier: LogisticsCarrier,
    service: LogisticsService | None,
    values: dict[str, Any],
    errors: Errors,
    status: int = 200,
    *,
    transit: dict[str, Any] | None = None,
    transit_errors: Errors | None = None,
    rate: dict[str, Any] | None = None,
    rate_errors: Errors | None = None,
) -> Any:
    return (
        render_template(
            "logistics/carrier_service.html",
            carrier=carrier,
            service=service,
            values=values,
            errors=errors,
            transit=transit or {"from_province": home_region(db()), "to_province": "", "days": ""},
            transit_errors=transit_errors or {},
            rate=rate or {"basis": "weight", "to_province": "", "minimum_charge": "0"},
            rate_errors=rate_errors or {},
            bases=RATE_BASES,
            plain_number=plain_number,
        ),
        status,
    )


@bp.route("/carriers/<int:carrier_id>/services/new", methods=["GET", "POST"])
@permission_required(flow.CARRIERS_MANAGE)
def carrier_service_new(carrier_id: int) -> Any:
    """Add a service level to a carrier."""
    carrier = _get_carrier(carrier_id)
    if request.method == "GET":
        return _service_page(carrier, None, _service_values(None), {})
    session, actor = db(), current_actor()
    typed = {**_typed(_SERVICE_FORM), "active": "active" in request.form}
    try:
        service = carriers.create_service(session, actor, carrier.id, **typed)
    except LogisticsError as exc:
        session.rollback()
        return _service_page(_get_carrier(carrier_id), None, typed, _refused(exc), 422)
    session.commit()
    flash(_("Service %(name)s created. Add its transit times and rates below.", name=service.name), "success")
    return redirect(url_for("logistics.carrier_service", service_id=service.id))


@bp.route("/carrier-services/<int:service_id>", methods=["GET", "POST"])
@permission_required(flow.CARRIERS_MANAGE)
def carrier_service(service_id: int) -> Any:
    """A service's form with its transit and rate tables."""
    service = _get_service(service_id)
    if request.method == "GET":
        return _service_page(service.carrier, service, _service_values(service), {})
    session, actor = db(), current_actor()
    typed = {**_typed(_SERVICE_FORM), "active": "active" in request.form}
    try:
        carriers.update_service(session, actor, service.id, **typed)
    except LogisticsError as exc:
        session.rollback()
        service = _get_service(service_id)
        return _service_page(service.carrier, service, typed, _refused(exc), 422)
    session.commit()
    flash(_("Service %(name)s saved.", name=service.name), "success")
    return redirect(url_for("logistics.carrier_service", service_id=service.id))


@bp.post("/carrier-services/<int:service_id>/delete")
@permission_required(flow.CARRIERS_MANAGE)
def carrier_service_delete(service_id: int) -> Response:
    """Delete a service never used by a shipment."""
    session, actor = db(), current_actor()
    service = _get_service(service_id)
    carrier_id, name = service.carrier_id, service.name
    try:
        carriers.delete_service(session, actor, service.id)
    except LogisticsError as exc:
        session.rollback()
        abort_for(exc)
        flash(exc.localized(), "danger")
        return redirect(url_for("logistics.carrier_service", service_id=service_id))
    session.commit()
    flash(_("Service %(name)s deleted.", name=name), "success")
    return redirect(url_for("logistics.carrier_edit", carrier_id=carrier_id))


def _add_row(service_id: int, form: Any, add: Any, kind: str, done: str) -> Any:
    """Add a transit or rate row to a service; on refusal show the page with the row's errors."""
    session, actor = db(), current_actor()
    service = _get_service(service_id)
    typed = _typed(form)
    try:
        add(session, actor, service.id, **typed)
    except LogisticsError as exc:
        session.rollback()
        service = _get_service(service_id)
        errors = _refused(exc)
        extra = {kind: typed, f"{kind}_errors": errors}
        return _service_page(service.carrier, service, _service_values(service), {}, 422, **extra)
    session.commit()
    flash(done, "success")
    return redirect(url_for("logistics.carrier_service", service_id=service_id) + f"#{kind}s")


def _remove_row(remove: Any, row_id: int, anchor: str, done: str) -> Response:
    """Remove a transit or rate row, then show its service again (or the carrier list)."""
    session, actor = db(), current_actor()
    service_id = request.form.get("service_id", type=int)
    try:
        remove(session, actor, row_id)
    except LogisticsError as exc:
        session.rollback()
        abort_for(exc)
        flash(exc.localized(), "danger")
    else:
        session.commit()
        flash(done, "success")
    if service_id is None:
        return redirect(url_for("logistics.carrier_list"))
    return redirect(url_for("logistics.carrier_service", service_id=service_id) + f"#{anchor}")


@bp.post("/carrier-services/<int:service_id>/transits")
@permission_required(flow.CARRIERS_MANAGE)
def carrier_transit_add(service_id: int) -> Any:
    """Add a transit row (from, to, working days)."""
    return _add_row(service_id, _TRANSIT_FORM, carriers.add_transit, "transit", _("Transit time added."))


@bp.post("/carrier-transits/<int:transit_id>/delete")
@permission_required(flow.CARRIERS_MANAGE)
def carrier_transit_delete(transit_id: int) -> Response:
    """Remove a transit row."""
    return _remove_row(carriers.remove_transit, transit_id, "transits", _("Transit time removed."))


@bp.post("/carrier-services/<int:service_id>/rates")
@permission_required(flow.CARRIERS_MANAGE)
def carrier_rate_add(service_id: int) -> Any:
    """Add a rate row (destination, basis, first and additional unit prices, minimum)."""
    return _add_row(service_id, _RATE_FORM, carriers.add_rate, "rate", _("Rate added."))


@bp.post("/carrier-rates/<int:rate_id>/delete")
@permission_required(flow.CARRIERS_MANAGE)
def carrier_rate_delete(rate_id: int) -> Response:
    """Remove a rate row."""
    return _remove_row(carriers.remove_rate, rate_id, "rates", _("Rate removed."))


# --- the rate calculator --------------------------------------------------------------------


def _number(text: str, errors: Errors, key: str, message: str) -> Decimal:
    if not text:
        return Decimal(0)
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0 or value > Decimal("99999999"):
        errors[key] = [message]
        return Decimal(0)
    return value


def _day(text: str, errors: Errors, key: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        errors[key] = [_("Give a date such as 2026-12-15.")]
        return None


@bp.get("/carriers/calculator")
@permission_required(flow.CARRIERS_MANAGE)
def rate_calculator() -> Any:
    """From/to province, weight, volume, dates and insured value → every carrier's price and the suggestion."""
    session = db()
    args = request.args
    values = {
        key: args.get(key, "").strip()
        for key in ("from_province", "to_province", "weight", "volume", "promised_date", "ship_date", "insured_value")
    }
    if not values["from_province"]:
        values["from_province"] = home_region(session)
    errors: Errors = {}
    suggestion = None
    if values["to_province"]:
        weight = _number(values["weight"], errors, "weight", _("Give a weight in kg of at least 0."))
        volume = _number(values["volume"], errors, "volume", _("Give a volume in m³ of at least 0."))
        insured = _number(values["insured_value"], errors, "insured_value", _("Give an amount of at least 0."))
        promised = _day(values["promised_date"], errors, "promised_date")
        ship_day = _day(values["ship_date"], errors, "ship_date") or company_now().date()
        if not values["from_province"]:
            errors["from_province"] = [_("Give the province the goods leave from.")]
        if not errors:
            suggestion = carriers.suggest(
                session,
                from_province=values["from_province"],
                to_province=values["to_province"],
                parcel=Parcel(weight, volume),
                promised_date=promised,
                ship_date=ship_day,
                insured_value=insured,
            )
    status = 422 if errors else 200
    return render_template(
        "logistics/carrier_calculator.html", values=values, errors=errors, suggestion=suggestion
    ), status
