"""API: orders (to be completed)."""

from flask_smorest import Blueprint

blp = Blueprint("api_orders", __name__, url_prefix="/api/v1/orders")
