"""API: the company record — letterhead, home province, order prefix and working week.

Staff may read it; changing it needs ``settings.manage``. Thin endpoints over
:mod:`core.company.service`. The logo is uploaded on the Company screen.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate

from core.api.auth import api_user, require_api_user
from core.api.common import commit, errors, json_body, read_json
from core.calendar import WEEKDAYS, parse_weekend
from core.company.service import TEXT_FIELDS, current_company, orders_exist, require_settings_manager, update_company
from core.models import Company
from core.schemas import Text
from core.services import ServiceError
from core.web import db

blp = Blueprint(
    "api_company",
    __name__,
    url_prefix="/api/v1/company",
    description="The company (公司): letterhead printed on documents, home province, order prefix, working week.",
)
blp.before_request(require_api_user)

_DESCRIPTIONS = {
    "name": "The company's name, printed on documents.",
    "address": "Letterhead address (may hold line breaks).",
    "phone": "Letterhead phone number.",
    "email": "Letterhead e-mail address.",
    "tax_id": "Unified social credit code (统一社会信用代码).",
    "home_province": "Home province or city; orders shipped outside it are remote orders.",
    "order_prefix": "Order numbers read <prefix><year>-<serial>; fixed once orders exist.",
}
_WEEKEND = {
    "description": "Days of the week nobody works, Monday first: mon, tue, wed, thu, fri, sat, sun.",
    "example": ["sat", "sun"],
}


class CompanySchema(Schema):
    """The company record."""

    id = fields.Integer(required=True)
    code = fields.String(required=True)
    currency = fields.String(required=True)
    name = fields.String(required=True, metadata={"description": _DESCRIPTIONS["name"]})
    address = fields.String(required=True, metadata={"description": _DESCRIPTIONS["address"]})
    phone = fields.String(required=True, metadata={"description": _DESCRIPTIONS["phone"]})
    email = fields.String(required=True, metadata={"description": _DESCRIPTIONS["email"]})
    tax_id = fields.String(required=True, metadata={"description": _DESCRIPTIONS["tax_id"]})
    home_province = fields.String(required=True, metadata={"description": _DESCRIPTIONS["home_province"]})
    order_prefix = fields.String(required=True, metadata={"description": _DESCRIPTIONS["order_prefix"]})
    order_prefix_locked = fields.Boolean(
        required=True, metadata={"description": "True once orders exist: the prefix can no longer change."}
    )
    weekend_days = fields.List(fields.String(), required=True, metadata=_WEEKEND)
    has_logo = fields.Boolean(required=True, metadata={"description": "Whether documents print a logo."})


class CompanyChangeSchema(Schema):
    """The fields to change; those left out stay as they are."""

    name = Text(validate=validate.Length(min=1, max=TEXT_FIELDS["name"]))
    address = Text(multiline=True, validate=validate.Length(max=TEXT_FIELDS["address"]))
    phone = Text(validate=validate.Length(max=TEXT_FIELDS["phone"]))
    email = Text(validate=validate.Length(max=TEXT_FIELDS["email"]))
    tax_id = Text(validate=validate.Length(max=TEXT_FIELDS["tax_id"]))
    home_province = Text(validate=validate.Length(max=TEXT_FIELDS["home_province"]))
    order_prefix = Text(validate=validate.Length(min=1, max=TEXT_FIELDS["order_prefix"]))
    weekend_days = fields.List(
        fields.String(validate=validate.OneOf(WEEKDAYS)), validate=validate.Length(max=6), metadata=_WEEKEND
    )


def company_out(company: Company) -> dict[str, Any]:
    """The company as the API shows it."""
    out: dict[str, Any] = {name: getattr(company, name) for name in ("id", "code", "currency", *TEXT_FIELDS)}
    out["order_prefix_locked"] = orders_exist(db(), company)
    out["weekend_days"] = [WEEKDAYS[d] for d in sorted(parse_weekend(company.weekend_days))]
    out["has_logo"] = bool(company.logo_sha256)
    return out


@blp.route("")
class CompanyItem(MethodView):
    """The company record."""

    @blp.response(200, CompanySchema)
    @errors(blp, 401, 403)
    def get(self) -> dict[str, Any]:
        """Read the company record (staff only)."""
        if api_user().customer_id is not None:
            raise ServiceError("forbidden", "the company record is for staff", status=403)
        return company_out(current_company(db()))

    @blp.doc(
        requestBody=json_body(
            CompanyChangeSchema,
            example={"address": "重庆市渝北区金开大道 99 号", "phone": "023-6700-0000", "weekend_days": ["sun"]},
        )
    )
    @blp.response(200, CompanySchema)
    @errors(blp, 400, 401, 403, 415, 422)
    def patch(self) -> dict[str, Any]:
        """Change the company record (needs `settings.manage`); weekend days change the working calendar."""
        user = require_settings_manager(api_user())
        try:
            values = CompanyChangeSchema().load(read_json())
        except ValidationError as exc:
            raise ServiceError(
                "invalid", "the company record is not valid; nothing was changed", exc.messages
            ) from None
        company = update_company(db(), user, **values)
        commit()
        return company_out(company)
