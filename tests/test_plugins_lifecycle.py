"""Enabling and disabling plugins on a live database: requirements, refusals, moving orders, data kept.

Uses the real third-party inspection plugin (installed from tests/thirdparty) for the
order-moving rules, and plugins made up in memory (``installed=`` dicts) for
requirements that are missing or circular.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from ordo_inspection.services import record_report
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.app import create_app
from core.contract import fake_plugin
from core.contrib import Step
from core.installation import disable, enable, enabled_plugins
from core.models import AuditLog, Order, OrderTransition, User
from core.plugins import PluginError, discover
from core.services.orders import take_action
from core.testing import make_order
from core.web import OrdoState

STEP = "inspection.inspect"


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["inspection"]


@pytest.fixture
def reopen(app: Flask) -> Iterator[Callable[[], Flask]]:
    """Build the app again on the same database, as a server does after plugins change."""
    made: list[Flask] = []

    def factory() -> Flask:
        url = app.extensions["ordo"].instance.database_url
        again = create_app({"INSTANCE": Path(app.instance_path), "DATABASE_URL": url, "TESTING": True})
        made.append(again)
        return again

    yield factory
    for again in made:
        again.extensions["ordo"].engine.dispose()


def awaiting_inspection(session: Session, state: OrdoState, actor: User, **overrides: Any) -> Order:
    """A new order submitted and confirmed, so it waits for inspection."""
    order = make_order(session, actor, **overrides)
    take_action(session, state.registry, actor, order, "submit")
    take_action(session, state.registry, actor, order, "confirm")
    session.commit()
    return order


def report_count(engine: Engine) -> int:
    """Rows in ``inspection_report``, read without the plugin's models."""
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM inspection_report")).scalar_one())


@pytest.mark.req("CORE-2")
def test_disabling_is_refused_while_orders_wait_in_its_step_and_lists_them(session, state, admin, seed):
    waiting = awaiting_inspection(session, state, admin)
    other = awaiting_inspection(session, state, admin, reference="PO-2")
    session.close()  # the installation takes the database's write lock itself

    with pytest.raises(PluginError) as refused:
        disable(state.engine, ["inspection"], admin)
    message = str(refused.value)
    assert message.startswith("2 order(s) wait in steps of inspection: ")
    assert f"{waiting.number} (inspection.inspect)" in message and f"{other.number} (inspection.inspect)" in message
    assert "--move-orders" in message
    assert enabled_plugins(state.engine) == ["inspection"]
    assert session.get(Order, waiting.id).step == STEP


@pytest.mark.req("CORE-2")
def test_disabling_with_move_orders_records_the_move_then_core_flow_applies_and_data_stays(
    session, state, admin, seed, reopen
):
    order = awaiting_inspection(session, state, admin)
    record_report(session, admin, order, passed=False, note="wrong labels")
    session.commit()
    session.close()

    assert disable(state.engine, ["inspection"], admin, move_orders=True) == ["inspection"]

    assert enabled_plugins(state.engine) == []
    moved = session.get(Order, order.id)
    assert (moved.step, moved.status) == ("confirmed", "confirmed")
    last = session.scalars(select(OrderTransition).where(OrderTransition.order_id == order.id)).all()[-1]
    assert (last.action, last.from_step, last.to_step, last.actor_id) == (
        "plugin_disabled",
        STEP,
        "confirmed",
        admin.id,
    )
    assert last.reason == "plugin inspection disabled"
    audited = session.scalars(select(AuditLog).where(AuditLog.entity == "plugin", AuditLog.action == "disable")).one()
    assert audited.changes == {"plugin": "inspection", "orders_moved": 1}
    session.close()
    assert report_count(state.engine) == 1  # disabling never deletes a plugin's data

    core_only = reopen()
    core_state = core_only.extensions["ordo"]
    assert core_state.registry.enabled == []
    assert STEP not in core_state.registry.steps
    assert core_only.test_client().get("/inspection/reports").status_code == 404
    with core_state.sessions() as fresh:
        actor = fresh.get(User, admin.id)
        later = make_order(fresh, actor, reference="PO-after")
        take_action(fresh, core_state.registry, actor, later, "submit")
        take_action(fresh, core_state.registry, actor, later, "confirm")
        fresh.commit()
        assert (later.step, later.status) == ("confirmed", "confirmed")
        take_action(fresh, core_state.registry, actor, fresh.get(Order, order.id), "complete")
        fresh.commit()


