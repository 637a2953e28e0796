"""Plugins ship default roles (``ordo_register_roles``) and detour steps (``Step.detour``).

A plugin role is created with its name, data scope and grants when the plugin is
enabled, before its permissions are granted; an existing role is never overwritten and
core's roles cannot be redefined. A detour step is reached only by naming it: ``next``
never lands in it, and from it ``next`` leads to the first ordinary step after it.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.contract import fake_plugin
from core.contrib import Action, Permission, RoleDefinition, Step
from core.models import Role
from core.plugins import PluginError, PluginInfo, Registry, discover
from core.roles import grant_new_permissions
from core.services.orders import take_action
from core.testing import make_order
from core.workflow import Workflow


def registry_with(*fakes: PluginInfo) -> Registry:
    installed = {**discover(), **{f.name: f for f in fakes}}
    return Registry([f.name for f in fakes], installed)


def roles(*defined: RoleDefinition) -> Any:
    return lambda: list(defined)


INSPECTOR = RoleDefinition("qc_inspector", "Inspector", "branch", ("orders.read",))
PERMISSION = Permission("qc.sample.approve", "Approve samples", ("qc_inspector",))


def qc_plugin(*defined: RoleDefinition) -> PluginInfo:
    return fake_plugin("qc", ordo_register_roles=roles(*defined), ordo_register_permissions=lambda: [PERMISSION])


def test_a_plugin_role_is_created_with_its_name_scope_grants_and_permissions(session: Session):
    registry = registry_with(qc_plugin(INSPECTOR))
    assert registry.roles["qc_inspector"].plugin == "qc"
    grant_new_permissions(session, registry.permissions.values(), registry.roles.values())
    role = session.scalar(select(Role).where(Role.code == "qc_inspector"))
    assert role is not None
    assert (role.name, role.data_scope, role.builtin) == ("Inspector", "branch", True)
    assert role.permission_codes == {"orders.read", "qc.sample.approve"}


def test_an_existing_role_is_left_as_the_administrator_made_it(session: Session):
    session.add(Role(code="qc_inspector", name="Our inspectors", data_scope="own"))
    session.flush()
    registry = registry_with(qc_plugin(INSPECTOR))
    grant_new_permissions(session, registry.permissions.values(), registry.roles.values())
    role = session.scalar(select(Role).where(Role.code == "qc_inspector"))
    assert role is not None
    assert (role.name, role.data_scope) == ("Our inspectors", "own")
    assert "orders.read" not in role.permission_codes


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        (RoleDefinition("sales", "Sales"), r"redefines core's default role 'sales'"),
        (RoleDefinition("qc_x", "X", "everything"), r"unknown data scope 'everything'"),
        (RoleDefinition("qc_x", "X", "all", ("no.such.permission",)), r"grants unknown permissions"),
    ],
)
def test_a_bad_role_is_refused_at_start_up(definition: RoleDefinition, message: str):
    with pytest.raises(PluginError, match=message):
        registry_with(qc_plugin(definition))


DETOUR_STEPS = (
    Step("qc.sample", "Sampling", 20, (Action("escalate", "Escalate", target="qc.boss"), Action("pass", "Pass"))),
    Step("qc.boss", "Boss decides", 25, (Action("overrule", "Overrule"),), detour=True),
    Step("qc.pack", "Packing", 30, (Action("packed", "Packed"),)),
)


@pytest.fixture
def ordo_plugins() -> tuple[str, ...]:
    return ()


def test_next_never_lands_in_a_detour_but_leads_on_from_it(session: Session, admin: Any, seed: dict[str, Any]):
    registry = registry_with(fake_plugin("qc", ordo_register_steps=lambda: list(DETOUR_STEPS)))
    workflow = Workflow(registry, session)
    assert [s.key for s in workflow.pipeline()][:4] == ["draft", "qc.sample", "qc.pack", "submitted"]
    order = make_order(session, admin)
    take_action(session, registry, admin, order, "submit")
    assert order.step == "qc.sample"
    take_action(session, registry, admin, order, "pass")
    assert order.step == "qc.pack", "next from qc.sample skips the detour at 25"
    second = make_order(session, admin)
    take_action(session, registry, admin, second, "submit")
    take_action(session, registry, admin, second, "escalate")
    assert second.step == "qc.boss"
    take_action(session, registry, admin, second, "overrule")
    assert second.step == "qc.pack", "next from the detour leads to the first ordinary step after it"
