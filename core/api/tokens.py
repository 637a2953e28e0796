"""API: your API tokens — list, create (the token is answered once), revoke.

Only a token's SHA-256 is stored, so it cannot be shown again. Holders of
``users.manage`` may list (``?all=true``) and revoke everyone's tokens.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from core.api.auth import api_user, require_api_user
from core.api.common import commit, errors, json_body, read_json
from core.models import ApiToken
from core.services.access import (
    TokenInSchema,
    create_api_token,
    get_api_token,
    revoke_api_token,
    token_state,
    tokens_query,
)
from core.web import db

blp = Blueprint(
    "api_tokens",
    __name__,
    url_prefix="/api/v1/tokens",
    description="API tokens: shown once at creation, stored hashed, optional expiry, revocable.",
)
blp.before_request(require_api_user)


class TokenOutSchema(Schema):
    """A token's record: never the token itself nor its hash."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    prefix = fields.String(required=True, metadata={"description": "The token's first characters, to recognise it."})
    user_id = fields.Integer(required=True)
    user_email = fields.String(attribute="user.email", required=True)
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(allow_none=True, required=True)
    last_used_at = fields.DateTime(allow_none=True, required=True)
    revoked_at = fields.DateTime(allow_none=True, required=True)
    state = fields.String(required=True, metadata={"description": "active, expired or revoked."})


class TokenCreatedSchema(TokenOutSchema):
    """A new token's record and the token: keep it now, it is not shown again."""

    token = fields.String(required=True, metadata={"description": "Send as 'Authorization: Bearer <token>'."})


class TokenListSchema(Schema):
    """Tokens, newest first."""

    items = fields.List(fields.Nested(TokenOutSchema), required=True)


class TokenQuerySchema(Schema):
    """Which tokens to list."""

    all = fields.Boolean(load_default=False, metadata={"description": "Everyone's tokens (needs `users.manage`)."})
    include_revoked = fields.Boolean(load_default=True, metadata={"description": "Also list revoked tokens."})


def token_out(token: ApiToken) -> dict[str, Any]:
    """``token`` in the API's shape, with its state."""
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "user_id": token.user_id,
        "user": token.user,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
        "state": token_state(token),
    }


@blp.route("")
class Tokens(MethodView):
    """Your tokens and token creation."""

    @blp.arguments(TokenQuerySchema, location="query", unknown="raise")
    @blp.response(200, TokenListSchema)
    @errors(blp, 401, 403, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List your tokens, newest first, with last-used time and expiry; `all=true` lists everyone's."""
        stmt = tokens_query(api_user(), everyone=args["all"], include_revoked=args["include_revoked"])
        return {"items": [token_out(t) for t in db().scalars(stmt)]}

    @blp.doc(requestBody=json_body(TokenInSchema, example={"name": "ERP sync", "expires_days": 90}))
    @blp.response(201, TokenCreatedSchema)
    @errors(blp, 400, 401, 415, 422)
    def post(self) -> tuple[dict[str, Any], int]:
        """Create a token for yourself; the answer holds the token, shown this once only."""
        row, token = create_api_token(db(), api_user(), read_json(required=False))
        out = {**token_out(row), "token": token}
        commit()
        return out, 201


@blp.route("/<int:token_id>")
class TokenItem(MethodView):
    """One token."""

    @blp.response(200, TokenOutSchema)
    @errors(blp, 401, 403, 404)
    def delete(self, token_id: int) -> dict[str, Any]:
        """Revoke a token (your own, or anyone's with `users.manage`); it answers 401 from now on."""
        user = api_user()
        token = revoke_api_token(db(), user, get_api_token(db(), user, token_id))
        commit()
        return token_out(token)
