"""API: KPI targets, reward/alert rules and the monthly evaluation (``/api/v1/kpi/...``, KP-2).

What the targets and rules screens do: list and set targets per metric for the company,
a branch or a department (``PUT``), remove one (``DELETE``); list, add and change rules;
read a month's results, mark one done, evaluate a month now.

Thin endpoints over :mod:`plugins.kpi.targets` and :mod:`plugins.kpi.rules`: 403
without the permission, 404 for an unknown metric, target, rule or result (or a result
out of the caller's scope), 409 for a result already done, 422 with per-field
``details`` for bad input; a refused request changes nothing.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import select

from core.api.auth import api_user, require_api_user
from core.api.common import commit, errors, json_body, read_json
from core.labels import N_
from core.settings import session_registry
from core.web import db
from plugins.kpi import flow, rules, targets
from plugins.kpi.errors import KpiError
from plugins.kpi.models import KpiRule, KpiRuleResult, KpiTarget

blp = Blueprint(
    "kpi_api_targets",
    __name__,
    url_prefix="/api/v1/kpi",
    description="KPI: targets and rules.",
)
blp.before_request(require_api_user)

FORBIDDEN = N_("You may not see this.")
UNKNOWN_FIELD = N_("Unknown field.")
INVALID = N_("The request is not valid.")


# --------------------------------------------------------------------------- schemas


class TargetSchema(Schema):
    """A stored target: company-wide (no branch, no department), per branch, department or both."""

    id = fields.Integer(dump_only=True)
    metric = fields.String(required=True, metadata={"example": "logistics.on_time_delivery"})
    branch_id = fields.Integer(allow_none=True)
    department_id = fields.Integer(allow_none=True)
    value = fields.Decimal(as_string=True, required=True, metadata={"example": "98"})


class MetricTargetsSchema(Schema):
    """A metric's default target and the company-wide one that applies."""

    metric = fields.String(required=True)
    default = fields.Decimal(as_string=True, allow_none=True)
    company = fields.Decimal(as_string=True, allow_none=True, metadata={"description": "The company row, if any."})
    targets = fields.List(fields.Nested(TargetSchema), required=True)


class TargetListSchema(Schema):
    """Every enabled metric with its targets."""

    items = fields.List(fields.Nested(MetricTargetsSchema), required=True)


class RuleSchema(Schema):
    """A reward or alert rule."""

    id = fields.Integer(dump_only=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "reward or alert"})
    metric = fields.String(required=True)
    comparison = fields.String(required=True, metadata={"description": ">=, >, <= or <"})
    threshold = fields.Decimal(as_string=True, required=True)
    months = fields.Integer(metadata={"description": "Consecutive months, 1–12 (default 1)."})
    subject = fields.String(metadata={"description": "company (default), branch, department or salesperson"})
    note = fields.String()
    active = fields.Boolean()


class RuleListSchema(Schema):
    """Every rule."""

    items = fields.List(fields.Nested(RuleSchema), required=True)


class ResultSchema(Schema):
    """A team or person a rule found in a month."""

    id = fields.Integer(required=True)
    rule_id = fields.Integer(required=True)
    rule = fields.String(required=True)
    kind = fields.String(required=True)
    metric = fields.String(required=True)
    month = fields.String(required=True, metadata={"example": "2026-10"})
    subject_kind = fields.String(required=True)
    subject_key = fields.String(required=True)
    subject_name = fields.String(required=True)
    values = fields.List(fields.String(), required=True, metadata={"description": "Oldest month first."})
    status = fields.String(required=True)
    note = fields.String(required=True)
    done_at = fields.DateTime(allow_none=True)


class ResultListSchema(Schema):
    """A month's results."""

    month = fields.String(required=True)
    items = fields.List(fields.Nested(ResultSchema), required=True)


class MonthQuerySchema(Schema):
    """Which month."""

    month = fields.String(metadata={"description": "YYYY-MM; default the previous month."})


class DoneSchema(Schema):
    """Marking a result done."""

    note = fields.String(metadata={"example": "Team recognised at the monthly meeting"})


class EvaluationSchema(Schema):
    """A month to evaluate."""

    month = fields.String(required=True, metadata={"example": "2026-10"})


# --------------------------------------------------------------------------- helpers


def _require(permission: str) -> Any:
    user = api_user()
    if not user.can(permission):
        raise KpiError("forbidden", FORBIDDEN, 403)
    return user


