"""The Jobs screen (``/admin/jobs``) and API (``/api/v1/jobs``): see every job, run one now,
switch it off, reschedule it (bad schedules change nothing), read its run history with
tracebacks; all of it only with ``jobs.manage``.

The app has a made-up plugin ``jobtest`` enabled, declaring a job that works and one
that raises, next to core's own weekly customer digest.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

import core.installation
import core.plugins
from core.contract import fake_plugin
from core.contrib import Job
from core.db import utcnow
from core.jobs.runner import RETRY_DELAY, run_due
from core.models import AuditLog, JobRun, JobState, User
from core.services import audit
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, ApiCaller, csrf_token, login, make_user, token_for

pytestmark = pytest.mark.req("CORE-7")

MARK = "jobtest"


def work(session: Session, now: dt.datetime) -> None:
    audit.record(session, None, MARK, None, "ran", {"at": now})


def broken(session: Session, now: dt.datetime) -> None:
    raise ValueError("the price feed is down")


JOBS = [
    Job("jobtest.append", "every:3600", work, label="Append a row"),
    Job("jobtest.broken", "daily:07:00", broken),
]


@pytest.fixture
def ordo_plugins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[str, ...]]:
    """Install the made-up plugin (for this test) and enable it in the test's app."""
    plugin = fake_plugin(MARK, ordo_register_jobs=lambda: list(JOBS))
    plugin.module.__file__ = str(tmp_path / "fake_jobtest.py")  # a folder without templates or translations
    installed = {**core.plugins.discover(), MARK: plugin}
    monkeypatch.setattr(core.plugins, "discover", lambda: installed)
    monkeypatch.setattr(core.installation, "discover", lambda: installed)
    yield (MARK,)


@pytest.fixture
def admin_client(client: FlaskClient) -> FlaskClient:
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    return client


@pytest.fixture
def api(client: FlaskClient, session: Session, admin: User) -> ApiCaller:
    return ApiCaller(client, token_for(session, admin))


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def post(client: FlaskClient, path: str, data: dict[str, str], follow: bool = True) -> Any:
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/admin/jobs")}, follow_redirects=follow)


def state_of(session: Session, name: str) -> JobState:
    session.rollback()
    state = session.scalars(
        select(JobState).where(JobState.name == name).execution_options(populate_existing=True)
    ).one()
    return state


def job_audit(session: Session) -> list[tuple[str, dict[str, Any]]]:
    session.rollback()
    return [(a.action, a.changes) for a in session.scalars(select(AuditLog).where(AuditLog.entity == "job"))]


def run_pass(app: Flask, now: dt.datetime | None = None) -> list[JobRun]:
    state = app.extensions["ordo"]
    return [r for r in run_due(state.sessions, state.registry, worker="test-worker", now=now) if r.job.startswith(MARK)]


# --- the list ----------------------------------------------------------------------------------


def test_the_jobs_screen_lists_every_registered_job(admin_client):
    page = text(admin_client.get("/admin/jobs"))
    assert ">Jobs</a>" in page, "the menu links the screen"
    for name in ("core.customer_digest", "jobtest.append", "jobtest.broken"):
        assert f'data-job="{name}"' in page
    assert "Append a row" in page and "Weekly progress report to customers" in page
    assert "every hour" in page and "daily at 07:00" in page and "weekly on Monday at 09:00" in page
    assert "Never run" in page


def test_the_list_shows_the_last_outcome_and_a_running_jobs_worker(app, admin_client, session):
    run_pass(app)
    run_pass(app, utcnow() + dt.timedelta(days=1, hours=1))  # the daily job's first run: it fails
    with app.extensions["ordo"].sessions() as s, s.begin():
        state = s.get(JobState, "jobtest.append")
        assert state is not None
        state.lease_owner = "box-7:4242"
        state.lease_until = utcnow() + dt.timedelta(minutes=5)
    page = text(admin_client.get("/admin/jobs"))
    assert "Running on box-7:4242" in page
    row = page.split('data-job="jobtest.broken"')[1].split("</tr>")[0]
    assert row.startswith(' data-enabled="yes" class="table-danger">'), "a failed last run stands out"
    assert 'data-outcome="failed">Failed</span>' in row
    row = page.split('data-job="jobtest.append"')[1].split("</tr>")[0]
    assert 'data-outcome="succeeded">Succeeded</span>' in row and "table-danger" not in row


