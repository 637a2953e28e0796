"""Batch import of orders from CSV and XLSX files (DOMAIN.md IN-1, IN-2): the service layer.

Three steps, so a screen can show every problem before anything is written:

1. :func:`read_rows` reads the file (recognised by its content, never by its name) into
   :class:`ImportRow` objects keyed by canonical column names; a file that is not CSV or
   XLSX, too large, or has unknown columns is refused with a :class:`ServiceError`.
2. :func:`preview` groups the rows into orders by the ``order`` column and validates
   each order exactly as core's ``create_order`` would (the same input schema and the
   same customer, product and amount checks), plus the import's own checks (cell types,
   consistent header values, the actor's scope, duplicate references). It writes
   nothing and takes no order number.
3. :func:`commit` creates the orders through core's ``create_order`` (drafts, audited by
   core), all or nothing (``mode="all"``) or only the valid ones (``mode="valid"``).

:func:`error_report` gives back the rows with their errors as an XLSX workbook. Every
error carries a stable ``code`` (for translations) and an English ``message``.
Services never commit: the caller's transaction decides.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from openpyxl import Workbook, load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.labels import N_
from core.models import PAYMENT_METHODS, URGENCIES, Customer, Order, Product, User
from core.services import ServiceError
from core.services.orders import (
    build_lines,
    create_order,
    load_order_input,
    recompute_within_limits,
    resolve_customer,
)
from core.spreadsheet import FORMULA_STARTS, xlsx_cell

#: The largest file accepted by default (bytes).
MAX_BYTES = 5 * 1024 * 1024
#: The most data rows accepted by default.
MAX_ROWS = 5000
#: The most columns read from an XLSX sheet (there are far fewer known columns).
MAX_COLUMNS = 100
#: An XLSX may unpack to at most this many times the upload limit (real ones: 3-8 times).
UNPACK_RATIO = 20
#: The columns an XLSX sheet can have (A to XFD).
_SHEET_COLUMNS = 16_384
#: The channels an imported order may record (portal and API orders arrive by themselves).
IMPORT_CHANNELS = ("phone", "email", "fax", "offline")
#: The channel of a row that gives none.
DEFAULT_CHANNEL = "offline"
#: The permission an importing user needs (besides ``orders.create``).
PERMISSION = "intake.orders.import"

#: Order header columns: one value per order; rows of one order repeat it or leave it blank.
HEADER_COLUMNS = (
    "customer",
    "channel",
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
)
#: Line columns: one order line per row.
LINE_COLUMNS = ("product", "quantity", "unit_price", "discount", "description")
#: Every known column; ``order`` is the key grouping rows into orders.
COLUMNS = ("order", *HEADER_COLUMNS, *LINE_COLUMNS)
#: Columns a file must have.
REQUIRED_COLUMNS = ("order", "customer", "product", "quantity")

#: Other names a header cell may use (compared case-insensitively, spaces = underscores).
ALIASES: dict[str, tuple[str, ...]] = {
    "order": ("订单号", "订单", "订单编号", "单号", "order_key", "order_no"),
    "customer": ("客户", "客户编码", "客户代码", "customer_code"),
    "channel": ("渠道", "来源渠道", "订单渠道"),
    "reference": ("参考号", "客户订单号", "合同号", "外部单号", "external_reference"),
    "requested_date": ("要求日期", "要求交货日期", "交货日期", "交期"),
    "payment_method": ("付款方式", "支付方式"),
    "currency": ("币种", "货币"),
    "urgency": ("紧急程度", "紧急"),
    "contact_name": ("联系人",),
    "contact_phone": ("联系电话", "联系人电话"),
    "ship_to_contact": ("收货人",),
    "ship_to_phone": ("收货电话", "收货人电话"),
    "ship_to_province": ("省份", "收货省份"),
    "ship_to_city": ("城市", "收货城市"),
    "ship_to_address": ("收货地址", "地址"),
    "note": ("备注",),
    "product": ("产品", "产品编码", "物料编码", "sku"),
    "quantity": ("数量",),
    "unit_price": ("单价",),
    "discount": ("折扣", "折扣率"),
    "description": ("说明", "行说明"),
}
#: Values a channel cell may hold besides the channel codes.
CHANNEL_ALIASES = {"电话": "phone", "邮件": "email", "电子邮件": "email", "e-mail": "email", "传真": "fax"}
CHANNEL_ALIASES |= {"线下": "offline", "线下签约": "offline"}
#: Values a payment-method cell may hold besides the codes.
PAYMENT_ALIASES = {
    "预付款": "prepayment",
    "预付": "prepayment",
    "货到付款": "cash_on_delivery",
    "月结": "monthly_settlement",
    "分期": "instalments",
    "分期付款": "instalments",
}
URGENCY_ALIASES = {"普通": "normal", "一般": "normal", "紧急": "urgent", "加急": "urgent"}

_LOOKUP = {c: c for c in COLUMNS} | {alias.lower(): c for c, names in ALIASES.items() for alias in names}
_XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MARKUP = re.compile(r"\s*<(!doctype|html|\?xml|table|head|body|meta)\b", re.IGNORECASE)
_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | dt.date


@dataclass
class RowError:
    """One problem with a row: a stable ``code``, the column, the English message.

    ``msgid`` and ``params`` word it again in the reader's language (``msgid`` is empty
    for a message core gave, which screens translate by pattern).
    """

    code: str
    column: str
    message: str
    msgid: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """The message as shown in lists and the error report."""
        return f"{self.column}: {self.message}" if self.column else self.message


@dataclass
class ImportRow:
    """One data row: its number as the user sees it (header = 1) and its values.

    ``values`` is keyed by canonical column name (text stripped, dates as ``date``);
    ``source`` keeps the file's own headers and cells for the error report.
    """

    number: int
    values: dict[str, Cell]
    source: dict[str, Any]
    errors: list[RowError] = field(default_factory=list)

    def value(self, column: str) -> Cell:
        """The row's value in ``column`` ('' when absent or blank)."""
        return self.values.get(column, "")

    def add(self, code: str, column: str, message: str, params: dict[str, Any] | None = None) -> None:
        """Record a problem, once per column (the first, most specific, wins).

        With ``params`` (even empty) ``message`` is intake's msgid, filled with them;
        without, it is a message core gave, kept as it is.
        """
        if column and any(e.column == column for e in self.errors):
            return
        if any(e.code == code and e.column == column for e in self.errors):
            return
        if params is None:
            self.errors.append(RowError(code, column, message))
        else:
            self.errors.append(RowError(code, column, message % params, message, dict(params)))


