"""Carriers (承运商), their service levels, transit times and rates, and the carrier suggestion (LG-3, LG-11).

Master data, kept by users holding ``logistics.carriers.manage``:

- a **carrier** with its contract's liability terms, cargo insurance rate (a percentage
  of the insured value, with a minimum premium), the connector an integrator registered
  for it, and the secret its tracking webhook presents (stored only as a SHA-256 hash);
- its **services** (标准快递, 特快, 零担 …), each with the volumetric divisor (cm³ per
  chargeable kg);
- **transit rows**: working days a service takes from a province to a province (``*``
  matches any);
- **rate rows** per destination province (``*`` any), by weight or by volume: a price for
  the first unit, a price per additional unit, a minimum charge.

Province names are compared with :func:`plugins.logistics.remote.region_key`, so 四川
and 四川省 are the same. Every change is validated before anything is written (a
refusal changes nothing) and audited.

:func:`suggest` is the one place that prices a parcel with every active service and
picks the cheapest one that arrives by the promised date, with the reasons shown on
the shipment screen, in the rate calculator and in the API. Shipments call
:func:`freight`, :func:`insurance_fee`, :func:`parcel_of_packages` through it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from flask import has_request_context, request
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from core.calendar import add_working_days
from core.clock import company_now
from core.labels import N_
from core.models import User
from core.services import audit
from core.settings import session_registry
from plugins.logistics import flow
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import (
    RATE_BASES,
    LogisticsCarrier,
    LogisticsPackage,
    LogisticsProduct,
    LogisticsRate,
    LogisticsService,
    LogisticsShipment,
    LogisticsTransit,
)
from plugins.logistics.remote import region_key

#: The province value that matches every province.
ANY = "*"
#: Carrier and service codes: letters, digits, ``_`` and ``-`` (the carrier's is part of the webhook URL).
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
CENT = Decimal("0.01")
#: The largest amount the Money columns hold.
MAX_AMOUNT = Decimal("99999999999999")
#: The largest unit (kg or m³) a rate row holds.
MAX_UNIT = Decimal("99999999")
MAX_DIVISOR = 1_000_000
MAX_DAYS = 365
_CM3_PER_M3 = Decimal(1_000_000)

# --- refusals ----------------------------------------------------------------------------------

_MESSAGES = {
    "code": N_("Give a code of 1–32 letters, digits, '_' or '-', starting with a letter or digit."),
    "carrier_code_taken": N_("Another carrier already has the code %(value)s."),
    "service_code_taken": N_("This carrier already has a service with the code %(value)s."),
    "name": N_("Give a name of at most %(count)s characters."),
    "liability": N_("The liability terms may have at most 1000 characters."),
    "insurance_rate": N_("The insurance rate is a percentage from 0 to 100."),
    "insurance_minimum": N_("The minimum insurance premium must be an amount of at least 0."),
    "connector": N_("Choose one of the registered carrier connectors, or none."),
    "volumetric_divisor": N_("The volumetric divisor must be a whole number greater than zero (e.g. 6000)."),
    "from_province": N_("Give the province the goods leave from, or * for any."),
    "to_province": N_("Give the destination province, or * for any."),
    "days": N_("Transit days must be a whole number from 0 to 365."),
    "transit_taken": N_("This service already has a transit time from %(origin)s to %(destination)s."),
    "basis": N_("Choose whether the rate charges by weight or by volume."),
    "first_unit": N_("The first unit must be a number greater than zero."),
    "first_price": N_("The first-unit price must be an amount of at least 0."),
    "additional_unit": N_("The additional unit must be a number greater than zero."),
    "additional_price": N_("The additional-unit price must be an amount of at least 0."),
    "minimum_charge": N_("The minimum charge must be an amount of at least 0."),
    "rate_taken": N_("This service already has a rate by %(basis)s to %(destination)s."),
}


@dataclass(frozen=True)
class Problem:
    """One field's refusal: the field, the catalogue msgid and its values."""

    name: str
    msgid: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """The refusal in English (the API's language)."""
        return self.msgid % dict(self.params) if self.params else self.msgid


