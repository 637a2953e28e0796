"""Order revisions: kept states of an order and the differences between two of them (CORE-5, RV-8).

Once an order is confirmed it changes only through an approved change request. Each
change keeps the order's state as a :class:`ReviewOrderRevision`: revision 1 is the
order as first confirmed (or as it stood before its first change), revision 2, 3 … the
state each approved change produced. Earlier revisions are never changed, so anyone
may see what the order looked like at any revision and what a change did
(:func:`diff`). A snapshot holds JSON-safe strings only, so it reads the same whatever
the database.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Order, User
from plugins.review.models import ReviewOrderRevision

#: The header fields a snapshot keeps, in the order the diff lists them.
HEADER_FIELDS = (
    "customer",
    "reference",
    "requested_date",
    "payment_method",
    "currency",
    "urgency",
    "contact_name",
    "contact_phone",
    "ship_to_contact",
    "ship_to_phone",
    "ship_to_province",
    "ship_to_city",
    "ship_to_address",
    "note",
    "untaxed_amount",
    "tax_amount",
    "total",
)
#: The fields a snapshot keeps of each line, in the order the diff lists them.
LINE_FIELDS = (
    "position",
    "product",
    "product_name",
    "description",
    "quantity",
    "unit",
    "unit_price",
    "discount",
    "tax_rate",
    "amount",
)


class Difference(NamedTuple):
    """One difference between two snapshots.

    ``what`` is a header field name (``requested_date``), ``lines.<id>.<field>`` for a
    changed line field, or ``lines.<id>`` for a line added (``before`` empty) or removed
    (``after`` empty), its value then being a one-line summary of the line.
    """

    what: str
    before: str
    after: str


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        # Without trailing zeros: a value read back from the database reads the same.
        return format(value.normalize(), "f") if value.is_finite() else str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def snapshot(order: Order) -> dict[str, Any]:
    """The order's header, totals and lines as JSON-safe strings (lines keyed by their ids)."""
    header = {name: _text(getattr(order, name)) for name in HEADER_FIELDS if name != "customer"}
    header["customer"] = f"{order.customer.code} {order.customer.name}"
    return {
        "number": order.number,
        "status": order.status,
        "step": order.step,
        "version": order.version,
        "header": header,
        "lines": [
            {
                "id": line.id,
                "position": _text(line.position),
                "product": line.product.sku,
                "product_name": line.product.name,
                "description": line.description,
                "quantity": _text(line.quantity),
                "unit": line.unit,
                "unit_price": _text(line.unit_price),
                "discount": _text(line.discount),
                "tax_rate": _text(line.tax_rate),
                "amount": _text(line.amount),
            }
            for line in order.lines
        ],
    }


def _plain(text: str) -> str:
    """A number without trailing zeros (``2.000`` and ``2`` are the same quantity)."""
    try:
        number = Decimal(text)
    except (ArithmeticError, ValueError):
        return text
    if not number.is_finite():
        return text
    return format(number.normalize(), "f")


def _same(a: str, b: str) -> bool:
    return a == b or _plain(a) == _plain(b)


def line_summary(line: dict[str, Any]) -> str:
    """A line in one phrase: ``P-100 Gear motor × 2 台 @ 1150``."""
    return (
        f"{line.get('product', '')} {line.get('product_name', '')} × {_plain(str(line.get('quantity', '')))} "
        f"{line.get('unit', '')} @ {_plain(str(line.get('unit_price', '')))}"
    ).strip()


def diff(a: dict[str, Any], b: dict[str, Any]) -> list[Difference]:
    """What changed from snapshot ``a`` to snapshot ``b``: header fields, then lines by id."""
    out: list[Difference] = []
    header_a, header_b = a.get("header", {}), b.get("header", {})
    for name in HEADER_FIELDS:
        before, after = str(header_a.get(name, "")), str(header_b.get(name, ""))
        if not _same(before, after):
            out.append(Difference(name, before, after))
    lines_a = {int(line["id"]): line for line in a.get("lines", [])}
    lines_b = {int(line["id"]): line for line in b.get("lines", [])}
    for line_id in sorted(lines_a.keys() | lines_b.keys()):
        old, new = lines_a.get(line_id), lines_b.get(line_id)
        if old is None and new is not None:
            out.append(Difference(f"lines.{line_id}", "", line_summary(new)))
        elif new is None and old is not None:
            out.append(Difference(f"lines.{line_id}", line_summary(old), ""))
        elif old is not None and new is not None:
            for name in LINE_FIELDS:
                before, after = str(old.get(name, "")), str(new.get(name, ""))
                if not _same(before, after):
                    out.append(Difference(f"lines.{line_id}.{name}", before, after))
    return out


def revisions_of(session: Session, order_id: int) -> list[ReviewOrderRevision]:
    """The order's kept revisions, oldest first."""
    return list(
        session.scalars(
            select(ReviewOrderRevision)
            .where(ReviewOrderRevision.order_id == order_id)
            .order_by(ReviewOrderRevision.number)
        )
    )


def keep(session: Session, order: Order, note: str, user: User | None) -> ReviewOrderRevision:
    """Keep the order's current state as its next revision (1, 2, …), in the caller's transaction."""
    session.flush()  # amounts recomputed and the version moved before they are kept
    latest = session.scalar(
        select(func.max(ReviewOrderRevision.number)).where(ReviewOrderRevision.order_id == order.id)
    )
    revision = ReviewOrderRevision(
        order_id=order.id,
        number=(latest or 0) + 1,
        snapshot=snapshot(order),
        note=note[:200],
        created_by_id=user.id if user is not None else None,
    )
    session.add(revision)
    session.flush()
    return revision
