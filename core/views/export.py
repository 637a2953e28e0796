"""List exports as CSV or XLSX: one building block every list screen (core's and
plugins') uses. CSV streams row by row; XLSX is assembled in memory (openpyxl's
write-only mode keeps that small) because a workbook is a zip written at the end.

Every cell goes through :mod:`core.spreadsheet`: text that a spreadsheet would run as a
formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) gets a leading
``'`` and XLSX text is typed as text, so an order reference such as ``=HYPERLINK(…)``
cannot become a live formula on somebody's desktop.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from flask import Response, stream_with_context
from openpyxl import Workbook

from core.clock import company_now
from core.spreadsheet import safe_text, xlsx_cell

FORMATS = ("csv", "xlsx")


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # a BOM, so spreadsheet programs read the Chinese as UTF-8
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_text(v) for v in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _xlsx(header: Sequence[str], rows: Iterable[Sequence[Any]], title: str) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.append(list(header))
    for row in rows:
        sheet.append([xlsx_cell(sheet, value) for value in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def export_response(fmt: str, basename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """A download of ``rows`` under ``header`` as ``fmt`` (``csv`` or ``xlsx``)."""
    filename = f"{basename}-{company_now().date().isoformat()}.{fmt}"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if fmt == "xlsx":
        return Response(
            _xlsx(header, rows, basename),
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers=disposition,
        )
    return Response(stream_with_context(_csv(header, rows)), mimetype="text/csv", headers=disposition)
