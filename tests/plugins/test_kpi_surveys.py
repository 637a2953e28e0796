"""Satisfaction surveys (KP-2, KP-6): invitation on completion/receipt, the portal form, the metric.

End to end: an order completed through the workflow queues the invitation to the
customer's contact with the link; the customer's portal user logs in and answers on the
screen; the satisfaction metric equals the hand-computed mean. Refusals: answered twice
(409, nothing changed), another customer (404), a bad score (422 naming the question),
an expired link (410). The quarterly job acts on the first working day of a quarter only,
once.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from core.calendar import add_working_days
from core.clock import COMPANY_TIMEZONE
from core.contrib import Transition
from core.models import Order, OutboxMessage
from core.services.orders import take_action
from core.settings import session_registry, set_setting
from core.testing import ADMIN_PASSWORD, PASSWORD, ApiCaller, csrf_token, login, make_order, make_user, token_for
from plugins.kpi import flow, surveys
from plugins.kpi.engine import EVERYONE, breakdown, get_metric, measure
from plugins.kpi.errors import KpiError
from plugins.kpi.models import KpiSurvey, KpiSurveyAnswer
from plugins.kpi.periods import period_of

LINK = re.compile(r"/kpi/surveys/([A-Za-z0-9_\-]{20,})")
GOOD = {"quality": "5", "delivery": "4", "service": "5", "value": "4"}  # mean 4.50


@pytest.fixture
def ordo_plugins():
    return ["kpi"]


def complete(session, state, admin, customer="C001") -> Order:
    """An order taken through submit → confirm → complete by the workflow (hooks fire)."""
    order = make_order(session, admin, customer=customer)
    for action in ("submit", "confirm", "complete"):
        take_action(session, state.registry, admin, order, action)
    session.commit()
    return order


def invitation_token(session, order: Order) -> str:
    """The token in the e-mail invitation of ``order``'s survey (to the customer's contact)."""
    message = session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.template == "kpi.survey_invitation",
            OutboxMessage.order_id == order.id,
            OutboxMessage.channel == "email",
        )
    )
    assert message is not None, "no invitation e-mail queued"
    match = LINK.search(message.body)
    assert match, message.body
    return match.group(1)


@pytest.fixture
def portal(session, seed):
    """Portal users of the two customers."""
    local = make_user(session, "buyer@c001.example.com", ["customer"], customer=seed["local"])
    remote = make_user(session, "buyer@c002.example.com", ["customer"], customer=seed["remote"])
    return {"local": local, "remote": remote}


def answers_of(session, survey_id: int) -> int:
    return session.scalar(
        select(func.count()).select_from(KpiSurveyAnswer).where(KpiSurveyAnswer.survey_id == survey_id)
    )


@pytest.mark.req("KP-6")
@pytest.mark.req("KP-2")
def test_completion_sends_invitation_and_the_customer_answers_on_the_portal(
    session, state, admin, seed, portal, client
):
    order = complete(session, state, admin)
    message = session.scalar(
        select(OutboxMessage).where(OutboxMessage.template == "kpi.survey_invitation", OutboxMessage.channel == "email")
    )
    assert message is not None and message.address == "zhang@example.com"
    assert message.customer_id == seed["local"].id and order.number in message.subject
    token = invitation_token(session, order)
    survey = session.scalar(select(KpiSurvey).where(KpiSurvey.key == f"order:{order.id}"))
    assert survey is not None and survey.kind == "order" and survey.answered_at is None
    assert survey.token_hash == surveys.token_hash(token) and token not in survey.token_hash

    # A visitor is sent to log in; the customer's portal user answers on the form.
    assert client.get(f"/kpi/surveys/{token}").status_code == 302
    login(client, portal["local"].email, PASSWORD)
    page = client.get(f"/kpi/surveys/{token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for code in ("quality", "delivery", "service", "value"):
        assert f'name="score-{code}"' in html
    data = {f"score-{k}": v for k, v in GOOD.items()} | {
        "comment": "交货及时",
        "csrf_token": csrf_token(client, f"/kpi/surveys/{token}"),
    }
    answer = client.post(f"/kpi/surveys/{token}", data=data)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/kpi/portal/surveys")
    session.rollback()
    survey = session.get(KpiSurvey, survey.id)
    assert survey.score == Decimal("4.50") and survey.comment == "交货及时"
    assert survey.answered_by_id == portal["local"].id and answers_of(session, survey.id) == 4
    # The form now says it is answered (409) and does not offer the form again.
    again = client.get(f"/kpi/surveys/{token}")
    assert again.status_code == 409 and 'id="survey-form"' not in again.get_data(as_text=True)


def test_the_survey_is_sent_once_per_order(session, state, admin, seed):
    order = complete(session, state, admin)
    assert surveys.send_order_survey(session, order) is None
    assert session.scalar(select(func.count()).select_from(KpiSurvey)) == 1


@pytest.mark.req("KP-2")
def test_satisfaction_metric_is_the_mean_of_survey_scores(session, state, admin, seed, portal):
    first = complete(session, state, admin)
    second = complete(session, state, admin, customer="C002")
    surveys.answer_survey(session, portal["local"], invitation_token(session, first), GOOD, "")  # 4.50
    surveys.answer_survey(
        session,
        portal["remote"],
        invitation_token(session, second),
        {"quality": 3, "delivery": 3, "service": 3, "value": 4},
        "慢",
    )  # 13 / 4 = 3.25
    unanswered = complete(session, state, admin)  # sent, not answered
    session.commit()
    registry = session_registry(session)
    month = period_of("month", dt.datetime.now(COMPANY_TIMEZONE).date())
    metric = get_metric(registry, "kpi.satisfaction")
    value = measure(session, metric, month, viewer=EVERYONE)
    assert (value.numerator, value.denominator) == (Decimal("7.75"), 2)
    assert value.value == Decimal("3.88")  # 7.75 / 2 = 3.875 → two places, half up
    rate = measure(session, get_metric(registry, "kpi.survey_response_rate"), month, viewer=EVERYONE)
    assert rate.value == Decimal("66.67")  # 2 answered of 3 sent
    by_customer = {p.key: p.value.value for p in breakdown(session, metric, month, "customer", viewer=EVERYONE)}
    assert by_customer == {seed["local"].id: Decimal("4.50"), seed["remote"].id: Decimal("3.25")}
    # A salesperson of no order sees nothing; the local customer's only survey is in its portal user's scope.
    stranger = make_user(session, "stranger@example.com", ["sales"])
    assert measure(session, metric, month, viewer=stranger).value is None
    assert unanswered.id


@pytest.mark.req("KP-2")
def test_satisfaction_breaks_down_by_survey_kind(session, state, admin, seed, portal):
    order = complete(session, state, admin)
    surveys.answer_survey(session, portal["local"], invitation_token(session, order), GOOD, "")
    session.commit()
    metric = get_metric(session_registry(session), "kpi.satisfaction")
    month = period_of("month", dt.datetime.now(COMPANY_TIMEZONE).date())
    parts = {p.key: p.value.value for p in breakdown(session, metric, month, "survey_kind", viewer=EVERYONE)}
    assert parts == {"order": Decimal("4.50")}


@pytest.mark.req("KP-6")
def test_answered_twice_is_409_and_changes_nothing(session, state, admin, seed, portal):
    order = complete(session, state, admin)
    token = invitation_token(session, order)
    survey = surveys.answer_survey(session, portal["local"], token, GOOD, "first")
    session.commit()
    answered_at = survey.answered_at
    with pytest.raises(KpiError) as twice:
        surveys.answer_survey(
            session, portal["local"], token, {"quality": 1, "delivery": 1, "service": 1, "value": 1}, "x"
        )
    session.rollback()
    assert twice.value.status == 409 and "already been answered" in twice.value.message
    survey = session.get(KpiSurvey, survey.id)
    assert (survey.score, survey.comment, survey.answered_at) == (Decimal("4.50"), "first", answered_at)
    assert answers_of(session, survey.id) == 4


@pytest.mark.req("KP-6")
def test_another_customer_or_staff_gets_404(session, state, admin, seed, portal, client):
    order = complete(session, state, admin)
    token = invitation_token(session, order)
    for user in (portal["remote"], admin):
        with pytest.raises(KpiError) as wrong:
            surveys.answer_survey(session, user, token, GOOD, "")
        session.rollback()
        assert wrong.value.status == 404
    with pytest.raises(KpiError) as unknown:
        surveys.answer_survey(session, portal["local"], "no-such-token", GOOD, "")
    assert unknown.value.status == 404
    login(client, portal["remote"].email, PASSWORD)
    assert client.get(f"/kpi/surveys/{token}").status_code == 404
    survey = session.scalar(select(KpiSurvey).where(KpiSurvey.order_id == order.id))
    assert survey.answered_at is None and answers_of(session, survey.id) == 0


@pytest.mark.req("KP-6")
@pytest.mark.parametrize(
    ("scores", "question"),
    [
        ({"quality": 6, "delivery": 4, "service": 5, "value": 4}, "quality"),
        ({"quality": 5, "delivery": 0, "service": 5, "value": 4}, "delivery"),
        ({"quality": 5, "delivery": 4, "service": "good", "value": 4}, "service"),
        ({"quality": 5, "delivery": 4, "service": 5}, "value"),
        ({"quality": 5, "delivery": 4, "service": 5, "value": 4.5}, "value"),
        ({"quality": 5, "delivery": 4, "service": 5, "value": True}, "value"),
        ({"quality": 5, "delivery": 4, "service": 5, "value": 4, "price": 3}, "price"),
    ],
)
def test_a_bad_score_is_422_naming_the_question(session, state, admin, seed, portal, scores, question):
    order = complete(session, state, admin)
    with pytest.raises(KpiError) as bad:
        surveys.answer_survey(session, portal["local"], invitation_token(session, order), scores, "")
    session.rollback()
    assert bad.value.status == 422 and question in bad.value.message
    assert any(question in key for key in bad.value.details)
    survey = session.scalar(select(KpiSurvey).where(KpiSurvey.order_id == order.id))
    assert survey.answered_at is None and answers_of(session, survey.id) == 0


@pytest.mark.req("KP-6")
def test_an_expired_survey_is_refused(session, state, admin, seed, portal, client):
    order = complete(session, state, admin)
    token = invitation_token(session, order)
    session.execute(
        update(KpiSurvey)
        .where(KpiSurvey.order_id == order.id)
        .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    )
    session.commit()
    with pytest.raises(KpiError) as expired:
        surveys.answer_survey(session, portal["local"], token, GOOD, "")
    session.rollback()
    assert expired.value.status == 410
    login(client, portal["local"].email, PASSWORD)
    page = client.get(f"/kpi/surveys/{token}")
    assert page.status_code == 410 and "expired" in page.get_data(as_text=True)
    mine = client.get("/kpi/portal/surveys").get_data(as_text=True)
    assert "No survey waits for your answer" in mine
    assert session.scalar(select(KpiSurvey.answered_at).where(KpiSurvey.order_id == order.id)) is None


def test_the_link_is_valid_for_the_configured_days(session, state, admin, seed):
    set_setting(session, flow.SURVEY_VALID_DAYS, 7)
    session.commit()
    order = complete(session, state, admin)
    survey = session.scalar(select(KpiSurvey).where(KpiSurvey.order_id == order.id))
    assert abs((survey.expires_at - survey.sent_at) - dt.timedelta(days=7)) < dt.timedelta(seconds=1)


def test_my_surveys_lists_the_customers_open_surveys_and_answers_by_id(session, state, admin, seed, portal, client):
    local = complete(session, state, admin)
    complete(session, state, admin, customer="C002")
    login(client, portal["local"].email, PASSWORD)
    page = client.get("/kpi/portal/surveys").get_data(as_text=True)
    survey = session.scalar(select(KpiSurvey).where(KpiSurvey.order_id == local.id))
    assert local.number in page and page.count("data-survey=") == 1
    path = f"/kpi/portal/surveys/{survey.id}"
    data = {f"score-{k}": v for k, v in GOOD.items()} | {"csrf_token": csrf_token(client, path)}
    assert client.post(path, data=data).status_code == 302
    session.rollback()
    assert session.get(KpiSurvey, survey.id).score == Decimal("4.50")
    other = session.scalar(select(KpiSurvey).where(KpiSurvey.order_id != local.id))
    assert client.get(f"/kpi/portal/surveys/{other.id}").status_code == 404


def test_a_bad_score_on_the_form_shows_the_question(session, state, admin, seed, portal, client):
    order = complete(session, state, admin)
    token = invitation_token(session, order)
    login(client, portal["local"].email, PASSWORD)
    data = {
        "score-quality": "5",
        "score-delivery": "4",
        "score-service": "9",
        "csrf_token": csrf_token(client, f"/kpi/surveys/{token}"),
    }
    page = client.post(f"/kpi/surveys/{token}", data=data)
    assert page.status_code == 422 and "service" in page.get_data(as_text=True)
    assert session.scalar(select(KpiSurvey.answered_at).where(KpiSurvey.order_id == order.id)) is None


def test_staff_cannot_open_the_portal_form(session, state, admin, seed, client):
    login(client, admin.email, ADMIN_PASSWORD)
    assert client.get("/kpi/portal/surveys").status_code == 403


@pytest.mark.req("KP-6")
def test_trigger_setting_completion_and_off(session, state, admin, seed):
    set_setting(session, flow.SURVEY_TRIGGER, "off")
    session.commit()
    complete(session, state, admin)
    assert session.scalar(select(func.count()).select_from(KpiSurvey)) == 0
    set_setting(session, flow.SURVEY_TRIGGER, "completion")
    session.commit()
    order = complete(session, state, admin)
    assert session.scalar(select(KpiSurvey.order_id)) == order.id


@pytest.mark.req("KP-2")
def test_quarterly_job_on_the_first_working_day_only_and_once(session, state, admin, seed):
    active = make_order(session, admin, customer="C001")
    take_action(session, state.registry, admin, active, "submit")
    draft = make_order(session, admin, customer="C002")  # a draft does not make C002 active
    session.execute(
        update(Order)
        .where(Order.id.in_([active.id, draft.id]))
        .values(created_at=dt.datetime(2027, 12, 1, tzinfo=dt.UTC))
    )
    session.commit()
    first = add_working_days(session, dt.date(2028, 1, 1), 0)  # 1 January 2028 is a Saturday
    assert first > dt.date(2028, 1, 1)

    def at(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(8), COMPANY_TIMEZONE)

    assert surveys.send_quarterly(session, at(dt.date(2028, 1, 1))) == 0
    assert surveys.send_quarterly(session, at(first + dt.timedelta(days=1))) == 0
    assert surveys.send_quarterly(session, at(first)) == 1
    session.commit()
    survey = session.scalar(select(KpiSurvey))
    assert (survey.kind, survey.key, survey.customer_id, survey.order_id) == (
        "quarterly",
        f"quarterly:{seed['local'].id}:2028Q1",
        seed["local"].id,
        None,
    )
    assert surveys.send_quarterly(session, at(first)) == 0  # the job run again sends nothing
    invitation = session.scalar(
        select(OutboxMessage).where(OutboxMessage.template == "kpi.survey_invitation", OutboxMessage.channel == "email")
    )
    assert "2028Q1" in invitation.subject and LINK.search(invitation.body)
    job = state.registry.jobs["kpi.quarterly_surveys"]
    assert job.schedule == "daily:08:00"


def test_api_send_and_answer(session, state, admin, seed, portal, client):
    order = make_order(session, admin)
    staff = ApiCaller(client, token_for(session, admin))
    early = staff.post("/api/v1/kpi/surveys", json={"order_id": order.id})
    assert early.status_code == 409  # a draft is not delivered
    for action in ("submit", "confirm"):
        take_action(session, state.registry, admin, order, action)
    set_setting(session, flow.SURVEY_TRIGGER, "off")
    session.commit()
    take_action(session, state.registry, admin, order, "complete")
    session.commit()
    sent = staff.post("/api/v1/kpi/surveys", json={"order_id": order.id})
    assert sent.status_code == 201, sent.get_json()
    assert "token" not in sent.get_json()
    assert staff.post("/api/v1/kpi/surveys", json={"order_id": order.id}).status_code == 409
    token = invitation_token(session, order)
    customer = ApiCaller(client, token_for(session, portal["local"]))
    bad = customer.post("/api/v1/kpi/surveys/answers", json={"token": token, "scores": {"quality": 5}})
    assert bad.status_code == 422
    other = ApiCaller(client, token_for(session, portal["remote"]))
    assert other.post("/api/v1/kpi/surveys/answers", json={"token": token, "scores": GOOD}).status_code == 404
    done = customer.post("/api/v1/kpi/surveys/answers", json={"token": token, "scores": GOOD, "comment": "ok"})
    assert done.status_code == 200 and done.get_json()["score"] == "4.50"
    assert customer.post("/api/v1/kpi/surveys/answers", json={"token": token, "scores": GOOD}).status_code == 409
    listed = staff.get("/api/v1/kpi/surveys?answered=true").get_json()
    assert listed["total"] == 1 and listed["items"][0]["answers"] == {
        "delivery": 4,
        "quality": 5,
        "service": 5,
        "value": 4,
    }
    sales = make_user(session, "nobody@example.com", ["warehouse"])
    assert ApiCaller(client, token_for(session, sales)).get("/api/v1/kpi/surveys").status_code == 403


def test_staff_survey_list_renders(session, state, admin, seed, client):
    complete(session, state, admin)
    login(client, admin.email, ADMIN_PASSWORD)
    page = client.get("/kpi/surveys")
    assert page.status_code == 200 and page.get_data(as_text=True).count("data-survey=") == 1


class TestWithLogistics:
    """With logistics enabled, "delivery" means the customer confirmed receipt, not completion."""

    @pytest.fixture
    def ordo_plugins(self):
        return ["kpi", "logistics"]

    @pytest.mark.req("KP-6")
    def test_receipt_not_completion_sends_the_survey(self, session, admin, seed):
        order = make_order(session, admin)
        done = Transition("complete", "confirmed", "completed", "confirmed", "completed")
        surveys.on_transitioned(session, order, done)
        assert session.scalar(select(func.count()).select_from(KpiSurvey)) == 0
        received = Transition("confirm_receipt", surveys.RECEIPT_STEP, "confirmed", "confirmed", "confirmed")
        surveys.on_transitioned(session, order, received)
        assert session.scalar(select(KpiSurvey.order_id)) == order.id
