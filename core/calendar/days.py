"""Keeping the calendar: adding holidays and make-up working days, deleting them, importing a CSV.

Every change needs ``calendar.manage``, is checked completely before anything is written
(a range or a file with one bad day changes nothing) and is recorded in the audit log.
Refusals carry their problems as :class:`Problem` values — an English template with its
values kept apart — so the API answers in English and the screens word the same
problem in the user's language.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.calendar import company_for
from core.labels import N_
from core.models import CALENDAR_DAY_KINDS, CalendarDay, User
from core.services import NotFound, ServiceError, audit

#: The longest range one "add days" may cover (a year); longer is surely a typing mistake.
MAX_RANGE_DAYS = 366
#: The longest name a calendar day may have (the column's size).
MAX_NAME = 100
#: The largest CSV accepted, and the most days one file may bring (ten years of them).
MAX_CSV_BYTES = 256 * 1024
MAX_CSV_ROWS = 3660

#: The CSV's columns, in order.
CSV_COLUMNS = ("date", "kind", "name")
#: What the ``kind`` column may say: the codes, and the words Chinese calendars use.
KIND_WORDS = {
    "holiday": "holiday",
    "workday": "workday",
    "休": "holiday",
    "假": "holiday",
    "节假日": "holiday",
    "放假": "holiday",
    "班": "workday",
    "上班": "workday",
    "调休上班": "workday",
    "补班": "workday",
}
#: An example file: China's 2026 National Day holiday and its make-up working days.
CSV_TEMPLATE = (
    "date,kind,name\n"
    "2026-09-20,workday,国庆节调休上班\n"
    "2026-10-01,holiday,国庆节\n"
    "2026-10-02,holiday,国庆节\n"
    "2026-10-05,holiday,国庆节\n"
    "2026-10-10,workday,国庆节调休上班\n"
)

_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")


@dataclass(frozen=True)
class Problem:
    """One reason a change was refused: ``template % values`` in English, for ``field``.

    ``line`` is the CSV line it was found on (the header is line 1), when it came from a file.
    """

    field: str
    template: str
    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    line: int | None = None

    def english(self) -> str:
        """The problem in English, prefixed with its line when it has one."""
        text = self.template % dict(self.values)
        return f"line {self.line}: {text}" if self.line is not None else text


class Refused(ServiceError):
    """A refused change (calendar or company record) and every problem found, by field."""

    def __init__(self, message: str, problems: Sequence[Problem], status: int = 422):
        details: dict[str, list[str]] = {}
        for problem in problems:
            details.setdefault(problem.field, []).append(problem.english())
        super().__init__("invalid", message, details, status=status)
        self.problems = list(problems)


@dataclass(frozen=True)
class ImportResult:
    """What an import did: the days added, and how many rows were already in the calendar."""

    added: list[CalendarDay]
    unchanged: int


def require_manager(actor: User | None) -> User:
    """``actor`` if they hold ``calendar.manage``; a 403 refusal otherwise."""
    if actor is None or not actor.active or not actor.can("calendar.manage"):
        raise ServiceError("forbidden", "managing the working calendar needs permission calendar.manage", status=403)
    return actor


def list_days(session: Session, start: dt.date, end: dt.date, company_id: int | None = None) -> list[CalendarDay]:
    """The company's holidays and make-up working days from ``start`` to ``end``, by date."""
    company = company_for(session, company_id)
    return list(
        session.scalars(
            select(CalendarDay)
            .where(CalendarDay.company_id == company.id, CalendarDay.day >= start, CalendarDay.day <= end)
            .order_by(CalendarDay.day)
        )
    )


def has_control_characters(text: str, allowed: frozenset[str] = frozenset()) -> bool:
    """Whether ``text`` holds a control character (C0, DEL or C1) other than those ``allowed``.

    They are invisible, break exports and PDFs, and PostgreSQL refuses NUL outright, so
    names and letterhead text are refused with them whichever way they come in.
    """
    return any((ord(c) < 32 or 0x7F <= ord(c) < 0xA0) and c not in allowed for c in text)


