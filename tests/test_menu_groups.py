"""Menu items sharing a group label show as one drop-down menu (plugins with many screens)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from core.contrib import MenuItem
from core.testing import PASSWORD, login, make_user
from core.views.menu import MenuGroup, menu_entries


def test_grouped_items_gather_where_the_first_of_them_stands() -> None:
    items = [
        MenuItem("Orders", "orders.list_orders", order=10),
        MenuItem("Stock", "x.stock", order=20, icon="boxes", group="Logistics"),
        MenuItem("Customers", "customers.list_customers", order=30),
        MenuItem("Returns", "x.returns", order=40, group="Logistics"),
    ]
    entries = menu_entries(items)
    assert [e.label for e in entries] == ["Orders", "Logistics", "Customers"]
    group = entries[1]
    assert isinstance(group, MenuGroup) and group.icon == "boxes"
    assert [i.label for i in group.items] == ["Stock", "Returns"]


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


def test_the_navigation_bar_shows_a_group_as_a_drop_down(client: FlaskClient, session: Session) -> None:
    make_user(session, "wh@example.com", ["warehouse"])
    login(client, "wh@example.com", PASSWORD)
    response = client.get("/orders", follow_redirects=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:500]
    start = html.index('class="nav-item dropdown ordo-menu-group"')
    group = html[start : html.index("</ul>", start)]
    assert "Logistics" in group and 'class="dropdown-item' in group
    assert "/logistics/" in group
