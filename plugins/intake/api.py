"""API: intake's price lists and the applicable price.

Thin endpoints over :mod:`plugins.intake.pricing`; the services check
``intake.prices.read`` / ``intake.prices.manage`` and validate (422 with per-field
details, nothing written).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from core.api.auth import api_user, require_api_user
from core.api.common import commit, errors, json_body, read_json
from core.clock import COMPANY_TIMEZONE
from core.models import Customer, Product
from core.services import NotFound, ServiceError
from core.web import db
from plugins.intake import pricing
from plugins.intake.models import IntakePriceList

blp = Blueprint(
    "intake_api",
    __name__,
    url_prefix="/api/v1/intake",
    description="Intake (接单): price lists per customer group and per customer (contract prices), applicable price.",
)
blp.before_request(require_api_user)


class PriceListItemSchema(Schema):
    """A product's unit price on the list from a minimum quantity on."""

    product_id = fields.Integer(required=True)
    product = fields.Method("_sku", metadata={"description": "The product's SKU (may be given instead of product_id)."})
    min_quantity = fields.Decimal(as_string=True, load_default="0")
    unit_price = fields.Decimal(as_string=True, required=True)

    def _sku(self, item: Any) -> str | None:
        product = db().get(Product, item.product_id)
        return product.sku if product is not None else None


class PriceListSchema(Schema):
    """A price list of a customer group or of one customer (contract prices)."""

    id = fields.Integer(dump_only=True)
    code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    currency = fields.String(load_default="CNY", validate=validate.Length(equal=3))
    customer_group_id = fields.Integer(
        allow_none=True, metadata={"description": "Exactly one of this and customer_id."}
    )
    customer_id = fields.Integer(allow_none=True)
    contract_number = fields.String(load_default="")
    valid_from = fields.Date(allow_none=True)
    valid_to = fields.Date(allow_none=True)
    active = fields.Boolean(load_default=True)
    items = fields.List(fields.Nested(PriceListItemSchema), load_default=list)


class PriceListChangeSchema(PriceListSchema):
    """A change: fields left out stay as they are; ``items`` given replace every item."""

    code = fields.String(validate=validate.Length(min=1, max=32))
    name = fields.String(validate=validate.Length(min=1, max=200))


class PriceListPageSchema(Schema):
    """Every price list, by code."""

    items = fields.List(fields.Nested(PriceListSchema), required=True)


class PriceQuerySchema(Schema):
    """What to price: customer code, product SKU, quantity, day and (optionally) currency."""

    customer = fields.String(required=True, metadata={"description": "The customer's code, e.g. C001."})
    product = fields.String(required=True, metadata={"description": "The product's SKU, e.g. P-100."})
    quantity = fields.Decimal(load_default=1, validate=validate.Range(min=0, min_inclusive=False))
    date = fields.Date(metadata={"description": "The day (default: today in the company's time zone)."})
    currency = fields.String(validate=validate.Length(equal=3), metadata={"description": "The order's currency."})


class AppliedPriceSchema(Schema):
    """The applicable unit price and where it comes from."""

    unit_price = fields.Decimal(as_string=True, required=True)
    currency = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "contract, group or list."})
    price_list_id = fields.Integer(allow_none=True, required=True)
    price_list_code = fields.String(allow_none=True, required=True)
    min_quantity = fields.Decimal(as_string=True, required=True)


EXAMPLE = {
    "code": "KA-2027",
    "name": "重点客户价 2027",
    "currency": "CNY",
    "customer_group_id": 1,
    "valid_from": "2027-01-01",
    "valid_to": "2027-12-31",
    "items": [
        {"product": "P-100", "unit_price": "1100.00"},
        {"product": "P-100", "min_quantity": "10", "unit_price": "1050.00"},
    ],
}


@blp.route("/price-lists")
class PriceLists(MethodView):
    """The price lists and creating one."""

    @blp.response(200, PriceListPageSchema)
    @errors(blp, 401, 403)
    def get(self) -> dict[str, Any]:
        """List every price list with its items, by code."""
        return {"items": pricing.price_lists(db(), api_user())}

    @blp.doc(requestBody=json_body(PriceListSchema, example=EXAMPLE))
    @blp.response(201, PriceListSchema)
    @errors(blp, 400, 401, 403, 415, 422)
    def post(self) -> tuple[IntakePriceList, int, dict[str, str]]:
        """Create a price list; items name the product by `product` (SKU) or `product_id`."""
        price_list = pricing.create_price_list(db(), api_user(), read_json())
        commit()
        return price_list, 201, {"Location": url_for(".PriceListItem", price_list_id=price_list.id)}


@blp.route("/price-lists/<int:price_list_id>")
class PriceListItem(MethodView):
    """One price list."""

    @blp.response(200, PriceListSchema)
    @errors(blp, 401, 403, 404)
    def get(self, price_list_id: int) -> IntakePriceList:
        """Read a price list with its items."""
        return pricing.get_price_list(db(), api_user(), price_list_id)

    @blp.doc(requestBody=json_body(PriceListChangeSchema, example={"valid_to": "2027-06-30"}))
    @blp.response(200, PriceListSchema)
    @errors(blp, 400, 401, 403, 404, 415, 422)
    def patch(self, price_list_id: int) -> IntakePriceList:
        """Change a price list; fields left out stay, `items` given replace every item."""
        user, session = api_user(), db()
        price_list = pricing.update_price_list(
            session, user, pricing.get_price_list(session, user, price_list_id), read_json()
        )
        commit()
        return price_list


@blp.route("/price", methods=["GET"])
@blp.arguments(PriceQuerySchema, location="query", unknown="raise")
@blp.response(200, AppliedPriceSchema)
@errors(blp, 401, 403, 404, 422)
def applicable_price(args: dict[str, Any]) -> dict[str, Any]:
    """The unit price a customer should pay for a quantity of a product on a day, and its source."""
    user, session = api_user(), db()
    if not user.can(pricing.READ):
        raise ServiceError("forbidden", f"you need the permission {pricing.READ}", status=403)
    customer = session.scalar(select(Customer).where(Customer.code == args["customer"]))
    if customer is None:
        raise NotFound("customer", args["customer"])
    product = session.scalar(select(Product).where(Product.sku == args["product"]))
    if product is None:
        raise NotFound("product", args["product"])
    on = args.get("date") or dt.datetime.now(COMPANY_TIMEZONE).date()
    found = pricing.applicable_price(session, customer.id, product.id, args["quantity"], on, args.get("currency"))
    if found is None:
        raise NotFound("price for product", args["product"])
    return {
        "unit_price": found.unit_price,
        "currency": found.currency,
        "kind": found.kind,
        "price_list_id": found.price_list.id if found.price_list else None,
        "price_list_code": found.price_list.code if found.price_list else None,
        "min_quantity": found.min_quantity,
    }
