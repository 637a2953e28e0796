"""Customers and products: create, change, deactivate, find."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, selectinload

from core.models import Branch, Customer, CustomerAddress, CustomerContact, Product, User
from core.schemas import MAX_ID, CustomerSchema, ProductSchema
from core.services import NotFound, ServiceError, audit

#: The languages a customer's notifications and documents can be written in.
CUSTOMER_LANGUAGES = ("zh_CN", "en")
DEFAULT_CUSTOMER_LANGUAGE = "zh_CN"


class CustomerRecordSchema(CustomerSchema):
    """:class:`CustomerSchema` with the customer's language (zh_CN or en, default zh_CN).

    The language decides in which language status e-mails, digests and documents reach
    the customer (CORE-7).
    """

    language = fields.String(
        load_default=DEFAULT_CUSTOMER_LANGUAGE,
        validate=validate.OneOf(CUSTOMER_LANGUAGES),
        metadata={"description": "zh_CN (中文, the default) or en: the language of its notifications."},
    )


def _require(actor: User, code: str) -> None:
    if not actor.can(code):
        raise ServiceError("forbidden", f"you lack the permission {code!r}", status=403)


def _load(schema: Any, data: Any, partial: bool = False) -> dict[str, Any]:
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        raise ServiceError("invalid", "the input is not valid", exc.messages, status=422) from None


def _branch_id(session: Session, code: str | None) -> int | None:
    if not code:
        return None
    branch_id = session.scalar(select(Branch.id).where(Branch.code == code))
    if branch_id is None:
        raise ServiceError("invalid", "the input is not valid", {"branch": [f"Unknown branch {code!r}."]}, status=422)
    return branch_id


def _owner_id(session: Session, email: str | None) -> int | None:
    if not email:
        return None
    owner_id = session.scalar(
        select(User.id).where(User.email == email.lower(), User.active.is_(True), User.customer_id.is_(None))
    )
    if owner_id is None:
        raise ServiceError("invalid", "the input is not valid", {"owner": [f"No active staff user {email!r}."]})
    return owner_id


def _refuse_taken(session: Session, column: Any, value: str, current: str | None, message: str) -> None:
    """Refuse ``value`` for a unique ``column`` when another record has it already."""
    if value != current and session.scalar(select(column).where(column == value)) is not None:
        raise ServiceError("invalid", "the input is not valid", {column.key: [message.format(value)]}, status=422)


def create_customer(session: Session, actor: User, data: Any) -> Customer:
    """Create a customer with its contacts and addresses; codes are unique."""
    _require(actor, "customers.manage")
    values = _load(CustomerRecordSchema(), data)
    _refuse_taken(session, Customer.code, values["code"], None, "Customer code {!r} is taken.")
    customer = Customer(
        code=values["code"],
        name=values["name"],
        tax_id=values["tax_id"],
        note=values["note"],
        language=values["language"],
        branch_id=_branch_id(session, values.get("branch")),
        owner_id=_owner_id(session, values.get("owner")),
        contacts=[CustomerContact(**c) for c in values["contacts"]],
        addresses=[CustomerAddress(**a) for a in values["addresses"]],
    )
    session.add(customer)
    session.flush()
    audit.record(
        session,
        actor,
        "customer",
        customer.id,
        "create",
        {"code": customer.code, "name": customer.name, "language": customer.language},
    )
    return customer


def update_customer(session: Session, actor: User, customer: Customer, data: Any) -> Customer:
    """Change a customer; contacts or addresses given replace the existing ones."""
    _require(actor, "customers.manage")
    values = _load(CustomerRecordSchema(), data, partial=True)
    if "code" in values:
        _refuse_taken(session, Customer.code, values["code"], customer.code, "Customer code {!r} is taken.")
    scalar: dict[str, Any] = {k: values[k] for k in ("code", "name", "tax_id", "note", "language") if k in values}
    changes = audit.diff(customer, scalar)
    for key, value in scalar.items():
        setattr(customer, key, value)
    if "owner" in values:
        customer.owner_id = _owner_id(session, values["owner"])
    if "branch" in values:
        customer.branch_id = _branch_id(session, values["branch"])
    if "contacts" in data:
        customer.contacts = [CustomerContact(**c) for c in values["contacts"]]
        changes["contacts"] = [None, len(customer.contacts)]
    if "addresses" in data:
        customer.addresses = [CustomerAddress(**a) for a in values["addresses"]]
        changes["addresses"] = [None, len(customer.addresses)]
    session.flush()
    audit.record(session, actor, "customer", customer.id, "update", changes)
    return customer


def set_customer_active(session: Session, actor: User, customer: Customer, active: bool) -> Customer:
    """Deactivate (or reactivate) a customer; deactivated customers take no new orders."""
    _require(actor, "customers.manage")
    if customer.active != active:
        customer.active = active
        audit.record(session, actor, "customer", customer.id, "activate" if active else "deactivate")
    return customer


def get_customer(session: Session, actor: User, ident: int | str) -> Customer:
    """A customer by id or code; 404 if unknown.

    Customers are not yet scoped by branch: anyone with ``customers.read`` sees all of
    them (scoping master data is part of the access-control work).
    """
    _require(actor, "customers.read")
    if isinstance(ident, int) and not 0 < ident <= MAX_ID:
        raise NotFound("customer", ident)
    column = Customer.id if isinstance(ident, int) else Customer.code
    customer = session.scalar(
        select(Customer)
        .where(column == ident)
        .options(selectinload(Customer.contacts), selectinload(Customer.addresses))
    )
    if customer is None:
        raise NotFound("customer", ident)
    return customer


def customers_query(actor: User, text: str | None = None, include_inactive: bool = False) -> Select[tuple[Customer]]:
    """Customers ``actor`` may see, optionally matching ``text`` in code or name."""
    _require(actor, "customers.read")
    stmt = select(Customer).order_by(Customer.code)
    if not include_inactive:
        stmt = stmt.where(Customer.active.is_(True))
    if text:
        like = f"%{text.strip()}%"
        stmt = stmt.where(or_(Customer.code.ilike(like), Customer.name.ilike(like)))
    return stmt


def create_product(session: Session, actor: User, data: Any) -> Product:
    """Create a product; SKUs are unique."""
    _require(actor, "products.manage")
    values = _load(ProductSchema(), data)
    _refuse_taken(session, Product.sku, values["sku"], None, "SKU {!r} is taken.")
    product = Product(**values)
    session.add(product)
    session.flush()
    audit.record(
        session, actor, "product", product.id, "create", {"sku": product.sku, "list_price": product.list_price}
    )
    return product


def update_product(session: Session, actor: User, product: Product, data: Any) -> Product:
    """Change a product; orders already taken keep the prices they were taken at."""
    _require(actor, "products.manage")
    values = _load(ProductSchema(), data, partial=True)
    if "sku" in values:
        _refuse_taken(session, Product.sku, values["sku"], product.sku, "SKU {!r} is taken.")
    changes = audit.diff(product, values)
    for key, value in values.items():
        setattr(product, key, value)
    session.flush()
    audit.record(session, actor, "product", product.id, "update", changes)
    return product


def set_product_active(session: Session, actor: User, product: Product, active: bool) -> Product:
    """Deactivate (or reactivate) a product; deactivated products cannot be ordered."""
    _require(actor, "products.manage")
    if product.active != active:
        product.active = active
        audit.record(session, actor, "product", product.id, "activate" if active else "deactivate")
    return product


def get_product(session: Session, actor: User, ident: int | str) -> Product:
    """A product by id or SKU; 404 if unknown."""
    _require(actor, "products.read")
    if isinstance(ident, int) and not 0 < ident <= MAX_ID:
        raise NotFound("product", ident)
    column = Product.id if isinstance(ident, int) else Product.sku
    product = session.scalar(select(Product).where(column == ident))
    if product is None:
        raise NotFound("product", ident)
    return product


def products_query(actor: User, text: str | None = None, include_inactive: bool = False) -> Select[tuple[Product]]:
    """Products ``actor`` may see, optionally matching ``text`` in SKU, name or spec."""
    _require(actor, "products.read")
    stmt = select(Product).order_by(Product.sku)
    if not include_inactive:
        stmt = stmt.where(Product.active.is_(True))
    if text:
        like = f"%{text.strip()}%"
        stmt = stmt.where(or_(Product.sku.ilike(like), Product.name.ilike(like), Product.spec.ilike(like)))
    return stmt
