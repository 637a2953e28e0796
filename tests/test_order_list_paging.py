"""The order list at scale: each scope term paged through its own index, keyset cursors on
(creation time, id) and a count that stops at a cap ("10,000+") — with the same rows, in
the same order, as the plain scoped query would give (CORE-4)."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from sqlalchemy import true
from sqlalchemy.orm import Session

from core.models import Order, User
from core.security.scopes import order_scope_terms
from core.services import ServiceError
from core.services.orders import (
    NEWEST_FIRST,
    OrderFilters,
    count_orders,
    filtered_orders,
    list_orders,
    order_page,
)
from core.services.paging import encode_cursor
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, login, make_order, make_user

BASE = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def sam(session: Session, seed: dict[str, Any]) -> User:
    """A salesperson: own orders only (owned *or* entered by him)."""
    return make_user(session, "sam@example.com", ["sales"], branch=seed["cd"])


@pytest.fixture
def mixed(session: Session, admin: User, sam: User) -> list[Order]:
    """Twelve orders of every kind for sam's scope, created out of id order.

    Entered by sam (his own), entered by the administrator but owned by sam, entered by
    sam but owned by the administrator, and the administrator's own (outside sam's
    scope). Creation times are shuffled against the ids, and two orders share one.
    """
    orders: list[Order] = []
    for n in range(12):
        entered_by = sam if n % 4 in (0, 2) else admin
        order = make_order(session, entered_by, reference=f"R-{n:02d}")
        if n % 4 == 1:
            order.owner_id = sam.id
        elif n % 4 == 2:
            order.owner_id = admin.id
        order.created_at = BASE + dt.timedelta(hours=(n * 7) % 12)
        orders.append(order)
    orders[5].created_at = orders[6].created_at  # a tie, broken by the id
    session.commit()
    return orders


def newest_first(session: Session, user: User, filters: OrderFilters | None = None) -> list[int]:
    """What the plain scoped query (one OR) gives, sorted in Python: the reference."""
    rows = session.scalars(filtered_orders(user, filters or OrderFilters())).all()
    return [o.id for o in sorted(rows, key=lambda o: (o.created_at, o.id), reverse=True)]


def test_the_scope_is_a_list_of_terms_one_per_column(session: Session, admin: User, sam: User, seed) -> None:
    assert [str(t) for t in order_scope_terms(admin)] == [str(true())]
    owner, creator = order_scope_terms(sam)
    assert (owner.left.name, creator.left.name) == ("owner_id", "created_by_id")  # type: ignore[attr-defined]
    both = make_user(session, "both@example.com", ["sales", "sales_manager"], branch=seed["cd"])
    assert len(order_scope_terms(both)) == 3
    sam.active = False
    assert order_scope_terms(sam) == [] and order_page(session, sam, OrderFilters()) == []


@pytest.mark.req("CORE-4")
@pytest.mark.parametrize(("offset", "limit"), [(0, 20), (0, 3), (3, 3), (6, 4), (8, 5)])
def test_a_page_merged_from_the_scope_terms_is_the_scoped_querys_page(
    session: Session, sam: User, mixed: list[Order], offset: int, limit: int
) -> None:
    expected = newest_first(session, sam)
    assert len(expected) == 9  # the administrator's own three are out of sam's scope
    page = order_page(session, sam, OrderFilters(), NEWEST_FIRST, offset=offset, limit=limit)
    assert [o.id for o in page] == expected[offset : offset + limit]


@pytest.mark.req("CORE-4")
def test_other_sorts_and_filters_merge_alike(session: Session, sam: User, mixed: list[Order], seed) -> None:
    by_number = sorted(newest_first(session, sam), key=lambda i: session.get(Order, i).number)
    ordering = (Order.number.asc(), Order.id.asc())
    assert [o.id for o in order_page(session, sam, OrderFilters(), ordering, offset=2, limit=4)] == by_number[2:6]
    both = make_user(session, "both@example.com", ["sales", "sales_manager"], branch=seed["cd"])
    filters = OrderFilters(text="R-0")
    expected = newest_first(session, both, filters)
    assert len(expected) == 5  # the branch's: the orders sam entered (Chengdu), R-00 … R-09 only
    assert [o.id for o in order_page(session, both, filters, offset=0, limit=50)] == expected


@pytest.mark.req("CORE-4")
def test_cursor_pages_follow_creation_time_then_id(session: Session, sam: User, mixed: list[Order]) -> None:
    walked: list[int] = []
    cursor = None
    while True:
        rows, cursor = list_orders(session, sam, OrderFilters(), limit=2, cursor=cursor)
        walked += [o.id for o in rows]
        if cursor is None:
            break
    assert walked == newest_first(session, sam)


def test_a_bare_id_cursor_still_pages_but_only_within_the_scope(
    session: Session, admin: User, sam: User, mixed: list[Order]
) -> None:
    expected = newest_first(session, sam)
    rows, _next = list_orders(session, sam, OrderFilters(), limit=3, cursor=encode_cursor("o", expected[2]))
    assert [o.id for o in rows] == expected[3:6]
    outside = next(o.id for o in mixed if o.id not in expected)
    with pytest.raises(ServiceError) as refused:
        list_orders(session, sam, OrderFilters(), cursor=encode_cursor("o", outside))
    assert refused.value.details == {"cursor": ["Not a valid cursor."]}
    for bad in ("2026-03-01T08:00:00|x", "yesterday|3", "2026-03-01T08:00:00|3"):  # the last has no zone
        with pytest.raises(ServiceError):
            list_orders(session, sam, OrderFilters(), cursor=encode_cursor("o", bad))


def test_a_capped_count_stops_one_past_the_cap(session: Session, admin: User, sam: User, mixed: list[Order]) -> None:
    assert count_orders(session, sam, OrderFilters()) == 9
    assert count_orders(session, sam, OrderFilters(), cap=9) == 9
    assert count_orders(session, sam, OrderFilters(), cap=4) == 5
    assert count_orders(session, admin, OrderFilters(text="R-1"), cap=1) == 2


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_the_screen_shows_a_capped_count_and_pages_on_past_it(
    client: Any, session: Session, admin: User, seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.views.orders.COUNT_CAP", 20)
    for n in range(45):
        make_order(session, admin, reference=f"CAP-{n:02d}")
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)

    first = text(client.get("/orders"))
    assert first.count("<tr data-order=") == 20
    assert re.search(r'title="More than 20 orders match; counting stops there[^"]*">20\+</span>', first)
    assert "1–20 of 20+" in first and 'href="/orders?page=2' in first
    second = text(client.get("/orders?page=2"))
    assert second.count("<tr data-order=") == 20 and "21–40 of 40+" in second
    last = text(client.get("/orders?page=3"))
    assert last.count("<tr data-order=") == 5 and "41–45 of 45" in last  # the end: now it is known
    assert re.search(r'page-item disabled"><a class="page-link" href="[^"]*" aria-label="Next page"', last)
    assert "More than 20 orders" not in last
    # Under the cap the count is exact, as before.
    assert "1–5 of 5" in text(client.get("/orders?q=CAP-4"))


def test_a_salesperson_sees_the_capped_count_of_his_own_orders(
    client: Any, session: Session, admin: User, sam: User, mixed: list[Order], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.views.orders.COUNT_CAP", 5)
    login(client, "sam@example.com", PASSWORD)
    page = text(client.get("/orders"))
    shown = re.findall(r'<tr data-order="([^"]+)"', page)
    assert shown == [session.get(Order, i).number for i in newest_first(session, sam)]
    assert "1–9 of 9" in page  # one page of twenty holds them all: the total is known
    assert "R-03" not in page  # the administrator's own order
