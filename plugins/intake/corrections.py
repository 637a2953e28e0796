"""Corrections made while checking an order against its original document (IN-5, IN-9).

An order waiting in the manual check is no longer a draft, so core's ``update_order``
refuses it; a clerk holding ``intake.orders.check`` corrects it here instead. Each
changed field becomes one :class:`IntakeCorrection` row (before, after, whether it fixed
an entry error, the clerk's note), the change is audited (``intake_correction``), the
totals are recomputed and the pre-check rules run again so the findings shown match the
corrected order. The order does not move: the clerk accepts or rejects it afterwards.

Input is checked with core's own field validators (``core.schemas``), so a value the
order form or the API refuses is refused here too, with the same message. Everything
happens in the caller's transaction; on a refusal the caller rolls back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask_babel import gettext
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy.orm import Session

from core.contrib import Finding
from core.labels import N_
from core.models import Order, OrderLine, User
from core.schemas import OrderInSchema, OrderLineInSchema, ShipToSchema, Text
from core.services import Conflict, ServiceError, audit
from core.services.orders import get_order, invalid, recompute_within_limits
from plugins.intake import flow
from plugins.intake.models import TRANSACTION_TYPE_LABELS, TRANSACTION_TYPES, IntakeCorrection

#: Header fields a clerk may correct, as named on :class:`core.models.Order`.
HEADER_FIELDS = (
    "contact_name",
    "contact_phone",
    "ship_to_contact",
    "ship_to_phone",
    "ship_to_province",
    "ship_to_city",
    "ship_to_address",
    "requested_date",
    "payment_method",
    "reference",
    "urgency",
)
#: Line fields a clerk may correct.
LINE_FIELDS = ("quantity", "unit_price", "discount")
#: The longest note kept with a correction.
MAX_NOTE = 500
#: Refusals shown beside a field (screens translate them through the catalogue).
NOT_CORRECTABLE = N_("This field cannot be corrected here.")
UNKNOWN_TRANSACTION_TYPE = N_("Choose one of the listed transaction types.")

_SHIP_TO = {f"ship_to_{key}": key for key in ShipToSchema._declared_fields}

#: How people read the field keys of corrections (translated where shown).
FIELD_LABELS = {
    "contact_name": N_("Contact"),
    "contact_phone": N_("Contact phone"),
    "ship_to_contact": N_("Receiver"),
    "ship_to_phone": N_("Receiver phone"),
    "ship_to_province": N_("Province"),
    "ship_to_city": N_("City"),
    "ship_to_address": N_("Address"),
    "requested_date": N_("Requested delivery date"),
    "payment_method": N_("Payment method"),
    "reference": N_("Reference / contract no."),
    "urgency": N_("Urgency"),
    "quantity": N_("Quantity"),
    "unit_price": N_("Unit price"),
    "discount": N_("Discount"),
}


@dataclass
class CorrectionResult:
    """What a correction did: the rows written, whether the transaction type changed, the new findings."""

    corrections: list[IntakeCorrection] = field(default_factory=list)
    transaction_type_changed: bool = False
    findings: list[Finding] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.corrections or self.transaction_type_changed)

    @property
    def entry_errors(self) -> int:
        """How many of the corrections fixed an entry error."""
        return sum(1 for c in self.corrections if c.entry_error)


def field_label(key: str) -> str:
    """A correction's field key in the user's language: ``Line 1 · Quantity``, ``Contact phone``."""
    if key.startswith("lines[") and "]." in key:
        index, _dot, name = key.removeprefix("lines[").partition("].")
        label = gettext(FIELD_LABELS.get(name, name))
        return gettext("Line %(line)s · %(field)s", line=int(index) + 1 if index.isdigit() else index, field=label)
    if key == "transaction_type":
        return gettext("Transaction type")
    return gettext(FIELD_LABELS[key]) if key in FIELD_LABELS else key


def transaction_type_label(code: str | None) -> str:
    """A transaction type code in the user's language (the code when unknown)."""
    if not code:
        return ""
    return gettext(TRANSACTION_TYPE_LABELS[code]) if code in TRANSACTION_TYPE_LABELS else code


