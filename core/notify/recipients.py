"""Who a notice is for, and the addresses they are reached at.

A caller names recipients with the small dataclasses here (a user, everyone holding a
role, a department, a customer); :func:`resolve` turns them into the people the notice
is rendered for: active staff users (each once, however many ways they were named)
and active customers (whose contacts' e-mail addresses and phone numbers receive it).
A notice about an order reaches only the users whose data scope includes that order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Customer, Order, Role, User
from core.services.orders import users_who_may_see


class PermanentFailure(Exception):
    """A message no retry will deliver: a malformed address, a recipient the server refuses.

    Raised by core's e-mail transport and by plugin channels' ``deliver``; the worker
    marks the message *failed* with this error instead of trying again.
    """


@dataclass(frozen=True)
class ToUser:
    """One staff (or portal) user, by id; inactive users receive nothing."""

    user_id: int


@dataclass(frozen=True)
class ToRole:
    """Every active user holding the role ``code``, optionally only those of one branch."""

    code: str
    branch_id: int | None = None


@dataclass(frozen=True)
class ToDepartment:
    """Every active user of a department."""

    department_id: int


@dataclass(frozen=True)
class ToCustomer:
    """A customer: its contacts by e-mail or phone, and its portal's notification list."""

    customer_id: int


#: Any of the recipient kinds ``notify(to=…)`` accepts.
Recipient = ToUser | ToRole | ToDepartment | ToCustomer


@dataclass(frozen=True)
class Audience:
    """The people named by a call to ``notify``: users and customers, each once."""

    users: list[User]
    customers: list[Customer]


def as_recipients(to: Recipient | Iterable[Recipient]) -> list[Recipient]:
    """``to`` as a list of recipients; anything else is refused with a clear ``TypeError``."""
    items = [to] if isinstance(to, ToUser | ToRole | ToDepartment | ToCustomer) else list(to)
    for item in items:
        if not isinstance(item, ToUser | ToRole | ToDepartment | ToCustomer):
            raise TypeError(f"notify(to=…) takes ToUser, ToRole, ToDepartment or ToCustomer, not {item!r}")
    return items


def resolve(session: Session, to: Recipient | Iterable[Recipient], order: Order | None = None) -> Audience:
    """The active users and the active customers ``to`` names, without duplicates, in a stable order.

    A user named directly and again through a role is notified once; unknown ids
    name nobody (a deleted user is not an error for the business change that notifies),
    nor do deactivated users and customers. With ``order``, users who may not see that
    order (outside their data scope: a salesperson's "own" orders, another branch's)
    are left out, however they were named, since the notice shows the order's content.
    """
    users: dict[int, User] = {}
    customers: dict[int, Customer] = {}
    for item in as_recipients(to):
        if isinstance(item, ToCustomer):
            customer = session.get(Customer, item.customer_id)
            if customer is not None and customer.active:
                customers.setdefault(customer.id, customer)
            continue
        query = select(User).where(User.active.is_(True))
        if isinstance(item, ToUser):
            query = query.where(User.id == item.user_id)
        elif isinstance(item, ToRole):
            query = query.where(User.roles.any(Role.code == item.code))
            if item.branch_id is not None:
                query = query.where(User.branch_id == item.branch_id)
        else:
            query = query.where(User.department_id == item.department_id)
        for user in session.scalars(query.order_by(User.id)):
            users.setdefault(user.id, user)
    found = list(users.values())
    if order is not None:
        if order.id is None:
            session.flush()  # a new order: its id is what the scope is checked on
        found = users_who_may_see(session, found, order)
    return Audience(users=found, customers=list(customers.values()))


def customer_addresses(customer: Customer, kind: str) -> list[tuple[str, str, int]]:
    """``(address, contact name, contact id)`` of the customer's contacts for ``kind``.

    ``kind`` is ``email`` or ``phone``; contacts without one are skipped and an
    address shared by two contacts is used once (e-mail compared without case).
    """
    seen: set[str] = set()
    found: list[tuple[str, str, int]] = []
    for contact in customer.contacts:
        address = (contact.email if kind == "email" else contact.phone if kind == "phone" else "").strip()
        key = address.lower() if kind == "email" else address
        if address and key not in seen:
            seen.add(key)
            found.append((address, contact.name, contact.id))
    return found


def check_email(address: str) -> str:
    """The normalised form of e-mail ``address``; :class:`PermanentFailure` if it is malformed.

    Only the syntax is checked (no DNS look-up): whether the domain accepts mail is
    the SMTP server's answer to give.
    """
    try:
        return str(validate_email(address, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise PermanentFailure(f"{address!r} is not a valid e-mail address: {exc}") from None
