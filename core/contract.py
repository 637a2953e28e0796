"""The plugin contract suite every plugin's tests inherit (Tryton's ``ModuleTestCase``).

A plugin's test module subclasses :class:`PluginContract` and names its plugin::

    from core.testing import PluginContract

    class TestInspectionContract(PluginContract):
        plugin = "inspection"

and pytest then checks, for that plugin, everything core promises about plugins in
general: the manifest, the hooks against :mod:`core.hookspecs`, permissions, menu
endpoints, workflow steps and their actions, table names, settings, documents,
migrations (head from empty, no drift) and that the plugin works with only its
requirements enabled. The tests use the fixtures of :mod:`core.testing`.

This module must not import :mod:`core.testing` at import time: ``core.testing``
re-exports :class:`PluginContract`, so helpers are imported inside the tests.
"""

from __future__ import annotations

import importlib
import inspect as pyinspect
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
from flask import Flask, url_for
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core import hookimpl, hookspecs, migrate
from core.contrib import NEXT, Step
from core.db import Base, make_engine
from core.models import User
from core.plugins import PluginInfo, Registry, _manifest, dependency_order, discover
from core.workflow import MILESTONES, Workflow


def fake_plugin(
    name: str,
    doc: str | None = "Fake: a plugin made up by a test.\n\nIt exists only in the test that made it.",
    *,
    requires: Sequence[str] = (),
    version: str = "0.0.1",
    **hooks: Callable[..., Any],
) -> PluginInfo:
    """The manifest of a plugin module built in memory, for an ``installed=`` dict of a test.

    ``hooks`` maps hook names to functions, which become the module's ``@core.hookimpl``
    functions. The manifest is read exactly as :func:`core.plugins.discover` reads an
    installed plugin's, so a test can hand Registry, enable or disable a plugin that
    requires something missing, requires itself in a circle, or contributes a mistake.
    """
    module = ModuleType(f"fake_{name}", doc)
    module.name = name  # type: ignore[attr-defined]
    module.version = version  # type: ignore[attr-defined]
    module.requires = tuple(requires)  # type: ignore[attr-defined]
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return _manifest(module, name)


#: The marker attribute pluggy puts on a function decorated with ``@core.hookimpl``.
HOOKIMPL_ATTR = "ordo_impl"
#: Setting types whose values round-trip through the settings table (stored as JSON).
SETTING_TYPES = (bool, int, float, str, list, dict)
_VERSION = re.compile(r"^\d+(\.\d+)*([a-z0-9.+-]*)$")


def own_hookimpls(registry: Registry, hook_name: str, plugin: str) -> list[Any]:
    """The implementations of ``hook_name`` registered by ``plugin`` (and its bridges)."""
    caller = getattr(registry.hook, hook_name)
    return [impl for impl in caller.get_hookimpls() if impl.plugin_name.split("+", 1)[0] == plugin]


def call_own(registry: Registry, hook_name: str, plugin: str, **kwargs: Any) -> list[Any]:
    """Call only ``plugin``'s implementations of a hook (with the arguments each accepts); flatten lists."""
    results: list[Any] = []
    for impl in own_hookimpls(registry, hook_name, plugin):
        result = impl.function(**{name: kwargs[name] for name in impl.argnames})
        results.extend(result or ())
    return results


def module_hookimpls(module: Any) -> dict[str, dict[str, Any]]:
    """The functions of ``module`` decorated with ``@core.hookimpl``, by name, with their options."""
    return {
        name: getattr(obj, HOOKIMPL_ATTR)
        for name, obj in vars(module).items()
        if pyinspect.isfunction(obj) and isinstance(getattr(obj, HOOKIMPL_ATTR, None), dict)
    }


