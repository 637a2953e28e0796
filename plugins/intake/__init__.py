"""Intake: receive orders from every channel, pre-check them and hand good ones on.

Phone, e-mail, fax, portal, API and batch-imported orders are recorded with their
channel, checked automatically and then by a clerk (DOMAIN.md IN-1 … IN-9).
This release ships the plugin's shell: its manifest and its migration branch.
"""

from __future__ import annotations

from pathlib import Path

from core import hookimpl
from core.contrib import MigrationBranch

#: The plugin's name: its entry point, migration branch label and table prefix.
name = "intake"
#: The plugin's version.
version = "0.1.0"
#: Plugins that must be enabled for this one to work.
requires: tuple[str, ...] = ()


@hookimpl
def ordo_register_migrations() -> list[MigrationBranch]:
    return [MigrationBranch(name, Path(__file__).parent / "migrations" / "versions")]
