"""THE plugin contract: every hook a plugin may implement, and nothing else.

Hooks are called with keyword arguments only. ``ordo_register_*`` hooks run at
start-up and return lists of the small dataclasses in :mod:`core.contrib`, which core
checks before the app serves; ``ordo_order_*`` hooks follow an order's life. A plugin
implements a hook by defining a function of the same name decorated with
:data:`core.hookimpl` in its module; it may accept any subset of the arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click
    from flask import Blueprint, Flask
    from sqlalchemy.orm import Session

    from core.contrib import (
        Action,
        Badge,
        Channel,
        DocumentType,
        Finding,
        Job,
        MenuItem,
        MigrationBranch,
        NotificationTemplate,
        Panel,
        Permission,
        RoleDefinition,
        Setting,
        Step,
        Transition,
    )
    from core.models import Customer, Order, User

hookspec = pluggy.HookspecMarker("ordo")
hookimpl = pluggy.HookimplMarker("ordo")


# --- start-up: what a plugin brings ------------------------------------------------


@hookspec(historic=True)
def ordo_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Add the plugin's own hook specifications to ``pm``.

    Called once, as soon as the plugin is registered (historic, so order does not
    matter). Use ``pm.add_hookspecs(module)`` with a module of ``@core.hookspec``
    functions; other plugins implement them with ``optionalhook=True`` so they still
    load when the defining plugin is disabled (the kpi plugin's metrics work so).
    """


@hookspec
def ordo_register_models() -> list[str]:
    """Return the dotted names of the plugin's model modules.

    Called at start-up before mappers are configured; core imports each module so its
    tables join :data:`core.db.Base.metadata`. Table names must start with
    ``<plugin>_``; plugins add tables keyed to core rows and never alter core tables.
    """


@hookspec
def ordo_register_migrations() -> list[MigrationBranch]:
    """Return the plugin's Alembic branch: ``MigrationBranch(label, versions_folder)``.

    The label must be the plugin's name; the branch's first revision has
    ``branch_labels=(name,)`` and ``depends_on`` a core revision. Enabling the plugin
    and ``ordo db upgrade`` bring the branch to head.
    """


@hookspec
def ordo_register_permissions() -> list[Permission]:
    """Return the permission codes the plugin checks, with labels and default roles.

    Codes read ``<plugin>.<entity>.<verb>``. Every permission a plugin's steps, actions,
    menu items or documents name must be registered here; the contract suite checks.
    """


@hookspec
def ordo_register_roles() -> list[RoleDefinition]:
    """Return the default roles the plugin ships (:class:`core.contrib.RoleDefinition`).

    Called at start-up; each role is created when the plugin is enabled, if no role has
    its code yet. Core's own default roles (``core.roles.DEFAULT_ROLES``) may not be
    redefined.
    """


@hookspec
def ordo_register_settings() -> list[Setting]:
    """Return the settings the plugin reads (key, type, default, label, help).

    Keys read ``<plugin>.<name>``. Values are read with
    ``core.settings.get_setting(session, key)`` and fall back to the default until an
    administrator changes them.
    """


@hookspec
def ordo_register_blueprints(app: Flask) -> list[Blueprint]:
    """Return Flask blueprints for the plugin's screens and API.

    Called once while the app is created. A ``flask_smorest.Blueprint`` whose
    ``url_prefix`` starts with ``/api/v1`` joins the OpenAPI document. Endpoints of a
    disabled plugin do not exist (404).
    """


@hookspec
def ordo_register_steps() -> list[Step]:
    """Return the workflow steps the plugin adds, each with its position and actions.

    A step's key reads ``<plugin>.<name>``. Its position decides which status the order
    has while in it: 1–99 lie before core's ``submitted`` step (100) and belong to the
    *submitted* status (pre-check, review); 101–499 lie between ``submitted`` and core's
    ``confirmed`` step (500) and belong to the *confirmed* status (shipping, settlement).
    Core's ``confirmed`` step is where a fulfilled order waits to be completed. Actions target :data:`NEXT`, a known
    step key, ``cancelled`` or ``rejected``; unknown targets are refused at start-up.
    """


@hookspec
def ordo_register_documents() -> list[DocumentType]:
    """Return printable document types (name, label, HTML template, permission).

    Core renders them to PDF with WeasyPrint; the contract suite renders each one for a
    sample order and fails if it does not render.
    """


@hookspec
def ordo_register_jobs() -> list[Job]:
    """Return the scheduled jobs the plugin needs (name, schedule, function).

    Schedules read ``every:<seconds>``, ``daily:HH:MM`` or ``weekly:<mon..sun>:HH:MM``
    and are checked at start-up. The worker (``ordo worker``, or ``ordo jobs run-due``
    from cron) runs each job when due, one worker at a time (a lease in the database),
    inside one transaction with the record of its run: a job that crashes has changed
    nothing and runs again on the next pass. An administrator may change a job's
    schedule on the Jobs screen.
    """


