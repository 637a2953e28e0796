"""Customer satisfaction surveys (满意度调查, KP-2, KP-6): sending, answering, measuring.

A survey is sent after an order's delivery or completion (setting
``kpi.surveys.trigger``) and once a quarter to every active customer. The invitation is
a notification to the customer with a link to the portal form ``/kpi/surveys/<token>``;
only the SHA-256 of the random token is stored, so the link cannot be rebuilt from the
database. The customer's own portal user answers each configured question with a
score 1–5 plus a comment, once; the survey's score is the mean of its answers.

Two metrics come from here: ``kpi.satisfaction`` (the mean score of the surveys
answered in the period) and ``kpi.survey_response_rate`` (the share of the surveys
sent in the period that were answered). The job ``kpi.quarterly_surveys`` sends the
quarterly surveys on the first working day of a quarter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, exists, literal, select, update

from core.calendar import add_working_days
from core.clock import COMPANY_TIMEZONE
from core.contrib import Job, NotificationTemplate
from core.db import utcnow
from core.labels import N_
from core.models import Customer, Order, User
from core.notify import ToCustomer, notify
from core.services import audit
from core.settings import get_setting, session_registry
from plugins.kpi import flow
from plugins.kpi.errors import KpiError
from plugins.kpi.hookspecs import ORDER_DIMENSIONS, Dimension, Metric, Period
from plugins.kpi.models import SURVEY_KINDS, KpiSurvey, KpiSurveyAnswer

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.orm import Session

    from core.contrib import Transition

#: The logistics step where the customer confirms receipt ("delivered" for the survey).
RECEIPT_STEP = "logistics.receipt"
#: The questions a survey may ask (setting ``kpi.surveys.questions`` picks and orders them).
QUESTIONS = {
    "quality": N_("Product quality"),
    "delivery": N_("Delivery (on time, complete, undamaged)"),
    "service": N_("Service and responsiveness"),
    "value": N_("Value for money"),
    "communication": N_("Communication"),
}
#: The score labels of the form (1–5).
SCORES = {
    1: N_("1 — very dissatisfied"),
    2: N_("2 — dissatisfied"),
    3: N_("3 — neutral"),
    4: N_("4 — satisfied"),
    5: N_("5 — very satisfied"),
}
MAX_COMMENT = 2000

NOT_FOUND = N_("This survey does not exist.")
EXPIRED = N_("This survey expired on %(date)s; it can no longer be answered.")
ALREADY_ANSWERED = N_("This survey has already been answered.")
SCORE_INVALID = N_("Give question %(question)s a score from 1 to 5.")
UNKNOWN_QUESTION = N_("The survey has no question %(question)s.")
COMMENT_TOO_LONG = N_("The comment is longer than %(max)s characters.")
ORDER_NOT_FOUND = N_("Order %(order)s was not found.")
ORDER_NOT_DONE = N_("Order %(order)s is not delivered or completed yet; it cannot be surveyed.")
SURVEY_EXISTS = N_("A survey was already sent for order %(order)s.")
FORBIDDEN = N_("You need the permission %(permission)s.")

SURVEY_INVITATION = NotificationTemplate(
    "kpi.survey_invitation",
    label=N_("KPI: satisfaction survey invitation (to the customer)"),
    subject={
        "zh_CN": "{% if order %}订单 {{ order.number }} {% else %}{{ quarter }} {% endif %}客户满意度调查",
        "en": "{% if order %}Order {{ order.number }}: {% else %}{{ quarter }}: {% endif %}"
        "customer satisfaction survey",
    },
    body={
        "zh_CN": (
            "{{ recipient }}，您好：\n\n"
            "{% if order %}感谢您的订单 {{ order.number }}。{% else %}感谢您在过去一段时间对我们的支持。{% endif %}"
            "请花一分钟为我们的{{ questions_zh }}打分（1–5 分），并留下您的意见：\n{{ link }}\n\n"
            "调查在 {{ valid_until }} 前有效，需要登录客户门户后填写。\n\n{{ company.name if company else '' }}"
        ),
        "en": (
            "Dear {{ recipient }},\n\n"
            "{% if order %}Thank you for order {{ order.number }}. {% else %}Thank you for your business. {% endif %}"
            "Please take a minute to score our {{ questions_en }} (1–5) and tell us what you think:\n{{ link }}\n\n"
            "The survey is open until {{ valid_until }}; log in to the customer portal to answer it.\n\n"
            "{{ company.name if company else '' }}"
        ),
    },
    plugin="kpi",
)

NOTIFICATIONS: tuple[NotificationTemplate, ...] = (SURVEY_INVITATION,)

_QUESTIONS_ZH = {
    "quality": "产品质量",
    "delivery": "交付",
    "service": "服务",
    "value": "性价比",
    "communication": "沟通",
}


# --- helpers -------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    """The SHA-256 (hex) of a survey token: what is stored and looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


