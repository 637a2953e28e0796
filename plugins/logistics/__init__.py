"""Logistics: stock, remote orders, carriers, shipping, delivery and returns.

Gets confirmed orders to the customer, also outside the home region, and brings
returns back (LG-1 … LG-11).
This release ships the plugin's shell: its manifest and its migration branch.
"""

from __future__ import annotations

from pathlib import Path

from core import hookimpl
from core.contrib import MigrationBranch

#: The plugin's name: its entry point, migration branch label and table prefix.
name = "logistics"
#: The plugin's version.
version = "0.1.0"
#: Plugins that must be enabled for this one to work.
requires: tuple[str, ...] = ()


@hookimpl
def ordo_register_migrations() -> list[MigrationBranch]:
    return [MigrationBranch(name, Path(__file__).parent / "migrations" / "versions")]
