"""Ordo's pytest plugin: fixtures that build an app with exactly the plugins a test names.

Loaded automatically through the ``pytest11`` entry point, so core's tests, the
built-in plugins' tests and any third-party plugin's tests share these fixtures.
Each test gets its own database, copied from a migrated template per plugin set
(migrating once per set keeps the suite fast).

The databases are SQLite files unless ``ORDO_DATABASE_URL`` names a PostgreSQL server
(any database on it the user may run ``CREATE DATABASE`` from, e.g. the one
``scripts/postgres`` starts): then each template is a PostgreSQL database and each test's
database is made from it with ``CREATE DATABASE … TEMPLATE`` and dropped after the test.
The variable is taken out of the environment when this plugin loads, so instances a test
makes on its own (``ordo init`` in a temporary folder) stay SQLite files.

Override ``ordo_plugins`` in a test module (or parametrize it) to choose plugins::

    @pytest.fixture
    def ordo_plugins():
        return ["inspection"]
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import make_url, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from core.app import create_app
from core.db import make_engine
from core.installation import enable, initialise
from core.models import Branch, Customer, CustomerAddress, CustomerContact, Department, Order, Product, Role, User
from core.security.passwords import hash_password
from core.security.tokens import create_token
from core.services.orders import create_order, load_order_input
from core.web import OrdoState

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-pass-1"
PASSWORD = "test-pass-1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "req(id): the DOMAIN.md requirement this test proves")


def _server_url() -> str | None:
    """The PostgreSQL server of ``ORDO_DATABASE_URL``, or None; the variable is taken away.

    Tests never see ``ORDO_DATABASE_URL`` (not even module fixtures, which run before any
    function fixture could hide it): instances they make themselves use their own folder.
    It moves to ``_ORDO_TEST_SERVER_URL`` so that xdist workers, started later, find it.
    """
    url = os.environ.pop("ORDO_DATABASE_URL", "") or os.environ.get("_ORDO_TEST_SERVER_URL", "")
    if not url.startswith("postgresql"):
        return None
    os.environ["_ORDO_TEST_SERVER_URL"] = url
    return url


#: A PostgreSQL server to make the test databases on, or None for SQLite files.
SERVER_URL = _server_url()


class _Templates:
    """Migrated template databases, one per plugin set, made once per test session."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.made: dict[tuple[str, ...], Path] = {}

    def get(self, plugins: Sequence[str]) -> Path:
        """The SQLite template file for ``plugins``."""
        key = tuple(sorted(plugins))
        if key not in self.made:
            path = self.folder / f"template-{'-'.join(key) or 'core'}.sqlite3"
            engine = make_engine(f"sqlite:///{path}")
            initialise(engine, ADMIN_EMAIL, ADMIN_PASSWORD, company_name="Test Co.")
            if key:
                enable(engine, key)
            engine.dispose()  # the last connection to close checkpoints the WAL into the file
            self.made[key] = path
        return self.made[key]

    def new_database(self, plugins: Sequence[str], folder: Path) -> str:
        """A fresh database with ``plugins`` enabled; its URL."""
        shutil.copy(self.get(plugins), folder / "ordo.sqlite3")
        return f"sqlite:///{folder / 'ordo.sqlite3'}"

    def empty_database(self, folder: Path) -> str:
        """A new database with no tables at all (for ``ordo init`` or the demo to fill); its URL."""
        return f"sqlite:///{folder / 'ordo.sqlite3'}"

    def drop(self, url: str) -> None:
        """Nothing to do: a SQLite test database goes with its temporary folder."""

    def close(self) -> None:
        """Nothing to do: the template files go with the session's temporary folder."""


