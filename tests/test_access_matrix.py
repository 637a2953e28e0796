"""The permission matrix (CORE-3, CORE-4): every default role and anonymous, against every
order-related endpoint the app serves — core's and the enabled plugins' alike.

Endpoints are enumerated from ``app.url_map``, never listed by hand, so an endpoint a
plugin adds later is covered the day it is registered. For every rule that takes an
order, each role calls it for every order of a small world (other salespeople's, other
branches', other customers') and for an id that does not exist, and the answer must be
exactly what the role's permissions and data scope say: allowed, 403, or 404 — and an
order outside the scope answers exactly like one that does not exist. Every list,
export and page a role may open shows only order numbers it may see; the order lists
agree with what fetching each order by id allows. Portal users are kept off staff
screens and staff API operations.

The expectations come from the roles' stored permission codes and data scopes,
evaluated here independently of ``core.security.scopes``, and from what endpoints
declare (``permission_required`` keeps its codes on the view; a document type names its
permission).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from core.attachments.service import add_attachment
from core.documents.archive import issue_document
from core.models import AuditLog, Order, User
from core.roles import DEFAULT_ROLES
from core.testing import ADMIN_PASSWORD, PASSWORD, csrf_token, login, make_order, make_user, token_for

pytestmark = [pytest.mark.req("CORE-3"), pytest.mark.req("CORE-4")]

#: The smallest valid PDF the attachment check accepts (a header and an end-of-file marker).
_TINY_PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
ANONYMOUS = "anonymous"
ROLES = (*DEFAULT_ROLES, ANONYMOUS)
#: Rules that take no order and show none: static files and the API's own description.
#: Copying creates an order by design, which the matrix's "nothing changed" check forbids; its
#: scope (404 out of scope) and permission (403) are proven in tests/test_order_copy_reopen.py.
NO_ORDER_ENDPOINTS = {
    "static",
    "bootstrap.static",
    "api-docs.openapi_json",
    "api_orders.OrderCopy",
    "orders.copy_order_view",
}
#: An order id no order has.
MISSING_ID = 999_999
#: Where staff work: portal users get 403 or 404 on every method of these.
STAFF_PREFIXES = ("/customers", "/admin", "/api/v1/customers", "/api/v1/audit")
#: Master data portal users may read but never change.
READ_ONLY_FOR_PORTAL = ("/products", "/api/v1/products")


@pytest.fixture(params=[(), ("inspection",)], ids=["core", "with-inspection"])
def ordo_plugins(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """Run the whole matrix on core alone and with the third-party inspection plugin."""
    return request.param


@dataclass
class World:
    """The users (one per default role), their logged-in clients and tokens, and the orders."""

    app: Flask
    users: dict[str, User | None]
    clients: dict[str, FlaskClient]
    tokens: dict[str, str]
    csrf: dict[str, str]
    orders: dict[str, Order]
    customer_ids: dict[str, int]
    product_id: int
    #: Order id → the id of an attachment on that order (fills ``<attachment_id>``).
    attachments: dict[int, int] = field(default_factory=dict)
    #: Order id → the id of an issued order sheet of that order (fills ``<doc_id>``).
    issued: dict[int, int] = field(default_factory=dict)
    responses: dict[tuple[str, str, str], TestResponse] = field(default_factory=dict)

    def call(self, role: str, method: str, path: str) -> TestResponse:
        """``role`` calls ``path``: screens with its session (and CSRF token), the API with its token."""
        client = self.clients[role]
        api = path.startswith("/api/")
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if api and role in self.tokens else {}
        if method == "GET":
            return client.get(path, headers=headers)
        if api:
            return client.open(path, method=method, json={}, headers=headers)
        return client.open(path, method=method, data={"csrf_token": self.csrf[role]}, headers=headers)


def _sees(user: User | None, order: Order) -> bool:
    """Whether the role's stored scope lets ``user`` see ``order`` (written out independently)."""
    if user is None or not user.active or not user.can("orders.read"):
        return False
    for role in user.roles:
        scope = role.data_scope
        if scope == "all":
            return True
        if scope == "branch" and user.branch_id is not None and order.branch_id == user.branch_id:
            return True
        if scope == "department" and user.department_id is not None and order.department_id == user.department_id:
            return True
        if scope == "customer" and user.customer_id is not None and order.customer_id == user.customer_id:
            return True
        if scope == "own" and user.id in (order.owner_id, order.created_by_id):
            return True
    return False


