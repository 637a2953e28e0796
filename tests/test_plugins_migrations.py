"""Migrations for every combination of plugins: core plus any subset of the six reaches head without drift.

The subset matrix (STYLE.md) taken to its end: all 64 subsets of the five built-in
plugins and the third-party inspection plugin, each migrated from an empty database.
Each takes a fraction of a second, so none is left out.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest
from sqlalchemy import inspect

from core import migrate
from core.db import make_engine
from core.plugins import PluginInfo, Registry, discover

PLUGINS = ("intake", "review", "logistics", "billing", "kpi", "inspection")
SUBSETS = [combo for size in range(len(PLUGINS) + 1) for combo in combinations(PLUGINS, size)]


@pytest.fixture(scope="module")
def installed() -> dict[str, PluginInfo]:
    found = discover()
    missing = [name for name in PLUGINS if name not in found]
    assert not missing, f"not installed: {missing} (run `.venv/bin/pip install -e tests/thirdparty`)"
    return found


def owner(table: str, installed: dict[str, PluginInfo]) -> str | None:
    """The plugin whose prefix ``table`` carries, or None for core's tables."""
    owners = [name for name in installed if table.startswith(f"{name}_")]
    return max(owners, key=len) if owners else None


def test_the_matrix_covers_every_subset():
    assert len(SUBSETS) == 64 and len(set(SUBSETS)) == 64


@pytest.mark.parametrize("plugins", SUBSETS, ids=lambda combo: "+".join(combo) or "core")
def test_core_and_plugins_upgrade_from_empty_to_head_without_drift(plugins, installed, tmp_path: Path):
    registry = Registry(plugins, installed)  # imports the enabled plugins' models
    engine = make_engine(f"sqlite:///{tmp_path / 'matrix.sqlite3'}")
    try:
        migrate.upgrade(engine, registry.enabled, installed)
        assert migrate.current_revisions(engine) == migrate.head_revisions(registry.enabled, installed)
        tables = set(inspect(engine).get_table_names())
        assert {"order", "order_transition", "plugin_state"} <= tables
        strays = {t: owner(t, installed) for t in tables if owner(t, installed) not in (None, *registry.enabled)}
        assert strays == {}, f"tables of plugins that are not enabled: {strays}"
        differences = migrate.drift(engine, lambda table: owner(table, installed) in (None, *registry.enabled))
        assert differences == []
    finally:
        engine.dispose()


def test_enabling_later_upgrades_an_existing_database_to_the_same_heads(installed, tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'later.sqlite3'}")
    try:
        migrate.upgrade(engine, [], installed)
        assert "inspection_report" not in inspect(engine).get_table_names()
        migrate.upgrade(engine, ["inspection"], installed)
        migrate.upgrade(engine, ["inspection", "billing"], installed)  # upgrading again is harmless
        assert migrate.current_revisions(engine) == migrate.head_revisions(["inspection", "billing"], installed)
        assert "inspection_report" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
