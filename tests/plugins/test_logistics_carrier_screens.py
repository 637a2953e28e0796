"""Carrier screens (LG-3, LG-11): only carrier managers reach them; carriers, services, transit times
and rates are created through the forms with errors beside the fields; the webhook secret is shown
once; the rate calculator shows the suggestion with its reasons."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import User
from core.testing import PASSWORD, csrf_token, login, make_user
from plugins.logistics import carriers
from plugins.logistics.models import LogisticsCarrier, LogisticsRate, LogisticsService, LogisticsTransit


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "gm": make_user(session, "gm@example.com", ["general_manager"], branch=hq),
        "zh_gm": make_user(session, "zh.gm@example.com", ["general_manager"], branch=hq, language="zh_CN"),
        "warehouse": make_user(session, "wh@example.com", ["warehouse"], branch=hq),
    }


def as_user(client: Any, user: User) -> Any:
    login(client, user.email, PASSWORD)
    return client


def html(response: Any) -> str:
    return response.get_data(as_text=True)


def reread(session: Session) -> None:
    session.rollback()
    session.expire_all()


def _count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def sf(session: Session, people: dict[str, User]) -> LogisticsService:
    gm = people["gm"]
    carrier = carriers.create_carrier(session, gm, code="SF", name="顺丰速运", insurance_rate="0.5")
    service = carriers.create_service(session, gm, carrier.id, code="EXP", name="特快")
    carriers.add_transit(session, gm, service.id, from_province="重庆市", to_province="四川省", days=1)
    carriers.add_rate(
        session,
        gm,
        service.id,
        to_province="四川省",
        basis="weight",
        first_unit="1",
        first_price="20",
        additional_unit="1",
        additional_price="8",
    )
    slow = carriers.create_carrier(session, gm, code="DB", name="德邦物流")
    ltl = carriers.create_service(session, gm, slow.id, code="LTL", name="零担")
    carriers.add_transit(session, gm, ltl.id, from_province="*", to_province="*", days=4)
    carriers.add_rate(
        session,
        gm,
        ltl.id,
        to_province="*",
        basis="weight",
        first_unit="10",
        first_price="30",
        additional_unit="1",
        additional_price="2",
    )
    session.commit()
    return service


@pytest.mark.req("LG-3")
def test_only_carrier_managers_reach_the_carrier_screens(
    client: Any, session: Session, people: dict[str, User], sf: LogisticsService
) -> None:
    carrier_id = sf.carrier_id
    as_user(client, people["warehouse"])
    paths = (
        "/logistics/carriers",
        "/logistics/carriers/new",
        f"/logistics/carriers/{carrier_id}",
        f"/logistics/carriers/{carrier_id}/services/new",
        f"/logistics/carrier-services/{sf.id}",
        "/logistics/carriers/calculator",
    )
    for path in paths:
        assert client.get(path).status_code == 403, path
    token = csrf_token(client, "/orders")
    for path in (
        "/logistics/carriers/new",
        f"/logistics/carriers/{carrier_id}/webhook-secret",
        f"/logistics/carriers/{carrier_id}/delete",
        f"/logistics/carrier-services/{sf.id}/rates",
    ):
        assert client.post(path, data={"csrf_token": token, "code": "X", "name": "X"}).status_code == 403, path
    assert 'href="/logistics/carriers"' not in html(client.get("/orders"))
    reread(session)
    assert _count(session, LogisticsCarrier) == 2
    client.get("/logout")
    as_user(client, people["gm"])
    assert 'href="/logistics/carriers"' in html(client.get("/orders"))
    assert client.get("/logistics/carriers/999999").status_code == 404


@pytest.mark.parametrize("who", ["gm", "zh_gm"])
def test_the_carrier_screens_render(client: Any, people: dict[str, User], sf: LogisticsService, who: str) -> None:
    as_user(client, people[who])
    for path in (
        "/logistics/carriers",
        "/logistics/carriers/new",
        f"/logistics/carriers/{sf.carrier_id}",
        f"/logistics/carriers/{sf.carrier_id}/services/new",
        f"/logistics/carrier-services/{sf.id}",
        "/logistics/carriers/calculator",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
    page = html(client.get("/logistics/carriers"))
    assert re.findall(r'<tr data-carrier="([^"]+)"', page) == ["DB", "SF"]


@pytest.mark.req("LG-3")
def test_a_carrier_with_a_service_transit_and_rate_is_created_through_the_forms(
    client: Any, session: Session, people: dict[str, User]
) -> None:
    as_user(client, people["gm"])
    token = csrf_token(client, "/logistics/carriers/new")
    response = client.post(
        "/logistics/carriers/new",
        data={
            "csrf_token": token,
            "code": "ZTO",
            "name": "中通快运",
            "liability": "按声明价值赔付，最高 5 万元",
            "insurance_rate": "0.3",
            "insurance_minimum": "5",
            "connector": "",
            "active": "1",
        },
    )
    assert response.status_code == 302
    reread(session)
    carrier = session.scalar(select(LogisticsCarrier).where(LogisticsCarrier.code == "ZTO"))
    assert carrier is not None and carrier.active and str(carrier.insurance_rate) == "0.3000"
    response = client.post(
        f"/logistics/carriers/{carrier.id}/services/new",
        data={"csrf_token": token, "code": "STD", "name": "标准快运", "volumetric_divisor": "8000", "active": "1"},
    )
    assert response.status_code == 302
    reread(session)
    service = session.scalar(select(LogisticsService).where(LogisticsService.carrier_id == carrier.id))
    assert service is not None and service.volumetric_divisor == 8000
    assert response.headers["Location"].endswith(f"/logistics/carrier-services/{service.id}")
    added = client.post(
        f"/logistics/carrier-services/{service.id}/transits",
        data={"csrf_token": token, "from_province": "重庆市", "to_province": "四川省", "days": "2"},
    )
    assert added.status_code == 302
    rate = {
        "csrf_token": token,
        "to_province": "*",
        "basis": "volume",
        "first_unit": "0.1",
        "first_price": "40",
        "additional_unit": "0.1",
        "additional_price": "30",
        "minimum_charge": "",
    }
    assert client.post(f"/logistics/carrier-services/{service.id}/rates", data=rate).status_code == 302
    page = html(client.get(f"/logistics/carrier-services/{service.id}"))
    assert "四川省" in page and 'data-rate="' in page and 'data-transit="' in page
    reread(session)
    (transit,) = session.scalars(select(LogisticsTransit).where(LogisticsTransit.service_id == service.id))
    assert (transit.from_province, transit.to_province, transit.days) == ("重庆市", "四川省", 2)
    (row,) = session.scalars(select(LogisticsRate).where(LogisticsRate.service_id == service.id))
    assert row.basis == "volume" and str(row.first_price) == "40.00"
    # Removing a row (the confirmation is the form's data-confirm).
    assert 'data-confirm="' in page
    removed = client.post(
        f"/logistics/carrier-rates/{row.id}/delete", data={"csrf_token": token, "service_id": service.id}
    )
    assert removed.status_code == 302
    reread(session)
    assert _count(session, LogisticsRate) == 0


@pytest.mark.req("LG-3")
def test_bad_input_is_shown_beside_the_fields_and_nothing_is_saved(
    client: Any, session: Session, people: dict[str, User], sf: LogisticsService
) -> None:
    as_user(client, people["zh_gm"])
    token = csrf_token(client, "/logistics/carriers/new")
    response = client.post(
        "/logistics/carriers/new",
        data={"csrf_token": token, "code": "SF", "name": "", "insurance_rate": "-1", "insurance_minimum": "0"},
    )
    assert response.status_code == 422
    page = html(response)
    assert 'data-field="name"' in page and "is-invalid" in page
    assert page.count("invalid-feedback") >= 3
    bad_rate = client.post(
        f"/logistics/carrier-services/{sf.id}/rates",
        data={
            "csrf_token": token,
            "to_province": "四川省",
            "basis": "distance",
            "first_unit": "0",
            "first_price": "-5",
            "additional_unit": "1",
            "additional_price": "1",
        },
    )
    assert bad_rate.status_code == 422
    assert html(bad_rate).count("invalid-feedback") >= 3
    bad_service = client.post(
        f"/logistics/carriers/{sf.carrier_id}/services/new",
        data={"csrf_token": token, "code": "LTL", "name": "零担", "volumetric_divisor": "0"},
    )
    assert bad_service.status_code == 422
    reread(session)
    assert (_count(session, LogisticsCarrier), _count(session, LogisticsService), _count(session, LogisticsRate)) == (
        2,
        2,
        2,
    )


@pytest.mark.req("LG-5")
def test_the_webhook_secret_is_shown_once_and_works(
    client: Any, session: Session, people: dict[str, User], sf: LogisticsService
) -> None:
    as_user(client, people["gm"])
    carrier_id = sf.carrier_id
    token = csrf_token(client, f"/logistics/carriers/{carrier_id}")
    response = client.post(f"/logistics/carriers/{carrier_id}/webhook-secret", data={"csrf_token": token})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    page = html(response)
    secret = re.search(r'id="webhook-secret" value="([^"]+)"', page)
    assert secret is not None
    assert "/api/v1/logistics/webhooks/SF/tracking" in page
    reread(session)
    carrier = session.get(LogisticsCarrier, carrier_id)
    assert carrier is not None and carriers.check_webhook_secret(carrier, secret.group(1))
    again = html(client.get(f"/logistics/carriers/{carrier_id}"))
    assert secret.group(1) not in again and "A secret is set" in again


@pytest.mark.req("LG-3")
def test_the_rate_calculator_shows_the_suggestion_and_why(
    client: Any, session: Session, people: dict[str, User], sf: LogisticsService
) -> None:
    as_user(client, people["gm"])
    response = client.get(
        "/logistics/carriers/calculator",
        query_string={
            "from_province": "重庆市",
            "to_province": "四川省",
            "weight": "12",
            "volume": "0.01",
            "ship_date": "2026-12-07",
            "promised_date": "2026-12-09",
        },
    )
    assert response.status_code == 200
    page = html(response)
    assert re.findall(r'data-carrier="([^"]+)"', page) == ["SF", "DB"]
    assert 'data-carrier="SF" class="table-success" data-suggested="1"' in page
    assert "Arrives 2026-12-11, after the promised 2026-12-09" in page
    assert "顺丰速运 特快 is the cheapest option arriving by 2026-12-09: 108.00" in page
    bad = client.get("/logistics/carriers/calculator", query_string={"to_province": "四川省", "weight": "-1"})
    assert bad.status_code == 422 and "suggestion-table" not in html(bad)
