"""The bell, the notification list (staff and portal), the outbox screen and their API (CORE-7).

Notifications and outbox messages are written as rows here (what ``notify`` and the
worker leave behind), except in the end-to-end test, where a real order transition
notifies its customer through the notification service.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import AuditLog, Customer, Notification, OutboxMessage, User
from core.testing import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    ApiCaller,
    csrf_token,
    login,
    make_order,
    make_user,
    token_for,
)

pytestmark = pytest.mark.req("CORE-7")


def text(response: Any) -> str:
    """The page's HTML with entities decoded."""
    return html.unescape(response.get_data(as_text=True))


def post(client: Any, path: str, data: dict[str, Any] | None = None, follow: bool = True) -> Any:
    """POST a form with the session's CSRF token."""
    token = csrf_token(client, "/notifications")
    return client.post(path, data={**(data or {}), "csrf_token": token}, follow_redirects=follow)


def fresh(session: Session, model: Any, ident: int) -> Any:
    """``model`` #``ident`` as stored now."""
    session.commit()
    row = session.scalars(select(model).where(model.id == ident).execution_options(populate_existing=True)).one()
    session.commit()
    return row


def note(
    session: Session,
    subject: str,
    *,
    user: User | None = None,
    customer: Customer | None = None,
    order_id: int | None = None,
) -> Notification:
    """An in-app notification as ``notify`` writes it (committed)."""
    row = Notification(
        user_id=user.id if user else None,
        customer_id=customer.id if customer else None,
        template="test_notice",
        order_id=order_id,
        language="en",
        subject=subject,
        body=f"Body of {subject}",
    )
    session.add(row)
    session.commit()
    return row


def bell(page: str) -> int:
    """The number on the bell in a page's navbar."""
    match = re.search(r'class="[^"]*ordo-bell"[^>]*data-unread="(\d+)"', page)
    assert match, "no bell on the page"
    return int(match.group(1))


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    """Two salespeople of head office and a portal user of customer C001."""
    return {
        "wang": make_user(session, "wang@example.com", ["sales"], branch=seed["hq"]),
        "zhao": make_user(session, "zhao@example.com", ["sales"], branch=seed["hq"]),
        "portal": make_user(session, "buyer@example.com", ["customer"], customer=seed["local"]),
    }


def logged_in(app: Any, email: str, password: str = PASSWORD) -> Any:
    client = app.test_client()
    login(client, email, password)
    return client


# --- the bell and the list ---------------------------------------------------------------


def test_the_bell_counts_unread_notifications_as_they_arrive_and_are_read(app, session, people):
    wang = people["wang"]
    client = logged_in(app, "wang@example.com")
    assert bell(text(client.get("/orders"))) == 0
    first = note(session, "Order SO-1 was confirmed", user=wang)
    second = note(session, "Order SO-2 is urgent", user=wang)
    note(session, "For someone else", user=people["zhao"])
    page = text(client.get("/orders"))
    assert bell(page) == 2 and "ordo-bell-count" in page

    listing = text(client.get("/notifications"))
    assert listing.index("Order SO-2 is urgent") < listing.index("Order SO-1 was confirmed"), "newest first"
    assert "For someone else" not in listing
    assert f'data-notification="{second.id}" data-read="no"' in listing

    page = text(post(client, f"/notifications/{first.id}/read"))
    assert bell(page) == 1
    assert f'data-notification="{first.id}" data-read="yes"' in page
    assert fresh(session, Notification, first.id).read_at is not None

    page = text(post(client, "/notifications/read-all"))
    assert bell(page) == 0 and "1 notification(s) marked read." in page
    assert fresh(session, Notification, second.id).read_at is not None
    # The other user's notification stays unread.
    assert session.scalar(select(func.count()).where(Notification.read_at.is_(None))) == 1


def test_the_unread_filter_shows_only_unread_ones(app, session, people):
    wang = people["wang"]
    read = note(session, "Already read", user=wang)
    read.read_at = dt.datetime.now(dt.UTC)
    session.commit()
    note(session, "Still new", user=wang)
    page = text(logged_in(app, "wang@example.com").get("/notifications?unread=1"))
    assert "Still new" in page and "Already read" not in page


