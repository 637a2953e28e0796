"""Customer accounts (BL-5): terms, credit limit, rating and its review, blocks, guarantee, prepayment ratio.

Billing keeps one account per core customer (:class:`BillingAccount`), created with the
defaults the first time anything asks (:func:`account_for`): the first active monthly
settlement terms, the default credit limit setting, a review one rating period ahead.
Finance and the general manager change it (``billing.accounts.manage``) through
:func:`update_account` (validated in full, optimistic locking by ``version``, audited
with the difference) and :func:`set_rating`, which records the review, sets the next
review date and raises the required prepayment ratio for poor ratings (setting
``billing.credit.poor_rating_prepayment``; never lowered automatically — a better
rating is finance's decision to relax). The daily job ``billing.rating_reviews`` tells
finance about accounts whose review is due.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core.clock import COMPANY_TIMEZONE, company_now
from core.contrib import Job, NotificationTemplate
from core.labels import N_
from core.models import Customer, User
from core.models.order import to_cents
from core.notify import notify
from core.notify.recipients import ToRole
from core.services.audit import record
from core.settings import get_setting
from plugins.billing import flow
from plugins.billing.errors import BillingError
from plugins.billing.models import INVOICE_TYPES, RATINGS, BillingAccount, BillingPaymentTerm, BillingRatingReview
from plugins.billing.scope import get_customer

ZERO = Decimal("0")
HUNDRED = Decimal("100")

FORBIDDEN = N_("You may not manage customer accounts.")
STALE = N_("The account was changed by someone else meanwhile; reload it and try again.")
UNKNOWN_TERM = N_("There are no such payment terms.")
INACTIVE_TERM = N_("Payment terms %(term)s are no longer in use; choose active terms.")
NOT_A_NUMBER = N_("Enter a number.")
NEGATIVE_LIMIT = N_("The credit limit cannot be negative; leave it empty for no limit.")
BAD_RATIO = N_("The prepayment ratio must be between 0 and 100 percent.")
REASON_REQUIRED = N_("Give the reason for blocking the customer.")
BAD_INVOICE_TYPE = N_("Choose the VAT special or the VAT normal invoice.")
NEEDS_TAX_ID = N_("A VAT special invoice needs the customer's tax id; enter it on the customer first.")
TOO_LONG = N_("The text is too long (at most %(limit)s characters).")
BAD_RATING = N_("Choose a rating: A, B, C or D.")
NOTE_REQUIRED = N_("Say why the rating changes.")
BAD_DATE = N_("Enter a date (YYYY-MM-DD).")
PAST_REVIEW = N_("The next review must be after today.")
BAD_VERSION = N_("The version must be a whole number.")

#: The fields :func:`update_account` accepts.
FIELDS = (
    "term",
    "credit_limit",
    "blocked",
    "block_reason",
    "guarantee_on_file",
    "guarantee_note",
    "prepayment_ratio",
    "invoice_type",
    "note",
)

RATING_CHANGED = NotificationTemplate(
    "billing.rating_changed",
    label=N_("A customer's rating raised its required prepayment (to finance)"),
    subject={
        "zh_CN": "客户 {{ customer_code }} 信用等级 {{ rating_from }} → {{ rating_to }}，预付款比例提高到 {{ ratio }}%",
        "en": "Customer {{ customer_code }} rated {{ rating_to }} (was {{ rating_from }}): prepayment now {{ ratio }}%",
    },
    body={
        "zh_CN": (
            "客户 {{ customer_code }} {{ customer_name }} 的信用等级由 {{ rating_from }} 调整为 {{ rating_to }}。\n"
            "要求的预付款比例已由 {{ old_ratio }}% 提高到 {{ ratio }}%，之后的订单按此收取预付款。\n"
            "{% if note %}说明：{{ note }}\n{% endif %}"
        ),
        "en": (
            "The credit rating of customer {{ customer_code }} {{ customer_name }} changed from {{ rating_from }} "
            "to {{ rating_to }}.\nThe required prepayment ratio was raised from {{ old_ratio }}% to {{ ratio }}%; "
            "later orders need this prepayment.\n{% if note %}Note: {{ note }}\n{% endif %}"
        ),
    },
    plugin="billing",
)
RATING_REVIEW_DUE = NotificationTemplate(
    "billing.rating_review_due",
    label=N_("A customer's credit rating is due for review (to finance)"),
    subject={
        "zh_CN": "客户 {{ customer_code }} 的信用等级应于 {{ next_review_on }} 复评",
        "en": "Customer {{ customer_code }}: credit rating review due since {{ next_review_on }}",
    },
    body={
        "zh_CN": (
            "客户 {{ customer_code }} {{ customer_name }} 当前信用等级 {{ rating }}，"
            "复评日期 {{ next_review_on }} 已到。\n"
            "请在客户账户中复评信用等级。\n"
        ),
        "en": (
            "Customer {{ customer_code }} {{ customer_name }} is rated {{ rating }}; its review was due on "
            "{{ next_review_on }}.\nPlease review the rating on the customer account.\n"
        ),
    },
    plugin="billing",
)
FINANCE_CHECK_WAITING = NotificationTemplate(
    "billing.finance_check_waiting",
    label=N_("An order waits at the finance check (to finance)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 等待财务审核",
        "en": "Order {{ order.number }} waits for the finance check",
    },
    body={
        "zh_CN": "订单 {{ order.number }} 需要财务审核后才能继续：\n{% for r in reasons %}- {{ r }}\n{% endfor %}",
        "en": "Order {{ order.number }} needs finance's approval before it goes on:\n"
        "{% for r in reasons %}- {{ r }}\n{% endfor %}",
    },
    plugin="billing",
)

NOTIFICATIONS: tuple[NotificationTemplate, ...] = (RATING_CHANGED, RATING_REVIEW_DUE, FINANCE_CHECK_WAITING)


# --- helpers ---------------------------------------------------------------------------------


def today() -> dt.date:
    """The company's date now."""
    return company_now().date()


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` ``months`` later, on the month's last day when the day does not exist (31 Jan + 1 → 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def review_months(session: Session) -> int:
    """Months from one rating review to the next (setting ``billing.credit.review_months``)."""
    return int(get_setting(session, flow.REVIEW_MONTHS))


def poor_rating_ratios(session: Session) -> dict[str, Decimal]:
    """The prepayment percent each rating requires (setting ``billing.credit.poor_rating_prepayment``).

    Pairs such as ``C:30,D:100``; malformed pairs and unknown ratings are skipped,
    percentages kept within 0–100.
    """
    text = str(get_setting(session, flow.POOR_RATING_PREPAYMENT) or "")
    ratios: dict[str, Decimal] = {}
    for pair in text.split(","):
        rating, _sep, value = pair.partition(":")
        rating = rating.strip().upper()
        if rating not in RATINGS:
            continue
        try:
            percent = Decimal(value.strip())
        except InvalidOperation:
            continue
        if percent.is_finite():
            ratios[rating] = min(max(percent, ZERO), HUNDRED)
    return ratios


def _bad(code: str, msgid: str, field: str, status: int = 422, **params: Any) -> BillingError:
    return BillingError(code, msgid, status=status, details={field: [msgid % params if params else msgid]}, **params)


def _require(actor: User) -> None:
    if not actor.can(flow.ACCOUNTS_MANAGE):
        raise BillingError("forbidden", FORBIDDEN, status=403)


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes", "y")
    return bool(value)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


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


def _text(value: Any, field: str, limit: int) -> str:
    text = "" if value is None else str(value).strip()
    if len(text) > limit:
        raise _bad("too_long", TOO_LONG, field, limit=limit)
    return text


def _date(value: Any, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise _bad("bad_date", BAD_DATE, field) from None


def _term(session: Session, value: Any, current: BillingPaymentTerm | None) -> BillingPaymentTerm | None:
    """Terms by id or code; active unless they are the account's current terms."""
    if _blank(value):
        return None
    if isinstance(value, BillingPaymentTerm):
        term: BillingPaymentTerm | None = value
    else:
        text = str(value).strip()
        term = None
        if text.isdigit():
            term = session.get(BillingPaymentTerm, int(text))
        if term is None:
            term = session.scalar(select(BillingPaymentTerm).where(BillingPaymentTerm.code == text.upper()))
    if term is None:
        raise _bad("unknown_term", UNKNOWN_TERM, "term")
    if not term.active and term is not current:
        raise _bad("inactive_term", INACTIVE_TERM, "term", term=term.code)
    return term


def _plain(value: Any) -> Any:
    """An audit value JSON can hold: decimals and dates as text."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _snapshot(account: BillingAccount) -> dict[str, Any]:
    return {
        "term": account.term.code if account.term is not None else None,
        "credit_limit": account.credit_limit,
        "blocked": account.blocked,
        "block_reason": account.block_reason,
        "guarantee_on_file": account.guarantee_on_file,
        "guarantee_note": account.guarantee_note,
        "prepayment_ratio": account.prepayment_ratio,
        "invoice_type": account.invoice_type,
        "note": account.note,
        "rating": account.rating,
        "next_review_on": account.next_review_on,
    }


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError:
        raise BillingError("stale", STALE, status=409) from None


# --- services --------------------------------------------------------------------------------


def account_for(session: Session, customer_id: int) -> BillingAccount:
    """The billing account of customer ``customer_id``, created with the defaults if missing.

    For work that writes (an invoice, a change of terms); screens and API reads use
    :func:`account_view`, which stores nothing. No permission check: the credit gate and
    the invoices need it for any customer.
    """
    account = account_view(session, customer_id)
    if account not in session:
        session.add(account)
        session.flush()
    return account


def account_view(session: Session, customer_id: int) -> BillingAccount:
    """The stored account of customer ``customer_id``, else the one it would be created with.

    The default account is not added to the session: reading an account — its screen,
    the API, the accounts list — writes nothing (no state change on GET). Defaults: the
    first active monthly settlement terms (by code) or none; the credit limit setting when
    above 0, else no limit; rating B; the next review one rating period
    (``billing.credit.review_months``) from today.
    """
    account = session.scalars(select(BillingAccount).where(BillingAccount.customer_id == customer_id)).first()
    if account is not None:
        return account
    term = session.scalars(
        select(BillingPaymentTerm)
        .where(BillingPaymentTerm.kind == "monthly_settlement", BillingPaymentTerm.active.is_(True))
        .order_by(BillingPaymentTerm.code)
        .limit(1)
    ).first()
    default_limit = Decimal(str(get_setting(session, flow.DEFAULT_CREDIT_LIMIT) or 0))
    account = BillingAccount(
        customer_id=customer_id,
        term_id=term.id if term is not None else None,
        term=term,
        credit_limit=to_cents(default_limit) if default_limit > ZERO else None,
        rating="B",
        next_review_on=add_months(today(), review_months(session)),
        blocked=False,
        block_reason="",
        guarantee_on_file=False,
        guarantee_note="",
        prepayment_ratio=ZERO,
        invoice_type="normal",
        note="",
        version=1,
    )
    return account


def update_account(session: Session, actor: User, customer_id: int, values: Mapping[str, Any]) -> BillingAccount:
    """Change customer ``customer_id``'s account; fields left out stay as they are.

    ``values``: ``term`` (id or code of active terms; empty for none), ``credit_limit``
    (empty: no limit; else ≥ 0), ``blocked`` with ``block_reason`` (required when
    blocking), ``guarantee_on_file`` and ``guarantee_note``, ``prepayment_ratio``
    (0–100), ``invoice_type`` (``special`` needs the customer's tax id), ``note``;
    ``version`` (the one last read) makes a stale change a 409. Everything is checked
    before anything changes; the difference is audited.
    """
    _require(actor)
    customer = get_customer(session, actor, customer_id)
    account = account_for(session, customer.id)
    if "version" in values and not _blank(values["version"]):
        try:
            version = int(str(values["version"]).strip())
        except ValueError:
            raise _bad("bad_version", BAD_VERSION, "version") from None
        if version != account.version:
            raise BillingError("stale", STALE, status=409)
    new: dict[str, Any] = {}
    if "term" in values:
        new["term"] = _term(session, values["term"], account.term)
    if "credit_limit" in values:
        raw = values["credit_limit"]
        if _blank(raw):
            new["credit_limit"] = None
        else:
            limit = _decimal(raw, "credit_limit")
            if limit < ZERO:
                raise _bad("negative_limit", NEGATIVE_LIMIT, "credit_limit")
            new["credit_limit"] = to_cents(limit)
    blocked = _flag(values["blocked"]) if "blocked" in values else account.blocked
    reason = _text(values.get("block_reason", account.block_reason), "block_reason", 500)
    if blocked and not reason:
        raise _bad("reason_required", REASON_REQUIRED, "block_reason")
    new["blocked"] = blocked
    new["block_reason"] = reason if blocked or "block_reason" in values else ""
    if "guarantee_on_file" in values:
        new["guarantee_on_file"] = _flag(values["guarantee_on_file"])
    if "guarantee_note" in values:
        new["guarantee_note"] = _text(values["guarantee_note"], "guarantee_note", 500)
    if "prepayment_ratio" in values:
        ratio = ZERO if _blank(values["prepayment_ratio"]) else _decimal(values["prepayment_ratio"], "prepayment_ratio")
        if not ZERO <= ratio <= HUNDRED:
            raise _bad("bad_ratio", BAD_RATIO, "prepayment_ratio")
        new["prepayment_ratio"] = ratio
    if "invoice_type" in values:
        invoice_type = str(values["invoice_type"] or "").strip()
        if invoice_type not in INVOICE_TYPES:
            raise _bad("bad_invoice_type", BAD_INVOICE_TYPE, "invoice_type")
        if invoice_type == "special" and not (customer.tax_id or "").strip():
            raise _bad("needs_tax_id", NEEDS_TAX_ID, "invoice_type")
        new["invoice_type"] = invoice_type
    if "note" in values:
        new["note"] = _text(values["note"], "note", 2000)

    before = _snapshot(account)
    for name, value in new.items():
        if name == "term":
            account.term = value
            account.term_id = value.id if value is not None else None
        elif name in ("credit_limit", "prepayment_ratio"):
            current = getattr(account, name)
            if current is None or value is None or Decimal(current) != value:
                setattr(account, name, value)
        elif getattr(account, name) != value:
            setattr(account, name, value)
    after = _snapshot(account)
    changes = {k: [_plain(before[k]), _plain(after[k])] for k in after if before[k] != after[k]}
    if changes:
        _flush(session)
        record(session, actor, "billing_account", account.id, "update", changes)
    return account


def set_rating(
    session: Session,
    actor: User,
    customer_id: int,
    rating: str,
    note: str,
    next_review_on: dt.date | str | None = None,
) -> BillingAccount:
    """Review customer ``customer_id``'s credit rating: record it, set the next review, raise the prepayment.

    ``rating`` A–D; ``note`` says why (required when the rating changes);
    ``next_review_on`` defaults to today plus ``billing.credit.review_months`` and must
    be after today. The required prepayment ratio is raised to the rating's percentage
    from ``billing.credit.poor_rating_prepayment`` when below it — never lowered — and
    finance is told when it was raised (``billing.rating_changed``).
    """
    _require(actor)
    customer = get_customer(session, actor, customer_id)
    account = account_for(session, customer.id)
    rating = str(rating or "").strip().upper()
    if rating not in RATINGS:
        raise _bad("bad_rating", BAD_RATING, "rating")
    note = _text(note, "note", 1000)
    if rating != account.rating and not note:
        raise _bad("note_required", NOTE_REQUIRED, "note")
    now = today()
    if _blank(next_review_on):
        review_on = add_months(now, review_months(session))
    else:
        review_on = _date(next_review_on, "next_review_on")
        if review_on <= now:
            raise _bad("past_review", PAST_REVIEW, "next_review_on")
    required = poor_rating_ratios(session).get(rating, ZERO)
    old_ratio = Decimal(account.prepayment_ratio or 0)
    old_rating = account.rating
    before = _snapshot(account)

    session.add(
        BillingRatingReview(
            account_id=account.id,
            rating_from=old_rating,
            rating_to=rating,
            next_review_on=review_on,
            note=note,
            reviewed_by_id=actor.id,
        )
    )
    account.rating = rating
    account.next_review_on = review_on
    raised = required > old_ratio
    if raised:
        account.prepayment_ratio = required
    _flush(session)
    after = _snapshot(account)
    changes = {k: [_plain(before[k]), _plain(after[k])] for k in after if before[k] != after[k]}
    record(session, actor, "billing_account", account.id, "rating", changes, reason=note)
    if raised:
        notify(
            session,
            RATING_CHANGED.name,
            to=[ToRole("finance")],
            context={
                "customer_code": customer.code,
                "customer_name": customer.name,
                "rating_from": old_rating,
                "rating_to": rating,
                "old_ratio": format(old_ratio.normalize(), "f"),
                "ratio": format(required.normalize(), "f"),
                "note": note,
            },
        )
    return account


def rating_history(session: Session, account: BillingAccount) -> list[BillingRatingReview]:
    """The account's rating reviews, newest first."""
    return list(
        session.scalars(
            select(BillingRatingReview)
            .where(BillingRatingReview.account_id == account.id)
            .order_by(BillingRatingReview.reviewed_at.desc(), BillingRatingReview.id.desc())
        )
    )


def overdue_reviews(session: Session, as_of: dt.date) -> list[BillingAccount]:
    """The accounts whose rating review is due on or before ``as_of``, the longest due first."""
    return list(
        session.scalars(
            select(BillingAccount)
            .where(BillingAccount.next_review_on.is_not(None), BillingAccount.next_review_on <= as_of)
            .order_by(BillingAccount.next_review_on, BillingAccount.id)
        )
    )


def remind_reviews(session: Session, now: dt.datetime) -> int:
    """Tell finance about every account whose rating review is due, once per account and day; the accounts due.

    The job ``billing.rating_reviews``.
    """
    as_of = now.astimezone(COMPANY_TIMEZONE).date() if now.tzinfo is not None else now.date()
    told = 0
    for account in overdue_reviews(session, as_of):
        customer = session.get(Customer, account.customer_id)
        if customer is None or not customer.active:
            continue
        notify(
            session,
            RATING_REVIEW_DUE.name,
            to=[ToRole("finance")],
            context={
                "customer_code": customer.code,
                "customer_name": customer.name,
                "rating": account.rating,
                "next_review_on": account.next_review_on.isoformat() if account.next_review_on else "",
            },
            dedupe_key=f"billing.rating_review:{account.id}:{as_of.isoformat()}",
        )
        told += 1
    return told


JOBS: tuple[Job, ...] = (
    Job(
        "billing.rating_reviews",
        "daily:08:00",
        remind_reviews,
        plugin="billing",
        label=N_("Tell finance about customers whose credit rating is due for review"),
    ),
)
