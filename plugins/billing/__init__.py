"""Billing: payment terms, the credit gate, invoices, payments and dunning.

Makes sure the company is paid for what it delivers (BL-1 … BL-7, RV-7).
This release ships the plugin's shell: its manifest and its migration branch.
"""

from __future__ import annotations

from pathlib import Path

from core import hookimpl
from core.contrib import MigrationBranch

#: The plugin's name: its entry point, migration branch label and table prefix.
name = "billing"
#: The plugin's version.
version = "0.1.0"
#: Plugins that must be enabled for this one to work.
requires: tuple[str, ...] = ()


@hookimpl
def ordo_register_migrations() -> list[MigrationBranch]:
    return [MigrationBranch(name, Path(__file__).parent / "migrations" / "versions")]