@pytest.fixture
def world(app: Flask, session: Session, admin: User, seed: dict[str, Any], ordo_plugins: tuple[str, ...]) -> World:
    """Four orders: two salespeople's in HQ, one of the Chengdu branch, one a portal customer entered."""
    hq, cd = seed["hq"], seed["cd"]
    users: dict[str, User | None] = {"admin": admin, ANONYMOUS: None}
    for code in DEFAULT_ROLES:
        if code == "admin":
            continue
        if code == "customer":
            users[code] = make_user(session, "portal@example.com", [code], customer=seed["local"])
        else:
            users[code] = make_user(session, f"{code}@example.com", [code], branch=hq)
    other_hq = make_user(session, "sales.hq2@example.com", ["sales"], branch=hq)
    chengdu = make_user(session, "sales.cd@example.com", ["sales"], branch=cd)
    sales = users["sales"]
    portal = users["customer"]
    assert sales is not None and portal is not None
    orders = {
        "own": make_order(session, sales, customer="C001"),  # the salesperson's own, HQ, customer C001
        "colleague": make_order(session, other_hq, customer="C002"),  # another salesperson's, HQ
        "other_branch": make_order(session, chengdu, customer="C002"),  # Chengdu's
        "portal": make_order(session, portal, customer="C001", channel="portal"),  # C001's, no branch
    }
    assert orders["other_branch"].branch_id == cd.id and orders["colleague"].branch_id == hq.id
    if "inspection" in ordo_plugins:
        from ordo_inspection.models import InspectionReport

        for order in orders.values():
            session.add(InspectionReport(order_id=order.id, inspector_id=admin.id, passed=True, note="ok"))
        session.commit()
    # One issued (archived) order sheet per order, for the archive's download endpoints.
    issued = {
        order.id: issue_document(session, app.extensions["ordo"].registry, "order_sheet", order, admin, "en").id
        for order in orders.values()
    }
    # Shared with the customer, so portal users reach them on their own orders (unshared
    # staff files answer 404 to portal users; tests/test_attachments.py covers that).
    attachments = {
        order.id: add_attachment(
            session, admin, order.id, filename="po.pdf", data=_TINY_PDF, kind="customer_order", customer_visible=True
        ).id
        for order in orders.values()
    }
    session.commit()
    clients: dict[str, FlaskClient] = {}
    tokens: dict[str, str] = {}
    csrf: dict[str, str] = {}
    for code, user in users.items():
        client = app.test_client()
        if user is not None:
            page = login(client, user.email, ADMIN_PASSWORD if code == "admin" else PASSWORD)
            assert page.status_code == 200 and "/login" not in page.request.path, code
            tokens[code] = token_for(session, user)
            csrf[code] = csrf_token(client, "/orders")
        else:
            csrf[code] = csrf_token(client, "/login")
        clients[code] = client
    return World(
        app=app,
        users=users,
        clients=clients,
        tokens=tokens,
        csrf=csrf,
        orders=orders,
        customer_ids={"local": seed["local"].id, "remote": seed["remote"].id},
        product_id=seed["products"][0].id,
        attachments=attachments,
        issued=issued,
    )


# --- enumerating the endpoints ------------------------------------------------------------


def _methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def order_rules(app: Flask) -> list[Rule]:
    """Every rule that addresses one order (an ``order_id``, or an ``id`` under ``/orders``)."""
    return [
        r
        for r in app.url_map.iter_rules()
        if r.endpoint not in NO_ORDER_ENDPOINTS
        and ("order_id" in r.arguments or ("id" in r.arguments and "/orders/" in r.rule))
    ]


