"""Targets per metric for the company, a branch or a department (KP-2).

A metric comes with a default target (``Metric.target``); managers override it with
rows of :class:`plugins.kpi.models.KpiTarget`: one company-wide row (no branch, no
department), one per branch, one per department and one per branch and department.
The target that applies is the most specific row there is::

    branch + department → branch → department → company → the metric's default

:func:`effective_target` looks it up for a branch/department, :func:`viewer_target`
for what a user's dashboard shows (their branch's target when their data scope is
their branch, their department's when it is their department, else the company's).
:func:`set_target` and :func:`clear_target` change targets (``kpi.targets.manage``),
validated before anything changes and audited; :func:`targets_table` is the screen's
table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core.labels import N_
from core.models import Branch, Department, User
from core.services import audit
from plugins.kpi import flow
from plugins.kpi.engine import collect_metrics, get_metric, parse_number
from plugins.kpi.errors import KpiError
from plugins.kpi.hookspecs import Metric
from plugins.kpi.models import KpiTarget

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.plugins import Registry

FORBIDDEN = N_("You may not set KPI targets.")
NOT_FOUND = N_("Target %(id)s was not found.")
UNKNOWN_BRANCH = N_("Branch %(id)s does not exist.")
UNKNOWN_DEPARTMENT = N_("Department %(id)s does not exist.")
NO_BRANCH = N_("No such branch.")
NO_DEPARTMENT = N_("No such department.")


def _registry(session: Session) -> Registry:
    from core.settings import session_registry

    return session_registry(session)


def _rank(row: KpiTarget, branch_id: int | None, department_id: int | None) -> int | None:
    """How specific ``row`` is for the branch/department asked (lower wins; None: not applicable)."""
    if row.branch_id is not None and row.department_id is not None:
        return 0 if (row.branch_id, row.department_id) == (branch_id, department_id) else None
    if row.branch_id is not None:
        return 1 if row.branch_id == branch_id else None
    if row.department_id is not None:
        return 2 if row.department_id == department_id else None
    return 3


def effective_target(
    session: Session, metric: Metric, *, branch_id: int | None = None, department_id: int | None = None
) -> Decimal | None:
    """The target of ``metric`` for a branch and/or department, or the company's, or the default.

    The most specific stored row wins: branch + department, then branch, then
    department, then company-wide; without any row the metric's default ``target`` (None: no
    target). At most four rows are read, by the indexed metric key.
    """
    rows = session.scalars(
        select(KpiTarget).where(
            KpiTarget.metric == metric.key,
            (KpiTarget.branch_id.is_(None)) | (KpiTarget.branch_id == branch_id),
            (KpiTarget.department_id.is_(None)) | (KpiTarget.department_id == department_id),
        )
    ).all()
    ranked = [(rank, row) for row in rows if (rank := _rank(row, branch_id, department_id)) is not None]
    if not ranked:
        return metric.target
    return min(ranked, key=lambda pair: (pair[0], pair[1].id))[1].value


def viewer_scope(viewer: Any) -> tuple[int | None, int | None]:
    """The (branch id, department id) whose target ``viewer``'s dashboard shows.

    A role with data scope ``all`` (or no user: jobs) → the company (None, None); else
    ``branch`` → the user's branch; ``department`` → the user's department; otherwise
    (own orders) the company's target.
    """
    if not isinstance(viewer, User):
        return None, None
    scopes = {role.data_scope for role in viewer.roles}
    if "all" in scopes:
        return None, None
    if "branch" in scopes and viewer.branch_id is not None:
        return viewer.branch_id, None
    if "department" in scopes and viewer.department_id is not None:
        return None, viewer.department_id
    return None, None


def viewer_target(session: Session, metric: Metric, viewer: Any) -> Decimal | None:
    """The target ``viewer`` measures ``metric`` against: their branch's, department's or the company's."""
    branch_id, department_id = viewer_scope(viewer)
    return effective_target(session, metric, branch_id=branch_id, department_id=department_id)


