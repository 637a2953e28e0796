"""Writing the audit trail: one helper so every service records changes alike."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import g, has_request_context
from sqlalchemy.orm import Session

from core.models import AuditLog, User


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
