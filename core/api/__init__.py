"""The REST API under ``/api/v1``: flask-smorest blueprints with one error envelope.

Every error answers ``{"error": {"code", "message", "details"}}`` with the HTTP status
that means it (400/401/403/404/409/422). The OpenAPI document is served at
``/api/v1/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from core.services import ServiceError

API_PREFIX = "/api/v1"


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    """A JSON error in Ordo's envelope."""
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    return response


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
}


class OrdoApi(Api):
    """flask-smorest's Api with Ordo's error envelope for every API error."""

    def handle_http_exception(self, error: HTTPException) -> Any:  # type: ignore[override]
        if not request.path.startswith(API_PREFIX):
            return error
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        details = data.get("messages") or {}
        if isinstance(details, dict) and set(details) <= {"json", "query", "headers", "form", "files", "view_args"}:
            # webargs nests errors by location; clients want the fields.
            flat: dict[str, Any] = {}
            for part in details.values():
                flat.update(part)
            details = flat
        message = data.get("message") or error.description or ""
        if status == 422 and details:
            message = "the request is not valid: " + ", ".join(sorted(str(k) for k in details))
        return error_response(status, _HTTP_CODES.get(status, "error"), message, details)


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
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
            "security": [{"bearer": []}],
        },
    )

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> Any:
        if request.path.startswith(API_PREFIX):
            return error_response(exc.status, exc.code, exc.message, exc.details)
        raise exc

    from core.api import customers, orders, products

    for module in (customers, products, orders):
        api.register_blueprint(module.blp)
    return api
