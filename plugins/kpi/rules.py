"""Reward and alert rules and the monthly evaluation (KP-2).

A rule reads "<metric> <comparison> <threshold> for <months> consecutive months, for
<subject>": *reward* each branch whose on-time delivery is at least 100 three months
running; *alert* when the company's collection rate is below 80 two months running.
The subject is the company, or each branch, department or salesperson — the metric
must then be split by that dimension (``branch``, ``department``, ``salesperson``).

:func:`evaluate_month` evaluates every active rule for a month: the metric over the
``months`` consecutive months ending with it, computed company-wide
(:data:`plugins.kpi.engine.EVERYONE`) in SQL (one aggregate per month, split by the
subject's dimension). A subject matches when *every* month has a value and the value
satisfies the comparison — a month without data breaks the run. Each match is stored
once as a :class:`plugins.kpi.models.KpiRuleResult` (unique per rule, month and
subject), so evaluating again adds only new matches; the general manager gets one
summary notice per month. The job ``kpi.evaluate_rules`` (daily 06:00) evaluates the
previous month on the first three days of each month, so a day the worker was down
is made up, and never twice the same result.

The results are the monthly evaluation: teams and people to recognise (reward) or
follow up (alert), marked done with a note (:func:`mark_done`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Integer, and_, cast, false, or_, select, true

from core.clock import company_now
from core.contrib import Job, NotificationTemplate
from core.labels import N_
from core.models import User
from core.notify import ToRole, notify
from core.services import audit
from plugins.kpi import flow
from plugins.kpi.engine import EVERYONE, breakdown, collect_metrics, get_metric, measure, metric_dimensions
from plugins.kpi.errors import KpiError
from plugins.kpi.hookspecs import Metric
from plugins.kpi.models import COMPARISONS, RULE_KINDS, RULE_SUBJECTS, KpiRule, KpiRuleResult
from plugins.kpi.periods import period_of, trend

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.plugins import Registry

#: The fields a rule has (create, update).
FIELDS = ("name", "kind", "metric", "comparison", "threshold", "months", "subject", "note", "active")
#: Subject → the dimension the metric must be split by (the company needs none).
SUBJECT_DIMENSIONS = {"company": None, "branch": "branch", "department": "department", "salesperson": "salesperson"}
#: The evaluation job re-evaluates the previous month on the first this-many days of a month.
EVALUATION_DAYS = 3

FORBIDDEN = N_("You may not manage reward and alert rules.")
INVALID = N_("The rule is not valid.")
RULE_NOT_FOUND = N_("Rule %(id)s was not found.")
RESULT_NOT_FOUND = N_("Rule result %(id)s was not found.")
ALREADY_DONE = N_("This result was already marked done.")
REQUIRED = N_("Required.")
TOO_LONG = N_("Too long.")
BAD_KIND = N_("Choose reward or alert.")
BAD_COMPARISON = N_("Choose one of >=, >, <=, <.")
BAD_SUBJECT = N_("Choose company, branch, department or salesperson.")
BAD_MONTHS = N_("Enter a whole number of months from 1 to 12.")
NOT_A_NUMBER = N_("Not a number.")
NO_DIMENSION = N_("This metric cannot be split by this subject.")
UNKNOWN_METRIC = N_("No enabled plugin provides this metric.")
UNKNOWN_FIELD = N_("Unknown field.")
NOT_A_MONTH = N_("%(value)s is not a month (YYYY-MM).")

RULE_RESULTS = NotificationTemplate(
    "kpi.rule_results",
    label=N_("The monthly evaluation found teams to reward or follow up (to the general manager)"),
    subject={
        "zh_CN": "{{ month }} 月度考核：{{ rewards }} 项奖励，{{ alerts }} 项预警",
        "en": "Monthly evaluation {{ month }}: {{ rewards }} rewards, {{ alerts }} alerts",
    },
    body={
        "zh_CN": (
            "{{ month }} 的奖励/预警规则考核结果：\n"
            "{% for r in results %}- {{ '奖励' if r.kind == 'reward' else '预警' }}：{{ r.rule }} — "
            "{{ r.subject }}（{{ r.values }}）\n{% endfor %}"
            "请在 KPI › 月度考核 中处理。\n"
        ),
        "en": (
            "Results of the reward and alert rules for {{ month }}:\n"
            "{% for r in results %}- {{ 'Reward' if r.kind == 'reward' else 'Alert' }}: {{ r.rule }} — "
            "{{ r.subject }} ({{ r.values }})\n{% endfor %}"
            "Please follow them up under KPI › Monthly evaluation.\n"
        ),
    },
    plugin="kpi",
)

NOTIFICATIONS: tuple[NotificationTemplate, ...] = (RULE_RESULTS,)


def _registry(session: Session) -> Registry:
    from core.settings import session_registry

    return session_registry(session)


def _require(actor: User | None, permission: str = flow.RULES_MANAGE) -> User:
    if actor is None or not actor.can(permission):
        raise KpiError("forbidden", FORBIDDEN, 403)
    return actor


# --- rules ------------------------------------------------------------------------------


def _clean(session: Session, data: Mapping[str, Any], current: KpiRule | None) -> dict[str, Any]:
    """The rule's fields after ``data`` is applied to ``current`` (all of them), or a refusal.

    Unknown fields and every bad value are reported at once (422 with details), except a
    metric no enabled plugin provides, which is a 404 like everywhere in kpi.
    """
    unknown = sorted(key for key in data if key not in FIELDS)
    if unknown:
        raise KpiError("invalid", INVALID, 422, {key: [UNKNOWN_FIELD] for key in unknown})
    base: dict[str, Any] = (
        {key: getattr(current, key) for key in FIELDS}
        if current is not None
        else {"months": 1, "subject": "company", "note": "", "active": True}
    )
    merged = {**base, **{key: value for key, value in data.items()}}
    details: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}

    name = str(merged.get("name") or "").strip()
    if not name:
        details["name"] = [REQUIRED]
    elif len(name) > 200:
        details["name"] = [TOO_LONG]
    clean["name"] = name
    kind = str(merged.get("kind") or "")
    if kind not in RULE_KINDS:
        details["kind"] = [BAD_KIND]
    clean["kind"] = kind
    comparison = str(merged.get("comparison") or "")
    if comparison not in COMPARISONS:
        details["comparison"] = [BAD_COMPARISON]
    clean["comparison"] = comparison
    try:
        threshold = Decimal(str(merged.get("threshold")).strip())
        if not threshold.is_finite() or abs(threshold) >= Decimal("1e12"):
            raise ArithmeticError
        clean["threshold"] = threshold
    except (ArithmeticError, ValueError):
        details["threshold"] = [NOT_A_NUMBER]
    months = merged.get("months")
    try:
        if isinstance(months, bool) or (isinstance(months, Decimal | float) and months != int(months)):
            raise ValueError
        months_int = int(str(months).strip()) if not isinstance(months, int) else months
        if not 1 <= months_int <= 12:
            raise ValueError
        clean["months"] = months_int
    except (TypeError, ValueError):
        details["months"] = [BAD_MONTHS]
    subject = str(merged.get("subject") or "")
    if subject not in RULE_SUBJECTS:
        details["subject"] = [BAD_SUBJECT]
    clean["subject"] = subject
    note = str(merged.get("note") or "").strip()
    if len(note) > 1000:
        details["note"] = [TOO_LONG]
    clean["note"] = note
    active = merged.get("active", True)
    clean["active"] = active if isinstance(active, bool) else str(active).lower() in ("1", "true", "on", "yes")

    key = str(merged.get("metric") or "").strip()
    if not key:
        details["metric"] = [REQUIRED]
    else:
        metric = get_metric(_registry(session), key)  # 404 for a metric nobody provides
        clean["metric"] = metric.key
        dimension = SUBJECT_DIMENSIONS.get(subject)
        if dimension is not None:
            from plugins.kpi.engine import collect_dimensions_of

            present = {d.key for d in metric_dimensions(metric, collect_dimensions_of(session))}
            if dimension not in present:
                details["subject"] = [NO_DIMENSION]
    if details:
        raise KpiError("invalid", INVALID, 422, details)
    return clean


def get_rule(session: Session, rule_id: int) -> KpiRule:
    """The rule ``rule_id``; a 404 :class:`KpiError` when there is none."""
    rule = session.get(KpiRule, rule_id)
    if rule is None:
        raise KpiError("not_found", RULE_NOT_FOUND, 404, id=rule_id)
    return rule


def create_rule(session: Session, actor: User | None, data: Mapping[str, Any]) -> KpiRule:
    """Add a reward or alert rule (``kpi.rules.manage``); everything is checked first, then audited.

    ``data``: ``name``, ``kind`` (reward/alert), ``metric`` (a key), ``comparison``
    (``>=``, ``>``, ``<=``, ``<``), ``threshold`` (a number), ``months`` (1–12),
    ``subject`` (company/branch/department/salesperson; the metric must be split by it),
    ``note``, ``active``. ``actor`` None is the system (the demo): no permission check.
    """
    if actor is not None:
        _require(actor)
    clean = _clean(session, data, None)
    rule = KpiRule(**clean, created_by_id=actor.id if actor is not None else None)
    session.add(rule)
    session.flush()
    audit.record(session, actor, "kpi_rule", rule.id, "create", {k: str(v) for k, v in clean.items()})
    return rule


def update_rule(session: Session, actor: User | None, rule_id: int, data: Mapping[str, Any]) -> KpiRule:
    """Change a rule's fields (those left out stay); results already found stay as they are."""
    _require(actor)
    rule = get_rule(session, rule_id)
    clean = _clean(session, data, rule)
    changes = {
        key: [str(getattr(rule, key)), str(value)] for key, value in clean.items() if getattr(rule, key) != value
    }
    for key, value in clean.items():
        setattr(rule, key, value)
    session.flush()
    if changes:
        audit.record(session, actor, "kpi_rule", rule.id, "update", changes)
    return rule


