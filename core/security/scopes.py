"""Data scopes: the one place that decides which orders a user may see.

Every list, fetch, export, report and document goes through :func:`order_scope`, so a
rule cannot hold on one path and fail on another. Out of scope answers 404.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, true

from core.models import Order, User


def order_scope(user: User | None) -> ColumnElement[bool]:
    """A WHERE clause selecting the orders ``user`` may see (nothing for anonymous)."""
    if user is None or not user.active or not user.can("orders.read"):
        return false()
    clauses: list[ColumnElement[bool]] = []
    for role in user.roles:
        scope = role.data_scope
        if scope == "all":
            return true()
        if scope == "branch" and user.branch_id is not None:
            clauses.append(Order.branch_id == user.branch_id)
        elif scope == "department" and user.department_id is not None:
            clauses.append(Order.department_id == user.department_id)
        elif scope == "customer" and user.customer_id is not None:
            clauses.append(Order.customer_id == user.customer_id)
        elif scope == "own":
            clauses.append(or_(Order.owner_id == user.id, Order.created_by_id == user.id))
    return or_(*clauses) if clauses else false()
