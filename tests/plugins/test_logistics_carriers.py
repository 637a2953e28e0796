"""Carriers, rates and the carrier suggestion (LG-3, LG-11): freight by weight and volume, insurance,
the cheapest carrier arriving in time with its reasons, bad input refused, the webhook secret."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import AuditLog, User
from core.testing import make_user
from plugins.logistics import carriers
from plugins.logistics.carriers import Parcel
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import (
    LogisticsCarrier,
    LogisticsPackage,
    LogisticsProduct,
    LogisticsRate,
    LogisticsService,
    LogisticsTransit,
)

MONDAY = dt.date(2026, 12, 7)


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def manager(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "gm@example.com", ["general_manager"], branch=seed["hq"])


def _rate(basis: str = "weight", **values: str) -> LogisticsRate:
    defaults = {"first_unit": "1", "first_price": "12", "additional_unit": "0.5", "additional_price": "3"}
    defaults.update(values)
    return LogisticsRate(
        to_province="*",
        basis=basis,
        minimum_charge=Decimal(defaults.pop("minimum_charge", "0")),
        **{k: Decimal(v) for k, v in defaults.items()},
    )


def _count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- freight and insurance --------------------------------------------------------------------


@pytest.mark.req("LG-3")
def test_freight_by_weight_charges_the_first_unit_then_each_started_additional_unit() -> None:
    service = LogisticsService(volumetric_divisor=6000)
    rate = _rate()
    assert carriers.freight(service, rate, Parcel(Decimal("1"), Decimal("0"))) == Decimal("12.00")
    assert carriers.freight(service, rate, Parcel(Decimal("0.4"), Decimal("0"))) == Decimal("12.00")
    # 3.2 kg: 2.2 kg beyond the first, in started 0.5 kg steps: 5 steps × 3 = 15.
    assert carriers.freight(service, rate, Parcel(Decimal("3.2"), Decimal("0.001"))) == Decimal("27.00")
    assert carriers.freight(service, rate, Parcel(Decimal("3.0"), Decimal("0"))) == Decimal("24.00")


@pytest.mark.req("LG-3")
def test_volumetric_weight_is_charged_when_larger_than_the_actual_weight() -> None:
    rate = _rate()
    light_bulky = Parcel(Decimal("2"), Decimal("0.06"))  # 60 000 cm³ / 6000 = 10 kg
    assert carriers.freight(LogisticsService(volumetric_divisor=6000), rate, light_bulky) == Decimal("66.00")
    # A larger divisor makes the volumetric weight 5 kg: still above the actual 2 kg.
    assert carriers.freight(LogisticsService(volumetric_divisor=12000), rate, light_bulky) == Decimal("36.00")
    heavy = Parcel(Decimal("20"), Decimal("0.06"))
    assert carriers.freight(LogisticsService(volumetric_divisor=6000), rate, heavy) == Decimal("126.00")


@pytest.mark.req("LG-3")
def test_freight_by_volume_and_the_minimum_charge() -> None:
    service = LogisticsService(volumetric_divisor=6000)
    by_volume = _rate("volume", first_unit="0.1", first_price="50", additional_unit="0.05", additional_price="20")
    # 0.23 m³: 0.13 beyond the first 0.1, 2.6 → 3 additional units.
    assert carriers.freight(service, by_volume, Parcel(Decimal("500"), Decimal("0.23"))) == Decimal("110.00")
    with_minimum = _rate(minimum_charge="30")
    assert carriers.freight(service, with_minimum, Parcel(Decimal("1"), Decimal("0"))) == Decimal("30.00")
    assert carriers.freight(service, with_minimum, Parcel(Decimal("10"), Decimal("0"))) == Decimal("66.00")


@pytest.mark.req("LG-11")
def test_insurance_fee_is_the_rate_of_the_value_at_least_the_minimum() -> None:
    carrier = LogisticsCarrier(insurance_rate=Decimal("0.3"), insurance_minimum=Decimal("5"))
    assert carriers.insurance_fee(carrier, Decimal("1000")) == Decimal("5.00")
    assert carriers.insurance_fee(carrier, Decimal("100000")) == Decimal("300.00")
    assert carriers.insurance_fee(carrier, Decimal("12345.67")) == Decimal("37.04")
    assert carriers.insurance_fee(carrier, Decimal("0")) == Decimal("0.00")


def test_parcels_of_packages_and_of_order_lines(session: Session, seed: dict[str, Any]) -> None:
    packages = [
        LogisticsPackage(weight=Decimal("3.5"), length=Decimal("50"), width=Decimal("40"), height=Decimal("30")),
        LogisticsPackage(weight=Decimal("1.25"), length=Decimal("100"), width=Decimal("10"), height=Decimal("10")),
    ]
    assert carriers.parcel_of_packages(packages) == Parcel(Decimal("4.750"), Decimal("0.070000"))
    p100, p200, _p300 = seed["products"]
    session.add(LogisticsProduct(product_id=p100.id, unit_weight=Decimal("12.5"), unit_volume=Decimal("0.02")))
    session.commit()
    parcel = carriers.parcel_of_lines(session, [(p100.id, Decimal("3")), (p200.id, Decimal("1"))])
    assert parcel == Parcel(Decimal("37.500"), Decimal("0.060000"))


# --- the suggestion ------------------------------------------------------------------------------


def _carrier(
    session: Session,
    actor: User,
    code: str,
    *,
    transit: tuple[str, str, int],
    rates: list[dict[str, Any]],
    divisor: int = 6000,
    insurance_rate: str = "0",
) -> LogisticsService:
    carrier = carriers.create_carrier(
        session, actor, code=code, name=f"Carrier {code}", insurance_rate=insurance_rate, insurance_minimum="5"
    )
    service = carriers.create_service(session, actor, carrier.id, code="STD", name="标准", volumetric_divisor=divisor)
    carriers.add_transit(session, actor, service.id, from_province=transit[0], to_province=transit[1], days=transit[2])
    for rate in rates:
        carriers.add_rate(session, actor, service.id, **rate)
    return service


@pytest.fixture
def network(session: Session, manager: User) -> dict[str, LogisticsService]:
    """Three carriers from 重庆 to 四川: fast and dear, middling, cheap and slow (by volume)."""
    services = {
        "FAST": _carrier(
            session,
            manager,
            "FAST",
            transit=("重庆", "四川", 1),
            rates=[
                dict(
                    to_province="四川",
                    basis="weight",
                    first_unit="1",
                    first_price="20",
                    additional_unit="1",
                    additional_price="8",
                )
            ],
            insurance_rate="0.5",
        ),
        "MID": _carrier(
            session,
            manager,
            "MID",
            transit=("重庆市", "四川省", 2),
            rates=[
                dict(
                    to_province="四川省",
                    basis="weight",
                    first_unit="1",
                    first_price="10",
                    additional_unit="1",
                    additional_price="5",
                    minimum_charge="15",
                )
            ],
            divisor=8000,
        ),
        "SLOW": _carrier(
            session,
            manager,
            "SLOW",
            transit=("*", "*", 4),
            rates=[
                dict(
                    to_province="*",
                    basis="weight",
                    first_unit="10",
                    first_price="30",
                    additional_unit="1",
                    additional_price="2",
                ),
                dict(
                    to_province="四川省",
                    basis="volume",
                    first_unit="0.1",
                    first_price="40",
                    additional_unit="0.1",
                    additional_price="30",
                ),
            ],
        ),
    }
    session.commit()
    return services


PARCEL = Parcel(Decimal("12"), Decimal("0.05"))


@pytest.mark.req("LG-3")
def test_suggestion_picks_the_cheapest_carrier_arriving_by_the_promised_date_and_explains_why(
    session: Session, network: dict[str, LogisticsService]
) -> None:
    promised = dt.date(2026, 12, 10)  # Thursday
    suggestion = carriers.suggest(
        session,
        from_province="重庆市",
        to_province="四川省",
        parcel=PARCEL,
        promised_date=promised,
        ship_date=MONDAY,
    )
    codes = [c.carrier.code for c in suggestion.candidates]
    assert codes == ["MID", "FAST", "SLOW"]  # on time by cost, then the late one
    best = suggestion.best
    assert best is not None and best.carrier.code == "MID" and best.chosen
    assert best.freight == Decimal("65.00") and best.transit_days == 2 and best.arrival == dt.date(2026, 12, 9)
    assert "cheapest option arriving by 2026-12-10: 65.00" in suggestion.explanation
    assert "Carrier MID" in suggestion.explanation
    fast = suggestion.candidates[1]
    assert fast.meets_date and not fast.chosen and fast.freight == Decimal("108.00")
    assert "43.00 more than the suggested option" in fast.reasons
    slow = suggestion.candidates[2]
    # Cheaper, but late: listed with the reason; both rates apply and the higher (volume, 40) is charged.
    assert slow.freight == Decimal("40.00") and slow.basis == "volume"
    assert not slow.meets_date and not slow.chosen
    assert "Arrives 2026-12-11, after the promised 2026-12-10" in slow.reasons
    assert "Both weight and volume rates apply; the higher one is charged" in slow.reasons


@pytest.mark.req("LG-3")
def test_without_a_promised_date_every_carrier_meets_it_and_the_cheapest_wins(
    session: Session, network: dict[str, LogisticsService]
) -> None:
    suggestion = carriers.suggest(
        session, from_province="重庆", to_province="四川", parcel=PARCEL, promised_date=None, ship_date=MONDAY
    )
    assert all(c.meets_date for c in suggestion.candidates)
    assert suggestion.best is not None and suggestion.best.carrier.code == "SLOW"
    assert suggestion.explanation == "Carrier SLOW 标准 is the cheapest option: 40.00."


@pytest.mark.req("LG-3")
def test_when_nothing_arrives_in_time_nothing_is_suggested_and_the_user_must_choose(
    session: Session, network: dict[str, LogisticsService]
) -> None:
    suggestion = carriers.suggest(
        session,
        from_province="重庆市",
        to_province="四川省",
        parcel=PARCEL,
        promised_date=MONDAY,
        ship_date=MONDAY,
    )
    assert suggestion.best is None
    assert not any(c.chosen or c.meets_date for c in suggestion.candidates)
    assert suggestion.explanation == "No carrier arrives by the promised 2026-12-07; choose one and give a reason."
    # Still listed cheapest first, so the user sees the options.
    assert [c.carrier.code for c in suggestion.candidates] == ["SLOW", "MID", "FAST"]


@pytest.mark.req("LG-3")
def test_a_carrier_without_a_rate_to_the_province_is_listed_with_the_reason(
    session: Session, network: dict[str, LogisticsService]
) -> None:
    suggestion = carriers.suggest(
        session,
        from_province="重庆市",
        to_province="贵州省",
        parcel=PARCEL,
        promised_date=dt.date(2026, 12, 31),
        ship_date=MONDAY,
    )
    by_code = {c.carrier.code: c for c in suggestion.candidates}
    assert by_code["FAST"].freight is None and "No rate to 贵州省" in by_code["FAST"].reasons
    assert "No transit time from 重庆市 to 贵州省" in by_code["FAST"].reasons
    # SLOW's "*" weight rate applies (no volume rate to 贵州): 30 + 2 × 2.
    assert suggestion.best is not None and suggestion.best.carrier.code == "SLOW"
    assert suggestion.best.freight == Decimal("34.00") and suggestion.best.basis == "weight"
    assert [c.carrier.code for c in suggestion.candidates][-2:] in (["FAST", "MID"], ["MID", "FAST"])


@pytest.mark.req("LG-11")
def test_insurance_is_part_of_the_total_and_can_change_the_choice(
    session: Session, network: dict[str, LogisticsService], manager: User
) -> None:
    mid = network["MID"].carrier
    carriers.update_carrier(session, manager, mid.id, insurance_rate="1", insurance_minimum="0")
    session.commit()
    suggestion = carriers.suggest(
        session,
        from_province="重庆市",
        to_province="四川省",
        parcel=PARCEL,
        promised_date=dt.date(2026, 12, 10),
        ship_date=MONDAY,
        insured_value=Decimal("10000"),
    )
    best = suggestion.best
    # MID: 65 + 1 % of 10 000 = 165; FAST: 108 + 0.5 % = 158.
    assert best is not None and best.carrier.code == "FAST"
    assert (best.freight, best.insurance, best.total) == (Decimal("108.00"), Decimal("50.00"), Decimal("158.00"))
    assert "Insurance 50.00 on a value of 10,000.00" in best.reasons


@pytest.mark.req("LG-3")
def test_inactive_carriers_and_services_are_not_offered(
    session: Session, network: dict[str, LogisticsService], manager: User
) -> None:
    carriers.update_carrier(session, manager, network["MID"].carrier_id, active=False)
    carriers.update_service(session, manager, network["FAST"].id, active="0")
    session.commit()
    suggestion = carriers.suggest(
        session, from_province="重庆", to_province="四川", parcel=PARCEL, promised_date=None, ship_date=MONDAY
    )
    assert [c.carrier.code for c in suggestion.candidates] == ["SLOW"]


# --- master data: validation, permission, audit ------------------------------------------------


@pytest.mark.req("LG-3")
def test_bad_rates_and_services_are_refused_with_every_reason_and_nothing_changes(
    session: Session, manager: User
) -> None:
    carrier = carriers.create_carrier(session, manager, code="SF", name="顺丰速运", liability="按声明价值赔付")
    service = carriers.create_service(session, manager, carrier.id, code="EXP", name="特快")
    session.commit()
    before = (_count(session, LogisticsRate), _count(session, LogisticsService), _count(session, AuditLog))

    with pytest.raises(LogisticsError) as refused:
        carriers.add_rate(
            session,
            manager,
            service.id,
            to_province="四川省",
            basis="distance",
            first_unit="0",
            first_price="-5",
            additional_unit="abc",
            additional_price="2",
            minimum_charge="-1",
        )
    assert refused.value.status == 422
    assert set(refused.value.details) == {"basis", "first_unit", "first_price", "additional_unit", "minimum_charge"}
    assert refused.value.details["first_price"] == ["The first-unit price must be an amount of at least 0."]
    with pytest.raises(LogisticsError) as zero_divisor:
        carriers.create_service(session, manager, carrier.id, code="LTL", name="零担", volumetric_divisor=0)
    assert zero_divisor.value.details == {
        "volumetric_divisor": ["The volumetric divisor must be a whole number greater than zero (e.g. 6000)."]
    }
    with pytest.raises(LogisticsError):
        carriers.update_service(session, manager, service.id, volumetric_divisor="-6000")
    with pytest.raises(LogisticsError) as negative_days:
        carriers.add_transit(session, manager, service.id, from_province="重庆", to_province="", days="-1")
    assert set(negative_days.value.details) == {"to_province", "days"}
    with pytest.raises(LogisticsError) as bad_carrier:
        carriers.create_carrier(session, manager, code="sf/2", name="", insurance_rate="101")
    assert set(bad_carrier.value.details) == {"code", "name", "insurance_rate"}
    with pytest.raises(LogisticsError) as taken:
        carriers.create_carrier(session, manager, code="SF", name="again")
    assert taken.value.message == "Another carrier already has the code SF."

    session.commit()
    assert (_count(session, LogisticsRate), _count(session, LogisticsService), _count(session, AuditLog)) == before
    session.refresh(service)
    assert service.volumetric_divisor == 6000


def test_a_second_row_for_the_same_route_or_destination_is_refused(session: Session, manager: User) -> None:
    carrier = carriers.create_carrier(session, manager, code="SF", name="顺丰速运")
    service = carriers.create_service(session, manager, carrier.id, code="EXP", name="特快")
    carriers.add_transit(session, manager, service.id, from_province="重庆市", to_province="四川省", days=1)
    rate = dict(
        basis="weight", first_unit="1", first_price="20", additional_unit="1", additional_price="8", minimum_charge=""
    )
    carriers.add_rate(session, manager, service.id, to_province="四川省", **rate)
    with pytest.raises(LogisticsError, match="already has a transit time"):
        carriers.add_transit(session, manager, service.id, from_province="重庆", to_province="四川", days=2)
    with pytest.raises(LogisticsError, match="already has a rate by weight to 四川"):
        carriers.add_rate(session, manager, service.id, to_province="四川", **rate)
    carriers.add_rate(session, manager, service.id, to_province="四川", **{**rate, "basis": "volume"})
    assert len(service.rates) == 2 and len(service.transits) == 1


def test_changes_are_audited_and_rows_removable(session: Session, manager: User) -> None:
    carrier = carriers.create_carrier(session, manager, code="DB", name="德邦物流")
    service = carriers.create_service(session, manager, carrier.id, code="LTL", name="零担")
    transit = carriers.add_transit(session, manager, service.id, from_province="*", to_province="*", days=3)
    rate = carriers.add_rate(
        session,
        manager,
        service.id,
        to_province="*",
        basis="volume",
        first_unit="0.1",
        first_price="40",
        additional_unit="0.1",
        additional_price="30",
    )
    carriers.update_carrier(session, manager, carrier.id, name="德邦快递")
    carriers.remove_transit(session, manager, transit.id)
    carriers.remove_rate(session, manager, rate.id)
    session.commit()
    assert service.transits == [] and service.rates == []
    trail = [
        (a.entity, a.action)
        for a in session.scalars(select(AuditLog).where(AuditLog.entity.like("logistics_%")).order_by(AuditLog.id))
    ]
    assert trail == [
        ("logistics_carrier", "create"),
        ("logistics_service", "create"),
        ("logistics_transit", "create"),
        ("logistics_rate", "create"),
        ("logistics_carrier", "update"),
        ("logistics_transit", "delete"),
        ("logistics_rate", "delete"),
    ]
    carriers.delete_carrier(session, manager, carrier.id)
    session.commit()
    assert _count(session, LogisticsCarrier) == 0 and _count(session, LogisticsTransit) == 0


@pytest.mark.req("LG-3")
def test_only_carrier_managers_change_carriers(session: Session, seed: dict[str, Any], manager: User) -> None:
    clerk = make_user(session, "wh@example.com", ["warehouse"], branch=seed["hq"])
    with pytest.raises(LogisticsError) as refused:
        carriers.create_carrier(session, clerk, code="SF", name="顺丰速运")
    assert refused.value.status == 403
    carrier = carriers.create_carrier(session, manager, code="SF", name="顺丰速运")
    with pytest.raises(LogisticsError) as no_secret:
        carriers.set_webhook_secret(session, clerk, carrier.id)
    assert no_secret.value.status == 403
    assert carrier.webhook_secret_hash == ""


# --- the webhook secret --------------------------------------------------------------------------


@pytest.mark.req("LG-5")
def test_webhook_secret_is_returned_once_stored_hashed_and_checked(session: Session, manager: User) -> None:
    carrier = carriers.create_carrier(session, manager, code="SF", name="顺丰速运")
    assert not carriers.check_webhook_secret(carrier, "")
    assert not carriers.check_webhook_secret(carrier, "anything")
    secret = carriers.set_webhook_secret(session, manager, carrier.id)
    session.commit()
    assert len(secret) >= 40
    assert carrier.webhook_secret_hash and secret not in carrier.webhook_secret_hash
    assert len(carrier.webhook_secret_hash) == 64
    assert carriers.check_webhook_secret(carrier, secret)
    assert not carriers.check_webhook_secret(carrier, secret + "x")
    audit_text = " ".join(str(a.changes) for a in session.scalars(select(AuditLog)))
    assert secret not in audit_text
    renewed = carriers.set_webhook_secret(session, manager, carrier.id)
    assert renewed != secret
    assert not carriers.check_webhook_secret(carrier, secret) and carriers.check_webhook_secret(carrier, renewed)
    carriers.clear_webhook_secret(session, manager, carrier.id)
    assert not carriers.check_webhook_secret(carrier, renewed)
    assert carriers.webhook_path(carrier) == "/api/v1/logistics/webhooks/SF/tracking"
