"""Plugin discovery, dependency order and the per-app registry of contributions.

A plugin is a module found through the ``ordo.plugins`` entry-point group, whose
module-level manifest says ``name``, ``version``, ``requires`` and optional
``extras`` (bridge modules registered only when another plugin is enabled too).
"Installed" means found; "enabled" is stored per database and only enabled plugins
are registered with a :class:`Registry`'s plugin manager.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from core import builtin, hookspecs
from core.contrib import (
    Channel,
    DocumentType,
    Job,
    MigrationBranch,
    NotificationTemplate,
    Permission,
    RoleDefinition,
    Setting,
    Step,
)

ENTRY_POINT_GROUP = "ordo.plugins"

#: The languages every notification template must speak.
NOTIFICATION_LANGUAGES = ("zh_CN", "en")
#: Channels core delivers itself; plugins add others (``ordo_register_channels``).
CORE_CHANNELS = ("email", "inapp")


class PluginError(Exception):
    """A plugin cannot be loaded, enabled or disabled; the message says why."""


@dataclass(frozen=True)
class PluginInfo:
    """An installed plugin's manifest."""

    name: str
    version: str
    requires: tuple[str, ...]
    #: Other plugin name → bridge module registered only when both are enabled.
    extras: Mapping[str, str]
    title: str
    description: str
    module: ModuleType = field(compare=False, repr=False)


def _manifest(module: ModuleType, entry_name: str) -> PluginInfo:
    name = getattr(module, "name", None)
    if name != entry_name:
        raise PluginError(
            f"plugin module {module.__name__} declares name {name!r} but its entry point is {entry_name!r}"
        )
    doc = (module.__doc__ or "").strip()
    title, _, rest = doc.partition("\n")
    return PluginInfo(
        name=name,
        version=str(getattr(module, "version", "0")),
        requires=tuple(getattr(module, "requires", ())),
        extras=dict(getattr(module, "extras", {})),
        title=title.strip() or name,
        description=rest.strip(),
        module=module,
    )


def discover() -> dict[str, PluginInfo]:
    """Every installed plugin, by name, found through the ``ordo.plugins`` entry points."""
    found: dict[str, PluginInfo] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        module = ep.load()
        if not isinstance(module, ModuleType):
            raise PluginError(f"entry point {ep.name!r} must name a module, not {module!r}")
        info = _manifest(module, ep.name)
        if info.name in found:
            raise PluginError(f"two installed packages both provide plugin {info.name!r}")
        found[info.name] = info
    return found


def dependency_order(names: Iterable[str], installed: Mapping[str, PluginInfo]) -> list[str]:
    """``names`` with their requirements, requirements first; errors name the culprit.

    Raises :class:`PluginError` for a requirement that is not installed and for a
    circular requirement (naming the cycle).
    """
    ordered: list[str] = []
    visiting: list[str] = []

    def visit(name: str, wanted_by: str | None) -> None:
        if name in ordered:
            return
        if name in visiting:
            cycle = [*visiting[visiting.index(name) :], name]
            raise PluginError("circular plugin requirement: " + " → ".join(cycle))
        if name not in installed:
            if wanted_by is None:
                raise PluginError(f"plugin {name!r} is not installed")
            raise PluginError(f"plugin {wanted_by!r} requires {name!r}, which is not installed")
        visiting.append(name)
        for req in installed[name].requires:
            visit(req, name)
        visiting.pop()
        ordered.append(name)

    for name in names:
        visit(name, None)
    return ordered


def _results(impl: Any) -> list[Any]:
    """What a start-up hook implementation returned, as a list (None counts as empty)."""
    return list(impl.function() or ())