def transaction_type_choices() -> list[tuple[str, str]]:
    """``(code, label)`` pairs of the transaction types, in the user's language."""
    return [(code, transaction_type_label(code)) for code in TRANSACTION_TYPES]


def _header_schema() -> Schema:
    """Core's own validators for the header fields (field objects are copied per schema)."""
    declared = OrderInSchema._declared_fields
    chosen: dict[str, fields.Field] = {
        name: ShipToSchema._declared_fields[_SHIP_TO[name]] if name in _SHIP_TO else declared[name]
        for name in HEADER_FIELDS
    }
    return Schema.from_dict(chosen, name="IntakeCorrectionHeaderSchema")()


def _line_schema() -> Schema:
    declared = OrderLineInSchema._declared_fields
    return Schema.from_dict({name: declared[name] for name in LINE_FIELDS}, name="IntakeCorrectionLineSchema")()


_NOTE = Text(multiline=True, validate=validate.Length(max=MAX_NOTE))


def line_key(index: int, name: str) -> str:
    """The field key of line ``index`` (0-based, as in pre-check findings): ``lines[0].quantity``."""
    return f"lines[{index}].{name}"


def as_text(value: Any) -> str:
    """A field value as kept in a correction: numbers without trailing zeros, dates ISO."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _blank_to_none(name: str, value: Any) -> Any:
    if name == "requested_date" and isinstance(value, str) and not value.strip():
        return None
    return value


def _check_header(changes: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header values given, validated; (values, errors by field)."""
    given = {k: _blank_to_none(k, v) for k, v in changes.items() if k != "lines"}
    try:
        return _header_schema().load(given, partial=True), {}
    except ValidationError as exc:
        return {}, dict(exc.messages) if isinstance(exc.messages, dict) else {"changes": exc.messages}


def _line_index(key: Any, count: int) -> int | None:
    text = str(key)
    if not text.isdigit() or int(text) >= count:
        return None
    return int(text)


def _check_lines(order: Order, given: Any) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    """The line values given (keyed by 0-based line index), validated; (values, errors)."""
    if given is None:
        return {}, {}
    if not isinstance(given, Mapping):
        return {}, {"lines": ["Give the changed lines by line number."]}
    values: dict[int, dict[str, Any]] = {}
    errors: dict[Any, Any] = {}
    schema = _line_schema()
    for key, row in given.items():
        index = _line_index(key, len(order.lines))
        if index is None:
            errors[str(key)] = {"line": [f"The order has no line {key}."]}
            continue
        if not isinstance(row, Mapping):
            errors[index] = {"line": ["Give the changed fields of the line."]}
            continue
        try:
            values[index] = schema.load({k: v for k, v in row.items() if v is not None}, partial=True)
        except ValidationError as exc:
            errors[index] = exc.messages
    return values, ({"lines": errors} if errors else {})


def _check_note(note: str) -> tuple[str, dict[str, Any]]:
    try:
        return _NOTE.deserialize((note or "").strip()), {}
    except ValidationError as exc:
        return "", {"note": exc.messages}


