"""API: customers (客户) with their contacts and addresses — list, create, read, change, (de)activate.

Thin endpoints over :mod:`core.services.parties`: the services check ``customers.read``
and ``customers.manage`` and validate with :class:`core.services.parties.CustomerRecordSchema`
(:class:`core.schemas.CustomerSchema` plus the customer's ``language``).
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy.orm import selectinload

from core.api.auth import api_user, require_api_user
from core.api.common import ListQuerySchema, change_schema, commit, errors, json_body, keyset_page, read_json
from core.models import Customer
from core.services.parties import (
    CustomerRecordSchema,
    create_customer,
    customers_query,
    get_customer,
    set_customer_active,
    update_customer,
)
from core.web import db

blp = Blueprint(
    "api_customers",
    __name__,
    url_prefix="/api/v1/customers",
    description="Customers (客户): contacts, addresses with province/city/region, activation.",
)
blp.before_request(require_api_user)

#: The customer as read and written here: core's fields plus its language.
CustomerSchema = CustomerRecordSchema
CustomerChangeSchema = change_schema(CustomerSchema, "CustomerChangeSchema")

EXAMPLE = {
    "code": "C003",
    "name": "重庆渝新五金有限公司",
    "tax_id": "91500000MA5U000000",
    "language": "zh_CN",
    "contacts": [{"name": "王芳", "phone": "023-6000-0003", "email": "wang@example.com", "role": "buyer"}],
    "addresses": [
        {"label": "warehouse", "province": "重庆市", "city": "重庆市", "region": "西南", "address": "九龙坡区 8 号"}
    ],
}


class CustomerPageSchema(Schema):
    """One page of customers and the cursor of the next (null on the last page)."""

    items = fields.List(fields.Nested(CustomerSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


@blp.route("")
class Customers(MethodView):
    """The customer list and customer creation."""

    @blp.arguments(ListQuerySchema, location="query", unknown="raise")
    @blp.response(200, CustomerPageSchema)
    @errors(blp, 401, 403, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List customers by code, active ones unless `include_inactive`; `q` searches code and name."""
        stmt = customers_query(api_user(), args.get("q"), args["include_inactive"]).options(
            selectinload(Customer.contacts), selectinload(Customer.addresses)
        )
        items, next_cursor = keyset_page(db(), stmt, Customer.code, "c", args["limit"], args.get("cursor"))
        return {"items": items, "next_cursor": next_cursor}

    @blp.doc(requestBody=json_body(CustomerSchema, example=EXAMPLE))
    @blp.response(201, CustomerSchema)
    @errors(blp, 400, 401, 403, 409, 415, 422)
    def post(self) -> tuple[Customer, int, dict[str, str]]:
        """Create a customer; `code` (unique) and `name` are required."""
        customer = create_customer(db(), api_user(), read_json())
        commit()
        return customer, 201, {"Location": url_for(".CustomerItem", customer_id=customer.id)}


@blp.route("/<int:customer_id>")
class CustomerItem(MethodView):
    """One customer."""

    @blp.response(200, CustomerSchema)
    @errors(blp, 401, 403, 404)
    def get(self, customer_id: int) -> Customer:
        """Read a customer with its contacts and addresses."""
        return get_customer(db(), api_user(), customer_id)

    @blp.doc(requestBody=json_body(CustomerChangeSchema, example={"name": "重庆山城机电股份有限公司"}))
    @blp.response(200, CustomerSchema)
    @errors(blp, 400, 401, 403, 404, 409, 415, 422)
    def patch(self, customer_id: int) -> Customer:
        """Change a customer; fields left out stay as they are, `contacts` or `addresses` given replace the list."""
        user = api_user()
        customer = update_customer(db(), user, get_customer(db(), user, customer_id), read_json())
        commit()
        return customer


def _set_active(customer_id: int, active: bool) -> Customer:
    user = api_user()
    customer = set_customer_active(db(), user, get_customer(db(), user, customer_id), active)
    commit()
    return customer


@blp.route("/<int:customer_id>/deactivate", methods=["POST"])
@blp.response(200, CustomerSchema)
@errors(blp, 401, 403, 404)
def deactivate_customer(customer_id: int) -> Customer:
    """Deactivate a customer: it takes no new orders; its orders and history stay."""
    return _set_active(customer_id, False)


@blp.route("/<int:customer_id>/reactivate", methods=["POST"])
@blp.response(200, CustomerSchema)
@errors(blp, 401, 403, 404)
def reactivate_customer(customer_id: int) -> Customer:
    """Reactivate a deactivated customer."""
    return _set_active(customer_id, True)