def deactivate_rule(session: Session, actor: User | None, rule_id: int) -> KpiRule:
    """Stop evaluating a rule (its results stay); reactivate with ``update_rule(..., {"active": True})``."""
    _require(actor)
    rule = get_rule(session, rule_id)
    if rule.active:
        rule.active = False
        session.flush()
        audit.record(session, actor, "kpi_rule", rule.id, "deactivate", {"active": [True, False]})
    return rule


# --- evaluation ---------------------------------------------------------------------------


def compare(value: Decimal, comparison: str, threshold: Decimal) -> bool:
    """Whether ``value`` satisfies ``comparison`` (``>=``, ``>``, ``<=``, ``<``) against ``threshold``."""
    if comparison == ">=":
        return value >= threshold
    if comparison == ">":
        return value > threshold
    if comparison == "<=":
        return value <= threshold
    if comparison == "<":
        return value < threshold
    raise ValueError(f"unknown comparison {comparison!r}")


def month_start(day: dt.date) -> dt.date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def parse_month(value: str, field: str = "month") -> dt.date:
    """``2026-10`` (or any date in it) as the month's first day; a 422 :class:`KpiError` otherwise."""
    text = (value or "").strip()
    try:
        if len(text) == 7:
            return dt.date.fromisoformat(f"{text}-01")
        return month_start(dt.date.fromisoformat(text))
    except ValueError:
        raise KpiError("invalid", NOT_A_MONTH, 422, {field: ["Not a month (YYYY-MM)."]}, value=text) from None