def test_a_portal_user_sees_their_customers_notifications_and_no_one_elses(app, session, seed, people):
    portal = people["portal"]
    own = note(session, "Your order shipped", customer=seed["local"])
    personal = note(session, "Welcome to the portal", user=portal)
    other_customer = note(session, "Chengdu's order shipped", customer=seed["remote"])
    note(session, "Staff only", user=people["wang"])

    client = logged_in(app, "buyer@example.com")
    page = text(client.get("/notifications"))
    assert "Your order shipped" in page and "Welcome to the portal" in page
    assert "Chengdu's order shipped" not in page and "Staff only" not in page
    assert bell(page) == 2

    api = ApiCaller(app.test_client(), token_for(session, portal))
    listed = api.get("/api/v1/notifications").get_json()
    assert {n["id"] for n in listed["items"]} == {own.id, personal.id} and listed["unread"] == 2

    # Another customer's notification: 404 on screen and API, and it stays unread.
    assert post(client, f"/notifications/{other_customer.id}/read", follow=False).status_code == 404
    refused = api.post(f"/api/v1/notifications/{other_customer.id}/read")
    assert refused.status_code == 404 and refused.get_json()["error"]["code"] == "not_found"
    assert fresh(session, Notification, other_customer.id).read_at is None

    # Reading the customer's notification marks it read for the customer.
    assert api.post(f"/api/v1/notifications/{own.id}/read").get_json()["read"] is True
    assert bell(text(client.get("/notifications"))) == 1


def test_another_users_notification_answers_404_like_a_missing_one(app, session, people):
    theirs = note(session, "Zhao's notice", user=people["zhao"])
    client = logged_in(app, "wang@example.com")
    for ident in (theirs.id, 999_999):
        assert post(client, f"/notifications/{ident}/read", follow=False).status_code == 404
    api = ApiCaller(app.test_client(), token_for(session, people["wang"]))
    assert api.post(f"/api/v1/notifications/{theirs.id}/read").status_code == 404
    assert api.post("/api/v1/notifications/999999/read").status_code == 404
    assert fresh(session, Notification, theirs.id).read_at is None


def test_screen_posts_need_the_csrf_token(app, session, people):
    mine = note(session, "Needs CSRF", user=people["wang"])
    client = logged_in(app, "wang@example.com")
    for path in (f"/notifications/{mine.id}/read", "/notifications/read-all"):
        response = client.post(path, data={}, follow_redirects=True)
        assert "The form had expired, so nothing was saved." in text(response)
    assert fresh(session, Notification, mine.id).read_at is None


def test_the_list_links_the_order_only_for_a_reader_who_may_see_it(app, session, admin, seed, people):
    theirs = make_order(session, people["zhao"])  # a colleague's order: sales see their own only
    mine = make_order(session, people["wang"])
    note(session, "About a colleague's order", user=people["wang"], order_id=theirs.id)
    note(session, "About my order", user=people["wang"], order_id=mine.id)
    page = text(logged_in(app, "wang@example.com").get("/notifications"))
    assert f'/orders/{mine.id}"' in page and mine.number in page
    assert f'/orders/{theirs.id}"' not in page and theirs.number not in page
    listed = ApiCaller(app.test_client(), token_for(session, people["wang"])).get("/api/v1/notifications")
    orders = {n["subject"]: n["order"] for n in listed.get_json()["items"]}
    assert orders == {"About my order": {"id": mine.id, "number": mine.number}, "About a colleague's order": None}


def test_the_notification_api_pages_filters_and_marks_all_read(app, session, people):
    wang = people["wang"]
    made = [note(session, f"Notice {n}", user=wang) for n in range(5)]
    api = ApiCaller(app.test_client(), token_for(session, wang))
    first = api.get("/api/v1/notifications?limit=3").get_json()
    assert [n["subject"] for n in first["items"]] == ["Notice 4", "Notice 3", "Notice 2"]
    rest = api.get(f"/api/v1/notifications?limit=3&cursor={first['next_cursor']}").get_json()
    assert [n["subject"] for n in rest["items"]] == ["Notice 1", "Notice 0"] and rest["next_cursor"] is None
    api.post(f"/api/v1/notifications/{made[0].id}/read")
    unread = api.get("/api/v1/notifications?unread=true").get_json()
    assert len(unread["items"]) == 4 and unread["unread"] == 4
    done = api.post("/api/v1/notifications/read-all").get_json()
    assert done == {"marked": 4, "unread": 0}
    bad = api.get("/api/v1/notifications?cursor=nonsense")
    assert bad.status_code == 422 and "cursor" in bad.get_json()["error"]["details"]
    assert app.test_client().get("/api/v1/notifications").status_code == 401


