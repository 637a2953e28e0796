"""Price lists (价格表): the price an order line should have, and keeping the lists.

Which price applies (DOMAIN.md IN-3 "price consistent with pricing policy or contract"):

1. the customer's own price lists (contract prices, kind ``"contract"``), then
2. the price lists of the customer's group (kind ``"group"``), then
3. the product's list price (kind ``"list"``).

Only active lists valid on the day (``valid_from`` ≤ day ≤ ``valid_to``, an empty bound
being open) and in the order's currency count. Among the lists of one kind the one with
the latest ``valid_from`` is tried first; the first list that prices the product at the
quantity wins. Within a list, the item with the highest ``min_quantity`` not above the
quantity gives the price (tiered prices).

The services below create and change price lists, customer groups and customer
profiles: they check the actor's permission, validate everything before writing
anything, write an audit entry and never commit.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from core.clock import COMPANY_TIMEZONE
from core.company.service import first_company
from core.models import Customer, Order, OrderLine, Product, User
from core.services import NotFound, ServiceError, audit
from plugins.intake.models import (
    IntakeCustomerGroup,
    IntakeCustomerProfile,
    IntakePriceList,
    IntakePriceListItem,
)

READ = "intake.prices.read"
MANAGE = "intake.prices.manage"
#: The kinds of applied price, from the strongest.
KINDS = ("contract", "group", "list")
CODE_RE = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
#: The largest unit price and quantity the columns keep (precision 14/18, a few places).
MAX_AMOUNT = Decimal("1000000000")


@dataclass(frozen=True)
class AppliedPrice:
    """The unit price an order line should have and where it comes from."""

    unit_price: Decimal
    #: ``"contract"`` (the customer's own list), ``"group"`` (its group's) or ``"list"``.
    kind: str
    currency: str
    #: The price list it came from (``None`` for the product's list price).
    price_list: IntakePriceList | None = None
    #: The tier's minimum quantity (0 for the list price).
    min_quantity: Decimal = Decimal("0")

    @property
    def source(self) -> str:
        """Where the price comes from, for people: the list's code and name, or "list price"."""
        if self.price_list is None:
            return "list price"
        return f"{self.price_list.code} {self.price_list.name}"


# --- the applicable price -------------------------------------------------------------


def company_currency(session: Session) -> str:
    """The currency of the product list prices: the company's (CNY unless changed)."""
    company = first_company(session)
    return (company.currency if company is not None else None) or "CNY"


def _valid_lists(session: Session, on: dt.date, currency: str | None) -> Any:
    stmt = select(IntakePriceList).where(
        IntakePriceList.active.is_(True),
        or_(IntakePriceList.valid_from.is_(None), IntakePriceList.valid_from <= on),
        or_(IntakePriceList.valid_to.is_(None), IntakePriceList.valid_to >= on),
    )
    if currency is not None:
        stmt = stmt.where(IntakePriceList.currency == currency.upper())
    # The latest valid_from first; a list without a start counts as the oldest.
    return stmt.order_by(
        IntakePriceList.valid_from.is_(None), IntakePriceList.valid_from.desc(), IntakePriceList.id.desc()
    )


