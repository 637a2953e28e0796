"""The company record as administrators change it: letterhead, working week and logo.

Every change needs ``settings.manage``, is validated completely before anything is
written, and goes to the audit log with its before and after values. Documents read
the letterhead from :func:`current_company` and the logo with :func:`company_logo`.
"""

from __future__ import annotations

import io
import logging
import re
from typing import Any

import filetype
from email_validator import EmailNotValidError, validate_email
from PIL import Image, UnidentifiedImageError
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from core.calendar import WEEKDAYS, CalendarError, format_weekend, parse_weekend
from core.calendar.days import Problem, Refused, has_control_characters
from core.files import file_store
from core.labels import N_
from core.models import Company, Order, User
from core.services import ServiceError, audit
from core.txcache import pending_changes, remembered

log = logging.getLogger(__name__)

#: The largest logo accepted (1 MB): a letterhead logo needs far less.
MAX_LOGO_BYTES = 1024 * 1024
#: The widest or tallest logo accepted, in pixels.
MAX_LOGO_PIXELS = 4000
#: Logo image types, by the MIME type their content shows.
LOGO_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}

#: Text fields an administrator may change, with their longest length.
TEXT_FIELDS = {
    "name": 200,
    "address": 300,
    "phone": 50,
    "email": 254,
    "tax_id": 64,
    "home_province": 64,
    "order_prefix": 16,
}
#: Every field :func:`update_company` accepts.
EDITABLE_FIELDS = (*TEXT_FIELDS, "weekend_days")

_PREFIX = re.compile(r"^[A-Za-z0-9-]{1,16}$")


def first_company(session: Session) -> Company | None:
    """The company running this installation (the first one), ``None`` before ``ordo init``.

    Read once per transaction (:mod:`core.txcache`): entering an order asks for it
    several times (its number, prices, working days, notices). The first read in a
    transaction refreshes the object's attributes from the database, so a long-lived
    session (the job worker's) sees what an administrator changed meanwhile; a change
    through the session itself is seen at once.
    """

    def load() -> Company | None:
        stmt = select(Company).order_by(Company.id).limit(1)
        if not pending_changes(session, (Company,)):  # never overwrite a change not flushed yet
            stmt = stmt.execution_options(populate_existing=True)
        return session.scalars(stmt).first()

    return remembered(session, "company.first", load, watch=(Company,))


def current_company(session: Session) -> Company:
    """The company running this installation (the first one, if there were several)."""
    company = first_company(session)
    if company is None:
        raise RuntimeError("there is no company yet; run `ordo init` first")
    return company


def require_settings_manager(actor: User | None) -> User:
    """``actor`` if they hold ``settings.manage``; a 403 refusal otherwise."""
    if actor is None or not actor.active or not actor.can("settings.manage"):
        raise ServiceError("forbidden", "changing the company needs permission settings.manage", status=403)
    return actor


def orders_exist(session: Session, company: Company) -> bool:
    """Whether the company has numbered any order (its order prefix is then fixed)."""
    return bool(session.scalar(select(exists().where(Order.company_id == company.id))))


def _text_problems(name: str, value: Any, limit: int) -> tuple[str | None, list[Problem]]:
    if not isinstance(value, str):
        return None, [Problem(name, N_("Not a valid string."))]
    text = value.strip()
    if has_control_characters(text, frozenset("\n\r") if name == "address" else frozenset()):
        return None, [Problem(name, N_("Remove control characters (invisible codes) from this text."))]
    if len(text) > limit:
        return None, [Problem(name, N_("At most %(max)s characters."), {"max": limit})]
    return text, []


def _weekend(value: Any) -> tuple[str | None, list[Problem]]:
    if not isinstance(value, str | list | tuple) or not all(isinstance(v, str) for v in value):
        return None, [Problem("weekend_days", N_('Give the weekend days as a list such as ["sat", "sun"].'))]
    try:
        days = parse_weekend(value)
    except CalendarError:
        return None, [Problem("weekend_days", N_("Weekend days are among %(days)s."), {"days": ", ".join(WEEKDAYS)})]
    if len(days) == 7:
        return None, [Problem("weekend_days", N_("At least one day of the week must be a working day."))]
    return format_weekend(days), []


