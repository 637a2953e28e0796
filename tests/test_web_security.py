"""The web layer's defences: redirects stay on the site, plugin HTML is escaped unless
trusted, cookies are Secure over HTTPS, CSRF is skipped only for a real bearer token,
the secret key is private (or shared through the environment), and huge ids are 404.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from core import hookimpl
from core.config import load_instance
from core.contrib import Panel
from core.models import Order, User
from core.services.orders import take_action
from core.testing import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    csrf_token,
    login,
    make_order,
    order_payload,
    seed_master_data,
    token_for,
)
from core.views.common import safe_target
from core.web import OrdoState

#: ``next`` values that would send the browser to another site (or run script).
MALICIOUS = [
    pytest.param("//evil.example", id="scheme-relative"),
    pytest.param("///evil.example", id="triple-slash"),
    pytest.param("/\\evil.example", id="backslash"),
    pytest.param("\\\\evil.example", id="backslashes"),
    pytest.param("/\t/evil.example", id="tab"),
    pytest.param("/\n/evil.example", id="newline"),
    pytest.param("/\x00", id="nul"),
    pytest.param("/\x7f/evil.example", id="del"),
    pytest.param("https://evil.example", id="absolute"),
    pytest.param("https:/evil.example", id="scheme-one-slash"),
    pytest.param("javascript:alert(1)", id="javascript"),
    pytest.param("evil.example", id="no-leading-slash"),
    pytest.param(" //evil.example", id="leading-space"),
    pytest.param("", id="empty"),
]
GOOD = "/orders?page=2"


def orders_in(state: OrdoState) -> int:
    """How many orders the database holds (read on a connection of its own)."""
    with state.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Order)) or 0


# --- 1. open redirects ---------------------------------------------------------------


@pytest.mark.parametrize("target", MALICIOUS)
def test_safe_target_refuses_other_sites(target: str):
    assert safe_target(target, "/home") == "/home"


@pytest.mark.parametrize("target", [GOOD, "/", "/orders/12#lines", "/customers?q=a%20b", "/orders/%2F%2Fx"])
def test_safe_target_keeps_paths_on_this_site(target: str):
    assert safe_target(target, "/home") == target


def test_safe_target_without_a_target_is_the_default():
    assert safe_target(None, "/home") == "/home"


@pytest.mark.parametrize("target", MALICIOUS)
def test_choosing_the_language_never_redirects_away(client: FlaskClient, target: str):
    response = client.get("/lang/en", query_string={"next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_an_encoded_tab_does_not_make_a_scheme_relative_redirect(client: FlaskClient):
    response = client.get("/lang/en?next=/%09/evil.example")
    assert response.headers["Location"] == "/"


def test_choosing_the_language_keeps_a_path_on_this_site(client: FlaskClient):
    response = client.get("/lang/en", query_string={"next": GOOD})
    assert response.headers["Location"] == GOOD


def _post_login(client: FlaskClient, target: str) -> Any:
    token = csrf_token(client, "/login")
    return client.post(
        "/login",
        query_string={"next": target},
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token},
    )


@pytest.mark.parametrize("target", MALICIOUS)
def test_logging_in_never_redirects_away(client: FlaskClient, target: str):
    response = _post_login(client, target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_logging_in_goes_where_the_user_was_going(client: FlaskClient):
    response = _post_login(client, GOOD)
    assert response.status_code == 302
    assert response.headers["Location"] == GOOD


@pytest.fixture
def inspection_app(make_app: Callable[..., Flask]) -> Flask:
    """An app with the third-party inspection plugin enabled."""
    return make_app(["inspection"])


def _order_in(app: Flask, *actions: str) -> int:
    """Make an order in ``app``'s database as the administrator, take ``actions``; return its id."""
    state: OrdoState = app.extensions["ordo"]
    with state.sessions() as session:
        admin = session.scalar(select(User).where(User.email == ADMIN_EMAIL))
        assert admin is not None
        seed_master_data(session)
        order = make_order(session, admin)
        for action in actions:
            take_action(session, state.registry, admin, order, action)
        session.commit()
        return order.id