@hookspec
def ordo_register_notifications() -> list[NotificationTemplate]:
    """Return notification templates, each with a subject and body per language.

    Both ``zh_CN`` and ``en`` are required (checked at start-up). Send one with
    ``core.notify.notify(session, "<name>", to=[...], order=..., context={...})``
    inside the transaction of the change it reports; the worker delivers it.
    """


@hookspec
def ordo_register_channels() -> list[Channel]:
    """Return extra delivery channels (SMS, a chat app) for notifications.

    Core delivers ``email`` (SMTP) and ``inapp`` (the bell) itself. A channel's
    ``deliver(message)`` is called by the worker; an administrator lists the channels in
    use in the ``core.notify.channels`` setting.
    """


@hookspec
def ordo_register_cli(group: click.Group) -> None:
    """Add commands to ``group`` (usually one sub-group ``ordo <plugin> …``).

    Called while the ``ordo`` command line starts, for enabled plugins only.
    """


# --- screens: what a page shows ---------------------------------------------------


@hookspec
def ordo_menu_items(user: User) -> list[MenuItem]:
    """Return navigation entries for ``user``; core hides those whose permission is missing.

    Called on each page render. Return entries only for screens the plugin serves.
    """


@hookspec
def ordo_order_panels(order: Order, user: User, session: Session) -> list[Panel]:
    """Return panels (title, rendered HTML) for the order page of ``order``.

    Called when the order page is shown to ``user``; show only what the user may see.
    A panel's ``html`` is escaped unless it is a :class:`markupsafe.Markup`: a plain
    ``str`` shows as text. Render a template into a panel with
    ``Panel(title, Markup(render_template("myplugin/panel.html", ...)))``; the
    template escapes what it inserts, so its output may be trusted.
    """


# --- the order's life --------------------------------------------------------------


@hookspec
def ordo_order_badges(orders: list[Order], session: Session) -> dict[int, list[Badge]]:
    """Return marks to show beside order numbers in order lists, by order id.

    Called once per page of an order list with the page's orders (already in the
    viewer's scope), so answer with one query for all of them, not one per order.
    """


@hookspec
def ordo_order_actions(order: Order, user: User, session: Session) -> list[Action]:
    """Return extra actions available on ``order`` now, besides its step's own.

    Called when the order page or ``GET /api/v1/orders/{id}/actions`` is built and
    when an action is taken. Each action's target must be a known step or ``next``.
    """


@hookspec
def ordo_order_guard(order: Order, action: str, transition: Transition, user: User, session: Session) -> list[str]:
    """Return reasons to refuse ``action`` on ``order`` (empty list: no objection).

    Called before every transition, inside the transaction that would apply it. Every
    plugin's reasons are collected, so the user sees all that blocks the action at once.
    Guards must not change data. Also asked, with ``action="copy"`` and a transition
    from ``draft`` to ``draft``, before an order is copied into a new draft; and before ``reopen`` of a
    completed order (a transition back to *confirmed*). A gate that must hold whenever
    the company commits further watches ``transition.to_status == "confirmed"`` (from any
    other status) and ``copy``, not one action name.
    """


@hookspec
def ordo_order_transitioned(order: Order, transition: Transition, user: User | None, session: Session) -> None:
    """React to a transition that has just been applied, inside the same transaction.

    Write your own rows through ``session``; raising aborts the whole transition.
    Never send mail or call webhooks from here: a later failure would roll the
    transition back after the message left. Record them as rows in the same transaction
    (core's notification outbox, arriving with the notification service, is the place).
    """


@hookspec
def ordo_order_validate(order: Order, session: Session) -> list[Finding]:
    """Return pre-check findings on ``order``: ``Finding("pass"|"warn"|"reject", message)``.

    Called by the pre-check (intake) and when the order page shows its checks.
    """


# --- the demo company ---------------------------------------------------------------


@hookspec
def ordo_demo_data(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> None:
    """Add the plugin's part of the demo company (``ordo demo``) through ``session``.

    Called once, at the end of core's demo population and inside its transaction, with
    the demo's users by e-mail (staff, ``admin@demo.ordo`` and the portal user
    ``customer@demo.ordo``) and its customers by code; products are found by SKU.
    Create data through the plugin's services, date it relative to today so the demo
    works whatever day it is loaded, and never commit: raising aborts the whole demo.
    """


@hookspec
def ordo_demo_pass_step(session: Session, order: Order, users: dict[str, User]) -> bool:
    """Move ``order`` on from the plugin's step it waits at, as the demo's people would.

    Called by ``ordo demo`` while it takes an order along its path (submit, confirm…)
    and the order waits at a step of an enabled plugin, before the step's forward
    (``next``) action is tried. A plugin whose step has no forward action a demo user
    could take (it moves when departments answer, or needs a named approver) does the
    work here through its services, with users of ``users`` (it may add its own demo
    users to it), and returns True; for any other step it returns False. Never commit.
    """


def hook_names() -> list[str]:
    """The names of every hook in this contract, in declaration order."""
    return [name for name, obj in globals().items() if name.startswith("ordo_") and callable(obj)]