def test_an_order_transition_reaches_the_portal_list_in_the_customers_language(app, session, admin, seed, people):
    """End to end: the customer's language (set through the API) decides the portal notice's language."""
    admin_api = ApiCaller(app.test_client(), token_for(session, admin))
    changed = admin_api.patch(f"/api/v1/customers/{seed['local'].id}", json={"language": "en"})
    assert changed.status_code == 200 and changed.get_json()["language"] == "en"
    order = make_order(session, admin)
    response = admin_api.post(f"/api/v1/orders/{order.id}/actions/submit", json={})
    assert response.status_code == 200, response.get_json()
    client = logged_in(app, "buyer@example.com")
    page = text(client.get("/notifications"))
    assert bell(page) >= 1
    assert f"Order {order.number}" in page and f"订单 {order.number}" not in page


# --- the outbox --------------------------------------------------------------------------


def message(session: Session, status: str, **values: Any) -> OutboxMessage:
    """An outbox message in ``status`` as the worker leaves it (committed)."""
    row = OutboxMessage(
        template="order_status_changed",
        channel="email",
        address=values.pop("address", "zhang@example.com"),
        recipient_name="张伟",
        language="zh_CN",
        subject=values.pop("subject", "订单 SO-1 状态更新：已确认"),
        body=values.pop("body", "尊敬的张伟：您的订单已确认。"),
        status=status,
        **values,
    )
    session.add(row)
    session.commit()
    return row


@pytest.fixture
def as_admin(client, session, admin):
    session.commit()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    return client


def audit_entries(session: Session, message_id: int) -> list[tuple[str, dict[str, Any], int | None]]:
    session.commit()
    rows = session.execute(
        select(AuditLog.action, AuditLog.changes, AuditLog.actor_id)
        .where(AuditLog.entity == "outbox_message", AuditLog.entity_id == message_id)
        .order_by(AuditLog.id)
    ).all()
    return [tuple(r) for r in rows]


def test_the_outbox_lists_a_failed_message_with_its_error_and_counts_per_status(as_admin, session):
    failed = message(session, "failed", attempts=8, last_error="550 5.1.1 mailbox unavailable")
    message(session, "sent", subject="Already delivered")
    message(session, "uncertain", subject="Maybe delivered")
    page = text(as_admin.get("/admin/outbox"))
    assert 'data-status-count="failed" data-count="1"' in page
    assert 'data-status-count="sent" data-count="1"' in page
    assert 'data-status-count="uncertain" data-count="1"' in page
    row = page[page.index(f'data-message="{failed.id}"') :]
    row = row[: row.index("</tr>")]
    assert "550 5.1.1 mailbox unavailable" in row and "text-bg-danger" in row and "zhang@example.com" in row
    only_failed = text(as_admin.get("/admin/outbox?status=failed"))
    assert f'data-message="{failed.id}"' in only_failed and "Already delivered" not in only_failed
    detail = text(as_admin.get(f"/admin/outbox/{failed.id}"))
    assert "尊敬的张伟：您的订单已确认。" in detail and "550 5.1.1 mailbox unavailable" in detail
    assert as_admin.get("/admin/outbox/999999").status_code == 404


def test_retry_with_a_corrected_address_queues_it_again_and_is_audited(as_admin, session, admin):
    failed = message(session, "failed", attempts=8, last_error="550 no such user", address="zhang@exmaple.com")
    bad = text(post(as_admin, f"/admin/outbox/{failed.id}/retry", {"address": "not an address"}))
    assert fresh(session, OutboxMessage, failed.id).status == "failed", "a bad address changes nothing"
    assert "alert-danger" in bad
    post(as_admin, f"/admin/outbox/{failed.id}/retry", {"address": "zhang@example.com"})
    stored = fresh(session, OutboxMessage, failed.id)
    assert (stored.status, stored.address) == ("queued", "zhang@example.com")
    assert audit_entries(session, failed.id) == [
        (
            "retry",
            {"status": ["failed", "queued"], "address": ["zhang@exmaple.com", "zhang@example.com"]},
            admin.id,
        )
    ]


