"""Field-level permissions (CORE-3): figures marked with a permission are left out of API
output, screens and documents for users without it, and shown to users with it.

Core has no sensitive field yet, so the test defines what a plugin would: an order
summary with a ``cost`` and a ``margin`` needing ``test.cost.read``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from flask import Flask, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from core.models import Order, RolePermission, User
from core.security.fields import PermissionSchema, can_see, dump_for, hidden_fields
from core.testing import make_order, make_user, token_for

pytestmark = pytest.mark.req("CORE-3")

COST = "test.cost.read"


class LineCostSchema(Schema):
    """A line with its purchase cost (sensitive)."""

    product = fields.Function(lambda line: line.product.sku)
    quantity = fields.Decimal(as_string=True)
    cost = fields.Function(lambda line: str(line.unit_price / 2), metadata={"permission": COST})


class CostedOrderSchema(PermissionSchema):
    """An order with cost and margin figures only for holders of ``test.cost.read``."""

    number = fields.String()
    total = fields.Decimal(as_string=True)
    margin = fields.Function(lambda order: str(order.total / 2), metadata={"permission": COST})
    lines = fields.List(fields.Nested(LineCostSchema))


@pytest.fixture
def people(session, admin, seed) -> dict[str, Any]:
    """A salesperson without the cost permission and a manager whose role grants it."""
    seller = make_user(session, "seller@example.com", ["sales"], branch=seed["hq"])
    manager = make_user(session, "boss@example.com", ["general_manager"], branch=seed["hq"])
    manager.roles[0].permissions.append(RolePermission(code=COST))
    session.commit()
    order = make_order(session, seller)
    return {"seller": seller, "manager": manager, "order": order}


def test_dump_for_leaves_sensitive_fields_out_nested_ones_too(people):
    order: Order = people["order"]
    plain = dump_for(CostedOrderSchema(), order, people["seller"])
    assert "margin" not in plain and all("cost" not in line for line in plain["lines"])
    assert plain["number"] == order.number and plain["lines"][0]["product"] == "P-100"
    full = dump_for(CostedOrderSchema(), order, people["manager"])
    assert full["margin"] == str(order.total / 2) and Decimal(full["lines"][0]["cost"]) == Decimal("575")
    assert hidden_fields(CostedOrderSchema(), people["seller"]) == {"margin", "lines.cost"}
    assert hidden_fields(CostedOrderSchema(), people["manager"]) == set()
    # Without a user (a job, a command) nothing sensitive goes out.
    assert "margin" not in dump_for(CostedOrderSchema(), order, None)


def test_a_permission_schema_hides_for_the_user_it_was_built_for(people):
    order = people["order"]
    assert "margin" not in CostedOrderSchema(user=people["seller"]).dump(order)
    assert "margin" in CostedOrderSchema(user=people["manager"]).dump(order)
    deactivated: User = people["manager"]
    deactivated.active = False
    assert not can_see(COST, deactivated)


@pytest.fixture
def app(make_app) -> Flask:
    """An app with one extra API endpoint and one screen that show the sensitive figures,
    as a plugin would add them."""
    app = make_app(())
    blp = Blueprint("api_costs", __name__, url_prefix="/api/v1/costs")

    @blp.route("/<int:order_id>")
    class Costs(MethodView):
        @blp.response(200, CostedOrderSchema)
        def get(self, order_id: int) -> Order:
            from core.api.auth import api_user
            from core.services.orders import get_order
            from core.web import db

            return get_order(db(), api_user(), order_id)

    app.extensions["ordo_api"].register_blueprint(blp)

    @app.get("/costs-screen/<int:order_id>")
    def costs_screen(order_id: int) -> Any:
        from flask import render_template_string

        return render_template_string(
            "{{ order_id }}{% if can_see('" + COST + "') %} margin=42{% endif %}", order_id=order_id
        )

    @app.get("/costs-document/<int:order_id>")
    def costs_document(order_id: int) -> Any:
        from core.documents import environment
        from core.web import ordo

        template = environment(ordo().registry, "en").from_string("doc{% if can_see('" + COST + "') %} cost{% endif %}")
        return jsonify(html=template.render())

    return app


def test_api_screens_and_documents_hide_the_figures_from_users_without_the_permission(client, session, people):
    order = people["order"]
    seller = {"Authorization": f"Bearer {token_for(session, people['seller'])}"}
    manager = {"Authorization": f"Bearer {token_for(session, people['manager'])}"}
    hidden = client.get(f"/api/v1/costs/{order.id}", headers=seller).get_json()
    assert "margin" not in hidden and "cost" not in hidden["lines"][0] and hidden["number"] == order.number
    shown = client.get(f"/api/v1/costs/{order.id}", headers=manager).get_json()
    assert shown["margin"] == str(order.total / 2) and Decimal(shown["lines"][0]["cost"]) == Decimal("575")
    assert client.get(f"/costs-screen/{order.id}", headers=seller).get_data(as_text=True) == str(order.id)
    assert "margin=42" in client.get(f"/costs-screen/{order.id}", headers=manager).get_data(as_text=True)
    assert client.get(f"/costs-document/{order.id}", headers=seller).get_json()["html"] == "doc"
    assert client.get(f"/costs-document/{order.id}", headers=manager).get_json()["html"] == "doc cost"
