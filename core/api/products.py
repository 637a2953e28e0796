"""API: the product catalogue (型号/规格) — list, create, read, change, (de)activate.

Thin endpoints over :mod:`core.services.parties`: the services check ``products.read``
and ``products.manage`` and validate with :class:`core.schemas.ProductSchema`.
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from core.api.auth import api_user, require_api_user
from core.api.common import ListQuerySchema, change_schema, commit, errors, json_body, keyset_page, read_json
from core.models import Product
from core.schemas import ProductSchema
from core.services.parties import create_product, get_product, products_query, set_product_active, update_product
from core.web import db

blp = Blueprint(
    "api_products",
    __name__,
    url_prefix="/api/v1/products",
    description="Products (型号/规格): SKU, unit, list price, tax rate, activation.",
)
blp.before_request(require_api_user)

ProductChangeSchema = change_schema(ProductSchema, "ProductChangeSchema")

EXAMPLE = {
    "sku": "P-400",
    "name": "Servo drive 伺服驱动器",
    "spec": "400 W, 220 V",
    "unit": "台",
    "category": "drives",
    "list_price": "2350.00",
    "tax_rate": "13",
}


class ProductPageSchema(Schema):
    """One page of products and the cursor of the next (null on the last page)."""

    items = fields.List(fields.Nested(ProductSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


@blp.route("")
class Products(MethodView):
    """The product list and product creation."""

    @blp.arguments(ListQuerySchema, location="query", unknown="raise")
    @blp.response(200, ProductPageSchema)
    @errors(blp, 401, 403, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List products by SKU, active ones unless `include_inactive`; `q` searches SKU, name and spec."""
        stmt = products_query(api_user(), args.get("q"), args["include_inactive"])
        items, next_cursor = keyset_page(db(), stmt, Product.sku, "p", args["limit"], args.get("cursor"))
        return {"items": items, "next_cursor": next_cursor}

    @blp.doc(requestBody=json_body(ProductSchema, example=EXAMPLE))
    @blp.response(201, ProductSchema)
    @errors(blp, 400, 401, 403, 409, 415, 422)
    def post(self) -> tuple[Product, int, dict[str, str]]:
        """Create a product; `sku` (unique), `name`, `unit` and `list_price` (decimal string) are required."""
        product = create_product(db(), api_user(), read_json())
        commit()
        return product, 201, {"Location": url_for(".ProductItem", product_id=product.id)}


@blp.route("/<int:product_id>")
class ProductItem(MethodView):
    """One product."""

    @blp.response(200, ProductSchema)
    @errors(blp, 401, 403, 404)
    def get(self, product_id: int) -> Product:
        """Read a product."""
        return get_product(db(), api_user(), product_id)

    @blp.doc(requestBody=json_body(ProductChangeSchema, example={"list_price": "2280.00"}))
    @blp.response(200, ProductSchema)
    @errors(blp, 400, 401, 403, 404, 409, 415, 422)
    def patch(self, product_id: int) -> Product:
        """Change a product; orders already taken keep the prices they were taken at."""
        user = api_user()
        product = update_product(db(), user, get_product(db(), user, product_id), read_json())
        commit()
        return product


def _set_active(product_id: int, active: bool) -> Product:
    user = api_user()
    product = set_product_active(db(), user, get_product(db(), user, product_id), active)
    commit()
    return product


@blp.route("/<int:product_id>/deactivate", methods=["POST"])
@blp.response(200, ProductSchema)
@errors(blp, 401, 403, 404)
def deactivate_product(product_id: int) -> Product:
    """Deactivate a product: it can no longer be ordered; orders that have it keep it."""
    return _set_active(product_id, False)


@blp.route("/<int:product_id>/reactivate", methods=["POST"])
@blp.response(200, ProductSchema)
@errors(blp, 401, 403, 404)
def reactivate_product(product_id: int) -> Product:
    """Reactivate a deactivated product."""
    return _set_active(product_id, True)