@dataclass
class PriceBook:
    """The price lists that may price one customer's orders on one day in one currency, read once.

    Built by :func:`price_book` (or :func:`customer_price_book` when the customer's group is
    known); :meth:`price` answers like :func:`applicable_price` for each product. The lists
    are read once, the tiers of the products named up front in one query, those of any
    other product on first use; the company's currency is read once, when a list price is
    needed. For many lines of one order this replaces several queries per line.
    """

    session: Session
    customer_id: int | None
    on: dt.date
    currency: str | None
    #: The valid lists by kind (``"contract"``, then ``"group"``), each the latest ``valid_from`` first.
    lists: list[tuple[str, list[IntakePriceList]]]
    _tiers: dict[tuple[int, int], list[IntakePriceListItem]] = field(default_factory=dict, init=False, repr=False)
    _read: set[int] = field(default_factory=set, init=False, repr=False)
    _home: str | None = field(default=None, init=False, repr=False)

    def read_tiers(self, product_ids: Iterable[int]) -> None:
        """Read the items of ``product_ids`` in every list (one query for those not read yet)."""
        wanted = set(product_ids) - self._read
        list_ids = [price_list.id for _, lists in self.lists for price_list in lists]
        if wanted and list_ids:
            items = self.session.scalars(
                select(IntakePriceListItem).where(
                    IntakePriceListItem.price_list_id.in_(list_ids), IntakePriceListItem.product_id.in_(wanted)
                )
            )
            touched: set[tuple[int, int]] = set()
            for item in items:
                key = (item.price_list_id, item.product_id)
                self._tiers.setdefault(key, []).append(item)
                touched.add(key)
            for key in touched:
                self._tiers[key].sort(key=lambda item: item.min_quantity, reverse=True)
        self._read |= wanted

    def _tier(self, price_list: IntakePriceList, product_id: int, quantity: Decimal) -> IntakePriceListItem | None:
        """The list's item for the product with the highest ``min_quantity`` not above ``quantity``."""
        tiers = self._tiers.get((price_list.id, product_id), ())
        return next((item for item in tiers if item.min_quantity <= quantity), None)

    def price(self, product_id: int, quantity: Decimal | int | str) -> AppliedPrice | None:
        """The unit price for ``quantity`` of ``product_id`` (see :func:`applicable_price`)."""
        qty = Decimal(str(quantity))
        self.read_tiers([product_id])
        for kind, lists in self.lists:
            for price_list in lists:
                item = self._tier(price_list, product_id, qty)
                if item is not None:
                    return AppliedPrice(item.unit_price, kind, price_list.currency, price_list, item.min_quantity)
        product = self.session.get(Product, product_id)
        if product is None:
            return None
        if self._home is None:
            self._home = company_currency(self.session)
        if self.currency is not None and self.currency.upper() != self._home:
            return None
        return AppliedPrice(product.list_price, "list", self._home)


def customer_price_book(
    session: Session,
    customer_id: int | None,
    group_id: int | None,
    on: dt.date,
    currency: str | None = None,
    product_ids: Iterable[int] = (),
) -> PriceBook:
    """The :class:`PriceBook` of ``customer_id`` in group ``group_id`` (``None``: in none).

    One query reads the customer's and its group's valid lists; the tiers of
    ``product_ids`` are read with one more (none when no list is valid).
    """
    condition = IntakePriceList.customer_id == customer_id
    if group_id is not None:
        condition = or_(condition, IntakePriceList.customer_group_id == group_id)
    valid = list(session.scalars(_valid_lists(session, on, currency).where(condition)))
    lists = [("contract", [price_list for price_list in valid if price_list.customer_id == customer_id])]
    if group_id is not None:
        lists.append(("group", [price_list for price_list in valid if price_list.customer_group_id == group_id]))
    book = PriceBook(session, customer_id, on, currency, lists)
    book.read_tiers(product_ids)
    return book


def price_book(
    session: Session, customer_id: int, on: dt.date, currency: str | None = None, product_ids: Iterable[int] = ()
) -> PriceBook:
    """The :class:`PriceBook` of ``customer_id`` (its group from its intake profile)."""
    profile = session.get(IntakeCustomerProfile, customer_id)
    group_id = profile.group_id if profile is not None else None
    return customer_price_book(session, customer_id, group_id, on, currency, product_ids)


def applicable_price(
    session: Session,
    customer_id: int,
    product_id: int,
    quantity: Decimal | int | str,
    on: dt.date,
    currency: str | None = None,
) -> AppliedPrice | None:
    """The unit price ``customer_id`` should pay for ``quantity`` of ``product_id`` on day ``on``.

    ``currency`` is the order's; lists in another currency are skipped, and the list
    price (kept in the company's currency) too. ``None`` when nothing prices the product
    (unknown product, or only lists and a list price in other currencies). To price many
    products, use one :func:`price_book`.
    """
    qty = Decimal(str(quantity))
    return price_book(session, customer_id, on, currency, [product_id]).price(product_id, qty)


def order_day(order: Order) -> dt.date:
    """The day an order's prices are taken on: the day it was entered, in the company's time zone."""
    return entry_day(order.created_at)