def test_cancel_and_mark_sent_ask_first_work_and_are_audited(as_admin, session, admin):
    queued = message(session, "queued")
    uncertain = message(session, "uncertain")
    page = text(as_admin.get(f"/admin/outbox/{uncertain.id}"))
    assert 'data-confirm="Mark this message sent?' in page and 'data-confirm="Cancel this message?' in page
    post(as_admin, f"/admin/outbox/{queued.id}/cancel")
    post(as_admin, f"/admin/outbox/{uncertain.id}/mark-sent")
    assert fresh(session, OutboxMessage, queued.id).status == "cancelled"
    assert fresh(session, OutboxMessage, uncertain.id).status == "sent"
    assert [a for a, _c, _who in audit_entries(session, queued.id)] == ["cancel"]
    assert audit_entries(session, uncertain.id) == [("mark_sent", {"status": ["uncertain", "sent"]}, admin.id)]
    # A cancelled message cannot be marked sent: refused with a message, nothing changes.
    page = text(post(as_admin, f"/admin/outbox/{queued.id}/mark-sent"))
    assert "alert-danger" in page
    assert fresh(session, OutboxMessage, queued.id).status == "cancelled"


def test_the_outbox_needs_outbox_manage_on_screens_and_api(app, session, people):
    failed = message(session, "failed")
    client = logged_in(app, "wang@example.com")
    assert client.get("/admin/outbox").status_code == 403
    assert client.get(f"/admin/outbox/{failed.id}").status_code == 403
    for action in ("retry", "cancel", "mark-sent"):
        assert post(client, f"/admin/outbox/{failed.id}/{action}", follow=False).status_code == 403
    api = ApiCaller(app.test_client(), token_for(session, people["wang"]))
    for method, path in (
        ("GET", "/api/v1/outbox"),
        ("GET", f"/api/v1/outbox/{failed.id}"),
        ("POST", f"/api/v1/outbox/{failed.id}/retry"),
        ("POST", f"/api/v1/outbox/{failed.id}/cancel"),
    ):
        response = api.call(method, path)
        assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden", path
    assert "Outbox" not in text(client.get("/orders"))
    assert fresh(session, OutboxMessage, failed.id).status == "failed"
    assert audit_entries(session, failed.id) == []


def test_outbox_screen_posts_need_the_csrf_token(as_admin, session):
    failed = message(session, "failed")
    as_admin.post(f"/admin/outbox/{failed.id}/cancel", data={})
    assert fresh(session, OutboxMessage, failed.id).status == "failed"


def test_the_outbox_api_lists_reads_and_remedies(app, session, admin):
    failed = message(session, "failed", last_error="connection refused")
    uncertain = message(session, "uncertain")
    message(session, "sent")
    api = ApiCaller(app.test_client(), token_for(session, admin))
    listed = api.get("/api/v1/outbox?status=failed").get_json()
    assert [m["id"] for m in listed["items"]] == [failed.id] and listed["items"][0][
        "last_error"
    ] == "connection refused"
    assert len(api.get("/api/v1/outbox").get_json()["items"]) == 3
    assert api.get("/api/v1/outbox?status=lost").status_code == 422
    assert api.get(f"/api/v1/outbox/{uncertain.id}").get_json()["body"] == "尊敬的张伟：您的订单已确认。"
    assert api.get("/api/v1/outbox/999999").status_code == 404

    refused = api.post(f"/api/v1/outbox/{failed.id}/retry", json={"address": "nobody"})
    assert refused.status_code == 422 and "address" in refused.get_json()["error"]["details"]
    assert api.post(f"/api/v1/outbox/{failed.id}/retry", json={"adress": "x@example.com"}).status_code == 422
    assert fresh(session, OutboxMessage, failed.id).status == "failed"
    retried = api.post(f"/api/v1/outbox/{failed.id}/retry", json={"address": "li@example.com"}).get_json()
    assert (retried["status"], retried["address"]) == ("queued", "li@example.com")
    assert api.post(f"/api/v1/outbox/{uncertain.id}/mark-sent").get_json()["status"] == "sent"
    conflict = api.post(f"/api/v1/outbox/{uncertain.id}/cancel")
    assert conflict.status_code == 409 and conflict.get_json()["error"]["code"] == "wrong_state"
    assert api.post(f"/api/v1/outbox/{failed.id}/cancel").get_json()["status"] == "cancelled"
    assert [a for a, _c, _w in audit_entries(session, failed.id)] == ["retry", "cancel"]


