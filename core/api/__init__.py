"""The REST API under ``/api/v1``: flask-smorest blueprints with one error envelope.

Every error answers ``{"error": {"code", "message", "details"}}`` with the HTTP status
that means it (400/401/403/404/409/415/422). The OpenAPI document is served at
``/api/v1/openapi.json``; ``docs/api.md`` is the guide for people.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from apispec import APISpec, BasePlugin
from flask import Flask, Response, jsonify, request
from flask_smorest import Api, abort
from flask_wtf.csrf import CSRFError
from marshmallow import Schema, fields, validate
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from core.schemas import Ref
from core.services import ServiceError
from core.web import actor, db

API_PREFIX = "/api/v1"


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    """A JSON error in Ordo's envelope."""
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    if status == 401:
        # RFC 6750: tell the client which scheme to use.
        response.headers["WWW-Authenticate"] = 'Bearer realm="ordo"'
    return response


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    500: "server_error",
    503: "busy",
}


#: The request field a service refusal is about, when the service names none itself.
_FIELD_OF_CODE = {
    "stale_version": "version",
    "reason_required": "reason",
    "idempotency_key_reused": "Idempotency-Key",
    "idempotency_key_in_flight": "Idempotency-Key",
}


class ErrorBodySchema(Schema):
    """What went wrong: a code for machines, a message for people, details per field."""

    code = fields.String(required=True, metadata={"example": "invalid"})
    message = fields.String(required=True, metadata={"example": "the order is not valid"})
    details = fields.Dict(
        required=True,
        metadata={
            "description": "Per-field messages (nested like the request body), or `reasons` for a refused action.",
            "example": {"lines": {"0": {"quantity": ["Quantity must be greater than zero."]}}},
        },
    )


class ErrorSchema(Schema):
    """Ordo's error envelope: every 4xx/5xx answer of the API has this shape."""

    error = fields.Nested(ErrorBodySchema, required=True)


def _is_api_request() -> bool:
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


class OrdoApi(Api):
    """flask-smorest's Api with Ordo's error envelope for every API error."""

    #: Documents the envelope in every error response of the OpenAPI document.
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        """Answer an HTTP error on an API path with the envelope (screens keep Flask's pages)."""
        if not _is_api_request():
            return error
        if isinstance(error, CSRFError):
            return self._csrf_error(error)
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        details = data.get("messages") or data.get("errors") or {}
        if isinstance(details, dict) and set(details) <= {"json", "query", "headers", "form", "files", "view_args"}:
            # webargs nests errors by location; clients want the fields.
            flat: dict[str, Any] = {}
            for part in details.values():
                flat.update(part)
            details = flat
        message = data.get("message") or error.description or ""
        if status == 422 and details:
            message = "the request is not valid: " + ", ".join(sorted(str(k) for k in details))
        return error_response(status, data.get("code") or _HTTP_CODES.get(status, "error"), message, details)

    @staticmethod
    def _csrf_error(error: CSRFError) -> Response:
        # A write without a bearer token is checked for CSRF before any API code runs.
        # With no login session either, the real problem is the missing credentials.
        if actor() is None:
            return error_response(
                401,
                "unauthorized",
                "a valid bearer token (or login session) is required",
                {"Authorization": ["Send 'Authorization: Bearer <token>'."]},
            )
        return error_response(
            400,
            "csrf_failed",
            f"session-authenticated writes need a CSRF token: {error.description}",
            {"X-CSRFToken": [error.description]},
        )


def _ordo_ref_property(self: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
    """OpenAPI for :class:`core.schemas.Ref`: a code (string) or an id (integer)."""
    if isinstance(field, Ref):
        return {
            "oneOf": [{"type": "string"}, {"type": "integer"}],
            "description": "A code (string) or an id (integer).",
        }
    return {}


def _json_number(value: Decimal) -> int | float:
    """``value`` as the JSON number it stands for."""
    return int(value) if value == value.to_integral_value() else float(value)


def _ordo_decimal_property(self: Any, field: Any, ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """OpenAPI for money and quantities: decimal strings, never floats.

    Numeric bounds do not apply to strings (apispec would write them as strings), so
    they move into the description.
    """
    if not isinstance(field, fields.Decimal):
        return {}
    if not field.as_string:
        # A JSON number: its bounds and default must be numbers too, not Decimals
        # (which the document's JSON encoder would write as strings).
        for key in ("minimum", "maximum", "default", "example"):
            if isinstance(ret.get(key), Decimal):
                ret[key] = _json_number(ret[key])
        return {}
    ret.pop("minimum", None)
    ret.pop("maximum", None)
    bounds = []
    for rule in field.validators:
        if isinstance(rule, validate.Range):
            if rule.min is not None:
                bounds.append(f"{'≥' if rule.min_inclusive else '>'} {rule.min}")
            if rule.max is not None:
                bounds.append(f"{'≤' if rule.max_inclusive else '<'} {rule.max}")
    description = 'A decimal string, e.g. "1150.00"' + (f" ({', '.join(bounds)})" if bounds else "") + "."
    return {"type": "string", "format": "decimal", "description": description}


_STRING = {"type": "string"}
#: OpenAPI for the computed (``fields.Function``) fields of core's output schemas, by field name.
_COMPUTED_FIELDS: dict[str, dict[str, Any]] = {
    "customer": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "code": _STRING, "name": _STRING},
        "description": "The customer ordering.",
    },
    "ship_to": {
        "type": "object",
        "properties": {key: _STRING for key in ("contact", "phone", "province", "city", "address")},
        "description": "Where the goods go.",
    },
    "product": {"type": "string", "description": "The product's SKU."},
    "product_name": {"type": "string", "description": "The product's name."},
}


