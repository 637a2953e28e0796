"""A corpus of hostile uploads is refused: oversized files, archive bombs, content that
does not match the name, and path-traversal names — for attachments (API and order page),
the order import and the company logo. Nothing refused is stored, nothing is ever
written outside the file store, and downloads are never shown inline.
"""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from PIL import Image
from sqlalchemy import func, select

from core.models.files import OrderAttachment
from core.settings import set_setting
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, ApiCaller, csrf_token, login, make_order, token_for
from plugins.intake.importing import MAX_ROWS, read_rows

MB = 1024 * 1024
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(200)
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'

TRAVERSAL_NAMES = [
    "../../etc/passwd.pdf",
    "..\\..\\windows\\win.ini.pdf",
    "/etc/cron.d/evil.pdf",
    "C:\\Windows\\evil.pdf",
    "a\x00.pdf",
    "x" * 5000 + ".pdf",
    "invoice\u202efdp.exe.pdf",
    "....//....//x.pdf",
    "%2e%2e%2f%2e%2e%2fx.pdf",
]
if os.environ.get("ORDO_HOSTILE_FULL") == "1":  # the full corpus
    TRAVERSAL_NAMES += ["ａ/../b.pdf", "CON.pdf", "\u200b.pdf", "a" * 255 + ".pdf", "..", "./.pdf", "~/.ssh/x.pdf"]


@pytest.fixture
def ordo_plugins():
    return ("intake",)


def pdf_file() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="PDF")
    return out.getvalue()


def png_file() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def order(session, admin, seed):
    return make_order(session, admin)


@pytest.fixture
def api(client, session, admin, seed) -> ApiCaller:
    return ApiCaller(client, token_for(session, admin))


def upload(api: ApiCaller, order_id: int, data: bytes, name: str) -> Any:
    return api.post(
        f"/api/v1/orders/{order_id}/attachments",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def attachments(session) -> int:
    session.rollback()
    return session.scalar(select(func.count(OrderAttachment.id))) or 0


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def everything_written(instance: Path) -> set[Path]:
    """Every file anywhere under the instance folder's parent (a name escaping the store lands there)."""
    return {p for p in instance.parent.rglob("*") if p.is_file() and "ordo-templates" not in str(p)}


# --- attachments -------------------------------------------------------------------------


@pytest.mark.req("IN-5")
@pytest.mark.parametrize(
    ("data", "name"),
    [
        (EXE, "contract.pdf"),
        (HTML, "scan.pdf"),
        (HTML, "photo.png"),
        (SVG, "photo.png"),
        (SVG, "drawing.svg"),
        (HTML, "page.html"),
        (b"#!/bin/sh\nrm -rf /\n", "notes.txt.sh"),
        (b"", "empty.pdf"),
    ],
)
def test_content_that_does_not_match_its_name_is_refused_and_nothing_is_stored(api, app, session, order, data, name):
    store = app.extensions["ordo"].instance.files
    before = files_under(store)
    response = upload(api, order.id, data, name)
    assert response.status_code in (415, 422), (name, response.get_json())
    assert "file" in response.get_json()["error"]["details"]
    assert attachments(session) == 0
    assert files_under(store) == before


def pixel_bomb_png() -> bytes:
    """A PNG of a few kilobytes declaring 20,000 × 20,000 pixels."""
    out = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(out, format="PNG", optimize=True)
    return out.getvalue()


@pytest.mark.req("IN-5")
@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: png_file()[:-10], "damaged or incomplete PNG image"),  # an upload cut off
        (lambda: png_file()[: len(png_file()) // 2], "damaged or incomplete PNG image"),
        (lambda: png_file()[:33] + b"\x00" * 40, "damaged or incomplete PNG image"),  # a header, no image
        (pixel_bomb_png, "too many pixels"),
    ],
    ids=["cut-off", "half", "header-only", "pixel-bomb"],
)
def test_a_damaged_image_or_pixel_bomb_is_refused_and_nothing_is_stored(api, app, session, order, make, words):
    store = app.extensions["ordo"].instance.files
    before = files_under(store)
    response = upload(api, order.id, make(), "scan.png")
    assert response.status_code in (415, 422), response.get_json()
    assert words in response.get_json()["error"]["message"]
    assert attachments(session) == 0
    assert files_under(store) == before
    assert upload(api, order.id, png_file(), "scan.png").status_code == 201  # the whole image is taken


