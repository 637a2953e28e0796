"""KPI: process indicators, dashboard, daily report, surveys and supervision.

Turns what the other plugins record into the indicators people and departments are
evaluated by (KP-1 … KP-6).
So far it defines the hook through which other plugins contribute indicators
(``plugins.kpi.hookspecs``) and computes them for a period (``plugins.kpi.indicators``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core import hookimpl
from core.contrib import MigrationBranch

if TYPE_CHECKING:
    import pluggy

#: The plugin's name: its entry point, migration branch label and table prefix.
name = "kpi"
#: The plugin's version.
version = "0.1.0"
#: Plugins that must be enabled for this one to work.
requires: tuple[str, ...] = ()


@hookimpl
def ordo_register_migrations() -> list[MigrationBranch]:
    return [MigrationBranch(name, Path(__file__).parent / "migrations" / "versions")]


@hookimpl
def ordo_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Add kpi's hook ``ordo_kpi_indicators``, through which plugins contribute indicators."""
    from plugins.kpi import hookspecs

    pm.add_hookspecs(hookspecs)