def _known(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(key for key in body if key not in allowed)
    if unknown:
        raise KpiError("invalid", INVALID, 422, {key: [UNKNOWN_FIELD] for key in unknown})


def _target_out(row: KpiTarget) -> dict[str, Any]:
    return {
        "id": row.id,
        "metric": row.metric,
        "branch_id": row.branch_id,
        "department_id": row.department_id,
        "value": row.value,
    }


def _rule_out(rule: KpiRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "kind": rule.kind,
        "metric": rule.metric,
        "comparison": rule.comparison,
        "threshold": rule.threshold,
        "months": rule.months,
        "subject": rule.subject,
        "note": rule.note,
        "active": rule.active,
    }


def _result_out(result: KpiRuleResult) -> dict[str, Any]:
    return {
        "id": result.id,
        "rule_id": result.rule_id,
        "rule": result.rule.name,
        "kind": result.rule.kind,
        "metric": result.rule.metric,
        "month": f"{result.month:%Y-%m}",
        "subject_kind": result.subject_kind,
        "subject_key": result.subject_key,
        "subject_name": result.subject_name,
        "values": [v for v in result.values.split(",") if v],
        "status": result.status,
        "note": result.note,
        "done_at": result.done_at,
    }


def _month(value: Any) -> Any:
    from core.clock import company_now

    if not value:
        return rules.previous_month(company_now().date())
    return rules.parse_month(str(value))


# --------------------------------------------------------------------------- targets


@blp.route("/targets", methods=["GET"])
@blp.response(200, TargetListSchema)
@errors(blp, 401, 403)
def list_targets() -> dict[str, Any]:
    """Every enabled metric with its default target, the company's and the branch/department targets."""
    _require(flow.DASHBOARD_READ)
    session = db()
    items = []
    for row in targets.targets_table(session, session_registry(session)):
        stored = ([row.company] if row.company else []) + [t for _name, t in row.overrides]
        items.append(
            {
                "metric": row.metric.key,
                "default": row.default,
                "company": row.company.value if row.company else None,
                "targets": [_target_out(t) for t in stored],
            }
        )
    return {"items": items}


@blp.route("/targets", methods=["PUT"])
@blp.doc(
    requestBody=json_body(TargetSchema, example={"metric": "logistics.on_time_delivery", "branch_id": 2, "value": "98"})
)
@blp.response(200, TargetSchema)
@errors(blp, 400, 401, 403, 404, 415, 422)
def put_target() -> dict[str, Any]:
    """Set a target (one per metric, branch and department: an existing one is replaced)."""
    body = read_json()
    _known(body, ("metric", "branch_id", "department_id", "value"))
    row = targets.set_target(
        db(),
        api_user(),
        str(body.get("metric") or ""),
        body.get("value"),  # type: ignore[arg-type]
        branch_id=body.get("branch_id"),
        department_id=body.get("department_id"),
    )
    commit()
    return _target_out(row)


@blp.route("/targets/<int:target_id>", methods=["DELETE"])
@blp.response(204)
@errors(blp, 401, 403, 404)
def delete_target(target_id: int) -> None:
    """Remove a target; the next less specific one applies again."""
    targets.clear_target(db(), api_user(), target_id)
    commit()


# --------------------------------------------------------------------------- rules


@blp.route("/rules", methods=["GET"])
@blp.response(200, RuleListSchema)
@errors(blp, 401, 403)
def list_rules() -> dict[str, Any]:
    """Every rule, active ones first."""
    _require(flow.EVALUATION_READ)
    stmt = select(KpiRule).order_by(KpiRule.active.desc(), KpiRule.id)
    return {"items": [_rule_out(r) for r in db().scalars(stmt)]}


@blp.route("/rules", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        RuleSchema,
        example={
            "name": "准时交货率连续三个月 100%",
            "kind": "reward",
            "metric": "logistics.on_time_delivery",
            "comparison": ">=",
            "threshold": "100",
            "months": 3,
            "subject": "branch",
        },
    )
)
@blp.response(201, RuleSchema)
@errors(blp, 400, 401, 403, 404, 415, 422)
def post_rule() -> tuple[dict[str, Any], int]:
    """Add a rule; the metric must be split by the subject (branch, department, salesperson)."""
    body = read_json()
    user = api_user()
    if not user.can(flow.RULES_MANAGE):
        raise KpiError("forbidden", rules.FORBIDDEN, 403)
    rule = rules.create_rule(db(), user, body)
    commit()
    return _rule_out(rule), 201


@blp.route("/rules/<int:rule_id>", methods=["PATCH"])
@blp.doc(requestBody=json_body(RuleSchema, example={"threshold": "95", "active": False}))
@blp.response(200, RuleSchema)
@errors(blp, 400, 401, 403, 404, 415, 422)
def patch_rule(rule_id: int) -> dict[str, Any]:
    """Change a rule; fields left out stay; ``active: false`` stops it."""
    body = read_json()
    rule = rules.update_rule(db(), api_user(), rule_id, body)
    commit()
    return _rule_out(rule)


# --------------------------------------------------------------------------- evaluation


@blp.route("/rule-results", methods=["GET"])
@blp.arguments(MonthQuerySchema, location="query", unknown="raise")
@blp.response(200, ResultListSchema)
@errors(blp, 401, 403, 422)
def list_results(args: dict[str, Any]) -> dict[str, Any]:
    """A month's results the caller may read (rewards first)."""
    user = _require(flow.EVALUATION_READ)
    month = _month(args.get("month"))
    return {"month": f"{month:%Y-%m}", "items": [_result_out(r) for r in rules.month_results(db(), user, month)]}


@blp.route("/rule-results/<int:result_id>/done", methods=["POST"])
@blp.doc(requestBody=json_body(DoneSchema, required=False, example={"note": "月度例会表彰"}))
@blp.response(200, ResultSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def result_done(result_id: int) -> dict[str, Any]:
    """Mark a result done with a note (the team recognised, the alert followed up)."""
    body = read_json(required=False)
    _known(body, ("note",))
    result = rules.mark_done(db(), api_user(), result_id, str(body.get("note") or ""))
    commit()
    return _result_out(result)


@blp.route("/evaluations", methods=["POST"])
@blp.doc(requestBody=json_body(EvaluationSchema, example={"month": "2026-10"}))
@blp.response(200, ResultListSchema)
@errors(blp, 400, 401, 403, 415, 422)
def evaluate() -> dict[str, Any]:
    """Evaluate the active rules for a month now; idempotent (found results stay, new ones are added)."""
    body = read_json()
    _known(body, ("month",))
    user = api_user()
    if not user.can(flow.RULES_MANAGE):
        raise KpiError("forbidden", rules.FORBIDDEN, 403)
    month = rules.parse_month(str(body.get("month") or ""))
    results = rules.evaluate_now(db(), user, month)
    commit()
    return {"month": f"{month:%Y-%m}", "items": [_result_out(r) for r in results]}