def _fill(app: Flask, rule: Rule, world: World, order_id: int) -> Iterator[tuple[str, frozenset[str]]]:
    """The URLs of ``rule`` for ``order_id``, each with the permissions its filling adds
    (a document's own permission); one URL per document type for document rules."""
    registry = app.extensions["ordo"].registry
    key = "order_id" if "order_id" in rule.arguments else "id"
    others = set(rule.arguments) - {key}
    if others == {"name"} and "/documents/" in rule.rule:
        for doc in registry.documents.values():
            yield _build(rule, {key: order_id, "name": doc.name}), frozenset({doc.permission})
        return
    values: dict[str, Any] = {key: order_id}
    for arg in others:
        if arg == "name":
            values[arg] = "confirm"  # an action a draft does not offer: never changes anything
        elif arg == "doc_id":
            # The order's own issued order sheet (for a missing order any one: the order decides, 404).
            values[arg] = world.issued.get(order_id, min(world.issued.values()))
            yield _build(rule, values), frozenset({registry.documents["order_sheet"].permission})
            return
        elif arg == "attachment_id":
            # The order's own attachment; for a missing order any one (the order decides: 404).
            values[arg] = world.attachments.get(order_id, min(world.attachments.values()))
        else:
            pytest.fail(f"the matrix does not know how to fill <{arg}> of {rule.rule}; teach _fill")
    yield _build(rule, values), frozenset()


def _build(rule: Rule, values: dict[str, Any]) -> str:
    built = rule.build(values, append_unknown=False)
    assert built is not None, rule.rule
    return built[1]


def declared_permissions(app: Flask, rule: Rule) -> frozenset[str]:
    """What the endpoint's view declares it needs (``permission_required`` keeps its codes)."""
    return frozenset(getattr(app.view_functions[rule.endpoint], "required_permissions", ()))


def _is_forbidden_page(response: TestResponse, path: str) -> bool:
    if response.status_code != 403:
        return False
    if path.startswith("/api/"):
        return response.get_json()["error"]["code"] == "forbidden"
    return True


def _state(session: Session) -> tuple[list[tuple[int, int, str]], int]:
    """Every order's (id, version, step) and the number of audit entries: nothing may change."""
    session.rollback()
    orders = [tuple(r) for r in session.execute(select(Order.id, Order.version, Order.step).order_by(Order.id))]
    # Printing a document issues (archives and audits) it: the one write a GET makes by design.
    audited = select(func.count(AuditLog.id)).where(AuditLog.entity != "issued_document")
    return orders, session.scalar(audited) or 0  # type: ignore[return-value]


# --- the matrix ---------------------------------------------------------------------------


def test_the_matrix_covers_a_nontrivial_set_of_endpoints(app: Flask, ordo_plugins: tuple[str, ...]):
    endpoints = {r.endpoint for r in order_rules(app)}
    assert {
        "orders.view_order",
        "orders.edit_order",
        "orders.take_order_action",
        "documents.order_document",
        "api_orders.OrderItem",
        "api_orders.OrderHistory",
        "api_orders.OrderActions",
        "api_orders.OrderAction",
    } <= endpoints
    if "inspection" in ordo_plugins:
        assert "inspection.record_report" in endpoints
    assert len([(r, m) for r in order_rules(app) for m in _methods(r)]) >= 10


def test_every_order_endpoint_answers_as_the_role_and_scope_say(world: World, session: Session):
    before = _state(session)
    checked = 0
    for role in ROLES:
        checked += _check_order_endpoints(world, role)
    assert checked >= 10 * len(ROLES) * len(world.orders)
    assert _state(session) == before, "a matrix call changed an order or wrote to the audit log"


def _check_order_endpoints(world: World, role: str) -> int:
    """Call every order rule, method and order as ``role``; returns how many calls were checked."""
    app = world.app
    user = world.users[role]
    checked = 0
    for rule in order_rules(app):
        declared = declared_permissions(app, rule)
        for method in _methods(rule):
            missing_urls = dict(_fill(app, rule, world, MISSING_ID))
            for label, order in world.orders.items():
                for (path, extra), missing in zip(_fill(app, rule, world, order.id), missing_urls, strict=True):
                    response = world.call(role, method, path)
                    absent = world.call(role, method, missing)
                    where = f"{role} {method} {path} ({label} order)"
                    checked += 1
                    if user is None:
                        if path.startswith("/api/"):
                            assert response.status_code == 401, where
                        else:
                            assert response.status_code in (302, 400), where
                            assert response.status_code != 302 or "/login" in response.location, where
                        continue
                    permitted = all(user.can(code) for code in declared | extra)
                    if not _sees(user, order):
                        # Out of scope: exactly like an order that does not exist, and never a success.
                        assert response.status_code == absent.status_code, where
                        assert response.status_code in ((404,) if permitted else (403, 404)), where
                        assert order.number not in response.get_data(as_text=True), where
                    elif not permitted:
                        assert _is_forbidden_page(response, path), f"{where}: {response.status_code}"
                    elif method == "GET":
                        assert response.status_code == 200, f"{where}: {response.status_code}"
                        if path.endswith(".pdf"):
                            assert response.mimetype == "application/pdf", where
                        elif response.mimetype == "text/html":
                            assert order.number in response.get_data(as_text=True), where
                    else:
                        # An in-scope write with a body that changes nothing: refused for a
                        # reason of its own (a missing field, a stale version), never 404.
                        assert response.status_code not in (401, 404), f"{where}: {response.status_code}"
    return checked