def _changed_header(order: Order, values: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    return [(name, getattr(order, name), value) for name, value in values.items() if getattr(order, name) != value]


def _changed_lines(order: Order, values: Mapping[int, Mapping[str, Any]]) -> list[tuple[OrderLine, str, str, Any, Any]]:
    changed = []
    for index, row in sorted(values.items()):
        line = order.lines[index]
        for name in LINE_FIELDS:
            if name in row and row[name] is not None and getattr(line, name) != row[name]:
                changed.append((line, line_key(index, name), name, getattr(line, name), row[name]))
    return changed


def correct_order(
    session: Session,
    actor: User,
    order: Order | int,
    version: int | None,
    changes: Mapping[str, Any],
    entry_errors: Iterable[str] = (),
    note: str = "",
    transaction_type: str | None = None,
) -> CorrectionResult:
    """Correct ``order`` (or the order with that id) while it waits in the manual check.

    ``changes`` maps header fields (:data:`HEADER_FIELDS`) to new values and ``"lines"``
    to ``{line index: {field: value}}`` for :data:`LINE_FIELDS` (0-based, in the order's
    line order). ``entry_errors`` names the corrected fields that were entered wrongly
    (``"contact_phone"``, ``"lines[0].quantity"``); ``note`` says why. Values equal to
    the current ones are ignored. ``transaction_type`` reclassifies the order (IN-7).
    An order made urgent here is announced to the urgent-order roles, as on submission.

    Refused with nothing changed: 404 outside the actor's scope, 403 without
    ``intake.orders.check``, 409 on a stale ``version`` or when the order is not waiting
    in the manual check, 422 with per-field messages for bad values. Returns what was
    done (false when nothing changed: nothing is written then).
    """
    order = get_order(session, actor, order if isinstance(order, int) else order.id, for_update=True)
    if not actor.can(flow.CHECK_PERMISSION):
        raise ServiceError("forbidden", f"you lack the permission {flow.CHECK_PERMISSION!r}", status=403)
    if version is not None and version != order.version:
        raise Conflict(
            "stale_version",
            f"the order was changed meanwhile (you have version {version}, it is at {order.version}); reload and retry",
        )
    if order.step != flow.MANUAL_CHECK:
        raise Conflict(
            "not_in_manual_check",
            f"order {order.number} is at step {order.step!r}; only orders waiting in the manual check "
            "are corrected here",
        )
    unknown = [k for k in changes if k != "lines" and k not in HEADER_FIELDS]
    errors: dict[str, Any] = {k: [NOT_CORRECTABLE] for k in unknown}
    header, header_errors = _check_header({k: v for k, v in changes.items() if k not in unknown})
    lines, line_errors = _check_lines(order, changes.get("lines"))
    clean_note, note_errors = _check_note(note)
    errors |= header_errors | line_errors | note_errors
    if transaction_type is not None and transaction_type not in TRANSACTION_TYPES:
        errors["transaction_type"] = [UNKNOWN_TRANSACTION_TYPE]
    if errors:
        raise invalid(errors, "the correction is not valid")

    flagged = set(entry_errors)
    changed: list[tuple[str, Any, Any]] = []
    for name, before, after in _changed_header(order, header):
        setattr(order, name, after)
        changed.append((name, before, after))
    for line, key, name, before, after in _changed_lines(order, lines):
        setattr(line, name, after)
        changed.append((key, before, after))
    record = flow.intake_record(session, order)
    old_type = record.transaction_type
    retyped = transaction_type is not None and transaction_type != old_type
    if not changed and not retyped:
        return CorrectionResult()
    if changed:
        recompute_within_limits(order)
        # Touch the row so its version moves even when only lines changed.
        order.updated_at = dt.datetime.now(dt.UTC)
    if retyped:
        assert transaction_type is not None
        record.transaction_type = transaction_type
    rows = [
        IntakeCorrection(
            order_id=order.id,
            field=key,
            before=as_text(before)[:1000],
            after=as_text(after)[:1000],
            entry_error=key in flagged,
            note=clean_note,
            user_id=actor.id,
        )
        for key, before, after in changed
    ]
    session.add_all(rows)
    audit_changes: dict[str, Any] = {key: [as_text(before), as_text(after)] for key, before, after in changed}
    if retyped:
        audit_changes["transaction_type"] = [old_type, transaction_type]
    entry = sorted(key for key, _before, _after in changed if key in flagged)
    if entry:
        audit_changes["entry_errors"] = entry
    audit.record(session, actor, "order", order.id, "intake_correction", audit_changes, reason=clean_note)
    if any(key == "urgency" and after == "urgent" for key, _before, after in changed):
        flow.notify_urgent(session, order)  # made urgent while checking: the teams hear of it now
    findings = flow.keep_findings(session, order) if changed else []
    session.flush()
    return CorrectionResult(rows, retyped, findings)