# --- actions ------------------------------------------------------------------------------------


def test_run_now_makes_the_job_due_and_the_next_pass_runs_it(app, admin_client, session):
    first = run_pass(app)
    assert {r.job for r in first} == {"jobtest.append"}  # the daily one is not due yet
    assert run_pass(app) == []
    before = utcnow()
    page = text(post(admin_client, "/admin/jobs/jobtest.append/run", {}))
    assert "Job jobtest.append will run at the next worker pass." in page
    state = state_of(session, "jobtest.append")
    assert state.next_run_at is not None and before <= state.next_run_at <= utcnow()
    assert job_audit(session) == [("run_now", {"job": "jobtest.append"})]
    assert [r.outcome for r in run_pass(app)] == ["succeeded"]


def test_changing_the_schedule_is_validated_audited_and_can_be_reset(app, admin_client, session):
    run_pass(app)
    before = state_of(session, "jobtest.append")
    next_before = before.next_run_at

    response = post(admin_client, "/admin/jobs/jobtest.append/schedule", {"schedule": "hourly"})
    assert response.status_code == 422
    page = text(response)
    assert "“hourly” is not a schedule. Use every:<seconds>, daily:HH:MM or weekly:<mon..sun>:HH:MM" in page
    assert 'value="hourly"' in page, "the form keeps what was typed"
    after = state_of(session, "jobtest.append")
    assert (after.schedule, after.next_run_at) == ("", next_before), "nothing changed"
    assert job_audit(session) == []

    page = text(post(admin_client, "/admin/jobs/jobtest.append/schedule", {"schedule": " Daily:08:30 "}))
    assert "Job jobtest.append now runs daily at 08:30." in page
    changed = state_of(session, "jobtest.append")
    assert changed.schedule == "daily:08:30"
    assert changed.next_run_at is not None and changed.next_run_at > utcnow()
    assert changed.next_run_at.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%H:%M") == "08:30"
    assert job_audit(session) == [("change", {"job": "jobtest.append", "schedule": ["every:3600", "daily:08:30"]})]
    assert "changed" in text(admin_client.get("/admin/jobs"))

    post(admin_client, "/admin/jobs/jobtest.append/schedule", {"schedule": ""})
    assert state_of(session, "jobtest.append").schedule == ""
    assert job_audit(session)[-1] == ("change", {"job": "jobtest.append", "schedule": ["daily:08:30", "every:3600"]})


def test_a_disabled_job_does_not_run_and_cannot_be_run_now(app, admin_client, session):
    page = text(post(admin_client, "/admin/jobs/jobtest.append/enabled", {"enabled": "0"}))
    assert "Job jobtest.append is switched off" in page
    assert state_of(session, "jobtest.append").enabled is False
    assert job_audit(session) == [("change", {"job": "jobtest.append", "enabled": [True, False]})]
    assert "jobtest.append" not in {r.job for r in run_pass(app, utcnow() + dt.timedelta(days=2))}

    page = text(post(admin_client, "/admin/jobs/jobtest.append/run", {}))
    assert "Job jobtest.append is switched off; switch it on before running it." in page
    assert [a for a, _ in job_audit(session)] == ["change"]

    bad = post(admin_client, "/admin/jobs/jobtest.append/enabled", {"enabled": "maybe"})
    assert "Nothing was changed" in text(bad)
    assert state_of(session, "jobtest.append").enabled is False

    post(admin_client, "/admin/jobs/jobtest.append/enabled", {"enabled": "1"})
    state = state_of(session, "jobtest.append")
    assert state.enabled is True
    assert state.next_run_at is not None and state.next_run_at > utcnow(), "switching on does not mean run now"


