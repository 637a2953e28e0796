"""Logistics exceptions (LG-5): the customer is told, a follow-up has an owner and a due date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
from flask.testing import FlaskClient
from logistics_helpers import confirm, location, make_warehouse, receive
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.calendar import add_working_days
from core.clock import company_now
from core.models import Customer, Notification, OutboxMessage, User
from core.services.orders import take_action
from core.testing import PASSWORD, csrf_token, login, make_order, make_user
from plugins.logistics import exceptions, shipping
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import LogisticsException, LogisticsShipment


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "sales": make_user(session, "sales@example.com", ["sales"], branch=hq),
        "wh": make_user(session, "wh@example.com", ["warehouse"], branch=hq),
        "other": make_user(session, "other@example.com", ["warehouse"], branch=hq),
    }


@pytest.fixture
def shipment(
    session: Session, state: Any, admin: User, people: dict[str, User], seed: dict[str, Any]
) -> LogisticsShipment:
    """A shipped shipment of a local order owned by the salesperson."""
    wh = make_warehouse(session, seed["hq"].company_id)
    receive(session, admin, seed["products"][0], location(wh, "A-01"), "5")
    order = make_order(session, people["sales"], lines=[{"product": "P-100", "quantity": "2"}])
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, admin, order, "release")
    row = shipping.plan_shipment(session, people["wh"], order)
    shipping.ship(session, people["wh"], row.id, tracking_number="SF200")
    session.commit()
    return row


def _customer_notices(session: Session, template: str) -> list[Notification]:
    return list(
        session.scalars(
            select(Notification).where(Notification.template == template, Notification.customer_id.is_not(None))
        )
    )


@pytest.mark.req("LG-5")
@pytest.mark.parametrize("kind", ["delay", "damage", "loss"])
def test_reporting_tells_the_customer_in_their_language_and_opens_a_follow_up(
    session: Session, people: dict[str, User], seed: dict[str, Any], shipment: LogisticsShipment, kind: str
) -> None:
    customer = session.get(Customer, seed["local"].id)
    assert customer is not None
    customer.language = "zh_CN"
    session.commit()
    exception = exceptions.report_exception(session, people["wh"], shipment.id, kind, "货车在高速上抛锚")
    session.commit()

    assert exception.status == "open"
    assert exception.owner_id == people["sales"].id  # the order's owner follows it up
    assert exception.due_date == add_working_days(session, company_now().date(), 2)
    [notice] = _customer_notices(session, f"logistics.exception_{kind}")
    assert notice.customer_id == customer.id and notice.language == "zh_CN"
    assert shipment.number in notice.body and "货车在高速上抛锚" in notice.body
    assert "您好" in notice.body  # Chinese, the customer's language
    assigned = session.scalars(select(Notification).where(Notification.template == "logistics.exception_assigned"))
    assert [n.user_id for n in assigned] == [people["sales"].id]
    # and an e-mail to the customer's contact (customer channels: inapp, email)
    emails = session.scalars(
        select(OutboxMessage.address).where(OutboxMessage.template == f"logistics.exception_{kind}")
    ).all()
    assert emails == ["zhang@example.com"]


@pytest.mark.req("LG-5")
def test_owner_and_due_date_may_be_chosen(
    session: Session, people: dict[str, User], shipment: LogisticsShipment
) -> None:
    due = company_now().date() + dt.timedelta(days=10)
    exception = exceptions.report_exception(
        session, people["wh"], shipment.id, "delay", "等待转运", owner_id=people["other"].id, due_date=due
    )
    session.commit()
    assert (exception.owner_id, exception.due_date) == (people["other"].id, due)


def test_bad_reports_are_refused_and_nothing_is_recorded(
    session: Session, people: dict[str, User], shipment: LogisticsShipment, seed: dict[str, Any]
) -> None:
    portal = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    yesterday = company_now().date() - dt.timedelta(days=1)
    cases = (
        (people["wh"], "theft", "x", {}, 422),
        (people["wh"], "delay", "  ", {}, 422),
        (people["wh"], "delay", "x", {"due_date": yesterday}, 422),
        (people["wh"], "delay", "x", {"owner_id": portal.id}, 422),
        (people["sales"], "delay", "x", {}, 403),
        (portal, "delay", "x", {}, 403),
    )
    for actor, kind, text, extra, status in cases:
        with pytest.raises(LogisticsError) as refused:
            exceptions.report_exception(session, actor, shipment.id, kind, text, **extra)
        assert refused.value.status == status, (kind, text, extra)
        session.rollback()
    assert session.scalar(select(func.count(LogisticsException.id))) == 0
    assert session.scalar(select(func.count(Notification.id)).where(Notification.template.like("logistics.exc%"))) == 0


@pytest.mark.req("LG-5")
def test_resolving_needs_a_resolution_happens_once_and_tells_the_customer(
    session: Session, people: dict[str, User], shipment: LogisticsShipment
) -> None:
    exception = exceptions.report_exception(session, people["wh"], shipment.id, "damage", "外箱破损")
    session.commit()
    with pytest.raises(LogisticsError) as refused:
        exceptions.resolve_exception(session, people["wh"], exception.id, " ")
    assert refused.value.status == 422
    session.rollback()
    exceptions.resolve_exception(session, people["wh"], exception.id, "已补发一台，运费由承运商承担")
    session.commit()
    assert exception.status == "resolved" and exception.resolved_by_id == people["wh"].id
    assert len(_customer_notices(session, "logistics.exception_resolved")) == 1
    with pytest.raises(LogisticsError) as again:
        exceptions.resolve_exception(session, people["wh"], exception.id, "again")
    assert again.value.status == 409


@pytest.mark.req("LG-5")
def test_overdue_follow_ups_are_listed(session: Session, people: dict[str, User], shipment: LogisticsShipment) -> None:
    late = exceptions.report_exception(session, people["wh"], shipment.id, "delay", "延误")
    on_time = exceptions.report_exception(session, people["wh"], shipment.id, "loss", "丢失")
    done = exceptions.report_exception(session, people["wh"], shipment.id, "damage", "破损")
    session.commit()
    late.due_date = company_now().date() - dt.timedelta(days=3)
    done.due_date = company_now().date() - dt.timedelta(days=3)
    session.commit()
    exceptions.resolve_exception(session, people["wh"], done.id, "已处理")
    session.commit()
    assert [e.id for e in exceptions.overdue_exceptions(session, people["wh"])] == [late.id]
    assert on_time.id in {e.id for e in exceptions.open_exceptions(session, shipment.order_id)}


@pytest.mark.req("LG-5")
def test_the_exceptions_screen_lists_overdue_follow_ups_and_resolves_them(
    client: FlaskClient, session: Session, people: dict[str, User], shipment: LogisticsShipment
) -> None:
    late = exceptions.report_exception(session, people["wh"], shipment.id, "delay", "暴雨封路")
    fresh = exceptions.report_exception(session, people["wh"], shipment.id, "damage", "外箱压坏")
    session.commit()
    late.due_date = company_now().date() - dt.timedelta(days=1)
    session.commit()
    login(client, people["wh"].email, PASSWORD)
    overdue = client.get("/logistics/exceptions?status=overdue").get_data(as_text=True)
    assert f'data-exception="{late.id}"' in overdue and f'data-exception="{fresh.id}"' not in overdue
    token = csrf_token(client, "/logistics/exceptions")
    response = client.post(
        f"/logistics/exceptions/{late.id}/resolve?status=overdue",
        data={"csrf_token": token, "resolution": "改走铁路", "next": "list"},
    )
    assert response.status_code == 302 and "status=overdue" in response.headers["Location"]
    session.rollback()
    session.expire_all()
    assert late.status == "resolved" and fresh.status == "open"
    client.post("/logout", data={"csrf_token": csrf_token(client, "/logistics/exceptions")})
    login(client, people["sales"].email, PASSWORD)
    assert client.get("/logistics/exceptions").status_code == 200  # sales reads, may not resolve
    token = csrf_token(client, "/logistics/exceptions")
    assert (
        client.post(
            f"/logistics/exceptions/{fresh.id}/resolve", data={"csrf_token": token, "resolution": "x"}
        ).status_code
        == 403
    )
