"""Carrier connectors: how an integrator plugs a carrier's own system into Ordo (LG-3, LG-4).

A plugin returns :class:`CarrierConnector` objects from
``ordo_logistics_carrier_connectors``; a carrier whose ``connector`` names one is
booked through it when a shipment leaves, can print the carrier's label, and has its
tracking pulled by a job. Each function is optional. Failures raise
:class:`ConnectorError`; Ordo shows its message and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from plugins.logistics.models import LogisticsShipment


class ConnectorError(Exception):
    """The carrier's system refused or failed; the message is shown to the user."""


@dataclass(frozen=True)
class TrackingUpdate:
    """One tracking event as a carrier reports it (pulled by a connector or pushed to the webhook).

    ``code`` is one of :data:`plugins.logistics.models.TRACKING_CODES`; ``external_id``
    is the carrier's id of the event, so reporting it twice records it once.
    """

    code: str
    at: dt.datetime
    place: str = ""
    description: str = ""
    external_id: str | None = None


@dataclass(frozen=True)
class CarrierConnector:
    """A connector to one carrier's system; ``key`` is what a carrier's ``connector`` field names.

    - ``book(session, shipment) -> str``: book the pick-up; returns the tracking number.
    - ``label(session, shipment) -> bytes``: the carrier's label as a PDF.
    - ``pull_tracking(session, shipment) -> list[TrackingUpdate]``: events since the last pull.
    """

    key: str
    label: str
    book: Callable[[Session, LogisticsShipment], str] | None = None
    label_pdf: Callable[[Session, LogisticsShipment], bytes] | None = None
    pull_tracking: Callable[[Session, LogisticsShipment], list[TrackingUpdate]] | None = None


def all_connectors(session: Session) -> list[CarrierConnector]:
    """Every connector the enabled plugins offer (hook ``ordo_logistics_carrier_connectors``)."""
    from core.settings import session_registry

    answers = session_registry(session).hook.ordo_logistics_carrier_connectors()
    return [connector for answer in answers for connector in (answer or [])]


def find_connector(session: Session, key: str) -> CarrierConnector | None:
    """The connector whose ``key`` is ``key`` (a carrier's ``connector`` field), or None."""
    if not key:
        return None
    return next((c for c in all_connectors(session) if c.key == key), None)
