"""Order attachments: types judged by content, the size limit, the file store, scoped
downloads and removal, through the service and the order page (IN-5, IN-6, CORE-4, CORE-6).

Every file is real: PDFs written by pypdf, images by Pillow, a docx zipped by hand, an
xlsx by openpyxl, an OLE compound file built byte by byte, CSV in UTF-8 and GB18030.
"""

from __future__ import annotations

import html
import io
import struct
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from openpyxl import Workbook
from PIL import Image
from pypdf import PdfReader, PdfWriter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.attachments.service import (
    AttachmentRefused,
    add_attachment,
    attachment_bytes,
    clean_filename,
    get_attachment,
    list_attachments,
    remove_attachment,
    share_attachment,
)
from core.attachments.sniff import FileTypeRefused, detect, ole_stream_names, sniff
from core.files import file_store
from core.models import AuditLog, Order, User
from core.models.files import OrderAttachment
from core.services import ServiceError
from core.settings import set_setting
from core.testing import PASSWORD, csrf_token, login, make_order, make_user

MB = 1024 * 1024

# --- real files, made here ----------------------------------------------------------


def pdf_file(text: str = "") -> bytes:
    """A one-page PDF written by pypdf."""
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    if text:
        writer.add_metadata({"/Title": text})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def image_file(fmt: str, size: tuple[int, int] = (8, 8)) -> bytes:
    """A small image in ``fmt`` (PNG, JPEG, GIF, TIFF, WEBP) written by Pillow."""
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