def _check_kind_and_name(kind: str, name: str, line: int | None = None) -> list[Problem]:
    problems = []
    if kind not in CALENDAR_DAY_KINDS:
        problems.append(
            Problem("kind", N_("Kind must be “holiday” or “workday”, not “%(kind)s”."), {"kind": kind}, line)
        )
    if has_control_characters(name):
        problems.append(Problem("name", N_("Remove control characters (invisible codes) from this text."), line=line))
    elif len(name) > MAX_NAME:
        problems.append(Problem("name", N_("The name is longer than %(max)s characters."), {"max": MAX_NAME}, line))
    return problems


def _existing(session: Session, company_id: int, days: Sequence[dt.date]) -> dict[dt.date, CalendarDay]:
    if not days:
        return {}
    rows = session.scalars(
        select(CalendarDay).where(
            CalendarDay.company_id == company_id, CalendarDay.day >= min(days), CalendarDay.day <= max(days)
        )
    )
    wanted = set(days)
    return {row.day: row for row in rows if row.day in wanted}


def _conflict(day: dt.date, existing: CalendarDay, line: int | None = None) -> Problem:
    return Problem(
        "day",
        N_("%(day)s is already in the calendar as a %(kind)s (“%(name)s”); delete it first."),
        {"day": day.isoformat(), "kind": existing.kind, "name": existing.name},
        line,
    )


def add_days(
    session: Session,
    actor: User | None,
    start: dt.date,
    end: dt.date | None,
    kind: str,
    name: str = "",
    company_id: int | None = None,
) -> list[CalendarDay]:
    """Mark every day from ``start`` to ``end`` (inclusive; one day when ``end`` is None) as ``kind``.

    A day already in the calendar with the same kind and name is left as it is; one
    that says something else refuses the whole range (delete it first), so a range is
    added completely or not at all. Returns the days added.
    """
    require_manager(actor)
    name = (name or "").strip()
    end = end or start
    problems = _check_kind_and_name(kind, name)
    if end < start:
        problems.append(Problem("to", N_("The last day is before the first day.")))
    elif (end - start).days + 1 > MAX_RANGE_DAYS:
        problems.append(
            Problem(
                "to",
                N_("A range may cover at most %(max)s days; add longer periods in parts."),
                {"max": MAX_RANGE_DAYS},
            )
        )
    if problems:
        raise Refused("the calendar days are not valid", problems)
    company = company_for(session, company_id)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    existing = _existing(session, company.id, days)
    conflicts = [_conflict(d, row) for d, row in sorted(existing.items()) if (row.kind, row.name) != (kind, name)]
    if conflicts:
        raise Refused("some of the days are already in the calendar", conflicts, status=409)
    added = [CalendarDay(company_id=company.id, day=d, kind=kind, name=name) for d in days if d not in existing]
    session.add_all(added)
    session.flush()
    if added:
        audit.record(
            session,
            actor,
            "calendar",
            company.id,
            "add_days",
            {"from": start, "to": end, "kind": kind, "name": name, "days": len(added)},
        )
    return added


def get_day(session: Session, day_id: int) -> CalendarDay:
    """Calendar day ``day_id``; 404 when there is none."""
    row = session.get(CalendarDay, day_id)
    if row is None:
        raise NotFound("calendar day", day_id)
    return row


def delete_day(session: Session, actor: User | None, day_id: int) -> CalendarDay:
    """Remove a holiday or make-up working day; the day follows the weekly pattern again."""
    require_manager(actor)
    row = get_day(session, day_id)
    audit.record(session, actor, "calendar_day", row.id, "delete", {"day": row.day, "kind": row.kind, "name": row.name})
    session.delete(row)
    session.flush()
    return row


# --- importing a file --------------------------------------------------------------------


