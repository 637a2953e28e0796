"""Intake's import wizard: upload a CSV/XLSX file, preview every order and row, import.

Thin views over :mod:`plugins.intake.importing`. The uploaded bytes are kept in the
instance file store between the steps; the form carries only their SHA-256, and the
server accepts only hashes this browser session uploaded. Every step reads and
validates the file again, so nothing the client sends back is trusted.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal

from flask import Response, abort, render_template, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.files import file_store
from core.models import Order, User
from core.services import ServiceError
from core.services.orders import build_lines, recompute_within_limits
from core.views.common import abort_for, current_actor, permission_required, screen_blueprint
from core.views.messages import localize
from core.web import db
from plugins.intake import importing
from plugins.intake.views import bp as screens

#: Nested in intake's screen blueprint (``/intake`` + ``/import``), so its endpoints are
#: ``intake.intake_import.<view>`` as the plugin contract asks of every menu endpoint.
bp = screen_blueprint("intake_import", __name__, url_prefix="/import", template_folder="templates")
screens.register_blueprint(bp)

#: The Flask-session key listing the hashes of the files this session uploaded.
_UPLOADS = "intake_import_uploads"
#: How many uploads a session remembers.
_KEEP = 10
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: The downloadable template's example: one order of two lines (other columns left blank).
_EXAMPLE = (
    {"order": "A1", "customer": "C001", "channel": "phone", "reference": "PO-1", "requested_date": "2030-01-15"}
    | {"payment_method": "monthly_settlement", "currency": "CNY", "urgency": "normal", "product": "P-100"}
    | {"quantity": "2"},
    {"order": "A1", "product": "P-300", "quantity": "10"},
)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "localize": localize,
        "wording": wording,
        "message_of": message_of,
        "max_mb": importing.MAX_BYTES // (1024 * 1024),
        "max_rows": importing.MAX_ROWS,
        "order_url": _order_url,
    }


def message_of(error: importing.RowError) -> str:
    """A row error's message in the reader's language: intake's msgid translated, or core's by pattern."""
    return _(error.msgid, **error.params) if error.msgid else localize(error.message)


def wording(error: importing.RowError) -> str:
    """A row error in the reader's language, after its column."""
    return f"{error.column}: {message_of(error)}" if error.column else message_of(error)


def refusal(exc: ServiceError) -> str:
    """Why a whole file was refused, in the reader's language."""
    if isinstance(exc, importing.ImportRefused):
        return _(exc.msgid, **exc.params)
    return localize(exc.message)


def _order_url(order_id: int | None) -> str:
    """The order's page in core, or '' when the order is not known."""
    return url_for("orders.view_order", order_id=order_id) if order_id else ""


def _remember(sha256: str) -> None:
    kept = [h for h in session.get(_UPLOADS, []) if h != sha256]
    session[_UPLOADS] = [*kept, sha256][-_KEEP:]


def _stored(sha256: str) -> bytes:
    """The bytes of an upload this session made; 404 for any other hash."""
    if not _SHA256.match(sha256) or sha256 not in session.get(_UPLOADS, []):
        abort(404)
    store = file_store(db())
    if not store.exists(sha256):
        abort(404)
    return store.get(sha256)


def _total(session_: Session, group: importing.OrderGroup) -> Decimal | None:
    """The order's total as core would price it now, or None when it cannot be computed."""
    if group.data is None:
        return None
    try:
        with session_.no_autoflush:
            draft = Order(currency=group.data["currency"])
            draft.lines = build_lines(session_, group.data["lines"])
            recompute_within_limits(draft)
            total = draft.total
            draft.lines = []
    except ServiceError:
        return None
    return total


def _preview(actor: User, filename: str, data: bytes) -> importing.ImportPreview:
    """Read and validate the file; a refusal propagates, a 403 becomes the error page."""
    try:
        return importing.preview(db(), actor, importing.read_rows(filename, data))
    except ServiceError as exc:
        abort_for(exc)
        raise


def _upload_page(problems: list[str] | None = None, status: int = 200) -> tuple[str, int]:
    return render_template("intake/import_upload.html", problems=problems or []), status


@bp.get("/")
@permission_required(importing.PERMISSION)
def upload() -> tuple[str, int]:
    """Step 1: the upload form, with the accepted formats, limits and the template."""
    return _upload_page()


@bp.get("/template.csv")
@permission_required(importing.PERMISSION)
def csv_template() -> Response:
    """A CSV to fill in: every column name and an example order (UTF-8 with a BOM, for Excel)."""
    rows = [importing.COLUMNS, *([row.get(c, "") for c in importing.COLUMNS] for row in _EXAMPLE)]
    text = "\r\n".join(",".join(row) for row in rows) + "\r\n"
    return Response(
        "\ufeff" + text,
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=order-import-template.csv"},
    )


@bp.post("/")
@permission_required(importing.PERMISSION)
def preview() -> tuple[str, int]:
    """Step 2: read the file, keep it in the file store and show what an import would do."""
    actor = current_actor()
    upload_ = request.files.get("file")
    if upload_ is None or not upload_.filename:
        return _upload_page([_("Choose a CSV or XLSX file to import.")], 422)
    filename = upload_.filename
    data = upload_.read(importing.MAX_BYTES + 1)
    try:
        result = _preview(actor, filename, data)
    except ServiceError as exc:
        db().rollback()
        return _upload_page([refusal(exc)], exc.status)
    totals = {group.key: _total(db(), group) for group in result.orders}
    db().rollback()  # the preview writes nothing; drop anything pricing may have touched
    sha256 = file_store(db()).put(data)
    _remember(sha256)
    return render_template(
        "intake/import_preview.html", preview=result, totals=totals, sha256=sha256, filename=filename
    ), 200


@bp.post("/commit")
@permission_required(importing.PERMISSION)
def commit() -> tuple[str, int]:
    """Step 3: validate the stored file again and import all of it or only its valid orders."""
    actor = current_actor()
    sha256 = request.form.get("sha256", "")
    filename = request.form.get("filename", "") or "upload"
    mode: Literal["all", "valid"] = "valid" if request.form.get("mode") == "valid" else "all"
    data = _stored(sha256)
    session_ = db()
    try:
        result = importing.commit(session_, actor, _preview(actor, filename, data), mode)
    except ServiceError as exc:
        session_.rollback()
        abort_for(exc)
        return _upload_page([refusal(exc)], exc.status)
    if result.written:
        session_.commit()
    else:
        session_.rollback()
    found = session_.execute(select(Order.number, Order.id).where(Order.number.in_(result.created)))
    ids = {number: order_id for number, order_id in found}
    created = [(number, ids.get(number)) for number in result.created]
    status = 200 if result.written or not result.skipped else 422
    return render_template(
        "intake/import_result.html", result=result, created=created, filename=filename, sha256=sha256
    ), status


@bp.get("/<sha256>/errors.xlsx")
@permission_required(importing.PERMISSION)
def error_report(sha256: str) -> Response:
    """Step 4: the rows of the stored file with their errors, as an XLSX workbook."""
    filename = request.args.get("name", "") or "upload"
    data = _stored(sha256)
    try:
        result = _preview(current_actor(), filename, data)
    except ServiceError:
        db().rollback()
        abort(404)
    db().rollback()
    return Response(
        importing.error_report(result, wording),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": "attachment; filename=import-errors.xlsx"},
    )
