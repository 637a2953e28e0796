"""Intake's own hook: other plugins add pre-check rules (billing's credit, logistics' region).

Added to the plugin manager through ``ordo_add_hookspecs`` when intake is enabled.
Implement it with ``@hookimpl(optionalhook=True)`` so the implementing plugin still
loads when intake is disabled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core import hookspec

if TYPE_CHECKING:
    from plugins.intake.precheck import PrecheckRule


@hookspec
def ordo_intake_precheck_rules() -> list[PrecheckRule]:  # type: ignore[empty-body]
    """Return pre-check rules to run on every order besides intake's built-in ones.

    Each :class:`plugins.intake.precheck.PrecheckRule` has a code unique across plugins
    and a function ``(session, order, settings) -> list[Finding]``. A rule is skipped
    when a bool setting ``intake.precheck.rule.<code>`` is registered and off.
    """