def questions(session: Session) -> list[str]:
    """The configured question codes (setting ``kpi.surveys.questions``), known ones, in order, once each."""
    raw = str(get_setting(session, flow.SURVEY_QUESTIONS) or "")
    codes: list[str] = []
    for part in raw.split(","):
        code = part.strip()
        if code in QUESTIONS and code not in codes:
            codes.append(code)
    return codes or list(QUESTIONS)[:4]


def _company_day(moment: dt.datetime) -> dt.date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(COMPANY_TIMEZONE).date()


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def survey_link(session: Session, token: str) -> str:
    """The absolute URL of the survey form (``core.public_url`` + path when sent by a job)."""
    from core.notify import absolute_url

    return absolute_url(session, f"/kpi/surveys/{token}")


def quarter_of(day: dt.date) -> tuple[dt.date, str]:
    """The first day of ``day``'s quarter and its label (``2026Q4``)."""
    number = (day.month - 1) // 3 + 1
    return dt.date(day.year, 3 * number - 2, 1), f"{day.year}Q{number}"


def _create(
    session: Session,
    kind: str,
    key: str,
    customer: Customer,
    order: Order | None,
    *,
    quarter: str = "",
    actor: User | None = None,
) -> KpiSurvey | None:
    """Send one survey (None when ``key`` was sent already); the invitation goes in the same transaction."""
    if session.scalar(select(KpiSurvey.id).where(KpiSurvey.key == key)) is not None:
        return None
    token = secrets.token_urlsafe(32)
    now = utcnow()
    valid_days = int(get_setting(session, flow.SURVEY_VALID_DAYS))
    survey = KpiSurvey(
        kind=kind,
        key=key,
        customer_id=customer.id,
        order_id=order.id if order is not None else None,
        token_hash=token_hash(token),
        sent_at=now,
        expires_at=now + dt.timedelta(days=valid_days),
    )
    session.add(survey)
    session.flush()
    codes = questions(session)
    notify(
        session,
        SURVEY_INVITATION.name,
        to=ToCustomer(customer.id),
        order=order,
        context={
            "link": survey_link(session, token),
            "quarter": quarter,
            "valid_until": _company_day(survey.expires_at or now).isoformat(),
            "questions_zh": "、".join(_QUESTIONS_ZH.get(code, code) for code in codes),
            "questions_en": ", ".join(QUESTIONS[code].lower() for code in codes),
        },
        dedupe_key=f"{SURVEY_INVITATION.name}:{key}",
    )
    audit.record(session, actor, "kpi_survey", survey.id, "sent", {"key": key}, order_id=survey.order_id)
    return survey


# --- sending -------------------------------------------------------------------------------


def send_order_survey(session: Session, order: Order, *, actor: User | None = None) -> KpiSurvey | None:
    """Send ``order``'s satisfaction survey to its customer, once (key ``order:<id>``).

    Returns the new survey, or None when it was sent before or the customer is
    deactivated. Nothing is committed; the invitation is queued in the same transaction.
    """
    customer = session.get(Customer, order.customer_id)
    if customer is None or not customer.active:
        return None
    return _create(session, "order", f"order:{order.id}", customer, order, actor=actor)