def validate_company_change(session: Session, company: Company, fields: dict[str, Any]) -> dict[str, Any]:
    """The cleaned values of ``fields`` for ``company``, or :class:`Refused` with every problem."""
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, value in fields.items():
        if name == "weekend_days":
            cleaned, found = _weekend(value)
        elif name in TEXT_FIELDS:
            cleaned, found = _text_problems(name, value, TEXT_FIELDS[name])
        else:
            cleaned, found = None, [Problem(name, N_("Unknown field."))]
        problems += found
        if not found:
            values[name] = cleaned
    if "name" in values and not values["name"]:
        problems.append(Problem("name", N_("The company needs a name.")))
    if values.get("email"):
        try:
            values["email"] = validate_email(values["email"], check_deliverability=False).normalized
        except EmailNotValidError:
            problems.append(Problem("email", N_("Not a valid email address.")))
    prefix = values.get("order_prefix")
    if prefix is not None and prefix != company.order_prefix:
        if not _PREFIX.match(prefix):
            problems.append(Problem("order_prefix", N_("Use 1–16 letters, digits or “-”.")))
        elif orders_exist(session, company):
            problems.append(
                Problem(
                    "order_prefix",
                    N_("Orders are already numbered with “%(prefix)s”; the prefix can no longer change."),
                    {"prefix": company.order_prefix},
                )
            )
    if problems:
        raise Refused("the company record is not valid; nothing was changed", problems)
    return values


def update_company(session: Session, actor: User | None, **fields: Any) -> Company:
    """Change the company's letterhead, home province, order prefix or weekend days.

    ``weekend_days`` takes day codes (``["sat", "sun"]`` or ``"sat,sun"``); at least one
    day of the week must stay a working day. The order prefix is fixed once orders
    exist. Only real changes are stored and audited (before and after).
    """
    require_settings_manager(actor)
    company = current_company(session)
    values = validate_company_change(session, company, fields)
    changes = audit.diff(company, values)
    if changes:
        for name in changes:
            setattr(company, name, values[name])
        audit.record(session, actor, "company", company.id, "update", changes)
        session.flush()
    return company


# --- the logo ---------------------------------------------------------------------------


def check_logo(data: bytes) -> str:
    """The MIME type of a logo that passes every check; :class:`Refused` naming the one it fails.

    The type is read from the content (with ``filetype``), never from the file's name,
    and the image must open as that type within the size limits.
    """
    if not data:
        raise Refused("the logo file is empty", [Problem("logo", N_("The file is empty."))])
    if len(data) > MAX_LOGO_BYTES:
        raise Refused(
            f"the logo is larger than the limit of {MAX_LOGO_BYTES // 1024} KB",
            [
                Problem(
                    "logo",
                    N_("The logo is %(size)s KB, larger than the limit of %(max)s KB (1 MB)."),
                    {"size": -(-len(data) // 1024), "max": MAX_LOGO_BYTES // 1024},
                )
            ],
            status=413,
        )
    kind = filetype.guess(data)
    mime = kind.mime if kind is not None else ""
    if mime not in LOGO_TYPES:
        raise Refused(
            "the logo must be a PNG or JPEG image",
            [
                Problem(
                    "logo", N_("The logo must be a PNG or JPEG image; this file is not one (judged by its content).")
                )
            ],
            status=415,
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if image.format != LOGO_TYPES[mime]:
                raise UnidentifiedImageError(image.format)
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise Refused(
            "the logo image is damaged",
            [
                Problem(
                    "logo", N_("The file looks like a %(type)s image but cannot be read."), {"type": LOGO_TYPES[mime]}
                )
            ],
        ) from None
    if max(width, height) > MAX_LOGO_PIXELS:
        raise Refused(
            "the logo is too large",
            [
                Problem(
                    "logo",
                    N_("The logo is %(width)s×%(height)s pixels; at most %(max)s pixels either way."),
                    {"width": width, "height": height, "max": MAX_LOGO_PIXELS},
                )
            ],
        )
    return mime


def set_logo(session: Session, actor: User | None, data: bytes) -> Company:
    """Store ``data`` as the company's logo (PNG or JPEG by content, at most 1 MB).

    The image goes to the file store, named by its hash; the company record points to it.
    """
    require_settings_manager(actor)
    mime = check_logo(data)
    company = current_company(session)
    sha256 = file_store(session).put(data)
    changes = audit.diff(company, {"logo_sha256": sha256, "logo_type": mime})
    if changes:
        company.logo_sha256, company.logo_type = sha256, mime
        audit.record(session, actor, "company", company.id, "set_logo", {**changes, "bytes": len(data)})
        session.flush()
    return company


def remove_logo(session: Session, actor: User | None) -> Company:
    """Take the logo off the letterhead (the file stays in the store: issued documents may use it)."""
    require_settings_manager(actor)
    company = current_company(session)
    if company.logo_sha256:
        audit.record(session, actor, "company", company.id, "remove_logo", {"logo_sha256": [company.logo_sha256, ""]})
        company.logo_sha256, company.logo_type = "", ""
        session.flush()
    return company


def company_logo(session: Session) -> tuple[bytes, str] | None:
    """The company's logo as ``(bytes, MIME type)``, or None when it has none.

    A logo whose file is missing from the store (or damaged) counts as none, with a
    warning in the log, so documents still print.
    """
    company = current_company(session)
    if not company.logo_sha256:
        return None
    try:
        return file_store(session).get(company.logo_sha256), company.logo_type
    except OSError as exc:
        log.warning("the company logo %s cannot be read: %s", company.logo_sha256, exc)
        return None
