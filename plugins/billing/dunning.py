"""Dunning (BL-4): the ladder, the daily run that climbs it, and pauses for disputes and promises.

Why: the company reminds customers before a due date, sends a friendly reminder after
it, then a formal dunning letter (催款函) and finally escalates to legal action, with the
salesperson helping (DOMAIN.md BL-4). Each step is sent once per due amount and logged,
so anybody can see who was told what and when.

- The **ladder** is the table of :class:`BillingDunningLevel` rows (days from the due
  date, kind, letter, tell sales); finance edits it (``billing.settings.manage``).
- :func:`run_dunning` (the daily job ``billing.dunning``, also "Run now" on the board)
  looks at every due instalment of an issued invoice with an open balance
  (:func:`plugins.billing.ledger.due_balances`) and sends the **highest** level whose
  day has come and that is higher than any level already sent for that due. Levels
  skipped because a higher one was due at the same time never fire later: the ladder
  only climbs. A before-due reminder is not sent once the due date has passed.
- A **pause** (a dispute, or a promise to pay until a date) on the customer or one
  invoice stops the ladder for what it covers; a promise ends by itself after its date,
  a dispute when finance ends it. The levels whose day came during the pause are then
  treated like any others (only the highest is sent).

Nothing here commits: the job runner and the screens own the transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE, company_now
from core.contrib import Job, NotificationTemplate
from core.db import utcnow
from core.labels import N_
from core.models import Customer, Order, User
from core.models.order import to_cents
from core.notify import Recipient, ToCustomer, ToRole, ToUser, notify
from core.services import NotFound, audit
from plugins.billing import flow, ledger, scope
from plugins.billing.errors import BillingError
from plugins.billing.models import (
    DUNNING_KINDS,
    PAUSE_KINDS,
    BillingDunningEvent,
    BillingDunningLevel,
    BillingDunningPause,
    BillingInterestCharge,
    BillingInvoice,
    BillingInvoiceDue,
)

ZERO = Decimal("0")
#: The notification template of each level kind.
TEMPLATES = {
    "reminder": "billing.dunning_reminder",
    "friendly": "billing.dunning_friendly",
    "letter": "billing.dunning_letter",
    "legal": "billing.dunning_legal",
}
MAX_NOTE = 1000
MAX_CODE = 32
#: The widest the ladder may reach either side of the due date.
MAX_DAYS = 3650

FORBIDDEN = N_("You need the permission %(permission)s.")
NOTE_REQUIRED = N_("Say why dunning is paused: a note is required.")
NOTE_TOO_LONG = N_("The note is longer than %(max)s characters.")
BAD_PAUSE_KIND = N_("A pause is a dispute or a promise to pay, not %(kind)s.")
PROMISE_NEEDS_DATE = N_("A promise to pay needs the date it is promised for, after today.")
OTHER_CUSTOMER_INVOICE = N_("Invoice %(number)s belongs to another customer.")
NOT_ISSUED = N_("Invoice %(number)s is not an issued invoice.")
PAUSE_ENDED = N_("This pause has already ended.")
LEVEL_CODE_REQUIRED = N_("Give the level a code of at most %(max)s characters.")
LEVEL_CODE_TAKEN = N_("Another level already has the code %(level)s.")
LEVEL_DAYS_TAKEN = N_("Another level already falls on day %(days)s; each day holds one level.")
LEVEL_DAYS_INVALID = N_("Days must be a whole number between -%(max)s and %(max)s.")
LEVEL_KIND_INVALID = N_("Choose a kind of the ladder: %(kinds)s.")
LEVEL_IN_USE = N_("Level %(level)s has been sent already; deactivate it instead of deleting it.")

NOTIFICATIONS: tuple[NotificationTemplate, ...] = (
    NotificationTemplate(
        TEMPLATES["reminder"],
        subject={
            "zh_CN": "付款提醒：发票 {{ invoice_number }} 将于 {{ due_date }} 到期",
            "en": "Payment reminder: invoice {{ invoice_number }} is due on {{ due_date }}",
        },
        body={
            "zh_CN": "{{ recipient }}，您好：\n\n{{ customer_name }} 的发票 {{ invoice_number }}"
            " 有 {{ amount }} {{ currency }} 将于 {{ due_date }} 到期，请按时付款。如已付款，请忽略本提醒。\n\n"
            "{{ company.name if company else '' }}",
            "en": "Dear {{ recipient }},\n\n{{ amount }} {{ currency }} of invoice {{ invoice_number }} to"
            " {{ customer_name }} falls due on {{ due_date }}. Please pay on time; if you have paid already,"
            " please disregard this reminder.\n\n{{ company.name if company else '' }}",
        },
        plugin="billing",
        label=N_("Billing: payment reminder before the due date"),
    ),
    NotificationTemplate(
        TEMPLATES["friendly"],
        subject={
            "zh_CN": "友情提醒：发票 {{ invoice_number }} 已逾期 {{ days_overdue }} 天",
            "en": "Friendly reminder: invoice {{ invoice_number }} is {{ days_overdue }} days overdue",
        },
        body={
            "zh_CN": "{{ recipient }}，您好：\n\n{{ customer_name }} 的发票 {{ invoice_number }}"
            " 于 {{ due_date }} 到期，"
            "尚有 {{ amount }} {{ currency }} 未付，已逾期 {{ days_overdue }} 天。请尽快安排付款。\n\n"
            "{{ company.name if company else '' }}",
            "en": "Dear {{ recipient }},\n\nInvoice {{ invoice_number }} to {{ customer_name }} was due on"
            " {{ due_date }}; {{ amount }} {{ currency }} is still open, {{ days_overdue }} days overdue."
            " Please arrange payment soon.\n\n{{ company.name if company else '' }}",
        },
        plugin="billing",
        label=N_("Billing: friendly reminder after the due date"),
    ),
    NotificationTemplate(
        TEMPLATES["letter"],
        subject={
            "zh_CN": "催款函：发票 {{ invoice_number }} 逾期 {{ days_overdue }} 天",
            "en": "Formal dunning letter: invoice {{ invoice_number }} {{ days_overdue }} days overdue",
        },
        body={
            "zh_CN": "{{ recipient }}，您好：\n\n{{ customer_name }} 的发票 {{ invoice_number }}"
            " 于 {{ due_date }} 到期，"
            "尚欠 {{ amount }} {{ currency }}，已逾期 {{ days_overdue }} 天。我司已出具正式催款函"
            "{% if letter %}（{{ letter }}）{% endif %}，请于收到后七日内付清欠款。\n\n"
            "{{ company.name if company else '' }}",
            "en": "Dear {{ recipient }},\n\nInvoice {{ invoice_number }} to {{ customer_name }} was due on"
            " {{ due_date }}; {{ amount }} {{ currency }} is still owed, {{ days_overdue }} days overdue. We have"
            " issued a formal dunning letter{% if letter %} ({{ letter }}){% endif %}; please pay the amount"
            " within seven days.\n\n{{ company.name if company else '' }}",
        },
        plugin="billing",
        label=N_("Billing: formal dunning letter (催款函)"),
    ),
    NotificationTemplate(
        TEMPLATES["legal"],
        subject={
            "zh_CN": "法律催收：发票 {{ invoice_number }} 逾期 {{ days_overdue }} 天",
            "en": "Legal escalation: invoice {{ invoice_number }} {{ days_overdue }} days overdue",
        },
        body={
            "zh_CN": "{{ recipient }}，您好：\n\n{{ customer_name }} 的发票 {{ invoice_number }}"
            " 于 {{ due_date }} 到期，"
            "尚欠 {{ amount }} {{ currency }}，已逾期 {{ days_overdue }} 天，经多次催收仍未付款。"
            "本案将转入法律程序。\n\n{{ company.name if company else '' }}",
            "en": "Dear {{ recipient }},\n\nInvoice {{ invoice_number }} to {{ customer_name }} was due on"
            " {{ due_date }}; {{ amount }} {{ currency }} is still owed, {{ days_overdue }} days overdue despite"
            " our reminders. The matter is being escalated to legal action.\n\n{{ company.name if company else '' }}",
        },
        plugin="billing",
        label=N_("Billing: legal escalation of an overdue invoice"),
    ),
)


def _job(session: Session, now: dt.datetime) -> int:
    """The scheduled job: :func:`run_dunning` at ``now``."""
    return run_dunning(session, now)


JOBS: tuple[Job, ...] = (
    Job("billing.dunning", "daily:09:00", _job, plugin="billing", label=N_("Billing: dunning ladder")),
)


def company_day(now: dt.datetime) -> dt.date:
    """The company's date at ``now`` (a naive ``now`` is taken as UTC)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return now.astimezone(COMPANY_TIMEZONE).date()


