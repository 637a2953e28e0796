"""The attachments API: multipart upload, metadata, content, removal, in the order's scope
and in Ordo's error envelope (IN-5, IN-6, CORE-4)."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

import pytest
from openpyxl import Workbook
from PIL import Image
from pypdf import PdfWriter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import AuditLog, Order, User
from core.models.files import OrderAttachment
from core.settings import set_setting
from core.testing import ApiCaller, make_order, make_user, token_for

MB = 1024 * 1024
#: The start of a Windows program: what an .exe renamed .pdf begins with.
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(200)


def pdf_file() -> bytes:
    """A one-page PDF written by pypdf."""
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def png_file() -> bytes:
    """A small PNG written by Pillow."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (30, 30, 200)).save(out, format="PNG")
    return out.getvalue()


def xlsx_file() -> bytes:
    """A workbook written by openpyxl."""
    book = Workbook()
    book.active.append(["型号", "数量"])
    book.active.append(["P-100", 2])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
def sales(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "sales@example.com", ["sales"], branch=seed["hq"])


@pytest.fixture
def order(session: Session, sales: User) -> Order:
    return make_order(session, sales)


def caller(client: Any, session: Session, user: User) -> ApiCaller:
    return ApiCaller(client, token_for(session, user))


def post_file(api: ApiCaller, order_id: int, data: bytes, name: str, **form: str) -> Any:
    return api.post(
        f"/api/v1/orders/{order_id}/attachments",
        data={"file": (io.BytesIO(data), name), **form},
        content_type="multipart/form-data",
    )


def rows(session: Session) -> int:
    session.rollback()
    return session.scalar(select(func.count(OrderAttachment.id))) or 0