def _format(value: Decimal, places: int) -> str:
    return f"{value:.{places}f}"


def _subject_values(
    session: Session, rule: KpiRule, metric: Metric, month: dt.date
) -> dict[str, tuple[str, list[Decimal | None]]]:
    """Each subject's name and values over the rule's months (oldest first; None: no data)."""
    periods = trend(period_of("month", month), rule.months)
    if rule.subject == "company":
        values = [measure(session, metric, p, viewer=EVERYONE).value for p in periods]
        return {"": ("", values)}
    dimension = SUBJECT_DIMENSIONS[rule.subject]
    assert dimension is not None
    found: dict[str, tuple[str, list[Decimal | None]]] = {}
    for index, p in enumerate(periods):
        for part in breakdown(session, metric, p, dimension, viewer=EVERYONE):
            if part.key is None:
                continue
            key = str(part.key)
            name, values = found.setdefault(key, (part.name, [None] * len(periods)))
            values[index] = part.value.value
            found[key] = (part.name or name, values)
    return found


def evaluate_rule(session: Session, rule: KpiRule, month: dt.date, metric: Metric) -> list[KpiRuleResult]:
    """The results of one rule for ``month``: existing ones kept, new matches added."""
    existing = {
        (r.subject_kind, r.subject_key): r
        for r in session.scalars(
            select(KpiRuleResult).where(KpiRuleResult.rule_id == rule.id, KpiRuleResult.month == month)
        )
    }
    results: list[KpiRuleResult] = []
    for key, (name, values) in sorted(_subject_values(session, rule, metric, month).items()):
        if any(v is None for v in values):
            continue
        if not all(compare(v, rule.comparison, rule.threshold) for v in values if v is not None):
            continue
        result = existing.get((rule.subject, key))
        if result is None:
            result = KpiRuleResult(
                rule_id=rule.id,
                month=month,
                subject_kind=rule.subject,
                subject_key=key,
                subject_name=name[:200],
                values=",".join(_format(v, metric.places) for v in values if v is not None)[:500],
            )
            session.add(result)
            session.flush()
        results.append(result)
    return results


