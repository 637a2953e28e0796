"""Hostile text stays inert on every exit channel, and SQL in list filters changes nothing.

A corpus of attacker strings (HTML/JS, ``javascript:`` URLs, template syntax, CRLF with
mail headers, bidi overrides, NUL, over-long text) goes into customer names, contacts,
addresses, order notes and product names through the API; then the screens (parsed:
no script or event handler from the data), the e-mail that reaches a real SMTP server
(headers not split, no extra recipients), the PDFs (the text reads back, nothing fetched)
and the CSV/XLSX exports (no live formula) are checked. Every list endpoint of the API
(from the OpenAPI document) and every list screen (from the URL map) is sent SQL
injection payloads in its query parameters: never a server error, never more rows, and
the database is unchanged (row counts of every table).

``ORDO_HOSTILE_FULL=1`` sends every payload to every parameter (the default sends a
sample of payloads, rotating, so each parameter meets several).
"""

from __future__ import annotations

import csv
import io
import os
import socket
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from html.parser import HTMLParser

import pytest
from aiosmtpd.controller import Controller
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import func, inspect, select

from core.db import Base
from core.models import Customer, CustomerContact, Order, Product
from core.notify.delivery import deliver_due
from core.settings import set_setting
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, ApiCaller, csrf_token, login, order_payload, token_for

FULL = os.environ.get("ORDO_HOSTILE_FULL") == "1"

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(1)"
TEMPLATE = "{{7*7}}{% if 1 %}ssti{% endif %}"
FORMULA = '=HYPERLINK("http://evil.example","x")'
REMOTE = '<img src="http://169.254.169.254/x.png"><img src="file:///etc/passwd">'
BIDI = "abc\u202egpj.exe"

