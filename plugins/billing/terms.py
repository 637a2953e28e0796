"""Payment terms (BL-1) and their due dates; the terms an order runs on and the finance check.

Named terms are one of four kinds: prepayment (full or a percentage), cash on delivery,
monthly settlement (a cut-off day and days after the month end) and instalments (a
schedule of percentages and due offsets). Finance manages them here
(``billing.terms.manage``); every change is validated in full before anything changes
and audited.

:func:`due_schedule` turns terms into the due dates of an invoice, amounts summing
exactly to its total. :func:`order_terms` fixes the terms an order runs on when it
enters the finance check (the account's terms when they fit the order's payment
method, else the first active terms of that kind); special terms (cash on delivery,
instalments) or a credit hold make the order wait for finance's approval there, standard
terms of a customer in good standing move on at once (:func:`on_enter_finance_check`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.contrib import Transition
from core.db import utcnow
from core.labels import N_
from core.models import Order, User
from core.models.order import to_cents
from core.notify import notify
from core.notify.recipients import ToRole
from core.services.audit import record
from core.settings import session_registry
from core.workflow import Workflow
from plugins.billing import flow
from plugins.billing.errors import BillingError
from plugins.billing.models import (
    SPECIAL_TERM_KINDS,
    TERM_KINDS,
    BillingAccount,
    BillingOrderTerms,
    BillingPaymentTerm,
    BillingTermInstalment,
)

ZERO = Decimal("0")
HUNDRED = Decimal("100")
#: Monthly settlement without named terms: the whole month counts, due 30 days after it.
DEFAULT_CUTOFF_DAY = 31
DEFAULT_DAYS_AFTER_MONTH_END = 30

FORBIDDEN = N_("You may not manage payment terms.")
CODE_REQUIRED = N_("Enter a code.")
CODE_TOO_LONG = N_("A code has at most 32 characters.")
CODE_TAKEN = N_("Other payment terms already have the code %(term)s.")
NAME_REQUIRED = N_("Enter a name.")
NAME_TOO_LONG = N_("A name has at most 100 characters.")
BAD_KIND = N_("Choose one of the kinds: prepayment, cash on delivery, monthly settlement, instalments.")
NOT_A_NUMBER = N_("Enter a number.")
NOT_WHOLE = N_("Enter a whole number.")
BAD_PREPAYMENT = N_("The prepayment percentage must be more than 0 and at most 100.")
BAD_CUTOFF = N_("The cut-off day must be between 1 and 31.")
NEGATIVE_DAYS = N_("Days cannot be negative.")
FEW_INSTALMENTS = N_("Instalment terms need at least two instalments.")
BAD_INSTALMENT_PERCENT = N_("Each instalment must be more than 0 percent.")
INSTALMENTS_NOT_100 = N_("The instalments add up to %(total)s percent; they must add up to exactly 100.")
INSTALMENTS_OUT_OF_ORDER = N_("Each instalment must fall due on or after the one before it.")
UNKNOWN_TERM = N_("There are no such payment terms.")
WAITING_SPECIAL = N_("Special payment terms (%(kind)s) need finance's approval.")


# --- validation helpers ------------------------------------------------------------------


def _require(actor: User) -> None:
    if not actor.can(flow.TERMS_MANAGE):
        raise BillingError("forbidden", FORBIDDEN, status=403)


def _bad(code: str, msgid: str, field: str, **params: Any) -> BillingError:
    return BillingError(code, msgid, details={field: [msgid % params if params else msgid]}, **params)


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool):
        raise _bad("not_a_number", NOT_A_NUMBER, field)
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise _bad("not_a_number", NOT_A_NUMBER, field) from None
    if not number.is_finite():
        raise _bad("not_a_number", NOT_A_NUMBER, field)
    return number


def _whole(value: Any, field: str) -> int:
    number = _decimal(value, field)
    if number != number.to_integral_value():
        raise _bad("not_whole", NOT_WHOLE, field)
    return int(number)


def _days(value: Any, field: str) -> int:
    days = _whole(value, field)
    if days < 0:
        raise _bad("negative_days", NEGATIVE_DAYS, field)
    return days


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes", "y")
    return bool(value)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _instalments(rows: Any) -> list[tuple[Decimal, int]]:
    """Checked (percent, due_days) rows: at least two, each > 0, summing exactly 100, in due order."""
    if isinstance(rows, Mapping):
        rows = [rows[k] for k in sorted(rows, key=lambda k: int(k))]
    if not isinstance(rows, Sequence) or isinstance(rows, str):
        raise _bad("few_instalments", FEW_INSTALMENTS, "instalments")
    result: list[tuple[Decimal, int]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise _bad("few_instalments", FEW_INSTALMENTS, "instalments")
        try:
            percent = _decimal(row.get("percent"), "percent")
            if percent <= ZERO or percent > HUNDRED:
                raise _bad("bad_instalment_percent", BAD_INSTALMENT_PERCENT, "percent")
            days = _days(row.get("due_days", 0) if not _blank(row.get("due_days")) else 0, "due_days")
        except BillingError as exc:
            raise BillingError(exc.code, exc.msgid, details={"instalments": {index: exc.details}}) from None
        result.append((percent, days))
    if len(result) < 2:
        raise _bad("few_instalments", FEW_INSTALMENTS, "instalments")
    total = sum((p for p, _d in result), ZERO)
    if total != HUNDRED:
        raise _bad("instalments_not_100", INSTALMENTS_NOT_100, "instalments", total=format(total.normalize(), "f"))
    if any(later[1] < earlier[1] for earlier, later in itertools.pairwise(result)):
        raise _bad("instalments_out_of_order", INSTALMENTS_OUT_OF_ORDER, "instalments")
    return result


def _term_values(session: Session, data: Mapping[str, Any], current: BillingPaymentTerm | None) -> dict[str, Any]:
    """Every field of a term from ``data`` (falling back to ``current``), checked; nothing changed."""

    def given(name: str) -> Any:
        return data[name] if name in data else (getattr(current, name) if current is not None else None)

    code = str(given("code") or "").strip().upper()
    if not code:
        raise _bad("code_required", CODE_REQUIRED, "code")
    if len(code) > 32:
        raise _bad("code_too_long", CODE_TOO_LONG, "code")
    clash = session.scalar(select(BillingPaymentTerm).where(BillingPaymentTerm.code == code))
    if clash is not None and clash is not current:
        raise BillingError(
            "duplicate_code", CODE_TAKEN, status=409, details={"code": [CODE_TAKEN % {"term": code}]}, term=code
        )
    name = str(given("name") or "").strip()
    if not name:
        raise _bad("name_required", NAME_REQUIRED, "name")
    if len(name) > 100:
        raise _bad("name_too_long", NAME_TOO_LONG, "name")
    kind = str(given("kind") or "").strip()
    if kind not in TERM_KINDS:
        raise _bad("bad_kind", BAD_KIND, "kind")
    values: dict[str, Any] = {"code": code, "name": name, "kind": kind}
    percent = given("prepayment_percent")
    values["prepayment_percent"] = HUNDRED if _blank(percent) else _decimal(percent, "prepayment_percent")
    if kind == "prepayment" and not ZERO < values["prepayment_percent"] <= HUNDRED:
        raise _bad("bad_prepayment", BAD_PREPAYMENT, "prepayment_percent")
    if kind != "prepayment":
        values["prepayment_percent"] = ZERO  # only prepayment terms ask for money before release
    cutoff = given("cutoff_day")
    values["cutoff_day"] = DEFAULT_CUTOFF_DAY if _blank(cutoff) else _whole(cutoff, "cutoff_day")
    if not 1 <= values["cutoff_day"] <= 31:
        raise _bad("bad_cutoff", BAD_CUTOFF, "cutoff_day")
    after = given("days_after_month_end")
    values["days_after_month_end"] = (
        DEFAULT_DAYS_AFTER_MONTH_END if _blank(after) else _days(after, "days_after_month_end")
    )
    due = given("due_days")
    values["due_days"] = 0 if _blank(due) else _days(due, "due_days")
    values["active"] = _flag(given("active")) if given("active") is not None else True
    if kind == "instalments":
        if "instalments" in data:
            values["instalments"] = _instalments(data["instalments"])
        elif current is not None and current.kind == "instalments":
            values["instalments"] = [(i.percent, i.due_days) for i in current.instalments]
        else:
            values["instalments"] = _instalments([])
    else:
        values["instalments"] = []
    return values


def _plain(value: Any) -> Any:
    """An audit value JSON can hold: decimals and dates as text."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _snapshot(term: BillingPaymentTerm) -> dict[str, Any]:
    return {
        "code": term.code,
        "name": term.name,
        "kind": term.kind,
        "prepayment_percent": term.prepayment_percent,
        "cutoff_day": term.cutoff_day,
        "days_after_month_end": term.days_after_month_end,
        "due_days": term.due_days,
        "active": term.active,
        "instalments": [f"{i.percent.normalize():f}%@{i.due_days}" for i in term.instalments],
    }