def send_survey_for(session: Session, actor: User, order_id: int) -> KpiSurvey:
    """Staff send an order's survey by hand (``kpi.feedback.manage``; the order in their scope).

    404 for an order outside the actor's scope, 409 for an order not yet delivered or
    completed (status ``completed``, or past the receipt step) or already surveyed.
    """
    from core.security.scopes import order_scope

    if not actor.can(flow.FEEDBACK_MANAGE):
        raise KpiError("forbidden", FORBIDDEN, 403, permission=flow.FEEDBACK_MANAGE)
    order = session.scalar(select(Order).where(Order.id == order_id, order_scope(actor))) if order_id else None
    if order is None:
        raise KpiError("not_found", ORDER_NOT_FOUND, 404, {"order_id": ["Not found."]}, order=order_id)
    if order.status != "completed" and not _received(session, order):
        raise KpiError("state", ORDER_NOT_DONE, 409, order=order.number)
    survey = send_order_survey(session, order, actor=actor)
    if survey is None:
        raise KpiError("state", SURVEY_EXISTS, 409, order=order.number)
    return survey


def _received(session: Session, order: Order) -> bool:
    from core.models import OrderTransition

    return (
        session.scalar(
            select(OrderTransition.id).where(
                OrderTransition.order_id == order.id, OrderTransition.from_step == RECEIPT_STEP
            )
        )
        is not None
    )


def on_transitioned(session: Session, order: Order, transition: Transition) -> None:
    """Send the order's survey when the setting's moment is reached.

    ``delivery`` (default): when the order leaves logistics' receipt step (the customer
    confirmed receipt) — or, when logistics is not enabled, when it is completed;
    ``completion``: when it is completed; ``off``: never.
    """
    trigger = str(get_setting(session, flow.SURVEY_TRIGGER))
    if trigger == "off" or transition.to_status in ("cancelled", "rejected"):
        return
    completed = transition.to_status == "completed" and transition.from_status != "completed"
    if trigger == "completion":
        due = completed
    elif RECEIPT_STEP in session_registry(session).steps:
        due = transition.from_step == RECEIPT_STEP and transition.to_step != RECEIPT_STEP
    else:
        due = completed
    if due:
        send_order_survey(session, order)


def _first_working_day(session: Session, day: dt.date) -> dt.date:
    return add_working_days(session, day, 0)


def send_quarterly(session: Session, now: dt.datetime) -> int:
    """On the first working day of a quarter, send the quarterly survey to each active customer.

    Active: an active customer with an order created (and submitted) within the last
    ``kpi.surveys.quarterly_active_days`` days. Key ``quarterly:<customer>:<2026Q4>``, so
    a second run sends nothing. Returns how many surveys were sent (0 on other days).
    """
    today = _company_day(now)
    start, label = quarter_of(today)
    if _first_working_day(session, start) != today:
        return 0
    days = int(get_setting(session, flow.QUARTERLY_ACTIVE_DAYS))
    since = _aware(now) - dt.timedelta(days=days)
    recent = exists(
        select(Order.id).where(Order.customer_id == Customer.id, Order.created_at >= since, Order.status != "draft")
    )
    sent = set(session.scalars(select(KpiSurvey.customer_id).where(KpiSurvey.key.like(f"quarterly:%:{label}"))))
    count = 0
    for customer in session.scalars(select(Customer).where(Customer.active.is_(True), recent).order_by(Customer.id)):
        if customer.id in sent:
            continue
        if _create(session, "quarterly", f"quarterly:{customer.id}:{label}", customer, None, quarter=label):
            count += 1
    return count


def _quarterly_job(session: Session, now: dt.datetime) -> int:
    return send_quarterly(session, now)


#: The scheduled jobs of surveys.
JOBS: tuple[Job, ...] = (
    Job(
        "kpi.quarterly_surveys",
        "daily:08:00",
        _quarterly_job,
        plugin="kpi",
        label=N_("KPI: quarterly satisfaction surveys (first working day of a quarter)"),
    ),
)


# --- answering -----------------------------------------------------------------------------


