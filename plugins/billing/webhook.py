"""The online-payment webhook."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("billing_webhooks", __name__, url_prefix="/api/v1/billing/webhooks")