class CarrierInputError(LogisticsError):
    """Bad carrier, service, transit or rate input: every field's problem, nothing changed.

    ``message`` is the first problem; ``details`` maps each field to its English
    messages (the API's error envelope); ``problems`` keeps the msgids so screens can
    show each one beside its field in the reader's language.
    """

    def __init__(self, problems: Sequence[Problem]):
        first = problems[0]
        details: dict[str, list[str]] = {}
        for problem in problems:
            details.setdefault(problem.name, []).append(problem.message)
        super().__init__("invalid", first.msgid, 422, details, **dict(first.params))
        self.problems = list(problems)

    def localized_fields(self) -> dict[str, list[str]]:
        """Each field's messages in the current request's language (for forms)."""
        from flask_babel import gettext

        fields: dict[str, list[str]] = {}
        for problem in self.problems:
            fields.setdefault(problem.name, []).append(gettext(problem.msgid, **dict(problem.params)))
        return fields


class _Checker:
    """Collects problems while values are read, so every bad field is reported at once."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, name: str, key: str | None = None, **params: Any) -> None:
        self.problems.append(Problem(name, _MESSAGES[key or name], params))

    def done(self) -> None:
        if self.problems:
            raise CarrierInputError(self.problems)

    def decimal(
        self, name: str, value: Any, *, places: Decimal, positive: bool = False, maximum: Decimal = MAX_AMOUNT
    ) -> Decimal:
        """``value`` as a Decimal ≥ 0 (> 0 when ``positive``) rounded to ``places``; a problem otherwise."""
        number = _to_decimal(value)
        if number is not None:
            number = number.quantize(places, rounding=ROUND_HALF_UP)
            if (number > 0 if positive else number >= 0) and number <= maximum:
                return number
        self.fail(name)
        return Decimal(0)

    def integer(self, name: str, value: Any, *, low: int, high: int) -> int:
        """``value`` as a whole number from ``low`` to ``high``; a problem otherwise."""
        number = _to_decimal(value)
        if number is not None and number == number.to_integral_value() and low <= number <= high:
            return int(number)
        self.fail(name)
        return low

    def text(self, name: str, value: Any, *, limit: int, required: bool = False) -> str:
        """``value`` stripped; a problem when missing (if required) or longer than ``limit``."""
        text = "" if value is None else str(value).strip()
        if (required and not text) or len(text) > limit:
            if name == "name":
                self.fail(name, count=limit)
            else:
                self.fail(name)
        return text

    def code(self, value: Any) -> str:
        text = "" if value is None else str(value).strip()
        if not CODE_PATTERN.match(text):
            self.fail("code")
        return text

    def province(self, name: str, value: Any) -> str:
        text = "" if value is None else "".join(str(value).split())
        if not text or len(text) > 64:
            self.fail(name)
        return text

    def flag(self, value: Any) -> bool:
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on", "y")
        return bool(value)


def _to_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(str(value).strip().replace(",", "")) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _allowed(actor: User | None) -> User:
    if actor is None or not actor.can(flow.CARRIERS_MANAGE):
        raise LogisticsError("forbidden", N_("You may not manage carriers."), status=403)
    return actor


def _carrier(session: Session, carrier_id: int) -> LogisticsCarrier:
    carrier = session.get(LogisticsCarrier, carrier_id) if isinstance(carrier_id, int) else None
    if carrier is None:
        raise LogisticsError("not_found", N_("Carrier %(id)s was not found."), status=404, id=carrier_id)
    return carrier


def _service(session: Session, service_id: int) -> LogisticsService:
    service = session.get(LogisticsService, service_id) if isinstance(service_id, int) else None
    if service is None:
        raise LogisticsError("not_found", N_("Service %(id)s was not found."), status=404, id=service_id)
    return service


def _province_key(name: str) -> str:
    return ANY if name == ANY else region_key(name)


# --- connectors --------------------------------------------------------------------------------


def connector_keys(session: Session) -> dict[str, str]:
    """The registered carrier connectors' keys and labels (``ordo_logistics_carrier_connectors``)."""
    try:
        hook = session_registry(session).pm.hook
    except RuntimeError:
        return {}
    found: dict[str, str] = {}
    for contributed in hook.ordo_logistics_carrier_connectors():
        for connector in contributed or ():
            found[connector.key] = connector.label
    return found


# --- carriers ----------------------------------------------------------------------------------

_CARRIER_FIELDS = ("code", "name", "liability", "insurance_rate", "insurance_minimum", "connector", "active")