def _apply(term: BillingPaymentTerm, values: dict[str, Any]) -> None:
    for name in ("code", "name", "kind", "prepayment_percent", "cutoff_day", "days_after_month_end", "due_days"):
        setattr(term, name, values[name])
    term.active = values["active"]
    wanted = values["instalments"]
    current = [(i.percent, i.due_days) for i in term.instalments]
    if current != wanted:
        term.instalments.clear()
        term.instalments.extend(
            BillingTermInstalment(sequence=n, percent=p, due_days=d) for n, (p, d) in enumerate(wanted, start=1)
        )


# --- term management -----------------------------------------------------------------------


def get_term(session: Session, term_id: Any) -> BillingPaymentTerm:
    """The payment terms ``term_id``; a 404 :class:`BillingError` when there are none."""
    try:
        ident = int(term_id)
    except (TypeError, ValueError):
        raise BillingError("not_found", UNKNOWN_TERM, status=404) from None
    term = session.get(BillingPaymentTerm, ident)
    if term is None:
        raise BillingError("not_found", UNKNOWN_TERM, status=404)
    return term


def create_term(session: Session, actor: User, data: Mapping[str, Any]) -> BillingPaymentTerm:
    """Add payment terms from ``data`` (code, name, kind and the kind's parameters); audited."""
    _require(actor)
    values = _term_values(session, data, None)
    term = BillingPaymentTerm()
    _apply(term, values)
    session.add(term)
    session.flush()
    record(session, actor, "billing_payment_term", term.id, "create", _snapshot(term))
    return term


