"""The OpenAPI document at /api/v1/openapi.json: well formed, complete, and true to the API.

openapi-spec-validator is not installed, so the document is checked here for what
OpenAPI 3.0 requires of it and for what Ordo promises: every API route is listed
with its methods, every ``$ref`` resolves, errors use the envelope, bearer security.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

ENDPOINTS = {
    ("get", "/api/v1/calendar/add-working-days"),
    ("get", "/api/v1/calendar/days"),
    ("post", "/api/v1/calendar/days"),
    ("delete", "/api/v1/calendar/days/{day_id}"),
    ("get", "/api/v1/calendar/working-days-between"),
    ("get", "/api/v1/company"),
    ("patch", "/api/v1/company"),
    ("get", "/api/v1/jobs"),
    ("get", "/api/v1/jobs/{name}"),
    ("patch", "/api/v1/jobs/{name}"),
    ("post", "/api/v1/jobs/{name}/run"),
    ("get", "/api/v1/jobs/{name}/runs"),
    ("get", "/api/v1/notifications"),
    ("post", "/api/v1/notifications/read-all"),
    ("post", "/api/v1/notifications/{notification_id}/read"),
    ("get", "/api/v1/orders/{order_id}/attachments"),
    ("post", "/api/v1/orders/{order_id}/attachments"),
    ("get", "/api/v1/orders/{order_id}/attachments/{attachment_id}"),
    ("get", "/api/v1/orders/{order_id}/attachments/{attachment_id}/content"),
    ("post", "/api/v1/orders/{order_id}/attachments/{attachment_id}/remove"),
    ("post", "/api/v1/orders/{order_id}/attachments/{attachment_id}/share"),
    ("get", "/api/v1/outbox"),
    ("get", "/api/v1/outbox/{message_id}"),
    ("post", "/api/v1/outbox/{message_id}/cancel"),
    ("post", "/api/v1/outbox/{message_id}/mark-sent"),
    ("post", "/api/v1/outbox/{message_id}/retry"),
    ("get", "/api/v1/settings"),
    ("patch", "/api/v1/settings"),
    ("get", "/api/v1/orders/{order_id}/documents"),
    ("get", "/api/v1/orders/{order_id}/documents/{name}"),
    ("post", "/api/v1/orders/{order_id}/documents/{name}/send"),
    ("get", "/api/v1/orders/{order_id}/issued-documents"),
    ("get", "/api/v1/orders/{order_id}/issued-documents/{doc_id}"),
    ("get", "/api/v1/customers"),
    ("post", "/api/v1/customers"),
    ("get", "/api/v1/customers/{customer_id}"),
    ("patch", "/api/v1/customers/{customer_id}"),
    ("post", "/api/v1/customers/{customer_id}/deactivate"),
    ("post", "/api/v1/customers/{customer_id}/reactivate"),
    ("get", "/api/v1/products"),
    ("post", "/api/v1/products"),
    ("get", "/api/v1/products/{product_id}"),
    ("patch", "/api/v1/products/{product_id}"),
    ("post", "/api/v1/products/{product_id}/deactivate"),
    ("post", "/api/v1/products/{product_id}/reactivate"),
    ("get", "/api/v1/orders"),
    ("post", "/api/v1/orders"),
    ("get", "/api/v1/orders/{order_id}"),
    ("patch", "/api/v1/orders/{order_id}"),
    ("get", "/api/v1/orders/{order_id}/actions"),
    ("post", "/api/v1/orders/{order_id}/actions/{name}"),
    ("post", "/api/v1/orders/{order_id}/copy"),
    ("get", "/api/v1/orders/{order_id}/history"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users/{user_id}"),
    ("patch", "/api/v1/users/{user_id}"),
    ("post", "/api/v1/users/{user_id}/deactivate"),
    ("post", "/api/v1/users/{user_id}/reactivate"),
    ("post", "/api/v1/users/{user_id}/password"),
    ("get", "/api/v1/roles"),
    ("post", "/api/v1/roles"),
    ("get", "/api/v1/roles/{role_id}"),
    ("patch", "/api/v1/roles/{role_id}"),
    ("delete", "/api/v1/roles/{role_id}"),
    ("get", "/api/v1/permissions"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{token_id}"),
}


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    """The served OpenAPI document (no credentials needed to read it)."""
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every (method, path, operation) of the document."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method, path, operation


def resolve(spec: dict[str, Any], ref: str) -> Any:
    """The object a local ``$ref`` points to."""
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` anywhere in ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_the_document_lists_every_endpoint(spec: dict[str, Any]):
    listed = {(method, path) for method, path, _ in operations(spec)}
    assert listed == ENDPOINTS


def test_the_document_matches_the_routes_the_app_serves(app: Flask, spec: dict[str, Any]):
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint.startswith("api-docs."):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        served |= {(method.lower(), path) for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    assert served == {(method, path) for method, path, _ in operations(spec)}


def test_the_document_is_well_formed_openapi_3(spec: dict[str, Any]):
    assert spec["openapi"].startswith("3.0.")
    assert spec["info"]["title"] == "Ordo"
    assert spec["info"]["version"] == "v1"
    for ref in refs(spec):
        assert resolve(spec, ref) is not None, ref
    for method, path, operation in operations(spec):
        where = f"{method.upper()} {path}"
        assert path.startswith("/")
        assert operation["summary"], where
        assert operation["responses"], where
        for status, response in operation["responses"].items():
            assert status == "default" or re.fullmatch(r"[1-5]\d\d", status), where
            assert "$ref" in response or "description" in response, where
        declared = {p["name"] for p in spec["paths"][path].get("parameters", []) + operation.get("parameters", [])}
        for name in re.findall(r"{([^}]+)}", path):
            assert name in declared, f"{where}: path parameter {name} is not declared"
        for parameter in spec["paths"][path].get("parameters", []) + operation.get("parameters", []):
            assert parameter["in"] in ("query", "header", "path", "cookie"), where
            assert "schema" in parameter or "content" in parameter, where
            if parameter["in"] == "path":
                assert parameter["required"] is True, where
    for name, schema in spec["components"]["schemas"].items():
        assert schema.get("type") == "object", name
        for prop, definition in schema.get("properties", {}).items():
            assert any(k in definition for k in ("type", "$ref", "oneOf", "anyOf", "allOf")), f"{name}.{prop}"
            for bound in ("minimum", "maximum"):
                if bound in definition:
                    assert isinstance(definition[bound], int | float), f"{name}.{prop}.{bound} must be a number"


def test_requests_responses_and_errors_are_described(spec: dict[str, Any]):
    schemas = spec["components"]["schemas"]
    for method, path, operation in operations(spec):
        where = f"{method.upper()} {path}"
        success = [s for s in operation["responses"] if s.startswith("2")]
        assert len(success) == 1, where
        content = operation["responses"][success[0]]["content"]
        binary = [kind for kind in ("application/pdf", "application/octet-stream") if kind in content]
        if binary:  # a document or an attachment's bytes, not JSON
            assert content[binary[0]]["schema"] == {"type": "string", "format": "binary"}, where
        else:
            assert "$ref" in content["application/json"]["schema"], where
        errors = [s for s in operation["responses"] if s.startswith("4")]
        assert "401" in errors, where
        for status in errors:
            response = resolve(spec, operation["responses"][status]["$ref"])
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        if method in ("post", "patch") and not path.endswith(("/deactivate", "/reactivate", "/run", "/copy")):
            assert "requestBody" in operation, where
    assert schemas["Error"]["properties"]["error"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert set(schemas["ErrorBody"]["required"]) == {"code", "message", "details"}


def test_every_operation_documents_the_busy_answer(spec: dict[str, Any]):
    """Any request may lose its race on every retry: 503 in the envelope, with Retry-After
    (what ``test_concurrency`` provokes for real)."""
    for method, path, operation in operations(spec):
        assert operation["responses"].get("503") == {"$ref": "#/components/responses/BUSY"}, f"{method} {path}"
    busy = spec["components"]["responses"]["BUSY"]
    assert busy["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert busy["headers"]["Retry-After"]["schema"] == {"type": "integer"}


def test_the_order_contract_is_documented(spec: dict[str, Any]):
    schemas = spec["components"]["schemas"]
    order_in = schemas["OrderIn"]
    assert {"customer", "channel", "payment_method", "lines"} <= set(order_in["required"])
    assert {"reference", "requested_date", "ship_to"} <= set(order_in["properties"])
    assert set(schemas["ShipTo"]["properties"]) == {"contact", "phone", "province", "city", "address"}
    line = schemas["OrderLineIn"]["properties"]
    assert line["quantity"]["type"] == "string"
    assert line["quantity"]["format"] == "decimal"
    assert line["product"]["oneOf"] == [{"type": "string"}, {"type": "integer"}]
    order_out = schemas["OrderOut"]["properties"]
    assert {"id", "number", "status", "step", "version", "customer", "lines", "total"} <= set(order_out)
    assert order_out["total"]["type"] == "string"
    assert schemas["OrderChange"]["required"] == ["version"]
    create = spec["paths"]["/api/v1/orders"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderIn"}
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"] if p["in"] == "header"}
    listing = spec["paths"]["/api/v1/orders"]["get"]
    assert {"status", "step", "customer", "date_from", "date_to", "q", "limit", "cursor"} == {
        p["name"] for p in listing["parameters"] if p["in"] == "query"
    }
    page = schemas["OrderPage"]["properties"]
    assert set(page) == {"items", "next_cursor"}


def test_bearer_security_is_declared(spec: dict[str, Any]):
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert spec["security"] == [{"bearer": []}]


def test_the_guide_describes_every_endpoint(spec: dict[str, Any]):
    guide = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    described = {
        (method.lower(), re.sub(r"{[^}]+}", "{}", path))
        for method, path in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/api/v1/[^`\s?]*)`", guide)
    }
    for method, path, _ in operations(spec):
        assert (method, re.sub(r"{[^}]+}", "{}", path)) in described, f"docs/api.md lacks {method.upper()} {path}"