class PluginContract:
    """Checks every plugin must pass; subclass it in the plugin's tests and set :attr:`plugin`."""

    #: The name of the plugin under test (its entry point name).
    plugin: ClassVar[str] = ""

    # --- fixtures: an app with this plugin and its requirements -----------------------

    @pytest.fixture
    def ordo_plugins(self) -> Sequence[str]:
        """The app under test has exactly this plugin (and, through it, its requirements)."""
        return [self.plugin]

    @pytest.fixture
    def installed(self) -> dict[str, PluginInfo]:
        """Every installed plugin; the one under test must be among them."""
        found = discover()
        assert self.plugin, f"{type(self).__name__} must set `plugin = '<name>'`"
        assert self.plugin in found, (
            f"plugin {self.plugin!r} is not installed: no `ordo.plugins` entry point names it "
            f"(installed: {', '.join(sorted(found))})"
        )
        return found

    @pytest.fixture
    def info(self, installed: dict[str, PluginInfo]) -> PluginInfo:
        """The manifest of the plugin under test."""
        return installed[self.plugin]

    @pytest.fixture
    def alone(self, installed: dict[str, PluginInfo]) -> Registry:
        """A registry with only this plugin and its requirements enabled."""
        return Registry([self.plugin], installed)

    # --- manifest -------------------------------------------------------------------

    def test_manifest_is_valid(self, info: PluginInfo, installed: dict[str, PluginInfo]) -> None:
        """Name, version, requirements, extras and a docstring whose first line is the plugin's title."""
        module = info.module
        assert re.fullmatch(r"[a-z][a-z0-9_]*", info.name), f"plugin name {info.name!r} must be a lowercase identifier"
        assert getattr(module, "name", None) == self.plugin
        assert isinstance(getattr(module, "version", None), str), "`version` must be a string such as '1.0.0'"
        assert _VERSION.match(info.version), f"version {info.version!r} does not look like a version number"
        assert isinstance(getattr(module, "requires", ()), (tuple, list)), "`requires` must be a tuple of plugin names"
        assert self.plugin not in info.requires, "a plugin cannot require itself"
        for required in info.requires:
            assert required in installed, f"{self.plugin!r} requires {required!r}, which is not installed"
        dependency_order([self.plugin], installed)  # no cycle
        for other, bridge in info.extras.items():
            assert other != self.plugin and other not in info.requires, (
                f"extra {other!r}: a bridge is for an optional plugin, not a requirement"
            )
            importlib.import_module(bridge)
        doc = (module.__doc__ or "").strip()
        assert doc, f"plugin module {module.__name__} needs a docstring: a title line, then what it does"
        title = doc.splitlines()[0].strip()
        assert title == info.title and len(title) <= 120, "the docstring's first line is the plugin's title"
        assert info.description, "the docstring says in a few lines what the department does, after the title"

    # --- hooks ----------------------------------------------------------------------

    def test_hooks_are_valid_against_the_specs(self, info: PluginInfo, installed: dict[str, PluginInfo]) -> None:
        """The registry builds with the plugin (and its bridges); every hookimpl matches a spec."""
        partners = [other for other in info.extras if other in installed]
        registry = Registry([self.plugin, *partners], installed)
        registry.pm.check_pending()
        known = set(hookspecs.hook_names())
        modules = [info.module, *(importlib.import_module(b) for b in info.extras.values())]
        found_any = False
        for module in modules:
            for name, opts in module_hookimpls(module).items():
                found_any = True
                assert name.startswith("ordo_"), f"{module.__name__}.{name}: every hook is named ordo_…"
                assert name in known or opts.get("optionalhook"), (
                    f"{module.__name__}.{name} implements no hook of core.hookspecs; "
                    "mark it @hookimpl(optionalhook=True) if another plugin defines it"
                )
                if name in known:
                    spec_args = set(pyinspect.signature(getattr(hookspecs, name)).parameters)
                    impl_args = set(pyinspect.signature(getattr(module, name)).parameters)
                    assert impl_args <= spec_args, (
                        f"{module.__name__}.{name} takes {sorted(impl_args - spec_args)}, "
                        f"which the spec does not pass (it passes {sorted(spec_args)})"
                    )
        assert found_any, f"plugin {self.plugin!r} implements no hook at all"
        assert self.plugin in registry.enabled

    # --- permissions ----------------------------------------------------------------

    def test_permissions_are_registered_and_named(self, alone: Registry, admin: User) -> None:
        """Its permissions read ``<plugin>.…``; every permission it uses is registered."""
        own = [p for p in alone.permissions.values() if p.plugin == self.plugin]
        for permission in own:
            assert permission.code.startswith(f"{self.plugin}."), (
                f"permission {permission.code!r} of {self.plugin!r} must be named {self.plugin}.<entity>.<verb>"
            )
            assert permission.label, f"permission {permission.code!r} needs a label"
        used = self._permissions_used(alone, admin)
        for code, where in used:
            assert code in alone.permissions, f"{where} needs permission {code!r}, which nobody registers"

    def _permissions_used(self, registry: Registry, user: User) -> list[tuple[str, str]]:
        used: list[tuple[str, str]] = []
        for step in self._own_steps(registry):
            used += [(a.permission, f"action {a.name!r} of {step.key!r}") for a in step.actions if a.permission]
        used += [(d.permission, f"document {d.name!r}") for d in registry.documents.values() if d.plugin == self.plugin]
        for item in call_own(registry, "ordo_menu_items", self.plugin, user=user):
            if item.permission:
                used.append((item.permission, f"menu item {item.label!r}"))
        return used

    # --- screens --------------------------------------------------------------------

    def test_menu_endpoints_exist(self, app: Flask, state: Any, admin: User) -> None:
        """Every menu item the plugin contributes points at an endpoint of the app."""
        items = call_own(state.registry, "ordo_menu_items", self.plugin, user=admin)
        with app.test_request_context():
            for item in items:
                assert item.endpoint in app.view_functions, (
                    f"menu item {item.label!r} points at {item.endpoint!r}, which no blueprint serves"
                )
                assert url_for(item.endpoint).startswith("/")
                assert item.endpoint.split(".", 1)[0] == self.plugin, (
                    f"the plugin's endpoints are named {self.plugin}.<view>, not {item.endpoint!r}"
                )

    def test_menu_screens_render(self, app: Flask, client: Any, state: Any, session: Session, admin: User) -> None:
        """Each of the plugin's menu screens answers 200 to the administrator (core's layout included)."""
        from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, login

        with app.test_request_context():
            paths = [url_for(i.endpoint) for i in call_own(state.registry, "ordo_menu_items", self.plugin, user=admin)]
        session.rollback()  # end the fixture's read: SQLite lets one writer in, and logging in writes
        login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, f"{path} answered {response.status_code}"

    # --- workflow -------------------------------------------------------------------

    def _own_steps(self, registry: Registry) -> list[Step]:
        return [step for step in registry.steps.values() if step.owner == self.plugin]

    @pytest.mark.req("CORE-2")
    def test_steps_are_named_and_actions_target_known_steps(self, alone: Registry) -> None:
        """Steps read ``<plugin>.<name>`` and sit between milestones; every action leads somewhere known."""
        for step in self._own_steps(alone):
            assert re.fullmatch(rf"{re.escape(self.plugin)}\.[a-z][a-z0-9_]*", step.key), (
                f"step {step.key!r} must be named {self.plugin}.<name>"
            )
            assert step.position not in MILESTONES.values(), f"step {step.key!r} sits on a milestone"
            assert step.label, f"step {step.key!r} needs a label"
            assert step.actions, f"step {step.key!r} has no action: an order would wait in it for ever"
            for action in step.actions:
                assert action.target == NEXT or action.target in alone.steps, (
                    f"action {action.name!r} of {step.key!r} targets unknown step {action.target!r}"
                )

    @pytest.mark.req("CORE-2")
    def test_hooks_answer_for_an_order_at_each_step(
        self, app: Flask, state: Any, session: Session, admin: User, seed: dict[str, Any]
    ) -> None:
        """With only this plugin enabled, the order-page and lifecycle hooks answer at each of its steps."""
        from core.testing import make_order

        order = make_order(session, admin)
        registry = state.registry
        workflow = Workflow(registry, session)
        keys = ["draft", *(s.key for s in self._own_steps(registry))]
        for key in keys:
            step = workflow.step(key)
            order.step = key
            assert workflow.next_step(step).position > step.position
            options = workflow.options(order, admin)
            assert {a.name for a in step.actions} <= {o.action.name for o in options}
            for option in options:
                assert all(isinstance(r, str) and r for r in option.blocked_by), (
                    f"guards must return reasons as sentences, got {option.blocked_by!r}"
                )
            registry.hook.ordo_order_validate(order=order, session=session)
            with app.test_request_context(f"/orders/{order.id}"):
                for panels in registry.hook.ordo_order_panels(order=order, user=admin, session=session):
                    for panel in panels or ():
                        assert panel.title and isinstance(panel.html, str)
        session.rollback()

    # --- storage --------------------------------------------------------------------

    def test_tables_are_prefixed_with_the_plugin_name(
        self, alone: Registry, info: PluginInfo, installed: dict[str, PluginInfo]
    ) -> None:
        """Every table the plugin's models map is ``<plugin>_…`` and refers only to core, itself or its requirements."""
        modules = set(call_own(alone, "ordo_register_models", self.plugin))
        for module_name in modules:
            module = importlib.import_module(module_name)
            for obj in vars(module).values():
                table = getattr(obj, "__table__", None)
                if table is not None and getattr(obj, "__module__", None) == module_name:
                    assert table.name.startswith(f"{self.plugin}_"), (
                        f"{module_name}.{obj.__name__} maps table {table.name!r}; name it {self.plugin}_<entity>"
                    )
        allowed = (self.plugin, *dependency_order(info.requires, installed))
        for table in Base.metadata.tables.values():
            if not table.name.startswith(f"{self.plugin}_"):
                continue
            for fk in table.foreign_keys:
                target = fk.column.table.name
                owner = _table_owner(target, installed)
                assert owner is None or owner in allowed, (
                    f"{table.name}.{fk.parent.name} refers to {target!r} of plugin {owner!r}, which "
                    f"{self.plugin!r} does not require; talk to it through a hook or a bridge"
                )

    def test_settings_load_with_defaults_of_their_type(self, alone: Registry, session: Session) -> None:
        """Setting keys read ``<plugin>.<name>``; each loads its default, of the declared type, and can be stored."""
        from core.settings import get_setting, set_setting

        for setting in (s for s in alone.settings.values() if s.plugin == self.plugin):
            assert setting.key.startswith(f"{self.plugin}."), (
                f"setting {setting.key!r} must be named {self.plugin}.<name>"
            )
            assert setting.label, f"setting {setting.key!r} needs a label"
            assert setting.type in SETTING_TYPES, (
                f"setting {setting.key!r} has type {setting.type.__name__}; settings are stored as JSON, "
                f"so use one of {', '.join(t.__name__ for t in SETTING_TYPES)}"
            )
            default = setting.default
            assert isinstance(default, setting.type) and not (setting.type is int and isinstance(default, bool)), (
                f"setting {setting.key!r}: default {default!r} is not a {setting.type.__name__}"
            )
            assert get_setting(session, setting.key, registry=alone) == default
            set_setting(session, setting.key, default, registry=alone)
            session.flush()
            session.expire_all()
            loaded = get_setting(session, setting.key, registry=alone)
            assert loaded == default and isinstance(loaded, setting.type), (
                f"setting {setting.key!r} does not survive storage: {default!r} came back as {loaded!r}"
            )
        session.rollback()

    def test_documents_render_to_pdf(
        self, app: Flask, state: Any, session: Session, admin: User, seed: dict[str, Any]
    ) -> None:
        """Each document type of the plugin renders for a sample order to a PDF."""
        from core.documents import render_document
        from core.testing import make_order

        documents = [d for d in state.registry.documents.values() if d.plugin == self.plugin]
        if not documents:
            return
        order = make_order(session, admin)
        with app.app_context():
            for document in documents:
                pdf = render_document(session, state.registry, document.name, order)
                assert isinstance(pdf, bytes) and pdf.startswith(b"%PDF"), f"document {document.name!r} is not a PDF"

    def test_migrations_reach_head_from_empty_without_drift(
        self, tmp_path: Path, info: PluginInfo, installed: dict[str, PluginInfo]
    ) -> None:
        """Its Alembic branch starts on a core revision, upgrades an empty database to head, and matches the models."""
        wanted = dependency_order([self.plugin], installed)
        Registry(wanted, installed)  # imports the models, so drift compares against them
        folders = migrate.plugin_versions(installed.values())
        engine = make_engine(f"sqlite:///{tmp_path / 'contract.sqlite3'}")
        try:
            migrate.upgrade(engine, [n for n in wanted if n != self.plugin], installed)
            before = _schema(engine)
            migrate.upgrade(engine, wanted, installed)
            after = _schema(engine)
            assert migrate.current_revisions(engine) == migrate.head_revisions(wanted, installed)
            added = set(after) - set(before)
            for table in added:
                assert table.startswith(f"{self.plugin}_"), f"the {self.plugin!r} branch creates table {table!r}"
            for table, columns in before.items():
                assert after[table] == columns, (
                    f"the {self.plugin!r} branch altered table {table!r}, which is not its own"
                )
            differences = migrate.drift(engine, lambda name: name.startswith(f"{self.plugin}_"))
            assert differences == [], f"models and migrations of {self.plugin!r} differ: {differences}"
        finally:
            engine.dispose()
        if self.plugin in folders:
            _check_branch(self.plugin, folders[self.plugin], installed)
        else:
            assert not [t for t in Base.metadata.tables if t.startswith(f"{self.plugin}_")], (
                f"{self.plugin!r} maps tables but registers no migration branch"
            )

    # --- alone ----------------------------------------------------------------------

    def test_works_alone(
        self, app: Flask, state: Any, client: Any, info: PluginInfo, installed: dict[str, PluginInfo]
    ) -> None:
        """An app builds with only this plugin and its requirements, and serves its pages."""
        assert state.registry.enabled == dependency_order([self.plugin], installed)
        package = info.module.__name__
        blueprints = [
            bp
            for bp in app.blueprints.values()
            if bp.import_name == package or bp.import_name.startswith(f"{package}.")
        ]
        for blueprint in blueprints:
            assert blueprint.name == self.plugin or blueprint.name.startswith(f"{self.plugin}_"), (
                f"blueprint {blueprint.name!r} of {self.plugin!r} must be named {self.plugin} or {self.plugin}_<part>"
            )
        assert client.get("/login").status_code == 200


