"""Billing ↔ intake: the pre-check's credit rule asks billing's one credit gate.

Registered only when intake is enabled too. The rule ``credit`` warns (the order goes
to the manual check, IN-4) when the customer is on credit hold; intake's setting
``intake.precheck.rule.credit`` switches it off.
"""

from __future__ import annotations

from core import hookimpl
from core.labels import N_


@hookimpl(optionalhook=True)
def ordo_intake_precheck_rules() -> list[object]:
    """Billing's pre-check rule: the customer's credit (:func:`plugins.billing.credit.precheck_findings`)."""
    from plugins.billing.credit import precheck_findings
    from plugins.intake.precheck import PrecheckRule

    return [PrecheckRule("credit", N_("Customer credit (billing)"), precheck_findings, plugin="billing")]