def entry_day(created: dt.datetime | None) -> dt.date:
    """The company's date at ``created`` (an order's entry; ``None``: not entered yet, so today)."""
    created = created or dt.datetime.now(dt.UTC)
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return created.astimezone(COMPANY_TIMEZONE).date()


def price_for_line(session: Session, order: Order, line: OrderLine, on: dt.date | None = None) -> AppliedPrice | None:
    """The applicable price of one of ``order``'s lines, in the order's currency, on its day."""
    return applicable_price(
        session, order.customer_id, line.product_id, line.quantity, on or order_day(order), order.currency
    )


# --- validation helpers -----------------------------------------------------------------


def _require(actor: User, code: str) -> None:
    if not actor.can(code):
        raise ServiceError("forbidden", f"you need the permission {code}", status=403)


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value).strip()


def _date(value: Any, errors: dict[str, Any], key: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        errors[key] = ["Not a valid date (YYYY-MM-DD)."]
        return None


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or str(value).strip() == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool) or str(value).strip() == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes", "y")
    return bool(value)


def _invalid(errors: dict[str, Any]) -> ServiceError:
    return ServiceError("invalid", "the data is not valid; nothing was saved", errors)


def _code(session: Session, model: Any, value: str, own_id: int | None, errors: dict[str, Any]) -> None:
    if not value:
        errors["code"] = ["Required."]
    elif not CODE_RE.match(value):
        errors["code"] = ["Use 1–32 letters, digits, “.”, “_” or “-”."]
    else:
        other = session.scalar(select(model.id).where(model.code == value))
        if other is not None and other != own_id:
            errors["code"] = [f"The code {value} is already used."]


def _name(value: str, errors: dict[str, Any]) -> None:
    if not value:
        errors["name"] = ["Required."]
    elif len(value) > 200:
        errors["name"] = ["At most 200 characters."]


# --- price lists ----------------------------------------------------------------------------


PRICE_LIST_FIELDS = (
    "code",
    "name",
    "currency",
    "customer_group_id",
    "customer_id",
    "contract_number",
    "valid_from",
    "valid_to",
    "active",
)


def price_lists(session: Session, actor: User) -> list[IntakePriceList]:
    """Every price list, by code, with its items."""
    _require(actor, READ)
    return list(
        session.scalars(
            select(IntakePriceList).options(selectinload(IntakePriceList.items)).order_by(IntakePriceList.code)
        )
    )


def get_price_list(session: Session, actor: User, price_list_id: int) -> IntakePriceList:
    """One price list; 404 when there is none."""
    _require(actor, READ)
    price_list = session.get(IntakePriceList, price_list_id)
    if price_list is None:
        raise NotFound("price list", price_list_id)
    return price_list


def _product_id(session: Session, row: Mapping[str, Any], errs: dict[str, list[str]]) -> int | None:
    sku = _text(row, "product")
    if sku:
        found = session.scalar(select(Product.id).where(Product.sku == sku))
        if found is None:
            errs["product"] = [f"Unknown product {sku}."]
        return found
    ident = _int(row.get("product_id"))
    if ident is None:
        errs["product"] = ["Required."]
        return None
    if session.get(Product, ident) is None:
        errs["product"] = [f"Unknown product {ident}."]
        return None
    return ident


def _items(session: Session, rows: Any, errors: dict[str, Any]) -> list[tuple[int, Decimal, Decimal]]:
    """Validated items (product id, min quantity, unit price); errors keyed by row number."""
    if not isinstance(rows, Sequence) or isinstance(rows, (str, bytes)):
        errors["items"] = ["Must be a list of items."]
        return []
    result: list[tuple[int, Decimal, Decimal]] = []
    row_errors: dict[int, dict[str, list[str]]] = {}
    seen: set[tuple[int, Decimal]] = set()
    for index, row in enumerate(rows):
        errs: dict[str, list[str]] = {}
        if not isinstance(row, Mapping):
            row_errors[index] = {"product": ["Must be an object."]}
            continue
        product_id = _product_id(session, row, errs)
        raw_min = row.get("min_quantity")
        min_quantity = Decimal("0") if raw_min is None or str(raw_min).strip() == "" else _decimal(raw_min)
        if min_quantity is None or min_quantity < 0 or min_quantity >= MAX_AMOUNT:
            errs["min_quantity"] = ["Must be a number, 0 or more."]
        price = _decimal(row.get("unit_price"))
        if price is None:
            errs["unit_price"] = ["Required: a number."]
        elif price <= 0 or price >= MAX_AMOUNT:
            errs["unit_price"] = ["Must be greater than 0."]
        elif price != price.quantize(Decimal("0.0001")):
            errs["unit_price"] = ["At most 4 decimal places."]
        if not errs and product_id is not None and min_quantity is not None and price is not None:
            key = (product_id, min_quantity.normalize())
            if key in seen:
                errs["min_quantity"] = ["This product already has a price from this quantity on."]
            seen.add(key)
            result.append((product_id, min_quantity, price))
        if errs:
            row_errors[index] = errs
    if row_errors:
        errors["items"] = row_errors
    return result