def _decode(data: bytes) -> str:
    """The file's text: UTF-8 (with or without the BOM Excel writes), else GB18030 (Chinese Excel)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise Refused(
            "the file is not text", [Problem("file", N_("The file is not a CSV text file (UTF-8 or GBK)."))]
        ) from None


def parse_date(text: str) -> dt.date | None:
    """``2026-10-01``, ``2026/10/1`` or ``2026.10.01`` as a date; None if it is not one."""
    match = _DATE.match(text.strip())
    if not match:
        return None
    try:
        return dt.date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def _read_rows(text: str) -> tuple[list[tuple[int, dt.date, str, str]], list[Problem]]:
    """The file's days as (line, date, kind, name), and every problem found on the way."""
    reader = csv.reader(io.StringIO(text))
    try:
        return _read_days(reader)
    except csv.Error:
        # A field longer than the csv module's limit (128 K characters), for one.
        return [], [
            Problem(
                "file",
                N_("This line cannot be read as CSV (a field is far too long or a quote is not closed)."),
                line=max(reader.line_num, 1),
            )
        ]


def _read_days(reader: Any) -> tuple[list[tuple[int, dt.date, str, str]], list[Problem]]:
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header] != list(CSV_COLUMNS):
        return [], [Problem("file", N_("The first line must be the header “date,kind,name”."), line=1)]
    rows: list[tuple[int, dt.date, str, str]] = []
    problems: list[Problem] = []
    seen: dict[dt.date, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(rows) >= MAX_CSV_ROWS:
            problems.append(Problem("file", N_("A file may hold at most %(max)s days."), {"max": MAX_CSV_ROWS}, line))
            break
        if len(cells) not in (2, 3):
            problems.append(
                Problem(
                    "file", N_("Expected 3 columns (date,kind,name), found %(count)s."), {"count": len(cells)}, line
                )
            )
            continue
        day = parse_date(cells[0])
        kind = KIND_WORDS.get(cells[1].strip().lower(), cells[1].strip())
        name = cells[2].strip() if len(cells) == 3 else ""
        found = _check_kind_and_name(kind, name, line)
        if day is None:
            found.insert(0, Problem("date", N_("“%(date)s” is not a date like 2026-10-01."), {"date": cells[0]}, line))
        elif day in seen:
            found.insert(
                0,
                Problem(
                    "date", N_("%(day)s is also on line %(other)s."), {"day": day.isoformat(), "other": seen[day]}, line
                ),
            )
        else:
            seen[day] = line
        problems.extend(found)
        if not found and day is not None:
            rows.append((line, day, kind, name))
    return rows, problems


def import_days(session: Session, actor: User | None, data: bytes, company_id: int | None = None) -> ImportResult:
    """Add the days of a CSV file (``date,kind,name``), all of them or none.

    Every problem is reported with its line number; rows already in the calendar with the
    same kind and name are skipped, so importing a file twice changes nothing.
    """
    require_manager(actor)
    if len(data) > MAX_CSV_BYTES:
        raise Refused(
            "the file is too large",
            [Problem("file", N_("The file is larger than %(max)s KB."), {"max": MAX_CSV_BYTES // 1024})],
            status=413,
        )
    rows, problems = _read_rows(_decode(data))
    company = company_for(session, company_id)
    existing = _existing(session, company.id, [day for _line, day, _kind, _name in rows])
    for line, day, kind, name in rows:
        row = existing.get(day)
        if row is not None and (row.kind, row.name) != (kind, name):
            problems.append(_conflict(day, row, line))
    if not rows and not problems:
        problems.append(Problem("file", N_("The file holds no days.")))
    if problems:
        problems.sort(key=lambda p: p.line or 0)
        raise Refused("the file was not imported; nothing was changed", problems)
    added = [CalendarDay(company_id=company.id, day=d, kind=k, name=n) for _l, d, k, n in rows if d not in existing]
    session.add_all(added)
    session.flush()
    if not added:
        return ImportResult([], len(rows))
    audit.record(
        session,
        actor,
        "calendar",
        company.id,
        "import_days",
        {
            "days": len(added),
            "holidays": sum(1 for d in added if d.kind == "holiday"),
            "workdays": sum(1 for d in added if d.kind == "workday"),
            "unchanged": len(rows) - len(added),
        },
    )
    return ImportResult(added, len(rows) - len(added))