def _carrier_values(
    session: Session, carrier: LogisticsCarrier | None, values: Mapping[str, Any], partial: bool
) -> dict[str, Any]:
    unknown = set(values) - set(_CARRIER_FIELDS)
    if unknown:
        raise LogisticsError("invalid", N_("Unknown carrier field: %(field)s."), field=sorted(unknown)[0])
    check = _Checker()
    clean: dict[str, Any] = {}
    wanted = [name for name in _CARRIER_FIELDS if not partial or name in values]
    for name in wanted:
        value = values.get(name)
        if name == "code":
            code = check.code(value)
            other = session.scalar(select(LogisticsCarrier).where(LogisticsCarrier.code == code))
            if code and other is not None and other is not carrier:
                check.fail("code", "carrier_code_taken", value=code)
            clean["code"] = code
        elif name == "name":
            clean["name"] = check.text("name", value, limit=200, required=True)
        elif name == "liability":
            clean["liability"] = check.text("liability", value, limit=1000)
        elif name == "insurance_rate":
            rate = check.decimal("insurance_rate", value or 0, places=Decimal("0.0001"), maximum=Decimal(100))
            clean["insurance_rate"] = rate
        elif name == "insurance_minimum":
            clean["insurance_minimum"] = check.decimal("insurance_minimum", value or 0, places=CENT)
        elif name == "connector":
            key = "" if value is None else str(value).strip()
            if key and key not in connector_keys(session) and (carrier is None or key != carrier.connector):
                check.fail("connector")
            clean["connector"] = key
        elif name == "active":
            clean["active"] = True if value is None and not partial else check.flag(value)
    check.done()
    return clean


def create_carrier(session: Session, actor: User | None, **values: Any) -> LogisticsCarrier:
    """Create a carrier: ``code``, ``name``, ``liability``, ``insurance_rate`` (%), ``insurance_minimum``,
    ``connector`` (a registered connector's key or ""), ``active``. 422 on bad input, 403 without permission.
    """
    actor = _allowed(actor)
    clean = _carrier_values(session, None, values, partial=False)
    carrier = LogisticsCarrier(**clean)
    session.add(carrier)
    session.flush()
    audit.record(session, actor, "logistics_carrier", carrier.id, "create", clean)
    return carrier


def update_carrier(session: Session, actor: User | None, carrier_id: int, **values: Any) -> LogisticsCarrier:
    """Change the given fields of carrier ``carrier_id`` (same fields and checks as :func:`create_carrier`)."""
    actor = _allowed(actor)
    carrier = _carrier(session, carrier_id)
    clean = _carrier_values(session, carrier, values, partial=True)
    changes = audit.diff(carrier, clean)
    for key, value in clean.items():
        setattr(carrier, key, value)
    if changes:
        session.flush()
        audit.record(session, actor, "logistics_carrier", carrier.id, "update", changes)
    return carrier


def delete_carrier(session: Session, actor: User | None, carrier_id: int) -> None:
    """Delete a carrier never used by a shipment (with its services, transit times and rates); else 409."""
    actor = _allowed(actor)
    carrier = _carrier(session, carrier_id)
    service_ids = [service.id for service in carrier.services]
    used = session.scalar(
        select(LogisticsShipment.id)
        .where(
            or_(
                LogisticsShipment.carrier_id == carrier.id,
                LogisticsShipment.service_id.in_(service_ids),
                LogisticsShipment.suggested_service_id.in_(service_ids),
            )
        )
        .limit(1)
    )
    if used is not None:
        raise LogisticsError(
            "carrier_in_use",
            N_("Carrier %(carrier)s has shipments; deactivate it instead."),
            status=409,
            carrier=carrier.code,
        )
    audit.record(session, actor, "logistics_carrier", carrier.id, "delete", {"code": carrier.code})
    session.delete(carrier)
    session.flush()


def set_webhook_secret(session: Session, actor: User | None, carrier_id: int) -> str:
    """Give carrier ``carrier_id`` a new random webhook secret; returns it in plain text ONCE.

    Only its SHA-256 is stored, so it cannot be shown again; the previous secret stops
    working at once.
    """
    actor = _allowed(actor)
    carrier = _carrier(session, carrier_id)
    secret = secrets.token_urlsafe(32)
    carrier.webhook_secret_hash = hashlib.sha256(secret.encode()).hexdigest()
    session.flush()
    audit.record(session, actor, "logistics_carrier", carrier.id, "webhook_secret", {"webhook_secret": "(new)"})
    return secret


