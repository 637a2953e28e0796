"""API: products (to be completed)."""

from flask_smorest import Blueprint

blp = Blueprint("api_products", __name__, url_prefix="/api/v1/products")
