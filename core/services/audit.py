"""Writing the audit trail: one helper so every service records changes alike."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

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
) -> None:
    """Append an audit entry: ``actor`` did ``action`` to ``entity`` #``entity_id``."""
    session.add(
        AuditLog(
            actor_id=actor.id if actor is not None else None,
            entity=entity,
            entity_id=entity_id,
            action=action,
            changes={k: _plain(v) for k, v in (changes or {}).items()},
        )
    )


def diff(obj: Any, values: dict[str, Any]) -> dict[str, list[Any]]:
    """The ``[old, new]`` pairs of the attributes of ``obj`` that ``values`` would change."""
    return {key: [_plain(getattr(obj, key)), _plain(new)] for key, new in values.items() if getattr(obj, key) != new}
