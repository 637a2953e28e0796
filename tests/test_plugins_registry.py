"""The registry refuses bad contributions at start-up, and the contract suite catches what it lets through.

Plugins here are made up in memory (:func:`core.contract.fake_plugin`) and handed to
:class:`core.plugins.Registry` through ``installed=``, next to the real installed ones.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.contract import PluginContract, fake_plugin
from core.contrib import (
    Action,
    DocumentType,
    MenuItem,
    MigrationBranch,
    Permission,
    Setting,
    Step,
)
from core.hookspecs import hookimpl
from core.models import User
from core.plugins import PluginError, PluginInfo, Registry, discover


def registry_with(*fakes: PluginInfo, also: tuple[str, ...] = ()) -> Registry:
    """A registry with the given made-up plugins (and any real ones named in ``also``) enabled."""
    installed = {**discover(), **{f.name: f for f in fakes}}
    return Registry([*also, *(f.name for f in fakes)], installed)


def steps(*contributed: Step) -> Any:
    return lambda: list(contributed)


def test_a_plugin_step_joins_the_pipeline_owned_by_its_plugin():
    registry = registry_with(fake_plugin("qc", ordo_register_steps=steps(Step("qc.sample", "Sampling", 250, ()))))
    assert registry.steps["qc.sample"].owner == "qc"
    assert registry.enabled == ["qc"]


@pytest.mark.req("CORE-2")
def test_duplicate_step_keys_are_refused():
    twice = fake_plugin("qc", ordo_register_steps=steps(Step("qc.sample", "A", 250), Step("qc.sample", "B", 260)))
    with pytest.raises(PluginError, match=r"^duplicate workflow step 'qc.sample'$"):
        registry_with(twice)
    core_key = fake_plugin("qc", ordo_register_steps=steps(Step("draft", "My draft", 50)))
    with pytest.raises(PluginError, match=r"^duplicate workflow step 'draft'$"):
        registry_with(core_key)


@pytest.mark.req("CORE-2")
@pytest.mark.parametrize("position", [0, 100, 500, 1000, -5, 750])
def test_a_step_on_a_milestone_or_outside_the_phases_is_refused(position):
    plugin = fake_plugin("qc", ordo_register_steps=steps(Step("qc.sample", "Sampling", position)))
    with pytest.raises(PluginError, match=rf"^step 'qc.sample' has position {position}; plugin steps lie strictly"):
        registry_with(plugin)


@pytest.mark.req("CORE-2")
def test_two_steps_at_one_position_are_refused():
    plugin = fake_plugin("qc", ordo_register_steps=steps(Step("qc.sample", "Sampling", 300)))
    with pytest.raises(PluginError, match=r"^steps 'inspection.inspect' and 'qc.sample' share position 300$"):
        registry_with(plugin, also=("inspection",))


@pytest.mark.req("CORE-2")
def test_a_step_named_outside_its_plugin_is_refused():
    plugin = fake_plugin("qc", ordo_register_steps=steps(Step("quality.sample", "Sampling", 250)))
    with pytest.raises(PluginError, match=r"^step 'quality.sample' of plugin 'qc' must be named qc.<name>$"):
        registry_with(plugin)


@pytest.mark.req("CORE-2")
def test_an_action_targeting_an_unknown_step_is_refused():
    lost = Step("qc.sample", "Sampling", 250, (Action("escalate", "Escalate", target="qc.lab"),))
    with pytest.raises(PluginError, match=r"^action 'escalate' of step 'qc.sample' targets unknown step 'qc.lab'$"):
        registry_with(fake_plugin("qc", ordo_register_steps=steps(lost)))


@pytest.mark.req("CORE-2")
def test_an_action_may_target_a_known_step_of_another_plugin():
    back = Step("qc.sample", "Sampling", 250, (Action("reinspect", "Re-inspect", target="inspection.inspect"),))
    registry = registry_with(fake_plugin("qc", requires=("inspection",), ordo_register_steps=steps(back)))
    assert registry.steps["qc.sample"].actions[0].target == "inspection.inspect"


def test_an_unregistered_permission_is_refused():
    guarded = Step("qc.sample", "Sampling", 250, (Action("approve", "Approve", permission="qc.sample.approve"),))
    with pytest.raises(
        PluginError,
        match=r"^action 'approve' of step 'qc.sample' needs permission 'qc.sample.approve', which no plugin",
    ):
        registry_with(fake_plugin("qc", ordo_register_steps=steps(guarded)))
    document = DocumentType("qc.sheet", "Sampling sheet", "qc/sheet.html", "qc.sheet.print")
    with pytest.raises(PluginError, match=r"^document 'qc.sheet' needs permission 'qc.sheet.print'"):
        registry_with(fake_plugin("qc", ordo_register_documents=lambda: [document]))


def test_registering_the_permission_makes_the_same_step_acceptable():
    guarded = Step("qc.sample", "Sampling", 250, (Action("approve", "Approve", permission="qc.sample.approve"),))
    plugin = fake_plugin(
        "qc",
        ordo_register_steps=steps(guarded),
        ordo_register_permissions=lambda: [Permission("qc.sample.approve", "Approve samples", ("warehouse",))],
    )
    registry = registry_with(plugin)
    assert registry.permissions["qc.sample.approve"].plugin == "qc"


def test_duplicate_permissions_and_settings_are_refused():
    copycat = fake_plugin("qc", ordo_register_permissions=lambda: [Permission("inspection.report.read", "Copy")])
    with pytest.raises(
        PluginError, match=r"^duplicate permission 'inspection.report.read' \(from 'inspection' and 'qc'\)$"
    ):
        registry_with(copycat, also=("inspection",))
    twice = Setting("qc.sample_size", int, 5, "Sample size")
    with pytest.raises(PluginError, match=r"^duplicate setting 'qc.sample_size'"):
        registry_with(fake_plugin("qc", ordo_register_settings=lambda: [twice, twice]))


def test_a_hook_that_does_not_exist_is_refused():
    typo = fake_plugin("qc", ordo_register_stepz=lambda: [])
    with pytest.raises(PluginError, match=r"^a plugin implements a hook that does not exist: .*ordo_register_stepz"):
        registry_with(typo)


def test_something_other_than_the_contract_dataclass_is_refused():
    loose = fake_plugin("qc", ordo_register_permissions=lambda: [{"code": "qc.sample.read"}])
    with pytest.raises(PluginError, match=r"^ordo_register_permissions of plugin 'qc' returned .*, not a Permission$"):
        registry_with(loose)


def test_a_migration_branch_must_carry_the_plugin_name(tmp_path):
    wrong = fake_plugin("qc", ordo_register_migrations=lambda: [MigrationBranch("quality", tmp_path)])
    with pytest.raises(PluginError, match=r"^plugin 'qc' registers migration branch 'quality'"):
        registry_with(wrong)
    missing = fake_plugin("qc", ordo_register_migrations=lambda: [MigrationBranch("qc", tmp_path / "nowhere")])
    with pytest.raises(PluginError, match=r"migrations folder .*nowhere is missing$"):
        registry_with(missing)


# --- the contract suite catches what the registry lets through ----------------------


def contract_for(plugin: PluginInfo) -> tuple[PluginContract, dict[str, PluginInfo]]:
    """The contract suite aimed at a made-up plugin, with the installed plugins it sees."""
    contract = PluginContract()
    contract.plugin = plugin.name  # type: ignore[misc]
    return contract, {**discover(), plugin.name: plugin}


def test_the_contract_wants_a_docstring_title_and_a_version():
    contract, installed = contract_for(fake_plugin("qc", doc=None))
    with pytest.raises(AssertionError, match="needs a docstring"):
        contract.test_manifest_is_valid(installed["qc"], installed)
    contract, installed = contract_for(fake_plugin("qc", version="soon"))
    with pytest.raises(AssertionError, match="does not look like a version number"):
        contract.test_manifest_is_valid(installed["qc"], installed)


def test_the_contract_wants_hooks_named_ordo_and_defined_somewhere():
    stray = fake_plugin("qc")

    @hookimpl(optionalhook=True)
    def kpi_metrics() -> list[Any]:
        return []

    stray.module.kpi_metrics = kpi_metrics  # type: ignore[attr-defined]
    contract, installed = contract_for(stray)
    with pytest.raises(AssertionError, match=r"every hook is named ordo_…"):
        contract.test_hooks_are_valid_against_the_specs(installed["qc"], installed)


def test_the_contract_wants_permissions_named_after_the_plugin_and_registered():
    misnamed = fake_plugin("qc", ordo_register_permissions=lambda: [Permission("samples.read", "Read samples")])
    contract, installed = contract_for(misnamed)
    admin = User(email="a@example.com", name="a")
    with pytest.raises(AssertionError, match=r"must be named qc.<entity>.<verb>"):
        contract.test_permissions_are_registered_and_named(Registry(["qc"], installed), admin)
    menu = fake_plugin("qc", ordo_menu_items=lambda user: [MenuItem("Samples", "qc.samples", "qc.sample.read")])
    contract, installed = contract_for(menu)
    with pytest.raises(AssertionError, match=r"menu item 'Samples' needs permission 'qc.sample.read', which nobody"):
        contract.test_permissions_are_registered_and_named(Registry(["qc"], installed), admin)


@pytest.mark.req("CORE-2")
def test_the_contract_wants_every_step_to_have_a_way_out():
    stuck = fake_plugin("qc", ordo_register_steps=steps(Step("qc.sample", "Sampling", 250, ())))
    contract, installed = contract_for(stuck)
    with pytest.raises(AssertionError, match=r"step 'qc.sample' has no action"):
        contract.test_steps_are_named_and_actions_target_known_steps(Registry(["qc"], installed))


def test_the_contract_wants_setting_defaults_of_the_declared_type(session):
    wrong = fake_plugin("qc", ordo_register_settings=lambda: [Setting("qc.sample_size", int, "5", "Sample size")])
    contract, installed = contract_for(wrong)
    with pytest.raises(AssertionError, match=r"default '5' is not a int"):
        contract.test_settings_load_with_defaults_of_their_type(Registry(["qc"], installed), session)
    flag = fake_plugin("qc", ordo_register_settings=lambda: [Setting("qc.sample_size", int, True, "Sample size")])
    contract, installed = contract_for(flag)
    with pytest.raises(AssertionError, match=r"default True is not a int"):
        contract.test_settings_load_with_defaults_of_their_type(Registry(["qc"], installed), session)


def test_the_contract_catches_mapped_tables_without_migrations(tmp_path):
    # The inspection plugin's table is on the shared metadata; a plugin claiming the
    # name "inspection" without a branch must be caught.
    Registry(["inspection"])
    impostor = fake_plugin("inspection")
    contract, installed = contract_for(impostor)
    with pytest.raises(AssertionError, match=r"models and migrations of 'inspection' differ: .*add_table"):
        contract.test_migrations_reach_head_from_empty_without_drift(tmp_path, installed["inspection"], installed)
