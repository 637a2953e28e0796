"""Authentication under attack (CORE-3): walks over every route of an app with every plugin
enabled, on the demo company (real ids filled in), logged in as the administrator.

- No GET changes the database: triggers on every table record each insert, update and
  delete, and a GET must leave none. The one documented exception is printing a document
  (``documents.order_document`` and the API's ``OrderDocument``): the first print of a
  document archives the issued PDF and audits it; the archive is a cache of an immutable
  document, so printing the same document again writes nothing, which the walk checks.
  (With a bearer token, a GET also notes the token's last use, at most once a minute.)
- Every state-changing route (POST, PUT, PATCH, DELETE; screens and API alike, with the
  login session's cookie) refuses a request without its CSRF token, and one with its CSRF
  token sent from another site (``Origin``), and changes nothing.
- The 101st failed login within an hour for one account is refused, and the owner gets in
  again once the delay is over (a fake clock: no waiting).

Size: every route once (string parameters with each candidate value); the demo is loaded
once per module (about a minute). Runs on SQLite, and on PostgreSQL under ``scripts/postgres``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from werkzeug.routing import AnyConverter, BuildError, Rule

from core.app import create_app
from core.config import load_instance
from core.db import make_engine
from core.demo import ADMIN_EMAIL, DEMO_PASSWORD, load_demo
from core.installation import enable, enabled_plugins
from core.plugins import discover
from core.testing import FakeClock, csrf_token, login

pytestmark = pytest.mark.req("CORE-3")

#: GET routes that may write on their first call, the tables they may write, and why.
FIRST_GET_WRITES = {
    # Printing issues the document: the PDF is archived and the issue audited, once per
    # distinct document (printing it again returns the archived copy and writes nothing).
    "documents.order_document": {"issued_document", "stored_file", "audit_log", "file_blob"},
    "api_documents.OrderDocument": {"issued_document", "stored_file", "audit_log", "file_blob"},
}
#: Routes not walked: static files (no database).
NOT_WALKED = {"static", "bootstrap.static"}
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
#: Table names a URL's id parameter may mean besides ``<name>`` and ``<plugin>_<name>``.
ALIASES = {
    "doc": ["issued_document"],
    "day": ["calendar_day"],
    "token": ["api_token"],
    "message": ["outbox_message", "notification"],
    "notification": ["notification"],
}


@dataclass
class World:
    """The demo company's app, its engine, and candidate values for URL parameters."""

    app: Flask
    engine: Engine
    strings: dict[str, list[str]]

    def changes_since(self, mark: int) -> list[tuple[str, str]]:
        """The (table, operation) changes recorded after ``mark``."""
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT tbl, op FROM walk_change WHERE id > :m ORDER BY id"), {"m": mark})
            return [(row[0], row[1]) for row in rows]

    def mark(self) -> int:
        """The latest change recorded."""
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT coalesce(max(id), 0) FROM walk_change")).scalar_one())


def _watch_every_table(engine: Engine) -> None:
    """Record every insert, update and delete on every table in ``walk_change`` (by triggers)."""
    tables = [name for name in inspect(engine).get_table_names() if name != "walk_change"]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("CREATE TABLE walk_change (id SERIAL PRIMARY KEY, tbl TEXT, op TEXT)"))
            conn.execute(
                text(
                    "CREATE FUNCTION walk_log() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "INSERT INTO walk_change (tbl, op) VALUES (TG_TABLE_NAME, lower(TG_OP)); RETURN NULL; END $$"
                )
            )
            for table in tables:
                conn.execute(
                    text(
                        f'CREATE TRIGGER walk_log AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
                        "FOR EACH ROW EXECUTE FUNCTION walk_log()"
                    )
                )
            return
        conn.execute(text("CREATE TABLE walk_change (id INTEGER PRIMARY KEY, tbl TEXT, op TEXT)"))
        for table, op in itertools.product(tables, ("INSERT", "UPDATE", "DELETE")):
            conn.execute(
                text(
                    f'CREATE TRIGGER "walk_{table}_{op.lower()}" AFTER {op} ON "{table}" BEGIN '
                    f"INSERT INTO walk_change (tbl, op) VALUES ('{table}', '{op.lower()}'); END"
                )
            )