def update_term(session: Session, actor: User, term_id: int, data: Mapping[str, Any]) -> BillingPaymentTerm:
    """Change payment terms; fields left out stay; ``instalments`` given replace the schedule; audited.

    Orders already on these terms keep what was fixed for them (their order terms and
    their invoices' due dates); new orders and invoices use the change.
    """
    _require(actor)
    term = get_term(session, term_id)
    values = _term_values(session, data, term)
    before = _snapshot(term)
    _apply(term, values)
    session.flush()
    after = _snapshot(term)
    changes = {k: [_plain(before[k]), _plain(after[k])] for k in after if before[k] != after[k]}
    if changes:
        record(session, actor, "billing_payment_term", term.id, "update", changes)
    return term


def set_term_active(session: Session, actor: User, term_id: int, active: bool) -> BillingPaymentTerm:
    """Deactivate (or reactivate) payment terms: inactive terms are offered to no new account or order."""
    _require(actor)
    term = get_term(session, term_id)
    if term.active != active:
        term.active = active
        session.flush()
        record(session, actor, "billing_payment_term", term.id, "activate" if active else "deactivate")
    return term


def deactivate_term(session: Session, actor: User, term_id: int) -> BillingPaymentTerm:
    """Deactivate payment terms (see :func:`set_term_active`)."""
    return set_term_active(session, actor, term_id, False)


def active_terms(session: Session) -> list[BillingPaymentTerm]:
    """The active payment terms by code."""
    return list(
        session.scalars(
            select(BillingPaymentTerm).where(BillingPaymentTerm.active.is_(True)).order_by(BillingPaymentTerm.code)
        )
    )


# --- due dates -------------------------------------------------------------------------------


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def due_schedule(
    term: BillingPaymentTerm | None, kind: str, invoice_date: dt.date, total: Decimal
) -> list[tuple[dt.date, Decimal]]:
    """The due dates and amounts of an invoice of ``total`` dated ``invoice_date`` (BL-1).

    ``term`` decides when given (its kind wins over ``kind``); without terms ``kind``
    applies with defaults (monthly settlement: cut-off 31, due 30 days after the month
    end; the other kinds: due on the invoice date). Amounts sum exactly to ``total``.
    A credit note (``kind == "credit_note"`` or a negative total) is due at once.

    - prepayment, cash on delivery: one due ``due_days`` after the invoice date;
    - monthly settlement: invoices dated after the cut-off day count to the next month;
      due ``days_after_month_end`` after the end of that month;
    - instalments: each percentage of the total ``due_days`` after the invoice date,
      the last one taking the rounding remainder.
    """
    total = to_cents(Decimal(total))
    if kind == "credit_note" or total < ZERO:
        return [(invoice_date, total)]
    kind = term.kind if term is not None else kind
    if kind == "monthly_settlement":
        cutoff = term.cutoff_day if term is not None else DEFAULT_CUTOFF_DAY
        after = term.days_after_month_end if term is not None else DEFAULT_DAYS_AFTER_MONTH_END
        year, month = invoice_date.year, invoice_date.month
        if invoice_date.day > cutoff:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return [(_month_end(year, month) + dt.timedelta(days=after), total)]
    if kind == "instalments" and term is not None and len(term.instalments) >= 1:
        rows: list[tuple[dt.date, Decimal]] = []
        given = ZERO
        for index, instalment in enumerate(term.instalments):
            due = invoice_date + dt.timedelta(days=instalment.due_days)
            if index == len(term.instalments) - 1:
                amount = total - given
            else:
                amount = to_cents(total * Decimal(instalment.percent) / HUNDRED)
                given += amount
            rows.append((due, amount))
        return rows
    days = term.due_days if term is not None and kind in ("prepayment", "cash_on_delivery") else 0
    return [(invoice_date + dt.timedelta(days=days), total)]


