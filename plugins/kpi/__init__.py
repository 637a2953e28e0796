"""KPI: process indicators, dashboard, daily report, surveys and supervision.

Turns what the other plugins record into the indicators people and departments are
evaluated by (KP-1 … KP-6).
This release ships the plugin's shell: its manifest and its migration branch.
"""

from __future__ import annotations

from pathlib import Path

from core import hookimpl
from core.contrib import MigrationBranch

#: The plugin's name: its entry point, migration branch label and table prefix.
name = "kpi"
#: The plugin's version.
version = "0.1.0"
#: Plugins that must be enabled for this one to work.
requires: tuple[str, ...] = ()


@hookimpl
def ordo_register_migrations() -> list[MigrationBranch]:
    return [MigrationBranch(name, Path(__file__).parent / "migrations" / "versions")]
