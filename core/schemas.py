"""Marshmallow schemas: the one place order, customer and product input is validated.

The API loads request bodies with these and the screens load their form data with
the same schemas, so a rule holds on every path. Output schemas render money as
decimal strings, never floats.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import Numeric

from core.db import Percent, Quantity, UnitPrice
from core.models import CHANNELS, PAYMENT_METHODS, URGENCIES
from core.models.user import DATA_SCOPES

#: The largest id the id columns hold on every backend: they are INTEGER, 32 bits on
#: PostgreSQL (SQLite's would take 64); a larger one would fail there instead of not matching.
MAX_ID = 2**31 - 1


#: Bidirectional embedding, override and isolate controls: invisible, and they reorder
#: what follows (a name ending ``\u202egpj.exe`` shows as ``exe.jpg``), so text refuses them.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class Text(fields.String):
    """A string without control characters (they break exports, PDFs and PostgreSQL) or
    bidirectional overrides (they disguise what is shown).

    ``multiline`` text (notes, reasons, addresses) may hold line breaks and tabs.
    """

    default_error_messages = {"control": "Remove control characters (invisible codes) from this text."}

    def __init__(self, *args: Any, multiline: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowed = {"\n", "\r", "\t"} if multiline else set()

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if any((ord(c) < 32 or 0x7F <= ord(c) < 0xA0) and c not in self.allowed for c in text):
            raise self.make_error("control")
        if any(c in BIDI_CONTROLS for c in text):
            raise self.make_error("control")
        return text


class Ref(fields.Field):
    """A reference by id (JSON integer) or by code (string): ``"C001"`` or ``17``."""

    default_error_messages = {"invalid": "Give a code (string) or an id (integer)."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int | str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.make_error("invalid")
        if isinstance(value, str) and not value.strip():
            raise self.make_error("invalid")
        if isinstance(value, int) and not 0 < value <= MAX_ID:
            raise self.make_error("invalid")
        if isinstance(value, str) and any(ord(c) < 32 for c in value):
            raise self.make_error("invalid")
        return value.strip() if isinstance(value, str) else value


class Fits(validate.Validator):
    """Refuse a number its ``Numeric(precision, scale)`` column cannot hold exactly.

    Without it ``"1e999"`` crashes the flush and ``"1e-999"`` is silently stored as zero.
    """

    def __init__(self, column: Numeric) -> None:
        self.integer_digits = (column.precision or 0) - (column.scale or 0)
        self.scale = column.scale or 0

    def __call__(self, value: Decimal) -> Decimal:
        if abs(value) >= Decimal(10) ** self.integer_digits:
            raise ValidationError(f"Too large: at most {self.integer_digits} digits before the decimal point.")
        if value != value.quantize(Decimal(1).scaleb(-self.scale)):
            raise ValidationError(f"Too precise: at most {self.scale} decimal places.")
        return value


def _money(column: Numeric | None = None, **kwargs: Any) -> fields.Decimal:
    if column is not None:
        extra = kwargs.pop("validate", None)
        kwargs["validate"] = [Fits(column)] + ([extra] if extra is not None else [])
    return fields.Decimal(as_string=True, allow_nan=False, **kwargs)


class ShipToSchema(Schema):
    """Where the goods go: contact, phone, province, city, street address."""

    contact = Text(load_default="", validate=validate.Length(max=100))
    phone = Text(load_default="", validate=validate.Length(max=50))
    province = Text(load_default="", validate=validate.Length(max=64))
    city = Text(load_default="", validate=validate.Length(max=64))
    address = Text(multiline=True, load_default="", validate=validate.Length(max=300))


class OrderLineInSchema(Schema):
    """One line as given by a client; the unit price defaults to the product's list price."""

    product = Ref(required=True)
    quantity = _money(
        Quantity,
        required=True,
        validate=validate.Range(min=0, min_inclusive=False, error="Quantity must be greater than zero."),
    )
    unit_price = _money(
        UnitPrice, load_default=None, validate=validate.Range(min=0, error="Unit price cannot be negative.")
    )
    discount = _money(
        Percent,
        load_default=Decimal("0"),
        validate=validate.Range(min=0, max=100, error="Discount is a percentage from 0 to 100."),
    )
    description = Text(multiline=True, load_default="", validate=validate.Length(max=500))