@pytest.mark.req("IN-5")
@pytest.mark.req("IN-6")
def test_upload_read_list_and_download_the_customers_contract(client, session, sales, order):
    api = caller(client, session, sales)
    data = xlsx_file()
    created = post_file(api, order.id, data, "客户合同明细.xlsx", kind="contract", note="第 2 版")
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["filename"] == "客户合同明细.xlsx" and body["kind"] == "contract" and body["note"] == "第 2 版"
    assert body["content_type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert body["size"] == len(data) and len(body["sha256"]) == 64
    assert body["uploaded_by"] == {"id": sales.id, "name": sales.name} and body["removed_at"] is None
    assert created.headers["Location"].endswith(f"/api/v1/orders/{order.id}/attachments/{body['id']}")

    item = api.get(f"/api/v1/orders/{order.id}/attachments/{body['id']}")
    assert item.status_code == 200 and item.get_json() == body
    listed = api.get(f"/api/v1/orders/{order.id}/attachments").get_json()["items"]
    assert [a["id"] for a in listed] == [body["id"]]

    content = api.get(body["content_url"])
    assert content.status_code == 200 and content.data == data
    assert content.mimetype == body["content_type"]
    assert content.headers["Content-Disposition"].startswith("attachment;")
    assert f"filename*=UTF-8''{quote('客户合同明细.xlsx')}" in content.headers["Content-Disposition"]
    assert content.headers["X-Content-Type-Options"] == "nosniff"


def test_refusals_come_in_the_error_envelope_and_write_nothing(client, session, admin, sales, order):
    api = caller(client, session, sales)
    refused = post_file(api, order.id, EXE, "合同.pdf")
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["code"] == "unsupported_type"
    assert error["message"] == "“合同.pdf” is a program or script; such files are not accepted"
    assert error["details"] == {"file": [error["message"]]}

    wrong_name = post_file(api, order.id, png_file(), "scan.pdf").get_json()["error"]
    assert wrong_name["message"] == "“scan.pdf” is named .pdf but its content is PNG"

    no_file = api.post(
        f"/api/v1/orders/{order.id}/attachments", data={"kind": "contract"}, content_type="multipart/form-data"
    )
    assert no_file.status_code == 422 and no_file.get_json()["error"]["details"] == {
        "file": ["choose a file to upload"]
    }
    as_json = api.post(f"/api/v1/orders/{order.id}/attachments", json={"file": "aGVsbG8="})
    assert as_json.status_code == 415 and as_json.get_json()["error"]["code"] == "unsupported_media_type"

    set_setting(session, "core.attachments.max_mb", 1, admin)
    session.commit()
    too_big = post_file(api, order.id, pdf_file() + b"%" * int(1.5 * MB), "big.pdf")
    assert too_big.status_code == 413
    assert too_big.get_json()["error"] == {
        "code": "too_large",
        "message": "the file is 1.6 MB; the limit is 1 MB",
        "details": {"file": ["the file is 1.6 MB; the limit is 1 MB"]},
    }
    assert rows(session) == 0
    assert session.scalar(select(func.count(AuditLog.id)).where(AuditLog.entity == "order_attachment")) == 0


def test_a_body_above_the_servers_cap_answers_413_in_the_envelope_naming_the_limit(app, client, session, sales, order):
    app.config["MAX_CONTENT_LENGTH"] = 2 * MB
    api = caller(client, session, sales)
    response = post_file(api, order.id, pdf_file() + b"%" * (3 * MB), "big.pdf")
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["code"] == "too_large" and error["message"] == "the upload is larger than 2 MB, the most accepted"
    assert rows(session) == 0


def test_out_of_scope_answers_404_exactly_like_a_missing_order(client, session, seed, sales, order):
    api = caller(client, session, sales)
    attachment_id = post_file(api, order.id, pdf_file(), "a.pdf").get_json()["id"]
    colleague = caller(client, session, make_user(session, "colleague@example.com", ["sales"], branch=seed["hq"]))
    for path in (
        f"/api/v1/orders/{order.id}/attachments",
        f"/api/v1/orders/{order.id}/attachments/{attachment_id}",
        f"/api/v1/orders/{order.id}/attachments/{attachment_id}/content",
    ):
        hidden = colleague.get(path)
        missing = colleague.get(path.replace(f"/orders/{order.id}/", "/orders/999999/"))
        assert hidden.status_code == missing.status_code == 404, path
        assert hidden.get_json() == missing.get_json() | {
            "error": {**missing.get_json()["error"], "message": f"order {order.id} was not found"}
        }
        assert order.number not in hidden.get_data(as_text=True)
    assert post_file(colleague, order.id, pdf_file(), "b.pdf").status_code == 404
    removal = colleague.post(f"/api/v1/orders/{order.id}/attachments/{attachment_id}/remove", json={"reason": "x"})
    assert removal.status_code == 404
    assert rows(session) == 1


def test_portal_customers_use_the_api_on_their_own_orders_only(client, session, seed, sales, order):
    portal_user = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    own = make_order(session, portal_user, channel="portal")
    portal = caller(client, session, portal_user)
    created = post_file(portal, own.id, pdf_file(), "我方采购单.pdf", kind="customer_order")
    assert created.status_code == 201
    assert portal.get(created.get_json()["content_url"]).status_code == 200
    others = make_order(session, sales, customer="C002")  # another customer's order
    assert post_file(portal, others.id, pdf_file(), "x.pdf").status_code == 404
    assert portal.get(f"/api/v1/orders/{others.id}/attachments").status_code == 404
    # The customer's orders entered by their salesperson are theirs too (the portal scope is the customer).
    assert post_file(portal, order.id, pdf_file(), "盖章版.pdf").status_code == 201


def test_removal_needs_the_permission_and_a_reason(client, session, seed, sales, order):
    api = caller(client, session, sales)
    attachment_id = post_file(api, order.id, pdf_file(), "错传.pdf").get_json()["id"]
    path = f"/api/v1/orders/{order.id}/attachments/{attachment_id}/remove"
    assert api.post(path, json={"reason": "wrong"}).status_code == 403

    manager = caller(client, session, make_user(session, "m@example.com", ["sales_manager"], branch=seed["hq"]))
    no_reason = manager.post(path, json={})
    assert no_reason.status_code == 422
    assert no_reason.get_json()["error"]["code"] == "reason_required"
    assert no_reason.get_json()["error"]["details"] == {"reason": ["give the reason for removing the attachment"]}
    assert manager.post(path, json={"reason": 5}).status_code == 422

    removed = manager.post(path, json={"reason": "传错订单"})
    assert removed.status_code == 200 and removed.get_json()["removed_at"] is not None
    assert manager.get(f"/api/v1/orders/{order.id}/attachments").get_json()["items"] == []
    assert manager.get(f"/api/v1/orders/{order.id}/attachments/{attachment_id}").status_code == 404
    assert manager.post(path, json={"reason": "again"}).status_code == 404


def test_the_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {
        "/api/v1/orders/{order_id}/attachments",
        "/api/v1/orders/{order_id}/attachments/{attachment_id}",
        "/api/v1/orders/{order_id}/attachments/{attachment_id}/content",
        "/api/v1/orders/{order_id}/attachments/{attachment_id}/remove",
    } <= set(paths)
    upload = paths["/api/v1/orders/{order_id}/attachments"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert "413" in upload["responses"]


# --- review fixes: control characters, sharing with the customer ---------------------------


def test_control_characters_in_notes_and_reasons_answer_422_and_store_nothing(client, session, seed, sales, order):
    manager = caller(client, session, make_user(session, "m@example.com", ["sales_manager"], branch=seed["hq"]))
    api = caller(client, session, sales)
    for note in ("a\x00b", "\x1b[31mred", "\x7f"):
        refused = post_file(api, order.id, pdf_file(), "ok.pdf", note=note)
        assert refused.status_code == 422, refused.get_json()
        error = refused.get_json()["error"]
        assert error["code"] == "invalid"
        assert error["details"] == {"note": ["the note must not contain control characters"]}
    assert rows(session) == 0
    attachment_id = post_file(api, order.id, pdf_file(), "ok.pdf", note="两行\n\t备注").get_json()["id"]
    path = f"/api/v1/orders/{order.id}/attachments/{attachment_id}/remove"
    for reason in ("a\x00b", "\ud800"):
        refused = manager.post(path, json={"reason": reason})
        assert refused.status_code == 422
        assert refused.get_json()["error"]["details"] == {"reason": ["the reason must not contain control characters"]}
    session.rollback()
    assert session.get(OrderAttachment, attachment_id).removed_at is None
    assert session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "remove")) == 0


