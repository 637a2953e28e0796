"""The working-calendar screen and API: adding a range, importing a CSV all-or-nothing, deleting,
the calculator, who may do what, and the audit trail of every change (CORE-6)."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.calendar.days import CSV_TEMPLATE
from core.models import AuditLog, CalendarDay, User
from core.testing import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    ApiCaller,
    csrf_token,
    login,
    make_user,
    token_for,
)

pytestmark = pytest.mark.req("IN-4")

D = dt.date


def text(response: Any) -> str:
    """The page's HTML with entities decoded."""
    return html.unescape(response.get_data(as_text=True))


def post(client: Any, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """POST a form with the session's CSRF token."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, "/orders")}, **kwargs)


def stored_days(session: Session) -> dict[dt.date, tuple[str, str]]:
    """Every calendar day as committed now: date → (kind, name)."""
    session.commit()
    rows = session.execute(select(CalendarDay.day, CalendarDay.kind, CalendarDay.name)).all()
    session.commit()
    return {day: (kind, name) for day, kind, name in rows}


def audit_entries(session: Session, entity: str) -> list[AuditLog]:
    session.commit()
    rows = list(session.scalars(select(AuditLog).where(AuditLog.entity == entity).order_by(AuditLog.id)))
    session.commit()
    return rows


@pytest.fixture
def as_admin(client: Any, admin: User, session: Session) -> Any:
    session.commit()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    return client


def csv_upload(body: str, name: str = "days.csv") -> dict[str, Any]:
    return {"file": (io.BytesIO(body.encode("utf-8")), name)}


# --- the screen ------------------------------------------------------------------------


@pytest.mark.req("CORE-6")
def test_a_range_of_holidays_is_added_shown_and_audited(as_admin: Any, session: Session):
    page = post(
        as_admin,
        "/admin/calendar/days",
        {"first_day": "2026-10-01", "last_day": "2026-10-08", "kind": "holiday", "name": "国庆节"},
        follow_redirects=True,
    )
    assert page.status_code == 200
    assert "8 days were added to the calendar." in text(page)
    days = stored_days(session)
    assert days == {D(2026, 10, d): ("holiday", "国庆节") for d in range(1, 9)}
    shown = text(as_admin.get("/admin/calendar?year=2026"))
    assert 'data-day="2026-10-01" data-kind="holiday" title="国庆节"' in shown
    assert shown.count('<tr data-day="2026-10-') == 8
    # A make-up Sunday shows as worked in the year view.
    post(as_admin, "/admin/calendar/days", {"first_day": "2026-09-20", "kind": "workday", "name": "国庆节调休上班"})
    assert 'data-day="2026-09-20" data-kind="workday"' in text(as_admin.get("/admin/calendar?year=2026"))
    (entry, second) = audit_entries(session, "calendar")
    assert entry.action == "add_days"
    assert entry.changes == {"from": "2026-10-01", "to": "2026-10-08", "kind": "holiday", "name": "国庆节", "days": 8}
    assert second.changes["days"] == 1


def test_a_range_overlapping_a_different_day_changes_nothing(as_admin: Any, session: Session):
    post(as_admin, "/admin/calendar/days", {"first_day": "2026-10-10", "kind": "workday", "name": "调休上班"})
    before = stored_days(session)
    page = post(
        as_admin,
        "/admin/calendar/days",
        {"first_day": "2026-10-08", "last_day": "2026-10-12", "kind": "holiday", "name": "x"},
    )
    assert page.status_code == 409
    assert "2026-10-10 is already in the calendar as a Make-up working day (“调休上班”); delete it first." in text(page)
    assert stored_days(session) == before
    # Adding the same days again changes nothing and says so.
    again = post(as_admin, "/admin/calendar/days", {"first_day": "2026-10-10", "kind": "workday", "name": "调休上班"})
    assert again.status_code == 302
    assert stored_days(session) == before


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (
            {"first_day": "2026-10-08", "last_day": "2026-10-01", "kind": "holiday"},
            "The last day is before the first day.",
        ),
        ({"first_day": "2026-01-01", "last_day": "2027-06-01", "kind": "holiday"}, "at most 366 days"),
        ({"first_day": "2026-01-01", "kind": "vacation"}, "Kind must be “holiday” or “workday”, not “vacation”."),
        ({"first_day": "", "kind": "holiday"}, "Give the first day (or the only one)."),
        ({"first_day": "2026-01-01", "last_day": "tomorrow", "kind": "holiday"}, "Not a valid date."),
        ({"first_day": "2026-01-01", "kind": "holiday", "name": "x" * 101}, "longer than 100 characters"),
    ],
)
def test_bad_days_are_refused_with_a_clear_message(as_admin: Any, session: Session, form: dict[str, str], message: str):
    page = post(as_admin, "/admin/calendar/days", form)
    assert page.status_code in (409, 422)
    assert message in text(page)
    assert stored_days(session) == {}


def test_a_csv_with_a_bad_line_changes_nothing_and_names_the_line(as_admin: Any, session: Session):
    body = (
        "date,kind,name\n"
        "2026-10-01,holiday,国庆节\n"
        "2026-13-02,holiday,国庆节\n"
        "2026-10-03,vacation,\n"
        "2026-10-01,休,重复\n"
    )
    page = post(as_admin, "/admin/calendar/import", csv_upload(body), content_type="multipart/form-data")
    assert page.status_code == 422
    shown = text(page)
    assert "Line 3: “2026-13-02” is not a date like 2026-10-01." in shown
    assert "Line 4: Kind must be “holiday” or “workday”, not “vacation”." in shown
    assert "Line 5: 2026-10-01 is also on line 2." in shown
    assert "Line 2:" not in shown
    assert stored_days(session) == {}
    assert audit_entries(session, "calendar") == []


def test_a_good_csv_is_imported_once_and_the_template_is_a_valid_file(as_admin: Any, session: Session):
    template = as_admin.get("/admin/calendar/template.csv")
    assert template.status_code == 200 and template.mimetype == "text/csv"
    assert template.get_data(as_text=True).lstrip("\ufeff").startswith("date,kind,name\n")
    data = {"file": (io.BytesIO(template.get_data()), "template.csv")}
    page = post(as_admin, "/admin/calendar/import", data, content_type="multipart/form-data", follow_redirects=True)
    assert "Imported 5 days; 0 were already in the calendar." in text(page)
    assert stored_days(session)[D(2026, 9, 20)] == ("workday", "国庆节调休上班")
    assert len(stored_days(session)) == CSV_TEMPLATE.count("\n") - 1
    # Chinese Excel: GBK, slashes in dates and 休/班 as kinds; the same rows again are skipped.
    gbk = "date,kind,name\n2026/10/1,休,国庆节\n2026/5/9,班,劳动节调休\n".encode("gb18030")
    data = {"file": (io.BytesIO(gbk), "excel.csv")}
    page = post(as_admin, "/admin/calendar/import", data, content_type="multipart/form-data", follow_redirects=True)
    assert "Imported 1 days; 1 were already in the calendar." in text(page)
    assert stored_days(session)[D(2026, 5, 9)] == ("workday", "劳动节调休")
    imports = [e for e in audit_entries(session, "calendar") if e.action == "import_days"]
    assert [e.changes["days"] for e in imports] == [5, 1]


def test_a_csv_conflicting_with_the_calendar_or_without_header_is_refused(as_admin: Any, session: Session):
    post(as_admin, "/admin/calendar/days", {"first_day": "2026-10-01", "kind": "holiday", "name": "国庆节"})
    before = stored_days(session)
    body = "date,kind,name\n2026-10-02,holiday,国庆节\n2026-10-01,workday,\n"
    page = post(as_admin, "/admin/calendar/import", csv_upload(body), content_type="multipart/form-data")
    assert page.status_code == 422
    assert "Line 3: 2026-10-01 is already in the calendar as a Holiday (“国庆节”); delete it first." in text(page)
    page = post(as_admin, "/admin/calendar/import", csv_upload("day;type\n"), content_type="multipart/form-data")
    assert "Line 1: The first line must be the header “date,kind,name”." in text(page)
    page = post(as_admin, "/admin/calendar/import", csv_upload("date,kind,name\n"), content_type="multipart/form-data")
    assert "The file holds no days." in text(page)
    big = "date,kind,name\n" + "2026-01-01,holiday,x\n" * 20000
    page = post(as_admin, "/admin/calendar/import", csv_upload(big), content_type="multipart/form-data")
    assert page.status_code == 413 and "The file is larger than 256 KB." in text(page)
    assert stored_days(session) == before


@pytest.mark.req("CORE-6")
def test_a_day_is_deleted_after_confirmation_and_audited(as_admin: Any, session: Session):
    post(as_admin, "/admin/calendar/days", {"first_day": "2026-06-17", "kind": "holiday", "name": "公司周年庆"})
    day_id = session.scalar(select(CalendarDay.id))
    page = text(as_admin.get("/admin/calendar?year=2026"))
    assert f'action="/admin/calendar/days/{day_id}/delete"' in page
    assert 'data-confirm="Delete 2026-06-17 (公司周年庆) from the calendar?' in page
    done = post(as_admin, f"/admin/calendar/days/{day_id}/delete", follow_redirects=True)
    assert "2026-06-17 was removed from the calendar." in text(done)
    assert stored_days(session) == {}
    (entry,) = audit_entries(session, "calendar_day")
    assert (entry.action, entry.entity_id, entry.changes["day"]) == ("delete", day_id, "2026-06-17")
    assert post(as_admin, f"/admin/calendar/days/{day_id}/delete").status_code == 404


def test_the_calculator_counts_with_the_calendar(as_admin: Any):
    post(as_admin, "/admin/calendar/days", {"first_day": "2026-10-01", "last_day": "2026-10-07", "kind": "holiday"})
    page = text(as_admin.get("/admin/calendar?year=2026&calc_start=2026-09-30&calc_days=1&calc_end=2026-10-09"))
    assert "1 working days after 2026-09-30 is 2026-10-08 (Thursday)." in page
    assert "From 2026-09-30 to 2026-10-09: 2 working days" in page
    page = text(as_admin.get("/admin/calendar?calc_start=2026-09-30&calc_days=99999"))
    assert "Give a whole number of working days from -3650 to 3650." in page
    page = text(as_admin.get("/admin/calendar?calc_start=30.9.&calc_days=1"))
    assert "“30.9.” is not a date like 2026-10-01." in page


def test_the_year_view_counts_working_days_per_month(as_admin: Any):
    post(as_admin, "/admin/calendar/days", {"first_day": "2026-10-01", "last_day": "2026-10-07", "kind": "holiday"})
    post(as_admin, "/admin/calendar/days", {"first_day": "2026-10-10", "kind": "workday"})
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text(as_admin.get("/admin/calendar?year=2026"))))
    # October 2026: 22 weekdays, 5 of them off, one Saturday worked.
    assert "October · 18 working days" in page
    assert "Year 2026: 257 working days" in page


def test_a_chinese_administrator_sees_the_calendar_in_chinese(client: Any, session: Session):
    make_user(session, "wang@example.com", ["admin"], language="zh_CN")
    login(client, "wang@example.com", PASSWORD)
    page = text(client.get("/admin/calendar?year=2026"))
    assert ">工作日历</a>" in page and "调休上班" in page and "十月" in page
    refused = post(
        client, "/admin/calendar/days", {"first_day": "2026-10-08", "last_day": "2026-10-01", "kind": "holiday"}
    )
    assert "最后一天早于第一天。" in text(refused)


def test_without_calendar_manage_the_screen_and_its_forms_answer_403(client: Any, session: Session):
    make_user(session, "sales@example.com", ["sales"])
    login(client, "sales@example.com", PASSWORD)
    assert client.get("/admin/calendar").status_code == 403
    assert client.get("/admin/calendar/template.csv").status_code == 403
    token = csrf_token(client, "/orders")
    for path in ("/admin/calendar/days", "/admin/calendar/import", "/admin/calendar/days/1/delete"):
        data = {"csrf_token": token, "first_day": "2026-10-01", "kind": "holiday"}
        assert client.post(path, data=data).status_code == 403, path
    assert stored_days(session) == {}
    assert "Working calendar" not in text(client.get("/orders"))


def test_a_general_manager_may_keep_the_calendar(client: Any, session: Session):
    make_user(session, "gm@example.com", ["general_manager"])
    login(client, "gm@example.com", PASSWORD)
    assert ">Working calendar</a>" in text(client.get("/orders"))
    post(client, "/admin/calendar/days", {"first_day": "2026-10-01", "kind": "holiday", "name": "国庆节"})
    assert stored_days(session) == {D(2026, 10, 1): ("holiday", "国庆节")}


# --- the API ---------------------------------------------------------------------------


@pytest.fixture
def api(client: Any, session: Session, admin: User) -> ApiCaller:
    return ApiCaller(client, token_for(session, admin))


def test_the_api_adds_lists_and_deletes_days(api: ApiCaller, session: Session):
    added = api.post(
        "/api/v1/calendar/days", json={"from": "2026-10-01", "to": "2026-10-08", "kind": "holiday", "name": "国庆节"}
    )
    assert added.status_code == 201, added.get_json()
    assert [d["day"] for d in added.get_json()["items"]] == [f"2026-10-0{d}" for d in range(1, 9)]
    one = api.post("/api/v1/calendar/days", json={"day": "2026-09-20", "kind": "workday", "name": "国庆节调休上班"})
    assert one.status_code == 201
    listed = api.get("/api/v1/calendar/days?from=2026-09-01&to=2026-10-02").get_json()["items"]
    assert [(d["day"], d["kind"]) for d in listed] == [
        ("2026-09-20", "workday"),
        ("2026-10-01", "holiday"),
        ("2026-10-02", "holiday"),
    ]
    day_id = listed[0]["id"]
    deleted = api.delete(f"/api/v1/calendar/days/{day_id}")
    assert deleted.status_code == 200 and deleted.get_json()["day"] == "2026-09-20"
    assert api.delete(f"/api/v1/calendar/days/{day_id}").status_code == 404
    assert D(2026, 9, 20) not in stored_days(session)


def test_the_api_refuses_bad_days_with_field_errors_and_changes_nothing(api: ApiCaller, session: Session):
    api.post("/api/v1/calendar/days", json={"day": "2026-10-03", "kind": "holiday", "name": "国庆节"})
    before = stored_days(session)
    conflict = api.post("/api/v1/calendar/days", json={"from": "2026-10-01", "to": "2026-10-05", "kind": "workday"})
    assert conflict.status_code == 409
    assert conflict.get_json()["error"]["details"]["day"] == [
        "2026-10-03 is already in the calendar as a holiday (“国庆节”); delete it first."
    ]
    bad = api.post("/api/v1/calendar/days", json={"day": "2026-10-01", "to": "2026-10-02", "kind": "leave"})
    assert bad.status_code == 422
    assert set(bad.get_json()["error"]["details"]) == {"day", "kind"}
    backwards = api.post("/api/v1/calendar/days", json={"from": "2026-10-05", "to": "2026-10-01", "kind": "holiday"})
    assert backwards.status_code == 422 and "to" in backwards.get_json()["error"]["details"]
    assert stored_days(session) == before


def test_the_calculator_endpoints_serve_any_staff_user(
    client: Any, session: Session, seed: dict[str, Any], api: ApiCaller
):
    api.post("/api/v1/calendar/days", json={"from": "2026-10-01", "to": "2026-10-07", "kind": "holiday"})
    api.post("/api/v1/calendar/days", json={"day": "2026-10-10", "kind": "workday"})
    sales = ApiCaller(client, token_for(session, make_user(session, "s@example.com", ["sales"])))
    answer = sales.get("/api/v1/calendar/add-working-days?start=2026-09-30&days=3")
    assert answer.status_code == 200
    assert answer.get_json() == {"start": "2026-09-30", "days": 3, "result": "2026-10-10"}
    between = sales.get("/api/v1/calendar/working-days-between?start=2026-09-30&end=2026-10-10").get_json()
    assert between == {"start": "2026-09-30", "end": "2026-10-10", "working_days": 3}
    assert sales.get("/api/v1/calendar/days").status_code == 200
    too_many = sales.get("/api/v1/calendar/add-working-days?start=2026-09-30&days=5000")
    assert too_many.status_code == 422 and "days" in too_many.get_json()["error"]["details"]
    assert sales.get("/api/v1/calendar/add-working-days?start=yesterday&days=1").status_code == 422
    # Reading is for staff; changing needs calendar.manage.
    assert sales.post("/api/v1/calendar/days", json={"day": "2026-11-11", "kind": "holiday"}).status_code == 403
    day_id = session.scalar(select(func.min(CalendarDay.id)))
    assert sales.delete(f"/api/v1/calendar/days/{day_id}").status_code == 403
    portal = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    buyer = ApiCaller(client, token_for(session, portal))
    assert buyer.get("/api/v1/calendar/add-working-days?start=2026-09-30&days=3").status_code == 403
    assert buyer.get("/api/v1/calendar/days").status_code == 403
    assert client.get("/api/v1/calendar/working-days-between?start=2026-09-30&end=2026-10-10").status_code == 401


# --- odd input: a clear answer, never a 500 ---------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "?year=²",
        "?year=-5",
        "?year=99999999",
        "?year=" + "9" * 5000,
        "?year=1e3",
        "?year=%E2%80%8B2026",
    ],
)
def test_an_odd_year_shows_a_year_instead_of_failing(as_admin: Any, query: str):
    page = as_admin.get("/admin/calendar" + query)
    assert page.status_code == 200


@pytest.mark.parametrize("days", ["²", "1e3", "٣", "9" * 5000, "99999999", "-3651", " ", "--1"])
def test_an_odd_number_of_days_in_the_calculator_is_refused_with_a_message(as_admin: Any, days: str):
    page = as_admin.get("/admin/calendar", query_string={"calc_start": "2026-01-01", "calc_days": days})
    assert page.status_code == 200
    assert "Give a whole number of working days from -3650 to 3650." in text(page)


@pytest.mark.parametrize(
    "query",
    [
        {"calc_start": "2026-01-01", "calc_end": "9999-12-31"},
        {"calc_start": "0001-01-01", "calc_days": "-3650"},
        {"calc_start": "9999-12-31", "calc_days": "3650"},
        {"calc_start": "9999-99-99", "calc_days": "1"},
        {"calc_start": "2026-01-01", "calc_end": "² "},
    ],
)
def test_calculator_extremes_answer_with_a_page(as_admin: Any, query: dict[str, str]):
    assert as_admin.get("/admin/calendar", query_string=query).status_code == 200


def test_a_csv_field_over_the_csv_modules_limit_is_refused_with_its_line(as_admin: Any, session: Session):
    body = "date,kind,name\n2026-10-02,holiday,ok\n2026-10-01,holiday," + "x" * 140_000 + "\n"
    page = post(as_admin, "/admin/calendar/import", csv_upload(body), content_type="multipart/form-data")
    assert page.status_code == 422
    assert "Line 3: " in text(page)
    assert stored_days(session) == {}


@pytest.mark.parametrize("name", ["a\x00b", "\x1b[31mred", "tab\there", "x\x7fy", "x\x85y"])
def test_control_characters_in_a_day_name_are_refused_everywhere(
    as_admin: Any, api: ApiCaller, session: Session, name: str
):
    message = "Remove control characters (invisible codes) from this text."
    form = post(as_admin, "/admin/calendar/days", {"first_day": "2026-10-03", "kind": "holiday", "name": name})
    assert form.status_code == 422 and message in text(form)
    body = f"date,kind,name\n2026-10-01,holiday,国庆节\n2026-10-02,holiday,{name}\n"
    imported = post(as_admin, "/admin/calendar/import", csv_upload(body), content_type="multipart/form-data")
    assert imported.status_code == 422 and f"Line 3: {message}" in text(imported)
    answer = api.post("/api/v1/calendar/days", json={"day": "2026-10-04", "kind": "holiday", "name": name})
    assert answer.status_code == 422 and "name" in answer.get_json()["error"]["details"]
    assert stored_days(session) == {}


def test_the_service_refuses_control_characters_in_a_day_name(session: Session, admin: User):
    from core.calendar.days import Refused, add_days

    with pytest.raises(Refused) as refused:
        add_days(session, admin, D(2026, 10, 1), None, "holiday", "国庆\x00节")
    assert [p.field for p in refused.value.problems] == ["name"]


def test_a_huge_day_id_is_not_found(as_admin: Any, api: ApiCaller):
    huge = 10**30
    assert post(as_admin, f"/admin/calendar/days/{huge}/delete").status_code == 404
    assert api.delete(f"/api/v1/calendar/days/{huge}").status_code == 404