def test_the_history_shows_a_failed_runs_traceback(app, admin_client):
    run_pass(app)  # the worker sees the job: due at the next 07:00
    at = utcnow() + dt.timedelta(days=1, hours=1)  # past that, whatever the time now
    runs = run_pass(app, at)
    assert {(r.job, r.outcome) for r in runs} >= {("jobtest.broken", "failed")}
    run_pass(app, at + RETRY_DELAY)
    page = text(admin_client.get("/admin/jobs/jobtest.broken"))
    assert page.count('data-outcome="failed" class="table-danger"') == 2
    assert "Traceback (most recent call last):" in page
    assert 'raise ValueError("the price feed is down")' in page
    assert '<summary class="small">ValueError: the price feed is down</summary>' in page
    assert "test-worker" in page

    only_ok = text(admin_client.get("/admin/jobs/jobtest.broken?outcome=succeeded"))
    assert "No runs yet." in only_ok


def test_unknown_jobs_answer_404(admin_client, api):
    assert admin_client.get("/admin/jobs/nope.job").status_code == 404
    assert post(admin_client, "/admin/jobs/nope.job/run", {}, follow=False).status_code == 404
    assert api.get("/api/v1/jobs/nope.job").status_code == 404
    assert api.patch("/api/v1/jobs/nope.job", json={"enabled": False}).status_code == 404


def test_without_jobs_manage_everything_is_refused(app, client, session, seed):
    manager = make_user(session, "boss@example.com", ["general_manager", "sales_manager"])
    assert not manager.can("jobs.manage")
    caller = ApiCaller(client, token_for(session, manager))
    login(client, "boss@example.com", PASSWORD)
    assert ">Jobs</a>" not in text(client.get("/orders"))
    assert client.get("/admin/jobs").status_code == 403
    assert client.get("/admin/jobs/jobtest.append").status_code == 403
    token = csrf_token(client, "/orders")
    for action, data in (("run", {}), ("enabled", {"enabled": "0"}), ("schedule", {"schedule": "every:5"})):
        response = client.post(f"/admin/jobs/jobtest.append/{action}", data={**data, "csrf_token": token})
        assert response.status_code == 403
    assert caller.get("/api/v1/jobs").status_code == 403
    assert caller.get("/api/v1/jobs/jobtest.append/runs").status_code == 403
    assert caller.post("/api/v1/jobs/jobtest.append/run").status_code == 403
    assert caller.patch("/api/v1/jobs/jobtest.append", json={"enabled": False}).status_code == 403
    assert job_audit(session) == []


def test_a_chinese_administrator_reads_the_screen_in_chinese(client, session):
    make_user(session, "li@example.com", ["admin"], language="zh_CN")
    login(client, "li@example.com", PASSWORD)
    page = text(client.get("/admin/jobs"))
    assert "定时任务" in page and "立即运行" in page and "每小时" in page and "每周一 09:00" in page


# --- API ---------------------------------------------------------------------------------------


def test_api_lists_jobs_with_state_and_last_run(app, api):
    run_pass(app)
    body = api.get("/api/v1/jobs").get_json()
    jobs = {item["name"]: item for item in body["items"]}
    assert set(jobs) >= {"core.customer_digest", "jobtest.append", "jobtest.broken"}
    item = jobs["jobtest.append"]
    assert item["plugin"] == "jobtest" and item["label"] == "Append a row"
    assert item["schedule"] == item["registered_schedule"] == "every:3600"
    assert item["enabled"] is True and item["running"] is False and item["lease_owner"] == ""
    assert item["last_run"]["outcome"] == "succeeded" and item["last_run"]["worker"] == "test-worker"
    assert jobs["core.customer_digest"]["last_run"] is None


