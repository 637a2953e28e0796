"""Orders: create, change while draft, find within the user's scope, act on them."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from marshmallow import ValidationError
from sqlalchemy import ColumnElement, Select, false, func, literal, or_, select, tuple_, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from core.clock import company_now, day_end, day_start
from core.company.service import first_company
from core.contrib import Transition
from core.db import UTCDateTime
from core.models import Company, Customer, IdempotencyKey, Order, OrderLine, Product, User
from core.plugins import Registry
from core.schemas import MAX_ID, OrderInSchema, OrderPatchSchema
from core.security.scopes import order_scope, order_scope_terms, order_visible
from core.services import Conflict, NotFound, ServiceError, audit
from core.services.numbering import next_serial
from core.services.paging import decode_cursor, encode_cursor
from core.workflow import COPY, Workflow, WorkflowError, initial_step

S = TypeVar("S", bound=Select[Any])

ORDER_SEQUENCE = "order"
MAX_LIMIT = 200

_HEADER_FIELDS = (
    "channel",
    "reference",
    "reason",
    "requested_date",
    "payment_method",
    "currency",
    "urgency",
    "contact_name",
    "contact_phone",
    "note",
)
_SHIP_TO = {
    "contact": "ship_to_contact",
    "phone": "ship_to_phone",
    "province": "ship_to_province",
    "city": "ship_to_city",
    "address": "ship_to_address",
}


def invalid(details: Any, message: str = "the order is not valid") -> ServiceError:
    """A 422 error carrying per-field messages."""
    return ServiceError("invalid", message, details, status=422)


#: One schema for every new order: building it (and its nested line and ship-to schemas)
#: cost twice what loading an order does. Loading keeps no state on the schema, so the
#: threads of a server share it, as flask-smorest shares the schemas of its endpoints.
_ORDER_IN = OrderInSchema()


def load_order_input(data: Any) -> dict[str, Any]:
    """Validate a new order's JSON-like input; raise a field-by-field error."""
    try:
        return _ORDER_IN.load(data)
    except ValidationError as exc:
        raise invalid(exc.messages) from None


def _resolve(session: Session, model: type[Customer] | type[Product], key: str, ref: int | str) -> Any:
    if isinstance(ref, int):
        return session.get(model, ref)
    return session.scalar(select(model).where(getattr(model, key) == ref))


def _products(session: Session, refs: list[int | str]) -> dict[int | str, Product]:
    """The products named by ``refs`` (ids or SKUs), keyed by the reference, in one query each kind."""
    ids = {ref for ref in refs if isinstance(ref, int)}
    skus = {ref for ref in refs if isinstance(ref, str)}
    found: dict[int | str, Product] = {}
    if ids:
        found.update({product.id: product for product in session.scalars(select(Product).where(Product.id.in_(ids)))})
    if skus:
        found.update(
            {product.sku: product for product in session.scalars(select(Product).where(Product.sku.in_(skus)))}
        )
    return found


def resolve_customer(session: Session, ref: int | str) -> Customer:
    """The active customer with code or id ``ref``; a field error otherwise."""
    customer = _resolve(session, Customer, "code", ref)
    if customer is None:
        raise invalid({"customer": [f"Unknown customer {ref!r}."]})
    if not customer.active:
        raise invalid({"customer": [f"Customer {customer.code} is deactivated."]})
    return customer


def build_lines(session: Session, lines: list[dict[str, Any]]) -> list[OrderLine]:
    """Order lines from loaded input, priced from the catalogue; every bad line refused at once.

    Public so that importers can check an order exactly as :func:`create_order` would,
    without writing it.
    """
    errors: dict[int, dict[str, list[str]]] = {}
    built: list[OrderLine] = []
    if not lines:
        raise invalid({"lines": ["An order needs at least one line."]})
    products = _products(session, [line["product"] for line in lines])
    for n, line in enumerate(lines):
        product = products.get(line["product"])
        if product is None:
            errors[n] = {"product": [f"Unknown product {line['product']!r}."]}
            continue
        if not product.active:
            errors[n] = {"product": [f"Product {product.sku} is deactivated."]}
            continue
        built.append(
            OrderLine(
                position=n + 1,
                product=product,
                description=line.get("description") or product.spec,
                quantity=line["quantity"],
                unit=product.unit,
                unit_price=line["unit_price"] if line.get("unit_price") is not None else product.list_price,
                discount=line.get("discount") or Decimal("0"),
                tax_rate=product.tax_rate,
            )
        )
    if errors:
        raise invalid({"lines": errors})
    return built