def test_the_admin_menu_offers_outbox_and_settings(as_admin):
    page = text(as_admin.get("/orders"))
    assert 'href="/admin/outbox"' in page and 'href="/admin/settings"' in page


# --- the customer's language ---------------------------------------------------------------


def test_the_customer_language_is_chosen_on_the_form_and_checked(as_admin, session):
    form = {
        "code": "C009",
        "name": "Harbour Trading Ltd.",
        "language": "en",
        "contacts-0-name": "Ann Lee",
        "addresses-0-province": "广东省",
        "addresses-0-city": "深圳市",
        "addresses-0-address": "南山区 1 号",
    }
    page = text(post(as_admin, "/customers/new", form))
    assert 'data-language="en">English' in page
    customer = session.scalars(select(Customer).where(Customer.code == "C009")).one()
    assert customer.language == "en"
    edit = text(as_admin.get(f"/customers/{customer.id}/edit"))
    assert '<option selected value="en">English</option>' in edit or '<option value="en" selected>' in edit
    refused = post(as_admin, f"/customers/{customer.id}/edit", {**form, "language": "fr"})
    assert refused.status_code == 422 and "Choose one of the offered values." in text(refused)
    assert fresh(session, Customer, customer.id).language == "en"
    # Without a choice the customer is written to in Chinese.
    post(as_admin, "/customers/new", {**form, "code": "C010", "language": ""})
    assert session.scalars(select(Customer.language).where(Customer.code == "C010")).one() == "zh_CN"


def test_the_customer_api_reads_and_checks_the_language(app, session, admin, seed):
    api = ApiCaller(app.test_client(), token_for(session, admin))
    assert api.get(f"/api/v1/customers/{seed['local'].id}").get_json()["language"] == "zh_CN"
    created = api.post("/api/v1/customers", json={"code": "C011", "name": "Lee & Co.", "language": "en"})
    assert created.status_code == 201 and created.get_json()["language"] == "en"
    refused = api.patch(f"/api/v1/customers/{seed['local'].id}", json={"language": "zh_TW"})
    assert refused.status_code == 422 and "language" in refused.get_json()["error"]["details"]
    assert fresh(session, Customer, seed["local"].id).language == "zh_CN"


@pytest.mark.parametrize("value", ["²", "٣", "9" * 19, "-1", "0"])
def test_a_cursor_that_is_no_id_is_refused_clearly(app, session, admin, people, value):
    import base64

    for path, kind, who in [("/api/v1/notifications", "n", people["wang"]), ("/api/v1/outbox", "x", admin)]:
        cursor = base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")
        response = ApiCaller(app.test_client(), token_for(session, who)).get(f"{path}?cursor={cursor}")
        assert response.status_code == 422, (path, response.status_code)
        assert "cursor" in response.get_json()["error"]["details"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("core.smtp.port", 10**30),
        ("core.smtp.port", 2**63),
        ("core.smtp.port", 0),
        ("core.smtp.port", 65536),
        ("core.smtp.timeout", 0),
        ("core.smtp.timeout", 301),
        ("core.notify.max_attempts", 0),
        ("core.notify.max_attempts", 51),
    ],
)
def test_delivery_settings_out_of_bounds_are_refused(app, session, admin, key, value):
    api = ApiCaller(app.test_client(), token_for(session, admin))
    response = api.patch("/api/v1/settings", json={key: value})
    assert response.status_code == 422 and key in response.get_json()["error"]["details"]
    assert api.patch("/api/v1/settings", json={key: 1 if key != "core.smtp.port" else 587}).status_code == 200