def _ordo_computed_property(self: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
    """OpenAPI for computed output fields, which apispec cannot type by itself."""
    if isinstance(field, fields.Function | fields.Method):
        return dict(_COMPUTED_FIELDS.get(field.name or "", {"description": "Computed by the server."}))
    return {}


def _json_unauthorized(manager: Any) -> Callable[[], Any]:
    """Wrap Flask-Login's ``unauthorized`` so API paths answer JSON 401, screens still redirect.

    Wrapping the method (rather than setting ``unauthorized_handler``) keeps working
    whatever handler the screens install for themselves.
    """
    original = manager.unauthorized

    def unauthorized() -> Any:
        if _is_api_request():
            abort(
                401,
                message="a valid bearer token (or login session) is required",
                errors={"Authorization": ["Send 'Authorization: Bearer <token>'."]},
            )
        return original()

    return unauthorized


class BusyResponsePlugin(BasePlugin):
    """Lists ``503 busy`` on every operation of the OpenAPI document.

    Any request may lose its race against other writers on every retry (see
    :class:`core.app.OrdoFlask`); it then answers 503 in the error envelope with
    ``Retry-After``, having saved nothing. Clients generated from the document learn to
    expect it and to try again, instead of meeting it only as the ``default`` response.
    """

    def init_spec(self, spec: APISpec) -> None:
        """Register the ``BUSY`` response (the envelope plus the ``Retry-After`` header)."""
        super().init_spec(spec)
        spec.components.response(
            "BUSY",
            {
                "description": "The database was busy with other changes and nothing was saved; try again.",
                "headers": {
                    "Retry-After": {
                        "description": "Seconds to wait before trying again.",
                        "schema": {"type": "integer"},
                    }
                },
                "content": {"application/json": {"schema": ErrorSchema}},
            },
        )

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Add ``503: BUSY`` to each of ``path``'s operations."""
        for operation in (operations or {}).values():
            if isinstance(operation, dict):
                operation.setdefault("responses", {}).setdefault("503", "BUSY")


def init_api(app: Flask) -> OrdoApi:
    """Attach the API to ``app``: OpenAPI settings, error handlers, core's blueprints."""
    app.config.setdefault("API_TITLE", "Ordo")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", API_PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api = OrdoApi(
        app,
        spec_kwargs={
            "info": {
                "description": "Ordo's order-management API. JSON in and out; money as decimal strings; "
                'errors as {"error": {"code", "message", "details"}}. See docs/api.md.'
            },
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
            "security": [{"bearer": []}],
            "extra_plugins": [BusyResponsePlugin()],
        },
    )
    api.ma_plugin.converter.add_attribute_function(_ordo_ref_property)
    api.ma_plugin.converter.add_attribute_function(_ordo_decimal_property)
    api.ma_plugin.converter.add_attribute_function(_ordo_computed_property)
    app.extensions["ordo_api"] = api

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> Any:
        if _is_api_request():
            details = exc.details
            if not details and exc.code in _FIELD_OF_CODE:
                details = {_FIELD_OF_CODE[exc.code]: [exc.message]}
            return error_response(exc.status, exc.code, exc.message, details)
        raise exc

    @app.errorhandler(StaleDataError)
    def _stale(exc: StaleDataError) -> Any:
        # Two writers read the same version; the second flush matched no row.
        if _is_api_request():
            return error_response(409, "stale_version", "the record was changed meanwhile; reload and retry")
        raise exc

    @app.errorhandler(IntegrityError)
    def _integrity(exc: IntegrityError) -> Any:
        # A concurrent writer took a unique code first (the services' checks ran before it committed).
        if _is_api_request():
            return error_response(409, "conflict", "the change conflicts with data saved meanwhile; reload and retry")
        raise exc

    @app.errorhandler(OverflowError)
    @app.errorhandler(DataError)
    def _out_of_range(exc: Exception) -> Any:
        # A number (or text) the database cannot store, e.g. an id beyond the integer range:
        # bad input, refused as such; the request's transaction is rolled back with the session.
        if _is_api_request():
            db().rollback()
            return error_response(
                422,
                "out_of_range",
                "a value in the request is out of the range the database can store",
                {"body": ["A number or text is too large."]},
            )
        raise exc

    login_manager = getattr(app, "login_manager", None)
    if login_manager is not None:
        login_manager.unauthorized = _json_unauthorized(login_manager)

    from core.api import audit, customers, orders, products, roles, tokens, users

    for module in (customers, products, orders, users, roles, tokens, audit):
        api.register_blueprint(module.blp)
    return api
