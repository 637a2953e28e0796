"""In a real browser: an administrator sets up a branch-scoped role and a user holding it,
and that user sees only their branch's orders (CORE-3, CORE-4)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from core.models import Order, Role, User
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, make_order

pytestmark = pytest.mark.browser


def log_in(page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/(orders|admin/\w+|account/tokens)$"))


@pytest.mark.req("CORE-3")
@pytest.mark.req("CORE-4")
def test_an_administrator_sets_up_a_branch_role_and_its_holder_sees_only_that_branch(
    live_server, browser_page, session, admin, seed
):
    seed["local"].branch_id = seed["hq"].id
    seed["remote"].branch_id = seed["cd"].id
    session.commit()
    hq_order = make_order(session, admin, customer="C001")
    cd_order = make_order(session, admin, customer="C002")
    assert (hq_order.branch_id, cd_order.branch_id) == (seed["hq"].id, seed["cd"].id)
    hq_number, cd_number = hq_order.number, cd_order.number
    session.rollback()

    page = browser_page
    log_in(page, live_server, ADMIN_EMAIL, ADMIN_PASSWORD)

    # The role: read orders, branch scope.
    page.get_by_role("link", name="Roles", exact=True).first.click()
    page.wait_for_url(re.compile(r"/admin/roles$"))
    page.get_by_role("link", name="New role").click()
    page.get_by_label("Code").fill("cd_reader")
    page.get_by_label("Name").fill("Chengdu order reader")
    page.get_by_label("Own branch").check()
    core_permissions = page.locator('fieldset[data-plugin="core"]')
    assert core_permissions.locator("legend").inner_text() == "Core"
    core_permissions.get_by_label("Read orders").check()
    page.get_by_role("button", name="Create role").click()
    page.wait_for_url(re.compile(r"/admin/roles$"))
    assert "Role cd_reader was created." in page.locator(".alert-success").inner_text()
    assert "Own branch" in page.locator('tr[data-role="cd_reader"]').inner_text()

    # The user: branch CD, holding the role.
    page.get_by_role("link", name="Users", exact=True).first.click()
    page.get_by_role("link", name="New user").click()
    page.get_by_label("E-mail").fill("chengdu@example.com")
    page.get_by_label("Name", exact=True).fill("成都 读者")
    page.get_by_label("Language", exact=True).select_option("en")
    page.get_by_label("Branch", exact=True).select_option("CD")
    page.get_by_label("Password").fill("cd-reader-1")
    page.locator("#role-cd_reader").check()
    page.get_by_role("button", name="Create user").click()
    page.wait_for_url(re.compile(r"/admin/users/\d+/edit$"))
    assert "User chengdu@example.com was created." in page.locator(".alert-success").inner_text()
    page.get_by_role("button", name="Log out").click()

    # The new user sees Chengdu's order and not head office's.
    log_in(page, live_server, "chengdu@example.com", "cd-reader-1")
    page.goto(f"{live_server}/orders")
    assert page.locator(f'tr[data-order="{cd_number}"]').count() == 1
    assert page.locator(f'tr[data-order="{hq_number}"]').count() == 0
    assert page.locator("tr[data-order]").count() == 1
    # Out of scope answers "not found", as if the order did not exist.
    hq_id = session.scalar(select(Order.id).where(Order.number == hq_number))
    response = page.goto(f"{live_server}/orders/{hq_id}")
    assert response is not None and response.status == 404

    session.rollback()
    user = session.scalar(select(User).where(User.email == "chengdu@example.com"))
    role = session.scalar(select(Role).where(Role.code == "cd_reader"))
    assert user is not None and role is not None
    assert [r.code for r in user.roles] == ["cd_reader"] and user.branch_id == seed["cd"].id
    assert role.data_scope == "branch" and role.permission_codes == {"orders.read"}
    session.rollback()