def survey_by_token(session: Session, user: User | None, token: str) -> KpiSurvey:
    """The survey of ``token`` if ``user`` is its customer's portal user; 404 otherwise (nothing revealed)."""
    survey = None
    if token and len(token) <= 200:
        survey = session.scalar(select(KpiSurvey).where(KpiSurvey.token_hash == token_hash(token)))
    return _own(survey, user)


def own_survey(session: Session, user: User | None, survey_id: int) -> KpiSurvey:
    """Survey ``survey_id`` if ``user`` is its customer's portal user; 404 otherwise."""
    survey = session.get(KpiSurvey, survey_id) if 0 < survey_id < 2**63 else None
    return _own(survey, user)


def _own(survey: KpiSurvey | None, user: User | None) -> KpiSurvey:
    if (
        survey is None
        or user is None
        or not user.active
        or user.customer_id is None
        or user.customer_id != survey.customer_id
    ):
        raise KpiError("not_found", NOT_FOUND, 404)
    return survey


def is_expired(survey: KpiSurvey, now: dt.datetime | None = None) -> bool:
    """Whether the survey's link has expired (an answered survey is never "expired")."""
    if survey.answered_at is not None or survey.expires_at is None:
        return False
    return _aware(survey.expires_at) <= (now or utcnow())


def check_answerable(survey: KpiSurvey) -> None:
    """409 when answered already, 410 when expired."""
    if survey.answered_at is not None:
        raise KpiError("already_answered", ALREADY_ANSWERED, 409)
    if is_expired(survey):
        raise KpiError("expired", EXPIRED, 410, date=_company_day(survey.expires_at or utcnow()).isoformat())