def test_portal_users_get_only_shared_attachments_and_no_staff_names(client, session, seed, sales, order):
    portal_user = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    api, portal = caller(client, session, sales), caller(client, session, portal_user)
    internal = post_file(api, order.id, pdf_file(), "内部.pdf").get_json()
    shared = post_file(api, order.id, png_file(), "签收单.png", kind="delivery_note", customer_visible="true")
    assert shared.status_code == 201, shared.get_json()
    shared = shared.get_json()
    assert (internal["customer_visible"], shared["customer_visible"]) == (False, True)
    assert post_file(api, order.id, pdf_file(), "x.pdf", customer_visible="maybe").status_code == 422
    theirs = post_file(portal, order.id, xlsx_file(), "我方.xlsx", customer_visible="false").get_json()
    assert theirs["customer_visible"] is True

    listed = portal.get(f"/api/v1/orders/{order.id}/attachments").get_json()["items"]
    assert [a["id"] for a in listed] == [shared["id"], theirs["id"]]
    assert listed[0]["uploaded_by"] == {"id": None, "name": "staff"}
    assert listed[1]["uploaded_by"] == {"id": portal_user.id, "name": portal_user.name}
    base = f"/api/v1/orders/{order.id}/attachments/{internal['id']}"
    assert portal.get(base).status_code == 404
    assert portal.get(f"{base}/content").status_code == 404
    assert portal.get(shared["content_url"]).status_code == 200
    staff_view = api.get(f"/api/v1/orders/{order.id}/attachments").get_json()["items"]
    assert [a["uploaded_by"]["name"] for a in staff_view] == [sales.name, sales.name, portal_user.name]


def test_staff_share_an_attachment_through_the_api(client, session, seed, sales, order):
    portal_user = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    api, portal = caller(client, session, sales), caller(client, session, portal_user)
    internal = post_file(api, order.id, pdf_file(), "合同.pdf").get_json()
    share = f"/api/v1/orders/{order.id}/attachments/{internal['id']}/share"
    assert portal.post(share, json={"customer_visible": True}).status_code == 404  # not shared yet
    assert api.post(share, json={}).status_code == 422
    assert api.post(share, json={"customer_visible": "yes"}).status_code == 422
    shared = api.post(share, json={"customer_visible": True})
    assert shared.status_code == 200 and shared.get_json()["customer_visible"] is True
    assert portal.get(f"/api/v1/orders/{order.id}/attachments/{internal['id']}").status_code == 200
    assert portal.post(share, json={"customer_visible": False}).status_code == 403
    assert api.post(share, json={"customer_visible": False}).get_json()["customer_visible"] is False
    actions = session.scalars(
        select(AuditLog.action).where(AuditLog.entity == "order_attachment").order_by(AuditLog.id)
    ).all()
    assert actions == ["upload", "share", "unshare"]
    theirs = post_file(portal, order.id, pdf_file(), "我方.pdf").get_json()
    hide = api.post(f"/api/v1/orders/{order.id}/attachments/{theirs['id']}/share", json={"customer_visible": False})
    assert hide.status_code == 422 and hide.get_json()["error"]["details"] == {
        "customer_visible": ["the customer uploaded “我方.pdf”, so the customer always sees it"]
    }
    assert (
        "/api/v1/orders/{order_id}/attachments/{attachment_id}/share"
        in client.get("/api/v1/openapi.json").get_json()["paths"]
    )
