"""Metrics and dimensions over core's own tables, contributed by kpi on core's behalf.

Core never imports a plugin, so it cannot implement kpi's hook itself; kpi measures
core's orders directly (KP-1 "order processing speed"):

- ``orders.count`` (count): orders received in the period — created in it and submitted
  (status other than draft), rejected and cancelled ones included;
- ``orders.value`` (amount): the total (tax included) of the orders received in the
  period that were not rejected or cancelled;
- ``orders.cycle_time`` (days): for each completion in the period (a transition to the
  status *completed*), the days from the order's creation to that completion; the mean.

And the **order dimensions** every order-level metric can be split by: ``branch``,
``department``, ``salesperson`` (the order's owner), ``customer``, ``channel``,
``remote`` (the ship-to lies outside the company's home region: ``remote``/``local``)
and ``product_category`` (the category of the order's largest line by amount).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, literal, or_, select
from sqlalchemy.orm import Session

from core.labels import CHANNELS, N_
from core.models import Branch, Company, Customer, Department, Order, OrderLine, OrderTransition, Product, User
from plugins.kpi.hookspecs import Dimension, Metric, Period
from plugins.kpi.sql import days_between

#: Statuses of orders that were never received (drafts) or whose value does not count.
NOT_RECEIVED = ("draft",)
NO_VALUE = ("draft", "rejected", "cancelled")


def received_orders(period: Period) -> Select[Any]:
    """``orders.count`` facts: one row per order created in the period and submitted."""
    return select(Order.id.label("order_id"), literal(1).label("num"), literal(1).label("den")).where(
        period.within(Order.created_at), Order.status.not_in(NOT_RECEIVED)
    )


def order_value(period: Period) -> Select[Any]:
    """``orders.value`` facts: each order received in the period and still valid, with its total."""
    return select(Order.id.label("order_id"), Order.total.label("num"), literal(1).label("den")).where(
        period.within(Order.created_at), Order.status.not_in(NO_VALUE)
    )


def cycle_time(period: Period) -> Select[Any]:
    """``orders.cycle_time`` facts: each completion in the period, days since the order's creation."""
    return (
        select(
            OrderTransition.order_id.label("order_id"),
            days_between(Order.created_at, OrderTransition.at).label("num"),
            literal(1).label("den"),
        )
        .join(Order, Order.id == OrderTransition.order_id)
        .where(OrderTransition.to_status == "completed", period.within(OrderTransition.at))
    )


METRICS = (
    Metric(
        "orders.count",
        N_("Orders received"),
        "count",
        "higher",
        N_("Orders created in the period and submitted (any status but draft), rejected and cancelled ones included."),
        received_orders,
        aggregate="sum",
        places=0,
    ),
    Metric(
        "orders.value",
        N_("Order value"),
        "amount",
        "higher",
        N_("Sum of the totals (tax included) of the orders received in the period, less rejected and cancelled ones."),
        order_value,
        aggregate="sum",
    ),
    Metric(
        "orders.cycle_time",
        N_("Order cycle time"),
        "days",
        "lower",
        N_("For each order completed in the period: days from its creation to its completion; the average."),
        cycle_time,
        aggregate="mean",
        target=Decimal("10"),
        places=1,
    ),
)


# --- dimensions ---------------------------------------------------------------------


def _names_of(column: Any, label: Any) -> Any:
    def names(session: Session, values: Sequence[Any]) -> Mapping[Any, str]:
        return dict(session.execute(select(column, label).where(column.in_(list(values)))).tuples().all())

    return names


def _customer_names(session: Session, values: Sequence[Any]) -> Mapping[Any, str]:
    rows = session.execute(select(Customer.id, Customer.code, Customer.name).where(Customer.id.in_(list(values))))
    return {row[0]: f"{row[1]} {row[2]}" for row in rows}


def _home_key() -> ColumnElement[str]:
    """The company's home region without its administrative suffix (四川省 → 四川)."""
    home: ColumnElement[str] = select(Company.home_province).where(Company.id == Order.company_id).scalar_subquery()
    for suffix in ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市"):
        home = func.replace(home, suffix, "")
    return func.trim(home)


def remote_expression() -> ColumnElement[str]:
    """``remote`` when the order ships outside the home region, else ``local`` (no home: local)."""
    key = _home_key()
    inside = or_(
        func.coalesce(key, "") == "",
        (Order.ship_to_province == "") & (Order.ship_to_city == ""),
        Order.ship_to_province.like(key + "%"),
        Order.ship_to_city.like(key + "%"),
    )
    return case((inside, "local"), else_="remote")


def _remote_names(session: Session, values: Sequence[Any]) -> Mapping[Any, str]:
    return {"remote": N_("Remote"), "local": N_("Local")}


def _channel_names(session: Session, values: Sequence[Any]) -> Mapping[Any, str]:
    return {value: CHANNELS.get(value, value) for value in values}


def product_category_expression() -> ColumnElement[str]:
    """The category of the order's largest line by amount (ties: the first line)."""
    return (
        select(Product.category)
        .join(OrderLine, OrderLine.product_id == Product.id)
        .where(OrderLine.order_id == Order.id)
        .order_by(OrderLine.amount.desc(), OrderLine.id)
        .limit(1)
        .scalar_subquery()
    )


DIMENSIONS = (
    Dimension("branch", N_("Branch"), lambda: Order.branch_id, _names_of(Branch.id, Branch.name)),
    Dimension("department", N_("Department"), lambda: Order.department_id, _names_of(Department.id, Department.name)),
    Dimension("salesperson", N_("Salesperson"), lambda: Order.owner_id, _names_of(User.id, User.name)),
    Dimension("customer", N_("Customer"), lambda: Order.customer_id, _customer_names),
    Dimension("channel", N_("Channel"), lambda: Order.channel, _channel_names),
    Dimension("remote", N_("Remote or local"), remote_expression, _remote_names),
    Dimension("product_category", N_("Product category"), product_category_expression),
)