# --- lists, exports and every other page -----------------------------------------------------


def _numbers_in(response: TestResponse, numbers: set[str]) -> set[str]:
    """The order numbers among ``numbers`` that ``response`` shows (XLSX unpacked)."""
    if response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
        book = load_workbook(io.BytesIO(response.get_data()), read_only=True)
        text = " ".join(
            str(cell) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for cell in row
        )
    else:
        text = response.get_data(as_text=True)
    return {n for n in numbers if n in text}


def page_rules(app: Flask, world: World) -> Iterator[tuple[Rule, str]]:
    """Every GET page that takes no order: lists, exports, master data, admin, plugins' pages."""
    fillers: dict[str, list[Any]] = {
        "fmt": ["csv", "xlsx"],
        "customer_id": list(world.customer_ids.values()),
        "product_id": [world.product_id],
    }
    for rule in app.url_map.iter_rules():
        if rule.endpoint in NO_ORDER_ENDPOINTS or "GET" not in (rule.methods or ()) or rule in order_rules(app):
            continue
        if rule.endpoint == "auth.set_language":
            continue  # changes the session's language; shows no data
        args = sorted(rule.arguments)
        if any(a not in fillers for a in args):
            continue
        combos: list[dict[str, Any]] = [{}]
        for arg in args:
            combos = [{**c, arg: v} for c in combos for v in fillers[arg]]
        for values in combos:
            yield rule, _build(rule, values)


def test_no_page_list_or_export_shows_an_order_outside_the_scope(world: World):
    pages = list(page_rules(world.app, world))
    assert len(pages) >= 8, "the page enumeration found too little to mean anything"
    assert {"/orders", "/api/v1/orders", "/orders/export.csv", "/orders/export.xlsx"} <= {p for _, p in pages}
    for role in ROLES:
        _check_pages(world, role, pages)


def _check_pages(world: World, role: str, pages: list[tuple[Rule, str]]) -> None:
    user = world.users[role]
    numbers = {o.number for o in world.orders.values()}
    hidden = {o.number for o in world.orders.values() if not _sees(user, o)}
    for rule, path in pages:
        response = world.call(role, "GET", path)
        if user is None:
            if not rule.endpoint.startswith("auth."):
                assert response.status_code in (302, 401), path
            assert not _numbers_in(response, numbers), path
            continue
        shown = _numbers_in(response, numbers)
        assert not shown & hidden, f"{role} sees {sorted(shown & hidden)} on {path}"


def _api_listed(world: World, role: str, query: str = "") -> list[str]:
    response = world.call(role, "GET", f"/api/v1/orders?limit=200{query}")
    assert response.status_code == 200, response.get_json()
    return [item["number"] for item in response.get_json()["items"]]


def _screen_listed(world: World, role: str, query: str = "") -> tuple[list[str], int]:
    html = world.call(role, "GET", f"/orders?size=200{query}").get_data(as_text=True)
    rows = re.findall(r'<tr data-order="([^"]+)"', html)
    badge = re.search(r'title="[^"]*">(\d+)</span>', html)
    assert badge, "the list shows no count"
    return rows, int(badge.group(1))


def _export_listed(world: World, role: str, fmt: str, query: str = "") -> list[str]:
    response = world.call(role, "GET", f"/orders/export.{fmt}?x=1{query}")
    assert response.status_code == 200
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    else:
        sheet = load_workbook(io.BytesIO(response.get_data()), read_only=True).worksheets[0]
        rows = [[str(c) for c in row] for row in sheet.iter_rows(values_only=True)]
    return [row[0] for row in rows[1:] if row]


