"""Stub: replaced by its helper."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("kpi_api_feedback", __name__, url_prefix="/api/v1/kpi")