def _require(actor: User, permission: str) -> None:
    if not actor.can(permission):
        raise BillingError("forbidden", FORBIDDEN, status=403, permission=permission)


# --------------------------------------------------------------------------- the ladder


def levels(session: Session, *, active_only: bool = False) -> list[BillingDunningLevel]:
    """The ladder's levels by day (only the active ones when ``active_only``)."""
    stmt = select(BillingDunningLevel).order_by(BillingDunningLevel.days, BillingDunningLevel.id)
    if active_only:
        stmt = stmt.where(BillingDunningLevel.active.is_(True))
    return list(session.scalars(stmt))


def save_level(
    session: Session, actor: User, values: dict[str, Any], level_id: int | None = None
) -> BillingDunningLevel:
    """Create (``level_id`` None) or change a level of the ladder; everything checked before any change.

    ``values``: ``code``, ``days`` (from the due date, negative before it, unique), ``kind``
    (one of :data:`DUNNING_KINDS`), ``letter``, ``notify_sales``, ``active``. Needs
    ``billing.settings.manage`` (403); refusals 422, an unknown level 404.
    """
    _require(actor, flow.SETTINGS_MANAGE)
    level = None
    if level_id is not None:
        level = session.get(BillingDunningLevel, level_id)
        if level is None:
            raise NotFound("dunning level", level_id)
    code = str(values.get("code", level.code if level else "") or "").strip()
    if not code or len(code) > MAX_CODE:
        raise BillingError("invalid_code", LEVEL_CODE_REQUIRED, max=MAX_CODE)
    raw_days = values.get("days", level.days if level else None)
    try:
        days = int(str(raw_days).strip())
    except (TypeError, ValueError):
        raise BillingError("invalid_days", LEVEL_DAYS_INVALID, max=MAX_DAYS) from None
    if abs(days) > MAX_DAYS:
        raise BillingError("invalid_days", LEVEL_DAYS_INVALID, max=MAX_DAYS)
    kind = str(values.get("kind", level.kind if level else "") or "")
    if kind not in DUNNING_KINDS:
        raise BillingError("invalid_kind", LEVEL_KIND_INVALID, kinds=", ".join(DUNNING_KINDS))
    others = select(BillingDunningLevel.id).where(BillingDunningLevel.id != (level.id if level else 0))
    if session.scalar(others.where(BillingDunningLevel.code == code)):
        raise BillingError("code_taken", LEVEL_CODE_TAKEN, level=code)
    if session.scalar(others.where(BillingDunningLevel.days == days)):
        raise BillingError("days_taken", LEVEL_DAYS_TAKEN, days=days)

    def flag(name: str, default: bool) -> bool:
        value = values.get(name, default)
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "on", "yes", "y")

    new = {
        "code": code,
        "days": days,
        "kind": kind,
        "letter": flag("letter", level.letter if level else kind == "letter"),
        "notify_sales": flag("notify_sales", level.notify_sales if level else False),
        "active": flag("active", level.active if level else True),
    }
    if level is None:
        level = BillingDunningLevel(**new)
        session.add(level)
        session.flush()
        audit.record(session, actor, "billing_dunning_level", level.id, "create", {k: str(v) for k, v in new.items()})
        return level
    changes = {k: [str(getattr(level, k)), str(v)] for k, v in new.items() if getattr(level, k) != v}
    for key, value in new.items():
        setattr(level, key, value)
    session.flush()
    if changes:
        audit.record(session, actor, "billing_dunning_level", level.id, "update", changes)
    return level


