"""The audit trail: one helper to write it so every service records changes alike, and the
scoped queries the audit screen, the API and the order page read it with."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import g, has_request_context
from sqlalchemy import Select, false, or_, select
from sqlalchemy.orm import Session

from core.clock import day_end, day_start
from core.models import AuditLog, Order, User
from core.security.scopes import order_scope, order_visible


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def record(
    session: Session,
    actor: User | None,
    entity: str,
    entity_id: int | None,
    action: str,
    changes: dict[str, Any] | None = None,
    reason: str = "",
    order_id: int | None = None,
) -> None:
    """Append an audit entry: ``actor`` did ``action`` to ``entity`` #``entity_id``, and why.

    Written in the caller's transaction, so it exists exactly when the change does; the
    web request's id is attached when there is one.
    """
    session.add(
        AuditLog(
            actor_id=actor.id if actor is not None else None,
            entity=entity,
            entity_id=entity_id,
            action=action,
            changes={k: _plain(v) for k, v in (changes or {}).items()},
            reason=reason,
            request_id=current_request_id(),
            order_id=entity_id if order_id is None and entity == "order" else order_id,
        )
    )


def current_request_id() -> str:
    """The id of the web request being served ('' outside a request)."""
    if has_request_context():
        return str(getattr(g, "request_id", ""))
    return ""


def diff(obj: Any, values: dict[str, Any]) -> dict[str, list[Any]]:
    """The ``[old, new]`` pairs of the attributes of ``obj`` that ``values`` would change."""
    return {key: [_plain(getattr(obj, key)), _plain(new)] for key, new in values.items() if getattr(obj, key) != new}


# --- reading the trail ------------------------------------------------------------------


@dataclass
class AuditFilters:
    """What the audit trail is narrowed by: who, what, when (company days), which order."""

    actor_id: int | None = None
    entity: str | None = None
    action: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    #: An order number: the entries of that order (only if the reader may see the order).
    order: str | None = None


def audit_entries(viewer: User | None, filters: AuditFilters) -> Select[tuple[AuditLog]]:
    """A SELECT of the audit entries ``viewer`` may read under ``filters`` (unordered).

    Nothing without ``audit.read``. Entries about an order are shown only when the order
    lies in the viewer's data scope, like the order itself.
    """
    if viewer is None or not viewer.active or not viewer.can("audit.read"):
        return select(AuditLog).where(false())
    stmt = select(AuditLog).where(or_(AuditLog.order_id.is_(None), order_visible(AuditLog.order_id, viewer)))
    if filters.actor_id is not None:
        stmt = stmt.where(AuditLog.actor_id == filters.actor_id)
    if filters.entity:
        stmt = stmt.where(AuditLog.entity == filters.entity)
    if filters.action:
        stmt = stmt.where(AuditLog.action == filters.action)
    if filters.date_from:
        stmt = stmt.where(AuditLog.at >= day_start(filters.date_from))
    if filters.date_to and (end := day_end(filters.date_to)) is not None:
        stmt = stmt.where(AuditLog.at < end)
    if filters.order:
        order_ids = select(Order.id).where(Order.number == filters.order.strip(), order_scope(viewer))
        stmt = stmt.where(AuditLog.order_id.in_(order_ids))
    return stmt


def order_trail(session: Session, viewer: User | None, order_id: int) -> list[AuditLog]:
    """The audit entries of one order, oldest first (empty without ``audit.read`` or scope)."""
    stmt = audit_entries(viewer, AuditFilters()).where(AuditLog.order_id == order_id)
    return list(session.scalars(stmt.order_by(AuditLog.id)))


def change_rows(changes: dict[str, Any]) -> list[tuple[str, Any, Any, bool]]:
    """An entry's changes as (field, before, after, is_change) rows for display.

    ``[old, new]`` pairs (what :func:`diff` records) are changes; any other value is a
    recorded value (e.g. a new order's number) with no before.
    """
    rows: list[tuple[str, Any, Any, bool]] = []
    for key, value in (changes or {}).items():
        if isinstance(value, list) and len(value) == 2:
            rows.append((key, value[0], value[1], True))
        else:
            rows.append((key, None, value, False))
    return rows
