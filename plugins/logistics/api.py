"""API: stock, shipments, tracking, returns and the carriers' tracking webhook (``/api/v1/logistics``)."""

from __future__ import annotations

from flask_smorest import Blueprint

from core.api.auth import require_api_user

blp = Blueprint(
    "logistics_api",
    __name__,
    url_prefix="/api/v1/logistics",
    description="Logistics (物流): stock, reservations, shipments and tracking, returns.",
)
blp.before_request(require_api_user)