def clear_webhook_secret(session: Session, actor: User | None, carrier_id: int) -> None:
    """Close carrier ``carrier_id``'s webhook: no secret is accepted until a new one is generated."""
    actor = _allowed(actor)
    carrier = _carrier(session, carrier_id)
    if carrier.webhook_secret_hash:
        carrier.webhook_secret_hash = ""
        session.flush()
        audit.record(session, actor, "logistics_carrier", carrier.id, "webhook_secret", {"webhook_secret": "(none)"})


def check_webhook_secret(carrier: LogisticsCarrier, presented: str) -> bool:
    """Whether ``presented`` is ``carrier``'s webhook secret (False when it has none), in constant time."""
    if not carrier.webhook_secret_hash or not presented:
        return False
    digest = hashlib.sha256(str(presented).encode()).hexdigest()
    return hmac.compare_digest(digest, carrier.webhook_secret_hash)


def webhook_path(carrier: LogisticsCarrier) -> str:
    """The path the carrier posts tracking updates to (header ``X-Ordo-Carrier-Secret``)."""
    return f"/api/v1/logistics/webhooks/{carrier.code}/tracking"


# --- services ----------------------------------------------------------------------------------

_SERVICE_FIELDS = ("code", "name", "volumetric_divisor", "active")


def _service_values(
    session: Session, carrier_id: int, service: LogisticsService | None, values: Mapping[str, Any], partial: bool
) -> dict[str, Any]:
    unknown = set(values) - set(_SERVICE_FIELDS)
    if unknown:
        raise LogisticsError("invalid", N_("Unknown service field: %(field)s."), field=sorted(unknown)[0])
    check = _Checker()
    clean: dict[str, Any] = {}
    for name in (n for n in _SERVICE_FIELDS if not partial or n in values):
        value = values.get(name)
        if name == "code":
            code = check.code(value)
            other = session.scalar(
                select(LogisticsService).where(LogisticsService.carrier_id == carrier_id, LogisticsService.code == code)
            )
            if code and other is not None and other is not service:
                check.fail("code", "service_code_taken", value=code)
            clean["code"] = code
        elif name == "name":
            clean["name"] = check.text("name", value, limit=100, required=True)
        elif name == "volumetric_divisor":
            divisor = 6000 if value in (None, "") and not partial else value
            clean["volumetric_divisor"] = check.integer("volumetric_divisor", divisor, low=1, high=MAX_DIVISOR)
        elif name == "active":
            clean["active"] = True if value is None and not partial else check.flag(value)
    check.done()
    return clean


def create_service(session: Session, actor: User | None, carrier_id: int, **values: Any) -> LogisticsService:
    """Add a service level to carrier ``carrier_id``: ``code``, ``name``, ``volumetric_divisor`` (> 0), ``active``."""
    actor = _allowed(actor)
    carrier = _carrier(session, carrier_id)
    clean = _service_values(session, carrier.id, None, values, partial=False)
    service = LogisticsService(carrier_id=carrier.id, **clean)
    session.add(service)
    session.flush()
    audit.record(session, actor, "logistics_service", service.id, "create", {"carrier": carrier.code, **clean})
    return service


def update_service(session: Session, actor: User | None, service_id: int, **values: Any) -> LogisticsService:
    """Change the given fields of service ``service_id`` (checks as :func:`create_service`)."""
    actor = _allowed(actor)
    service = _service(session, service_id)
    clean = _service_values(session, service.carrier_id, service, values, partial=True)
    changes = audit.diff(service, clean)
    for key, value in clean.items():
        setattr(service, key, value)
    if changes:
        session.flush()
        audit.record(session, actor, "logistics_service", service.id, "update", changes)
    return service


def delete_service(session: Session, actor: User | None, service_id: int) -> None:
    """Delete a service never used or suggested for a shipment (with its rows); else 409."""
    actor = _allowed(actor)
    service = _service(session, service_id)
    used = session.scalar(
        select(LogisticsShipment.id)
        .where(or_(LogisticsShipment.service_id == service.id, LogisticsShipment.suggested_service_id == service.id))
        .limit(1)
    )
    if used is not None:
        raise LogisticsError(
            "service_in_use",
            N_("Service %(service)s has shipments; deactivate it instead."),
            status=409,
            service=service.code,
        )
    audit.record(session, actor, "logistics_service", service.id, "delete", {"code": service.code})
    session.delete(service)
    session.flush()