def evaluate_month(session: Session, month_first_day: dt.date) -> list[KpiRuleResult]:
    """Evaluate every active rule for the month starting ``month_first_day``; idempotent.

    Returns the month's results of the active rules (those found before included); rules
    whose metric's plugin is disabled are skipped. When new results were found the
    general manager gets one summary notice (deduplicated by month and count).
    """
    month = month_start(month_first_day)
    metrics = collect_metrics(_registry(session))
    before = {row for row in session.scalars(select(KpiRuleResult.id).where(KpiRuleResult.month == month))}
    results: list[KpiRuleResult] = []
    for rule in session.scalars(select(KpiRule).where(KpiRule.active.is_(True)).order_by(KpiRule.id)):
        metric = metrics.get(rule.metric)
        if metric is None:
            continue
        if SUBJECT_DIMENSIONS.get(rule.subject) not in (None, *metric.dimensions):
            continue
        results.extend(evaluate_rule(session, rule, month, metric))
    if any(result.id not in before for result in results):
        _tell(session, month, results)
    return results


def _tell(session: Session, month: dt.date, results: Sequence[KpiRuleResult]) -> None:
    label = f"{month:%Y-%m}"
    notify(
        session,
        RULE_RESULTS.name,
        to=ToRole("general_manager"),
        context={
            "month": label,
            "rewards": sum(1 for r in results if r.rule.kind == "reward"),
            "alerts": sum(1 for r in results if r.rule.kind == "alert"),
            "results": [
                {
                    "kind": r.rule.kind,
                    "rule": r.rule.name,
                    "subject": r.subject_name or "—",
                    "values": r.values,
                }
                for r in results
            ],
        },
        dedupe_key=f"kpi.rule_results:{label}:{len(results)}",
    )


def previous_month(day: dt.date) -> dt.date:
    """The first day of the month before ``day``'s."""
    return month_start(month_start(day) - dt.timedelta(days=1))


def run(session: Session, now: dt.datetime | None = None) -> list[KpiRuleResult]:
    """The daily job: on the first :data:`EVALUATION_DAYS` days of a month, evaluate the previous month.

    Idempotent, so running it on three days (or twice a day) only makes up for a day
    the worker missed; on other days it does nothing.
    """
    moment = now if now is not None else company_now()
    today = moment.astimezone(company_now().tzinfo).date() if moment.tzinfo else moment.date()
    if today.day > EVALUATION_DAYS:
        return []
    return evaluate_month(session, previous_month(today))


JOBS: tuple[Job, ...] = (
    Job(
        "kpi.evaluate_rules",
        "daily:06:00",
        run,
        plugin="kpi",
        label=N_("Evaluate the reward and alert rules for the previous month"),
    ),
)


# --- results ------------------------------------------------------------------------------


