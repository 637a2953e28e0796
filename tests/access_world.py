"""The demo company as a world for the access-channel tests: every plugin enabled, one login
per default role (and the Chengdu salesperson), and records of every kind — order lines,
attachments, issued documents, invoices, payments, shipments, returns, review tasks,
complaints, visits — spread over two branches, several salespeople and customers.

Built once per test module through :func:`core.demo.load_demo` into a fresh database
(SQLite or the PostgreSQL server of ``scripts/postgres``); the tests only read it.

:data:`OWNERS` says, for each integer id a URL takes, which table holds the record and
how to reach its order and customer; the expected scope is computed from those, written
out here independently of :mod:`core.security.scopes`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from core.app import create_app
from core.attachments.service import add_attachment
from core.config import load_instance
from core.db import make_engine
from core.demo import ADMIN_EMAIL, DEMO_PASSWORD, PORTAL_EMAIL, load_demo
from core.documents.archive import issue_document
from core.models import Customer, Order, User
from core.testing import SERVER_URL, csrf_token, login, token_for

ANONYMOUS = "anonymous"
#: The login of each role the tests act as (the demo's users; ``sales_cd`` is Chengdu's salesperson).
LOGINS = {
    "admin": ADMIN_EMAIL,
    "general_manager": "gm@demo.ordo",
    "sales_manager": "sales.manager@demo.ordo",
    "sales": "sales@demo.ordo",
    "sales_cd": "sales.cd@demo.ordo",
    "order_clerk": "clerk@demo.ordo",
    "warehouse": "warehouse@demo.ordo",
    "finance": "finance@demo.ordo",
    "auditor": "auditor@demo.ordo",
    "customer": PORTAL_EMAIL,
}
ROLES = (*LOGINS, ANONYMOUS)
#: An id no record has.
MISSING_ID = 987_654

#: URL argument → (table, SQL for the record's order id, SQL for its customer id), per path
#: prefix where one name means different records. ``None``: the record has none.
OWNERS: dict[str, tuple[str, str | None, str | None]] = {
    "order_id": ("order", "t.id", "t.customer_id"),
    "attachment_id": ("order_attachment", "t.order_id", None),
    "doc_id": ("issued_document", "t.order_id", None),
    "invoice_id": ("billing_invoice", "t.order_id", "t.customer_id"),
    "payment_id": ("billing_payment", None, "t.customer_id"),
    "customer_id": ("customer", None, "t.id"),
    "shipment_id": ("logistics_shipment", "t.order_id", None),
    "return_id": ("logistics_return", "t.order_id", None),
    "request_id": ("review_change_request", "t.order_id", None),
    "task_id": ("review_task", "(SELECT s.order_id FROM review_sheet s WHERE s.id = t.sheet_id)", None),
    "complaint_id": ("kpi_complaint", "t.order_id", "t.customer_id"),
    "finding_id": ("kpi_finding", "t.order_id", None),
    "sample_order_id": ("kpi_sample_order", "t.order_id", None),
    "survey_id": ("kpi_survey", "t.order_id", "t.customer_id"),
    "visit_id": ("kpi_visit", "t.order_id", "t.customer_id"),
    "event_id": ("billing_dunning_event", None, "t.customer_id"),
    "objection_id": ("logistics_objection", "t.order_id", None),
    "package_id": (
        "logistics_package",
        "(SELECT s.order_id FROM logistics_shipment s WHERE s.id = t.shipment_id)",
        None,
    ),
    "pause_id": ("billing_dunning_pause", None, "t.customer_id"),
    "write_off_id": ("billing_write_off", "t.order_id", None),
    "limit_id": ("intake_purchase_limit", None, "t.customer_id"),
    "billing:exception_id": ("billing_credit_exception", "t.order_id", "t.customer_id"),
    "logistics:exception_id": ("logistics_exception", "t.order_id", None),
}


def owner_key(rule: str, arg: str) -> str | None:
    """The :data:`OWNERS` key of ``arg`` in the URL rule ``rule`` (None: not a scoped record)."""
    if arg == "exception_id":
        return "billing:exception_id" if "/billing/" in rule else "logistics:exception_id"
    return arg if arg in OWNERS else None


@dataclass(frozen=True)
class Record:
    """One record a URL can name: its id, and the order and customer it belongs to."""

    id: int
    order_id: int | None
    customer_id: int | None


@dataclass
class World:
    """The demo app, a logged-in client (and API token) per role, and every scoped record."""

    app: Flask
    users: dict[str, User | None]
    clients: dict[str, FlaskClient]
    tokens: dict[str, str]
    csrf: dict[str, str]
    orders: dict[int, Order]
    customers: dict[int, Customer]
    records: dict[str, list[Record]] = field(default_factory=dict)
    #: (child argument, child id) → the parent's id, for children whose parent is not an order.
    parents: dict[tuple[str, int], int] = field(default_factory=dict)
    _hidden: dict[str, frozenset[str]] = field(default_factory=dict)
    #: Per role, the numbers of orders shared with its user on purpose, whatever its scope:
    #: a supervision finding it owns (it must correct it), a notification sent to it.
    addressed: dict[str, frozenset[str]] = field(default_factory=dict)
    #: Per role, the records addressed to its user on purpose, as (:data:`OWNERS` key, id):
    #: the supervision findings it owns, which it reads whatever its scope.
    addressed_records: dict[str, frozenset[tuple[str, int]]] = field(default_factory=dict)

    def call(self, role: str, method: str, path: str, **kwargs: Any) -> TestResponse:
        """``role`` calls ``path``: screens with its session (and CSRF token), the API with its token."""
        client = self.clients[role]
        headers = (
            {"Authorization": f"Bearer {self.tokens[role]}"} if path.startswith("/api/") and role in self.tokens else {}
        )
        if method == "GET":
            return client.get(path, headers=headers, **kwargs)
        if path.startswith("/api/"):
            return client.open(path, method=method, json=kwargs.pop("json", {}), headers=headers, **kwargs)
        data = {"csrf_token": self.csrf[role], **kwargs.pop("data", {})}
        return client.open(path, method=method, data=data, headers=headers, **kwargs)

    def sees_order(self, role: str, order_id: int | None) -> bool:
        """Whether ``role``'s stored data scope covers the order (written out independently)."""
        user = self.users[role]
        order = self.orders.get(order_id) if order_id is not None else None
        if user is None or order is None or not user.active or not user.can("orders.read"):
            return False
        for r in user.roles:
            scope = r.data_scope
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

    def sees_customer(self, role: str, customer_id: int | None) -> bool:
        """Whether ``role``'s data scope covers the customer (its branch, owner, or the portal's own)."""
        user = self.users[role]
        customer = self.customers.get(customer_id) if customer_id is not None else None
        if user is None or customer is None or not user.active:
            return False
        for r in user.roles:
            scope = r.data_scope
            if scope == "all":
                return True
            if scope == "branch" and user.branch_id is not None and customer.branch_id == user.branch_id:
                return True
            if scope == "customer" and user.customer_id == customer.id:
                return True
            if scope in ("own", "department") and customer.owner_id == user.id:
                return True
        return False

    def sees(self, role: str, record: Record) -> bool:
        """Whether ``role`` may see ``record``: through its order if it has one, else its customer."""
        if record.order_id is not None:
            return self.sees_order(role, record.order_id)
        if record.customer_id is not None:
            return self.sees_customer(role, record.customer_id)
        return self.users[role] is not None

    def is_addressed(self, role: str, key: str, record: Record) -> bool:
        """Whether ``record`` (named by the :data:`OWNERS` key ``key``) is addressed to ``role``'s user."""
        return (key, record.id) in self.addressed_records.get(role, frozenset())

    def hidden(self, role: str) -> frozenset[str]:
        """The numbers of the orders ``role`` may not see."""
        if role not in self._hidden:
            self._hidden[role] = frozenset(o.number for o in self.orders.values() if not self.sees_order(role, o.id))
        return self._hidden[role]