def _apply_header(order: Order, data: dict[str, Any]) -> None:
    for name in _HEADER_FIELDS:
        if name in data:
            setattr(order, name, data[name])
    if "external_reference" in data:
        order.external_reference = (data["external_reference"] or "").strip() or None
    for key, column in _SHIP_TO.items():
        if key in data.get("ship_to", {}):
            setattr(order, column, data["ship_to"][key])


#: Amounts are ``Numeric(16, 2)``: at most 14 digits before the decimal point.
MAX_AMOUNT = Decimal(10) ** 14


def recompute_within_limits(order: Order) -> None:
    """Recompute totals; refuse an order whose amounts would not fit their columns."""
    order.recompute_totals()
    too_large = [n for n, line in enumerate(order.lines) if line.amount >= MAX_AMOUNT]
    if too_large or order.total >= MAX_AMOUNT:
        raise invalid(
            {"lines": {n: {"quantity": ["Quantity × unit price is too large."]} for n in too_large}}
            if too_large
            else {"lines": ["The order total is too large."]}
        )


def default_company(session: Session) -> Company:
    """The company this installation runs for (created by ``ordo init``), read once per transaction."""
    company = first_company(session)
    if company is None:
        raise ServiceError("not_initialised", "no company exists yet; run `ordo init` first", status=500)
    return company


def order_with_external_reference(
    session: Session, company_id: int, channel: str, customer_id: int, reference: str | None
) -> Order | None:
    """The order a sender already gave ``reference`` on ``channel`` for the customer, if any."""
    reference = (reference or "").strip()
    if not reference:
        return None
    return session.scalar(
        select(Order).where(
            Order.company_id == company_id,
            Order.channel == channel,
            Order.customer_id == customer_id,
            Order.external_reference == reference,
        )
    )


def duplicate_external_reference(order: Order) -> Conflict:
    """The 409 answering a second order with an external reference already used."""
    return Conflict(
        "duplicate_external_reference",
        f"order {order.number} already has external reference {order.external_reference!r} "
        f"from channel {order.channel!r} for this customer; it is a duplicate, not a new order",
        {"order_id": order.id, "number": order.number, "external_reference": order.external_reference},
    )


def _check_external_reference(session: Session, order: Order) -> None:
    if order.external_reference is None:
        return
    # ``order.customer`` rather than ``customer_id``: a new order's id column, or a
    # changed customer's, is only filled in by the flush.
    with session.no_autoflush:
        existing = order_with_external_reference(
            session, order.company_id, order.channel, order.customer.id, order.external_reference
        )
    if existing is not None and existing is not order:
        raise duplicate_external_reference(existing)


def _flush_order(session: Session, order: Order, *, new: bool = False) -> None:
    """Flush ``order``; two requests racing with one external reference lose as a 409.

    ``begin_nested`` flushes whatever is pending *before* its SAVEPOINT, so a new order
    is added inside it: a clash then undoes only the savepoint. A changed order's UPDATE
    is flushed before the savepoint; a clash there loses the transaction, which is
    rolled back before the 409 is raised (the request fails as a whole anyway). Without
    an external reference there is nothing to race for: a new order is flushed without
    the savepoint (two statements fewer per order entered).
    """
    if new and order.external_reference is None:
        session.add(order)
        session.flush()
        return
    key = (order.company_id, order.channel, order.customer.id, order.external_reference)
    try:
        with session.begin_nested():
            if new:
                session.add(order)
            session.flush()
    except IntegrityError:
        if not session.is_active:
            session.rollback()
        # No autoflush: a pending order would hit the constraint again.
        with session.no_autoflush:
            existing = order_with_external_reference(session, *key)
        if existing is None or existing is order:
            raise
        raise duplicate_external_reference(existing) from None


