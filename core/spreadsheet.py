"""Cells that a spreadsheet program shows as data and never runs: the one place every
CSV and XLSX writer of Ordo and its plugins takes its cell values from.

Text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be read
as a formula by Excel, WPS or LibreOffice (``=HYPERLINK(…)``, ``=cmd|' /C calc'!A0``).
As OWASP's CSV-injection guidance recommends, such text gets a leading ``'``, in CSV
and XLSX alike, and XLSX text cells are also stored as strings (type ``s``), never as
formulas. Numbers and dates stay numbers and dates, so ``-12.50`` is still a number.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

#: Text starting with one of these would be run as a formula by a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: Any) -> Any:
    """``value`` made safe for a spreadsheet: text that would be a formula gets a leading ``'``.

    Anything that is not text (numbers, dates, None) is returned as it is.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def cell_value(value: Any) -> Any:
    """What a cell holds for ``value``: numbers and dates as such, None as empty, anything
    else as :func:`safe_text` of its text (booleans as ``true``/``false``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | Decimal | float | dt.date):
        return value
    return safe_text(str(value))


def xlsx_cell(sheet: Any, value: Any, *, bold: bool = False) -> WriteOnlyCell:
    """A write-only XLSX cell for ``value`` (see :func:`cell_value`); text is typed as a
    string so openpyxl never writes it as a formula."""
    shown = cell_value(value)
    cell = WriteOnlyCell(sheet, value=shown)
    if isinstance(shown, str):
        cell.data_type = "s"
    if bold:
        cell.font = Font(bold=True)
    return cell