def delete_level(session: Session, actor: User, level_id: int) -> None:
    """Delete a level never sent (409 once sent: deactivate it instead). Needs ``billing.settings.manage``."""
    _require(actor, flow.SETTINGS_MANAGE)
    level = session.get(BillingDunningLevel, level_id)
    if level is None:
        raise NotFound("dunning level", level_id)
    if session.scalar(select(BillingDunningEvent.id).where(BillingDunningEvent.level_id == level.id).limit(1)):
        raise BillingError("level_in_use", LEVEL_IN_USE, status=409, level=level.code)
    audit.record(session, actor, "billing_dunning_level", level.id, "delete", {"code": level.code})
    session.delete(level)
    session.flush()


# --------------------------------------------------------------------------- pauses


def pause_active(pause: BillingDunningPause, today: dt.date) -> bool:
    """Whether ``pause`` stops dunning on ``today``: not ended, and a promise only up to its date."""
    if pause.ended_at is not None:
        return False
    return not (pause.kind == "promise" and pause.until is not None and today > pause.until)


def active_pauses(session: Session, today: dt.date, customer_ids: list[int] | None = None) -> list[BillingDunningPause]:
    """The pauses in force on ``today`` (of ``customer_ids`` if given), oldest first."""
    stmt = select(BillingDunningPause).where(BillingDunningPause.ended_at.is_(None))
    if customer_ids is not None:
        stmt = stmt.where(BillingDunningPause.customer_id.in_(customer_ids))
    stmt = stmt.where(
        or_(
            BillingDunningPause.kind != "promise",
            BillingDunningPause.until.is_(None),
            BillingDunningPause.until >= today,
        )
    )
    return [p for p in session.scalars(stmt.order_by(BillingDunningPause.id)) if pause_active(p, today)]