@dataclass
class OrderGroup:
    """The rows sharing one ``order`` key: one order to create."""

    key: str
    rows: list[ImportRow]
    #: The validated order input (``load_order_input``'s output) when the order has no errors.
    data: dict[str, Any] | None = None

    @property
    def valid(self) -> bool:
        """Whether the order can be created as it stands."""
        return self.data is not None and not any(row.errors for row in self.rows)

    @property
    def row_numbers(self) -> list[int]:
        """The numbers of the order's rows."""
        return [row.number for row in self.rows]


@dataclass
class ImportPreview:
    """What an import would do: every row with its errors, grouped into orders."""

    rows: list[ImportRow]
    orders: list[OrderGroup]

    @property
    def valid(self) -> bool:
        """Whether every order can be created (an all-or-nothing import would succeed)."""
        return bool(self.orders) and all(order.valid for order in self.orders)

    @property
    def error_rows(self) -> list[ImportRow]:
        """The rows with at least one error."""
        return [row for row in self.rows if row.errors]


@dataclass
class SkippedOrder:
    """An order of the file that was not created, with its rows and reasons.

    ``problems`` pairs each reason with the row it is about (None: the whole order).
    """

    key: str
    rows: list[int]
    problems: list[tuple[int | None, RowError]]

    @property
    def errors(self) -> list[str]:
        """The reasons in English, each prefixed with its row."""
        return [f"row {n}: {e.text()}" if n is not None else e.text() for n, e in self.problems]


