"""Administration screens: enabling plugins and switching workflow steps, for administrators only."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from sqlalchemy import select

from core.models import AuditLog, PluginState, StepSetting
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, csrf_token, login, make_order, make_user


def text(response: Any) -> str:
    """The page's HTML with entities decoded."""
    return html.unescape(response.get_data(as_text=True))


def post(client: Any, path: str, data: dict[str, Any] | None = None, follow: bool = True) -> Any:
    """POST a form with the session's CSRF token."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, "/login")}, follow_redirects=follow)


def read(session: Any, stmt: Any) -> list[Any]:
    """Rows of ``stmt`` as stored now (committed, so the app can write next)."""
    session.commit()
    rows = list(session.scalars(stmt.execution_options(populate_existing=True)))
    session.commit()
    return rows


def plugin_card(page: str, name: str) -> str:
    start = page.index(f'data-plugin="{name}"')
    return page[start : page.find("</section>", start)]


@pytest.fixture
def as_admin(client, admin, session):
    session.commit()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    return client


def test_the_plugins_screen_lists_installed_plugins_with_their_manifest(as_admin):
    page = text(as_admin.get("/admin/plugins"))
    for name in ("intake", "review", "logistics", "billing", "kpi"):
        card = plugin_card(page, name)
        assert f'data-plugin="{name}" data-enabled="no"' in page
        assert f"/admin/plugins/{name}/enable" in card
        assert "0.1.0" in card
    assert "Intake: receive orders from every channel" in plugin_card(page, "intake")


def test_a_plugin_is_enabled_and_disabled_from_the_screen(as_admin, session):
    page = text(post(as_admin, "/admin/plugins/intake/enable"))
    assert "Enabled: intake. This takes effect within a few seconds." in page
    assert [s.enabled for s in read(session, select(PluginState).where(PluginState.name == "intake"))] == [True]
    card = plugin_card(page, "intake")
    assert "Enabled" in card and "picks the change up within a few seconds" in card
    # Disabling asks first, offering to move waiting orders on.
    dialog = page[page.index('id="disable-intake"') :]
    assert 'name="move_orders"' in dialog and "Move waiting orders on" in dialog

    page = text(post(as_admin, "/admin/plugins/intake/disable", {"move_orders": "1"}))
    assert "Disabled: intake. Its data is kept." in page
    assert [s.enabled for s in read(session, select(PluginState).where(PluginState.name == "intake"))] == [False]
    audited = read(session, select(AuditLog.action).where(AuditLog.entity == "plugin"))
    assert audited == ["enable", "disable"]


def test_a_refused_plugin_change_shows_why(as_admin):
    page = text(post(as_admin, "/admin/plugins/nonexistent/enable"))
    assert "Plugin nonexistent is not installed." in page
    page = text(post(as_admin, "/admin/plugins/billing/disable"))
    assert "Plugin billing was not enabled." in page


@pytest.mark.req("CORE-2")
def test_the_steps_screen_shows_the_pipeline_and_switches_optional_steps(as_admin, session, admin, seed):
    page = text(as_admin.get("/admin/steps"))
    keys = re.findall(r'<tr data-step="([^"]+)"', page)
    assert keys == ["draft", "submitted", "confirmed", "completed", "cancelled", "rejected"]
    draft = page[page.index('data-step="draft"') :].split("</tr>")[0]
    assert "Always on" in draft and "/admin/steps/draft" not in draft
    submitted = page[page.index('data-step="submitted"') :].split("</tr>")[0]
    assert 'data-confirm="Switch off step “Submitted”? Orders will skip it."' in submitted

    page = text(post(as_admin, "/admin/steps/submitted", {"enabled": "0"}))
    assert "Step “Submitted” is off; orders now skip it." in page
    assert [s.enabled for s in read(session, select(StepSetting))] == [False]
    assert 'data-step="submitted" data-enabled="no"' in page

    page = text(post(as_admin, "/admin/steps/submitted", {"enabled": "1"}))
    assert [s.enabled for s in read(session, select(StepSetting))] == [True]

    refused = text(post(as_admin, "/admin/steps/confirmed", {"enabled": "0"}))
    assert "Step “Confirmed” cannot be switched off." in refused
    assert as_admin.post("/admin/steps/nope", data={"csrf_token": csrf_token(as_admin, "/login")}).status_code == 404


def test_a_step_with_waiting_orders_cannot_be_switched_off(as_admin, session, admin, seed):
    order = make_order(session, admin)
    post(as_admin, f"/orders/{order.id}/act", {"action": "submit"})
    page = text(as_admin.get("/admin/steps"))
    assert re.search(r'data-step="submitted".*?<td class="text-end">1</td>', page, re.S)
    refused = text(post(as_admin, "/admin/steps/submitted", {"enabled": "0"}))
    assert f"Orders wait in step “Submitted”: {order.number}. Move them on first." in refused
    assert read(session, select(StepSetting)) == []


@pytest.mark.req("CORE-3")
def test_a_salesperson_may_not_open_the_admin_screens(client, session):
    make_user(session, "sales@example.com", ["sales"])
    login(client, "sales@example.com", PASSWORD)
    for path in ("/admin/plugins", "/admin/steps"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "Not allowed" in text(response) and "do not have the permission" in text(response)
        assert "another website" not in text(response)
    for path in ("/admin/plugins/intake/enable", "/admin/plugins/intake/disable", "/admin/steps/submitted"):
        assert post(client, path, {"enabled": "0"}, follow=False).status_code == 403, path
    assert read(session, select(PluginState).where(PluginState.enabled.is_(True))) == []
    assert read(session, select(StepSetting)) == []
    menu = text(client.get("/orders"))
    assert "/admin/plugins" not in menu and "/admin/steps" not in menu