@pytest.mark.parametrize("target", ["/\\evil.example", "/\t/evil.example", "https://evil.example", GOOD])
def test_the_inspection_plugin_never_redirects_away(inspection_app: Flask, target: str):
    order_id = _order_in(inspection_app)
    client = inspection_app.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    # No result chosen: refused, and sent back to ``next`` (if it is on this site).
    response = client.post(
        f"/inspection/orders/{order_id}/reports",
        data={"result": "", "csrf_token": csrf_token(client, "/login"), "next": target},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == (GOOD if target == GOOD else "/inspection/reports")


def test_the_inspection_plugin_redirects_back_through_the_core_helper():
    from ordo_inspection import views

    assert not hasattr(views, "_safe_back")
    assert views.safe_target is safe_target


# --- 2. plugin panels --------------------------------------------------------------------


class _PanelPlugin:
    """A stand-in plugin with one panel built from a plain string and one from Markup."""

    @hookimpl
    def ordo_order_panels(self, order: Order, user: User, session: Session) -> list[Panel]:
        return [
            Panel("Plain", f"<script>alert('{order.number}')</script>", order=1),
            Panel("Trusted", Markup("<p class='trusted'>{}</p>").format("<b>x</b>"), order=2),
        ]


def test_a_plugin_panel_from_a_plain_string_is_escaped(client: FlaskClient, session, state, admin, seed):
    state.registry.pm.register(_PanelPlugin(), name="panel-test")
    order = make_order(session, admin)
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "<script>alert(" not in page
    assert f"&lt;script&gt;alert(&#39;{order.number}&#39;)&lt;/script&gt;" in page
    # Markup is trusted as it is, and what it formatted in was escaped.
    assert "<p class='trusted'>&lt;b&gt;x&lt;/b&gt;</p>" in page


def test_the_inspection_panel_still_renders_its_form(inspection_app: Flask):
    order_id = _order_in(inspection_app, "submit", "confirm")  # now waiting for inspection
    client = inspection_app.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    start = page.index('<div class="inspection-panel">')
    panel = page[page.rindex("ordo-plugin-panel", 0, start) :].split("</section>", 1)[0]
    assert "Inspection 验货" in panel
    assert '<div class="inspection-panel">' in panel and "<form" in panel
    assert f'action="/inspection/orders/{order_id}/reports"' in panel
    assert "&lt;" not in panel


def test_the_inspection_panel_is_markup(inspection_app: Flask):
    order_id = _order_in(inspection_app)
    state: OrdoState = inspection_app.extensions["ordo"]
    with state.sessions() as session:
        admin = session.scalar(select(User).where(User.email == ADMIN_EMAIL))
        order = session.get(Order, order_id)
        assert admin is not None and order is not None
        with inspection_app.test_request_context(f"/orders/{order.id}"):
            groups = state.registry.results_by_plugin("ordo_order_panels", order=order, user=admin, session=session)
    (panel,) = [p for plugin, group in groups if plugin == "inspection" for p in group]
    assert isinstance(panel.html, Markup)


# --- 3. secure cookies -----------------------------------------------------------------------


def _login_over(client: FlaskClient, base_url: str, **headers: str) -> str:
    """Log in with ``base_url`` and return the session cookie's Set-Cookie header."""
    # Over HTTPS, the CSRF check also wants the form to come from this site.
    headers = {"Referer": f"{base_url}/login", **headers}
    page = client.get("/login", base_url=base_url, headers=headers).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match is not None
    response = client.post(
        "/login",
        base_url=base_url,
        headers=headers,
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": match.group(1)},
    )
    assert response.status_code == 302
    (cookie,) = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    return cookie


#: What a TLS-terminating proxy adds; the browser's Referer names the public https URL.
FORWARDED_HTTPS = {"X-Forwarded-Proto": "https", "Referer": "https://localhost/login"}


def _is_secure(cookie: str) -> bool:
    return "secure" in [part.strip().lower() for part in cookie.split(";")]


def test_the_session_cookie_is_secure_over_https(app: Flask):
    cookie = _login_over(app.test_client(), "https://localhost")
    assert _is_secure(cookie)
    # Per request, not by changing the app's configuration (threads share it).
    assert not app.config.get("SESSION_COOKIE_SECURE")


def test_the_session_cookie_is_not_secure_over_http(app: Flask):
    assert not _is_secure(_login_over(app.test_client(), "http://localhost"))


def test_a_secure_configuration_marks_the_cookie_secure_over_http_too(make_app: Callable[..., Flask]):
    app = make_app(SESSION_COOKIE_SECURE=True)
    assert _is_secure(_login_over(app.test_client(), "http://localhost"))


def test_forwarded_https_counts_only_behind_a_trusted_proxy(make_app: Callable[..., Flask]):
    direct = make_app()
    assert not _is_secure(_login_over(direct.test_client(), "http://localhost", **FORWARDED_HTTPS))
    proxied = make_app(PROXY_FIX=1)
    assert _is_secure(_login_over(proxied.test_client(), "http://localhost", **FORWARDED_HTTPS))


def test_the_proxy_count_may_come_from_the_environment(make_app: Callable[..., Flask], monkeypatch):
    monkeypatch.setenv("ORDO_PROXY_FIX", "1")
    app = make_app()
    assert _is_secure(_login_over(app.test_client(), "http://localhost", **FORWARDED_HTTPS))


def test_a_bad_proxy_count_is_refused(make_app: Callable[..., Flask]):
    with pytest.raises(ValueError, match="PROXY_FIX"):
        make_app(PROXY_FIX="many")


# --- 4. CSRF and bearer tokens -------------------------------------------------------------


@pytest.fixture
def logged_in(client: FlaskClient, admin, seed, session) -> FlaskClient:
    """``client`` logged in as the administrator, with master data."""
    session.commit()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    return client


def test_a_bogus_bearer_header_does_not_skip_csrf_on_logout(logged_in: FlaskClient):
    response = logged_in.post("/logout", headers={"Authorization": "Bearer x"})
    assert response.status_code == 400
    still = logged_in.get("/orders")
    assert still.status_code == 200  # still logged in


def test_a_bogus_bearer_header_does_not_skip_csrf_on_a_screen_form(logged_in: FlaskClient, state: OrdoState):
    form = {
        "customer": "C001",
        "channel": "phone",
        "payment_method": "monthly_settlement",
        "currency": "CNY",
        "urgency": "normal",
        "reference": "PO-2026-777",
        "requested_date": "2026-12-15",
        "ship_to_contact": "张伟",
        "ship_to_phone": "023-6000-0001",
        "ship_to_province": "重庆市",
        "ship_to_city": "重庆市",
        "ship_to_address": "渝北区金开大道 1 号",
        "lines-0-product": "P-100",
        "lines-0-quantity": "2",
    }
    refused = logged_in.post("/orders/new", data=form, headers={"Authorization": "Bearer x"}, follow_redirects=True)
    assert "The form had expired, so nothing was saved." in refused.get_data(as_text=True)
    assert orders_in(state) == 0
    # The same form with its CSRF token is saved: the refusal above was the CSRF check.
    saved = logged_in.post("/orders/new", data={**form, "csrf_token": csrf_token(logged_in, "/orders/new")})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert orders_in(state) == 1


def test_a_bogus_bearer_header_with_a_session_is_refused_by_the_api(logged_in: FlaskClient, state: OrdoState):
    response = logged_in.post("/api/v1/orders", json=order_payload(), headers={"Authorization": "Bearer ordo_wrong"})
    assert response.status_code == 401
    assert response.get_json()["error"]["message"] == "the bearer token is not valid"
    assert orders_in(state) == 0


def test_a_bogus_bearer_header_alone_is_refused_by_the_api(client: FlaskClient, seed, state: OrdoState):
    response = client.post("/api/v1/orders", json=order_payload(), headers={"Authorization": "Bearer ordo_wrong"})
    assert response.status_code == 401
    assert response.get_json()["error"]["message"] == "the bearer token is not valid"
    assert orders_in(state) == 0


def test_a_valid_bearer_token_still_needs_no_csrf_token(client: FlaskClient, session, admin, seed, state: OrdoState):
    token = token_for(session, admin)
    response = client.post("/api/v1/orders", json=order_payload(), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.get_json()
    assert orders_in(state) == 1


# --- 5. the secret key -------------------------------------------------------------------------


@pytest.fixture
def no_secret_env(monkeypatch) -> Iterator[None]:
    monkeypatch.delenv("ORDO_SECRET_KEY", raising=False)
    yield


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_secret_key_file_is_private_from_the_start(tmp_path: Path, no_secret_env, open_umask, monkeypatch):
    created: list[int] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith("secret_key"):
            created.append(mode)
            assert flags & os.O_EXCL and flags & os.O_CREAT
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    instance = load_instance(tmp_path / "inst")
    key_file = tmp_path / "inst" / "secret_key"
    assert created == [0o600]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(instance.secret_key) == 64
    assert load_instance(tmp_path / "inst").secret_key == instance.secret_key


def test_the_secret_key_may_come_from_the_environment(tmp_path: Path, monkeypatch, make_app: Callable[..., Flask]):
    (tmp_path / "inst").mkdir()
    (tmp_path / "inst" / "secret_key").write_text("from-the-file")
    monkeypatch.setenv("ORDO_SECRET_KEY", "shared-by-every-server")
    assert load_instance(tmp_path / "inst").secret_key == "shared-by-every-server"
    assert make_app().secret_key == "shared-by-every-server"


def test_with_the_key_in_the_environment_no_file_is_written(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ORDO_SECRET_KEY", "shared-by-every-server")
    load_instance(tmp_path / "inst")
    assert not (tmp_path / "inst" / "secret_key").exists()


# --- 6. huge ids ---------------------------------------------------------------------------------

HUGE = "99999999999999999999999999"


@pytest.mark.parametrize(
    "path", [f"/orders/{HUGE}", f"/customers/{HUGE}", f"/products/{HUGE}", "/orders/0", f"/orders/{2**31}"]
)
def test_huge_ids_on_screens_are_not_found(logged_in: FlaskClient, path: str):
    assert logged_in.get(path).status_code == 404


@pytest.mark.parametrize(
    "path", [f"/api/v1/orders/{HUGE}", f"/api/v1/customers/{HUGE}", "/api/v1/orders/0", f"/api/v1/orders/{2**40}"]
)
def test_huge_ids_in_the_api_are_not_found(client: FlaskClient, session, admin, path: str):
    response = client.get(path, headers={"Authorization": f"Bearer {token_for(session, admin)}"})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_ids_are_routed_from_one_to_the_largest_database_integer(app: Flask):
    urls = app.url_map.bind("localhost")
    # Ids are 32-bit on every database (PostgreSQL's INTEGER): a larger number is no row's id.
    assert urls.match(f"/orders/{2**31 - 1}") == ("orders.view_order", {"order_id": 2**31 - 1})
    assert urls.match("/orders/1") == ("orders.view_order", {"order_id": 1})
    for path in (f"/orders/{2**31}", f"/orders/{2**63}", "/orders/0", f"/api/v1/orders/{2**31}"):
        with pytest.raises(NotFound):
            urls.match(path)


def test_an_empty_key_file_is_refused_not_used(tmp_path: Path, no_secret_env, monkeypatch):
    (tmp_path / "inst").mkdir()
    (tmp_path / "inst" / "secret_key").write_text("")
    monkeypatch.setattr("core.config.time.sleep", lambda _seconds: None)
    with pytest.raises(RuntimeError, match="ORDO_SECRET_KEY"):
        load_instance(tmp_path / "inst")


@pytest.mark.parametrize(
    "path",
    [
        f"/orders?customer={2**31}",
        f"/orders?customer={HUGE}",
        "/orders?customer=²",
        f"/orders?page={HUGE}",
        f"/orders?page={2**40}",
        "/orders?page=²",
        f"/customers?page={HUGE}",
    ],
)
def test_huge_numbers_in_list_filters_and_pages_are_ignored_not_errors(logged_in: FlaskClient, path: str):
    # Beyond the database's integers (PostgreSQL's INTEGER, SQLite's 64 bits) a number names
    # nothing: the list answers as without it, never a 500.
    assert logged_in.get(path).status_code == 200


@pytest.mark.parametrize("value", [str(2**31), HUGE])
def test_huge_customer_filters_in_the_api_find_nothing(client: FlaskClient, session, admin, value: str):
    response = client.get(
        f"/api/v1/orders?customer={value}", headers={"Authorization": f"Bearer {token_for(session, admin)}"}
    )
    assert response.status_code in (200, 400, 422)
    if response.status_code == 200:
        assert response.get_json()["items"] == []


# --- 7. writes from another site: Origin and Referer ---------------------------------------


@pytest.mark.req("CORE-3")
@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"Origin": "https://evil.example"}, "Origin"),
        ({"Origin": "http://localhost.evil.example"}, "Origin"),
        ({"Origin": "http://localhost:8080"}, "Origin"),
        ({"Origin": "null"}, "Origin"),
        ({"Origin": "file://"}, "Origin"),
        ({"Referer": "https://evil.example/page"}, "Referer"),
        ({"Referer": "//evil.example/page"}, "Referer"),
        ({"Origin": "https://evil.example", "Referer": "http://localhost/orders"}, "Origin"),
        ({"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site"),
    ],
)
def test_a_write_from_another_site_is_refused_even_with_its_csrf_token(
    logged_in: FlaskClient, headers: dict[str, str], why: str
):
    token = csrf_token(logged_in, "/orders")
    response = logged_in.post("/logout", data={"csrf_token": token}, headers=headers)
    assert response.status_code == 403
    assert logged_in.get("/orders").status_code == 200, "still logged in: the logout was refused"