@dataclass
class ImportResult:
    """What :func:`commit` did: the numbers of the created orders and the skipped ones."""

    mode: str
    created: list[str] = field(default_factory=list)
    skipped: list[SkippedOrder] = field(default_factory=list)

    @property
    def written(self) -> bool:
        """Whether any order was created."""
        return bool(self.created)


class ImportRefused(ServiceError):
    """A whole file refused (422); ``msgid`` and ``params`` word it in the reader's language."""

    def __init__(self, code: str, msgid: str, params: dict[str, Any], details: Any = None):
        super().__init__(code, msgid % params, details, status=422)
        self.msgid = msgid
        self.params = params


def _refuse(code: str, msgid: str, details: Any = None, **params: Any) -> ImportRefused:
    return ImportRefused(code, msgid, params, details)


# -- reading -------------------------------------------------------------------------------


def read_rows(filename: str, data: bytes, *, max_bytes: int = MAX_BYTES, max_rows: int = MAX_ROWS) -> list[ImportRow]:
    """The data rows of a CSV or XLSX file, recognised by content; refuse anything else.

    CSV may be UTF-8 (with or without BOM) or GB18030, separated by commas, semicolons or
    tabs. XLSX is read from its first sheet (stored values, not formulas). The first row
    holds the column names (see :data:`COLUMNS` and :data:`ALIASES`). Raises
    :class:`ServiceError` (422) with code ``file_too_large``, ``file_empty``,
    ``file_type_unsupported``, ``too_many_rows``, ``unknown_columns``, ``duplicate_columns``
    or ``missing_columns``.
    """
    name = filename or "the file"
    if len(data) > max_bytes:
        raise _refuse(
            "file_too_large",
            N_("%(name)s is %(size)s bytes; at most %(limit)s bytes may be imported at once."),
            {"size": len(data), "limit": max_bytes},
            name=name,
            size=f"{len(data):,}",
            limit=f"{max_bytes:,}",
        )
    if not data.strip():
        raise _refuse("file_empty", N_("%(name)s is empty."), name=name)
    if data.startswith(b"PK\x03\x04"):
        table = _xlsx_table(name, data, max_bytes, max_rows)
    elif data.startswith(_XLS_MAGIC):
        raise _refuse(
            "file_type_unsupported",
            N_("%(name)s is an old Excel (.xls) workbook; save it as .xlsx or CSV and retry."),
            name=name,
        )
    else:
        table = _csv_table(name, data)
    return _rows_from_table(name, table, max_rows)


