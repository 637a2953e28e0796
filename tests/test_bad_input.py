"""Bad input of every odd kind gets a clear 4xx and changes nothing — never a 500.

Huge ids, calendar extremes, control characters and over-long e-mails each crashed a
path once (SQLite integer overflow, date overflow, openpyxl and PostgreSQL refusing
control characters).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from core.clock import COMPANY_TIMEZONE, day_end, day_start
from core.models import Customer, Order
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, login, order_payload, token_for

HUGE = 10**30


@pytest.fixture
def api(client, session, admin, seed):
    token = token_for(session, admin)

    def call(method: str, path: str, **kwargs):
        return client.open(path, method=method, headers={"Authorization": f"Bearer {token}"}, **kwargs)

    return call


def _orders(session) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(Order))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (order_payload(customer=HUGE), "customer"),
        (order_payload(lines=[{"product": HUGE, "quantity": "1"}]), "lines"),
        (order_payload(customer=-1), "customer"),
        (order_payload(reference="PO\x01-7"), "reference"),
        (order_payload(reference="PO\x00-7"), "reference"),
        (order_payload(ship_to={"city": "重庆\x1b市"}), "ship_to"),
    ],
)
def test_odd_order_input_is_a_field_error(api, session, body, field):
    before = _orders(session)
    response = api("POST", "/api/v1/orders", json=body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["details"]
    assert _orders(session) == before


def test_line_breaks_are_fine_in_notes(api):
    response = api("POST", "/api/v1/orders", json=order_payload(note="第一行\n第二行\tend"))
    assert response.status_code == 201
    assert response.get_json()["note"] == "第一行\n第二行\tend"


def test_an_over_long_contact_email_is_refused(api, session):
    body = {"code": "C9", "name": "X", "contacts": [{"name": "A", "email": "a" * 300 + "@example.com"}]}
    response = api("POST", "/api/v1/customers", json=body)
    assert response.status_code == 422
    assert "contacts" in response.get_json()["error"]["details"]
    session.rollback()
    assert session.scalar(select(Customer.id).where(Customer.code == "C9")) is None


@pytest.mark.parametrize(
    "query",
    [f"customer={HUGE}", "date_to=9999-12-31", "date_from=0001-01-01", "date_from=9999-12-31"],
)
def test_extreme_list_filters_answer_normally(api, client, query):
    assert api("GET", f"/api/v1/orders?{query}").status_code in (200, 422)
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert client.get(f"/orders?{query}").status_code == 200
    assert client.get(f"/orders/export.csv?{query}").status_code == 200


def test_company_days_begin_at_company_midnight():
    start = day_start(dt.date(2027, 1, 1))
    assert start.tzinfo == COMPANY_TIMEZONE
    assert start.astimezone(dt.UTC) == dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.UTC)  # Beijing is UTC+8
    assert day_end(dt.date(2027, 1, 1)) == day_start(dt.date(2027, 1, 2))
    assert day_end(dt.date.max) is None