def _price_list_values(
    session: Session, data: Mapping[str, Any], current: IntakePriceList | None
) -> tuple[dict[str, Any], list[tuple[int, Decimal, Decimal]] | None]:
    """The validated fields (merged over ``current``'s for a change) and items (``None``: unchanged)."""
    errors: dict[str, Any] = {}
    unknown = sorted(set(data) - {*PRICE_LIST_FIELDS, "items", "id"})
    for key in unknown:
        errors[key] = ["Unknown field."]

    def given(key: str) -> bool:
        return current is None or key in data

    values: dict[str, Any] = {}
    values["code"] = _text(data, "code") if given("code") else current.code  # type: ignore[union-attr]
    values["name"] = _text(data, "name") if given("name") else current.name  # type: ignore[union-attr]
    if given("code"):
        _code(session, IntakePriceList, values["code"], current.id if current else None, errors)
    if given("name"):
        _name(values["name"], errors)
    if given("currency"):
        currency = (_text(data, "currency") or "CNY").upper()
        if not CURRENCY_RE.match(currency):
            errors["currency"] = ["Three letters, e.g. CNY."]
        values["currency"] = currency
    else:
        values["currency"] = current.currency  # type: ignore[union-attr]
    for key, model, what in (
        ("customer_group_id", IntakeCustomerGroup, "customer group"),
        ("customer_id", Customer, "customer"),
    ):
        if given(key):
            raw = data.get(key)
            ident = _int(raw)
            if raw not in (None, "") and (ident is None or session.get(model, ident) is None):
                errors[key] = [f"Unknown {what}."]
            values[key] = ident
        else:
            values[key] = getattr(current, key)
    if (values["customer_group_id"] is None) == (values["customer_id"] is None) and not (
        "customer_group_id" in errors or "customer_id" in errors
    ):
        errors["customer_group_id"] = ["Choose either a customer group or a customer (exactly one)."]
    if given("contract_number"):
        values["contract_number"] = _text(data, "contract_number")
        if len(values["contract_number"]) > 64:
            errors["contract_number"] = ["At most 64 characters."]
    for key in ("valid_from", "valid_to"):
        values[key] = _date(data.get(key), errors, key) if given(key) else getattr(current, key)
    if values["valid_from"] and values["valid_to"] and values["valid_from"] > values["valid_to"]:
        errors["valid_to"] = ["Must not be before the start of validity."]
    if given("active"):
        values["active"] = _bool(data.get("active", True)) if current is None else _bool(data["active"])
    items = _items(session, data.get("items", []), errors) if "items" in data or current is None else None
    if errors:
        raise _invalid(errors)
    return values, items


def _item_changes(price_list: IntakePriceList) -> list[str]:
    return [f"{i.product_id}@{i.min_quantity}={i.unit_price}" for i in price_list.items]


def _set_items(price_list: IntakePriceList, items: list[tuple[int, Decimal, Decimal]]) -> None:
    kept = {(i.product_id, i.min_quantity.normalize()): i for i in price_list.items}
    new: list[IntakePriceListItem] = []
    for product_id, min_quantity, price in items:
        item = kept.pop((product_id, min_quantity.normalize()), None)
        if item is None:
            item = IntakePriceListItem(product_id=product_id, min_quantity=min_quantity, unit_price=price)
        else:
            item.unit_price = price
        new.append(item)
    price_list.items = new


