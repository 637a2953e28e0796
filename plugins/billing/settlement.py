"""The settlement check and step (BL-2), and write-offs with approval.

Why: before an order closes the company checks that its settlement documents agree —
a contract or the customer's reference on file, delivery notes signed and the acceptance
report accepted (logistics answers the hook ``ordo_billing_settlement_problems``), the
invoiced amount equal to the delivered amount — and that every invoice is paid, or the
rest written off with approval (BL-2, 000 §八.1).

- :func:`settlement_problems` lists what is missing, as sentences (the panel shows them,
  core's ``complete`` is refused with them through :func:`completion_blockers`).
- :func:`advance` moves an order at ``billing.settlement`` to *completed* by itself
  (``settled``, or ``written_off`` when an approved write-off closed the rest); it is
  called when the order enters the step and after every allocation (:func:`on_paid`).
- Write-offs (坏账核销): finance requests one for at most the invoice's open amount with a
  reason (:func:`request_write_off`); another person holding the approval permission
  approves — the amount is matched to the invoice through :func:`plugins.billing.ledger.allocate`
  — or refuses it (:func:`decide_write_off`); the requester is told either way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import company_now
from core.contrib import NotificationTemplate
from core.db import utcnow
from core.labels import N_
from core.models import Order, OrderAttachment, Role, RolePermission, StepSetting, User
from core.models.order import to_cents
from core.notify import notify
from core.notify.recipients import ToRole, ToUser
from core.schemas import MAX_ID
from core.services import NotFound, audit
from core.settings import session_registry
from core.workflow import Workflow
from plugins.billing import flow, ledger, scope
from plugins.billing.errors import BillingError
from plugins.billing.models import BillingInvoice, BillingInvoiceLine, BillingWriteOff

ZERO = Decimal("0")
CENT = Decimal("0.01")

# Settlement problems (BL-2).
NO_CONTRACT = N_("Neither a contract nor the customer's reference is on file.")
AMOUNT_DIFFERS = N_("Invoiced %(invoiced)s but delivered %(delivered)s: a difference of %(difference)s.")
LINE_DIFFERS = N_("Line %(position)s (%(product)s): invoiced %(invoiced)s, delivered %(delivered)s.")
DRAFT_OPEN = N_("A draft invoice (#%(id)s) is not issued yet.")
UNPAID = N_("Invoice %(number)s still has %(amount)s open.")

# Write-off refusals.
NO_REQUEST_PERMISSION = N_("You may not request write-offs.")
NO_APPROVE_PERMISSION = N_("You may not decide on write-offs.")
NOT_AN_OPEN_INVOICE = N_("Only an issued invoice with an open amount can be written off.")
BAD_AMOUNT = N_("The amount must be a positive number of yuan with at most two decimals.")
ABOVE_OPEN = N_("%(amount)s is more than the %(open)s still open on invoice %(number)s (less requests pending).")
REASON_NEEDED = N_("Give the reason for the write-off.")
REASON_TOO_LONG = N_("The reason may have at most 1000 characters.")
ALREADY_DECIDED = N_("This write-off was already decided.")
SAME_PERSON = N_("The person who requested a write-off may not decide on it.")
NOTE_NEEDED = N_("Say why the write-off is refused.")

WRITE_OFF_REQUESTED = NotificationTemplate(
    "billing.write_off_requested",
    label=N_("Write-off requested (to the approvers)"),
    subject={
        "zh_CN": "坏账核销申请：发票 {{ invoice_number }}，金额 {{ amount }}",
        "en": "Write-off requested: invoice {{ invoice_number }}, {{ amount }}",
    },
    body={
        "zh_CN": "{{ requester }} 申请核销发票 {{ invoice_number }}（{{ customer }}）的 {{ amount }} 元。\n"
        "原因：{{ reason }}\n请审批。\n",
        "en": "{{ requester }} asks to write off {{ amount }} of invoice {{ invoice_number }} ({{ customer }}).\n"
        "Reason: {{ reason }}\nPlease approve or refuse it.\n",
    },
    plugin="billing",
)
WRITE_OFF_DECIDED = NotificationTemplate(
    "billing.write_off_decided",
    label=N_("Write-off approved or refused (to the requester)"),
    subject={
        "zh_CN": "坏账核销{{ '已批准' if approved else '被拒绝' }}：发票 {{ invoice_number }}",
        "en": "Write-off {{ 'approved' if approved else 'refused' }}: invoice {{ invoice_number }}",
    },
    body={
        "zh_CN": "发票 {{ invoice_number }} 的 {{ amount }} 元核销申请已由 {{ decider }}"
        "{{ '批准' if approved else '拒绝' }}。{% if note %}\n说明：{{ note }}{% endif %}\n",
        "en": "{{ decider }} {{ 'approved' if approved else 'refused' }} writing off {{ amount }} of invoice "
        "{{ invoice_number }}.{% if note %}\nNote: {{ note }}{% endif %}\n",
    },
    plugin="billing",
)

#: Notification templates of this module (collected by the plugin manifest).
NOTIFICATIONS: tuple[NotificationTemplate, ...] = (WRITE_OFF_REQUESTED, WRITE_OFF_DECIDED)


@dataclass(frozen=True)
class Problem:
    """One settlement problem: a catalogue msgid and its values (another plugin's text as is)."""

    msgid: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The sentence in English (guards, the API)."""
        return self.msgid % self.params if self.params else self.msgid

    def localized(self) -> str:
        """The sentence in the reader's language (needs a request context)."""
        from flask_babel import gettext

        return gettext(self.msgid, **self.params) if self.params else gettext(self.msgid)


@dataclass(frozen=True)
class SettlementCheck:
    """The figures of an order's settlement check and the problems found."""

    delivered: Decimal
    invoiced: Decimal
    open_amount: Decimal
    written_off: Decimal
    problems: list[Problem]

    @property
    def texts(self) -> list[str]:
        """The problems as English sentences."""
        return [p.text for p in self.problems]


def delivered_amount(session: Session, order: Order) -> Decimal:
    """The value of what was delivered, VAT included, rounded per line as core's order totals are."""
    from plugins.billing.invoices import delivered_quantities

    delivered = delivered_quantities(session, order)
    total = ZERO
    for line in order.lines:
        quantity = Decimal(delivered.get(line.id, ZERO))
        if not quantity:
            continue
        amount = to_cents(quantity * line.unit_price * (Decimal("100") - (line.discount or ZERO)) / 100)
        total += amount + to_cents(amount * (line.tax_rate or ZERO) / 100)
    return to_cents(total)


def _invoiced_quantities(session: Session, order_id: int) -> dict[int, Decimal]:
    """Net issued quantity per order line (correction credit notes negative); prepayments and returns left out."""
    rows = session.execute(
        select(BillingInvoiceLine.order_line_id, func.sum(BillingInvoiceLine.quantity))
        .join(BillingInvoice, BillingInvoice.id == BillingInvoiceLine.invoice_id)
        .where(
            BillingInvoice.order_id == order_id,
            BillingInvoice.status == "issued",
            BillingInvoice.basis.not_in(("prepayment", "return")),
            BillingInvoiceLine.order_line_id.is_not(None),
        )
        .group_by(BillingInvoiceLine.order_line_id)
    ).tuples()
    return {line_id: Decimal(quantity or 0) for line_id, quantity in rows if line_id is not None}


def _rounding_only(session: Session, order: Order, difference: Decimal) -> bool:
    """Whether ``difference`` is only the cents of invoicing a line in parts.

    Each invoice rounds its lines' VAT to the cent, so a line invoiced in parts may differ
    from the delivered value by up to a cent per invoice line; when every line's invoiced
    quantity equals its delivered quantity, such a difference is no discrepancy.
    """
    from plugins.billing.invoices import delivered_quantities

    quantities = delivered_quantities(session, order)
    billed = _invoiced_quantities(session, order.id)
    if any(Decimal(quantities.get(line.id, ZERO)) != billed.get(line.id, ZERO) for line in order.lines):
        return False
    parts = session.scalar(
        select(func.count(BillingInvoiceLine.id))
        .join(BillingInvoice, BillingInvoice.id == BillingInvoiceLine.invoice_id)
        .where(BillingInvoice.order_id == order.id, BillingInvoice.status == "issued")
    )
    return abs(difference) <= CENT * Decimal(parts or 0)


def _has_contract(session: Session, order: Order) -> bool:
    if (order.reference or "").strip():
        return True
    return (
        session.scalar(
            select(OrderAttachment.id).where(
                OrderAttachment.order_id == order.id,
                OrderAttachment.kind == "contract",
                OrderAttachment.removed_at.is_(None),
            )
        )
        is not None
    )


def check(session: Session, order: Order) -> SettlementCheck:
    """The order's settlement check: documents, invoiced against delivered, what is still open."""
    from plugins.billing.invoices import delivered_quantities

    problems: list[Problem] = []
    if not _has_contract(session, order):
        problems.append(Problem(NO_CONTRACT))
    registry = session_registry(session)
    for answer in registry.hook.ordo_billing_settlement_problems(order=order, session=session):
        problems.extend(Problem(str(text)) for text in answer or ())
    delivered = delivered_amount(session, order)
    # Credit notes for returned goods are left out: those goods were delivered (and shipped
    # quantities do not go down on a return), so the documents still agree.
    returned = session.scalar(
        select(func.coalesce(func.sum(BillingInvoice.total), 0)).where(
            BillingInvoice.order_id == order.id,
            BillingInvoice.kind == "credit_note",
            BillingInvoice.basis == "return",
            BillingInvoice.status == "issued",
        )
    )
    invoiced = ledger.invoiced_by_order(session, [order.id]).get(order.id, ZERO) - to_cents(Decimal(returned or 0))
    if invoiced != delivered and not _rounding_only(session, order, invoiced - delivered):
        problems.append(
            Problem(
                AMOUNT_DIFFERS,
                {"invoiced": str(invoiced), "delivered": str(delivered), "difference": str(invoiced - delivered)},
            )
        )
        quantities = delivered_quantities(session, order)
        billed = _invoiced_quantities(session, order.id)
        for line in order.lines:
            done, charged = Decimal(quantities.get(line.id, ZERO)), billed.get(line.id, ZERO)
            if done != charged:
                problems.append(
                    Problem(
                        LINE_DIFFERS,
                        {
                            "position": line.position,
                            "product": line.product.sku if line.product else line.description,
                            "invoiced": _qty(charged),
                            "delivered": _qty(done),
                        },
                    )
                )
    invoices = list(
        session.scalars(
            select(BillingInvoice)
            .where(BillingInvoice.order_id == order.id, BillingInvoice.kind == "invoice")
            .order_by(BillingInvoice.id)
        )
    )
    open_amount = ZERO
    for invoice in invoices:
        if invoice.status == "draft":
            problems.append(Problem(DRAFT_OPEN, {"id": invoice.id}))
        elif invoice.status == "issued" and invoice.open_amount > ZERO:
            open_amount += invoice.open_amount
            problems.append(Problem(UNPAID, {"number": invoice.number or "", "amount": str(invoice.open_amount)}))
    written_off = to_cents(
        Decimal(
            session.scalar(
                select(func.coalesce(func.sum(BillingWriteOff.amount), 0)).where(
                    BillingWriteOff.invoice_id.in_([i.id for i in invoices] or [0]),
                    BillingWriteOff.status == "approved",
                )
            )
            or 0
        )
    )
    return SettlementCheck(delivered, invoiced, open_amount, written_off, problems)


def _qty(value: Decimal) -> str:
    text = format(Decimal(value).normalize(), "f")
    return text


def settlement_problems(session: Session, order: Order) -> list[str]:
    """What keeps ``order`` from settling, as English sentences (empty: it may complete)."""
    return check(session, order).texts


def step_enabled(session: Session) -> bool:
    """Whether the ``billing.settlement`` step is enabled (not switched off in the step settings)."""
    enabled = session.scalar(select(StepSetting.enabled).where(StepSetting.key == flow.SETTLEMENT))
    return enabled is None or bool(enabled)


def completion_blockers(session: Session, order: Order) -> list[str]:
    """Why core's ``complete`` must wait: the settlement problems, while the settlement step is enabled."""
    if not step_enabled(session):
        return []
    return settlement_problems(session, order)


def advance(session: Session, order: Order, user: User | None) -> None:
    """Move ``order`` on from ``billing.settlement`` to *completed* when it is settled; else do nothing."""
    if order.step != flow.SETTLEMENT:
        return
    found = check(session, order)
    if found.problems:
        return
    action = flow.WRITTEN_OFF if found.written_off > ZERO else flow.SETTLED
    Workflow(session_registry(session), session).apply(order, action, "completed", user, "")


def on_paid(session: Session, order_ids: Iterable[int], user: User | None) -> None:
    """After allocations to these orders' invoices: complete those now settled at the settlement step."""
    for order_id in sorted({i for i in order_ids if i is not None}):
        order = session.get(Order, order_id)
        if order is not None and order.step == flow.SETTLEMENT:
            advance(session, order, user)


def check_settlement_blockers(session: Session, order: Order) -> list[str]:
    """Guard of finance's ``check_settlement``: the problems, so the move happens only when settled."""
    return settlement_problems(session, order)


# --- write-offs ----------------------------------------------------------------------


def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise BillingError("invalid_amount", BAD_AMOUNT) from None
    if not amount.is_finite() or amount <= ZERO or amount != to_cents(amount):
        raise BillingError("invalid_amount", BAD_AMOUNT)
    return amount


def pending_write_offs(session: Session, invoice_id: int) -> Decimal:
    """What is requested and not yet decided on ``invoice_id``."""
    value = session.scalar(
        select(func.coalesce(func.sum(BillingWriteOff.amount), 0)).where(
            BillingWriteOff.invoice_id == invoice_id, BillingWriteOff.status == "requested"
        )
    )
    return to_cents(Decimal(value or 0))


def _approver_roles(session: Session) -> list[str]:
    rows = session.scalars(
        select(Role.code)
        .join(RolePermission, RolePermission.role_id == Role.id)
        .where(RolePermission.code == flow.WRITE_OFF_APPROVE)
    )
    return sorted(set(rows))


def request_write_off(session: Session, actor: User, invoice_id: int, amount: Any, reason: str) -> BillingWriteOff:
    """Ask to write off ``amount`` of invoice ``invoice_id`` (at most what is open) for ``reason``."""
    if not actor.can(flow.WRITE_OFF_REQUEST):
        raise BillingError("forbidden", NO_REQUEST_PERMISSION, status=403)
    invoice = scope.get_invoice(session, actor, invoice_id)
    if invoice.kind != "invoice" or invoice.status != "issued" or invoice.open_amount <= ZERO:
        raise BillingError("invoice_not_open", NOT_AN_OPEN_INVOICE, status=409)
    value = _amount(amount)
    available = invoice.open_amount - pending_write_offs(session, invoice.id)
    if value > available:
        raise BillingError(
            "above_open", ABOVE_OPEN, amount=str(value), open=str(available), number=invoice.number or ""
        )
    text = (reason or "").strip()
    if not text:
        raise BillingError("reason_required", REASON_NEEDED)
    if len(text) > 1000:
        raise BillingError("reason_too_long", REASON_TOO_LONG)
    write_off = BillingWriteOff(
        order_id=invoice.order_id,
        invoice_id=invoice.id,
        amount=value,
        reason=text,
        status="requested",
        requested_by_id=actor.id,
    )
    session.add(write_off)
    session.flush()
    audit.record(
        session,
        actor,
        "billing_write_off",
        write_off.id,
        "request",
        {"invoice": invoice.number, "amount": str(value)},
        reason=text,
        order_id=invoice.order_id,
    )
    order = session.get(Order, invoice.order_id) if invoice.order_id else None
    roles = _approver_roles(session)
    if roles:
        notify(
            session,
            WRITE_OFF_REQUESTED.name,
            to=[ToRole(code) for code in roles],
            order=order,
            context=_context(session, invoice, write_off, actor),
            dedupe_key=f"billing.write_off_requested:{write_off.id}",
        )
    return write_off


def _context(session: Session, invoice: BillingInvoice, write_off: BillingWriteOff, actor: User) -> dict[str, Any]:
    from core.models import Customer

    customer = session.get(Customer, invoice.customer_id)
    return {
        "invoice_number": invoice.number or "",
        "amount": str(write_off.amount),
        "customer": customer.name if customer else "",
        "reason": write_off.reason,
        "requester": actor.name,
        "decider": actor.name,
        "approved": write_off.status == "approved",
        "note": write_off.decision_note,
    }


def get_write_off(session: Session, actor: User, write_off_id: int) -> BillingWriteOff:
    """The write-off ``write_off_id`` if ``actor`` may see its invoice; else :class:`NotFound` (404)."""
    write_off = session.get(BillingWriteOff, write_off_id) if 0 < write_off_id <= MAX_ID else None
    if write_off is None:
        raise NotFound("write_off", write_off_id)
    scope.get_invoice(session, actor, write_off.invoice_id)
    return write_off


def decide_write_off(
    session: Session, actor: User, write_off_id: int, approve: bool, note: str = ""
) -> BillingWriteOff:
    """Approve (the amount settles the invoice; the order may complete) or refuse a requested write-off."""
    if not actor.can(flow.WRITE_OFF_APPROVE):
        raise BillingError("forbidden", NO_APPROVE_PERMISSION, status=403)
    write_off = get_write_off(session, actor, write_off_id)
    if write_off.status != "requested":
        raise BillingError("already_decided", ALREADY_DECIDED, status=409)
    if write_off.requested_by_id == actor.id:
        raise BillingError("same_person", SAME_PERSON, status=403)
    text = (note or "").strip()
    if len(text) > 1000:
        raise BillingError("reason_too_long", REASON_TOO_LONG)
    if not approve and not text:
        raise BillingError("note_required", NOTE_NEEDED)
    invoice = scope.get_invoice(session, actor, write_off.invoice_id, for_update=True)
    if approve and (invoice.status != "issued" or write_off.amount > invoice.open_amount):
        raise BillingError(
            "above_open",
            ABOVE_OPEN,
            amount=str(write_off.amount),
            open=str(invoice.open_amount),
            number=invoice.number or "",
        )
    write_off.status = "approved" if approve else "refused"
    write_off.decided_by_id = actor.id
    write_off.decided_at = utcnow()
    write_off.decision_note = text
    session.flush()
    if approve:
        ledger.allocate(
            session,
            invoice,
            write_off.amount,
            write_off=write_off,
            effective_on=company_now().date(),
            actor=actor,
        )
    audit.record(
        session,
        actor,
        "billing_write_off",
        write_off.id,
        "approve" if approve else "refuse",
        {"status": ["requested", write_off.status], "amount": str(write_off.amount)},
        reason=text,
        order_id=write_off.order_id,
    )
    order = session.get(Order, write_off.order_id) if write_off.order_id else None
    if write_off.requested_by_id is not None:
        notify(
            session,
            WRITE_OFF_DECIDED.name,
            to=[ToUser(write_off.requested_by_id)],
            order=order,
            context=_context(session, invoice, write_off, actor),
            dedupe_key=f"billing.write_off_decided:{write_off.id}",
        )
    if approve and order is not None:
        on_paid(session, [order.id], actor)
    return write_off


def today() -> dt.date:
    """The company's date today."""
    return company_now().date()