@pytest.mark.req("IN-5")
def test_an_oversized_upload_is_refused_before_anything_is_stored(api, app, session, state, order):
    set_setting(session, "core.attachments.max_mb", 1, registry=state.registry)
    session.commit()
    store = app.extensions["ordo"].instance.files
    before = files_under(store)
    big = pdf_file() + b"\n%" + b"0" * (MB + 10)
    response = upload(api, order.id, big, "big.pdf")
    assert response.status_code in (413, 422)
    assert response.get_json()["error"]["code"] in ("file_too_large", "too_large", "payload_too_large")
    over_server_cap = upload(api, order.id, b"0" * (33 * MB), "huge.pdf")
    assert over_server_cap.status_code == 413
    assert attachments(session) == 0 and files_under(store) == before


@pytest.mark.req("IN-5")
def test_path_traversal_names_are_cleaned_and_nothing_lands_outside_the_store(api, app, client, session, order):
    instance: Path = app.extensions["ordo"].instance.path
    store = app.extensions["ordo"].instance.files
    outside_before = {p for p in everything_written(instance) if store not in p.parents}
    for index, name in enumerate(TRAVERSAL_NAMES):
        data = pdf_file() + f"%{index}".encode()
        response = upload(api, order.id, data, name)
        assert response.status_code == 201, (name, response.get_json())
        stored = response.get_json()["filename"]
        assert "/" not in stored and "\\" not in stored and not stored.startswith("."), stored
        assert "\x00" not in stored and "\u202e" not in stored and len(stored) <= 255, stored
        assert stored.endswith(".pdf"), stored
        download = api.get(response.get_json()["content_url"])
        assert download.status_code == 200 and download.data == data
        disposition = download.headers["Content-Disposition"]
        assert disposition.startswith("attachment;") and "\r" not in disposition and "\n" not in disposition
        assert "../" not in disposition and "..\\" not in disposition
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        assert download.mimetype == "application/pdf"
    outside_after = {p for p in everything_written(instance) if store not in p.parents}
    assert outside_after - outside_before <= {p for p in outside_after if p.suffix in (".db", ".db-wal", ".db-shm")}
    assert not Path("/etc/cron.d/evil.pdf").exists()
    for path in files_under(store):
        assert len(path.name) == 64 and set(path.name) <= set("0123456789abcdef"), path


