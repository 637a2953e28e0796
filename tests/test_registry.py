"""The registry: a plugin's own hook specs, bridges registered only with both plugins,
and refusal of contributions that do not fit.

The plugins here are real modules built in the test, passed to the registry as the
installed set, so no package has to be installed for each case.
"""

from __future__ import annotations

import sys
import types

import pytest

from core import hookimpl, hookspec
from core.contrib import Permission
from core.plugins import PluginError, PluginInfo, Registry


def _plugin(name: str, requires: tuple[str, ...] = (), extras: dict[str, str] | None = None, **hooks) -> PluginInfo:
    module = types.ModuleType(f"test_plugin_{name}")
    module.__doc__ = f"{name.title()}: a plugin made by the test."
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return PluginInfo(name, "1.0", requires, extras or {}, f"{name.title()}", "", module)


def _metrics_spec_module() -> types.ModuleType:
    specs = types.ModuleType("test_metric_specs")

    @hookspec
    def ordo_kpi_metrics():
        """Contribute metrics (defined by the 'metrics' plugin)."""

    specs.ordo_kpi_metrics = ordo_kpi_metrics
    return specs


def _metrics_plugin() -> PluginInfo:
    specs = _metrics_spec_module()
    module = types.ModuleType("test_plugin_metrics")
    module.__doc__ = "Metrics: defines its own hook spec."

    @hookimpl
    def ordo_add_hookspecs(pm):
        pm.add_hookspecs(specs)

    module.ordo_add_hookspecs = ordo_add_hookspecs
    return PluginInfo("metrics", "1.0", (), {}, "Metrics", "", module)


def _contributor() -> PluginInfo:
    module = types.ModuleType("test_plugin_sales")
    module.__doc__ = "Sales: implements the metrics plugin's hook when it is there."

    @hookimpl(optionalhook=True)
    def ordo_kpi_metrics():
        return ["order_count"]

    module.ordo_kpi_metrics = ordo_kpi_metrics
    return PluginInfo("sales", "1.0", (), {}, "Sales", "", module)


def test_a_plugin_defines_hook_specs_that_others_implement_optionally():
    installed = {"metrics": _metrics_plugin(), "sales": _contributor()}
    both = Registry(["metrics", "sales"], installed)
    assert both.hook.ordo_kpi_metrics() == [["order_count"]]
    # Without the defining plugin the implementer still loads: its hook is optional.
    alone = Registry(["sales"], installed)
    assert not hasattr(alone.hook, "ordo_kpi_metrics") or alone.hook.ordo_kpi_metrics.spec is None


def test_an_implementation_of_an_unknown_hook_is_refused():
    installed = {"typo": _plugin("typo", ordo_register_permisions=lambda: [])}
    with pytest.raises(PluginError, match="does not exist"):
        Registry(["typo"], installed)


def test_bridge_is_registered_only_when_both_plugins_are_enabled():
    bridge = types.ModuleType("test_bridge_a_b")

    @hookimpl
    def ordo_register_permissions():
        return [Permission("a.bridge.use", "Use the a+b bridge")]

    bridge.ordo_register_permissions = ordo_register_permissions
    sys.modules["test_bridge_a_b"] = bridge
    try:
        installed = {"a": _plugin("a", extras={"b": "test_bridge_a_b"}), "b": _plugin("b")}
        assert "a.bridge.use" in Registry(["a", "b"], installed).permissions
        assert "a.bridge.use" not in Registry(["a"], installed).permissions
    finally:
        del sys.modules["test_bridge_a_b"]


def test_requirements_come_first_and_errors_name_the_culprit():
    installed = {"base": _plugin("base"), "top": _plugin("top", requires=("base",))}
    assert Registry(["top"], installed).enabled == ["base", "top"]
    with pytest.raises(PluginError, match="'lonely' requires 'ghost', which is not installed"):
        Registry(["lonely"], {"lonely": _plugin("lonely", requires=("ghost",))})
    cycle = {"x": _plugin("x", requires=("y",)), "y": _plugin("y", requires=("x",))}
    with pytest.raises(PluginError, match="circular plugin requirement: x → y → x"):
        Registry(["x"], cycle)


def test_duplicate_permission_codes_are_refused():
    installed = {"dup": _plugin("dup", ordo_register_permissions=lambda: [Permission("orders.read", "Again")])}
    with pytest.raises(PluginError, match=r"duplicate permission .orders\.read."):
        Registry(["dup"], installed)


@pytest.mark.parametrize("schedule", ["every:0", "hourly", "daily:24:00", "weekly:fri", "weekly:xyz:09:00", ""])
def test_job_schedules_are_checked(schedule):
    from core.contrib import Job

    with pytest.raises(ValueError, match="schedule"):
        Job("digest", schedule, lambda session, now: None)


@pytest.mark.parametrize("schedule", ["every:60", "daily:09:30", "weekly:mon:08:00"])
def test_good_job_schedules_pass(schedule):
    from core.contrib import Job

    assert Job("digest", schedule, lambda session, now: None).schedule == schedule


@pytest.mark.parametrize("name", ["billing", "order", "customer", "inspection", "audit"])
def test_the_scaffold_refuses_names_that_would_clash(tmp_path, name):
    from core.scaffold import create_plugin

    with pytest.raises(ValueError):
        create_plugin(name, tmp_path)