def create_price_list(session: Session, actor: User, data: Mapping[str, Any]) -> IntakePriceList:
    """Create a price list with its items; validated as a whole, audited, not committed."""
    _require(actor, MANAGE)
    values, items = _price_list_values(session, data, None)
    price_list = IntakePriceList(**values)
    _set_items(price_list, items or [])
    session.add(price_list)
    session.flush()
    changes = {**values, "items": _item_changes(price_list)}
    audit.record(session, actor, "intake_price_list", price_list.id, "create", changes)
    return price_list


def update_price_list(
    session: Session, actor: User, price_list: IntakePriceList, data: Mapping[str, Any]
) -> IntakePriceList:
    """Change a price list; fields left out stay, ``items`` given replace every item."""
    _require(actor, MANAGE)
    values, items = _price_list_values(session, data, price_list)
    changes = audit.diff(price_list, values)
    before = _item_changes(price_list)
    for key, value in values.items():
        setattr(price_list, key, value)
    if items is not None:
        _set_items(price_list, items)
        session.flush()
        after = _item_changes(price_list)
        if after != before:
            changes["items"] = [before, after]
    session.flush()
    if changes:
        audit.record(session, actor, "intake_price_list", price_list.id, "update", changes)
    return price_list


# --- customer groups and profiles ---------------------------------------------------------------


def customer_groups(session: Session, actor: User) -> list[IntakeCustomerGroup]:
    """Every customer group, by code."""
    _require(actor, READ)
    return list(session.scalars(select(IntakeCustomerGroup).order_by(IntakeCustomerGroup.code)))


def get_customer_group(session: Session, actor: User, group_id: int) -> IntakeCustomerGroup:
    """One customer group; 404 when there is none."""
    _require(actor, READ)
    group = session.get(IntakeCustomerGroup, group_id)
    if group is None:
        raise NotFound("customer group", group_id)
    return group


def save_customer_group(
    session: Session, actor: User, data: Mapping[str, Any], group: IntakeCustomerGroup | None = None
) -> IntakeCustomerGroup:
    """Create a customer group (``group`` None) or change one: a unique code and a name."""
    _require(actor, MANAGE)
    errors: dict[str, Any] = {}
    code, name = _text(data, "code"), _text(data, "name")
    _code(session, IntakeCustomerGroup, code, group.id if group else None, errors)
    _name(name, errors)
    if errors:
        raise _invalid(errors)
    if group is None:
        group = IntakeCustomerGroup(code=code, name=name)
        session.add(group)
        session.flush()
        audit.record(session, actor, "intake_customer_group", group.id, "create", {"code": code, "name": name})
        return group
    changes = audit.diff(group, {"code": code, "name": name})
    group.code, group.name = code, name
    session.flush()
    if changes:
        audit.record(session, actor, "intake_customer_group", group.id, "update", changes)
    return group


def profile_of(session: Session, customer_id: int) -> IntakeCustomerProfile | None:
    """The customer's intake profile, if it has one (none means the defaults)."""
    return session.get(IntakeCustomerProfile, customer_id)


def set_customer_group(session: Session, actor: User, customer_id: int, group_id: Any) -> IntakeCustomerProfile:
    """Put a customer in a group (``None`` or ``""``: in none); creates its profile when needed."""
    _require(actor, MANAGE)
    if session.get(Customer, customer_id) is None:
        raise NotFound("customer", customer_id)
    ident = _int(group_id)
    if group_id not in (None, "") and (ident is None or session.get(IntakeCustomerGroup, ident) is None):
        raise _invalid({"group_id": ["Unknown customer group."]})
    profile = session.get(IntakeCustomerProfile, customer_id)
    created = profile is None
    if profile is None:
        profile = IntakeCustomerProfile(customer_id=customer_id, blocked=False, blocked_reason="", payment_methods="")
        session.add(profile)
    before = None if created else profile.group_id
    profile.group_id = ident
    session.flush()
    if created or before != ident:
        audit.record(session, actor, "intake_customer_profile", customer_id, "update", {"group_id": [before, ident]})
    return profile
