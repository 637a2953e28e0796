"""Downloads of the KPI screens' tables as CSV or XLSX (every dashboard table is exportable).

Why here and not only core's ``core.views.export``: kpi's tables (tiles, trends,
breakdowns, drill-downs, reports) all go through these two functions so that every kpi
download behaves alike — a UTF-8 BOM in CSV so Excel reads the Chinese names, numbers left
as numbers in XLSX, and **formula injection neutralised**: a text cell starting with
``=``, ``+``, ``-``, ``@`` (or a tab / carriage return) is prefixed with ``'`` so a
customer named ``=HYPERLINK(…)`` never becomes a live formula on a manager's desktop.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import quote

from flask import Response, stream_with_context
from openpyxl import Workbook

from core.spreadsheet import cell_value, safe_text, xlsx_cell

#: The formats offered.
FORMATS = ("csv", "xlsx")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Kept for callers of the plugin: core's spreadsheet-safe text (one rule for every export).
neutralise = safe_text


def _disposition(filename: str) -> dict[str, str]:
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace("?", "_").replace('"', "_")
    return {"Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"}


def _named(filename: str, extension: str) -> str:
    return filename if filename.endswith(f".{extension}") else f"{filename}.{extension}"


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The CSV text of ``header`` and ``rows``, starting with a BOM, a chunk per row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow([cell_value(h) for h in header])
    for row in rows:
        writer.writerow([cell_value(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def xlsx_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "KPI") -> bytes:
    """A workbook with one sheet ``title``: ``header`` then ``rows``; text cells are never formulas."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=(title or "KPI")[:31])
    sheet.append([xlsx_cell(sheet, h) for h in header])
    for row in rows:
        sheet.append([xlsx_cell(sheet, value) for value in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def csv_response(filename: str, header: list[str], rows: Iterable[Sequence[Any]]) -> Response:
    """A CSV download (UTF-8 with BOM, streamed) of ``rows`` under ``header``, named ``filename``."""
    return Response(
        stream_with_context(csv_lines(header, rows)),
        mimetype="text/csv",
        headers=_disposition(_named(filename, "csv")),
    )


def xlsx_response(filename: str, header: list[str], rows: Iterable[Sequence[Any]]) -> Response:
    """An XLSX download of ``rows`` under ``header``, named ``filename`` (its sheet too)."""
    name = _named(filename, "xlsx")
    sheet = name.removesuffix(".xlsx").replace("/", "-").replace(":", "-")
    for forbidden in "\\?*[]":
        sheet = sheet.replace(forbidden, "-")
    return Response(xlsx_bytes(header, rows, sheet), mimetype=XLSX_TYPE, headers=_disposition(name))


def export_response(fmt: str, filename: str, header: list[str], rows: Iterable[Sequence[Any]]) -> Response:
    """:func:`csv_response` or :func:`xlsx_response` by ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "xlsx":
        return xlsx_response(filename, header, rows)
    return csv_response(filename, header, rows)


__all__ = ["FORMATS", "csv_response", "export_response", "neutralise", "xlsx_response"]