def pause_dunning(
    session: Session,
    actor: User,
    customer_id: int,
    kind: str,
    note: str,
    *,
    invoice_id: int | None = None,
    until: dt.date | None = None,
) -> BillingDunningPause:
    """Pause dunning of a customer (or one of its invoices): a dispute, or a promise to pay until ``until``.

    Needs ``billing.dunning.manage`` (403); the customer and invoice must be in the
    actor's scope (404); a note is required, a promise needs a date after today (422).
    """
    _require(actor, flow.DUNNING_MANAGE)
    customer = scope.get_customer(session, actor, customer_id)
    if kind not in PAUSE_KINDS:
        raise BillingError("invalid_kind", BAD_PAUSE_KIND, kind=repr(kind))
    note = (note or "").strip()
    if not note:
        raise BillingError("note_required", NOTE_REQUIRED)
    if len(note) > MAX_NOTE:
        raise BillingError("note_too_long", NOTE_TOO_LONG, max=MAX_NOTE)
    today = company_now().date()
    if kind == "promise" and (until is None or until <= today):
        raise BillingError("promise_date", PROMISE_NEEDS_DATE)
    if kind == "dispute":
        until = None
    if invoice_id is not None:
        invoice = scope.get_invoice(session, actor, invoice_id)
        if invoice.customer_id != customer.id:
            raise BillingError("other_customer", OTHER_CUSTOMER_INVOICE, number=invoice.number or f"#{invoice.id}")
        if invoice.kind != "invoice" or invoice.status != "issued":
            raise BillingError("not_issued", NOT_ISSUED, status=409, number=invoice.number or f"#{invoice.id}")
    pause = BillingDunningPause(
        customer_id=customer.id, invoice_id=invoice_id, kind=kind, until=until, note=note, created_by_id=actor.id
    )
    session.add(pause)
    session.flush()
    audit.record(
        session,
        actor,
        "billing_dunning_pause",
        pause.id,
        "create",
        {"customer": customer.code, "invoice_id": invoice_id, "kind": kind, "until": str(until or ""), "note": note},
    )
    return pause