def _id(value: Any, field_name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise KpiError(
            "invalid",
            N_("%(value)s is not a valid %(field)s."),
            422,
            {field_name: [N_("Not valid.")]},
            value=str(value),
            field=field_name,
        ) from None


def _check_place(session: Session, branch_id: int | None, department_id: int | None) -> None:
    details: dict[str, list[str]] = {}
    if branch_id is not None and session.get(Branch, branch_id) is None:
        details["branch_id"] = [NO_BRANCH]
    if department_id is not None and session.get(Department, department_id) is None:
        details["department_id"] = [NO_DEPARTMENT]
    if details:
        if "branch_id" in details:
            raise KpiError("invalid", UNKNOWN_BRANCH, 422, details, id=branch_id)
        raise KpiError("invalid", UNKNOWN_DEPARTMENT, 422, details, id=department_id)


def _require(actor: User | None) -> None:
    if actor is None or not actor.can(flow.TARGETS_MANAGE):
        raise KpiError("forbidden", FORBIDDEN, 403)


def set_target(
    session: Session,
    actor: User | None,
    metric_key: str,
    value: str,
    *,
    branch_id: Any = None,
    department_id: Any = None,
) -> KpiTarget:
    """Set ``metric_key``'s target for the company, a branch, a department or both; audited.

    Refused before anything changes: 403 without ``kpi.targets.manage``, 404 for a
    metric no enabled plugin provides, 422 when ``value`` is not a number or the branch
    or department does not exist. One row per metric, branch and department: an
    existing row is updated in place.
    """
    _require(actor)
    metric = get_metric(_registry(session), metric_key)
    number = parse_number(value, "value")
    branch = _id(branch_id, "branch_id")
    department = _id(department_id, "department_id")
    _check_place(session, branch, department)
    row = session.scalar(
        select(KpiTarget)
        .where(
            KpiTarget.metric == metric.key,
            KpiTarget.branch_id.is_(None) if branch is None else KpiTarget.branch_id == branch,
            KpiTarget.department_id.is_(None) if department is None else KpiTarget.department_id == department,
        )
        .order_by(KpiTarget.id)
        .limit(1)
    )
    assert actor is not None
    if row is None:
        row = KpiTarget(metric=metric.key, branch_id=branch, department_id=department, value=number, set_by_id=actor.id)
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor,
            "kpi_target",
            row.id,
            "create",
            {"metric": metric.key, "branch_id": branch, "department_id": department, "value": str(number)},
        )
        return row
    old = row.value
    row.value = number
    row.set_by_id = actor.id
    session.flush()
    audit.record(
        session, actor, "kpi_target", row.id, "update", {"metric": metric.key, "value": [str(old), str(number)]}
    )
    return row


def clear_target(session: Session, actor: User | None, target_id: int) -> None:
    """Remove a target row (the next less specific target applies again); audited.

    403 without ``kpi.targets.manage``; 404 for an unknown target.
    """
    _require(actor)
    row = session.get(KpiTarget, target_id)
    if row is None:
        raise KpiError("not_found", NOT_FOUND, 404, id=target_id)
    audit.record(
        session,
        actor,
        "kpi_target",
        row.id,
        "delete",
        {"metric": row.metric, "branch_id": row.branch_id, "department_id": row.department_id, "value": str(row.value)},
    )
    session.delete(row)
    session.flush()


@dataclass
class TargetRow:
    """One metric on the targets screen: its default, the company's target and the overrides."""

    metric: Metric
    default: Decimal | None
    company: KpiTarget | None = None
    #: Branch, department and branch + department rows, each with its display name.
    overrides: list[tuple[str, KpiTarget]] = field(default_factory=list)

    @property
    def effective(self) -> Decimal | None:
        """The company-wide target that applies: the company row, else the default."""
        return self.company.value if self.company is not None else self.default


def place_name(row: KpiTarget, branches: Mapping[int, str], departments: Mapping[int, str]) -> str:
    """ "成都分公司", "销售部" or "成都分公司 / 销售部" for a target row's branch and department."""
    parts = []
    if row.branch_id is not None:
        parts.append(branches.get(row.branch_id, str(row.branch_id)))
    if row.department_id is not None:
        parts.append(departments.get(row.department_id, str(row.department_id)))
    return " / ".join(parts)


def targets_table(session: Session, registry: Registry) -> list[TargetRow]:
    """Every enabled metric (by key) with its default, company target and branch/department targets.

    Rows of metrics whose plugin is disabled are kept in the table but not shown.
    """
    metrics = collect_metrics(registry)
    table = {key: TargetRow(metric, metric.target) for key, metric in sorted(metrics.items())}
    branches = dict(session.execute(select(Branch.id, Branch.name)).tuples().all())
    departments = dict(session.execute(select(Department.id, Department.name)).tuples().all())
    rows: Sequence[KpiTarget] = session.scalars(
        select(KpiTarget).where(KpiTarget.metric.in_(list(table))).order_by(KpiTarget.metric, KpiTarget.id)
    ).all()
    for row in rows:
        entry = table[row.metric]
        if row.branch_id is None and row.department_id is None:
            entry.company = entry.company or row
        else:
            entry.overrides.append((place_name(row, branches, departments), row))
    for entry in table.values():
        entry.overrides.sort(key=lambda pair: pair[0])
    return list(table.values())


__all__ = [
    "TargetRow",
    "clear_target",
    "effective_target",
    "place_name",
    "set_target",
    "targets_table",
    "viewer_scope",
    "viewer_target",
]
