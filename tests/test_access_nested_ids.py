"""Lists against fetches, nested id swaps, and filters/sorts/counts (CORE-3, CORE-4), on the
demo company with every plugin enabled.

- For every role, ids that appear in a list are exactly the ids whose fetch succeeds:
  orders, invoices, payments and returns, over random ids within and beyond the existing
  range (``ORDO_MATRIX_IDS`` per role, default 400 to keep the file in budget; the full
  run is ``ORDO_MATRIX_IDS=2000``).
- Nested ids swapped between two orders (two salespeople's, two branches', two customers'):
  an order the caller sees with another order's attachment, issued document or review
  task; a shipment with another shipment's package — on reads and writes — answer like a
  missing id and change nothing.
- Filtering, searching and sorting never reach outside the scope, unknown filter or sort
  fields are refused or ignored without changing the rows, and the counts shown equal the
  lists' lengths.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from typing import Any

import pytest
from access_world import ANONYMOUS, MISSING_ID, ROLES, World, build_world
from sqlalchemy import func, select, text

from core.models import AuditLog

pytestmark = [pytest.mark.req("CORE-3"), pytest.mark.req("CORE-4")]

#: Random ids tried per role (the full run: ``ORDO_MATRIX_IDS=2000`` or more).
IDS_PER_ROLE = int(os.environ.get("ORDO_MATRIX_IDS", "400"))
#: A list endpoint, the item endpoint its ids fetch, and the records' table.
LISTED = (
    ("/api/v1/orders", "/api/v1/orders/{}", "order"),
    ("/api/v1/billing/invoices", "/api/v1/billing/invoices/{}", "billing_invoice"),
    ("/api/v1/billing/payments", "/api/v1/billing/payments/{}", "billing_payment"),
    ("/api/v1/logistics/returns", "/api/v1/logistics/returns/{}", "logistics_return"),
)
#: Children of other parents swapped in, per side (seen / not seen by the role).
SWAPS_PER_SIDE = 3
STAFF_ROLES = tuple(r for r in ROLES if r not in (ANONYMOUS,))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, ordo_templates: Any) -> Iterator[World]:
    """The demo company, loaded once for the module."""
    yield from build_world(tmp_path_factory.mktemp("access-nested"), ordo_templates)


def listed_ids(world: World, role: str, path: str, query: str = "") -> list[int] | None:
    """Every id of the API list ``path`` as ``role`` (all pages); None when refused (403)."""
    ids: list[int] = []
    cursor = ""
    while True:
        response = world.call(role, "GET", f"{path}?limit=200{query}{cursor}")
        if response.status_code == 403:
            return None
        assert response.status_code == 200, (role, path, response.get_json())
        body = response.get_json()
        ids += [item["id"] for item in body["items"]]
        if not body["next_cursor"]:
            return ids
        cursor = f"&cursor={body['next_cursor']}"


def _state(world: World) -> tuple[Any, ...]:
    """Counts and versions a swapped write could change: nothing may."""
    with world.app.extensions["ordo"].read_sessions() as session:
        audited = session.scalar(select(func.count(AuditLog.id)).where(AuditLog.entity != "issued_document"))
        rows = tuple(
            session.execute(text(sql)).one()
            for sql in (
                'SELECT count(*), sum(version) FROM "order"',
                "SELECT count(*), sum(CASE WHEN customer_visible THEN 1 ELSE 0 END) FROM order_attachment",
                "SELECT count(*) FROM logistics_package",
                "SELECT count(*) FROM review_verdict",
            )
        )
        return (audited, rows)


# --- lists against fetches over random ids ----------------------------------------------------


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_ids_in_a_list_are_exactly_the_ids_a_fetch_returns(world: World, role: str):
    rng = random.Random(f"ids-{role}")
    with world.app.extensions["ordo"].read_sessions() as session:
        tops = {table: session.scalar(text(f'SELECT max(id) FROM "{table}"')) or 1 for _, _, table in LISTED}
    lists = {path: listed_ids(world, role, path) for path, _, _ in LISTED}
    orders = lists["/api/v1/orders"]
    assert orders, f"{role} lists no order: the check would prove nothing"
    expected_orders = {o.id for o in world.orders.values() if world.sees_order(role, o.id)}
    assert set(orders) == expected_orders and len(orders) == len(set(orders))
    checked = 0
    per_list = max(IDS_PER_ROLE // len(LISTED), 1)
    for path, item, table in LISTED:
        listed = set(lists[path] or ())
        top = tops[table]
        # Every listed id, a sample of the rest of the range, and ids beyond it.
        candidates = sorted(listed)[: per_list // 3] + [rng.randint(1, top + top // 2) for _ in range(per_list)]
        candidates += [rng.randint(top + 1, 2**31 - 1) for _ in range(5)]
        for ident in candidates:
            response = world.call(role, "GET", item.format(ident))
            checked += 1
            where = f"{role} GET {item.format(ident)}"
            if lists[path] is None:
                assert response.status_code in (403, 404), where
            elif ident in listed:
                assert response.status_code == 200, f"{where}: listed, yet {response.status_code}"
                assert response.get_json()["id"] == ident, where
            else:
                assert response.status_code == 404, f"{where}: not listed, yet {response.status_code}"
    assert checked >= min(IDS_PER_ROLE, 400)


def test_an_anonymous_client_gets_no_list_and_no_record(world: World):
    rng = random.Random("anonymous")
    for path, item, _ in LISTED:
        assert world.call(ANONYMOUS, "GET", path).status_code == 401
        for ident in [rng.randint(1, 800) for _ in range(50)]:
            response = world.call(ANONYMOUS, "GET", item.format(ident))
            assert response.status_code == 401 and "items" not in response.get_data(as_text=True)


# --- nested ids swapped ---------------------------------------------------------------------


def _nested(world: World) -> list[tuple[str, str, str]]:
    """(method, rule template with {parent} and {child}, child kind) of the nested rules."""
    found = []
    for rule in world.app.url_map.iter_rules():
        path = rule.rule
        for parent, child, kind in (
            ("<int:order_id>", "<int:attachment_id>", "attachment_id"),
            ("<int:order_id>", "<int:doc_id>", "doc_id"),
            ("<int:order_id>", "<int:task_id>", "task_id"),
            ("<int:shipment_id>", "<int:package_id>", "package_id"),
        ):
            if parent in path and child in path:
                template = path.replace(parent, "{parent}").replace(child, "{child}")
                found += [(m, template, kind) for m in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    return found


def _parent(world: World, kind: str, child: int) -> int | None:
    if kind == "package_id":
        return world.parents.get(("package_id", child))
    return next(r.order_id for r in world.records[kind] if r.id == child)


def test_nested_ids_swapped_between_orders_answer_like_missing_and_change_nothing(world: World):
    nested = _nested(world)
    assert {k for _, _, k in nested} == {"attachment_id", "doc_id", "task_id", "package_id"}
    assert len(nested) >= 10
    before = _state(world)
    checked = 0
    for role in STAFF_ROLES:
        for method, template, kind in nested:
            children = [r.id for r in world.records[kind]]
            parents = sorted({p for c in children if (p := _parent(world, kind, c)) is not None})
            # A parent the role sees, with a child of every other parent (seen or not).
            seen = [p for p in parents if kind == "package_id" or world.sees_order(role, p)]
            if not seen:
                continue
            own = seen[0]
            # One child of each of a few other parents: some the role sees, some it does not.
            others: dict[bool, list[int]] = {True: [], False: []}
            for child in children:
                parent = _parent(world, kind, child)
                bucket = others[kind == "package_id" or world.sees_order(role, parent)]
                if (
                    parent != own
                    and len(bucket) < SWAPS_PER_SIDE
                    and parent not in [_parent(world, kind, c) for c in bucket]
                ):
                    bucket.append(child)
            for child in others[True] + others[False]:
                path = template.format(parent=own, child=child)
                missing = template.format(parent=own, child=MISSING_ID)
                got, absent = world.call(role, method, path), world.call(role, method, missing)
                checked += 1
                where = f"{role} {method} {path} (a {kind} of another)"
                assert got.status_code == absent.status_code, f"{where}: {got.status_code} vs {absent.status_code}"
                assert got.status_code in (302, 400, 403, 404, 409, 422), f"{where}: {got.status_code}"
                if got.status_code == 302:
                    assert re.sub(r"\d+", "N", got.location) == re.sub(r"\d+", "N", absent.location), where
    assert checked >= 60
    assert _state(world) == before, "a swapped id changed something"


# --- filters, sorts and counts ----------------------------------------------------------------


def _screen(world: World, role: str, query: str) -> tuple[list[str], int]:
    html = world.call(role, "GET", f"/orders?size=1000{query}").get_data(as_text=True)
    rows = re.findall(r'<tr data-order="([^"]+)"', html)
    badge = re.search(r'title="[^"]*">(\d+)</span>', html)
    assert badge, "the list shows no count"
    return rows, int(badge.group(1))


@pytest.mark.parametrize("role", ("sales", "sales_cd", "sales_manager", "order_clerk", "warehouse"))
def test_filters_and_sorts_stay_inside_the_scope_and_counts_equal_lengths(world: World, role: str):
    visible = {o.number for o in world.orders.values() if world.sees_order(role, o.id)}
    hidden = world.hidden(role)
    assert visible and hidden
    rows, count = _screen(world, role, "")
    assert set(rows) <= visible and count == len(visible)
    customers = sorted({o.customer_id for o in world.orders.values()})
    for sort in ("number", "created", "requested", "status", "total", "customer", "margin", "cost", "credit", "owner"):
        for direction in ("", "-"):
            got, count = _screen(world, role, f"&sort={direction}{sort}")
            assert not set(got) & hidden, f"sort {sort}"
            assert count == len(visible), f"sort {sort}: count {count}"
    for customer in customers:
        inside = {o.number for o in world.orders.values() if o.customer_id == customer} & visible
        got, count = _screen(world, role, f"&customer={customer}")
        assert set(got) == inside or (len(inside) > len(got) and set(got) <= inside), customer
        assert count == len(inside), f"customer {customer}: count {count} for {len(inside)}"
        api = listed_ids(world, role, "/api/v1/orders", f"&customer={customer}")
        assert api is not None
        assert {world.orders[i].number for i in api} == inside
    # A hidden order's number searched for finds nothing, on the screen and in the API.
    for number in sorted(hidden)[:20]:
        got, count = _screen(world, role, f"&q={number}")
        assert got == [] and count == 0, number
        assert listed_ids(world, role, "/api/v1/orders", f"&q={number}") == []
    # Filters on fields the API does not offer are refused, not silently applied.
    for field in ("total_gt", "margin", "owner_id", "branch_id", "sort", "group_by"):
        response = world.call(role, "GET", f"/api/v1/orders?{field}=1")
        assert response.status_code == 422, field