# --- transit times -----------------------------------------------------------------------------


def add_transit(
    session: Session, actor: User | None, service_id: int, *, from_province: Any, to_province: Any, days: Any
) -> LogisticsTransit:
    """Add the working ``days`` (≥ 0) service ``service_id`` takes from ``from_province`` to ``to_province``.

    Either province may be ``*`` (any). A second row for the same pair (四川 = 四川省) is refused.
    """
    actor = _allowed(actor)
    service = _service(session, service_id)
    check = _Checker()
    origin = check.province("from_province", from_province)
    destination = check.province("to_province", to_province)
    count = check.integer("days", days, low=0, high=MAX_DAYS)
    if origin and destination:
        for row in service.transits:
            if (_province_key(row.from_province), _province_key(row.to_province)) == (
                _province_key(origin),
                _province_key(destination),
            ):
                check.fail("to_province", "transit_taken", origin=origin, destination=destination)
    check.done()
    transit = LogisticsTransit(service_id=service.id, from_province=origin, to_province=destination, days=count)
    session.add(transit)
    service.transits.append(transit)
    session.flush()
    audit.record(
        session,
        actor,
        "logistics_transit",
        transit.id,
        "create",
        {"service_id": service.id, "from_province": origin, "to_province": destination, "days": count},
    )
    return transit


def remove_transit(session: Session, actor: User | None, transit_id: int) -> None:
    """Remove a transit row."""
    actor = _allowed(actor)
    transit = session.get(LogisticsTransit, transit_id) if isinstance(transit_id, int) else None
    if transit is None:
        raise LogisticsError("not_found", N_("Transit time %(id)s was not found."), status=404, id=transit_id)
    audit.record(
        session,
        actor,
        "logistics_transit",
        transit.id,
        "delete",
        {"service_id": transit.service_id, "from_province": transit.from_province, "to_province": transit.to_province},
    )
    transit.service.transits.remove(transit)
    session.delete(transit)
    session.flush()


# --- rates -------------------------------------------------------------------------------------


def add_rate(
    session: Session,
    actor: User | None,
    service_id: int,
    *,
    to_province: Any,
    basis: Any,
    first_unit: Any,
    first_price: Any,
    additional_unit: Any,
    additional_price: Any,
    minimum_charge: Any = 0,
) -> LogisticsRate:
    """Add a rate row to service ``service_id``.

    ``basis`` ``weight`` (units: chargeable kg) or ``volume`` (units: m³); ``first_unit`` and
    ``additional_unit`` > 0; ``first_price``, ``additional_price``, ``minimum_charge`` ≥ 0.
    One row per destination (``*`` any) and basis.
    """
    actor = _allowed(actor)
    service = _service(session, service_id)
    check = _Checker()
    destination = check.province("to_province", to_province)
    kind = "" if basis is None else str(basis).strip()
    if kind not in RATE_BASES:
        check.fail("basis")
    unit = Decimal("0.000001")
    clean: dict[str, Any] = {
        "to_province": destination,
        "basis": kind,
        "first_unit": check.decimal("first_unit", first_unit, places=unit, positive=True, maximum=MAX_UNIT),
        "first_price": check.decimal("first_price", first_price, places=CENT),
        "additional_unit": check.decimal(
            "additional_unit", additional_unit, places=unit, positive=True, maximum=MAX_UNIT
        ),
        "additional_price": check.decimal("additional_price", additional_price, places=CENT),
        "minimum_charge": check.decimal(
            "minimum_charge", 0 if minimum_charge in (None, "") else minimum_charge, places=CENT
        ),
    }
    if destination and kind in RATE_BASES:
        for row in service.rates:
            if row.basis == kind and _province_key(row.to_province) == _province_key(destination):
                check.fail("to_province", "rate_taken", basis=kind, destination=destination)
    check.done()
    rate = LogisticsRate(service_id=service.id, **clean)
    session.add(rate)
    service.rates.append(rate)
    session.flush()
    audit.record(session, actor, "logistics_rate", rate.id, "create", {"service_id": service.id, **clean})
    return rate