def _table_owner(table: str, installed: dict[str, PluginInfo]) -> str | None:
    """The installed plugin whose prefix ``table`` carries, or None for a core table."""
    owners = [name for name in installed if table.startswith(f"{name}_")]
    return max(owners, key=len) if owners else None


def _schema(engine: Engine) -> dict[str, list[tuple[str, str, bool]]]:
    inspector = sa_inspect(engine)
    return {
        table: [(c["name"], str(c["type"]), bool(c["nullable"])) for c in inspector.get_columns(table)]
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }


def _check_branch(plugin: str, folder: Path, installed: dict[str, PluginInfo]) -> None:
    """The branch's revisions live in the plugin's folder; its first one is labelled and depends on core."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config(None, installed))
    core_revisions = {
        rev.revision for rev in script.walk_revisions() if Path(rev.path).parent == migrate.MIGRATIONS / "versions"
    }
    own = [rev for rev in script.walk_revisions() if Path(rev.path).resolve().parent == folder.resolve()]
    assert own, f"the {plugin!r} migrations folder {folder} holds no revision"
    roots = [rev for rev in own if not rev.down_revision]
    assert len(roots) == 1, f"the {plugin!r} branch must have exactly one first revision, has {len(roots)}"
    root = roots[0]
    assert plugin in root.branch_labels, f"the first revision of {plugin!r} must carry branch_labels=({plugin!r},)"
    depends = root.dependencies
    depends = (depends,) if isinstance(depends, str) else tuple(depends or ())
    assert set(depends) & core_revisions, (
        f"the first revision of {plugin!r} must depend_on a concrete core revision (e.g. 'c0001'), not {depends!r}"
    )
    heads = script.get_revisions(f"{plugin}@head")
    assert len(heads) == 1, f"the {plugin!r} branch has {len(heads)} heads; merge them"


__all__ = ["PluginContract", "call_own", "fake_plugin", "module_hookimpls", "own_hookimpls"]
