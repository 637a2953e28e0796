"""The company record: letterhead, working week and logo, on the screen and in the API.

Changes are validated completely (nothing saved on a bad field) and audited with before
and after (CORE-6); the weekend days drive the working calendar; the logo is judged by
its content, not its name, and refused over 1 MB with the limit named.
"""

from __future__ import annotations

import datetime as dt
import html
import io
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.calendar import add_working_days
from core.company import company_logo, current_company
from core.files import file_store
from core.models import AuditLog, Company, User
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

D = dt.date


def text(response: Any) -> str:
    """The page's HTML with entities decoded."""
    return html.unescape(response.get_data(as_text=True))


def post(client: Any, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """POST a form with the session's CSRF token."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, "/orders")}, **kwargs)


def stored(session: Session) -> Company:
    """The company as committed now."""
    session.commit()
    return session.scalars(select(Company).execution_options(populate_existing=True)).one()


def audit_changes(session: Session, action: str) -> list[dict[str, Any]]:
    session.commit()
    return list(
        session.scalars(select(AuditLog.changes).where(AuditLog.entity == "company", AuditLog.action == action))
    )


def image(fmt: str, size: tuple[int, int] = (120, 40), noise: bool = False) -> bytes:
    """A real image file in ``fmt`` (PNG or JPEG); ``noise`` makes it hard to compress."""
    picture = Image.new("RGB", size, (200, 30, 30))
    if noise:
        picture = Image.frombytes("RGB", size, __import__("os").urandom(size[0] * size[1] * 3))
    out = io.BytesIO()
    picture.save(out, fmt)
    return out.getvalue()


FORM = {
    "name": "重庆财贸双全贸易有限公司",
    "address": "重庆市渝北区金开大道 99 号",
    "phone": "023-6700-0000",
    "email": "orders@example.com",
    "tax_id": "91500000MA5U000001",
    "home_province": "重庆市",
    "order_prefix": "CQ",
    "weekend_days": ["sat", "sun"],
}


@pytest.fixture
def as_admin(client: Any, admin: User, session: Session) -> Any:
    session.commit()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    return client


@pytest.mark.req("CORE-6")
def test_the_letterhead_is_edited_on_the_screen_and_audited(as_admin: Any, session: Session):
    page = text(as_admin.get("/admin/company"))
    assert 'value="Test Co."' in page and 'name="weekend_days" value="sat" id="weekend-sat" checked' in page
    done = post(as_admin, "/admin/company", FORM, follow_redirects=True)
    assert "The company record was saved." in text(done)
    company = stored(session)
    assert (company.name, company.address, company.phone, company.email, company.tax_id) == (
        FORM["name"],
        FORM["address"],
        FORM["phone"],
        FORM["email"],
        FORM["tax_id"],
    )
    assert (company.home_province, company.order_prefix, company.weekend_days) == ("重庆市", "CQ", "sat,sun")
    (changes,) = audit_changes(session, "update")
    assert changes["name"] == ["Test Co.", FORM["name"]]
    assert changes["order_prefix"] == ["SO", "CQ"]
    assert "weekend_days" not in changes  # unchanged values are not recorded
    # Saving the same values again records nothing.
    post(as_admin, "/admin/company", FORM)
    assert len(audit_changes(session, "update")) == 1


def test_a_bad_field_is_shown_beside_it_and_nothing_is_saved(as_admin: Any, session: Session):
    before = stored(session).name
    page = post(as_admin, "/admin/company", {**FORM, "email": "not-an-address", "name": " "})
    assert page.status_code == 422
    shown = text(page)
    assert "Not a valid email address." in shown and "The company needs a name." in shown
    assert "Nothing was saved." in shown
    everyday = post(
        as_admin, "/admin/company", {**FORM, "weekend_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}
    )
    assert everyday.status_code == 422
    assert "At least one day of the week must be a working day." in text(everyday)
    assert stored(session).name == before
    assert audit_changes(session, "update") == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "Test\x00Co."), ("phone", "023\x1b[31m"), ("address", "重庆市\x00渝北区"), ("tax_id", "91\x8550")],
)
def test_control_characters_in_the_letterhead_are_refused_on_screen_and_api(
    as_admin: Any, session: Session, admin: User, field: str, value: str
):
    message = "Remove control characters (invisible codes) from this text."
    page = post(as_admin, "/admin/company", {**FORM, field: value})
    assert page.status_code == 422 and message in text(page)
    api = ApiCaller(as_admin, token_for(session, admin))
    answer = api.patch("/api/v1/company", json={field: value})
    assert answer.status_code == 422 and field in answer.get_json()["error"]["details"]
    assert getattr(stored(session), field) != value
    assert audit_changes(session, "update") == []


def test_an_address_keeps_its_line_breaks(as_admin: Any, session: Session):
    post(as_admin, "/admin/company", {**FORM, "address": "重庆市渝北区\r\n金开大道 99 号"})
    assert stored(session).address.splitlines() == ["重庆市渝北区", "金开大道 99 号"]


def test_the_weekend_days_change_what_the_calendar_counts(as_admin: Any, session: Session):
    friday = D(2026, 9, 25)
    assert add_working_days(session, friday, 1) == D(2026, 9, 28)
    post(as_admin, "/admin/company", {**FORM, "weekend_days": ["sun"]})
    session.commit()
    assert stored(session).weekend_days == "sun"
    assert add_working_days(session, friday, 1) == D(2026, 9, 26)
    post(as_admin, "/admin/company", {**FORM, "weekend_days": ["fri", "sat"]})
    session.commit()
    assert add_working_days(session, D(2026, 9, 24), 1) == D(2026, 9, 27)  # Thursday → Sunday
    page = text(as_admin.get("/admin/company"))
    assert 'value="fri" id="weekend-fri" checked' in page and 'value="sun" id="weekend-sun">' in page


def test_the_order_prefix_is_fixed_once_orders_exist(
    app: Any, as_admin: Any, session: Session, admin: User, seed: dict[str, Any]
):
    make_order(session, admin)
    page = text(as_admin.get("/admin/company"))
    assert 'name="order_prefix"' in page and "readonly" in page
    assert "Orders are already numbered with it" in page
    # The screen keeps the prefix; the API refuses to change it.
    post(as_admin, "/admin/company", {**FORM, "order_prefix": "XX"})
    assert stored(session).order_prefix == "SO"
    api = ApiCaller(app.test_client(), token_for(session, admin))
    refused = api.patch("/api/v1/company", json={"order_prefix": "XX"})
    assert refused.status_code == 422
    assert refused.get_json()["error"]["details"]["order_prefix"] == [
        "Orders are already numbered with “SO”; the prefix can no longer change."
    ]


# --- the logo ---------------------------------------------------------------------------


def upload(client: Any, data: bytes, name: str) -> Any:
    return post(client, "/admin/company/logo", {"logo": (io.BytesIO(data), name)}, content_type="multipart/form-data")


@pytest.mark.req("CORE-6")
def test_a_png_logo_is_stored_previewed_and_printed(as_admin: Any, session: Session):
    png = image("PNG")
    done = upload(as_admin, png, "logo.png")
    assert done.status_code == 302
    company = stored(session)
    assert company.logo_type == "image/png" and file_store(session).get(company.logo_sha256) == png
    assert company_logo(session) == (png, "image/png")
    preview = as_admin.get("/admin/company/logo")
    assert preview.status_code == 200 and preview.mimetype == "image/png" and preview.get_data() == png
    assert as_admin.get("/admin/company/logo", headers={"If-None-Match": f'"{company.logo_sha256}"'}).status_code == 304
    assert '<img src="/admin/company/logo?v=' in text(as_admin.get("/admin/company"))
    (changes,) = audit_changes(session, "set_logo")
    assert changes["logo_sha256"] == ["", company.logo_sha256] and changes["bytes"] == len(png)
    # A JPEG replaces it; removing it leaves documents without a logo.
    jpeg = image("JPEG")
    session.commit()
    assert upload(as_admin, jpeg, "LOGO.JPG").status_code == 302
    stored(session)  # the test's session keeps loaded objects; read them afresh
    assert company_logo(session) == (jpeg, "image/jpeg")
    session.commit()
    post(as_admin, "/admin/company/logo/remove")
    assert stored(session).logo_sha256 == "" and company_logo(session) is None
    assert as_admin.get("/admin/company/logo").status_code == 404
    assert len(audit_changes(session, "remove_logo")) == 1


def test_a_text_file_named_png_is_refused_by_its_content(as_admin: Any, session: Session):
    page = upload(as_admin, b"just some text, not an image\n" * 10, "logo.png")
    assert page.status_code == 415
    assert "The logo must be a PNG or JPEG image; this file is not one (judged by its content)." in text(page)
    # A GIF is an image, but not one documents take; a PNG header on garbage is no image.
    assert upload(as_admin, image("GIF"), "logo.png").status_code == 415
    broken = image("PNG")[:40] + b"\0" * 200
    page = upload(as_admin, broken, "logo.png")
    assert page.status_code == 422 and "The file looks like a PNG image but cannot be read." in text(page)
    assert stored(session).logo_sha256 == "" and audit_changes(session, "set_logo") == []


def test_an_oversized_logo_is_refused_with_the_limit_named(as_admin: Any, session: Session):
    big = image("PNG", size=(700, 700), noise=True)
    assert len(big) > 1024 * 1024
    page = upload(as_admin, big, "big.png")
    assert page.status_code == 413
    assert "larger than the limit of 1024 KB (1 MB)" in text(page)
    assert stored(session).logo_sha256 == ""
    huge = image("PNG", size=(5000, 10))
    page = upload(as_admin, huge, "wide.png")
    assert page.status_code == 422 and "at most 4000 pixels either way" in text(page)


# --- permissions and the API --------------------------------------------------------------


def test_only_settings_managers_may_open_or_change_the_company(client: Any, session: Session):
    make_user(session, "gm@example.com", ["general_manager"])
    login(client, "gm@example.com", PASSWORD)
    assert client.get("/admin/company").status_code == 403
    assert post(client, "/admin/company", FORM).status_code == 403
    assert upload(client, image("PNG"), "logo.png").status_code == 403
    assert post(client, "/admin/company/logo/remove").status_code == 403
    assert stored(session).name == "Test Co."


def test_the_api_reads_for_staff_and_changes_for_settings_managers(
    client: Any, session: Session, admin: User, seed: dict[str, Any]
):
    admin_api = ApiCaller(client, token_for(session, admin))
    got = admin_api.get("/api/v1/company")
    assert got.status_code == 200
    body = got.get_json()
    assert body["weekend_days"] == ["sat", "sun"] and body["order_prefix_locked"] is False and not body["has_logo"]
    changed = admin_api.patch("/api/v1/company", json={"address": "重庆市江北区 1 号\n3 楼", "weekend_days": ["sun"]})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["weekend_days"] == ["sun"]
    assert stored(session).address == "重庆市江北区 1 号\n3 楼"
    assert add_working_days(session, D(2026, 9, 25), 1) == D(2026, 9, 26)
    unknown = admin_api.patch("/api/v1/company", json={"currency": "USD"})
    assert unknown.status_code == 422 and "currency" in unknown.get_json()["error"]["details"]
    bad_day = admin_api.patch("/api/v1/company", json={"weekend_days": ["sunday"]})
    assert bad_day.status_code == 422
    sales = ApiCaller(client, token_for(session, make_user(session, "s@example.com", ["sales"])))
    assert sales.get("/api/v1/company").status_code == 200
    assert sales.patch("/api/v1/company", json={"name": "Taken over"}).status_code == 403
    buyer = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    assert ApiCaller(client, token_for(session, buyer)).get("/api/v1/company").status_code == 403
    assert current_company(session).name == "Test Co."
