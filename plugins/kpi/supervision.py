"""Supervision (KP-5): monthly random samples of orders, a checklist per order, findings to closure.

Why: the procedures ask for periodic, random checks that each order went through the
right hands, in time, with its documents — and that what was found gets corrected.

- :func:`draw_sample` picks, in SQL (``ORDER BY random() LIMIT n``), ``n`` of the orders
  received in a month (created in it, drafts excluded) — one sample per month — and
  creates a checklist (:data:`plugins.kpi.models.CHECK_ITEMS`) for each sampled order,
  pre-filled by :func:`auto_checks` from the order's transition log;
- the checker gives each point a verdict (:func:`record_check`); an order is checked
  when all its points have one (:func:`complete_sample_order`);
- a :class:`KpiFinding` has an owner and a correction deadline; the owner (or a
  supervisor) records the correction (:func:`correct_finding`); another supervisor
  verifies and closes it (:func:`close_finding`) or reopens it (:func:`reopen_finding`);
- jobs: ``kpi.draw_sample`` (daily 07:30: the previous month's sample when missing) and
  ``kpi.findings_overdue`` (daily 08:15: owners of open findings past their deadline).

The automatic ``found`` text is stored as JSON lines of catalogue msgids with values
(:func:`found_lines` renders them in the reader's language), so a checklist drawn by the
job at night reads in Chinese for one supervisor and in English for another.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlalchemy import Select, false, func, or_, select
from sqlalchemy.orm import Session, selectinload

from core.calendar import add_working_days, working_calendar
from core.clock import COMPANY_TIMEZONE, company_now, day_start
from core.contrib import Action, Job, NotificationTemplate
from core.labels import N_
from core.models import AuditLog, IssuedDocument, Order, OrderAttachment, OrderTransition, User
from core.notify import ToRole, ToUser, notify
from core.security.scopes import order_visible
from core.services import audit
from core.settings import get_setting, session_registry
from core.workflow import CANCEL, REJECT, REOPEN, TERMINAL_STEPS
from plugins.kpi import flow
from plugins.kpi.errors import KpiError
from plugins.kpi.models import CHECK_ITEMS, KpiCheck, KpiFinding, KpiSample, KpiSampleOrder

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

#: Working days an order may wait in one step before the "sla" check reports it.
STEP_LIMIT_DAYS = 2
#: The longest description, correction or note accepted.
MAX_TEXT = 4000
MAX_NOTE = 1000
#: The document whose issue the "documents" check looks for once an order is confirmed.
CONFIRMATION = "order_confirmation"

SAMPLE_DRAWN = "kpi.sample_drawn"
FINDING_ASSIGNED = "kpi.finding_assigned"
FINDING_OVERDUE = "kpi.finding_overdue"

NOTIFICATIONS: tuple[NotificationTemplate, ...] = (
    NotificationTemplate(
        SAMPLE_DRAWN,
        subject={
            "zh_CN": "监督抽查：{{ month }} 已抽取 {{ size }} 个订单",
            "en": "Supervision: {{ size }} orders sampled for {{ month }}",
        },
        body={
            "zh_CN": "{{ recipient }}，您好：\n\n{{ month }} 的监督抽查样本已抽取，共 {{ size }} 个订单"
            "（从 {{ population }} 个订单中随机抽取）。请在“关键绩效指标 → 监督抽查”中逐项检查。",
            "en": "Dear {{ recipient }},\n\nThe supervision sample for {{ month }} was drawn: {{ size }} orders"
            " picked at random from {{ population }}. Please check them under KPI → Supervision.",
        },
        plugin="kpi",
        label=N_("KPI: supervision sample drawn"),
    ),
    NotificationTemplate(
        FINDING_ASSIGNED,
        subject={
            "zh_CN": "监督抽查发现问题，请于 {{ due_date }} 前整改",
            "en": "Supervision finding to correct by {{ due_date }}",
        },
        body={
            "zh_CN": "{{ recipient }}，您好：\n\n监督抽查发现以下问题{% if order_number %}（订单 {{ order_number }}）"
            "{% endif %}，由您负责整改，整改期限 {{ due_date }}：\n\n{{ description }}\n\n"
            "请在“关键绩效指标 → 监督发现”中填写整改情况。",
            "en": "Dear {{ recipient }},\n\nA supervision check found the following"
            "{% if order_number %} (order {{ order_number }}){% endif %}; you are to correct it by"
            " {{ due_date }}:\n\n{{ description }}\n\nPlease record the correction under KPI → Findings.",
        },
        plugin="kpi",
        label=N_("KPI: supervision finding assigned"),
    ),
    NotificationTemplate(
        FINDING_OVERDUE,
        subject={
            "zh_CN": "监督发现整改已逾期（期限 {{ due_date }}）",
            "en": "Supervision finding overdue (due {{ due_date }})",
        },
        body={
            "zh_CN": "{{ recipient }}，您好：\n\n以下监督发现"
            "{% if order_number %}（订单 {{ order_number }}）{% endif %}"
            "的整改期限 {{ due_date }} 已过，尚未整改：\n\n{{ description }}\n\n请尽快整改并填写整改情况。",
            "en": "Dear {{ recipient }},\n\nThe correction of this supervision finding"
            "{% if order_number %} (order {{ order_number }}){% endif %} was due on {{ due_date }} and is"
            " still open:\n\n{{ description }}\n\nPlease correct it and record the correction.",
        },
        plugin="kpi",
        label=N_("KPI: supervision finding overdue"),
    ),
)


# --- found text -----------------------------------------------------------------------


def _line(msgid: str, **params: Any) -> dict[str, Any]:
    return {"m": msgid, "p": params}


def _encode(lines: list[dict[str, Any]]) -> str:
    return json.dumps(lines, ensure_ascii=False) if lines else ""


def found_lines(found: str, translate: Callable[..., str] | None = None) -> list[str]:
    """The automatic check's ``found`` text as sentences, translated by ``translate`` (gettext).

    Without ``translate`` the sentences are English. Text that is not the JSON kpi writes
    (typed by hand, or empty) comes back as it is.
    """
    if not found:
        return []
    try:
        lines = json.loads(found)
    except ValueError:
        return [found]
    if not isinstance(lines, list):
        return [found]
    out: list[str] = []
    for line in lines:
        msgid, params = str(line.get("m", "")), dict(line.get("p") or {})
        out.append(translate(msgid, **params) if translate else (msgid % params if params else msgid))
    return out


# --- helpers --------------------------------------------------------------------------


def company_today() -> dt.date:
    """Today's date in the company's time zone."""
    return company_now().date()


_today = company_today


def _local_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(COMPANY_TIMEZONE).date() if moment.tzinfo else moment.date()


def _next_month(first: dt.date) -> dt.date:
    return (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def parse_month(text: str | None) -> dt.date | None:
    """``2026-10`` (or a date in the month) as the month's first day; None when not a month."""
    raw = (text or "").strip()
    match = _MONTH.match(raw)
    try:
        if match:
            return dt.date(int(match.group(1)), int(match.group(2)), 1)
        return dt.date.fromisoformat(raw).replace(day=1) if raw else None
    except ValueError:
        return None