@pytest.mark.req("CORE-3")
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "http://localhost"},
        {"Origin": "http://LOCALHOST:80"},
        {"Origin": "https://localhost"},  # a TLS-terminating proxy the app was not told about
        {"Referer": "http://localhost/orders"},
        {"Referer": "/orders"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
    ],
)
def test_a_write_from_this_site_goes_through(logged_in: FlaskClient, headers: dict[str, str]):
    token = csrf_token(logged_in, "/orders")
    response = logged_in.post("/logout", data={"csrf_token": token}, headers=headers)
    assert response.status_code == 302 and response.headers["Location"] == "/login"


def test_a_foreign_origin_is_refused_before_the_csrf_token_is_looked_at(logged_in: FlaskClient, state: OrdoState):
    response = logged_in.post("/orders/new", data={"customer": "C001"}, headers={"Origin": "https://evil.example"})
    page = response.get_data(as_text=True)
    assert response.status_code == 403 and "Not allowed" in page
    # The page says why (not "no permission": the user has it, the browser came from elsewhere).
    assert "sent from another website" in page and "do not have the permission" not in page
    assert orders_in(state) == 0


def test_the_origin_counts_with_the_port_the_browser_used(make_app: Callable[..., Flask]):
    client = make_app().test_client()
    base = "http://localhost:5000"
    login_page = client.get("/login", base_url=base).get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_page)
    assert token is not None
    data = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token.group(1)}
    other_port = client.post("/login", base_url=base, data=data, headers={"Origin": "http://localhost:5001"})
    assert other_port.status_code == 403
    same = client.post("/login", base_url=base, data=data, headers={"Origin": "http://localhost:5000"})
    assert same.status_code == 302