def test_api_patch_validates_and_changes_nothing_on_bad_input(app, api, session):
    run_pass(app)
    before = state_of(session, "jobtest.append")
    for body, field in (
        ({"schedule": "daily:25:00"}, "schedule"),
        ({"schedule": 5}, "schedule"),
        ({"enabled": "yes"}, "enabled"),
        ({"schedule": "daily:08:00", "colour": "red"}, "colour"),
    ):
        response = api.patch("/api/v1/jobs/jobtest.append", json=body)
        assert response.status_code == 422, body
        error = response.get_json()["error"]
        assert error["code"] == "invalid" and field in error["details"], error
    response = api.patch("/api/v1/jobs/jobtest.append", json={"schedule": "daily:25:00"})
    assert response.get_json()["error"]["details"]["schedule"] == [
        "Not a schedule: use every:<seconds>, daily:HH:MM or weekly:<mon..sun>:HH:MM (company time)."
    ]
    after = state_of(session, "jobtest.append")
    assert (after.schedule, after.enabled, after.next_run_at) == ("", True, before.next_run_at)
    assert job_audit(session) == []

    response = api.patch("/api/v1/jobs/jobtest.append", json={"schedule": "weekly:fri:17:00", "enabled": False})
    assert response.status_code == 200
    body = response.get_json()
    assert body["schedule"] == "weekly:fri:17:00" and body["registered_schedule"] == "every:3600"
    assert body["enabled"] is False
    response = api.patch("/api/v1/jobs/jobtest.append", json={"schedule": None, "enabled": True})
    assert response.get_json()["schedule"] == "every:3600"
    assert [changes for _, changes in job_audit(session)] == [
        {"job": "jobtest.append", "schedule": ["every:3600", "weekly:fri:17:00"], "enabled": [True, False]},
        {"job": "jobtest.append", "schedule": ["weekly:fri:17:00", "every:3600"], "enabled": [False, True]},
    ]


def test_api_run_now_and_the_run_history(app, api, session):
    response = api.post("/api/v1/jobs/jobtest.broken/run")
    assert response.status_code == 202
    assert [r.outcome for r in run_pass(app) if r.job == "jobtest.broken"] == ["failed"]
    run_pass(app, utcnow() + RETRY_DELAY)

    page = api.get("/api/v1/jobs/jobtest.broken/runs?limit=1").get_json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    newest = page["items"][0]
    assert newest["outcome"] == "failed" and "ValueError: the price feed is down" in newest["error"]
    rest = api.get(f"/api/v1/jobs/jobtest.broken/runs?limit=1&cursor={page['next_cursor']}").get_json()
    assert len(rest["items"]) == 1 and rest["items"][0]["id"] < newest["id"]
    assert rest["items"][0]["outcome"] == "failed" and rest["next_cursor"] is None
    assert api.get("/api/v1/jobs/jobtest.broken/runs?outcome=succeeded").get_json()["items"] == []
    assert api.get("/api/v1/jobs/jobtest.broken/runs?outcome=bogus").status_code == 422

    api.patch("/api/v1/jobs/jobtest.broken", json={"enabled": False})
    refused = api.post("/api/v1/jobs/jobtest.broken/run")
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "job_disabled"


@pytest.mark.parametrize(
    "value", ["\u00b2", "\u0661\u0662", "9999999999999999999", "1" * 40, "-1", "+5", " 5", "5 ", "", "0x10"]
)
def test_a_malformed_run_cursor_answers_422_not_500(api, value):
    # "²".isdigit() is true yet int("²") raises; 19 digits overflow SQLite's INTEGER.
    cursor = base64.urlsafe_b64encode(f"r:{value}".encode()).decode().rstrip("=")
    response = api.get(f"/api/v1/jobs/jobtest.append/runs?cursor={cursor}")
    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == {"cursor": ["Not a valid cursor."]}


def test_the_largest_run_cursor_is_accepted(api):
    cursor = base64.urlsafe_b64encode(("r:" + "9" * 18).encode()).decode().rstrip("=")
    response = api.get(f"/api/v1/jobs/jobtest.append/runs?cursor={cursor}")
    assert response.status_code == 200 and response.get_json()["next_cursor"] is None


def test_the_api_is_in_the_openapi_document(api):
    paths = api.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"/api/v1/jobs", "/api/v1/jobs/{name}", "/api/v1/jobs/{name}/run", "/api/v1/jobs/{name}/runs"} <= set(paths)
