"""The audit screen: the append-only log, filtered by who, what, when and order (CORE-6).

For holders of ``audit.read``. Entries about an order appear only when the order lies in
the reader's data scope (see :func:`core.services.audit.audit_entries`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import flash, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from core.models import AuditLog, Order, User
from core.schemas import MAX_ID
from core.services.audit import AuditFilters, audit_entries, change_rows
from core.views.common import current_actor, paginate, permission_required, query_args, screen_blueprint
from core.web import db

bp = screen_blueprint("audit", __name__, url_prefix="/admin/audit")

_FILTER_NAMES = ("actor", "entity", "action", "date_from", "date_to", "order")
_SORTS: dict[str, Any] = {"at": AuditLog.id}


def _date(name: str) -> dt.date | None:
    value = request.args.get(name, "").strip()
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        flash(_("“%(value)s” is not a date; that filter was ignored.", value=value), "warning")
        return None


def read_filters() -> AuditFilters:
    """The screen's filters from the query string (malformed values are ignored)."""
    args = request.args
    actor = args.get("actor", "").strip()
    return AuditFilters(
        actor_id=int(actor) if actor.isdigit() and len(actor) < 19 and int(actor) <= MAX_ID else None,
        entity=args.get("entity", "").strip() or None,
        action=args.get("action", "").strip() or None,
        date_from=_date("date_from"),
        date_to=_date("date_to"),
        order=args.get("order", "").strip() or None,
    )


def entry_context(session: Any, entries: list[AuditLog]) -> dict[str, Any]:
    """What a list of entries needs to be shown: actor names and order numbers by id."""
    actor_ids = {e.actor_id for e in entries if e.actor_id is not None}
    order_ids = {e.entity_id for e in entries if e.entity == "order" and e.entity_id is not None}
    actors = dict(session.execute(select(User.id, User.name).where(User.id.in_(actor_ids))).tuples().all())
    orders = dict(session.execute(select(Order.id, Order.number).where(Order.id.in_(order_ids))).tuples().all())
    return {"actors": actors, "orders": orders, "change_rows": change_rows}


@bp.get("")
@permission_required("audit.read")
def list_audit() -> str:
    """The audit log, newest first, filtered and paged."""
    session, viewer = db(), current_actor()
    filters = read_filters()
    page = paginate(
        session,
        audit_entries(viewer, filters),
        sortable=_SORTS,
        default_sort="-at",
        endpoint="audit.list_audit",
        args=query_args(*_FILTER_NAMES),
    )
    # The choices come from the entries this reader may see, so they name nobody who
    # only ever acted on orders outside the reader's scope.
    visible = audit_entries(viewer, AuditFilters()).subquery()
    people = session.scalars(
        select(User).where(User.id.in_(select(visible.c.actor_id).distinct())).order_by(User.name)
    ).all()
    entities = session.scalars(select(visible.c.entity).distinct().order_by(visible.c.entity)).all()
    return render_template(
        "audit/list.html",
        page=page,
        filters=filters,
        people=[(u.id, f"{u.name} <{u.email}>") for u in people],
        entities=[(e, e) for e in entities],
        **entry_context(session, page.rows),
    )