def _score(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 2:
        number = int(value.strip())
    elif isinstance(value, Decimal) and value == value.to_integral_value():
        number = int(value)
    else:
        return None
    return number if 1 <= number <= 5 else None


def validate_scores(session: Session, scores: Mapping[str, Any]) -> dict[str, int]:
    """Each configured question's score as an int 1–5; a 422 naming the first bad or missing one."""
    codes = questions(session)
    if not isinstance(scores, Mapping):
        raise KpiError("invalid", SCORE_INVALID, 422, {"scores": ["Give an object of scores."]}, question=codes[0])
    for code in scores:
        if code not in codes:
            raise KpiError("invalid", UNKNOWN_QUESTION, 422, {f"scores.{code}": ["Not a question."]}, question=code)
    valid: dict[str, int] = {}
    for code in codes:
        number = _score(scores.get(code))
        if number is None:
            raise KpiError(
                "invalid",
                SCORE_INVALID,
                422,
                {f"scores.{code}": ["An integer from 1 to 5 is required."]},
                question=code,
            )
        valid[code] = number
    return valid


def answer(session: Session, user: User, survey: KpiSurvey, scores: Mapping[str, Any], comment: str) -> KpiSurvey:
    """Record ``user``'s answers to ``survey`` (already found as theirs); see :func:`answer_survey`."""
    check_answerable(survey)
    valid = validate_scores(session, scores)
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT:
        raise KpiError("invalid", COMMENT_TOO_LONG, 422, {"comment": ["Too long."]}, max=MAX_COMMENT)
    mean = (Decimal(sum(valid.values())) / len(valid)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    now = utcnow()
    result = session.execute(
        update(KpiSurvey)
        .where(KpiSurvey.id == survey.id, KpiSurvey.answered_at.is_(None))
        .values(answered_at=now, answered_by_id=user.id, score=mean, comment=text)
        .execution_options(synchronize_session=False)
    )
    claimed = getattr(result, "rowcount", 0)
    if not claimed:  # answered meanwhile (another tab, another worker)
        raise KpiError("already_answered", ALREADY_ANSWERED, 409)
    session.add_all(KpiSurveyAnswer(survey_id=survey.id, question=code, score=value) for code, value in valid.items())
    session.flush()
    session.refresh(survey)
    audit.record(session, user, "kpi_survey", survey.id, "answered", {"score": mean, **valid}, order_id=survey.order_id)
    return survey


def answer_survey(session: Session, user: User, token: str, scores: Mapping[str, Any], comment: str = "") -> KpiSurvey:
    """The customer's portal user answers the survey of ``token``: a score 1–5 per question and a comment.

    404 for an unknown token or another customer's survey (nothing revealed), 410 when
    expired, 409 when answered already, 422 naming the question without a valid score.
    Stores one :class:`KpiSurveyAnswer` per question and the mean as the survey's score.
    """
    return answer(session, user, survey_by_token(session, user, token), scores, comment)


def answer_own_survey(
    session: Session, user: User, survey_id: int, scores: Mapping[str, Any], comment: str = ""
) -> KpiSurvey:
    """Like :func:`answer_survey`, reached from the portal's "My surveys" list by id."""
    return answer(session, user, own_survey(session, user, survey_id), scores, comment)


def open_surveys(session: Session, user: User) -> list[KpiSurvey]:
    """The portal user's customer's surveys not answered and not expired, newest first."""
    if user.customer_id is None:
        return []
    rows = session.scalars(
        select(KpiSurvey)
        .where(
            KpiSurvey.customer_id == user.customer_id,
            KpiSurvey.answered_at.is_(None),
            (KpiSurvey.expires_at.is_(None)) | (KpiSurvey.expires_at > utcnow()),
        )
        .order_by(KpiSurvey.sent_at.desc(), KpiSurvey.id.desc())
    )
    return list(rows)


def survey_scope(user: User | None) -> Any:
    """WHERE clause: surveys ``user`` may read — through their order, or their customer without one."""
    from sqlalchemy import and_, or_

    from core.security.scopes import customer_visible, order_visible

    return or_(
        and_(KpiSurvey.order_id.is_not(None), order_visible(KpiSurvey.order_id, user)),
        and_(KpiSurvey.order_id.is_(None), customer_visible(KpiSurvey.customer_id, user)),
    )


# --- metrics -------------------------------------------------------------------------------


def satisfaction_facts(period: Period) -> Select[Any]:
    """``kpi.satisfaction`` facts: each survey answered in the period, its mean score, den 1."""
    return select(
        KpiSurvey.order_id.label("order_id"),
        KpiSurvey.customer_id.label("customer_id"),
        KpiSurvey.score.label("num"),
        literal(1).label("den"),
        KpiSurvey.kind.label("survey_kind"),
    ).where(period.within(KpiSurvey.answered_at), KpiSurvey.score.is_not(None))


def response_facts(period: Period) -> Select[Any]:
    """``kpi.survey_response_rate`` facts: each survey sent in the period, 1 when answered."""
    return select(
        KpiSurvey.order_id.label("order_id"),
        KpiSurvey.customer_id.label("customer_id"),
        case((KpiSurvey.answered_at.is_not(None), 1), else_=0).label("num"),
        literal(1).label("den"),
        KpiSurvey.kind.label("survey_kind"),
    ).where(period.within(KpiSurvey.sent_at))


def _kind_names(session: Session, values: Sequence[Any]) -> Mapping[Any, str]:
    return {value: SURVEY_KINDS.get(value, value) for value in values}


#: The fact dimension of the survey metrics: after an order, or quarterly.
DIMENSIONS: tuple[Dimension, ...] = (Dimension("survey_kind", N_("Survey kind"), None, _kind_names),)

METRICS: tuple[Metric, ...] = (
    Metric(
        "kpi.satisfaction",
        N_("Customer satisfaction"),
        "score",
        "higher",
        N_(
            "For each survey answered in the period (after an order or quarterly): the mean of its "
            "1–5 question scores; the average over those surveys."
        ),
        satisfaction_facts,
        aggregate="mean",
        target=Decimal("4.5"),
        dimensions=(*ORDER_DIMENSIONS, "survey_kind"),
    ),
    Metric(
        "kpi.survey_response_rate",
        N_("Survey response rate"),
        "percent",
        "higher",
        N_("Surveys sent in the period that have been answered, divided by the surveys sent in the period, × 100."),
        response_facts,
        aggregate="percent",
        target=Decimal("60"),
        dimensions=(*ORDER_DIMENSIONS, "survey_kind"),
    ),
)