def results_scope(user: User | None) -> ColumnElement[bool]:
    """The rule results ``user`` may read: all with data scope ``all``; else the company's,
    their branch's or department's, and their own (as salesperson)."""
    if user is None or not user.active or not user.can(flow.EVALUATION_READ):
        return false()
    scopes = {role.data_scope for role in user.roles}
    if "all" in scopes:
        return true()
    clauses: list[ColumnElement[bool]] = [
        KpiRuleResult.subject_kind == "company",
        and_(KpiRuleResult.subject_kind == "salesperson", KpiRuleResult.subject_key == str(user.id)),
    ]
    if "branch" in scopes and user.branch_id is not None:
        clauses.append(and_(KpiRuleResult.subject_kind == "branch", KpiRuleResult.subject_key == str(user.branch_id)))
        branch_people = select(User.id).where(User.branch_id == user.branch_id)
        clauses.append(
            and_(
                KpiRuleResult.subject_kind == "salesperson",
                cast(KpiRuleResult.subject_key, Integer).in_(branch_people),
            )
        )
    if "department" in scopes and user.department_id is not None:
        clauses.append(
            and_(KpiRuleResult.subject_kind == "department", KpiRuleResult.subject_key == str(user.department_id))
        )
    return or_(*clauses)


def month_results(session: Session, user: User | None, month: dt.date) -> list[KpiRuleResult]:
    """The month's results ``user`` may read: rewards first, then alerts, by rule and subject."""
    stmt = (
        select(KpiRuleResult)
        .join(KpiRule, KpiRule.id == KpiRuleResult.rule_id)
        .where(KpiRuleResult.month == month_start(month), results_scope(user))
        .order_by(KpiRule.kind.desc(), KpiRule.name, KpiRuleResult.subject_name, KpiRuleResult.id)
    )
    return list(session.scalars(stmt))


def get_result(session: Session, user: User | None, result_id: int) -> KpiRuleResult:
    """One result ``user`` may read; 404 when there is none or it is out of their scope."""
    result = session.scalar(select(KpiRuleResult).where(KpiRuleResult.id == result_id, results_scope(user)))
    if result is None:
        raise KpiError("not_found", RESULT_NOT_FOUND, 404, id=result_id)
    return result


def mark_done(session: Session, actor: User | None, result_id: int, note: str) -> KpiRuleResult:
    """Mark a result done — the team recognised, the alert followed up — with a note; audited.

    404 for a result the actor may not read, 403 without ``kpi.rules.manage``, 409 when
    it is done already, 422 for a note longer than 1000 characters.
    """
    if actor is None:
        raise KpiError("forbidden", FORBIDDEN, 403)
    result = get_result(session, actor, result_id)
    _require(actor)
    text = (note or "").strip()
    if len(text) > 1000:
        raise KpiError("invalid", INVALID, 422, {"note": [TOO_LONG]})
    if result.status == "done":
        raise KpiError("conflict", ALREADY_DONE, 409)
    result.status = "done"
    result.note = text
    result.done_by_id = actor.id
    result.done_at = company_now()
    session.flush()
    audit.record(session, actor, "kpi_rule_result", result.id, "done", {"status": ["open", "done"], "note": text})
    return result


def evaluate_now(session: Session, actor: User | None, month: dt.date) -> list[KpiRuleResult]:
    """Evaluate a month on request (``kpi.rules.manage``; not a future month); audited."""
    _require(actor)
    first = month_start(month)
    if first > month_start(company_now().date()):
        raise KpiError(
            "invalid",
            N_("The month %(month)s has not begun."),
            422,
            {"month": ["In the future."]},
            month=f"{first:%Y-%m}",
        )
    results = evaluate_month(session, first)
    audit.record(session, actor, "kpi_rule", None, "evaluate", {"month": f"{first:%Y-%m}", "results": len(results)})
    return results


__all__ = [
    "FIELDS",
    "JOBS",
    "NOTIFICATIONS",
    "compare",
    "create_rule",
    "deactivate_rule",
    "evaluate_month",
    "evaluate_now",
    "evaluate_rule",
    "get_result",
    "get_rule",
    "mark_done",
    "month_results",
    "parse_month",
    "previous_month",
    "results_scope",
    "run",
    "update_rule",
]