def _xlsx_table(name: str, data: bytes, max_bytes: int, max_rows: int) -> list[list[Any]]:
    """The first sheet's cells, read no further than the limits allow.

    An XLSX is a zip: a few kilobytes may unpack to gigabytes, or name one cell at
    ``XFD1048576`` that a reader would pad into a billion empty cells. So the members'
    unpacked size is checked before anything is read (Python's zip reader stops at the
    declared size), and the sheet is read row by row only up to ``max_rows`` + 2 rows
    and :data:`MAX_COLUMNS` + 1 columns (the header row across the sheet's full width, one
    row of 16,384 cells at most); a column named or filled beyond the limit is refused.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.namelist()
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise _refuse(
            "file_type_unsupported", N_("%(name)s is a damaged zip file, not an XLSX workbook."), name=name
        ) from None
    if "xl/workbook.xml" not in entries:
        raise _refuse("file_type_unsupported", N_("%(name)s is a zip archive but not an XLSX workbook."), name=name)
    if unpacked > UNPACK_RATIO * max_bytes:
        raise _refuse(
            "file_too_large",
            N_("%(name)s unpacks to %(size)s bytes; it is too large to import."),
            name=name,
            size=f"{unpacked:,}",
        )
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a damaged workbook
        raise _refuse(
            "file_type_unsupported", N_("%(name)s could not be read as an XLSX workbook."), name=name
        ) from None
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise _refuse("file_empty", N_("%(name)s has no worksheet."), name=name)
        try:
            header = next(sheet.iter_rows(max_row=1, max_col=_SHEET_COLUMNS, values_only=True), ())
            table = [
                list(row) for row in sheet.iter_rows(max_row=max_rows + 2, max_col=MAX_COLUMNS + 1, values_only=True)
            ]
        except Exception:  # a damaged sheet (bad XML, bad cell references)
            raise _refuse(
                "file_type_unsupported", N_("%(name)s could not be read as an XLSX workbook."), name=name
            ) from None
    finally:
        workbook.close()
    named_beyond = any(_cell(v) != "" for v in header[MAX_COLUMNS:])
    if named_beyond or any(len(row) > MAX_COLUMNS and _cell(row[MAX_COLUMNS]) != "" for row in table):
        raise _refuse(
            "unknown_columns",
            N_("%(name)s has more than %(limit)s columns; only the known columns may be imported."),
            name=name,
            limit=MAX_COLUMNS,
        )
    width = max((i + 1 for row in table for i, v in enumerate(row) if _cell(v) != ""), default=0)
    return [row[:width] for row in table]


def _decode(name: str, data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _refuse(
            "file_type_unsupported", N_("%(name)s is UTF-16 text; save it as CSV (UTF-8) and retry."), name=name
        )
    if b"\x00" in data:
        raise _refuse("file_type_unsupported", N_("%(name)s is a binary file, not CSV or XLSX."), name=name)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _refuse(
        "file_type_unsupported", N_("%(name)s is neither UTF-8 nor GB18030 text, nor an XLSX workbook."), name=name
    )


def _csv_table(name: str, data: bytes) -> list[list[Any]]:
    text = _decode(name, data)
    if _MARKUP.match(text):
        raise _refuse(
            "file_type_unsupported",
            N_("%(name)s is a web page (HTML/XML), not CSV or XLSX; export the data as CSV or XLSX."),
            name=name,
        )
    if any(ord(c) < 32 and c not in "\t\r\n" for c in text):
        raise _refuse("file_type_unsupported", N_("%(name)s holds binary data, not CSV text."), name=name)
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    try:
        return [list(row) for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
    except csv.Error as exc:
        raise _refuse(
            "file_type_unsupported",
            N_("%(name)s is not a readable CSV file (%(problem)s)."),
            name=name,
            problem=str(exc),
        ) from None


def _canonical(header: Any) -> str:
    text = str(header).strip() if header is not None else ""
    key = re.sub(r"[\s\-]+", "_", text.lower())
    return _LOOKUP.get(key, _LOOKUP.get(text, ""))


def _cell(value: Any) -> Cell:
    """A cell as text (dates kept as dates); numbers as exact decimal text."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    text = str(value).strip()
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]  # the quote a spreadsheet-safe export (Ordo's error report) put there
    return text