class OrderInSchema(Schema):
    """A new order's header and lines (the scriptable JSON contract)."""

    customer = Ref(required=True)
    channel = Text(required=True, validate=validate.OneOf(CHANNELS))
    reference = Text(load_default="", validate=validate.Length(max=100))
    external_reference = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))
    reason = Text(multiline=True, load_default="", validate=validate.Length(max=500))
    requested_date = fields.Date(load_default=None)
    payment_method = Text(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    currency = Text(
        load_default="CNY", validate=validate.Regexp(r"^[A-Z]{3}$", error="Use a three-letter ISO currency code.")
    )
    urgency = Text(load_default="normal", validate=validate.OneOf(URGENCIES))
    contact_name = Text(load_default="", validate=validate.Length(max=100))
    contact_phone = Text(load_default="", validate=validate.Length(max=50))
    note = Text(multiline=True, load_default="", validate=validate.Length(max=2000))
    ship_to = fields.Nested(ShipToSchema, load_default=dict)
    lines = fields.List(fields.Nested(OrderLineInSchema), required=True)


class OrderPatchSchema(OrderInSchema):
    """A change to a draft order: any header field or the whole set of lines, plus the
    version the client last read (a stale version is refused)."""

    version = fields.Integer(required=True, strict=True)

    def load_patch(self, data: Any) -> dict[str, Any]:
        """Load only the fields given (plus the required ``version``)."""
        given = tuple(name for name in OrderInSchema._declared_fields if name not in data)
        return self.load(data, partial=given)


class OrderLineOutSchema(Schema):
    id = fields.Integer()
    position = fields.Integer()
    product = fields.Function(lambda line: line.product.sku)
    product_id = fields.Integer()
    product_name = fields.Function(lambda line: line.product.name)
    description = Text()
    quantity = _money()
    unit = Text()
    unit_price = _money()
    discount = _money()
    tax_rate = _money()
    amount = _money()


class OrderOutSchema(Schema):
    id = fields.Integer()
    number = Text()
    status = Text()
    step = Text()
    version = fields.Integer()
    customer = fields.Function(lambda o: {"id": o.customer.id, "code": o.customer.code, "name": o.customer.name})
    channel = Text()
    reference = Text()
    external_reference = Text(allow_none=True)
    reason = Text()
    requested_date = fields.Date(allow_none=True)
    payment_method = Text()
    currency = Text()
    urgency = Text()
    contact_name = Text()
    contact_phone = Text()
    note = Text()
    ship_to = fields.Function(
        lambda o: {
            "contact": o.ship_to_contact,
            "phone": o.ship_to_phone,
            "province": o.ship_to_province,
            "city": o.ship_to_city,
            "address": o.ship_to_address,
        }
    )
    owner_id = fields.Integer(allow_none=True)
    branch_id = fields.Integer(allow_none=True)
    untaxed_amount = _money()
    tax_amount = _money()
    total = _money()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    lines = fields.List(fields.Nested(OrderLineOutSchema))


class ContactSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = Text(required=True, validate=validate.Length(min=1, max=100))
    phone = Text(load_default="", validate=validate.Length(max=50))
    email = fields.Email(load_default="", validate=validate.Length(max=254))
    role = Text(load_default="", validate=validate.Length(max=50))


class AddressSchema(Schema):
    id = fields.Integer(dump_only=True)
    label = Text(load_default="", validate=validate.Length(max=100))
    province = Text(required=True, validate=validate.Length(min=1, max=64))
    city = Text(required=True, validate=validate.Length(min=1, max=64))
    district = Text(load_default="", validate=validate.Length(max=64))
    region = Text(load_default="", validate=validate.Length(max=64))
    address = Text(multiline=True, required=True, validate=validate.Length(min=1, max=300))
    postcode = Text(load_default="", validate=validate.Length(max=16))


class CustomerSchema(Schema):
    """A customer with its contacts and addresses; ``code`` and ``name`` are required."""

    id = fields.Integer(dump_only=True)
    code = Text(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,32}$", error="Use 1–32 letters, digits, '.', '_' or '-'."),
    )
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    tax_id = Text(load_default="", validate=validate.Length(max=64))
    note = Text(multiline=True, load_default="", validate=validate.Length(max=2000))
    branch = Text(load_default=None, allow_none=True, load_only=True)
    branch_id = fields.Integer(dump_only=True, allow_none=True)
    #: The salesperson who looks after the customer (their e-mail); owns its orders.
    owner = fields.Email(load_default=None, allow_none=True, load_only=True)
    owner_id = fields.Integer(dump_only=True, allow_none=True)
    active = fields.Boolean(dump_only=True)
    contacts = fields.List(fields.Nested(ContactSchema), load_default=list)
    addresses = fields.List(fields.Nested(AddressSchema), load_default=list)


class ProductSchema(Schema):
    """A product: ``sku``, ``name``, ``unit`` and ``list_price`` are required."""

    id = fields.Integer(dump_only=True)
    sku = Text(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9_./-]{1,64}$", error="Use 1–64 letters, digits, '.', '/', '_' or '-'."),
    )
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    spec = Text(load_default="", validate=validate.Length(max=500))
    unit = Text(required=True, validate=validate.Length(min=1, max=16))
    category = Text(load_default="", validate=validate.Length(max=64))
    list_price = _money(
        UnitPrice, required=True, validate=validate.Range(min=0, error="List price cannot be negative.")
    )
    tax_rate = _money(
        Percent,
        load_default=Decimal("13"),
        validate=validate.Range(min=0, max=100, error="Tax rate is a percentage from 0 to 100."),
    )
    regular = fields.Boolean(load_default=True)
    active = fields.Boolean(dump_only=True)


class ActionInSchema(Schema):
    """The optional body of an action: a reason."""

    reason = Text(multiline=True, load_default="", validate=validate.Length(max=1000))


class RoleSchema(Schema):
    code = Text()
    name = Text()
    data_scope = Text(validate=validate.OneOf(DATA_SCOPES))