def end_pause(session: Session, actor: User, pause_id: int, note: str = "") -> BillingDunningPause:
    """End a pause now: dunning resumes at the next run. 403 without ``billing.dunning.manage``,
    404 for a pause outside the actor's scope, 409 for one already ended."""
    _require(actor, flow.DUNNING_MANAGE)
    pause = session.get(BillingDunningPause, pause_id)
    if pause is None:
        raise NotFound("dunning pause", pause_id)
    scope.get_customer(session, actor, pause.customer_id)
    if pause.ended_at is not None:
        raise BillingError("pause_ended", PAUSE_ENDED, status=409)
    pause.ended_at = utcnow()
    pause.ended_by_id = actor.id
    session.flush()
    audit.record(session, actor, "billing_dunning_pause", pause.id, "end", {"note": (note or "").strip()[:MAX_NOTE]})
    return pause


def _paused(pauses: list[BillingDunningPause], customer_id: int, invoice_id: int) -> BillingDunningPause | None:
    for pause in pauses:
        if pause.customer_id == customer_id and pause.invoice_id in (None, invoice_id):
            return pause
    return None


# --------------------------------------------------------------------------- the run


@dataclass
class DueState:
    """One open due of an issued invoice and where it stands on the ladder."""

    due: BillingInvoiceDue
    invoice: BillingInvoice
    balance: Decimal
    days_overdue: int
    last: BillingDunningLevel | None = None
    last_at: dt.datetime | None = None
    next: BillingDunningLevel | None = None
    next_on: dt.date | None = None
    pause: BillingDunningPause | None = None
    interest: Decimal = ZERO


def _open_dues(session: Session, actor: User | None = None) -> list[tuple[BillingInvoiceDue, BillingInvoice]]:
    stmt = (
        select(BillingInvoiceDue, BillingInvoice)
        .join(BillingInvoice, BillingInvoice.id == BillingInvoiceDue.invoice_id)
        .where(
            BillingInvoice.kind == "invoice",
            BillingInvoice.status == "issued",
            BillingInvoice.settled < BillingInvoice.total,
        )
        .order_by(BillingInvoiceDue.due_date, BillingInvoiceDue.id)
    )
    if actor is not None:
        stmt = stmt.where(scope.invoice_scope(actor))
    return list(session.execute(stmt).tuples())


def _sent(session: Session, due_ids: list[int]) -> dict[int, list[BillingDunningEvent]]:
    found: dict[int, list[BillingDunningEvent]] = {}
    if not due_ids:
        return found
    for event in session.scalars(
        select(BillingDunningEvent).where(BillingDunningEvent.due_id.in_(due_ids)).order_by(BillingDunningEvent.id)
    ):
        found.setdefault(event.due_id, []).append(event)
    return found


def _candidate(
    ladder: list[BillingDunningLevel], due_date: dt.date, today: dt.date, highest_sent: int | None
) -> BillingDunningLevel | None:
    """The highest level whose day has come, above any sent; a before-due reminder only before the due date."""
    best = None
    for level in ladder:
        if highest_sent is not None and level.days <= highest_sent:
            continue
        if due_date + dt.timedelta(days=level.days) > today:
            continue
        if level.days < 0 and today >= due_date:
            continue
        best = level
    return best


def _next_level(
    ladder: list[BillingDunningLevel], due_date: dt.date, today: dt.date, highest_sent: int | None
) -> tuple[BillingDunningLevel | None, dt.date | None]:
    for level in ladder:
        if highest_sent is not None and level.days <= highest_sent:
            continue
        on = due_date + dt.timedelta(days=level.days)
        if level.days < 0 and today >= due_date:
            continue
        return level, max(on, today)
    return None, None