def test_re_enabling_brings_the_step_back_with_the_old_reports(session, state, admin, seed, reopen):
    order = awaiting_inspection(session, state, admin)
    record_report(session, admin, order, passed=True, note="checked before the switch-off")
    session.commit()
    session.close()
    disable(state.engine, ["inspection"], admin, move_orders=True)

    assert enable(state.engine, ["inspection"], admin) == ["inspection"]
    assert enabled_plugins(state.engine) == ["inspection"]

    again = reopen()
    again_state = again.extensions["ordo"]
    assert again_state.registry.enabled == ["inspection"]
    assert STEP in again_state.registry.steps
    with again_state.sessions() as fresh:
        from ordo_inspection.services import reports_of

        old = fresh.get(Order, order.id)
        assert [r.note for r in reports_of(fresh, old)] == ["checked before the switch-off"]
        actor = fresh.get(User, admin.id)
        later = make_order(fresh, actor, reference="PO-again")
        take_action(fresh, again_state.registry, actor, later, "submit")
        take_action(fresh, again_state.registry, actor, later, "confirm")
        fresh.commit()
        assert later.step == STEP
        actions = {a.name for a in again_state.registry.steps[STEP].actions}
        assert actions == {"pass_inspection"}


# --- requirements: plugins made up in memory ----------------------------------------


@pytest.fixture
def core_engine(make_app: Callable[..., Flask]) -> Engine:
    """The database of an installation with no plugin enabled."""
    return make_app([]).extensions["ordo"].engine


def test_enabling_a_plugin_whose_requirement_is_not_installed_fails_clearly(core_engine):
    installed = {**discover(), "qc": fake_plugin("qc", requires=("metrology",))}
    with pytest.raises(PluginError, match=r"^plugin 'qc' requires 'metrology', which is not installed$"):
        enable(core_engine, ["qc"], installed=installed)
    assert enabled_plugins(core_engine) == []


def test_enabling_an_unknown_plugin_fails_clearly(core_engine):
    with pytest.raises(PluginError, match=r"^plugin 'nosuch' is not installed$"):
        enable(core_engine, ["nosuch"])
    assert enabled_plugins(core_engine) == []


def test_a_circular_requirement_is_refused_naming_the_cycle(core_engine):
    installed = {
        "qc": fake_plugin("qc", requires=("metrology",)),
        "metrology": fake_plugin("metrology", requires=("calibration",)),
        "calibration": fake_plugin("calibration", requires=("qc",)),
    }
    with pytest.raises(PluginError, match=r"^circular plugin requirement: qc → metrology → calibration → qc$"):
        enable(core_engine, ["qc"], installed=installed)
    assert enabled_plugins(core_engine) == []


def test_enabling_brings_its_requirements_and_disabling_a_requirement_is_refused(core_engine):
    qc = fake_plugin(
        "qc",
        requires=("inspection",),
        ordo_register_steps=lambda: [Step("qc.sample", "Sampling", 250, ())],
    )
    installed = {**discover(), "qc": qc}
    assert enable(core_engine, ["qc"], installed=installed) == ["inspection", "qc"]
    assert enabled_plugins(core_engine) == ["inspection", "qc"]
    with pytest.raises(PluginError, match=r"^plugin 'qc' requires inspection; disable 'qc' first$"):
        disable(core_engine, ["inspection"], installed=installed)
    assert disable(core_engine, ["qc", "inspection"], installed=installed) == ["qc", "inspection"]
    assert enabled_plugins(core_engine) == []


def test_a_plugin_whose_contributions_clash_is_not_enabled(core_engine):
    clash = fake_plugin("clash", ordo_register_steps=lambda: [Step("clash.inspect", "Clash", 300, ())])
    installed = {**discover(), "clash": clash}
    enable(core_engine, ["inspection"], installed=installed)
    with pytest.raises(PluginError, match=r"share position 300"):
        enable(core_engine, ["clash"], installed=installed)
    assert enabled_plugins(core_engine) == ["inspection"]