def remove_rate(session: Session, actor: User | None, rate_id: int) -> None:
    """Remove a rate row."""
    actor = _allowed(actor)
    rate = session.get(LogisticsRate, rate_id) if isinstance(rate_id, int) else None
    if rate is None:
        raise LogisticsError("not_found", N_("Rate %(id)s was not found."), status=404, id=rate_id)
    audit.record(
        session,
        actor,
        "logistics_rate",
        rate.id,
        "delete",
        {"service_id": rate.service_id, "to_province": rate.to_province, "basis": rate.basis},
    )
    rate.service.rates.remove(rate)
    session.delete(rate)
    session.flush()


# --- parcels, freight and insurance ------------------------------------------------------------


@dataclass
class Parcel:
    """What is shipped, as carriers price it: gross ``weight`` in kg and ``volume`` in m³."""

    weight: Decimal
    volume: Decimal


def parcel_of_lines(session: Session, lines: Iterable[tuple[int, Decimal]]) -> Parcel:
    """The parcel of ``(product_id, quantity)`` pairs from the products' unit weight and volume.

    A product without logistics facts weighs nothing (enter its unit weight and volume to price it).
    """
    pairs = [(product_id, Decimal(quantity)) for product_id, quantity in lines]
    facts = {
        row.product_id: row
        for row in session.scalars(
            select(LogisticsProduct).where(LogisticsProduct.product_id.in_({p for p, _q in pairs}))
        )
    }
    weight = volume = Decimal(0)
    for product_id, quantity in pairs:
        fact = facts.get(product_id)
        if fact is not None:
            weight += fact.unit_weight * quantity
            volume += fact.unit_volume * quantity
    return Parcel(weight.quantize(Decimal("0.001")), volume.quantize(Decimal("0.000001")))


def parcel_of_packages(packages: Iterable[LogisticsPackage]) -> Parcel:
    """The parcel of packed packages: their weights summed; volume from length × width × height (cm) in m³."""
    weight = volume = Decimal(0)
    for package in packages:
        weight += Decimal(package.weight)
        volume += Decimal(package.length) * Decimal(package.width) * Decimal(package.height) / _CM3_PER_M3
    return Parcel(weight.quantize(Decimal("0.001")), volume.quantize(Decimal("0.000001")))


def chargeable_units(service: LogisticsService, rate: LogisticsRate, parcel: Parcel) -> Decimal:
    """The units ``rate`` charges for ``parcel``: kg (the greater of actual and volumetric weight) or m³."""
    if rate.basis == "volume":
        return Decimal(parcel.volume)
    volumetric = Decimal(parcel.volume) * _CM3_PER_M3 / Decimal(service.volumetric_divisor)
    return max(Decimal(parcel.weight), volumetric)


def freight(service: LogisticsService, rate: LogisticsRate, parcel: Parcel) -> Decimal:
    """The price of ``parcel`` at ``rate``: the first unit, plus each started additional unit; at least the minimum.

    By weight the chargeable kilograms are the greater of the actual weight and the
    volumetric weight (cm³ ÷ the service's divisor); by volume the units are m³.
    Rounded to cents.
    """
    units = chargeable_units(service, rate, parcel)
    price = Decimal(rate.first_price)
    extra = units - Decimal(rate.first_unit)
    if extra > 0:
        steps = math.ceil(extra / Decimal(rate.additional_unit))
        price += steps * Decimal(rate.additional_price)
    price = max(price, Decimal(rate.minimum_charge))
    return price.quantize(CENT, rounding=ROUND_HALF_UP)


def insurance_fee(carrier: LogisticsCarrier, insured_value: Decimal) -> Decimal:
    """The cargo insurance premium for ``insured_value``: rate % of it, at least the minimum; 0 for nothing insured."""
    value = Decimal(insured_value or 0)
    if value <= 0:
        return Decimal("0.00")
    premium = value * Decimal(carrier.insurance_rate) / 100
    return max(premium, Decimal(carrier.insurance_minimum)).quantize(CENT, rounding=ROUND_HALF_UP)


# --- the suggestion ----------------------------------------------------------------------------


def _say(msgid: str, **params: Any) -> str:
    """``msgid`` with its values, in the screen reader's language (English outside requests and in the API)."""
    if has_request_context() and not request.path.startswith("/api/"):
        from flask_babel import gettext

        return gettext(msgid, **params)
    return msgid % params if params else msgid


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