def _empty_database(folder: Path, templates: Any) -> str:
    if SERVER_URL:
        return str(templates._create(f"ordo_access_{uuid.uuid4().hex[:10]}"))
    return f"sqlite:///{folder / 'ordo.sqlite3'}"


def build_world(folder: Path, templates: Any) -> Iterator[World]:
    """Load the demo into a fresh database under ``folder`` and log every role in."""
    url = _empty_database(folder, templates)
    engine = make_engine(url)
    assert load_demo(engine, load_instance(folder, url))
    engine.dispose()
    app = create_app({"INSTANCE": folder, "DATABASE_URL": url, "TESTING": True})
    state = app.extensions["ordo"]
    with state.sessions() as session:
        _paperwork(app, session)
    with state.read_sessions() as session:
        world = _world(app, session)
        yield world
    state.engine.dispose()
    if SERVER_URL:
        templates.drop(url)


#: The smallest valid PDF the attachment check accepts.
_TINY_PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _paperwork(app: Flask, session: Session) -> None:
    """An attachment (shared with the customer) and an issued order sheet on the first order
    of each (branch, owner, customer) — the nested records the swaps need on both sides."""
    admin = session.scalars(select(User).where(User.email == ADMIN_EMAIL)).one()
    seen: set[tuple[Any, ...]] = set()
    for order in session.scalars(select(Order).order_by(Order.id).limit(60)):
        group = (order.branch_id, order.owner_id, order.customer_id)
        if group in seen:
            continue
        seen.add(group)
        add_attachment(
            session, admin, order.id, filename="po.pdf", data=_TINY_PDF, kind="customer_order", customer_visible=True
        )
        issue_document(session, app.extensions["ordo"].registry, "order_sheet", order, admin, "en")
    session.commit()


