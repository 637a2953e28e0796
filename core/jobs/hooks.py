"""Core's jobs service: what it contributes through the plugin hooks (registered as ``core+jobs``).

The ``jobs.manage`` permission (administrators by default), the Jobs menu entry, and
the Jobs screen and API blueprints. The jobs themselves come from every plugin's
``ordo_register_jobs``; core's own (the customer digest) are declared by the notify
service.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from core.contrib import Job, MenuItem, Permission
from core.hookspecs import hookimpl
from core.jobs.manage import MANAGE
from core.labels import N_
from core.models import User


@hookimpl
def ordo_register_permissions() -> list[Permission]:
    """``jobs.manage``: see scheduled jobs and their runs, run one now, reschedule, switch off."""
    return [Permission(MANAGE, "Manage scheduled jobs", ("admin",))]


@hookimpl
def ordo_menu_items(user: User) -> list[MenuItem]:
    """The Jobs screen, between Workflow steps and Users."""
    return [MenuItem("Jobs", "jobs.list_jobs", MANAGE, order=925, icon="clock-history")]


@hookimpl
def ordo_register_blueprints(app: Flask) -> list[Any]:
    """The Jobs screen (``/admin/jobs``) and API (``/api/v1/jobs``)."""
    from core.jobs import api, views

    return [views.bp, api.blp]


def _seal_audit_log(session: Any, now: Any) -> None:
    from core.services.audit_seal import seal

    seal(session, now)


@hookimpl
def ordo_register_jobs() -> list[Job]:
    """``core.audit_seal``: extend the audit log's hash chain over new entries (every five minutes)."""
    return [Job("core.audit_seal", "every:300", _seal_audit_log, label=N_("Seal the audit log (hash chain)"))]