def _strings(engine: Engine, app: Flask) -> dict[str, list[str]]:
    """Candidate values of the string parameters of URLs, from the seeded world."""

    def column(sql: str) -> list[str]:
        try:
            with engine.connect() as conn:
                return [str(value) for value in conn.execute(text(sql)).scalars() if value is not None]
        except Exception:  # a table of a plugin that is not there
            return []

    documents = column("SELECT DISTINCT name FROM issued_document") or ["order_confirmation"]
    jobs = column("SELECT name FROM job_state ORDER BY name")[:3]
    metrics = [metric.key for metric in _kpi_metrics(app)][:3]
    return {
        "name": list(dict.fromkeys([*documents, "confirmation", *jobs, "inspection"])),
        "key": list(dict.fromkeys([*metrics, *column("SELECT key FROM setting_value")[:2]])),
        "fmt": ["csv", "xlsx"],
        "code": ["en"],
        "token": column("SELECT token FROM kpi_survey")[:1] or ["no-such-token"],
        "sha256": ["0" * 64],
        "role_code": ["sales"],
        "provider": ["test"],
        "carrier_code": ["test"],
    }


def _kpi_metrics(app: Flask) -> list[Any]:
    """kpi's own metrics (their keys name the metric screens)."""
    from plugins.kpi import ordo_kpi_metrics

    return list(ordo_kpi_metrics())