def create_order(session: Session, actor: User, data: dict[str, Any]) -> Order:
    """Create a draft order from validated input (see :func:`load_order_input`)."""
    if not actor.can("orders.create"):
        raise ServiceError("forbidden", "you may not create orders", status=403)
    customer = resolve_customer(session, data["customer"])
    portal = actor.customer_id is not None
    if portal and customer.id != actor.customer_id:
        raise invalid({"customer": [f"Unknown customer {data['customer']!r}."]})
    if portal and data["channel"] != "portal":
        raise invalid({"channel": ["A customer's own orders arrive by the portal channel."]})
    company = default_company(session)
    lines = build_lines(session, data["lines"])
    year = company_now().year  # the company's year, not UTC's
    serial = next_serial(session, company.id, ORDER_SEQUENCE, year)
    order = Order(
        company_id=company.id,
        number=f"{company.order_prefix}{year}-{serial:06d}",
        customer=customer,
        step=initial_step(),
        status="draft",
        # The customer's salesperson and branch own the order, whoever entered it (a
        # clerk enters orders for the salespeople, IN-2); without them, the person entering it.
        owner_id=customer.owner_id or (None if portal else actor.id),
        branch_id=customer.branch_id or actor.branch_id,
        department_id=None if portal else actor.department_id,
        created_by_id=actor.id,
    )
    _apply_header(order, data)
    _check_external_reference(session, order)
    order.lines = lines
    recompute_within_limits(order)
    _flush_order(session, order, new=True)
    audit.record(session, actor, "order", order.id, "create", {"number": order.number, "total": order.total})
    return order


def copy_order(session: Session, registry: Registry, actor: User, source: Order) -> Order:
    """Create a new draft from ``source``: same customer, header, ship-to and lines.

    The client's external and contract references are not copied (they name the source),
    nor anything a plugin keeps about the source (approvals, credit exceptions). Every
    guard is asked first (``action="copy"``), so a gate such as billing's credit hold
    cannot be bypassed by copying an order; a refusal raises 409 with every reason.
    """
    if not actor.can("orders.create"):
        raise ServiceError("forbidden", "you may not create orders", status=403)
    blocked = Workflow(registry, session).path_blockers(source, COPY, actor)
    if blocked:
        raise ServiceError("transition_refused", "copying this order was refused", {"reasons": blocked}, status=409)
    data: dict[str, Any] = {name: getattr(source, name) for name in _HEADER_FIELDS if name != "reference"}
    data["customer"] = source.customer_id
    if actor.customer_id is not None:
        data["channel"] = "portal"  # a customer's own copy arrives by the portal
    data["requested_date"] = None
    data["ship_to"] = {key: getattr(source, column) for key, column in _SHIP_TO.items()}
    data["lines"] = [
        {
            "product": line.product_id,
            "description": line.description,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "discount": line.discount,
        }
        for line in source.lines
    ]
    order = create_order(session, actor, data)
    audit.record(session, actor, "order", order.id, "copy", {"source": source.number})
    return order


def update_order(session: Session, actor: User, order: Order, data: Any) -> Order:
    """Change a draft order; the client's ``version`` must be the current one."""
    try:
        values = OrderPatchSchema().load_patch(data)
    except ValidationError as exc:
        raise invalid(exc.messages) from None
    if not actor.can("orders.edit"):
        raise ServiceError("forbidden", "you may not edit orders", status=403)
    if values["version"] != order.version:
        raise Conflict(
            "stale_version",
            f"the order was changed meanwhile (you have version {values['version']}, "
            f"it is at {order.version}); reload and retry",
        )
    if order.status != "draft":
        raise Conflict(
            "not_editable",
            f"order {order.number} is {order.status}; only drafts are edited in place, "
            "later changes go through a change request",
        )
    revise_order(session, actor, order, values)
    return order