class Registry:
    """The enabled plugins of one app or command, and everything they contributed.

    Built once per app (no global plugin manager): register core's contract, the
    enabled plugins in dependency order and their bridges, then collect and check
    every start-up contribution.
    """

    def __init__(self, enabled: Iterable[str], installed: Mapping[str, PluginInfo] | None = None):
        self.installed = dict(installed if installed is not None else discover())
        self.enabled = dependency_order(enabled, self.installed)
        self.pm = pluggy.PluginManager("ordo")
        self.pm.add_hookspecs(hookspecs)
        self.pm.register(builtin, name="core")
        for service, module in builtin.SERVICE_HOOKS.items():
            # Core's services contribute like plugins do, each from its own module.
            self.pm.register(importlib.import_module(module), name=f"core+{service}")
        for name in self.enabled:
            self.pm.register(self.installed[name].module, name=name)
        for name in self.enabled:
            for other, bridge in self.installed[name].extras.items():
                if other in self.enabled:
                    self.pm.register(importlib.import_module(bridge), name=f"{name}+{other}")
        self.pm.hook.ordo_add_hookspecs.call_historic(kwargs={"pm": self.pm})
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"a plugin implements a hook that does not exist: {exc}") from exc
        for module_name in self._collect("ordo_register_models"):
            importlib.import_module(module_name)
        self.permissions = self._permissions()
        self.roles = self._roles()
        self.settings = self._keyed(self._collect("ordo_register_settings", Setting), "key", "setting")
        self.steps = self._steps()
        self.documents = self._keyed(self._collect("ordo_register_documents", DocumentType), "name", "document type")
        self.jobs = self._keyed(self._collect("ordo_register_jobs", Job), "name", "job")
        self.notifications = self._keyed(
            self._collect("ordo_register_notifications", NotificationTemplate), "name", "notification template"
        )
        self.channels = self._keyed(self._collect("ordo_register_channels", Channel), "name", "channel")
        self._check_notifications()
        self.migrations = self._migrations()
        self._check_permissions_used()

    @property
    def hook(self) -> Any:
        """The plugin manager's hook relay: ``registry.hook.ordo_order_guard(...)``."""
        return self.pm.hook

    def _collect(self, hook_name: str, kind: type | None = None) -> list[Any]:
        """Call a start-up hook on every plugin; tag each result with its plugin's name."""
        caller = getattr(self.pm.hook, hook_name)
        results: list[Any] = []
        for impl in caller.get_hookimpls():
            owner = impl.plugin_name.split("+", 1)[0]
            for item in _results(impl):
                if kind is not None:
                    if not isinstance(item, kind):
                        raise PluginError(f"{hook_name} of plugin {owner!r} returned {item!r}, not a {kind.__name__}")
                    if hasattr(item, "plugin"):
                        item = replace(item, plugin=owner)  # type: ignore[type-var]
                results.append(item)
        return results

    def _keyed(self, items: list[Any], attr: str, what: str) -> dict[str, Any]:
        keyed: dict[str, Any] = {}
        for item in items:
            key = getattr(item, attr)
            if key in keyed:
                raise PluginError(f"duplicate {what} {key!r} (from {keyed[key].plugin!r} and {item.plugin!r})")
            keyed[key] = item
        return keyed

    def _check_notifications(self) -> None:
        """Every template speaks both languages; no channel takes a core channel's name."""
        for template in self.notifications.values():
            for part in ("subject", "body"):
                missing = [lang for lang in NOTIFICATION_LANGUAGES if not getattr(template, part).get(lang)]
                if missing:
                    raise PluginError(
                        f"notification template {template.name!r} of plugin {template.plugin!r} has no {part} in "
                        + ", ".join(missing)
                    )
        for name in CORE_CHANNELS:
            if name in self.channels:
                raise PluginError(f"plugin {self.channels[name].plugin!r} registers channel {name!r}, which is core's")

    def _permissions(self) -> dict[str, Permission]:
        return self._keyed(self._collect("ordo_register_permissions", Permission), "code", "permission")

    def _roles(self) -> dict[str, RoleDefinition]:
        from core.models.user import DATA_SCOPES
        from core.roles import DEFAULT_ROLES

        roles = self._keyed(self._collect("ordo_register_roles", RoleDefinition), "code", "role")
        for role in roles.values():
            if role.code in DEFAULT_ROLES:
                raise PluginError(f"plugin {role.plugin!r} redefines core's default role {role.code!r}")
            if role.scope not in DATA_SCOPES:
                raise PluginError(f"role {role.code!r} of plugin {role.plugin!r} has unknown data scope {role.scope!r}")
            unknown = [code for code in role.grants if code not in self.permissions]
            if unknown:
                raise PluginError(f"role {role.code!r} of plugin {role.plugin!r} grants unknown permissions {unknown}")
        return roles

    def _steps(self) -> dict[str, Step]:
        from core.workflow import check_steps

        steps: list[Step] = []
        for impl in self.pm.hook.ordo_register_steps.get_hookimpls():
            owner = impl.plugin_name.split("+", 1)[0]
            for step in _results(impl):
                if not isinstance(step, Step):
                    raise PluginError(f"ordo_register_steps of {owner!r} returned {step!r}, not a Step")
                steps.append(replace(step, owner=owner))
        return check_steps(steps)

    def _migrations(self) -> dict[str, MigrationBranch]:
        branches: dict[str, MigrationBranch] = {}
        caller = self.pm.hook.ordo_register_migrations
        for impl in caller.get_hookimpls():
            owner = impl.plugin_name.split("+", 1)[0]
            for branch in _results(impl):
                if not isinstance(branch, MigrationBranch):
                    raise PluginError(f"ordo_register_migrations of {owner!r} returned {branch!r}")
                if branch.label != owner:
                    raise PluginError(
                        f"plugin {owner!r} registers migration branch {branch.label!r}; "
                        "the branch label must be the plugin's name"
                    )
                if not branch.versions.is_dir():
                    raise PluginError(f"plugin {owner!r}: migrations folder {branch.versions} is missing")
                branches[owner] = branch
        return branches

    def _check_permissions_used(self) -> None:
        used: list[tuple[str, str]] = []
        for step in self.steps.values():
            used += [(a.permission, f"action {a.name!r} of step {step.key!r}") for a in step.actions if a.permission]
        used += [(d.permission, f"document {d.name!r}") for d in self.documents.values()]
        for code, where in used:
            if code not in self.permissions:
                raise PluginError(f"{where} needs permission {code!r}, which no plugin registers")

    def results_by_plugin(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a hook and pair each implementation's result with its plugin's name.

        For contributions core tags with their origin (panels, findings), where pluggy's
        plain call would lose who said what.
        """
        results = []
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
            result = impl.function(**{name: kwargs[name] for name in impl.argnames})
            if result is not None:
                results.append((impl.plugin_name.split("+", 1)[0], result))
        return results

    def plugin_folders(self, sub: str) -> list[Path]:
        """The ``sub`` folder (templates, translations, …) of each enabled plugin that has one."""
        folders = []
        for name in self.enabled:
            folder = Path(self.installed[name].module.__file__ or "").parent / sub
            if folder.is_dir():
                folders.append(folder)
        return folders