@pytest.fixture(scope="module")
def world(ordo_templates: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The demo company with every installed plugin enabled, watched by triggers (one per module)."""
    folder = tmp_path_factory.mktemp("attack") / "instance"
    folder.mkdir()
    url = ordo_templates.empty_database(folder)
    instance = load_instance(folder, url)
    engine = make_engine(url)
    load_demo(engine, instance)
    installed = discover()
    enable(engine, [name for name in installed if name not in enabled_plugins(engine)], installed=installed)
    _watch_every_table(engine)
    app = create_app({"INSTANCE": folder, "DATABASE_URL": url, "TESTING": True})
    reader = engine.execution_options(ordo_read_only=True)  # never takes SQLite's write lock
    yield World(app, reader, _strings(reader, app))
    app.extensions["ordo"].engine.dispose()
    engine.dispose()
    ordo_templates.drop(url)


_TABLES: dict[str, dict[str, list[str]]] = {}


def _tables(engine: Engine) -> dict[str, list[str]]:
    """The database's tables and their columns (looked up once per database)."""
    key = str(engine.url)
    if key not in _TABLES:
        inspector = inspect(engine)
        _TABLES[key] = {
            name: [column["name"] for column in inspector.get_columns(name)] for name in inspector.get_table_names()
        }
    return _TABLES[key]


def _ids(engine: Engine, argument: str) -> list[dict[str, Any]]:
    """Rows (as dicts) of the table an ``<int:…_id>`` parameter names: its first row each."""
    base = argument.removesuffix("_id")
    tables = _tables(engine)
    names = [t for t in tables if t == base or t.endswith(f"_{base}")] + [
        t for t in ALIASES.get(base, []) if t in tables
    ]
    rows = []
    with engine.connect() as conn:
        for table in dict.fromkeys(names):
            if "id" not in tables[table]:
                continue
            row = conn.execute(text(f'SELECT * FROM "{table}" ORDER BY id LIMIT 1')).mappings().first()
            if row is not None:
                rows.append(dict(row))
    return rows


def urls_for(world: World, rule: Rule, method: str) -> list[str]:
    """Every URL of ``rule`` to walk: real ids, each candidate string value."""
    choices: list[list[tuple[str, Any]]] = []
    filled: dict[str, Any] = {}
    for argument in sorted(rule.arguments):
        converter = rule._converters.get(argument)
        if isinstance(converter, AnyConverter):
            choices.append([(argument, item) for item in sorted(converter.items)])
        elif argument.endswith("_id"):
            rows = _ids(world.engine, argument)
            # A child's own parent (an order's shipment with that order), so the URL is real.
            for row in rows[:1]:
                for other in rule.arguments:
                    if other != argument and other in row and other not in filled:
                        filled[other] = row[other]
            choices.append([(argument, row["id"]) for row in rows] or [(argument, 1)])
        else:
            choices.append([(argument, value) for value in world.strings.get(argument, ["x"])])
    adapter = world.app.url_map.bind("localhost")
    urls = []
    for combination in itertools.product(*choices):
        values = dict(combination) | {k: v for k, v in filled.items() if k in rule.arguments}
        try:
            urls.append(adapter.build(rule.endpoint, values, method=method))
        except (BuildError, ValueError):  # a value the converter refuses
            continue
    return list(dict.fromkeys(urls))


def walked(world: World, methods: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(method, endpoint, URL) of every route with one of ``methods``."""
    found = []
    for rule in world.app.url_map.iter_rules():
        if rule.endpoint in NOT_WALKED:
            continue
        for method in sorted(set(rule.methods or ()) & set(methods)):
            found.extend((method, rule.endpoint, url) for url in urls_for(world, rule, method))
    return found


def fetched(client: FlaskClient, method: str, url: str, **kwargs: Any) -> Any:
    """The response to ``method url``, read to its end and closed (as a server would: a
    streamed export otherwise keeps its request's context, and ``g``, alive)."""
    response = client.open(url, method=method, **kwargs)
    response.get_data()
    response.close()
    return response


def csrf_exempt(app: Flask, method: str, url: str) -> bool:
    """Whether ``app`` exempts the view at ``method url`` from the CSRF check (and the Origin check)."""
    from core.app import csrf

    with app.test_request_context(url, method=method):
        return csrf.is_exempt()


def admin_client(world: World) -> FlaskClient:
    """A client logged in as the demo's administrator."""
    client = world.app.test_client()
    client.get("/lang/en")
    response = login(client, ADMIN_EMAIL, DEMO_PASSWORD)
    assert response.status_code == 200 and client.get("/orders").status_code == 200
    return client


# --- (a) no GET changes the database ------------------------------------------------------


def test_no_get_on_any_route_changes_the_database(world: World):
    client = admin_client(world)
    routes = walked(world, ("GET",))
    assert len(routes) > 150, len(routes)
    problems, server_errors, exceptions_seen = [], [], set()
    statuses: dict[int, list[str]] = {}
    for _method, endpoint, url in routes:
        mark = world.mark()
        try:
            response = fetched(client, "GET", url)
        except Exception as exc:  # TESTING: a server error propagates to here
            server_errors.append((url, repr(exc)[:200]))
            continue
        statuses.setdefault(response.status_code, []).append(url)
        if response.status_code >= 500:
            server_errors.append((url, response.status_code))
        changes = world.changes_since(mark)
        allowed = FIRST_GET_WRITES.get(endpoint, set())
        if allowed and changes:
            exceptions_seen.add(endpoint)
            mark = world.mark()
            again = fetched(client, "GET", url)
            assert again.status_code == response.status_code
            assert world.changes_since(mark) == [], f"printing {url} again wrote again"
        unexpected = [change for change in changes if change[0] not in allowed]
        if unexpected:
            problems.append((url, unexpected[:5]))
    assert not server_errors, "\n".join(map(str, server_errors))
    assert not problems, "\n".join(map(str, problems))
    assert exceptions_seen, "the walk printed no document: the exception above went untested"
    # Real ids: most pages were shown, not refused or missing.
    shown = len(statuses.get(200, []))
    assert shown >= 0.75 * len(routes), {status: urls[:20] for status, urls in statuses.items() if status != 200}


def test_a_bearer_token_get_notes_only_the_tokens_last_use_at_most_once_a_minute(world: World):
    """The other write a GET makes: an API token's ``last_used_at`` (bookkeeping about the
    credential, shown on the tokens screen), at most once a minute per token."""
    from sqlalchemy import select

    from core.models import User
    from core.testing import token_for

    with world.app.extensions["ordo"].sessions() as db:
        admin = db.scalars(select(User).where(User.email == ADMIN_EMAIL)).one()
        token = token_for(db, admin)
    client = world.app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    api_gets = [url for method, _e, url in walked(world, ("GET",)) if url.startswith("/api/v1/")][:40]
    mark = world.mark()
    for url in api_gets:
        assert fetched(client, "GET", url, headers=headers).status_code < 500, url
    assert world.changes_since(mark) == [("api_token", "update")]


# --- (b) writes without a CSRF token, or from another site, are refused -----------------------


def test_every_write_refuses_a_missing_csrf_token_and_a_foreign_origin(world: World):
    client = admin_client(world)
    token = csrf_token(client, "/orders")
    routes = walked(world, WRITE_METHODS)
    assert len(routes) > 100, len(routes)
    # Views a plugin exempted from CSRF take no cookies: only the signed webhooks.
    exempt = {url for method, _e, url in routes if csrf_exempt(world.app, method, url)}
    assert exempt and all("/webhooks/" in url for url in exempt), exempt
    problems = []
    for method, _endpoint, url in routes:
        if url in exempt:
            continue
        for label, headers, data in (
            ("no CSRF token", {}, {}),
            ("foreign Origin", {"Origin": "https://evil.example", "X-CSRFToken": token}, {"csrf_token": token}),
        ):
            mark = world.mark()
            response = fetched(client, method, url, data=data, headers=headers)
            refused = response.status_code in (400, 401, 403) or (
                label == "no CSRF token" and response.status_code == 302
            )
            if label == "foreign Origin":
                refused = response.status_code == 403
            changes = world.changes_since(mark)
            if not refused or changes:
                problems.append((label, method, url, response.status_code, changes[:3]))
    assert not problems, "\n".join(map(str, problems))
    assert client.get("/orders").status_code == 200, "still logged in: logout was refused too"


# --- (c) the 101st failed login within an hour ----------------------------------------------


def test_the_101st_failed_login_within_an_hour_is_refused_and_the_owner_gets_in_after_the_delay(
    make_app: Any, session: Any
):
    from core.security.throttle import DEFAULTS
    from core.testing import PASSWORD, make_user

    clock = FakeClock()
    app = make_app((), CLOCK=clock)
    with app.extensions["ordo"].sessions() as db:
        make_user(db, "owner@example.com", ["sales"])
    attacker = app.test_client()
    attacker.get("/lang/en")
    token = csrf_token(attacker, "/login")
    for n in range(100):  # 100 guesses from 10 addresses, 30 seconds apart: 50 minutes
        attacker.environ_base["REMOTE_ADDR"] = f"203.0.113.{n % 10}"
        attacker.post("/login", data={"email": "owner@example.com", "password": f"guess-{n}x", "csrf_token": token})
        clock.advance(30)
    attacker.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    right = {"email": "owner@example.com", "password": PASSWORD, "csrf_token": token}
    refused = attacker.post("/login", data=right)
    assert refused.status_code == 429, "the 101st attempt within the hour, even with the right password"
    assert int(refused.headers["Retry-After"]) <= DEFAULTS["LOGIN_THROTTLE_MAX_DELAY"]
    # Not locked for ever: once the (capped) delay is over, the owner logs in.
    clock.advance(int(refused.headers["Retry-After"]) + 1)
    owner = app.test_client()
    owner.environ_base["REMOTE_ADDR"] = "198.51.100.8"
    response = owner.post("/login", data={**right, "csrf_token": csrf_token(owner, "/login")})
    assert response.status_code == 302, response.get_data(as_text=True)


def test_known_and_unknown_users_get_the_same_answer(make_app: Any):
    from core.testing import make_user

    app = make_app(())
    with app.extensions["ordo"].sessions() as db:
        make_user(db, "known@example.com", ["sales"])
    answers = []
    for n, email in enumerate(["known@example.com", "unknown@example.com"]):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"192.0.2.{n}"
        client.get("/lang/en")
        token = csrf_token(client, "/login")
        response = client.post("/login", data={"email": email, "password": "wrong-pass-1", "csrf_token": token})
        body = re.sub(r'(csrf[-_]token"[^>]*(?:value|content)=")[^"]+', r"\1TOKEN", response.get_data(as_text=True))
        answers.append((response.status_code, body))
    assert answers[0][0] == answers[1][0] == 200
    strip = [body.replace("unknown@example.com", "E").replace("known@example.com", "E") for _s, body in answers]
    assert strip[0] == strip[1]
