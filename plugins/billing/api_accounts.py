"""API (stub)."""

from __future__ import annotations

from flask_smorest import Blueprint

from core.api.auth import require_api_user

blp = Blueprint("billing_accounts_api", __name__, url_prefix="/api/v1/billing", description="Billing: accounts.")
blp.before_request(require_api_user)