def _rows_from_table(name: str, table: list[list[Any]], max_rows: int) -> list[ImportRow]:
    if not table or not any(_cell(v) != "" for v in table[0]):
        raise _refuse("file_empty", N_("%(name)s: the first row must hold the column names."), name=name)
    headers = table[0]
    body = table[1:]
    while body and not any(_cell(v) != "" for v in body[-1]):
        body.pop()
    if len(body) > max_rows:
        # A workbook is read only a little past the limit, so its true row count is unknown.
        raise _refuse(
            "too_many_rows",
            N_("%(name)s has more than %(limit)s rows; at most %(limit)s may be imported at once."),
            name=name,
            limit=f"{max_rows:,}",
        )
    columns: list[str] = []
    unknown: list[str] = []
    for index, header in enumerate(headers):
        label = _cell(header)
        canonical = _canonical(header)
        if label == "":
            has_data = any(index < len(row) and _cell(row[index]) != "" for row in body)
            if has_data:
                unknown.append(f"(column {index + 1} without a name)")
        elif not canonical:
            unknown.append(_text(label))
        columns.append(canonical)
    if unknown:
        raise _refuse(
            "unknown_columns",
            N_("%(name)s: unknown column(s) %(unknown)s. Known columns: %(known)s."),
            {"columns": unknown},
            name=name,
            unknown=", ".join(unknown),
            known=", ".join(COLUMNS),
        )
    named = [c for c in columns if c]
    duplicates = sorted({c for c in named if named.count(c) > 1})
    if duplicates:
        raise _refuse(
            "duplicate_columns",
            N_("%(name)s: column(s) given twice: %(columns)s."),
            {"columns": duplicates},
            name=name,
            columns=", ".join(duplicates),
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in named]
    if missing:
        raise _refuse(
            "missing_columns",
            N_("%(name)s: required column(s) missing: %(columns)s."),
            {"columns": missing},
            name=name,
            columns=", ".join(missing),
        )
    if not body:
        raise _refuse("file_empty", N_("%(name)s has column names but no rows."), name=name)
    rows: list[ImportRow] = []
    for number, raw in enumerate(body, start=2):
        cells = [_cell(v) for v in raw]
        if not any(c != "" for c in cells):
            continue  # a blank row separates nothing and is not an error
        values: dict[str, Cell] = {}
        source: dict[str, Any] = {}
        for index, column in enumerate(columns):
            value = cells[index] if index < len(cells) else ""
            source[_text(_cell(headers[index])) or f"column {index + 1}"] = value
            if column:
                values[column] = value
        rows.append(ImportRow(number, values, source))
    return rows


# -- preview -------------------------------------------------------------------------------


def _require_importer(actor: User) -> None:
    if actor.customer_id is not None or not (actor.can(PERMISSION) and actor.can("orders.create")):
        raise ServiceError("forbidden", "you may not import orders", status=403)


def _in_scope(actor: User, customer: Customer) -> bool:
    """Whether an order created by ``actor`` for ``customer`` lies in ``actor``'s data scope.

    Mirrors ``order_scope`` for the order ``create_order`` would make (its branch is the
    customer's, else the actor's; its creator is the actor).
    """
    for role in actor.roles:
        scope = role.data_scope
        if scope in ("all", "own"):
            return True
        if scope == "branch" and actor.branch_id is not None:
            if (customer.branch_id or actor.branch_id) == actor.branch_id:
                return True
        elif scope == "department" and actor.department_id is not None:
            return True
    return False


def _text(value: Cell) -> str:
    return value.isoformat() if isinstance(value, dt.date) else value


def _decimal(row: ImportRow, column: str, required: bool = False) -> Decimal | None:
    value = row.value(column)
    if value == "":
        if required:
            row.add(f"{column}_missing", column, N_("Give a value in column %(column)s."), {"column": column})
        return None
    text = _text(value).replace(",", "").replace("，", "")
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        row.add(f"{column}_not_number", column, N_("%(value)r is not a number."), {"value": _text(value)})
        return None
    return number


def _parse_date(value: Cell) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    match = _DATE.match(value)
    if not match:
        return None
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _header_values(group: OrderGroup) -> dict[str, tuple[Cell, list[ImportRow]]]:
    """Each header column's value in ``group`` and the rows giving it; flag disagreements."""
    found: dict[str, tuple[Cell, list[ImportRow]]] = {}
    for column in HEADER_COLUMNS:
        for row in group.rows:
            value = row.value(column)
            if value == "":
                continue
            if column not in found:
                found[column] = (value, [row])
            elif value == found[column][0]:
                found[column][1].append(row)
            else:
                first = found[column][1][0]
                row.add(
                    "inconsistent_value",
                    column,
                    N_("%(value)r differs from %(first)r in row %(row)s of the same order %(order)r."),
                    {"value": _text(value), "first": _text(found[column][0]), "row": first.number, "order": group.key},
                )
    return found


def _header_rows(found: dict[str, tuple[Cell, list[ImportRow]]], column: str, group: OrderGroup) -> list[ImportRow]:
    return found[column][1] if column in found else group.rows[:1]