def due_states(session: Session, today: dt.date, actor: User | None = None) -> list[DueState]:
    """Every open due of an issued invoice (in ``actor``'s scope if given) with its ladder position."""
    ladder = levels(session, active_only=True)
    all_levels = {level.id: level for level in levels(session)}
    rows = _open_dues(session, actor)
    balances = ledger.due_balances(session, {invoice.id for _, invoice in rows})
    sent = _sent(session, [due.id for due, _ in rows])
    pauses = active_pauses(session, today, sorted({invoice.customer_id for _, invoice in rows}))
    interest = _interest_by_invoice(session, [invoice.id for _, invoice in rows])
    states = []
    for due, invoice in rows:
        balance = balances.get(due.id, ZERO)
        if balance <= ZERO:
            continue
        events = sent.get(due.id, [])
        last_event = max(events, key=lambda e: all_levels[e.level_id].days, default=None)
        last = all_levels[last_event.level_id] if last_event else None
        nxt, next_on = _next_level(ladder, due.due_date, today, last.days if last else None)
        states.append(
            DueState(
                due=due,
                invoice=invoice,
                balance=balance,
                days_overdue=(today - due.due_date).days,
                last=last,
                last_at=last_event.sent_at if last_event else None,
                next=nxt,
                next_on=next_on,
                pause=_paused(pauses, invoice.customer_id, invoice.id),
                interest=interest.get(invoice.id, ZERO),
            )
        )
    return states


def _interest_by_invoice(session: Session, invoice_ids: list[int]) -> dict[int, Decimal]:
    if not invoice_ids:
        return {}
    rows = session.execute(
        select(BillingInterestCharge.invoice_id, func.sum(BillingInterestCharge.amount))
        .where(BillingInterestCharge.invoice_id.in_(invoice_ids))
        .group_by(BillingInterestCharge.invoice_id)
    )
    return {invoice_id: to_cents(Decimal(total or 0)) for invoice_id, total in rows}


def run_dunning(session: Session, now: dt.datetime, actor: User | None = None) -> int:
    """Climb the ladder for every open due on the company date of ``now``; the number of notifications sent.

    Per due with an open balance and no pause in force: the highest active level whose
    day has come (due date + days ≤ today) and that is above every level already sent is
    sent — the level's notification to the customer (and the order's and customer's
    salesperson when the level tells sales; finance and the general manager too for a
    legal escalation), the 催款函 PDF for letter levels archived on the invoice's order —
    and logged once (:class:`BillingDunningEvent`, unique per due and level). Running
    again the same day finds nothing new: it is idempotent.
    """
    from plugins.billing import dunning_documents

    today = company_day(now)
    ladder = levels(session, active_only=True)
    if not ladder:
        return 0
    sent_count = 0
    for state in due_states(session, today):
        if state.pause is not None:
            continue
        highest = state.last.days if state.last else None
        level = _candidate(ladder, state.due.due_date, today, highest)
        if level is None:
            continue
        invoice, due = state.invoice, state.due
        order = session.get(Order, invoice.order_id) if invoice.order_id else None
        customer = session.get(Customer, invoice.customer_id)
        assert customer is not None
        event = BillingDunningEvent(
            due_id=due.id,
            level_id=level.id,
            invoice_id=invoice.id,
            customer_id=invoice.customer_id,
            open_amount=state.balance,
            sent_at=now.astimezone(dt.UTC) if now.tzinfo else now.replace(tzinfo=dt.UTC),
            actor_id=actor.id if actor is not None else None,
        )
        session.add(event)
        session.flush()
        letter_name = ""
        if level.letter:
            attachment = dunning_documents.archive_letter(session, event, actor)
            if attachment is not None:
                event.letter_attachment_id = attachment.id
                letter_name = attachment.filename
        recipients: list[Recipient] = [ToCustomer(customer.id)]
        if level.notify_sales:
            owners = {order.owner_id if order else None, customer.owner_id}
            recipients += [ToUser(user_id) for user_id in sorted(o for o in owners if o is not None)]
        if level.kind == "legal":
            recipients += [ToRole("finance"), ToRole("general_manager")]
        notify(
            session,
            TEMPLATES[level.kind],
            to=recipients,
            order=order,
            context={
                "customer_name": customer.name,
                "invoice_number": invoice.number or "",
                "due_date": due.due_date.isoformat(),
                "amount": f"{state.balance:,.2f}",
                "currency": invoice.currency,
                "days_overdue": max(0, state.days_overdue),
                "level": level.code,
                "letter": letter_name,
            },
            dedupe_key=f"billing.dunning:{due.id}:{level.id}",
        )
        sent_count += 1
        audit.record(
            session,
            actor,
            "billing_dunning_event",
            event.id,
            "send",
            {"invoice": invoice.number, "level": level.code, "open_amount": str(state.balance)},
            order_id=invoice.order_id,
        )
    session.flush()
    return sent_count


