"""The settings screen and API: every registered setting, checked, all or nothing, secrets never shown.

Uses core's SMTP settings (an int, a choice, a secret, text) and the example third-party
plugin's switch (a bool), so the screen is tested with settings from two sources.
"""

from __future__ import annotations

import html
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from core.contrib import Setting
from core.models import AuditLog, SettingValue
from core.settings import SECRET_MASK, InvalidValue, check_value, get_setting, parse_text
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, ApiCaller, csrf_token, login, make_user, token_for

PASSWORD_VALUE = "Smtp-Secret-42"
BOOL_KEY = "inspection.urgent_without_report"


@pytest.fixture
def ordo_plugins() -> list[str]:
    """The example plugin brings a bool setting of its own."""
    return ["inspection"]


def text(response: Any) -> str:
    """The page's HTML with entities decoded."""
    return html.unescape(response.get_data(as_text=True))


class FormReader(HTMLParser):
    """What a browser would submit from the settings form, as it stands on the page."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.inputs: dict[str, dict[str, str]] = {}
        self._in_form = False
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            name, text = self.fields[-1]
            self.fields[-1] = (name, text + data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._in_form = a.get("id") == "settings-form"
        if not self._in_form or ("name" not in a and tag != "option"):
            return
        if tag == "input":
            self.inputs[a["name"]] = a
            if a.get("type") == "checkbox" and "checked" not in a:
                return
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "textarea":
            self._textarea = a["name"]
            self.inputs[a["name"]] = a
            self.fields.append((a["name"], ""))
        elif tag == "select":
            self._select = a["name"]
            self.inputs[a["name"]] = a
        elif tag == "option" and self._select and "selected" in a:
            self.fields.append((self._select, a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        if tag == "textarea":
            self._textarea = None
        if tag == "form":
            self._in_form = False


def read_form(page: str) -> FormReader:
    reader = FormReader()
    reader.feed(page)
    return reader


def submit(client: Any, changes: dict[str, Any], drop: tuple[str, ...] = ()) -> Any:
    """Submit the settings form as shown, with ``changes`` typed in and ``drop`` checkboxes unticked."""
    form = read_form(text(client.get("/admin/settings")))
    data = [(k, v) for k, v in form.fields if k not in changes and k not in drop]
    data += [(k, v) for k, v in changes.items()]
    return client.post("/admin/settings", data=MultiDict(data), follow_redirects=True)


def stored(session: Session) -> dict[str, Any]:
    """Every stored setting value, as it is now."""
    session.commit()
    values = {r.key: r.value for r in session.scalars(select(SettingValue).execution_options(populate_existing=True))}
    session.commit()
    return values


def setting_audit(session: Session) -> list[tuple[str, dict[str, Any]]]:
    session.commit()
    rows = session.execute(select(AuditLog.action, AuditLog.changes).where(AuditLog.entity == "setting")).all()
    return [tuple(r) for r in rows]


@pytest.fixture
def as_admin(client, session, admin):
    session.commit()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    return client


# --- the screen ---------------------------------------------------------------------------


def test_the_screen_shows_each_setting_with_the_input_its_type_calls_for(as_admin):
    page = text(as_admin.get("/admin/settings"))
    inputs = read_form(page).inputs
    assert inputs["core.smtp.port"]["type"] == "number" and inputs["core.smtp.port"]["value"] == "25"
    assert inputs["core.smtp.password"]["type"] == "password" and inputs["core.smtp.password"]["value"] == ""
    assert inputs["core.smtp.host"]["type"] == "text"
    assert "type" not in inputs["core.smtp.security"], "a setting with choices is a select"
    assert inputs[BOOL_KEY]["type"] == "checkbox"
    for option in ("none", "starttls", "ssl"):
        assert f'<option value="{option}"' in page
    # Grouped by plugin: core's panel and the example plugin's, each with their settings.
    assert page.index('id="settings-core"') < page.index('data-setting="core.smtp.port"')
    assert page.index('id="settings-inspection"') < page.index(f'data-setting="{BOOL_KEY}"')
    assert "Urgent orders may skip inspection" in page and "Default: No" in page
    assert "Usually 25, 587 (STARTTLS) or 465 (SSL)." in page


def test_the_screen_is_in_english_and_in_chinese(app, session, admin):
    make_user(session, "li@example.com", ["admin"], language="zh_CN")
    chinese = app.test_client()
    login(chinese, "li@example.com", PASSWORD)
    page = text(chinese.get("/admin/settings"))
    assert "<title>设置" in page and "默认值" in page and "保存" in page
    english = app.test_client()
    login(english, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = text(english.get("/admin/settings"))
    assert "<title>Settings" in page and "Default" in page and "默认值" not in page


def test_int_bool_choice_and_secret_are_saved_from_the_screen(as_admin, session):
    page = text(
        submit(
            as_admin,
            {"core.smtp.port": "465", "core.smtp.security": "ssl", BOOL_KEY: "1", "core.smtp.password": PASSWORD_VALUE},
        )
    )
    assert "Settings saved: 4 changed." in page
    assert stored(session) == {
        "core.smtp.port": 465,
        "core.smtp.security": "ssl",
        BOOL_KEY: True,
        "core.smtp.password": PASSWORD_VALUE,
    }
    assert get_setting(session, "core.smtp.password") == PASSWORD_VALUE, "senders read the secret in clear"
    # The secret never comes back: not on the page, not in the audit log.
    assert PASSWORD_VALUE not in page
    assert PASSWORD_VALUE not in str(setting_audit(session))
    assert ("change", {"key": "core.smtp.port", "value": [25, 465]}) in setting_audit(session)
    # Saving again with the secret left empty keeps it; unticking the switch turns it off.
    page = text(submit(as_admin, {}, drop=(BOOL_KEY,)))
    assert "Settings saved: 1 changed." in page
    assert stored(session)["core.smtp.password"] == PASSWORD_VALUE and stored(session)[BOOL_KEY] is False
    page = text(submit(as_admin, {}, drop=()))
    assert "Nothing changed." in page


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("core.smtp.port", "twenty-five", "Enter a whole number."),
        ("core.smtp.port", "2.5", "Enter a whole number."),
        ("core.smtp.security", "tls13", "Choose one of the offered values."),
        ("core.smtp.host", "mail\x01host", "Remove control characters"),
    ],
)
def test_a_bad_value_is_shown_beside_its_field_and_nothing_is_stored(as_admin, session, key, value, message):
    before = setting_audit(session)
    response = submit(as_admin, {key: value, "core.smtp.timeout": "60", "core.smtp.password": PASSWORD_VALUE})
    page = text(response)
    assert response.status_code == 422
    field = page[page.index(f'data-setting="{key}"') :]
    field = field[: field.index("</li>")]
    assert "is-invalid" in field and message in field
    assert "Nothing was saved" in page
    assert stored(session) == {}, "the good fields of a bad form are not stored either"
    assert setting_audit(session) == before
    assert PASSWORD_VALUE not in page


def test_a_setting_is_reset_to_its_default_after_asking(as_admin, session):
    submit(as_admin, {"core.smtp.port": "587"})
    page = text(as_admin.get("/admin/settings"))
    assert 'data-setting="core.smtp.port" data-stored="yes"' in page
    assert 'data-confirm="Reset “SMTP port” to its default?"' in page
    token = csrf_token(as_admin, "/admin/settings")
    page = text(
        as_admin.post("/admin/settings/core.smtp.port/reset", data={"csrf_token": token}, follow_redirects=True)
    )
    assert "“SMTP port” is back to its default." in page
    assert stored(session) == {} and get_setting(session, "core.smtp.port") == 25
    assert setting_audit(session)[-1] == ("reset", {"key": "core.smtp.port", "value": [587, 25]})
    assert as_admin.post("/admin/settings/no.such/reset", data={"csrf_token": token}).status_code == 404


def test_the_screen_needs_settings_manage_and_csrf(app, as_admin, session):
    make_user(session, "sales@example.com", ["sales"])
    sales = app.test_client()
    login(sales, "sales@example.com", PASSWORD)
    assert sales.get("/admin/settings").status_code == 403
    token = csrf_token(sales, "/orders")
    form = {"_shown": "core.smtp.port", "core.smtp.port": "1", "csrf_token": token}
    assert sales.post("/admin/settings", data=form).status_code == 403
    assert sales.post("/admin/settings/core.smtp.port/reset", data={"csrf_token": token}).status_code == 403
    as_admin.post("/admin/settings", data={"_shown": "core.smtp.port", "core.smtp.port": "1"})
    assert stored(session) == {}


# --- the API ------------------------------------------------------------------------------


def test_the_api_lists_settings_with_secrets_masked(app, session, admin):
    api = ApiCaller(app.test_client(), token_for(session, admin))
    items = {s["key"]: s for s in api.get("/api/v1/settings").get_json()["items"]}
    assert items["core.smtp.port"] == {
        "key": "core.smtp.port",
        "plugin": "core",
        "type": "int",
        "value": 25,
        "default": 25,
        "is_default": True,
        "label": "SMTP port",
        "help": "Usually 25, 587 (STARTTLS) or 465 (SSL).",
        "choices": [],
        "secret": False,
    }
    assert items["core.smtp.security"]["choices"] == ["none", "starttls", "ssl"]
    assert items["core.smtp.password"]["value"] == "" and items[BOOL_KEY]["plugin"] == "inspection"

    changed = api.patch("/api/v1/settings", json={"core.smtp.password": PASSWORD_VALUE, "core.smtp.port": 587})
    assert changed.status_code == 200
    assert PASSWORD_VALUE not in changed.get_data(as_text=True)
    items = {s["key"]: s for s in changed.get_json()["items"]}
    assert items["core.smtp.password"]["value"] == SECRET_MASK and items["core.smtp.port"]["value"] == 587
    # Sending back what was read keeps the secret; null resets to the default.
    api.patch("/api/v1/settings", json={"core.smtp.password": SECRET_MASK, "core.smtp.port": None})
    assert stored(session) == {"core.smtp.password": PASSWORD_VALUE}


def test_the_api_changes_all_or_nothing(app, session, admin):
    api = ApiCaller(app.test_client(), token_for(session, admin))
    refused = api.patch(
        "/api/v1/settings",
        json={
            "core.smtp.port": 465,
            BOOL_KEY: "yes",
            "core.smtp.security": "tls",
            "core.smtp.timeout": True,
            "no.such.setting": 1,
        },
    )
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["details"] == {
        BOOL_KEY: ["Expected true or false."],
        "core.smtp.security": ["Choose one of the offered values."],
        "core.smtp.timeout": ["Enter a whole number."],
        "no.such.setting": ["Unknown setting."],
    }
    assert stored(session) == {} and setting_audit(session) == []
    assert api.patch("/api/v1/settings", json={BOOL_KEY: True, "core.smtp.timeout": 10}).status_code == 200
    assert stored(session) == {BOOL_KEY: True, "core.smtp.timeout": 10}
    assert api.patch("/api/v1/settings", data="[1]", headers={"Content-Type": "application/json"}).status_code == 400


def test_the_api_needs_settings_manage(app, session):
    user = make_user(session, "sales@example.com", ["sales"])
    api = ApiCaller(app.test_client(), token_for(session, user))
    for method in ("GET", "PATCH"):
        response = api.call(method, "/api/v1/settings", json={"core.smtp.port": 1})
        assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
    assert app.test_client().get("/api/v1/settings").status_code == 401
    assert stored(session) == {}


# --- the checks themselves ------------------------------------------------------------------


def test_values_are_checked_strictly_by_type_and_choices():
    ratio = Setting("core.ratio", float, 0.5, "Ratio")
    assert check_value(ratio, Decimal("0.25")) == 0.25 and check_value(ratio, 2) == 2.0
    assert parse_text(ratio, " 1.5 ") == 1.5
    for bad in ("NaN", "inf", "", "1,5"):
        with pytest.raises(InvalidValue):
            parse_text(ratio, bad)
    with pytest.raises(InvalidValue):
        check_value(ratio, True)
    level = Setting("core.level", str, "low", "Level", choices=("low", "high"))
    assert check_value(level, "high") == "high"
    with pytest.raises(InvalidValue):
        check_value(level, "medium")
    count = Setting("core.count", int, 1, "Count")
    assert parse_text(count, " +7 ") == 7
    for bad in ("1_000", "7.0", "", "٣"):
        with pytest.raises(InvalidValue):
            parse_text(count, bad)
    flag = Setting("core.flag", bool, False, "Flag")
    assert parse_text(flag, None) is False and parse_text(flag, "1") is True
    with pytest.raises(InvalidValue):
        check_value(flag, 1)
    long_text = Setting("core.text", str, "", "Text")
    with pytest.raises(InvalidValue):
        check_value(long_text, "x" * 2001)
    assert check_value(long_text, "two\nlines") == "two\nlines"
