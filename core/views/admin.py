"""Administration screens: which plugins are enabled, and which workflow steps are on.

Thin views over :mod:`core.installation`. Enabling or disabling a plugin changes the
database; running servers notice the change and rebuild their plugin set, so the
screen says it takes effect within a few seconds rather than promising it at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.contrib import Step
from core.installation import disable, enable, set_step_enabled
from core.models import Order, PluginState
from core.plugins import PluginError, PluginInfo, discover
from core.views.common import current_actor, permission_required, screen_blueprint
from core.views.labels import step_label
from core.views.messages import localize
from core.web import db, ordo
from core.workflow import Workflow, step_status

bp = screen_blueprint("admin", __name__, url_prefix="/admin")


@dataclass
class PluginRow:
    """An installed plugin as the plugins screen shows it."""

    info: PluginInfo
    enabled: bool
    running: bool
    enabled_version: str
    required_by: list[str]
    steps: list[Step]

    @property
    def pending(self) -> bool:
        """Whether this server still runs with the plugin's previous state."""
        return self.enabled != self.running


def _plugin_rows() -> list[PluginRow]:
    registry = ordo().registry
    installed = discover()
    states = {s.name: s for s in db().scalars(select(PluginState))}
    enabled = {name for name, s in states.items() if s.enabled}
    rows = []
    for name in sorted(installed):
        info = installed[name]
        rows.append(
            PluginRow(
                info=info,
                enabled=name in enabled,
                running=name in registry.enabled,
                enabled_version=states[name].version if name in states else "",
                required_by=sorted(n for n in enabled if n in installed and name in installed[n].requires),
                steps=sorted((s for s in registry.steps.values() if s.owner == name), key=lambda s: s.position),
            )
        )
    return rows


@bp.get("/plugins")
@permission_required("settings.manage")
def plugins() -> str:
    """Installed plugins with their manifest, whether enabled, and buttons to change that."""
    return render_template("admin/plugins.html", plugins=_plugin_rows())


def _release_database() -> None:
    # enable()/disable() open their own transactions (and run migrations); on SQLite
    # this request's open transaction would hold the write lock they need.
    db().commit()


@bp.post("/plugins/<name>/enable")
@permission_required("settings.manage")
def enable_plugin(name: str) -> Response:
    """Enable a plugin (and what it requires), running its migrations."""
    actor = current_actor()
    _release_database()
    try:
        added = enable(ordo().engine, [name], actor=actor)
    except PluginError as exc:
        flash(localize(str(exc)), "danger")
    else:
        if added:
            flash(
                _(
                    "Enabled: %(names)s. This takes effect within a few seconds.",
                    names=", ".join(added),
                ),
                "success",
            )
        else:
            flash(_("Plugin %(name)s was already enabled.", name=name), "info")
    return redirect(url_for(".plugins"))


@bp.post("/plugins/<name>/disable")
@permission_required("settings.manage")
def disable_plugin(name: str) -> Response:
    """Disable a plugin; its data stays. Orders waiting in its steps move on only if asked."""
    actor = current_actor()
    move_orders = request.form.get("move_orders") == "1"
    _release_database()
    try:
        removed = disable(ordo().engine, [name], actor=actor, move_orders=move_orders)
    except PluginError as exc:
        flash(localize(str(exc)), "danger")
    else:
        if removed:
            flash(
                _(
                    "Disabled: %(names)s. Its data is kept. This takes effect within a few seconds.",
                    names=", ".join(removed),
                ),
                "success",
            )
        else:
            flash(_("Plugin %(name)s was not enabled.", name=name), "info")
    return redirect(url_for(".plugins"))


@bp.get("/steps")
@permission_required("settings.manage")
def steps() -> str:
    """The workflow pipeline: every step with its position, owner, status and switch."""
    session = db()
    workflow = Workflow(ordo().registry, session)
    waiting = dict(session.execute(select(Order.step, func.count()).group_by(Order.step)).tuples().all())
    rows = [
        {
            "step": step,
            "status": step_status(step),
            "enabled": step.key not in workflow.disabled,
            "waiting": waiting.get(step.key, 0),
        }
        for step in sorted(workflow.steps.values(), key=lambda s: s.position)
    ]
    return render_template("admin/steps.html", rows=rows)


@bp.post("/steps/<key>")
@permission_required("settings.manage")
def toggle_step(key: str) -> Response:
    """Switch an optional step on (``enabled=1``) or off (``enabled=0``)."""
    session = db()
    registry = ordo().registry
    if key not in registry.steps:
        raise NotFound()
    enabled = request.form.get("enabled") == "1"
    try:
        set_step_enabled(session, registry, key, enabled, actor=current_actor())
        session.commit()
    except PluginError as exc:
        session.rollback()
        flash(localize(str(exc)), "danger")
    else:
        if enabled:
            flash(_("Step “%(step)s” is on.", step=step_label(key)), "success")
        else:
            flash(_("Step “%(step)s” is off; orders now skip it.", step=step_label(key)), "success")
    return redirect(url_for(".steps"))