def run_now(session: Session, actor: User) -> int:
    """Finance's "Run now": :func:`run_dunning` for the current time, as ``actor`` (``billing.dunning.manage``)."""
    _require(actor, flow.DUNNING_MANAGE)
    return run_dunning(session, company_now(), actor)


# --------------------------------------------------------------------------- the board


@dataclass
class BoardCustomer:
    """One customer on the dunning board: its open dues, pauses, what it owes."""

    customer: Customer
    dues: list[DueState] = field(default_factory=list)
    pauses: list[BillingDunningPause] = field(default_factory=list)

    @property
    def overdue(self) -> Decimal:
        """What is past its due date."""
        return sum((d.balance for d in self.dues if d.days_overdue > 0), ZERO)

    @property
    def open(self) -> Decimal:
        """Everything open on the dues listed."""
        return sum((d.balance for d in self.dues), ZERO)

    @property
    def interest(self) -> Decimal:
        """Late interest charged on the customer's listed invoices (a debit apart from the VAT invoices)."""
        seen: dict[int, Decimal] = {d.invoice.id: d.interest for d in self.dues}
        return sum(seen.values(), ZERO)

    @property
    def oldest(self) -> int:
        """Days the oldest due is overdue."""
        return max((d.days_overdue for d in self.dues), default=0)


def board(session: Session, actor: User, today: dt.date | None = None) -> list[BoardCustomer]:
    """The dunning board in ``actor``'s scope: customers with dues overdue or whose first ladder day has come,
    most overdue first. Needs ``billing.invoices.read`` (403)."""
    if not (actor.can(flow.INVOICES_READ) or actor.can(flow.DUNNING_MANAGE)):
        raise BillingError("forbidden", FORBIDDEN, status=403, permission=flow.INVOICES_READ)
    today = today or company_now().date()
    ladder = levels(session, active_only=True)
    first = min((level.days for level in ladder), default=1)
    customers: dict[int, BoardCustomer] = {}
    for state in due_states(session, today, actor):
        if state.days_overdue <= 0 and state.due.due_date + dt.timedelta(days=first) > today and state.last is None:
            continue
        customer = session.get(Customer, state.invoice.customer_id)
        assert customer is not None
        customers.setdefault(customer.id, BoardCustomer(customer)).dues.append(state)
    for pause in active_pauses(session, today, list(customers)):
        customers[pause.customer_id].pauses.append(pause)
    for pause in active_pauses(session, today):
        if pause.customer_id not in customers:
            visible = session.scalar(
                select(Customer).where(Customer.id == pause.customer_id, scope.customer_scope(actor))
            )
            if visible is not None:
                customers.setdefault(visible.id, BoardCustomer(visible)).pauses.append(pause)
    return sorted(customers.values(), key=lambda c: (-c.oldest, -c.overdue, c.customer.code))


def events_query(actor: User, customer_id: int | None = None, invoice_id: int | None = None) -> Any:
    """A SELECT of the dunning events ``actor`` may see (through the invoice's scope), newest first."""
    stmt = (
        select(BillingDunningEvent)
        .join(BillingInvoice, BillingInvoice.id == BillingDunningEvent.invoice_id)
        .where(scope.invoice_scope(actor))
        .order_by(BillingDunningEvent.sent_at.desc(), BillingDunningEvent.id.desc())
    )
    if customer_id is not None:
        stmt = stmt.where(BillingDunningEvent.customer_id == customer_id)
    if invoice_id is not None:
        stmt = stmt.where(BillingDunningEvent.invoice_id == invoice_id)
    return stmt


def get_event(session: Session, actor: User, event_id: int) -> BillingDunningEvent:
    """Dunning event ``event_id`` if ``actor`` may see its invoice; else 404."""
    event = session.get(BillingDunningEvent, event_id)
    if event is None:
        raise NotFound("dunning event", event_id)
    scope.get_invoice(session, actor, event.invoice_id)
    return event