@dataclass
class Candidate:
    """One carrier service priced for a parcel: arrival, freight, insurance, and why (not) chosen."""

    carrier: LogisticsCarrier
    service: LogisticsService
    transit_days: int | None
    arrival: dt.date | None
    freight: Decimal | None
    insurance: Decimal | None
    total: Decimal | None
    meets_date: bool
    reasons: list[str] = field(default_factory=list)
    chosen: bool = False
    #: The basis the freight was charged on (``weight`` or ``volume``; "" without a rate).
    basis: str = ""

    @property
    def usable(self) -> bool:
        """Priced and arriving by the promised date: it may be suggested."""
        return self.meets_date and self.total is not None


@dataclass
class Suggestion:
    """The candidates (best first) and the one suggested, with a sentence saying why."""

    candidates: list[Candidate]
    best: Candidate | None
    explanation: str


def find_transit(service: LogisticsService, from_province: str, to_province: str) -> LogisticsTransit | None:
    """The transit row for the route: exact, then from/``*``, then ``*``/to, then ``*``/``*``."""
    origin, destination = region_key(from_province), region_key(to_province)
    rows = {(_province_key(t.from_province), _province_key(t.to_province)): t for t in service.transits}
    for key in ((origin, destination), (origin, ANY), (ANY, destination), (ANY, ANY)):
        if key in rows:
            return rows[key]
    return None


def find_rates(service: LogisticsService, to_province: str) -> dict[str, LogisticsRate]:
    """The service's rate per basis to ``to_province``: the province's own row, else the ``*`` row."""
    destination = region_key(to_province)
    found: dict[str, LogisticsRate] = {}
    for basis in RATE_BASES:
        rows = {_province_key(r.to_province): r for r in service.rates if r.basis == basis}
        rate = rows.get(destination) or rows.get(ANY)
        if rate is not None:
            found[basis] = rate
    return found


def _candidate(
    session: Session,
    service: LogisticsService,
    *,
    from_province: str,
    to_province: str,
    parcel: Parcel,
    promised_date: dt.date | None,
    ship_date: dt.date,
    insured_value: Decimal,
) -> Candidate:
    carrier = service.carrier
    reasons: list[str] = []
    transit = find_transit(service, from_province, to_province)
    days = transit.days if transit is not None else None
    arrival = add_working_days(session, ship_date, days) if days is not None else None
    if arrival is None:
        reasons.append(
            _say(
                N_("No transit time from %(origin)s to %(destination)s"), origin=from_province, destination=to_province
            )
        )
    rates = find_rates(service, to_province)
    prices = {basis: freight(service, rate, parcel) for basis, rate in rates.items()}
    basis = max(prices, key=lambda b: prices[b]) if prices else ""
    cost = prices[basis] if prices else None
    if cost is None:
        reasons.append(_say(N_("No rate to %(province)s"), province=to_province))
    else:
        units = chargeable_units(service, rates[basis], parcel)
        if basis == "volume":
            reasons.append(
                _say(
                    N_("Freight %(amount)s, charged by volume (%(volume)s m³)"),
                    amount=_money(cost),
                    volume=f"{units.normalize():f}",
                )
            )
        elif units > parcel.weight:
            reasons.append(
                _say(
                    N_("Freight %(amount)s, charged by volumetric weight %(weight)s kg (actual %(actual)s kg)"),
                    amount=_money(cost),
                    weight=f"{units.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)}",
                    actual=f"{Decimal(parcel.weight).normalize():f}",
                )
            )
        else:
            reasons.append(
                _say(
                    N_("Freight %(amount)s, charged by weight %(weight)s kg"),
                    amount=_money(cost),
                    weight=f"{Decimal(parcel.weight).normalize():f}",
                )
            )
        if len(prices) > 1:
            reasons.append(_say(N_("Both weight and volume rates apply; the higher one is charged")))
    insurance = insurance_fee(carrier, insured_value) if insured_value > 0 else Decimal("0.00")
    if insured_value > 0:
        reasons.append(
            _say(
                N_("Insurance %(amount)s on a value of %(value)s"),
                amount=_money(insurance),
                value=_money(insured_value),
            )
        )
    total = cost + insurance if cost is not None else None
    if promised_date is None:
        meets = True
        if arrival is not None:
            reasons.append(_say(N_("Arrives %(arrival)s (%(days)s working days)"), arrival=arrival, days=days))
    elif arrival is None:
        meets = False
    elif arrival <= promised_date:
        meets = True
        reasons.append(
            _say(
                N_("Arrives %(arrival)s (%(days)s working days), by the promised %(promised)s"),
                arrival=arrival,
                days=days,
                promised=promised_date,
            )
        )
    else:
        meets = False
        reasons.append(
            _say(N_("Arrives %(arrival)s, after the promised %(promised)s"), arrival=arrival, promised=promised_date)
        )
    return Candidate(
        carrier=carrier,
        service=service,
        transit_days=days,
        arrival=arrival,
        freight=cost,
        insurance=insurance if cost is not None else None,
        total=total,
        meets_date=meets,
        reasons=reasons,
        basis=basis,
    )


