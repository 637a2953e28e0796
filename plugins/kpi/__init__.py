"""KPI: process indicators, dashboard, evaluation, reports, surveys and supervision.

Turns what the other plugins record into the indicators people and departments are
evaluated by (DOMAIN.md KP-1 … KP-6):

- the **metric contract** (``hookspecs``): any plugin contributes metrics — SQL
  aggregations over a period — and dimensions; kpi computes them within the viewer's
  data scope (``engine``) over periods (``periods``); core's own order metrics and the
  order dimensions are kpi's (``core_metrics``);
- the **dashboard** with tiles, trends, breakdowns, drill-down and exports
  (``dashboard_views``, ``charts``, ``exports``, ``api_metrics``);
- **targets** and **reward/alert rules** evaluated monthly (``targets``, ``rules``);
- **surveys**, **complaints** and **follow-up visits** (``surveys``, ``feedback``);
- the **daily order detail report** and the **monthly KPI report** (``reports``);
- **supervision** samples, checklists and findings (``supervision``);
- a year of generated history for the demo and the benchmark (``history``, ``demo``).

See docs/kpi.md.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from core import hookimpl
from core.contrib import Job, MenuItem, MigrationBranch, NotificationTemplate, Permission, RoleDefinition, Setting
from core.labels import N_

if TYPE_CHECKING:
    import pluggy
    from flask import Blueprint, Flask
    from sqlalchemy.orm import Session

    from core.contrib import Transition
    from core.models import Customer, Order, User
    from plugins.kpi.hookspecs import Dimension, Metric

#: The plugin's name: its entry point, migration branch label and table prefix.
name = "kpi"
#: The plugin's version.
version = "0.1.0"
#: Plugins that must be enabled for this one to work.
requires: tuple[str, ...] = ()

#: The screen modules; each adds its routes to ``views.bp`` and lists its ``MENU``.
_SCREENS = (
    "dashboard_views",
    "target_views",
    "rule_views",
    "feedback_views",
    "supervision_views",
    "report_views",
)
#: The API modules; each defines a flask-smorest blueprint ``blp``.
_APIS = ("api_metrics", "api_targets", "api_feedback", "api_supervision", "api_reports")
#: The modules that send notifications; each lists its templates in ``NOTIFICATIONS``.
_NOTIFYING = ("rules", "surveys", "feedback", "reports", "supervision")
#: The modules with scheduled jobs; each lists them in ``JOBS``.
_SCHEDULED = ("rules", "surveys", "feedback", "reports", "supervision", "rollups")
#: The modules contributing kpi's own metrics; each lists them in ``METRICS``.
_MEASURING = ("core_metrics", "surveys", "feedback")
#: kpi's screens share one drop-down menu in the navigation bar.
MENU_GROUP = N_("KPI")


def _modules(names: tuple[str, ...]) -> list[object]:
    return [importlib.import_module(f"plugins.kpi.{module}") for module in names]


@hookimpl
def ordo_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Add kpi's hooks (metrics, dimensions, history) for other plugins to implement."""
    from plugins.kpi import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def ordo_register_models() -> list[str]:
    return ["plugins.kpi.models"]


@hookimpl
def ordo_register_migrations() -> list[MigrationBranch]:
    return [MigrationBranch(name, Path(__file__).parent / "migrations" / "versions")]


@hookimpl
def ordo_register_permissions() -> list[Permission]:
    from plugins.kpi.flow import PERMISSIONS

    return list(PERMISSIONS)


@hookimpl
def ordo_register_roles() -> list[RoleDefinition]:
    from plugins.kpi.flow import ROLES

    return list(ROLES)


@hookimpl
def ordo_register_settings() -> list[Setting]:
    from plugins.kpi.flow import SETTINGS

    return list(SETTINGS)


@hookimpl
def ordo_register_notifications() -> list[NotificationTemplate]:
    return [template for module in _modules(_NOTIFYING) for template in getattr(module, "NOTIFICATIONS", ())]


@hookimpl
def ordo_register_jobs() -> list[Job]:
    return [job for module in _modules(_SCHEDULED) for job in getattr(module, "JOBS", ())]


@hookimpl
def ordo_register_blueprints(app: Flask) -> list[Blueprint]:
    _modules(_SCREENS)  # each adds its routes to views.bp
    from plugins.kpi.views import bp as screens

    apis = [module.blp for module in _modules(_APIS)]  # type: ignore[attr-defined]
    return [screens, *apis]


@hookimpl
def ordo_menu_items(user: User) -> list[MenuItem]:
    if user is not None and getattr(user, "customer_id", None) is not None:
        from plugins.kpi.feedback_views import PORTAL_MENU

        return list(PORTAL_MENU)
    return [
        replace(item, group=item.group or MENU_GROUP)
        for module in _modules(_SCREENS)
        for item in getattr(module, "MENU", ())
    ]


@hookimpl(optionalhook=True)
def ordo_kpi_metrics() -> list[Metric]:
    """kpi's own metrics: core's order count, value and cycle time; satisfaction; complaints."""
    return [metric for module in _modules(_MEASURING) for metric in getattr(module, "METRICS", ())]


@hookimpl(optionalhook=True)
def ordo_kpi_dimensions() -> list[Dimension]:
    """The order dimensions over core's tables (branch, salesperson…) and kpi's fact dimensions."""
    return [dimension for module in _modules(_MEASURING) for dimension in getattr(module, "DIMENSIONS", ())]


@hookimpl
def ordo_order_transitioned(order: Order, transition: Transition, user: User | None, session: Session) -> None:
    """Send the order's satisfaction survey when it is delivered or completed (setting)."""
    from plugins.kpi.surveys import on_transitioned

    on_transitioned(session, order, transition)


@hookimpl(trylast=True)
def ordo_demo_data(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> None:
    """kpi's part of the demo: a year of order history, targets, rules, surveys, complaints, samples."""
    from plugins.kpi.demo import populate

    populate(session, users, customers)