def previous_month(day: dt.date) -> dt.date:
    """The first day of the month before ``day``'s."""
    return (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def _require(actor: User | None, permission: str) -> User:
    if actor is None or not actor.active or not actor.can(permission):
        raise KpiError("forbidden", N_("You may not do this (permission %(permission)s)."), 403, permission=permission)
    return actor


def _text(value: Any, field: str, limit: int, *, required: bool) -> str:
    text = "" if value is None else str(value).strip()
    if required and not text:
        raise KpiError("invalid", N_("Please fill in %(field)s."), 422, {field: ["Required."]}, field=field)
    if len(text) > limit:
        raise KpiError(
            "invalid",
            N_("%(field)s is too long (at most %(limit)s characters)."),
            422,
            {field: [f"At most {limit} characters."]},
            field=field,
            limit=limit,
        )
    return text


def month_orders(month_first_day: dt.date) -> Select[Any]:
    """The ids of the orders received in the month (created in it, company time; drafts excluded)."""
    return select(Order.id).where(
        Order.created_at >= day_start(month_first_day),
        Order.created_at < day_start(_next_month(month_first_day)),
        Order.status != "draft",
    )


# --- samples --------------------------------------------------------------------------


def draw_sample(session: Session, actor: User | None, month_first_day: dt.date, size: int | None = None) -> KpiSample:
    """Draw the random sample of ``month_first_day``'s orders and fill each order's checklist.

    ``actor`` None is the monthly job; a person needs ``kpi.supervision.manage`` (403).
    ``size`` defaults to the setting ``kpi.supervision.sample_size`` and is capped at the
    number of orders received in the month. Refused: a day other than the 1st, a month
    not over yet or without orders, a size outside 1–500 (422); a month already sampled (409).
    The sample is company-wide (a supervisor sees every order).
    """
    if actor is not None:
        _require(actor, flow.SUPERVISION_MANAGE)
    if not isinstance(month_first_day, dt.date) or month_first_day.day != 1:
        raise KpiError(
            "invalid", N_("Give the first day of a month."), 422, {"month": ["Not the first day of a month."]}
        )
    if month_first_day >= _today().replace(day=1):
        raise KpiError(
            "invalid",
            N_("The month %(month)s is not over yet."),
            422,
            {"month": ["Only a past month can be sampled."]},
            month=month_first_day.strftime("%Y-%m"),
        )
    if size is None:
        size = int(get_setting(session, flow.SAMPLE_SIZE))
    elif isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 500:
        raise KpiError(
            "invalid", N_("The sample size must be a whole number from 1 to 500."), 422, {"size": ["1 to 500."]}
        )
    if session.scalar(select(KpiSample.id).where(KpiSample.month == month_first_day)) is not None:
        raise KpiError(
            "exists",
            N_("The orders of %(month)s were sampled already."),
            409,
            month=month_first_day.strftime("%Y-%m"),
        )
    population = session.scalar(select(func.count()).select_from(month_orders(month_first_day).subquery())) or 0
    if not population:
        raise KpiError(
            "invalid",
            N_("No orders were received in %(month)s."),
            422,
            {"month": ["No orders."]},
            month=month_first_day.strftime("%Y-%m"),
        )
    picked = list(session.scalars(month_orders(month_first_day).order_by(func.random()).limit(min(size, population))))
    sample = KpiSample(month=month_first_day, size=len(picked), drawn_by_id=actor.id if actor else None)
    session.add(sample)
    session.flush()
    for order_id in sorted(picked):
        sample_order = KpiSampleOrder(sample_id=sample.id, order_id=order_id)
        session.add(sample_order)
        session.flush()
        found = auto_checks(session, sample_order)
        for item in CHECK_ITEMS:
            session.add(KpiCheck(sample_order_id=sample_order.id, item=item, found=found.get(item, "")))
    session.flush()
    audit.record(
        session,
        actor,
        "kpi_sample",
        sample.id,
        "draw",
        {"month": month_first_day, "size": len(picked), "population": population},
    )
    notify(
        session,
        SAMPLE_DRAWN,
        to=[ToRole(flow.SUPERVISOR)],
        context={"month": month_first_day.strftime("%Y-%m"), "size": len(picked), "population": population},
        dedupe_key=f"kpi.sample_drawn:{month_first_day.isoformat()}",
    )
    return sample


def can_read_samples(viewer: User | None) -> bool:
    """Whether ``viewer`` may read samples and checklists (``kpi.supervision.read`` or manage)."""
    return (
        viewer is not None
        and viewer.active
        and (viewer.can(flow.SUPERVISION_READ) or viewer.can(flow.SUPERVISION_MANAGE))
    )


def samples_query(viewer: User | None) -> Select[tuple[KpiSample]]:
    """Every sample, newest month first; 403 without ``kpi.supervision.read``."""
    if not can_read_samples(viewer):
        raise KpiError(
            "forbidden", N_("You may not do this (permission %(permission)s)."), 403, permission=flow.SUPERVISION_READ
        )
    return select(KpiSample).order_by(KpiSample.month.desc())


def get_sample(session: Session, viewer: User | None, sample_id: int) -> KpiSample:
    """Sample ``sample_id`` with its orders and checks (403 without the permission, 404 unknown)."""
    samples_query(viewer)
    sample = session.scalar(
        select(KpiSample)
        .where(KpiSample.id == sample_id)
        .options(selectinload(KpiSample.orders).selectinload(KpiSampleOrder.checks))
    )
    if sample is None:
        raise KpiError("not_found", N_("There is no sample %(id)s."), 404, id=sample_id)
    return sample


def visible_sample_orders(
    session: Session, viewer: User | None, sample: KpiSample
) -> list[tuple[KpiSampleOrder, Order]]:
    """The sampled orders of ``sample`` that lie in ``viewer``'s data scope, with their orders."""
    ids = [so.order_id for so in sample.orders]
    if not ids:
        return []
    orders = {o.id: o for o in session.scalars(select(Order).where(Order.id.in_(ids), order_visible(Order.id, viewer)))}
    return [(so, orders[so.order_id]) for so in sample.orders if so.order_id in orders]


@dataclass(frozen=True)
class SampleProgress:
    """How far the checking of a sample is: orders checked, failed checks, open findings."""

    checked: int
    failed: int
    open_findings: int


def _counts(rows: Iterable[Any]) -> dict[int, int]:
    return {int(row[0]): int(row[1]) for row in rows}


def progress(session: Session, sample_ids: Iterable[int]) -> dict[int, SampleProgress]:
    """The progress of each sample in ``sample_ids`` (three grouped queries)."""
    ids = list(sample_ids)
    if not ids:
        return {}
    checked: dict[int, int] = _counts(
        session.execute(
            select(KpiSampleOrder.sample_id, func.count())
            .where(KpiSampleOrder.sample_id.in_(ids), KpiSampleOrder.checked_at.is_not(None))
            .group_by(KpiSampleOrder.sample_id)
        ).all()
    )
    failed: dict[int, int] = _counts(
        session.execute(
            select(KpiSampleOrder.sample_id, func.count())
            .join(KpiCheck, KpiCheck.sample_order_id == KpiSampleOrder.id)
            .where(KpiSampleOrder.sample_id.in_(ids), KpiCheck.passed.is_(False))
            .group_by(KpiSampleOrder.sample_id)
        ).all()
    )
    findings: dict[int, int] = _counts(
        session.execute(
            select(KpiSampleOrder.sample_id, func.count())
            .join(KpiFinding, KpiFinding.sample_order_id == KpiSampleOrder.id)
            .where(KpiSampleOrder.sample_id.in_(ids), KpiFinding.status != "closed")
            .group_by(KpiSampleOrder.sample_id)
        ).all()
    )
    return {i: SampleProgress(checked.get(i, 0), failed.get(i, 0), findings.get(i, 0)) for i in ids}


# --- automatic checks -----------------------------------------------------------------


def _actions_by_step(session: Session, order: Order) -> Callable[[str, str], Action | None]:
    registry = session_registry(session)
    extras: dict[str, Action] = {}
    for group in registry.hook.ordo_order_actions(order=order, user=None, session=session):
        for action in group or ():
            extras[action.name] = action
    core = {a.name: a for a in (CANCEL, REJECT, REOPEN)}

    def find(step_key: str, name: str) -> Action | None:
        step = registry.steps.get(step_key)
        if step is not None:
            for action in step.actions:
                if action.name == name:
                    return action
        return extras.get(name) or core.get(name)

    return find


def _automatic(session: Session, step_key: str, name: str) -> bool:
    step = session_registry(session).steps.get(step_key)
    return step is not None and any(code == name for code, _label in step.automatic)


def _check_roles(session: Session, order: Order, transitions: list[OrderTransition]) -> list[dict[str, Any]]:
    find = _actions_by_step(session, order)
    users = {
        u.id: u
        for u in session.scalars(select(User).where(User.id.in_({t.actor_id for t in transitions if t.actor_id})))
    }
    lines: list[dict[str, Any]] = []
    violations = 0
    for t in transitions:
        when = _local_date(t.at).isoformat()
        if t.actor_id is None:
            lines.append(
                _line(
                    N_("%(date)s %(action)s (%(step)s): made by the system."),
                    date=when,
                    action=t.action,
                    step=t.from_step,
                )
            )
            continue
        user = users.get(t.actor_id)
        who = user.name if user is not None else f"#{t.actor_id}"
        action = find(t.from_step, t.action)
        if action is None or not action.permission:
            if _automatic(session, t.from_step, t.action):
                lines.append(
                    _line(
                        N_("%(date)s %(action)s (%(step)s) by %(user)s: an automatic move."),
                        date=when,
                        action=t.action,
                        step=t.from_step,
                        user=who,
                    )
                )
            else:
                lines.append(
                    _line(
                        N_("%(date)s %(action)s (%(step)s) by %(user)s: no permission required."),
                        date=when,
                        action=t.action,
                        step=t.from_step,
                        user=who,
                    )
                )
            continue
        if user is not None and user.can(action.permission):
            lines.append(
                _line(
                    N_("%(date)s %(action)s (%(step)s) by %(user)s: holds %(permission)s — ok."),
                    date=when,
                    action=t.action,
                    step=t.from_step,
                    user=who,
                    permission=action.permission,
                )
            )
        else:
            violations += 1
            lines.append(
                _line(
                    N_("VIOLATION: %(date)s %(action)s (%(step)s) by %(user)s, who lacks %(permission)s."),
                    date=when,
                    action=t.action,
                    step=t.from_step,
                    user=who,
                    permission=action.permission,
                )
            )
    if not transitions:
        lines.append(_line(N_("No transitions recorded.")))
    lines.insert(
        0,
        _line(
            N_("%(count)s of %(total)s manual moves by someone without the permission."),
            count=violations,
            total=sum(1 for t in transitions if t.actor_id is not None),
        ),
    )
    return lines


def _check_sla(
    session: Session, order: Order, transitions: list[OrderTransition], today: dt.date
) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    stays: list[tuple[str, dt.date, dt.date, bool]] = []
    for before, after in pairwise(transitions):
        if before.to_step == after.from_step:
            stays.append((after.from_step, _local_date(before.at), _local_date(after.at), False))
    if transitions and transitions[-1].to_step not in TERMINAL_STEPS and transitions[-1].to_step == order.step:
        stays.append((order.step, _local_date(transitions[-1].at), max(today, _local_date(transitions[-1].at)), True))
    if not stays:
        return [_line(N_("No step was left yet; nothing to time."))]
    calendar = working_calendar(session, start=min(s[1] for s in stays), end=max(s[2] for s in stays))
    late = 0
    for step, start, end, current in stays:
        days = calendar.working_days_between(start, end)
        over = days > STEP_LIMIT_DAYS
        late += over
        if current:
            msgid = (
                N_("VIOLATION: still in %(step)s after %(days)s working days (limit %(limit)s).")
                if over
                else N_("In %(step)s for %(days)s working days so far (limit %(limit)s) — ok.")
            )
        else:
            msgid = (
                N_("VIOLATION: %(step)s took %(days)s working days (limit %(limit)s).")
                if over
                else N_("%(step)s took %(days)s working days (limit %(limit)s) — ok.")
            )
        lines.append(_line(msgid, step=step, days=days, limit=STEP_LIMIT_DAYS))
    lines.insert(0, _line(N_("%(count)s of %(total)s steps over their time limit."), count=late, total=len(stays)))
    return lines


def _check_documents(session: Session, order: Order, transitions: list[OrderTransition]) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    documents = list(
        session.execute(
            select(IssuedDocument.document, IssuedDocument.filename, IssuedDocument.issued_at)
            .where(IssuedDocument.order_id == order.id)
            .order_by(IssuedDocument.issued_at)
        ).all()
    )
    confirmed = order.status in ("confirmed", "completed") or any(t.to_status == "confirmed" for t in transitions)
    for name, filename, issued_at in documents:
        lines.append(
            _line(
                N_("%(document)s issued on %(date)s (%(file)s)."),
                document=name,
                date=_local_date(issued_at).isoformat(),
                file=filename,
            )
        )
    if confirmed and not any(name == CONFIRMATION for name, _f, _a in documents):
        lines.append(_line(N_("VIOLATION: the order was confirmed but no order confirmation was issued.")))
    elif not documents:
        lines.append(_line(N_("No documents issued (not required before confirmation).")))
    attachments = (
        session.scalar(
            select(func.count()).where(OrderAttachment.order_id == order.id, OrderAttachment.removed_at.is_(None))
        )
        or 0
    )
    lines.append(_line(N_("%(count)s attachments on the order."), count=attachments))
    return lines


def auto_checks(session: Session, sample_order: KpiSampleOrder, *, today: dt.date | None = None) -> dict[str, str]:
    """What the system finds for each checklist point of ``sample_order`` (``found`` texts by item).

    - ``roles``: each move made by a person (the transition log's actor) needed the
      permission of its action (the step's action in the registry, or cancel/reject/re-open);
      the actor must hold it — by their roles today;
    - ``sla``: each stay in a step, from the move into it to the move out of it (or today,
      for the step the order waits in), counted in the company's working days, against
      :data:`STEP_LIMIT_DAYS`;
    - ``documents``: the documents issued for the order (an order confirmation is expected
      once it was confirmed) and its attachments;
    - ``data``: left to the checker (empty).

    Lines starting "VIOLATION" are what the checker should look at.
    """
    order = session.get(Order, sample_order.order_id)
    if order is None:
        return {}
    transitions = list(
        session.scalars(
            select(OrderTransition)
            .where(OrderTransition.order_id == order.id)
            .order_by(OrderTransition.at, OrderTransition.id)
        )
    )
    return {
        "roles": _encode(_check_roles(session, order, transitions)),
        "sla": _encode(_check_sla(session, order, transitions, today or _today())),
        "documents": _encode(_check_documents(session, order, transitions)),
        "data": "",
    }


# --- checks -----------------------------------------------------------------------------


def _sample_order(session: Session, actor: User, sample_order_id: int) -> KpiSampleOrder:
    sample_order = session.scalar(
        select(KpiSampleOrder)
        .where(KpiSampleOrder.id == sample_order_id, order_visible(KpiSampleOrder.order_id, actor))
        .options(selectinload(KpiSampleOrder.checks))
    )
    if sample_order is None:
        raise KpiError("not_found", N_("There is no sampled order %(id)s."), 404, id=sample_order_id)
    return sample_order


def record_check(session: Session, actor: User | None, check_id: int, passed: bool, note: str = "") -> KpiCheck:
    """Give checklist point ``check_id`` a verdict: passed or failed (a failure needs a note).

    403 without ``kpi.supervision.manage``; 404 unknown or its order out of scope; 422 a
    verdict that is not true/false or a missing note. When every point of the order has
    a verdict the order counts as checked (:func:`complete_sample_order`).
    """
    user = _require(actor, flow.SUPERVISION_MANAGE)
    check = session.get(KpiCheck, check_id)
    if check is None:
        raise KpiError("not_found", N_("There is no check %(id)s."), 404, id=check_id)
    sample_order = _sample_order(session, user, check.sample_order_id)
    if not isinstance(passed, bool):
        raise KpiError("invalid", N_("Choose passed or failed."), 422, {"passed": ["true or false."]})
    text = _text(note, "note", MAX_NOTE, required=not passed)
    before = {"passed": check.passed, "note": check.note}
    check.passed, check.note = passed, text
    audit.record(
        session,
        user,
        "kpi_check",
        check.id,
        "check",
        {"item": check.item, "before": before, "passed": passed, "note": text},
        order_id=sample_order.order_id,
    )
    session.flush()
    if all(c.passed is not None for c in sample_order.checks) and sample_order.checked_at is None:
        complete_sample_order(session, user, sample_order.id)
    return check


def complete_sample_order(session: Session, actor: User | None, sample_order_id: int) -> KpiSampleOrder:
    """Mark a sampled order checked (now, by ``actor``); 409 while a point has no verdict."""
    user = _require(actor, flow.SUPERVISION_MANAGE)
    sample_order = _sample_order(session, user, sample_order_id)
    missing = [c.item for c in sample_order.checks if c.passed is None]
    if missing:
        raise KpiError(
            "incomplete",
            N_("Give every checklist point a verdict first (missing: %(items)s)."),
            409,
            {"checks": missing},
            items=", ".join(missing),
        )
    sample_order.checked_at = dt.datetime.now(dt.UTC)
    sample_order.checked_by_id = user.id
    audit.record(session, user, "kpi_sample_order", sample_order.id, "complete", {}, order_id=sample_order.order_id)
    session.flush()
    return sample_order


# --- findings ---------------------------------------------------------------------------

#: Filters of the findings list.
FINDING_FILTERS = ("status", "owner_id", "overdue")


def can_read_findings(viewer: User | None) -> bool:
    """Whether ``viewer`` sees every finding in their scope (not only their own)."""
    return can_read_samples(viewer)


def findings_query(
    viewer: User | None,
    *,
    status: str | None = None,
    owner_id: int | None = None,
    overdue: bool = False,
    today: dt.date | None = None,
) -> Select[tuple[KpiFinding]]:
    """The findings ``viewer`` may see, filtered, newest first.

    Readers of supervision see every finding without an order and those whose order lies
    in their scope; anyone else sees only the findings they own. ``overdue`` keeps open
    findings whose deadline has passed. An unknown status is a 422.
    """
    stmt = select(KpiFinding)
    if viewer is None or not viewer.active:
        stmt = stmt.where(false())
    elif can_read_findings(viewer):
        stmt = stmt.where(
            or_(
                KpiFinding.owner_id == viewer.id,
                KpiFinding.order_id.is_(None),
                order_visible(KpiFinding.order_id, viewer),
            )
        )
    else:
        stmt = stmt.where(KpiFinding.owner_id == viewer.id)
    if status:
        if status not in ("open", "corrected", "closed"):
            raise KpiError(
                "invalid", N_("%(value)s is not a finding status."), 422, {"status": ["Unknown."]}, value=status
            )
        stmt = stmt.where(KpiFinding.status == status)
    if owner_id is not None:
        stmt = stmt.where(KpiFinding.owner_id == owner_id)
    if overdue:
        stmt = stmt.where(KpiFinding.status == "open", KpiFinding.due_date < (today or _today()))
    return stmt.order_by(KpiFinding.id.desc())


def get_finding(session: Session, viewer: User | None, finding_id: int) -> KpiFinding:
    """Finding ``finding_id`` as ``viewer`` may see it; 404 unknown or not visible."""
    finding = session.scalar(findings_query(viewer).where(KpiFinding.id == finding_id))
    if finding is None:
        raise KpiError("not_found", N_("There is no finding %(id)s."), 404, id=finding_id)
    return finding


def is_overdue(finding: KpiFinding, today: dt.date | None = None) -> bool:
    """Whether ``finding`` is open past its correction deadline."""
    return finding.status == "open" and finding.due_date < (today or _today())


def _owner(session: Session, owner_id: Any) -> User:
    if isinstance(owner_id, bool) or not isinstance(owner_id, int):
        raise KpiError("invalid", N_("Choose the owner of the finding."), 422, {"owner_id": ["Required."]})
    owner = session.get(User, owner_id)
    if owner is None or not owner.active or owner.customer_id is not None:
        raise KpiError(
            "invalid",
            N_("The owner must be an active member of staff."),
            422,
            {"owner_id": ["Not an active staff user."]},
        )
    return owner


def open_finding(
    session: Session,
    actor: User | None,
    *,
    sample_order_id: int | None = None,
    order_id: int | None = None,
    item: str = "",
    description: str,
    owner_id: int,
    due_date: dt.date | None = None,
) -> KpiFinding:
    """Record a finding with its owner and correction deadline and tell the owner.

    ``item`` is a checklist point (roles, sla, documents, data) or "" for another matter;
    the order comes from ``sample_order_id`` when given. ``due_date`` defaults to
    ``kpi.supervision.correction_days`` working days from today. Refused: 403 without
    ``kpi.supervision.manage``; 404 a sampled order or order unknown or out of scope;
    422 a missing description, an inactive or unknown owner, a deadline in the past, an
    unknown item, an order that is not the sampled one.
    """
    user = _require(actor, flow.SUPERVISION_MANAGE)
    sample_order = _sample_order(session, user, sample_order_id) if sample_order_id is not None else None
    if sample_order is not None:
        if order_id is not None and order_id != sample_order.order_id:
            raise KpiError(
                "invalid", N_("The order is not the sampled one."), 422, {"order_id": ["Not the sampled order."]}
            )
        order_id = sample_order.order_id
    order: Order | None = None
    if order_id is not None:
        order = session.scalar(select(Order).where(Order.id == order_id, order_visible(Order.id, user)))
        if order is None:
            raise KpiError("not_found", N_("There is no order %(id)s."), 404, id=order_id)
    if item not in ("", *CHECK_ITEMS):
        raise KpiError("invalid", N_("%(value)s is not a checklist point."), 422, {"item": ["Unknown."]}, value=item)
    text = _text(description, "description", MAX_TEXT, required=True)
    owner = _owner(session, owner_id)
    today = _today()
    if due_date is None:
        due_date = add_working_days(session, today, int(get_setting(session, flow.FINDING_DAYS)))
    elif due_date < today:
        raise KpiError(
            "invalid", N_("The correction deadline cannot lie in the past."), 422, {"due_date": ["In the past."]}
        )
    finding = KpiFinding(
        sample_order_id=sample_order.id if sample_order else None,
        order_id=order.id if order else None,
        item=item,
        description=text,
        owner_id=owner.id,
        due_date=due_date,
        status="open",
        created_by_id=user.id,
    )
    session.add(finding)
    session.flush()
    audit.record(
        session,
        user,
        "kpi_finding",
        finding.id,
        "open",
        {"item": item, "owner_id": owner.id, "due_date": due_date, "description": text},
        order_id=finding.order_id,
    )
    notify(
        session,
        FINDING_ASSIGNED,
        to=[ToUser(owner.id)],
        context=_finding_context(finding, order),
        dedupe_key=f"kpi.finding_assigned:{finding.id}",
    )
    return finding


def _finding_context(finding: KpiFinding, order: Order | None) -> dict[str, Any]:
    return {
        "finding_id": finding.id,
        "order_number": order.number if order else "",
        "description": finding.description,
        "due_date": finding.due_date.isoformat(),
    }


def correct_finding(session: Session, actor: User | None, finding_id: int, correction: str) -> KpiFinding:
    """Record the correction of an open finding: by its owner, or by a supervisor.

    404 unknown or not visible; 403 anyone else; 409 not open; 422 no correction text.
    """
    if actor is None or not actor.active:
        raise KpiError("forbidden", N_("Only the owner or a supervisor may correct a finding."), 403)
    finding = get_finding(session, actor, finding_id)
    if finding.owner_id != actor.id and not actor.can(flow.SUPERVISION_MANAGE):
        raise KpiError("forbidden", N_("Only the owner or a supervisor may correct a finding."), 403)
    if finding.status != "open":
        raise KpiError("state", N_("Only an open finding can be corrected."), 409)
    text = _text(correction, "correction", MAX_TEXT, required=True)
    finding.correction = text
    finding.status = "corrected"
    finding.corrected_at = dt.datetime.now(dt.UTC)
    audit.record(
        session,
        actor,
        "kpi_finding",
        finding.id,
        "correct",
        {"status": ["open", "corrected"], "correction": text},
        order_id=finding.order_id,
    )
    session.flush()
    return finding


def corrected_by(session: Session, finding_id: int) -> int | None:
    """Who recorded the last correction of the finding (from the audit log)."""
    return session.scalar(
        select(AuditLog.actor_id)
        .where(AuditLog.entity == "kpi_finding", AuditLog.entity_id == finding_id, AuditLog.action == "correct")
        .order_by(AuditLog.id.desc())
        .limit(1)
    )


def close_finding(session: Session, actor: User | None, finding_id: int, note: str = "") -> KpiFinding:
    """Close a corrected finding after verifying the correction: a supervisor other than
    the owner and other than who recorded the correction (four eyes).

    403 without ``kpi.supervision.manage`` or for the owner/corrector; 404 unknown; 409 not corrected.
    """
    user = _require(actor, flow.SUPERVISION_MANAGE)
    finding = get_finding(session, user, finding_id)
    if finding.status != "corrected":
        raise KpiError("state", N_("Only a corrected finding can be closed."), 409)
    if user.id in (finding.owner_id, corrected_by(session, finding.id)):
        raise KpiError(
            "forbidden",
            N_("Someone other than the owner and the person who corrected it must verify and close a finding."),
            403,
        )
    text = _text(note, "note", MAX_NOTE, required=False)
    finding.status = "closed"
    finding.closed_by_id = user.id
    finding.closed_at = dt.datetime.now(dt.UTC)
    audit.record(
        session,
        user,
        "kpi_finding",
        finding.id,
        "close",
        {"status": ["corrected", "closed"], "note": text},
        order_id=finding.order_id,
    )
    session.flush()
    return finding


def reopen_finding(
    session: Session, actor: User | None, finding_id: int, reason: str, due_date: dt.date | None = None
) -> KpiFinding:
    """Send a corrected or closed finding back to its owner (the correction did not hold).

    A reason is required; ``due_date`` (default: the correction days from today) is the
    new deadline. 403 without ``kpi.supervision.manage``; 404; 409 an open finding; 422.
    """
    user = _require(actor, flow.SUPERVISION_MANAGE)
    finding = get_finding(session, user, finding_id)
    if finding.status == "open":
        raise KpiError("state", N_("The finding is open already."), 409)
    text = _text(reason, "reason", MAX_NOTE, required=True)
    today = _today()
    if due_date is None:
        due_date = add_working_days(session, today, int(get_setting(session, flow.FINDING_DAYS)))
    elif due_date < today:
        raise KpiError(
            "invalid", N_("The correction deadline cannot lie in the past."), 422, {"due_date": ["In the past."]}
        )
    before = finding.status
    finding.status = "open"
    finding.due_date = due_date
    finding.corrected_at = None
    finding.closed_at = None
    finding.closed_by_id = None
    audit.record(
        session,
        user,
        "kpi_finding",
        finding.id,
        "reopen",
        {"status": [before, "open"], "due_date": due_date},
        reason=text,
        order_id=finding.order_id,
    )
    session.flush()
    if finding.owner_id is not None:
        order = session.get(Order, finding.order_id) if finding.order_id else None
        notify(
            session,
            FINDING_ASSIGNED,
            to=[ToUser(finding.owner_id)],
            context=_finding_context(finding, order),
            dedupe_key=f"kpi.finding_assigned:{finding.id}:{dt.datetime.now(dt.UTC).isoformat()}",
        )
    return finding


# --- jobs -------------------------------------------------------------------------------


def draw_monthly(session: Session, now: dt.datetime) -> KpiSample | None:
    """The job ``kpi.draw_sample``: draw the previous month's sample if it is missing.

    Runs daily so a worker that was down on the 1st catches up the next day; a month
    without orders is skipped (nothing to sample).
    """
    month = previous_month(_local_date(now))
    if session.scalar(select(KpiSample.id).where(KpiSample.month == month)) is not None:
        return None
    if not session.scalar(select(func.count()).select_from(month_orders(month).subquery())):
        return None
    return draw_sample(session, None, month)


def remind_overdue(session: Session, now: dt.datetime) -> int:
    """The job ``kpi.findings_overdue``: tell each owner of an open finding past its deadline, once a day."""
    today = _local_date(now)
    told = 0
    rows = session.execute(
        select(KpiFinding, Order)
        .outerjoin(Order, Order.id == KpiFinding.order_id)
        .where(KpiFinding.status == "open", KpiFinding.due_date < today, KpiFinding.owner_id.is_not(None))
        .order_by(KpiFinding.id)
    ).all()
    for finding, order in rows:
        assert finding.owner_id is not None
        queued = notify(
            session,
            FINDING_OVERDUE,
            to=[ToUser(finding.owner_id)],
            context=_finding_context(finding, order),
            dedupe_key=f"kpi.finding_overdue:{finding.id}:{today.isoformat()}",
        )
        told += 1 if queued is not None else 0
    return told


JOBS: tuple[Job, ...] = (
    Job(
        "kpi.draw_sample",
        "daily:07:30",
        draw_monthly,
        plugin="kpi",
        label=N_("KPI: draw the monthly supervision sample"),
    ),
    Job(
        "kpi.findings_overdue",
        "daily:08:15",
        remind_overdue,
        plugin="kpi",
        label=N_("KPI: remind owners of overdue supervision findings"),
    ),
)

#: Supervision contributes no metric.
METRICS: tuple[Any, ...] = ()

__all__ = [
    "JOBS",
    "NOTIFICATIONS",
    "STEP_LIMIT_DAYS",
    "auto_checks",
    "close_finding",
    "complete_sample_order",
    "correct_finding",
    "draw_sample",
    "findings_query",
    "found_lines",
    "get_finding",
    "get_sample",
    "open_finding",
    "record_check",
    "reopen_finding",
]