class _PostgresTemplates(_Templates):
    """Template databases on a PostgreSQL server; each test database is a copy of one.

    Names carry this process's id, so xdist workers and concurrent runs never collide.
    """

    def __init__(self, folder: Path, server_url: str):
        super().__init__(folder)
        self.server = make_url(server_url)
        self.admin = make_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self.run = f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:6]}"
        self.templates: dict[tuple[str, ...], str] = {}
        self.counter = itertools.count()
        self.live: set[str] = set()

    def _url(self, name: str) -> str:
        return self.server.set(database=name).render_as_string(hide_password=False)

    def _create(self, name: str, template: str | None = None) -> str:
        with self.admin.connect() as connection:
            clause = f' TEMPLATE "{template}"' if template else ""
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self.live.add(name)
        return self._url(name)

    def template(self, plugins: Sequence[str]) -> str:
        """The name of the migrated template database for ``plugins``."""
        key = tuple(sorted(plugins))
        if key not in self.templates:
            digest = hashlib.sha1("-".join(key).encode()).hexdigest()[:8]
            name = f"ordo_tpl_{self.run}_{digest}"
            engine = make_engine(self._create(name), poolclass=NullPool)
            initialise(engine, ADMIN_EMAIL, ADMIN_PASSWORD, company_name="Test Co.")
            if key:
                enable(engine, key)
            engine.dispose()  # a template must have no connections when it is copied
            self.templates[key] = name
        return self.templates[key]

    def new_database(self, plugins: Sequence[str], folder: Path) -> str:
        return self._create(f"ordo_{self.run}_{next(self.counter)}", self.template(plugins))

    def empty_database(self, folder: Path) -> str:
        return self._create(f"ordo_{self.run}_{next(self.counter)}")

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.live.discard(name or "")

    def close(self) -> None:
        for name in list(self.live):
            self.drop(self._url(name))
        self.admin.dispose()


@pytest.fixture(scope="session")
def ordo_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Templates]:
    """The per-session cache of migrated template databases (SQLite files or PostgreSQL databases)."""
    folder = tmp_path_factory.mktemp("ordo-templates")
    templates = _PostgresTemplates(folder, SERVER_URL) if SERVER_URL else _Templates(folder)
    yield templates
    templates.close()


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    """The plugins the test's app has enabled; override to choose (default: none)."""
    return ()