def zip_file(parts: dict[str, str]) -> bytes:
    """A ZIP holding ``parts`` (name → text)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return out.getvalue()


CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    'content-types"><Default Extension="xml" ContentType="application/xml"/></Types>'
)


def docx_file(extra: dict[str, str] | None = None) -> bytes:
    """A minimal Word document (Office Open XML), zipped by hand."""
    return zip_file(
        {
            "[Content_Types].xml": CONTENT_TYPES,
            "_rels/.rels": "<Relationships/>",
            "word/document.xml": "<w:document><w:body><w:p><w:r><w:t>采购合同</w:t></w:r></w:p></w:body></w:document>",
            **(extra or {}),
        }
    )


def xlsx_file() -> bytes:
    """A workbook written by openpyxl."""
    book = Workbook()
    book.active.append(["型号", "数量"])
    book.active.append(["P-100", 2])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def ole_file(stream: str) -> bytes:
    """An OLE compound file (MS-CFB, 512-byte sectors) whose root holds one stream ``stream``.

    Sector 0 is the FAT, sector 1 the directory; the stream is empty.
    """
    end, free = 0xFFFFFFFE, 0xFFFFFFFF
    header = bytearray(b"\xff" * 512)
    header[:0x4C] = bytes(0x4C)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIIII", header, 0x28, 0, 1, 1, 0, 4096, end, 0, end, 0)
    struct.pack_into("<I", header, 0x4C, 0)
    fat = struct.pack("<128I", 0xFFFFFFFD, end, *([free] * 126))

    def entry(name: str, kind: int, child: int = free) -> bytes:
        raw = bytearray(128)
        encoded = name.encode("utf-16-le") + b"\0\0"
        raw[: len(encoded)] = encoded
        struct.pack_into("<HBB", raw, 64, len(encoded), kind, 1)
        struct.pack_into("<III", raw, 68, free, free, child)
        struct.pack_into("<II", raw, 116, end, 0)
        return bytes(raw)

    directory = entry("Root Entry", 5, child=1) + entry(stream, 2) + bytes(256)
    return bytes(header) + fat + directory


EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(200) + b"This program cannot be run"
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><circle r="4"/></svg>'
CSV_UTF8 = "型号,名称,数量\nP-100,减速电机,2\n".encode()
CSV_GB18030 = "型号,名称,数量\nP-100,减速电机,2\n".encode("gb18030")


# --- judging by content -------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "extension", "mime"),
    [
        (pdf_file(), "订单.pdf", "pdf", "application/pdf"),
        (image_file("PNG"), "scan.png", "png", "image/png"),
        (image_file("JPEG"), "photo.jpeg", "jpg", "image/jpeg"),
        (image_file("GIF"), "a.gif", "gif", "image/gif"),
        (image_file("TIFF"), "fax.tiff", "tif", "image/tiff"),
        (image_file("WEBP"), "a.webp", "webp", "image/webp"),
        (docx_file(), "合同.docx", "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (xlsx_file(), "明细.xlsx", "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (ole_file("WordDocument"), "old.doc", "doc", "application/msword"),
        (ole_file("Workbook"), "old.xls", "xls", "application/vnd.ms-excel"),
        (zip_file({"OFD.xml": "<ofd:OFD/>", "Doc_0/Document.xml": "<x/>"}), "发票.ofd", "ofd", "application/ofd"),
        (CSV_UTF8, "明细.csv", "csv", "text/csv; charset=utf-8"),
        (CSV_GB18030, "明细.csv", "csv", "text/csv; charset=gb18030"),
        ("备注：加急\r\n".encode(), "note.txt", "txt", "text/plain; charset=utf-8"),
    ],
)
def test_accepted_types_are_found_in_the_content(data: bytes, name: str, extension: str, mime: str):
    found = detect(data, name)
    assert (found.extension, found.mime) == (extension, mime)


@pytest.mark.parametrize(
    ("data", "name", "why"),
    [
        (EXE, "合同.pdf", "is a program or script"),
        (b"\x7fELF\x02\x01\x01" + bytes(100), "invoice.pdf", "is a program or script"),
        (b"#!/bin/sh\nrm -rf /\n", "notes.txt", "is a program or script"),
        (HTML, "readme.txt", "is a web page, SVG or XML file"),
        (SVG, "logo.svg", "is a web page, SVG or XML file"),
        (SVG, "logo.txt", "is a web page, SVG or XML file"),
        (image_file("PNG"), "contract.pdf", "is named .pdf but its content is PNG"),
        (pdf_file(), "setup.exe", "is named .exe but its content is PDF"),
        (CSV_UTF8, "table.xlsx", "is named .xlsx but its content is TXT"),
        (zip_file({"a.txt": "x"}), "docs.zip", "is an archive"),
        (ole_file("\x05SummaryInformation"), "setup.doc", "is an OLE file but not a Word, Excel or PowerPoint"),
        (image_file("BMP"), "scan.bmp", "is a BMP file"),
        (b"\x00\x01\x02binary" * 20, "data.txt", "is not an accepted document type"),
        (docx_file({"word/vbaProject.bin": "macro"}), "合同.docx", "contains macros"),
    ],
)
def test_other_content_and_disguised_names_are_refused_with_the_reason(data: bytes, name: str, why: str):
    with pytest.raises(FileTypeRefused) as refused:
        detect(data, name)
    assert why in str(refused.value)


def test_a_self_extracting_program_is_not_taken_for_the_office_file_appended_to_it():
    assert sniff(EXE + docx_file()) is None


def test_damaged_ole_directories_are_refused_not_followed():
    looping = bytearray(ole_file("WordDocument"))
    struct.pack_into("<I", looping, 512 + 4, 1)  # the directory sector's FAT entry points at itself
    with pytest.raises(ValueError):
        ole_stream_names(bytes(looping))
    outside = bytearray(ole_file("WordDocument"))
    struct.pack_into("<I", outside, 0x30, 99)  # the directory lies beyond the file's end
    assert sniff(bytes(outside)) is None


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("C:\\Users\\li\\扫描件 合同.pdf", "扫描件 合同.pdf"),
        ("../../etc/passwd", "passwd"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # a right-to-left override hid the .exe
        ("a\x00b\r\n.pdf", "ab.pdf"),
        ('bad:name?"*.pdf', "bad_name___.pdf"),
        ("  ...hidden.pdf. ", "hidden.pdf"),
        ("", "attachment"),
        ("合" * 300 + ".pdf", "合" * 251 + ".pdf"),
    ],
)
def test_file_names_are_cleaned_keeping_chinese(given: str, kept: str):
    assert clean_filename(given) == kept
    assert len(clean_filename(given)) <= 255


# --- the service: limits, nothing written on refusal, the file store ---------------------


@pytest.fixture
def sales(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "sales@example.com", ["sales"], branch=seed["hq"])


@pytest.fixture
def order(session: Session, sales: User) -> Order:
    return make_order(session, sales)


def stored_files(session: Session) -> list[Path]:
    root = file_store(session).root
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def attachment_state(session: Session) -> tuple[int, int, int]:
    """Attachment rows, attachment audit entries and files in the store."""
    session.rollback()
    rows = session.scalar(select(func.count(OrderAttachment.id))) or 0
    audits = session.scalar(select(func.count(AuditLog.id)).where(AuditLog.entity == "order_attachment")) or 0
    return rows, audits, len(stored_files(session))


@pytest.mark.req("IN-6")
def test_the_customers_original_order_is_attached_stored_by_hash_and_audited(session, sales, order):
    data = pdf_file("PO-2026-001")
    attachment = add_attachment(
        session, sales, order.id, filename="客户采购订单 PO-2026-001.pdf", data=data, kind="customer_order", note="原件"
    )
    session.commit()
    assert (attachment.kind, attachment.content_type, attachment.size) == (
        "customer_order",
        "application/pdf",
        len(data),
    )
    path = file_store(session).path(attachment.sha256)
    assert path.read_bytes() == data
    # Outside the web root: in the instance's file store, not under the app's static folder.
    assert "static" not in path.parts
    assert attachment_bytes(session, attachment) == data
    entry = session.scalars(select(AuditLog).where(AuditLog.entity == "order_attachment")).one()
    assert (entry.action, entry.order_id, entry.actor_id) == ("upload", order.id, sales.id)
    assert entry.changes["filename"] == "客户采购订单 PO-2026-001.pdf" and entry.changes["sha256"] == attachment.sha256


@pytest.mark.req("IN-5")
def test_the_same_file_twice_is_stored_once(session, sales, order):
    data = docx_file()
    first = add_attachment(session, sales, order.id, filename="合同.docx", data=data, kind="contract")
    second = add_attachment(session, sales, order.id, filename="合同-副本.docx", data=data, kind="other")
    session.commit()
    assert first.sha256 == second.sha256 and first.id != second.id
    assert len(stored_files(session)) == 1
    assert [a.filename for a in list_attachments(session, sales, order.id)] == ["合同.docx", "合同-副本.docx"]


def test_a_name_without_extension_gets_the_one_its_content_has(session, sales, order):
    attachment = add_attachment(session, sales, order.id, filename="scan", data=image_file("JPEG"))
    assert attachment.filename == "scan.jpg" and attachment.content_type == "image/jpeg"


def refused(session: Session, user: User, order_id: int, **kwargs: Any) -> ServiceError:
    before = attachment_state(session)
    with pytest.raises(ServiceError) as caught:
        add_attachment(session, user, order_id, **kwargs)
    session.rollback()
    assert attachment_state(session) == before, "a refused upload wrote something"
    return caught.value


def test_refused_uploads_write_nothing_and_say_why(session, admin, sales, order):
    cases = [
        ({"filename": "合同.pdf", "data": EXE}, "unsupported_type", "is a program or script"),
        ({"filename": "readme.txt", "data": HTML}, "unsupported_type", "web page"),
        ({"filename": "logo.svg", "data": SVG}, "unsupported_type", "web page"),
        (
            {"filename": "scan.pdf", "data": image_file("PNG")},
            "unsupported_type",
            "is named .pdf but its content is PNG",
        ),
        ({"filename": "empty.pdf", "data": b""}, "invalid", "“empty.pdf” is empty"),
        ({"filename": "a.pdf", "data": pdf_file(), "kind": "invoice"}, "invalid", "unknown kind 'invoice'"),
        ({"filename": "a.pdf", "data": pdf_file(), "note": "x" * 501}, "invalid", "longer than 500 characters"),
    ]
    for kwargs, code, why in cases:
        error = refused(session, sales, order.id, **kwargs)
        assert error.code == code and why in error.message, (kwargs["filename"], error.message)
        assert error.status == 422


def test_the_size_limit_setting_is_enforced_and_named(session, admin, sales, order):
    set_setting(session, "core.attachments.max_mb", 1, admin)
    session.commit()
    error = refused(session, sales, order.id, filename="big.pdf", data=pdf_file() + b"\n%" + b"x" * int(1.5 * MB))
    assert error.status == 413 and error.code == "too_large"
    assert error.message == "the file is 1.6 MB; the limit is 1 MB"
    assert error.details == {"file": [error.message]}
    # Just under the limit passes.
    add_attachment(session, sales, order.id, filename="ok.pdf", data=pdf_file() + b"%" * (MB - 2000))


def test_a_type_missing_from_the_allowed_list_is_refused_naming_the_list(session, admin, sales, order):
    set_setting(session, "core.attachments.allowed_types", "pdf, .JPEG，ofd", admin)
    session.commit()
    error = refused(session, sales, order.id, filename="scan.png", data=image_file("PNG"))
    assert error.message == "PNG files are not accepted here; accepted types: pdf, jpg, ofd"
    add_attachment(session, sales, order.id, filename="scan.jpg", data=image_file("JPEG"))


def test_upload_needs_the_permission_and_the_order_in_scope(session, seed, sales, order):
    auditor = make_user(session, "auditor@example.com", ["auditor"])
    colleague = make_user(session, "colleague@example.com", ["sales"], branch=seed["hq"])
    error = refused(session, auditor, order.id, filename="a.pdf", data=pdf_file())
    assert error.status == 403
    out_of_scope = refused(session, colleague, order.id, filename="a.pdf", data=pdf_file())
    missing = refused(session, colleague, 999_999, filename="a.pdf", data=pdf_file())
    assert out_of_scope.status == missing.status == 404
    assert "attachment" not in out_of_scope.message


def test_reading_follows_the_orders_scope(session, seed, sales, order):
    attachment = add_attachment(session, sales, order.id, filename="a.pdf", data=pdf_file())
    other = make_order(session, sales, customer="C002")
    session.commit()
    colleague = make_user(session, "colleague@example.com", ["sales"], branch=seed["hq"])
    for call in (
        lambda: list_attachments(session, colleague, order.id),
        lambda: get_attachment(session, colleague, order.id, attachment.id),
        lambda: get_attachment(session, sales, other.id, attachment.id),  # on another order
        lambda: get_attachment(session, sales, order.id, 999_999),
    ):
        with pytest.raises(ServiceError) as caught:
            call()
        assert caught.value.status == 404


def test_removal_needs_permission_and_reason_hides_the_file_and_keeps_it(session, seed, admin, sales, order):
    data = pdf_file()
    attachment = add_attachment(session, sales, order.id, filename="wrong.pdf", data=data)
    session.commit()
    with pytest.raises(ServiceError) as caught:
        remove_attachment(session, sales, order.id, attachment.id, "wrong order")
    assert caught.value.status == 403
    manager = make_user(session, "manager@example.com", ["sales_manager"], branch=seed["hq"])
    with pytest.raises(AttachmentRefused) as no_reason:
        remove_attachment(session, manager, order.id, attachment.id, "   ")
    assert no_reason.value.code == "reason_required" and no_reason.value.details == {
        "reason": ["give the reason for removing the attachment"]
    }
    remove_attachment(session, manager, order.id, attachment.id, "Uploaded to the wrong order")
    session.commit()
    assert list_attachments(session, sales, order.id) == []
    with pytest.raises(ServiceError):
        get_attachment(session, sales, order.id, attachment.id)
    assert file_store(session).get(attachment.sha256) == data  # the file stays
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "remove")).one()
    assert (entry.entity, entry.entity_id, entry.order_id, entry.actor_id) == (
        "order_attachment",
        attachment.id,
        order.id,
        manager.id,
    )
    assert entry.reason == "Uploaded to the wrong order"


# --- the order page -------------------------------------------------------------------


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def upload(client: Any, order_id: int, data: bytes, name: str, **form: str) -> Any:
    token = csrf_token(client, f"/orders/{order_id}")
    return client.post(
        f"/orders/{order_id}/attachments",
        data={"file": (io.BytesIO(data), name), "csrf_token": token, **form},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


@pytest.mark.req("IN-5")
@pytest.mark.req("IN-6")
def test_the_order_page_uploads_lists_and_downloads_with_a_chinese_name(client, session, sales, order):
    login(client, sales.email, PASSWORD)
    page = text(client.get(f"/orders/{order.id}"))
    assert "Attachments" in page and "No attachments yet." in page
    assert "At most 20 MB. Accepted types: pdf, png, jpg" in page and 'enctype="multipart/form-data"' in page
    data = pdf_file("合同")
    page = text(upload(client, order.id, data, "采购合同 HT-2026-08.pdf", kind="contract", note="客户盖章版"))
    assert "“采购合同 HT-2026-08.pdf” was attached to the order." in page
    assert "采购合同 HT-2026-08.pdf" in page and "客户盖章版" in page and "Contract" in page
    attachment = session.scalars(select(OrderAttachment)).one()

    download = client.get(f"/orders/{order.id}/attachments/{attachment.id}")
    assert download.status_code == 200 and download.data == data
    assert download.mimetype == "application/pdf"
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote('采购合同 HT-2026-08.pdf')}" in disposition
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert PdfReader(io.BytesIO(download.data)).metadata.title == "合同"


def test_a_refused_upload_comes_back_with_the_limit_in_the_users_language(client, session, admin, sales, order):
    set_setting(session, "core.attachments.max_mb", 1, admin)
    session.commit()
    login(client, sales.email, PASSWORD)
    page = text(upload(client, order.id, pdf_file() + b"%" * int(1.5 * MB), "big.pdf"))
    assert "The file is 1.6 MB; the limit is 1 MB. Nothing was uploaded." in page
    page = text(upload(client, order.id, EXE, "合同.pdf"))
    assert "“合同.pdf” is a program or script; such files are not accepted. Nothing was uploaded." in page
    no_file = {"csrf_token": csrf_token(client, "/orders")}
    page = text(client.post(f"/orders/{order.id}/attachments", data=no_file, follow_redirects=True))
    assert "Choose a file to upload. Nothing was uploaded." in page
    assert attachment_state(session)[0] == 0

    chinese = make_user(session, "li@example.com", ["sales"], language="zh_CN")
    mine = make_order(session, chinese)
    zh = client.application.test_client()
    login(zh, chinese.email, PASSWORD)
    page = text(upload(zh, mine.id, pdf_file() + b"%" * int(1.5 * MB), "big.pdf"))
    assert "文件大小为 1.6 MB，上限为 1 MB。未上传任何文件。" in page
    assert "附件" in page and "最大 1 MB" in page


def test_a_body_above_the_servers_cap_is_refused_naming_the_limit(client, app, session, sales, order):
    app.config["MAX_CONTENT_LENGTH"] = 512 * 1024
    login(client, sales.email, PASSWORD)
    page = text(upload(client, order.id, pdf_file() + b"%" * MB, "big.pdf"))
    assert "The file is larger than 0.5 MB, the most accepted. Nothing was uploaded." in page
    assert "At most 0.5 MB." in page
    assert attachment_state(session)[0] == 0


def test_downloads_outside_the_scope_answer_404_like_a_missing_one(client, session, seed, sales, order):
    attachment = add_attachment(session, sales, order.id, filename="a.pdf", data=pdf_file())
    session.commit()
    make_user(session, "colleague@example.com", ["sales"], branch=seed["hq"])
    login(client, "colleague@example.com", PASSWORD)
    hidden = client.get(f"/orders/{order.id}/attachments/{attachment.id}")
    missing = client.get(f"/orders/{order.id}/attachments/999999")
    assert hidden.status_code == missing.status_code == 404
    assert order.number not in hidden.get_data(as_text=True)
    token = csrf_token(client, "/orders")
    posted = client.post(
        f"/orders/{order.id}/attachments",
        data={"file": (io.BytesIO(pdf_file()), "a.pdf"), "csrf_token": token},
        content_type="multipart/form-data",
    )
    assert posted.status_code == 404


def test_portal_customers_upload_and_download_on_their_own_orders_only(client, session, seed, sales, order):
    portal = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    own = make_order(session, portal, channel="portal")
    others = make_order(session, sales, customer="C002")
    staff_file = add_attachment(session, sales, others.id, filename="内部.pdf", data=pdf_file())
    session.commit()
    login(client, portal.email, PASSWORD)
    page = text(upload(client, own.id, image_file("JPEG"), "我方订单.jpg", kind="customer_order"))
    assert "“我方订单.jpg” was attached to the order." in page
    mine = session.scalars(select(OrderAttachment).where(OrderAttachment.order_id == own.id)).one()
    assert client.get(f"/orders/{own.id}/attachments/{mine.id}").status_code == 200
    assert client.get(f"/orders/{others.id}/attachments/{staff_file.id}").status_code == 404
    assert client.get(f"/orders/{own.id}/attachments/{staff_file.id}").status_code == 404
    assert "remove-attachment-" not in page  # no remove buttons for customers


def test_removing_from_the_order_page_asks_for_a_reason(client, session, seed, sales, order):
    attachment = add_attachment(session, sales, order.id, filename="错传.pdf", data=pdf_file())
    session.commit()
    login(client, sales.email, PASSWORD)
    token = csrf_token(client, f"/orders/{order.id}")
    path = f"/orders/{order.id}/attachments/{attachment.id}/remove"
    assert client.post(path, data={"csrf_token": token, "reason": "x"}).status_code == 403

    make_user(session, "manager@example.com", ["sales_manager"], branch=seed["hq"])
    manager = client.application.test_client()
    login(manager, "manager@example.com", PASSWORD)
    page = text(manager.get(f"/orders/{order.id}"))
    assert f'id="remove-attachment-{attachment.id}"' in page and "Remove “错传.pdf” from this order?" in page
    token = csrf_token(manager, f"/orders/{order.id}")
    page = text(manager.post(path, data={"csrf_token": token, "reason": " "}, follow_redirects=True))
    assert "Give the reason for removing the attachment." in page
    page = text(manager.post(path, data={"csrf_token": token, "reason": "传错订单"}, follow_redirects=True))
    assert "“错传.pdf” was removed from the order." in page
    assert "No attachments yet." in page
    assert manager.get(f"/orders/{order.id}/attachments/{attachment.id}").status_code == 404
    assert session.scalar(select(AuditLog.reason).where(AuditLog.action == "remove")) == "传错订单"


# --- review fixes: OLE bombs, control characters, sharing with the customer, the limit ---


def ole_difat_bomb(sector_shift: int, difat_sectors: int) -> bytes:
    """A crafted OLE file whose header and DIFAT chain list FAT sector 0 over and over.

    Every DIFAT sector names sector 0 as a FAT sector ``size/4 - 1`` times; read naively,
    a 244 KB file (60 sectors of 4 KB) makes a FAT of 62 million entries (~0.5 GB).
    """
    size = 1 << sector_shift
    header = bytearray(size)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<H", header, 0x1E, sector_shift)
    struct.pack_into("<I", header, 0x2C, difat_sectors * (size // 4 - 1) + 109)  # claimed FAT sectors
    struct.pack_into("<I", header, 0x30, 0xFFFFFFFE)  # empty directory chain
    struct.pack_into("<I", header, 0x44, 0)  # the DIFAT starts at sector 0
    body = bytearray()
    for i in range(difat_sectors):
        following = i + 1 if i < difat_sectors - 1 else 0xFFFFFFFE
        body += struct.pack(f"<{size // 4 - 1}I", *([0] * (size // 4 - 1))) + struct.pack("<I", following)
    return bytes(header + body)


@pytest.mark.parametrize(("sector_shift", "difat_sectors"), [(12, 60), (9, 480)])
def test_an_ole_file_listing_one_fat_sector_thousands_of_times_is_refused_quickly_and_small(
    sector_shift: int, difat_sectors: int
):
    import time
    import tracemalloc

    data = ole_difat_bomb(sector_shift, difat_sectors)
    assert len(data) < 256 * 1024
    tracemalloc.start()
    started = time.perf_counter()
    try:
        found = sniff(data)
        with pytest.raises(FileTypeRefused) as refused:
            detect(data, "bomb.doc")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found is None
    assert "is an OLE file but not a Word, Excel or PowerPoint document" in str(refused.value)
    assert peak < 50 * MB, f"sniffing a {len(data)} byte file allocated {peak // MB} MB"
    assert time.perf_counter() - started < 2


def test_ole_fat_and_difat_chains_are_bounded_by_the_files_size():
    # A DIFAT chain pointing at itself is damaged, not followed for ever.
    looping = bytearray(ole_difat_bomb(9, 3))
    struct.pack_into("<109I", looping, 0x4C, *([0xFFFFFFFF] * 109))  # no FAT sector in the header
    struct.pack_into("<I", looping, 512 + 508, 0)  # the DIFAT's first sector follows itself
    struct.pack_into("<127I", looping, 512, *([0xFFFFFFFF] * 127))
    with pytest.raises(ValueError):
        ole_stream_names(bytes(looping))
    # A real document still reads, with padding after it too.
    assert ole_stream_names(ole_file("WordDocument")) >= {"Root Entry", "WordDocument"}
    assert sniff(ole_file("Workbook") + bytes(4096)) == sniff(ole_file("Workbook"))


@pytest.mark.parametrize("note", ["a\x00b", "bell\x07", "esc\x1b[31m", "del\x7f", "c1\x85x", "surrogate\ud800"])
def test_notes_with_control_characters_are_refused_with_nothing_written(session, sales, order, note: str):
    with pytest.raises(AttachmentRefused) as refused:
        add_attachment(session, sales, order.id, filename="a.pdf", data=pdf_file(), note=note)
    assert refused.value.status == 422 and refused.value.code == "invalid"
    assert refused.value.details == {"note": ["the note must not contain control characters"]}
    assert attachment_state(session) == (0, 0, 0)


def test_line_breaks_and_tabs_are_fine_in_notes_and_reasons(session, seed, sales, order):
    attachment = add_attachment(session, sales, order.id, filename="a.pdf", data=pdf_file(), note="第 1 行\r\n第\t2 行")
    assert attachment.note == "第 1 行\n第\t2 行"
    manager = make_user(session, "manager@example.com", ["sales_manager"], branch=seed["hq"])
    for reason in ("a\x00b", "x\x1by", "\x08"):
        with pytest.raises(AttachmentRefused) as refused:
            remove_attachment(session, manager, order.id, attachment.id, reason)
        assert refused.value.details == {"reason": ["the reason must not contain control characters"]}
    assert attachment.removed_at is None
    remove_attachment(session, manager, order.id, attachment.id, "传错\r\n订单")
    session.commit()
    assert session.scalar(select(AuditLog.reason).where(AuditLog.action == "remove")) == "传错\n订单"


def test_control_characters_on_the_order_page_are_refused_in_the_users_language(client, session, seed, sales, order):
    login(client, sales.email, PASSWORD)
    page = text(upload(client, order.id, pdf_file(), "a.pdf", note="a\x00b"))
    assert "The note must not contain control characters. Nothing was uploaded." in page
    assert attachment_state(session)[0] == 0
    chinese = make_user(session, "li@example.com", ["sales_manager"], branch=seed["hq"], language="zh_CN")
    attachment = add_attachment(session, sales, order.id, filename="a.pdf", data=pdf_file())
    session.commit()
    zh = client.application.test_client()
    login(zh, chinese.email, PASSWORD)
    token = csrf_token(zh, f"/orders/{order.id}")
    path = f"/orders/{order.id}/attachments/{attachment.id}/remove"
    page = text(zh.post(path, data={"csrf_token": token, "reason": "x\x00"}, follow_redirects=True))
    assert "原因中不能包含控制字符。" in page
    session.expire_all()
    assert session.get(OrderAttachment, attachment.id).removed_at is None


@pytest.fixture
def portal(session: Session, seed: dict[str, Any]) -> User:
    """A portal user of customer C001 (the customer of ``order``)."""
    return make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])


def test_portal_users_see_only_what_is_shared_with_the_customer(session, seed, sales, portal, order):
    internal = add_attachment(session, sales, order.id, filename="内部成本.xlsx", data=xlsx_file())
    contract = add_attachment(session, sales, order.id, filename="合同.pdf", data=pdf_file(), customer_visible=True)
    theirs = add_attachment(session, portal, order.id, filename="我方订单.pdf", data=pdf_file("PO"))
    session.commit()
    assert (internal.customer_visible, contract.customer_visible, theirs.customer_visible) == (False, True, True)
    assert list_attachments(session, portal, order.id) == [contract, theirs]
    assert list_attachments(session, sales, order.id) == [internal, contract, theirs]
    with pytest.raises(ServiceError) as hidden:
        get_attachment(session, portal, order.id, internal.id)
    assert hidden.value.status == 404
    # A portal user's upload is always shared, whatever the request says.
    quiet = add_attachment(session, portal, order.id, filename="b.pdf", data=pdf_file("b"), customer_visible=False)
    assert quiet.customer_visible is True


def test_staff_share_and_unshare_audited_and_customers_cannot(session, seed, sales, portal, order):
    internal = add_attachment(session, sales, order.id, filename="送货单.pdf", data=pdf_file())
    theirs = add_attachment(session, portal, order.id, filename="我方订单.pdf", data=pdf_file("PO"))
    session.commit()
    share_attachment(session, sales, order.id, internal.id, True)
    share_attachment(session, sales, order.id, internal.id, True)  # no change: not audited again
    assert get_attachment(session, portal, order.id, internal.id) is internal
    share_attachment(session, sales, order.id, internal.id, False)
    session.commit()
    actions = session.scalars(
        select(AuditLog.action).where(AuditLog.entity_id == internal.id, AuditLog.entity == "order_attachment")
    ).all()
    assert actions == ["upload", "share", "unshare"]
    with pytest.raises(ServiceError) as customer:
        share_attachment(session, portal, order.id, theirs.id, True)
    assert customer.value.status == 403
    with pytest.raises(ServiceError) as hidden:
        share_attachment(session, portal, order.id, internal.id, True)
    assert hidden.value.status == 404  # not shared: the customer cannot even name it
    with pytest.raises(AttachmentRefused) as own:
        share_attachment(session, sales, order.id, theirs.id, False)
    assert own.value.details == {
        "customer_visible": ["the customer uploaded “我方订单.pdf”, so the customer always sees it"]
    }


def test_the_order_page_shares_files_and_hides_staff_names_from_customers(client, session, sales, portal, order):
    login(client, sales.email, PASSWORD)
    page = text(client.get(f"/orders/{order.id}"))
    assert 'name="customer_visible"' in page and "Share with the customer" in page
    upload(client, order.id, pdf_file("内部"), "内部.pdf")
    page = text(upload(client, order.id, pdf_file("合同"), "合同.pdf", customer_visible="1"))
    assert page.count("Shared with the customer") == 1
    internal, contract = session.scalars(select(OrderAttachment).order_by(OrderAttachment.id)).all()
    assert (internal.customer_visible, contract.customer_visible) == (False, True)

    buyer = client.application.test_client()
    login(buyer, portal.email, PASSWORD)
    page = text(buyer.get(f"/orders/{order.id}"))
    assert "合同.pdf" in page and "内部.pdf" not in page
    start = page.index("data-attachments")
    table = page[start : page.index("</table>", start)]
    assert sales.name not in table and "—" in table  # staff are not named to customers
    assert 'name="customer_visible"' not in page and "Stop sharing" not in page
    assert buyer.get(f"/orders/{order.id}/attachments/{internal.id}").status_code == 404
    assert buyer.get(f"/orders/{order.id}/attachments/{contract.id}").status_code == 200
    share = f"/orders/{order.id}/attachments/{contract.id}/share"
    token = csrf_token(buyer, f"/orders/{order.id}")
    assert buyer.post(share, data={"csrf_token": token, "customer_visible": "0"}).status_code == 403

    token = csrf_token(client, f"/orders/{order.id}")
    path = f"/orders/{order.id}/attachments/{internal.id}/share"
    page = text(client.post(path, data={"csrf_token": token}, follow_redirects=True))
    assert "Choose whether the customer sees the file." in page
    page = text(client.post(path, data={"csrf_token": token, "customer_visible": "1"}, follow_redirects=True))
    assert "“内部.pdf” is shared with the customer." in page
    assert buyer.get(f"/orders/{order.id}/attachments/{internal.id}").status_code == 200
    page = text(client.post(path, data={"csrf_token": token, "customer_visible": "0"}, follow_redirects=True))
    assert "“内部.pdf” is no longer shared with the customer." in page
    assert buyer.get(f"/orders/{order.id}/attachments/{internal.id}").status_code == 404


def test_the_size_limit_setting_is_bounded_by_what_the_server_accepts(session, admin):
    from core.settings import InvalidValue, check_value, session_registry

    setting = session_registry(session).settings["core.attachments.max_mb"]
    assert check_value(setting, 1) == 1 and check_value(setting, 32) == 32
    for wrong in (0, -5, 33, 1024):
        with pytest.raises(InvalidValue):
            check_value(setting, wrong)
    with pytest.raises(ServiceError):
        set_setting(session, "core.attachments.max_mb", 100, admin)