def revise_order(
    session: Session, actor: User, order: Order, values: dict[str, Any], *, action: str = "update", reason: str = ""
) -> dict[str, Any]:
    """Apply loaded order ``values`` (as :class:`OrderPatchSchema` gives them) and audit them.

    Header, ship-to and lines change together, totals are recomputed, the version moves
    and one audit entry records every difference; returns those differences. It checks
    neither the caller's permission, the version nor the order's status: callers do
    (``update_order`` for drafts; review's approved change requests for later orders,
    with ``action="revise"``).
    """
    changes = audit.diff(order, {k: values[k] for k in (*_HEADER_FIELDS, "external_reference") if k in values})
    changes |= audit.diff(
        order, {column: values["ship_to"][key] for key, column in _SHIP_TO.items() if key in values.get("ship_to", {})}
    )
    if "customer" in values:
        customer = resolve_customer(session, values["customer"])
        if actor.customer_id is not None and customer.id != actor.customer_id:
            raise invalid({"customer": [f"Unknown customer {values['customer']!r}."]})
        if customer.id != order.customer_id:
            changes["customer"] = [order.customer.code, customer.code]
            order.customer = customer
    _apply_header(order, values)
    if "lines" in values:
        before = _line_record(order.lines)
        order.lines = build_lines(session, values["lines"])
        after = _line_record(order.lines)
        if before != after:
            changes["lines"] = [before, after]
    recompute_within_limits(order)
    _check_external_reference(session, order)
    # Touch the row whatever changed, so the version moves even when only lines changed:
    # a client holding the old version must be refused, never silently overwritten.
    order.updated_at = dt.datetime.now(dt.UTC)
    _flush_order(session, order)
    audit.record(session, actor, "order", order.id, action, changes, reason=reason)
    return changes


def _line_record(lines: list[OrderLine]) -> list[dict[str, str]]:
    """What the audit log keeps of an order's lines: enough to see what was changed."""
    return [
        {
            "product": line.product.sku,
            "description": line.description,
            "quantity": str(line.quantity),
            "unit_price": str(line.unit_price),
            "discount": str(line.discount),
        }
        for line in lines
    ]


def visible_orders(actor: User | None) -> Select[tuple[Order]]:
    """A SELECT of the orders ``actor`` may see (the single scope rule)."""
    return select(Order).where(order_scope(actor))


def may_see_order(session: Session, actor: User | None, order: Order) -> bool:
    """Whether ``order`` lies in ``actor``'s data scope (panels and hooks ask before showing)."""
    return session.scalar(select(Order.id).where(Order.id == order.id, order_scope(actor))) is not None


def users_who_may_see(session: Session, users: list[User], order: Order) -> list[User]:
    """Those of ``users`` whose data scope includes ``order``, in their order, in one query.

    What :func:`may_see_order` answers for each (a notice about an order reaches only
    them): one ``EXISTS`` per user in a single SELECT, where each user was a query.
    """
    visible: list[User] = []
    for start in range(0, len(users), 100):  # well within any database's column limit
        chunk = users[start : start + 100]
        row = session.execute(select(*(order_visible(order.id, user) for user in chunk))).one()
        visible += [user for user, seen in zip(chunk, row, strict=True) if seen]
    return visible


def get_order(session: Session, actor: User | None, order_id: int, *, for_update: bool = False) -> Order:
    """The order ``order_id`` if ``actor`` may see it; 404 otherwise, whether or not it exists.

    Its lines come along with their products (every screen, answer and guard of one
    order reads them): two queries, where each line's product was read by itself. The
    lines are a separate SELECT, so ``for_update`` locks the order row alone.
    """
    if not 0 < order_id <= MAX_ID:
        raise NotFound("order", order_id)
    stmt = (
        visible_orders(actor)
        .where(Order.id == order_id)
        .options(selectinload(Order.lines).joinedload(OrderLine.product))
    )
    if for_update:
        stmt = stmt.with_for_update()
    order = session.scalar(stmt)
    if order is None:
        raise NotFound("order", order_id)
    return order


@dataclass
class OrderFilters:
    """What a list of orders is narrowed by."""

    status: str | None = None
    step: str | None = None
    customer: int | str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    text: str | None = None


ORDER_CURSOR = "o"
#: The order of every order list unless the user sorts: newest first; the id breaks ties.
NEWEST_FIRST = (Order.created_at.desc(), Order.id.desc())
#: Lists count the matching orders up to this many and then show "10,000+": an exact
#: count reads every matching row, a million for the whole company.
COUNT_CAP = 10_000