@pytest.mark.req("IN-5")
def test_the_order_page_refuses_a_disguised_file_and_cleans_a_traversal_name(client, session, order):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    token = csrf_token(client, f"/orders/{order.id}")
    refused = client.post(
        f"/orders/{order.id}/attachments",
        data={"file": (io.BytesIO(HTML), "invoice.pdf"), "kind": "other", "csrf_token": token},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert refused.status_code in (200, 415, 422)
    assert attachments(session) == 0
    kept = client.post(
        f"/orders/{order.id}/attachments",
        data={"file": (io.BytesIO(pdf_file()), "../../../x.pdf"), "kind": "other", "csrf_token": token},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert kept.status_code == 200
    session.rollback()
    names = list(session.scalars(select(OrderAttachment.filename)))
    assert names and all("/" not in n and not n.startswith(".") for n in names)


@pytest.mark.req("IN-5")
def test_a_png_carrying_html_is_only_ever_a_png_download(api, order):
    """A polyglot passes the type check (it is a PNG) but can never run as a page."""
    response = upload(api, order.id, png_file() + HTML, "photo.png")
    assert response.status_code == 201, response.get_json()
    download = api.get(response.get_json()["content_url"])
    assert download.mimetype == "image/png"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff"


# --- the order import ----------------------------------------------------------------------


def _workbook(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _rewrite_sheet(data: bytes, change) -> bytes:
    """``data`` with its first sheet's XML passed through ``change``."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                content = change(content)
            archive.writestr(info.filename, content)
    return out.getvalue()


HEADER = ["order", "customer", "product", "quantity"]


@pytest.mark.req("IN-2")
def test_an_xlsx_naming_the_last_cell_of_the_sheet_is_read_in_bounded_time_and_memory():
    """Two kilobytes naming cell XFD1048576 once made the reader pad a billion empty cells."""

    def far_cell(xml: bytes) -> bytes:
        far = b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'
        xml = xml.replace(b"</sheetData>", far + b"</sheetData>")
        return xml.replace(b'<dimension ref="A1:D2" />', b'<dimension ref="A1:XFD1048576" />')

    data = _rewrite_sheet(_workbook([HEADER, ["A", "C001", "P-100", 1]]), far_cell)
    assert len(data) < 10_000
    started = time.perf_counter()
    rows = read_rows("sparse.xlsx", data)  # the far cell is beyond the rows read
    assert time.perf_counter() - started < 5
    assert [r.number for r in rows] == [2]


@pytest.mark.req("IN-2")
def test_an_xlsx_with_too_many_columns_or_rows_is_refused_early():
    wide = _workbook([[*HEADER, *[None] * 200, "x"], ["A", "C001", "P-100", 1]])
    with pytest.raises(Exception) as caught:
        read_rows("wide.xlsx", wide)
    assert getattr(caught.value, "code", None) == "unknown_columns"

    def many_rows(xml: bytes) -> bytes:
        rows = b"".join(
            b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>k</t></is></c></row>' % (n, n) for n in range(3, 60_000)
        )
        return xml.replace(b"</sheetData>", rows + b"</sheetData>")

    tall = _rewrite_sheet(_workbook([HEADER, ["A", "C001", "P-100", 1]]), many_rows)
    started = time.perf_counter()
    with pytest.raises(Exception) as caught:
        read_rows("tall.xlsx", tall)
    assert getattr(caught.value, "code", None) == "too_many_rows"
    assert f"more than {MAX_ROWS:,} rows" in caught.value.message  # not the few rows it read
    assert time.perf_counter() - started < 5 and MAX_ROWS < 60_000


@pytest.mark.req("IN-2")
def test_an_xlsx_that_unpacks_to_far_more_than_the_limit_is_refused_unread():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", b"<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b" " * (120 * MB))
    data = out.getvalue()
    assert len(data) < 1 * MB
    with pytest.raises(Exception) as caught:
        read_rows("bomb.xlsx", data)
    assert getattr(caught.value, "code", None) == "file_too_large"


@pytest.mark.req("IN-2")
def test_an_xlsx_lying_about_its_unpacked_size_is_refused():
    """The zip directory says 1 KB; the member inflates to 50 MB. The reader stops at the declared size."""
    good = _workbook([HEADER, ["A", "C001", "P-100", 1]])
    source = zipfile.ZipFile(io.BytesIO(good))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                content = content.replace(b"</sheetData>", b"</sheetData>" + b" " * (50 * MB))
            archive.writestr(info.filename, content)
    data = bytearray(out.getvalue())
    true_size = len(source.read("xl/worksheets/sheet1.xml")) + 50 * MB
    lie = (1024).to_bytes(4, "little")
    offset = data.find(true_size.to_bytes(4, "little"))
    while offset != -1:  # the local header and the central directory both hold it
        data[offset : offset + 4] = lie
        offset = data.find(true_size.to_bytes(4, "little"), offset + 4)
    with pytest.raises(Exception) as caught:
        read_rows("liar.xlsx", bytes(data))
    assert getattr(caught.value, "code", None) == "file_type_unsupported"


@pytest.mark.req("IN-2")
@pytest.mark.parametrize(
    ("data", "name"),
    [(HTML, "orders.csv"), (EXE, "orders.xlsx"), (SVG, "orders.csv"), (b"PK\x03\x04" + bytes(100), "orders.xlsx")],
)
def test_the_import_screen_refuses_disguised_files_and_keeps_nothing(app, client, data, name):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    store = app.extensions["ordo"].instance.files
    before = files_under(store)
    token = csrf_token(client, "/intake/import/")
    response = client.post(
        "/intake/import/",
        data={"file": (io.BytesIO(data), name), "csrf_token": token},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert files_under(store) == before


# --- the company logo ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "status"),
    [
        (SVG, "logo.png", 415),
        (HTML, "logo.png", 415),
        (EXE, "logo.jpg", 415),
        (b"\x89PNG" + bytes(2 * MB), "l.png", 413),
    ],
)
def test_the_logo_refuses_what_is_not_a_small_png_or_jpeg(app, client, admin, data, name, status):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    store = app.extensions["ordo"].instance.files
    before = files_under(store)
    token = csrf_token(client, "/admin/company")
    response = client.post(
        "/admin/company/logo",
        data={"logo": (io.BytesIO(data), name), "csrf_token": token},
        content_type="multipart/form-data",
    )
    assert response.status_code in (status, 422), response.status_code
    assert files_under(store) == before
    assert client.get("/admin/company/logo").status_code == 404


def test_a_pixel_bomb_logo_is_refused():
    """A tiny PNG declaring 20,000 × 20,000 pixels is refused before it is decoded."""
    from core.company.service import Refused, check_logo

    out = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(out, format="PNG", optimize=True)
    assert len(out.getvalue()) < MB
    with pytest.raises(Refused):
        check_logo(out.getvalue())
