"""The kpi plugin's hooks: other plugins contribute metrics, dimensions and demo history.

Added to the plugin manager through ``ordo_add_hookspecs`` when kpi is enabled. Other
plugins implement these hooks with ``@hookimpl(optionalhook=True)`` — usually in a
bridge module (``extras = {"kpi": "plugins.<name>.bridges.kpi"}``) loaded only when kpi
is enabled too — so they work without kpi and never import it otherwise.

**A metric is a SQL aggregation over a period** (KP-1). Its :attr:`Metric.facts`
function returns a ``SELECT`` of *fact rows* for a :class:`Period`; every row names the
order it is about and two numbers, and kpi adds them up::

    SELECT order_id, num, den [, customer_id] [, <fact dimension> ...]

- ``order_id`` — the order the fact is about (kpi joins the order to apply the viewer's
  data scope and the order dimensions); NULL only for customer-level facts (a quarterly
  survey), which must then give ``customer_id``;
- ``num`` / ``den`` — the fact's contribution to the numerator and denominator. kpi
  computes ``100·Σnum/Σden`` (aggregate ``percent``), ``Σnum/Σden`` (``mean``: an
  average, ``den`` = 1 per measured thing) or ``Σnum`` (``sum``: counts and amounts);
- further columns named after *fact dimensions* the metric lists (``department``,
  ``reason``…), for breakdowns that are not properties of the order.

Nothing is loaded into Python: kpi wraps the select in ``SUM(...)`` with the scope and
the dimension's ``GROUP BY``, so facts must be computed on indexed columns. A fact row
whose ``num < den`` (higher is better) or ``num > 0`` (lower is better) is a *problem*:
drill-down lists the orders behind them ("the late deliveries").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core import hookspec

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Select
    from sqlalchemy.orm import Session

#: The units a metric's value is given in (how it is formatted).
UNITS = ("percent", "count", "amount", "days", "hours", "score", "ratio")
#: How kpi adds fact rows up: ``100·Σnum/Σden``, ``Σnum/Σden`` or ``Σnum``.
AGGREGATES = ("percent", "mean", "sum")
#: Whether a higher or a lower value is better.
DIRECTIONS = ("higher", "lower")
#: The order dimensions every order-level metric can be split by (kpi defines them).
ORDER_DIMENSIONS = (
    "branch",
    "department",
    "salesperson",
    "customer",
    "customer_group",
    "channel",
    "remote",
    "product_category",
)


@dataclass(frozen=True)
class Period:
    """The company days ``start`` … ``end`` inclusive, and the instants they span.

    ``lower`` is midnight starting ``start`` and ``upper`` midnight after ``end`` in the
    company's time zone (``core.clock``), so 1–30 November is measured from 1 November
    00:00 to 1 December 00:00 Chongqing time whatever the server's zone. Build one with
    :func:`plugins.kpi.periods.period` (which refuses an end before the start).
    """

    start: dt.date
    end: dt.date
    lower: dt.datetime
    upper: dt.datetime
    #: ``day``, ``week``, ``month``, ``quarter`` or ``custom``.
    kind: str = "custom"

    @property
    def days(self) -> int:
        """How many days the period has (1 for a day)."""
        return (self.end - self.start).days + 1

    def within(self, column: Any) -> ColumnElement[bool]:
        """``column`` (a stored UTC datetime) lies in the period: ``lower <= column < upper``."""
        return (column >= self.lower) & (column < self.upper)

    def covers(self, column: Any) -> ColumnElement[bool]:
        """``column`` (a date) is one of the period's days: ``start <= column <= end``."""
        return (column >= self.start) & (column <= self.end)


@dataclass(frozen=True)
class Metric:
    """A measurable indicator (on-time delivery, collection rate, cycle time…).

    ``key`` reads ``<plugin>.<name>`` (``orders.*`` for core's), unique across plugins.
    ``label`` and ``description`` are marked for translation (``N_``); the description
    states the exact formula. ``target`` is the default target (None: none), editable per
    branch and department on the targets screen. ``dimensions`` are the keys the metric
    can be split by: :data:`ORDER_DIMENSIONS`, dimensions other plugins contribute, and
    fact dimensions its facts select as columns. ``facts(period)`` returns the select
    described in the module docstring; it must not change data. ``plugin`` is filled in
    by kpi with the contributing plugin's name.
    """

    key: str
    label: str
    unit: str
    direction: str
    description: str
    facts: Callable[[Period], Select[Any]] = field(repr=False, compare=False)
    aggregate: str = "percent"
    target: Decimal | None = None
    dimensions: tuple[str, ...] = ORDER_DIMENSIONS
    #: Decimal places shown (2 for percentages and averages, 0 for counts).
    places: int = 2
    plugin: str = ""


