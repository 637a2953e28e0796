"""Data scopes: the one place that decides which orders a user may see.

Every list, fetch, export, report and document goes through :func:`order_scope`, so a
rule cannot hold on one path and fail on another; records about a customer rather than
an order (payments, surveys) go through :func:`customer_scope`. Out of scope answers 404. Plugins'
records attached to an order (inspection reports, shipments, invoices) are scoped
through their order with :func:`through_order`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, exists, false, or_, select, true

from core.models import Customer, Order, User

S = TypeVar("S", bound=Select[Any])


def order_scope_terms(user: User | None) -> list[ColumnElement[bool]]:
    """The rule of :func:`order_scope` as a list of terms: ``user`` may see an order when any
    one term holds (``[true()]`` for the whole company, ``[]`` for nothing).

    Each term is one equality on one column of ``order`` (the ``own`` scope gives two: owner
    and creator), so a list can fetch each term's newest orders through that column's
    index and merge them (:func:`core.services.orders.order_page`) instead of sorting
    every order an ``OR`` matches. :func:`order_scope` is these terms joined by ``OR``.
    """
    if user is None or not user.active or not user.can("orders.read"):
        return []
    terms: list[ColumnElement[bool]] = []
    for role in user.roles:
        scope = role.data_scope
        if scope == "all":
            return [true()]
        if scope == "branch" and user.branch_id is not None:
            terms.append(Order.branch_id == user.branch_id)
        elif scope == "department" and user.department_id is not None:
            terms.append(Order.department_id == user.department_id)
        elif scope == "customer" and user.customer_id is not None:
            terms.append(Order.customer_id == user.customer_id)
        elif scope == "own":
            terms += [Order.owner_id == user.id, Order.created_by_id == user.id]
    return terms


def order_scope(user: User | None) -> ColumnElement[bool]:
    """A WHERE clause selecting the orders ``user`` may see (nothing for anonymous)."""
    terms = order_scope_terms(user)
    if not terms:
        return false()
    return terms[0] if len(terms) == 1 else or_(*terms)


def order_visible(order_id: Any, user: User | None) -> ColumnElement[bool]:
    """A WHERE clause true when the order whose id is ``order_id`` (a column or a value)
    exists and lies in ``user``'s scope: an ``EXISTS`` over :func:`order_scope`."""
    # Never correlated with an ``order`` table of the outer query: the EXISTS reads its own.
    return exists(select(Order.id).where(Order.id == order_id, order_scope(user)).correlate_except(Order))


def through_order(stmt: S, order_id_column: Any, user: User | None) -> S:
    """``stmt`` restricted to the rows whose order (``order_id_column``) ``user`` may see.

    For plugins' records attached to an order: ``through_order(select(Report),
    Report.order_id, user)`` selects only the reports on orders in the user's data
    scope, whatever else the statement joins or filters, so a plugin never writes its
    own scope rule. Rows without an order (``order_id_column`` NULL) are left out.
    """
    return stmt.where(order_visible(order_id_column, user))


def customer_scope(user: User | None) -> ColumnElement[bool]:
    """A WHERE clause on :class:`Customer` selecting the customers ``user`` may see.

    The order scope's rule applied to the customer's own branch and owner: ``all`` sees
    every customer, ``branch`` the customers of the user's branch, ``customer`` (portal)
    their own, ``own`` and ``department`` the customers the user owns.
    """
    if user is None or not user.active:
        return false()
    clauses: list[ColumnElement[bool]] = []
    for role in user.roles:
        scope = role.data_scope
        if scope == "all":
            return true()
        if scope == "branch" and user.branch_id is not None:
            clauses.append(Customer.branch_id == user.branch_id)
        elif scope == "customer" and user.customer_id is not None:
            clauses.append(Customer.id == user.customer_id)
        elif scope in ("own", "department"):
            clauses.append(Customer.owner_id == user.id)
    return or_(*clauses) if clauses else false()


def customer_visible(customer_id: Any, user: User | None) -> ColumnElement[bool]:
    """True when the customer ``customer_id`` (a column or a value) is in ``user``'s scope."""
    # Never correlated with a ``customer`` table of the outer query: the subquery reads its own.
    return customer_id.in_(select(Customer.id).where(customer_scope(user)).correlate_except(Customer))