def test_lists_counts_and_exports_hold_exactly_the_orders_a_fetch_by_id_returns(world: World):
    for role in ROLES:
        if role != ANONYMOUS:
            _check_lists(world, role)


def _check_lists(world: World, role: str) -> None:
    fetchable = {
        o.number for o in world.orders.values() if world.call(role, "GET", f"/api/v1/orders/{o.id}").status_code == 200
    }
    assert fetchable == {o.number for o in world.orders.values() if _sees(world.users[role], o)}
    assert fetchable, f"{role} sees no order at all; the matrix would prove nothing"
    listed = _api_listed(world, role)
    assert sorted(listed) == sorted(fetchable)
    rows, count = _screen_listed(world, role)
    assert sorted(rows) == sorted(fetchable) and count == len(rows)
    for fmt in ("csv", "xlsx"):
        assert sorted(_export_listed(world, role, fmt)) == sorted(fetchable), fmt
    # Filters narrow within the scope; they never reach outside it.
    remote = world.customer_ids["remote"]
    in_remote = {o.number for o in world.orders.values() if o.customer_id == remote} & fetchable
    assert sorted(_api_listed(world, role, "&customer=C002")) == sorted(in_remote)
    rows, count = _screen_listed(world, role, f"&customer={remote}")
    assert sorted(rows) == sorted(in_remote) and count == len(rows)
    assert sorted(_export_listed(world, role, "csv", f"&customer={remote}")) == sorted(in_remote)
    for order in world.orders.values():
        searched = set(_api_listed(world, role, f"&q={order.number}"))
        assert searched == ({order.number} & fetchable), f"searching {order.number}"
        rows, count = _screen_listed(world, role, f"&q={order.number}")
        assert set(rows) == ({order.number} & fetchable) and count == len(rows)


def test_the_three_classic_leaks_are_closed(world: World):
    """A salesperson reading a colleague's order by id, a branch user another branch's, a
    customer another customer's — through screen, API, PDF and history: all 404."""
    cases = [
        ("sales", world.orders["colleague"]),
        ("sales", world.orders["other_branch"]),
        ("sales_manager", world.orders["other_branch"]),
        ("warehouse", world.orders["other_branch"]),
        ("order_clerk", world.orders["portal"]),
        ("customer", world.orders["colleague"]),
        ("customer", world.orders["other_branch"]),
    ]
    for role, order in cases:
        for path in (
            f"/orders/{order.id}",
            f"/api/v1/orders/{order.id}",
            f"/api/v1/orders/{order.id}/history",
            f"/orders/{order.id}/documents/order_sheet.pdf",
        ):
            response = world.call(role, "GET", path)
            assert response.status_code == 404, f"{role} {path}"
            assert order.number not in response.get_data(as_text=True)
    # …while each of them does read its own.
    for role, order in [("sales", world.orders["own"]), ("customer", world.orders["portal"])]:
        assert world.call(role, "GET", f"/api/v1/orders/{order.id}").status_code == 200


# --- portal users stay out of staff screens and staff API operations ---------------------------


def _any_values(rule: Rule, world: World) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for arg in rule.arguments:
        converter = rule._converters.get(arg)  # the rule's own converter decides the type
        values[arg] = world.customer_ids["local"] if type(converter).__name__ == "IdConverter" else "x"
    return values


def test_portal_users_get_no_staff_screen_or_staff_api_operation(world: World, session: Session):
    before = _state(session)
    checked = []
    for rule in world.app.url_map.iter_rules():
        staff = rule.rule.startswith(STAFF_PREFIXES)
        master_write = rule.rule.startswith(READ_ONLY_FOR_PORTAL)
        if not (staff or master_write):
            continue
        path = _build(rule, _any_values(rule, world))
        for method in _methods(rule):
            if master_write and not staff and method == "GET":
                continue
            response = world.call("customer", method, path)
            assert response.status_code in (403, 404), f"customer {method} {path}: {response.status_code}"
            checked.append((method, rule.rule))
    assert {
        ("GET", "/customers"),
        ("GET", "/admin/plugins"),
        ("GET", "/admin/audit"),
        ("POST", "/products/new"),
    } <= set(checked)
    assert ("GET", "/api/v1/audit") in checked and ("POST", "/api/v1/products") in checked
    assert _state(session) == before