#: Bidi overrides are refused (see the refusals below); everything else here is accepted.
#: Single-line text the API accepts: each must come back unchanged and inert everywhere.
HOSTILE = [SCRIPT, IMG, JS_URL, TEMPLATE, FORMULA, REMOTE, "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "重庆<b>粗</b>"]
#: Mail-header injection: refused in single-line fields (a control character).
CRLF = "x\r\nBcc: evil@attacker.example"

SQLI = [
    "' OR 1=1--",
    "1; DROP TABLE orders",
    "%' --",
    "id;DELETE FROM orders",
    "1' UNION SELECT null, password_hash FROM users--",
    "\\'; SELECT pg_sleep(5)--",
    "1)) OR ((1=1",
    "customer.name DESC; UPDATE users SET active=0",
]


@pytest.fixture
def ordo_plugins():
    return ("intake", "review", "logistics", "billing", "kpi")


@pytest.fixture
def api(client, session, admin, seed) -> ApiCaller:
    return ApiCaller(client, token_for(session, admin))


def _hostile_customer(api: ApiCaller, code: str, name: str, extra: str) -> dict:
    body = {
        "code": code,
        "name": name,
        "note": f"{extra}\n{SCRIPT}",
        "contacts": [{"name": extra[:100], "email": "buyer@example.com", "phone": "023-1"}],
        "addresses": [{"province": "重庆市", "city": IMG[:64], "address": f"{SCRIPT}\n{REMOTE}"}],
    }
    response = api.post("/api/v1/customers", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def hostile(api, session):
    """Customers, a product and orders full of the corpus, all created through the API."""
    customers = [
        _hostile_customer(api, f"H{i}", value, HOSTILE[(i + 1) % len(HOSTILE)]) for i, value in enumerate(HOSTILE)
    ]
    product = api.post(
        "/api/v1/products",
        json={"sku": "P-EVIL", "name": SCRIPT + FORMULA, "spec": IMG, "unit": "台", "list_price": "10.00"},
    )
    assert product.status_code == 201, product.get_json()
    orders = []
    for i, customer in enumerate(customers):
        body = order_payload(
            customer=customer["code"],
            reference=HOSTILE[i][:100],
            note=f"{SCRIPT}\n{TEMPLATE}\n{FORMULA}\n{REMOTE}",
            contact_name=IMG,
            ship_to={"contact": SCRIPT, "province": "重庆市", "city": JS_URL, "address": REMOTE},
            lines=[{"product": "P-EVIL", "quantity": "1", "description": SCRIPT}],
        )
        response = api.post("/api/v1/orders", json=body)
        assert response.status_code == 201, response.get_json()
        orders.append(response.get_json())
    return {"customers": customers, "orders": orders}


# --- screens ---------------------------------------------------------------------------


class _Inspector(HTMLParser):
    """Collects what a browser would run: script bodies, event handlers and script URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.handlers: list[tuple[str, str, str | None]] = []
        self.urls: list[str] = []
        self.tags: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_script = tag == "script"
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append((tag, name, value))
            if name in ("href", "src", "action", "formaction") and value:
                self.urls.append(value.strip())

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def assert_inert(html: str, where: str) -> None:
    """No script, handler, image or ``javascript:`` URL that came from the corpus."""
    page = _Inspector()
    page.feed(html)
    assert not [s for s in page.scripts if "alert(1)" in s], where
    assert not [h for h in page.handlers if h[2] and "alert(1)" in h[2]], where
    assert not [u for u in page.urls if u.lower().startswith("javascript:")], where
    assert not [u for u in page.urls if "169.254.169.254" in u or u.startswith("file:")], where
    assert "<script>alert(1)" not in html and "<img src=x" not in html, where
    assert "ssti" not in html.replace("{% if 1 %}ssti", ""), f"a template tag ran in {where}"


@pytest.mark.req("CORE-4")
def test_screens_show_hostile_text_as_text(client, hostile):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    order_ids = [o["id"] for o in hostile["orders"]]
    customer_ids = [c["id"] for c in hostile["customers"]]
    pages = ["/orders", "/customers", "/products", "/orders?q=script", "/customers?q=%3Cscript"]
    pages += [f"/orders/{i}" for i in order_ids[:4]] + [f"/customers/{i}" for i in customer_ids[:4]]
    pages += [f"/customers/{customer_ids[0]}/edit", f"/orders/{order_ids[0]}/edit"]
    pages += ["/logistics/outbound", "/billing/uninvoiced", "/intake/queue/", "/review/approvals", "/kpi/"]
    shown = 0
    for path in pages:
        response = client.get(path)
        assert response.status_code in (200, 302, 404), (path, response.status_code)
        if response.status_code == 200:
            html = response.get_data(as_text=True)
            assert_inert(html, path)
            shown += "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert shown >= 8  # the text is there, escaped — not dropped


@pytest.mark.req("CORE-4")
def test_the_api_returns_hostile_text_unchanged_as_json(api, hostile):
    order = api.get(f"/api/v1/orders/{hostile['orders'][0]['id']}")
    assert order.mimetype == "application/json"
    body = order.get_json()
    assert body["note"].startswith(SCRIPT) and body["ship_to"]["address"] == REMOTE
    assert body["customer"]["name"] == HOSTILE[0]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/customers", {"code": "L1", "name": "x" * 100_000}, "name"),
        ("/api/v1/customers", {"code": "L2", "name": CRLF}, "name"),
        ("/api/v1/customers", {"code": "L3", "name": "a\x00b"}, "name"),
        ("/api/v1/customers", {"code": "L6", "name": BIDI}, "name"),
        ("/api/v1/orders", order_payload(note=f"ok\n{BIDI}"), "note"),
        ("/api/v1/customers", {"code": "L4", "name": "ok", "contacts": [{"name": CRLF}]}, "contacts"),
        ("/api/v1/customers", {"code": "L5", "name": "ok", "note": "n" * 100_000}, "note"),
        ("/api/v1/customers", {"code": "../../x", "name": "ok"}, "code"),
        ("/api/v1/orders", order_payload(note="x" * 100_000), "note"),
        ("/api/v1/orders", order_payload(contact_name=CRLF), "contact_name"),
        ("/api/v1/orders", order_payload(reference=CRLF), "reference"),
        ("/api/v1/products", {"sku": "S1", "name": CRLF, "unit": "台", "list_price": "1"}, "name"),
    ],
)
def test_over_long_text_crlf_and_nul_are_refused_and_change_nothing(api, session, path, body, field):
    before = fingerprint(session)
    response = api.post(path, json=body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["details"]
    assert fingerprint(session) == before


def test_text_at_its_longest_prints_and_exports(api, client, session, seed):
    longest = "长" * 200
    customer = _hostile_customer(api, "LONG", longest, "x" * 100)
    note = ("甲乙丙丁" * 500)[:2000]
    created = api.post("/api/v1/orders", json=order_payload(customer=customer["code"], note=note, reference="R" * 100))
    assert created.status_code == 201, created.get_json()
    order_id = created.get_json()["id"]
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert longest in client.get(f"/orders/{order_id}").get_data(as_text=True)
    pdf = client.get(f"/orders/{order_id}/documents/order_sheet.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert "长长长长" in _pdf_text(pdf.data)
    rows = _csv(client.get("/orders/export.csv"))
    assert any("R" * 100 in row for row in rows)


# --- PDFs --------------------------------------------------------------------------------


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


@pytest.mark.req("CORE-1")
@pytest.mark.parametrize("document", ["order_sheet", "order_confirmation"])
def test_pdfs_print_hostile_text_as_text_and_fetch_nothing(client, hostile, document, monkeypatch):
    import weasyprint.urls

    fetched: list[str] = []
    original = weasyprint.urls.URLFetcher.fetch

    def spy(self, url, *args, **kwargs):
        fetched.append(url)
        return original(self, url, *args, **kwargs)

    monkeypatch.setattr(weasyprint.urls.URLFetcher, "fetch", spy)
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    order = hostile["orders"][5]  # REMOTE is its reference; every order's address is REMOTE
    response = client.get(f"/orders/{order['id']}/documents/{document}.pdf")
    assert response.status_code == 200, response.status_code
    reader = PdfReader(io.BytesIO(response.data))
    text_ = _pdf_text(response.data)
    assert "169.254.169.254" in text_.replace("\n", "")  # the markup is printed as text
    assert not any(page.images for page in reader.pages[1:])  # nothing fetched became an image
    assert not [u for u in fetched if not u.startswith("data:")]


# --- exports -----------------------------------------------------------------------------


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.status_code
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _assert_csv_safe(rows: list[list[str]], where: str) -> None:
    for row in rows:
        for cell in row:
            assert not cell.startswith(DANGEROUS) or _harmless(cell), (where, cell)


def _harmless(cell: str) -> bool:
    """A number such as ``-12.50`` or a date is not a formula."""
    try:
        float(cell.replace(",", ""))
    except ValueError:
        return False
    return True


def _assert_xlsx_safe(data: bytes, where: str) -> int:
    workbook = load_workbook(io.BytesIO(data))
    texts = 0
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (where, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    texts += 1
                    assert cell.data_type == "s" and not cell.value.startswith(DANGEROUS), (where, cell.value)
    return texts


def _export_paths(app) -> list[str]:
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments - {"fmt"}:
            continue
        if rule.rule.endswith((".csv", ".xlsx")) or "<fmt>" in rule.rule or "export" in rule.rule:
            if "template" in rule.rule:
                continue
            if "<fmt>" in rule.rule:
                paths += [rule.rule.replace("<fmt>", "csv"), rule.rule.replace("<fmt>", "xlsx")]
            else:
                paths.append(rule.rule)
    return sorted(set(paths))


@pytest.mark.req("CORE-4")
def test_every_export_neutralises_formulas_in_csv_and_xlsx(app, client, hostile):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    paths = _export_paths(app)
    assert ("/orders/export.csv" in paths and "/customers/export.xlsx" in paths) or len(paths) >= 2, paths
    checked = 0
    for path in paths:
        response = client.get(path)
        if response.status_code != 200:
            continue
        if response.mimetype == "text/csv":
            _assert_csv_safe(_csv(response), path)
            checked += 1
        elif "spreadsheetml" in response.mimetype:
            _assert_xlsx_safe(response.data, path)
            checked += 1
    assert checked >= 2, paths
    rows = _csv(client.get("/orders/export.csv"))
    assert any(cell == "'" + FORMULA for row in rows for cell in row)
    assert any(cell == "'-2+3" for row in rows for cell in row)


@pytest.mark.req("CORE-4")
def test_the_order_xlsx_keeps_every_hostile_cell_as_text(client, hostile):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    data = client.get("/orders/export.xlsx").data
    assert _assert_xlsx_safe(data, "orders.xlsx") > 10
    sheet = load_workbook(io.BytesIO(data)).active
    values = [c.value for row in sheet.iter_rows() for c in row]
    assert "'" + FORMULA in values and "'-2+3" in values


# --- e-mail ------------------------------------------------------------------------------


class _Sink:
    """An aiosmtpd handler keeping each envelope's recipients and the message as parsed."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd names its hooks so
        parsed = message_from_bytes(envelope.content, policy=default)
        self.received.append((list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 Message accepted"


def deliver_to_sink(session, state) -> list[tuple[list[str], EmailMessage]]:
    """Deliver the outbox to a real SMTP server on loopback; what it received."""
    sink = _Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    set_setting(session, "core.smtp.host", "127.0.0.1", registry=state.registry)
    set_setting(session, "core.smtp.port", port, registry=state.registry)
    set_setting(session, "core.smtp.sender", "Ordo <orders@ordo.example>", registry=state.registry)
    session.commit()
    controller.start()
    try:
        deliver_due(state.sessions, state.registry, worker="test")
    finally:
        controller.stop()
    return sink.received


@pytest.mark.req("CORE-7")
def test_an_email_about_a_hostile_customer_arrives_with_intact_headers(session, state, hostile):
    from core.notify import ToCustomer, notify

    customer = session.get(Customer, hostile["customers"][0]["id"])
    assert customer is not None
    contact = session.scalar(select(CustomerContact).where(CustomerContact.customer_id == customer.id))
    assert contact is not None
    contact.name = IMG  # the display name in To:
    order = session.get(Order, hostile["orders"][0]["id"])
    context = {"from_status": "submitted", "to_status": "confirmed"}
    notify(session, "order_status_changed", to=ToCustomer(customer.id), order=order, context=context)
    session.commit()
    received = deliver_to_sink(session, state)
    assert len(received) == 1
    recipients, message = received[0]
    assert recipients == ["buyer@example.com"]
    assert message["Bcc"] is None and message["Cc"] is None
    assert message["To"].addresses[0].addr_spec == "buyer@example.com"
    assert message["To"].addresses[0].display_name == IMG
    body = message.get_body(("plain",)).get_content()
    assert message.get_content_type() == "text/plain" or message.get_body(("html",)) is None
    assert "ssti" not in body.replace("{% if 1 %}ssti", "")  # a template tag in the data never runs


# --- SQL injection in list filters ---------------------------------------------------------


def fingerprint(session) -> dict[str, int]:
    """Row counts of every table: equal before and after means nothing was written."""
    session.rollback()
    present = set(inspect(session.connection()).get_table_names())
    counts = {}
    for table in Base.metadata.sorted_tables:
        if table.name in present:
            counts[table.name] = session.scalar(select(func.count()).select_from(table))
    session.rollback()
    return counts


def _payloads(index: int) -> list[str]:
    if FULL:
        return SQLI
    return [SQLI[index % len(SQLI)], SQLI[(index + 3) % len(SQLI)]]


def _api_lists(client) -> list[tuple[str, list[str]]]:
    spec = client.get("/api/v1/openapi.json").get_json()
    found = []
    for path, operations in spec["paths"].items():
        get = operations.get("get")
        if get is None or "{" in path:
            continue
        names = [p["name"] for p in get.get("parameters", []) if p.get("in") == "query"]
        found.append((path, names))
    return found


def _listed(response) -> int | None:
    body = response.get_json(silent=True)
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        return len(body["items"])
    if isinstance(body, list):
        return len(body)
    return None


@pytest.mark.req("CORE-4")
def test_sql_in_api_list_parameters_answers_normally_and_changes_nothing(api, client, session, hostile):
    lists = _api_lists(client)
    assert len(lists) > 30
    baselines = {}
    for path, _names in lists:  # a first plain read may set up records (billing accounts)
        plain = api.get(path)
        baselines[path] = _listed(plain) if plain.status_code == 200 else None
    before = fingerprint(session)
    tried = 0
    for path, names in lists:
        baseline = baselines[path]
        for index, name in enumerate(names):
            for payload in _payloads(index):
                response = api.get(path, query_string={name: payload})
                tried += 1
                assert response.status_code < 500, (path, name, payload, response.get_data(as_text=True)[:300])
                if response.status_code == 200 and baseline is not None and _listed(response) is not None:
                    assert _listed(response) <= max(baseline, 1) or name in ("size", "limit", "per_page"), (
                        path,
                        name,
                        payload,
                    )
    assert tried > 100
    assert fingerprint(session) == before
    assert api.get("/api/v1/orders", query_string={"q": "' OR 1=1--"}).get_json()["items"] == []


def _screen_params() -> list[str]:
    return ["q", "status", "customer", "sort", "order", "page", "date_from", "date_to", "owner", "branch", "kind"]


@pytest.mark.req("CORE-4")
def test_sql_in_screen_list_filters_answers_normally_and_changes_nothing(app, client, session, hostile):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    screens = sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods
        and not rule.arguments
        and not rule.rule.startswith(("/api/", "/static", "/logout"))
        and not rule.rule.endswith((".pdf", "/new"))
    )
    assert len(screens) > 50
    for path in screens:  # a first plain read may set up records (billing accounts)
        assert client.get(path).status_code < 500, path
    before = fingerprint(session)
    for index, path in enumerate(screens):
        for payload in _payloads(index):
            query = dict.fromkeys(_screen_params(), payload)
            response = client.get(path, query_string=query)
            assert response.status_code < 500, (path, payload)
            if response.mimetype == "text/html" and response.status_code == 200:
                assert "password_hash" not in response.get_data(as_text=True) or "UNION" in payload, path
    assert fingerprint(session) == before
    assert hostile["orders"][0]["number"] not in client.get("/orders?q=%25'%20--").get_data(as_text=True)
    for model in (Order, Customer, Product):  # the tables are all still there and readable
        assert session.scalar(select(func.count()).select_from(model)) == before[model.__tablename__]


@pytest.mark.req("IN-2")
def test_the_quote_an_export_puts_before_a_formula_is_dropped_when_the_file_comes_back():
    from plugins.intake.importing import read_rows

    data = "order,customer,product,quantity,note\nA,C001,P-100,1,'=HYPERLINK(1)\nB,C001,P-100,2,'it's fine\n"
    rows = read_rows("back.csv", data.encode())
    assert [r.values["note"] for r in rows] == ["=HYPERLINK(1)", "'it's fine"]


@pytest.mark.parametrize("name", [CRLF, BIDI, "x" * 100_000, "a\x00b"])
def test_the_customer_screen_refuses_what_the_api_refuses(client, session, seed, name):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    before = fingerprint(session)
    token = csrf_token(client, "/customers/new")
    response = client.post("/customers/new", data={"code": "SCR1", "name": name, "csrf_token": token})
    assert response.status_code in (400, 422), response.status_code
    assert fingerprint(session) == before
