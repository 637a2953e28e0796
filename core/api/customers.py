"""API: customers (to be completed)."""

from flask_smorest import Blueprint

blp = Blueprint("api_customers", __name__, url_prefix="/api/v1/customers")
