"""Building blocks shared by the API's blueprints: JSON bodies, cursors, list queries, docs.

Request bodies are read here rather than by webargs because the services validate them
with core's schemas (the same rules as the screens) and idempotent order creation
needs the body exactly as sent.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from http import HTTPStatus
from typing import Any, NoReturn, TypeVar

from flask import request
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.services import ServiceError
from core.services.orders import MAX_LIMIT
from core.services.paging import decode_cursor, encode_cursor
from core.web import db

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_LIMIT = 50


def _bad_request(code: str, message: str, field: str, why: str, status: int = 400) -> NoReturn:
    raise ServiceError(code, message, {field: [why]}, status=status)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def read_json(*, required: bool = True) -> dict[str, Any]:
    """The request's JSON object; 415 for another content type, 400 for a malformed body.

    Numbers are read as ``Decimal`` so money keeps every digit; ``NaN`` and
    ``Infinity`` (which Python's parser would accept) are refused as malformed.
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            _bad_request("bad_request", "a JSON body is required", "body", "Send a JSON object.")
        return {}
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not (mimetype.startswith("application/") and mimetype.endswith("+json")):
        _bad_request(
            "unsupported_media_type",
            f"the body must be JSON, not {mimetype or 'untyped'}",
            "Content-Type",
            "Send 'Content-Type: application/json'.",
            status=415,
        )
    try:
        body = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        _bad_request("malformed_json", "the body is not valid JSON", "body", str(exc) or type(exc).__name__)
    if not isinstance(body, dict):
        _bad_request("bad_request", "the body must be a JSON object", "body", "Send a JSON object ({...}).")
    return body


def refuse_unknown_fields(body: dict[str, Any], allowed: Iterable[str] = ()) -> dict[str, Any]:
    """``body`` if it has only the ``allowed`` fields; otherwise a 422 naming the others.

    For bodies read with :func:`read_json` rather than a schema: a misspelt field must
    not be ignored silently.
    """
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ServiceError(
            "invalid", "the request is not valid: " + ", ".join(unknown), {key: ["Unknown field."] for key in unknown}
        )
    return body


def no_body() -> None:
    """Check that an action taking no input got none: no body, or an empty JSON object."""
    refuse_unknown_fields(read_json(required=False))


def if_match_version() -> int | None:
    """The order version in an ``If-Match`` header (``"3"``, ``W/"3"`` or ``3``), if any."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise ServiceError(
            "invalid", "the If-Match header is not valid", {"If-Match": ["Give the version, e.g. '\"3\"'."]}
        )
    return int(value)


def merge_version(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with ``version`` taken from ``If-Match`` when the body has none; both must agree."""
    header = if_match_version()
    if header is None:
        return body
    if "version" in body and body["version"] != header:
        raise ServiceError(
            "invalid",
            "the If-Match header and the body's version disagree",
            {"If-Match": [f"Is {header}, but the body says version {body['version']!r}."]},
        )
    return {**body, "version": header}


def commit() -> None:
    """Commit the request's transaction, then forget loaded state so the answer shows what was stored.

    Sessions keep objects after commit; without the expiry a new order would echo
    ``"2"`` where every later read says ``"2.000"``.
    """
    session = db()
    session.commit()
    session.expire_all()


def etag(version: int) -> str:
    """The ``ETag`` header value of a record at ``version``."""
    return f'"{version}"'


def keyset_page(
    session: Session, stmt: Select[Any], key: InstrumentedAttribute[str], kind: str, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """One page of ``stmt`` (already ordered by the unique ``key``) and the next page's cursor.

    Keyset paging (``WHERE key > last``) stays fast on large tables and never skips or
    repeats a row when rows are added between pages.
    """
    if cursor:
        stmt = stmt.where(key > decode_cursor(kind, cursor))
    rows = list(session.scalars(stmt.limit(limit + 1)))
    next_cursor = encode_cursor(kind, getattr(rows[limit - 1], key.key)) if len(rows) > limit else None
    return rows[:limit], next_cursor


class PageQuerySchema(Schema):
    """Paging of any keyset-paged list: ``limit`` and ``cursor``.

    Lists with a ``date_from``/``date_to`` range get the check that the range is in order.
    """

    limit = fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"Page size, 1–{MAX_LIMIT}."},
    )
    cursor = fields.String(metadata={"description": "`next_cursor` of the previous page."})

    @validates_schema
    def _dates_in_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise ValidationError("Must not be before date_from.", "date_to")


class ListQuerySchema(PageQuerySchema):
    """Paging and search of a master-data list (customers, products)."""

    q = fields.String(validate=validate.Length(max=200), metadata={"description": "Text to find in codes and names."})
    include_inactive = fields.Boolean(load_default=False, metadata={"description": "Also list deactivated records."})


def json_body(schema: type[Schema] | dict[str, Any], *, required: bool = True, example: Any = None) -> dict[str, Any]:
    """An OpenAPI ``requestBody`` for ``schema`` (a Schema class or a ``$ref`` dict)."""
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"required": required, "content": {"application/json": media}}


def errors(blp: Blueprint, *statuses: int) -> Callable[[F], F]:
    """Document the error answers ``statuses`` of an endpoint (each in the error envelope)."""

    def decorator(func: F) -> F:
        for status in statuses:
            func = blp.alt_response(status, response=HTTPStatus(status).name)(func)
        return func

    return decorator


IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": "The version you last read (the ETag), instead of `version` in the body; a stale one answers 409.",
}


def change_schema(schema: type[Schema], name: str, keep_required: tuple[str, ...] = ()) -> type[Schema]:
    """A documentation-only copy of ``schema`` whose fields are optional (a PATCH body).

    The services load PATCH bodies with ``partial``; this only tells OpenAPI so.
    """
    declared = {}
    for field_name, field in schema._declared_fields.items():
        optional = copy.copy(field)
        optional.required = field_name in keep_required
        declared[field_name] = optional
    return Schema.from_dict(declared, name=name)