def _order_cursor(order: Order) -> str:
    """The cursor pointing after ``order`` in a newest-first list: its creation time and id."""
    return encode_cursor(ORDER_CURSOR, f"{order.created_at.isoformat()}|{order.id}")


def _after_cursor(session: Session, actor: User | None, cursor: str) -> ColumnElement[bool]:
    """The WHERE clause selecting the orders after ``cursor`` in a newest-first list.

    A cursor holds the last order's creation time and id. An older cursor of a bare id
    (lists used to be sorted by id) is still honoured: that order's creation time is read,
    within the user's scope, so a cursor never reveals anything about another order.
    """
    value = decode_cursor(ORDER_CURSOR, cursor)
    created_text, sep, id_text = value.rpartition("|")
    created: dt.datetime | None = None
    if not sep and value.isdigit() and 0 < int(value) <= MAX_ID:
        order_id = int(value)
        created = session.scalar(select(Order.created_at).where(Order.id == order_id, order_scope(actor)))
    elif sep and id_text.isdigit() and 0 < int(id_text) <= MAX_ID:
        order_id = int(id_text)
        try:
            created = dt.datetime.fromisoformat(created_text)
        except ValueError:
            created = None
    if created is None or created.tzinfo is None:
        raise invalid({"cursor": ["Not a valid cursor."]}, "bad cursor")
    return tuple_(Order.created_at, Order.id) < tuple_(literal(created, UTCDateTime()), literal(order_id))


def _narrow(stmt: S, filters: OrderFilters) -> S:
    """``stmt`` (a SELECT from ``order``) narrowed by ``filters``."""
    if filters.status:
        stmt = stmt.where(Order.status == filters.status)
    if filters.step:
        stmt = stmt.where(Order.step == filters.step)
    if filters.customer is not None:
        if isinstance(filters.customer, int) and not 0 < filters.customer <= MAX_ID:
            stmt = stmt.where(false())
        elif isinstance(filters.customer, int):
            stmt = stmt.where(Order.customer_id == filters.customer)
        else:
            stmt = stmt.join(Customer, Order.customer_id == Customer.id).where(Customer.code == filters.customer)
    if filters.date_from:
        stmt = stmt.where(Order.created_at >= day_start(filters.date_from))
    if filters.date_to and (end := day_end(filters.date_to)) is not None:
        stmt = stmt.where(Order.created_at < end)
    if filters.text:
        like = f"%{filters.text.strip()}%"
        matching_customers = select(Customer.id).where(or_(Customer.name.ilike(like), Customer.code.ilike(like)))
        stmt = stmt.where(
            or_(Order.number.ilike(like), Order.reference.ilike(like), Order.customer_id.in_(matching_customers))
        )
    return stmt


def filtered_orders(actor: User | None, filters: OrderFilters) -> Select[tuple[Order]]:
    """The scoped SELECT narrowed by ``filters`` (no ordering or paging)."""
    return _narrow(visible_orders(actor), filters)


def order_page(
    session: Session,
    actor: User | None,
    filters: OrderFilters,
    ordering: Sequence[Any] = NEWEST_FIRST,
    *,
    offset: int = 0,
    limit: int = 50,
    after: ColumnElement[bool] | None = None,
    options: Sequence[Any] = (),
) -> list[Order]:
    """One page of the orders ``actor`` may see under ``filters``, sorted by ``ordering``.

    ``offset`` rows are skipped (numbered pages) or ``after`` selects the rows past a
    cursor (keyset pages); ``options`` are loader options for the orders returned.

    When the user's scope has several terms (:func:`~core.security.scopes.order_scope_terms`:
    own orders are those owned *or* entered; each role adds its own), the first
    ``offset + limit`` ids of each term are read through that term's index, in
    ``ordering``, and only their union is sorted: the page of a union lies within the
    union of the parts' pages. One ``OR`` would make the database collect and sort every
    order the user may see, on every page.
    """
    terms = order_scope_terms(actor)
    if not terms:
        return []

    def part(stmt: S, term: ColumnElement[bool]) -> S:
        stmt = _narrow(stmt.where(term), filters)
        return stmt.where(after) if after is not None else stmt

    if len(terms) == 1:
        stmt = part(select(Order), terms[0]).order_by(*ordering).offset(offset).limit(limit)
    else:
        reach = offset + limit
        tops = [part(select(Order.id), term).order_by(*ordering).limit(reach).subquery() for term in terms]
        ids = union_all(*(select(top.c.id) for top in tops))
        stmt = select(Order).where(Order.id.in_(ids)).order_by(*ordering).offset(offset).limit(limit)
    return list(session.scalars(stmt.options(*options)))