# --- the order's terms -----------------------------------------------------------------------


def _account(session: Session, customer_id: int) -> BillingAccount:
    from plugins.billing.accounts import account_for

    return account_for(session, customer_id)


def _choose_term(session: Session, account: BillingAccount, kind: str) -> BillingPaymentTerm | None:
    if account.term is not None and account.term.kind == kind and account.term.active:
        return account.term
    return session.scalars(
        select(BillingPaymentTerm)
        .where(BillingPaymentTerm.kind == kind, BillingPaymentTerm.active.is_(True))
        .order_by(BillingPaymentTerm.code)
        .limit(1)
    ).first()


def _fix(session: Session, order: Order, terms: BillingOrderTerms) -> None:
    """Set ``terms`` from the order's payment method, the account and the named terms."""
    account = _account(session, order.customer_id)
    kind = order.payment_method
    term = _choose_term(session, account, kind)
    terms_percent = ZERO
    if kind == "prepayment":
        terms_percent = Decimal(term.prepayment_percent) if term is not None else HUNDRED
    terms.term_id = term.id if term is not None else None
    terms.term = term
    terms.kind = kind
    terms.special = kind in SPECIAL_TERM_KINDS
    terms.prepayment_percent = max(terms_percent, Decimal(account.prepayment_ratio or 0))


def order_terms(session: Session, order: Order) -> BillingOrderTerms:
    """The terms ``order`` runs on, fixed now if they are not yet (no permission check).

    The account's terms when their kind is the order's payment method, else the first
    active terms of that kind by code (or none: the kind's defaults apply); special when
    the kind is cash on delivery or instalments; the prepayment percentage is the higher
    of the terms' (prepayment terms only) and the account's required ratio.
    """
    terms = session.scalars(select(BillingOrderTerms).where(BillingOrderTerms.order_id == order.id)).first()
    if terms is None:
        terms = BillingOrderTerms(order_id=order.id)
        _fix(session, order, terms)
        session.add(terms)
        session.flush()
    return terms


def required_prepayment(session: Session, order: Order) -> Decimal:
    """The amount (CNY, to the cent) to be paid before ``order``'s goods are released."""
    percent = Decimal(order_terms(session, order).prepayment_percent or 0)
    if percent <= ZERO:
        return ZERO
    return to_cents(Decimal(order.total or 0) * percent / HUNDRED)


def waiting_reasons(session: Session, order: Order) -> list[str]:
    """Why ``order`` cannot pass the finance check by itself: special terms, the credit gate's reasons."""
    from plugins.billing import credit

    terms = order_terms(session, order)
    reasons: list[str] = []
    if terms.special:
        reasons.append(WAITING_SPECIAL % {"kind": TERM_KINDS.get(terms.kind, terms.kind)})
    reasons.extend(credit.gate_reasons(session, order, "finance_check"))
    return reasons


def on_enter_finance_check(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Fix ``order``'s terms as it enters the finance check; move on by itself when nothing waits.

    Standard terms and a customer the credit gate lets pass: the automatic ``terms_ok``
    move to the next step. Otherwise the order stays and finance is told why
    (``billing.finance_check_waiting``).
    """
    terms = session.scalars(select(BillingOrderTerms).where(BillingOrderTerms.order_id == order.id)).first()
    if terms is None:
        terms = order_terms(session, order)
    else:
        _fix(session, order, terms)  # the order may come back with other terms: fix them again
        terms.approved_by_id = None
        terms.approved_at = None
        terms.note = ""
        session.flush()
    reasons = waiting_reasons(session, order)
    if not reasons:
        workflow = Workflow(session_registry(session), session)
        target = workflow.next_step(workflow.step(order.step)).key
        workflow.apply(order, flow.TERMS_OK, target, user, "")
        return
    notify(
        session,
        "billing.finance_check_waiting",
        to=[ToRole("finance")],
        order=order,
        context={"reasons": reasons, "kind": terms.kind},
    )


def approve(session: Session, order: Order, user: User | None, reason: str) -> None:
    """Record finance's approval of ``order``'s terms (after the ``approve_terms`` move)."""
    terms = order_terms(session, order)
    terms.approved_by_id = user.id if user is not None else None
    terms.approved_at = utcnow()
    terms.note = (reason or "")[:1000]
    session.flush()
    record(
        session,
        user,
        "billing_order_terms",
        terms.id,
        "approve",
        {"kind": terms.kind, "prepayment_percent": terms.prepayment_percent},
        reason=reason or "",
        order_id=order.id,
    )