@dataclass(frozen=True)
class Dimension:
    """A way to split a metric: by branch, by customer group, by review department…

        An *order dimension* has an ``expression()``: a SQL expression over core's
        :class:`core.models.Order` (correlated subqueries allowed) giving the value for a
        fact's order. A *fact dimension* has none: the metric's facts select a column named
        ``key``. ``names(session, values)`` turns values into display names (branch ids into
        branch names); screens pass names through gettext, so a name may be an ``N_`` label
    ("Remote"). Without ``names`` values are shown as they are.
    """

    key: str
    label: str
    expression: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    names: Callable[[Session, Sequence[Any]], Mapping[Any, str]] | None = field(default=None, repr=False, compare=False)
    plugin: str = ""


@dataclass(frozen=True)
class HistoryOrder:
    """One order of generated history (demo, benchmark), as kpi wrote it to core's tables.

    ``received_at`` is its creation, ``confirmed_at`` its confirmation, ``completed_at``
    its completion (None while open, for orders of the last weeks); ``lines`` are
    ``(line id, product id, quantity, amount)``. ``seed`` makes the plugin's own random
    choices for the order repeatable.
    """

    id: int
    number: str
    customer_id: int
    branch_id: int | None
    owner_id: int | None
    total: Decimal
    received_at: dt.datetime
    confirmed_at: dt.datetime
    completed_at: dt.datetime | None
    lines: tuple[tuple[int, int, Decimal, Decimal], ...]
    seed: int


@dataclass
class HistoryBatch:
    """A batch of generated orders handed to every plugin to add its own records.

    Plugins insert their rows in bulk (``session.execute(insert(Table), rows)``), never
    one ORM object at a time: the benchmark generates a million orders this way.
    ``users`` maps role codes to user ids present in the company (reviewers, finance…).
    """

    orders: list[HistoryOrder]
    users: dict[str, list[int]]
    today: dt.date


@hookspec
def ordo_kpi_metrics(enabled: frozenset[str]) -> list[Metric]:  # type: ignore[empty-body]
    """Return the metrics the plugin contributes (keys ``<plugin>.<name>``, unique).

    Called whenever kpi lists or computes metrics; simply not called when kpi is
    disabled. Implement it with ``@hookimpl(optionalhook=True)``. ``enabled`` names the
    enabled plugins, for a metric whose facts depend on another plugin (billing counts a
    delivery as a shipment when logistics is enabled); accept it only if needed.
    """


@hookspec
def ordo_kpi_dimensions() -> list[Dimension]:  # type: ignore[empty-body]
    """Return the order dimensions the plugin contributes (intake: ``customer_group``)."""


@hookspec
def ordo_kpi_history(session: Session, batch: HistoryBatch) -> None:
    """Add the plugin's records for generated history orders (demo year, benchmark data).

    Called by :func:`plugins.kpi.history.generate` once per batch, after kpi wrote the
    orders, lines and transitions. Insert in bulk; make the records realistic (some
    late, some rejected, some unpaid) so every metric has a history.
    """


@dataclass(frozen=True)
class ReportSection:
    """A section a plugin adds to the daily order detail report (logistics: shipped orders).

    ``key`` names it (``shipped``); ``title`` and ``columns`` are ``N_`` labels; each row
    starts with the order id (kpi checks the reader's scope and links it) followed by
    one cell per column, already formatted as text.
    """

    key: str
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    plugin: str = ""


@hookspec
def ordo_kpi_report_sections(  # type: ignore[empty-body]
    session: Session, start: dt.datetime, end: dt.datetime
) -> list[ReportSection]:
    """Return the plugin's sections of the daily order detail report for ``start`` ≤ t < ``end``.

    kpi's own sections are the new, changed and overdue orders (core data); logistics adds
    the orders shipped in the window. Rows are read in SQL, a few hundred at most a day.
    """