def list_orders(
    session: Session, actor: User | None, filters: OrderFilters, limit: int = 50, cursor: str | None = None
) -> tuple[list[Order], str | None]:
    """One page of the orders ``actor`` may see, newest first, and the next page's cursor.

    Keyset paging on (creation time, id): every page reads only its own rows, through the
    index of the user's scope, however deep in the list it is.
    """
    limit = max(1, min(limit, MAX_LIMIT))
    after = _after_cursor(session, actor, cursor) if cursor else None
    rows = order_page(
        session, actor, filters, NEWEST_FIRST, limit=limit + 1, after=after, options=(selectinload(Order.customer),)
    )
    next_cursor = _order_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def count_orders(session: Session, actor: User | None, filters: OrderFilters, *, cap: int | None = None) -> int:
    """How many orders ``actor`` may see under ``filters``; with ``cap``, at most ``cap + 1``.

    A result above ``cap`` means "more than ``cap``": counting stops there, so the count
    reads at most ``cap + 1`` index entries whatever the size of the scope.
    """
    sub = filtered_orders(actor, filters).with_only_columns(Order.id)
    if cap is not None:
        sub = sub.limit(cap + 1)
    return session.scalar(select(func.count()).select_from(sub.subquery())) or 0


def take_action(
    session: Session,
    registry: Registry,
    actor: User,
    order: Order,
    name: str,
    reason: str = "",
    version: int | None = None,
) -> Transition:
    """Take workflow action ``name`` on ``order``; a refusal raises with every reason."""
    if version is not None and version != order.version:
        raise Conflict(
            "stale_version", f"the order was changed meanwhile (you have version {version}, it is at {order.version})"
        )
    try:
        transition = Workflow(registry, session).take(order, name, actor, reason)
    except WorkflowError as exc:
        status = {"unknown_action": 404, "forbidden": 403, "reason_required": 422, "unknown_step": 409}.get(
            exc.code, 409
        )
        raise ServiceError(
            exc.code, exc.message, {"reasons": exc.reasons} if exc.reasons else {}, status=status
        ) from None
    return transition


def request_hash(body: Any) -> str:
    """A digest of a request body that ignores key order and white space."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def create_order_once(session: Session, actor: User, body: Any, key: str | None) -> tuple[Order, bool]:
    """Create an order, honouring an ``Idempotency-Key``; returns (order, replayed).

    The same key with the same body returns the first order; with a different body it
    is a conflict. Keys are scoped to the caller.
    """
    data = load_order_input(body)
    if not key:
        return create_order(session, actor, data), False
    if len(key) > 200:
        raise invalid({"Idempotency-Key": ["At most 200 characters."]}, "bad Idempotency-Key")
    digest = request_hash(body)
    existing = _existing_key(session, actor, key)
    if existing is None:
        try:
            with session.begin_nested():
                row = IdempotencyKey(user_id=actor.id, key=key, request_hash=digest)
                session.add(row)
                session.flush()
        except IntegrityError:
            existing = _existing_key(session, actor, key)
        else:
            order = create_order(session, actor, data)
            row.order_id = order.id
            session.flush()
            return order, False
    assert existing is not None
    if existing.request_hash != digest:
        raise Conflict("idempotency_key_reused", "this Idempotency-Key was already used with a different request body")
    if existing.order_id is None:
        raise Conflict("idempotency_key_in_flight", "a request with this Idempotency-Key is still being processed")
    return get_order(session, actor, existing.order_id), True


def _existing_key(session: Session, actor: User, key: str) -> IdempotencyKey | None:
    return session.scalar(select(IdempotencyKey).where(IdempotencyKey.user_id == actor.id, IdempotencyKey.key == key))
