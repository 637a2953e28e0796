"""The one credit gate (RV-7, BL-5): exposure, holds, exceptions with expiry, weekly report."""

from __future__ import annotations

NOTIFICATIONS: tuple = ()
JOBS: tuple = ()


def gate_reasons(session, order, path) -> list[str]:
    """Stub: why the gate refuses ``order`` on ``path``."""
    return []


def shipment_reasons(session, order, reference) -> list[str]:
    """Stub: why the gate refuses this shipment."""
    return []


def record_use(session, order, path, user, reference="") -> None:
    """Stub: record a path passed under an exception."""


def hold_badges(session, orders) -> dict:
    """Stub: credit hold badges for order lists."""
    return {}


def precheck_findings(session, order, settings) -> list:
    """Stub: intake's credit rule."""
    return []


def adopt_review_exception(session, order, user, reason) -> None:
    """Stub: review's credit exception becomes billing's."""