def test_behind_a_trusted_proxy_an_http_origin_on_https_is_refused(make_app: Callable[..., Flask]):
    """The scheme may be upgraded (https origin, plain request) but never downgraded."""
    proxied = make_app(PROXY_FIX=1)
    assert _is_secure(_login_over(proxied.test_client(), "http://localhost", **FORWARDED_HTTPS))
    client = proxied.test_client()
    headers = {"X-Forwarded-Proto": "https", "Origin": "http://localhost", "Referer": "https://localhost/login"}
    page = client.get("/login", headers=headers).get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token is not None
    data = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token.group(1)}
    assert client.post("/login", data=data, headers=headers).status_code == 403
    assert client.post("/login", data=data, headers={**headers, "Origin": "https://localhost"}).status_code == 302


@pytest.mark.req("CORE-3")
def test_only_views_exempted_from_csrf_skip_the_token_and_origin_checks(make_app: Callable[..., Flask]):
    """A view exempted by function or by name (as a plugin's signed webhook is, by blueprint)
    takes writes without a CSRF token and from any origin; its neighbour does not."""
    from core.app import csrf

    app = make_app()

    def probe_exempt() -> str:
        return "taken"

    def probe_guarded() -> str:
        return "taken"

    app.add_url_rule("/probe/exempt", view_func=csrf.exempt(probe_exempt), methods=["POST"])
    app.add_url_rule("/probe/guarded", view_func=probe_guarded, methods=["POST"])
    client = app.test_client()
    foreign = {"Origin": "https://evil.example"}
    assert client.post("/probe/exempt", headers=foreign).get_data(as_text=True) == "taken"
    assert client.post("/probe/guarded").status_code == 400  # no CSRF token
    assert client.post("/probe/guarded", headers=foreign).status_code == 403
    with app.test_request_context("/probe/guarded", method="POST"):
        assert not csrf.is_exempt()
    with app.test_request_context("/probe/exempt", method="POST"):
        assert csrf.is_exempt()