def _coded(
    found: dict[str, tuple[Cell, list[ImportRow]]],
    column: str,
    allowed: Sequence[str],
    aliases: dict[str, str],
    default: str | None = None,
) -> str | None:
    if column not in found:
        return default
    raw = _text(found[column][0])
    value = aliases.get(raw, aliases.get(raw.lower(), raw.lower()))
    if value not in allowed:
        for row in found[column][1]:
            row.add(
                f"{column}_not_allowed",
                column,
                N_("%(value)r is not one of %(allowed)s."),
                {"value": raw, "allowed": ", ".join(allowed)},
            )
        return None
    return value


def _add_details(group: OrderGroup, found: dict[str, Any], line_rows: list[ImportRow], details: Any) -> None:
    """Attach a core validation error's per-field messages to the rows they concern."""

    def messages(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [m for v in value.values() for m in messages(v)]
        if isinstance(value, list | tuple):
            return [m for v in value for m in messages(v)]
        return [str(value)]

    if not isinstance(details, dict):
        for row in group.rows[:1]:
            for message in messages(details):
                row.add("invalid", "", message)
        return
    for key, value in details.items():
        if key == "lines" and isinstance(value, dict):
            for index, fields in value.items():
                row = line_rows[int(index)]
                for column, msgs in fields.items() if isinstance(fields, dict) else [("", fields)]:
                    for message in messages(msgs):
                        row.add(f"invalid_{column}" if column else "invalid_line", column, message)
        elif key == "ship_to" and isinstance(value, dict):
            for part, msgs in value.items():
                column = f"ship_to_{part}"
                for row in _header_rows(found, column, group):
                    for message in messages(msgs):
                        row.add(f"invalid_{column}", column, message)
        else:
            column = str(key) if str(key) in COLUMNS or key == "lines" else ""
            for row in _header_rows(found, column, group) if column in HEADER_COLUMNS else group.rows[:1]:
                for message in messages(value):
                    row.add(f"invalid_{column or 'order'}", column, message)


def _check_group(
    session: Session, actor: User, group: OrderGroup, references: dict[tuple[int, str, str], OrderGroup]
) -> None:
    found = _header_values(group)
    body: dict[str, Any] = {}
    customer: Customer | None = None
    # Customer: known, active, in the actor's scope.
    if "customer" not in found:
        group.rows[0].add("customer_missing", "customer", N_("Give the customer's code."), {})
    else:
        code = _text(found["customer"][0])
        customer = session.scalar(select(Customer).where(Customer.code == code))
        problem = None
        if customer is None:
            problem = ("customer_unknown", N_("Unknown customer %(code)r."))
        elif not customer.active:
            problem = ("customer_inactive", N_("Customer %(code)s is deactivated."))
        elif not _in_scope(actor, customer):
            problem = ("customer_out_of_scope", N_("Customer %(code)s is outside your data scope."))
        if problem:
            customer = None
            for row in found["customer"][1]:
                row.add(problem[0], "customer", problem[1], {"code": code})
        body["customer"] = code
    channel = _coded(found, "channel", IMPORT_CHANNELS, CHANNEL_ALIASES, DEFAULT_CHANNEL)
    if channel:
        body["channel"] = channel
    payment = _coded(found, "payment_method", PAYMENT_METHODS, PAYMENT_ALIASES)
    if payment:
        body["payment_method"] = payment
    elif "payment_method" not in found:
        group.rows[0].add(
            "payment_method_missing",
            "payment_method",
            N_("Give a payment method (%(allowed)s)."),
            {"allowed": ", ".join(PAYMENT_METHODS)},
        )
    urgency = _coded(found, "urgency", URGENCIES, URGENCY_ALIASES)
    if urgency:
        body["urgency"] = urgency
    if "requested_date" in found:
        date = _parse_date(found["requested_date"][0])
        if date is None:
            for row in found["requested_date"][1]:
                row.add(
                    "date_invalid",
                    "requested_date",
                    N_("%(value)r is not a date; write it as YYYY-MM-DD."),
                    {"value": _text(found["requested_date"][0])},
                )
        else:
            body["requested_date"] = date.isoformat()
    for column in ("reference", "currency", "contact_name", "contact_phone", "note"):
        if column in found:
            body[column] = _text(found[column][0])
    ship_to = {
        c[len("ship_to_") :]: _text(found[c][0]) for c in HEADER_COLUMNS if c.startswith("ship_to_") and c in found
    }
    if ship_to:
        body["ship_to"] = ship_to
    # Duplicate external reference: within the file, and already in the database.
    reference = str(body.get("reference", "")).strip()
    if customer is not None and channel and reference:
        ref_rows = found["reference"][1]
        earlier = references.setdefault((customer.id, channel, reference), group)
        if earlier is not group:
            for row in ref_rows:
                row.add(
                    "reference_duplicate_in_file",
                    "reference",
                    N_(
                        "Reference %(reference)r is also used by order %(order)r (row %(row)s) "
                        "for the same customer and channel."
                    ),
                    {"reference": reference, "order": earlier.key, "row": earlier.rows[0].number},
                )
        existing = session.scalar(
            select(Order.number).where(
                Order.customer_id == customer.id, Order.channel == channel, Order.reference == reference
            )
        )
        if existing:
            for row in ref_rows:
                row.add(
                    "reference_exists",
                    "reference",
                    N_("Order %(number)s already has reference %(reference)r for this customer and channel."),
                    {"number": existing, "reference": reference},
                )
    # Lines: one per row; a row whose cells are bad is left out of core's validation.
    lines: list[dict[str, Any]] = []
    line_rows: list[ImportRow] = []
    for row in group.rows:
        before = len(row.errors)
        sku = _text(row.value("product"))
        if not sku:
            row.add("product_missing", "product", N_("Give the product's SKU."), {})
        else:
            product = session.scalar(select(Product).where(Product.sku == sku))
            if product is None:
                row.add("product_unknown", "product", N_("Unknown product %(sku)r."), {"sku": sku})
            elif not product.active:
                row.add("product_inactive", "product", N_("Product %(sku)s is deactivated."), {"sku": sku})
        quantity = _decimal(row, "quantity", required=True)
        if quantity is not None and quantity <= 0:
            row.add("quantity_not_positive", "quantity", N_("Quantity must be greater than zero."), {})
        unit_price = _decimal(row, "unit_price")
        discount = _decimal(row, "discount")
        if any(e.column in LINE_COLUMNS for e in row.errors[before:]):
            continue
        line: dict[str, Any] = {"product": sku, "quantity": str(quantity)}
        if unit_price is not None:
            line["unit_price"] = str(unit_price)
        if discount is not None:
            line["discount"] = str(discount)
        if row.value("description"):
            line["description"] = _text(row.value("description"))
        lines.append(line)
        line_rows.append(row)
    body["lines"] = lines
    # Core's own validation: the input schema, then create_order's checks, without writing.
    try:
        data = load_order_input(body)
    except ServiceError as exc:
        _add_details(group, found, line_rows, exc.details)
        return
    if any(row.errors for row in group.rows):
        return
    try:
        with session.no_autoflush:
            resolve_customer(session, data["customer"])
            draft = Order(currency=data["currency"])
            draft.lines = build_lines(session, data["lines"])
            recompute_within_limits(draft)
            draft.lines = []
    except ServiceError as exc:
        _add_details(group, found, line_rows, exc.details)
        return
    group.data = data


def preview(session: Session, actor: User, rows: Iterable[ImportRow]) -> ImportPreview:
    """Group ``rows`` into orders by their ``order`` column and validate each; write nothing.

    Returns copies of the rows, each with its errors. Raises :class:`ServiceError` (403)
    when ``actor`` may not import orders (portal users never may).
    """
    return _validate(session, actor, rows)


def _validate(session: Session, actor: User, rows: Iterable[ImportRow]) -> ImportPreview:
    _require_importer(actor)
    copies = [ImportRow(row.number, dict(row.values), dict(row.source)) for row in rows]
    groups: dict[str, OrderGroup] = {}
    loose: list[OrderGroup] = []
    for row in copies:
        key = _text(row.value("order"))
        if not key:
            row.add("order_key_missing", "order", N_("Give the order key that groups this row with its order."), {})
            loose.append(OrderGroup(f"(row {row.number})", [row]))
            continue
        groups.setdefault(key, OrderGroup(key, [])).rows.append(row)
    references: dict[tuple[int, str, str], OrderGroup] = {}
    for group in groups.values():
        _check_group(session, actor, group, references)
    orders = sorted([*groups.values(), *loose], key=lambda g: g.rows[0].number)
    return ImportPreview(copies, orders)


# -- commit --------------------------------------------------------------------------------


def _reason(code: str, msgid: str) -> RowError:
    return RowError(code, "", msgid, msgid, {})


#: Why a valid order was not imported in an all-or-nothing import.
OTHERS_INVALID = _reason("others_invalid", N_("Not imported: other orders in the file have errors."))
NOTHING_IMPORTED = _reason("nothing_imported", N_("Nothing was imported."))


def _skipped(group: OrderGroup, *reasons: RowError) -> SkippedOrder:
    problems: list[tuple[int | None, RowError]] = [(row.number, e) for row in group.rows for e in row.errors]
    problems.extend((None, reason) for reason in reasons)
    return SkippedOrder(group.key, group.row_numbers, problems)


def commit(
    session: Session, actor: User, preview: ImportPreview, mode: Literal["all", "valid"] = "all"
) -> ImportResult:
    """Create the previewed orders as drafts through core's ``create_order``.

    The rows are validated again first (the database may have changed since the
    preview). ``mode="all"`` creates nothing unless every order is valid; ``mode="valid"``
    creates the valid orders and skips the others. Does not commit.
    """
    if mode not in ("all", "valid"):
        raise _refuse("invalid", N_("Unknown import mode %(mode)r; use 'all' or 'valid'."), mode=mode)
    fresh = _validate(session, actor, preview.rows)
    result = ImportResult(mode)
    if mode == "all" and not fresh.valid:
        result.skipped = [_skipped(g, OTHERS_INVALID) if g.valid else _skipped(g) for g in fresh.orders]
        return result
    outer = session.begin_nested()
    for group in fresh.orders:
        if not group.valid or group.data is None:
            result.skipped.append(_skipped(group))
            continue
        try:
            with session.begin_nested():
                order = create_order(session, actor, group.data)
        except ServiceError as exc:
            if mode == "all":
                outer.rollback()
                failed = RowError(exc.code, "", exc.message)
                skipped = [_skipped(g, failed, NOTHING_IMPORTED) if g is group else _skipped(g) for g in fresh.orders]
                return ImportResult(mode, [], skipped)
            result.skipped.append(_skipped(group, RowError(exc.code, "", exc.message)))
            continue
        result.created.append(order.number)
    outer.commit()
    return result


# -- error report --------------------------------------------------------------------------


def error_report(preview: ImportPreview, wording: Callable[[RowError], str] | None = None) -> bytes:
    """An XLSX workbook of every input row with its errors (messages and codes).

    Columns: ``row`` (the row number in the uploaded file), the file's own columns,
    ``errors`` (worded by ``wording`` — the screen passes the reader's language —
    else in English) and ``error codes`` (stable ids).
    """
    word = wording or RowError.text
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title="import errors")
    headers: list[str] = []
    for row in preview.rows:
        headers.extend(h for h in row.source if h not in headers)
    sheet.append([xlsx_cell(sheet, h, bold=True) for h in ["row", *headers, "errors", "error codes"]])
    for row in preview.rows:
        cells = [row.number, *(row.source.get(h, "") for h in headers)]
        cells += ["; ".join(word(e) for e in row.errors), "; ".join(e.code for e in row.errors)]
        sheet.append([xlsx_cell(sheet, v) for v in cells])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