@pytest.fixture
def make_app(ordo_templates: _Templates, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """A factory: ``make_app(["plugin", …], **flask_config)`` → an app on a fresh database."""
    made: list[Flask] = []
    urls: list[str] = []
    numbers = itertools.count()  # not len(made): an app that fails to start leaves its folder

    def factory(plugins: Sequence[str] = (), **config: Any) -> Flask:
        folder = tmp_path / f"instance{next(numbers)}"
        folder.mkdir()
        url = config.pop("DATABASE_URL", None)
        if url is None:
            url = ordo_templates.new_database(plugins, folder)
            urls.append(url)
        app = create_app({"INSTANCE": folder, "DATABASE_URL": url, "TESTING": True, **config})
        made.append(app)
        return app

    yield factory
    for app in made:
        app.extensions["ordo"].engine.dispose()
    for url in urls:
        ordo_templates.drop(url)


@pytest.fixture
def app(make_app: Callable[..., Flask], ordo_plugins: Sequence[str]) -> Flask:
    """An app with the plugins of ``ordo_plugins`` enabled, on a fresh database."""
    return make_app(ordo_plugins)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app`` (cookies kept between requests)."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    """A CLI runner of ``app``."""
    return app.test_cli_runner()


@pytest.fixture
def state(app: Flask) -> OrdoState:
    """The app's Ordo state: engine, session factory, registry."""
    return app.extensions["ordo"]


@pytest.fixture
def session(state: OrdoState) -> Iterator[Session]:
    """A database session on the app's database; commit to make data visible to requests.

    It begins its transactions deferred (on SQLite), so a test that only reads never
    holds the write lock the app's requests need.
    """
    with state.read_sessions() as s:
        yield s


@pytest.fixture
def admin(session: Session) -> User:
    """The administrator created by ``ordo init``."""
    return session.scalar(select(User).where(User.email == ADMIN_EMAIL))  # type: ignore[return-value]


@pytest.fixture
def seed(session: Session) -> dict[str, Any]:
    """Basic master data: branches, departments, two customers, three products."""
    return seed_master_data(session)


def seed_master_data(session: Session) -> dict[str, Any]:
    """Create and commit a small, realistic master data set; returns it by name."""
    hq = session.scalar(select(Branch).where(Branch.code == "HQ"))
    assert hq is not None
    cd = Branch(company_id=hq.company_id, code="CD", name="成都分公司")
    sales = Department(company_id=hq.company_id, code="sales", name="销售部")
    session.add_all([cd, sales])
    local = Customer(
        code="C001",
        name="重庆山城机电有限公司",
        contacts=[CustomerContact(name="张伟", phone="023-6000-0001", email="zhang@example.com")],
        addresses=[CustomerAddress(province="重庆市", city="重庆市", address="渝北区金开大道 1 号")],
    )
    remote = Customer(
        code="C002",
        name="成都蓉锦贸易有限公司",
        contacts=[CustomerContact(name="李娜", phone="028-8000-0002", email="li@example.com")],
        addresses=[CustomerAddress(province="四川省", city="成都市", address="高新区天府大道 100 号")],
    )
    products = [
        Product(sku="P-100", name="Gear motor 减速电机", unit="台", list_price=Decimal("1200.00"), category="motors"),
        Product(
            sku="P-200",
            name="Control cabinet 控制柜",
            unit="套",
            list_price=Decimal("8800.00"),
            category="cabinets",
            regular=False,
        ),
        Product(sku="P-300", name="Cable 电缆", unit="米", list_price=Decimal("12.50"), category="cables"),
    ]
    session.add_all([local, remote, *products])
    session.commit()
    return {"hq": hq, "cd": cd, "sales_dept": sales, "local": local, "remote": remote, "products": products}


def make_user(
    session: Session,
    email: str,
    roles: Sequence[str],
    *,
    branch: Branch | None = None,
    department: Department | None = None,
    customer: Customer | None = None,
    language: str = "en",
    password: str = PASSWORD,
) -> User:
    """Create and commit a user holding the named roles."""
    user = User(
        email=email,
        name=email.split("@")[0],
        password_hash=hash_password(password),
        language=language,
        branch_id=branch.id if branch else None,
        department_id=department.id if department else None,
        customer_id=customer.id if customer else None,
        roles=list(session.scalars(select(Role).where(Role.code.in_(roles)))),
    )
    session.add(user)
    session.commit()
    return user


def token_for(session: Session, user: User) -> str:
    """A fresh API token for ``user`` (committed)."""
    token = create_token(session, user, name="test")
    session.commit()
    return token


def order_payload(customer: str = "C001", **overrides: Any) -> dict[str, Any]:
    """A valid order body for the API contract, customisable per test."""
    body: dict[str, Any] = {
        "customer": customer,
        "channel": "phone",
        "reference": "PO-2026-001",
        "requested_date": "2026-12-15",
        "payment_method": "monthly_settlement",
        "ship_to": {
            "contact": "张伟",
            "phone": "023-6000-0001",
            "province": "重庆市",
            "city": "重庆市",
            "address": "渝北区金开大道 1 号",
        },
        "lines": [
            {"product": "P-100", "quantity": "2", "unit_price": "1150.00"},
            {"product": "P-300", "quantity": "100"},
        ],
    }
    body.update(overrides)
    return body


def make_order(session: Session, actor: User, **overrides: Any) -> Order:
    """Create and commit a draft order through the order service."""
    order = create_order(session, actor, load_order_input(order_payload(**overrides)))
    session.commit()
    return order


class ApiCaller:
    """A test client that sends one user's bearer token with every API request."""

    def __init__(self, client: FlaskClient, token: str):
        self.client = client
        self.token = token

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request with the caller's token (extra ``headers`` are merged in)."""
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET ``path``."""
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        """POST to ``path``."""
        return self.call("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        """PATCH ``path``."""
        return self.call("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        """DELETE ``path``."""
        return self.call("DELETE", path, **kwargs)


class FakeClock:
    """A clock a test moves on by hand: pass it as ``make_app(CLOCK=clock)``
    (:func:`core.clock.app_now`) and call :meth:`advance` instead of sleeping."""

    def __init__(self, start: dt.datetime | None = None):
        self.now = start or dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        """The clock's current time (aware, UTC)."""
        return self.now

    def advance(self, seconds: float = 0, **delta: float) -> dt.datetime:
        """Move the clock on by ``seconds`` (and any ``timedelta`` keywords); the new time."""
        self.now += dt.timedelta(seconds=seconds, **delta)
        return self.now


def login(client: FlaskClient, email: str, password: str) -> Any:
    """Log ``client`` in through the login screen (with its CSRF token)."""
    page = client.get("/login")
    token = _csrf_from(page.get_data(as_text=True))
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}, follow_redirects=True
    )


def csrf_token(client: FlaskClient, path: str = "/") -> str:
    """The CSRF token embedded in the page at ``path``."""
    return _csrf_from(client.get(path).get_data(as_text=True))


def _csrf_from(html: str) -> str:
    import re

    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'<meta name="csrf-token" content="([^"]+)"', html
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


from core.contract import PluginContract  # noqa: E402,F401