def test_a_bearer_token_write_is_not_judged_by_its_origin(client: FlaskClient, session, admin, seed, state: OrdoState):
    token = token_for(session, admin)
    response = client.post(
        "/api/v1/orders",
        json=order_payload(),
        headers={"Authorization": f"Bearer {token}", "Origin": "https://integration.example"},
    )
    assert response.status_code == 201, response.get_json()
    assert orders_in(state) == 1


def test_a_cookie_session_api_write_from_another_site_is_refused(logged_in: FlaskClient, state: OrdoState):
    csrf = csrf_token(logged_in, "/orders")
    response = logged_in.post(
        "/api/v1/orders", json=order_payload(), headers={"Origin": "https://evil.example", "X-CSRFToken": csrf}
    )
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
    assert orders_in(state) == 0


@pytest.mark.parametrize(
    ("headers", "foreign"),
    [
        ({}, False),
        ({"Origin": "https://ordo.example"}, False),
        ({"Origin": "https://ordo.example:443"}, False),
        ({"Origin": "https://ordo.example."}, False),
        ({"Origin": "https://ordo.example:8443"}, True),
        ({"Origin": "https://ordo.example@evil.example"}, True),
        ({"Origin": "https://evil.example#ordo.example"}, True),
        ({"Origin": "https://[::1"}, True),
        ({"Origin": ""}, True),
        ({"Referer": "https://ordo.example/orders?x=1"}, False),
        ({"Referer": "/orders"}, False),
        ({"Referer": "orders"}, False),
        ({"Referer": "https://evil.example/?https://ordo.example"}, True),
        ({"Referer": "javascript:alert(1)"}, True),
        ({"Referer": "\\\\evil.example"}, True),
        ({"Sec-Fetch-Site": "Cross-Site"}, True),
        ({"Sec-Fetch-Site": "none"}, False),
    ],
)
def test_foreign_origin(headers: dict[str, str], foreign: bool):
    from core.security.origin import foreign_origin

    assert (foreign_origin(headers, "https", "ordo.example") is not None) is foreign