def _sort_key(candidate: Candidate) -> tuple[int, Decimal, int, str, str]:
    none_high = Decimal(MAX_AMOUNT * 10)
    return (
        0 if candidate.usable else 1 if candidate.total is not None else 2,
        candidate.total if candidate.total is not None else none_high,
        candidate.transit_days if candidate.transit_days is not None else MAX_DAYS + 1,
        candidate.carrier.code,
        candidate.service.code,
    )


def suggest(
    session: Session,
    *,
    from_province: str,
    to_province: str,
    parcel: Parcel,
    promised_date: dt.date | None,
    ship_date: dt.date | None,
    insured_value: Decimal | int = 0,
) -> Suggestion:
    """Price ``parcel`` with every active carrier service and suggest the cheapest arriving by ``promised_date``.

    Each candidate's arrival is ``ship_date`` (today when None) plus its transit working
    days; its cost is freight (the higher of its weight and volume rates when it has both)
    plus the insurance premium on ``insured_value``. Candidates meeting the date come
    first, by total cost then transit days; the rest follow with the reason they were
    not suggested. With no promised date every candidate meets it. When none meets it,
    ``best`` is None and the explanation says the user must choose, with a reason.
    """
    ship_day = ship_date or company_now().date()
    insured = Decimal(insured_value or 0)
    services = session.scalars(
        select(LogisticsService)
        .join(LogisticsCarrier, LogisticsService.carrier_id == LogisticsCarrier.id)
        .where(LogisticsService.active.is_(True), LogisticsCarrier.active.is_(True))
        .options(
            selectinload(LogisticsService.transits),
            selectinload(LogisticsService.rates),
            selectinload(LogisticsService.carrier),
        )
    ).all()
    candidates = sorted(
        (
            _candidate(
                session,
                service,
                from_province=from_province,
                to_province=to_province,
                parcel=parcel,
                promised_date=promised_date,
                ship_date=ship_day,
                insured_value=insured,
            )
            for service in services
        ),
        key=_sort_key,
    )
    usable = [c for c in candidates if c.usable]
    best = usable[0] if usable else None
    if best is not None:
        best.chosen = True
        best.reasons.insert(0, _say(N_("Suggested: the cheapest option arriving in time")))
        for other in usable[1:]:
            assert other.total is not None and best.total is not None
            if other.total > best.total:
                other.reasons.insert(
                    0, _say(N_("%(amount)s more than the suggested option"), amount=_money(other.total - best.total))
                )
            else:
                other.reasons.insert(0, _say(N_("Same cost as the suggested option but slower")))
        params = {"carrier": best.carrier.name, "service": best.service.name, "total": _money(best.total or Decimal(0))}
        if promised_date is None:
            explanation = _say(N_("%(carrier)s %(service)s is the cheapest option: %(total)s."), **params)
        else:
            explanation = _say(
                N_(
                    "%(carrier)s %(service)s is the cheapest option arriving by %(promised)s: %(total)s, "
                    "arriving %(arrival)s."
                ),
                promised=promised_date,
                arrival=best.arrival,
                **params,
            )
    elif not candidates:
        explanation = _say(N_("No active carrier service is set up; choose a carrier and give a reason."))
    elif promised_date is not None and any(c.total is not None for c in candidates):
        explanation = _say(
            N_("No carrier arrives by the promised %(promised)s; choose one and give a reason."),
            promised=promised_date,
        )
    else:
        explanation = _say(
            N_("No carrier has a rate and transit time to %(province)s; choose one and give a reason."),
            province=to_province,
        )
    return Suggestion(candidates, best, explanation)