def _world(app: Flask, session: Session) -> World:
    users: dict[str, User | None] = {ANONYMOUS: None}
    clients: dict[str, FlaskClient] = {}
    tokens: dict[str, str] = {}
    csrf: dict[str, str] = {}
    for role, email in LOGINS.items():
        user = session.scalars(select(User).where(User.email == email)).one()
        users[role] = user
        tokens[role] = token_for(session, user)
    session.rollback()
    for role, email in LOGINS.items():
        client = app.test_client()
        page = login(client, email, DEMO_PASSWORD)
        assert page.status_code == 200 and "/login" not in page.request.path, role
        clients[role] = client
        csrf[role] = csrf_token(client, "/portal/" if role == "customer" else "/orders")
    clients[ANONYMOUS] = app.test_client()
    csrf[ANONYMOUS] = csrf_token(clients[ANONYMOUS], "/login")
    world = World(
        app=app,
        users=users,
        clients=clients,
        tokens=tokens,
        csrf=csrf,
        orders={o.id: o for o in session.scalars(select(Order))},
        customers={c.id: c for c in session.scalars(select(Customer))},
    )
    for key, (table, order_sql, customer_sql) in OWNERS.items():
        sql = f'SELECT t.id, {order_sql or "NULL"}, {customer_sql or "NULL"} FROM "{table}" t ORDER BY t.id'
        world.records[key] = [Record(*row) for row in session.execute(text(sql))]
    for package_id, shipment_id in session.execute(text("SELECT id, shipment_id FROM logistics_package")):
        world.parents[("package_id", package_id)] = shipment_id
    for role, user in users.items():
        if user is None:
            continue
        shared = text(
            'SELECT o.number FROM "order" o WHERE o.id IN (SELECT order_id FROM kpi_finding WHERE owner_id = :user) '
            "OR o.id IN (SELECT order_id FROM notification WHERE user_id = :user)"
        )
        world.addressed[role] = frozenset(session.scalars(shared, {"user": user.id}))
        owned = text("SELECT id FROM kpi_finding WHERE owner_id = :user")
        world.addressed_records[role] = frozenset(("finding_id", i) for i in session.scalars(owned, {"user": user.id}))
    session.rollback()  # holds no transaction while the requests run
    return world
