"""The documents API and screens: list the types, issue a PDF (archived), the archive, download,
e-mail to the customer — in the error envelope, within the data scope, by permission."""

import hashlib
import io

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from core.models import AuditLog, CustomerContact, IssuedDocument, OutboxMessage
from core.testing import ApiCaller, csrf_token, login, make_order, make_user, token_for


@pytest.fixture
def ordo_plugins():
    """With the third-party inspection plugin: its certificate needs a permission finance lacks."""
    return ["inspection"]


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def api(client, session, user) -> ApiCaller:
    return ApiCaller(client, token_for(session, user))


def count(session, model) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(model))


@pytest.mark.req("CORE-1")
def test_list_the_document_types_the_user_may_print_in_their_language(client, session, admin, seed):
    order = make_order(session, admin)
    finance = make_user(session, "finance@example.com", ["finance"], language="en")
    admin.language = "zh_CN"
    session.commit()
    items = api(client, session, admin).get(f"/api/v1/orders/{order.id}/documents").get_json()["items"]
    by_name = {item["name"]: item for item in items}
    assert by_name["order_confirmation"]["label"] == "订单确认书"
    assert by_name["order_sheet"]["label"] == "订单"
    assert by_name["order_confirmation"]["url"] == f"/api/v1/orders/{order.id}/documents/order_confirmation"
    assert "inspection.certificate" in by_name

    items = api(client, session, finance).get(f"/api/v1/orders/{order.id}/documents").get_json()["items"]
    assert {i["name"]: i["label"] for i in items} == {
        "order_sheet": "Order sheet",
        "order_confirmation": "Order confirmation",
    }


def test_get_a_document_issues_and_archives_the_pdf(client, session, admin, seed):
    order = make_order(session, admin)
    caller = api(client, session, admin)
    response = caller.get(f"/api/v1/orders/{order.id}/documents/order_confirmation?lang=zh_CN")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{order.number}-order_confirmation.pdf"'
    text = pdf_text(response.data)
    assert "订单确认书" in text and order.number in text and "肆仟零壹拾壹元伍角整" in text
    english = caller.get(f"/api/v1/orders/{order.id}/documents/order_confirmation?lang=en")
    assert "Order confirmation" in pdf_text(english.data)

    listed = caller.get(f"/api/v1/orders/{order.id}/issued-documents").get_json()["items"]
    assert [(i["document"], i["language"]) for i in listed] == [
        ("order_confirmation", "en"),
        ("order_confirmation", "zh_CN"),
    ]
    first = listed[1]
    assert first["issued_by"] == {"id": admin.id, "name": admin.name}
    assert first["size"] == len(response.data) and first["sha256"] == hashlib.sha256(response.data).hexdigest()
    download = caller.get(first["url"])
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert download.data == response.data  # exactly the archived bytes
    assert (
        session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.order_id == order.id, AuditLog.action == "issue")
        )
        == 2
    )


def test_the_default_language_is_the_users_own(client, session, admin, seed):
    order = make_order(session, admin)
    admin.language = "en"
    session.commit()
    response = api(client, session, admin).get(f"/api/v1/orders/{order.id}/documents/order_sheet")
    assert "Order sheet" in pdf_text(response.data)
    session.rollback()
    assert session.scalars(select(IssuedDocument.language)).all() == ["en"]


def test_bad_requests_answer_in_the_envelope_and_issue_nothing(client, session, admin, seed):
    order = make_order(session, admin)
    caller = api(client, session, admin)
    unknown = caller.get(f"/api/v1/orders/{order.id}/documents/no_such_document")
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["code"] == "not_found"
    assert "no_such_document" in unknown.get_json()["error"]["message"]
    bad_lang = caller.get(f"/api/v1/orders/{order.id}/documents/order_sheet?lang=fr")
    assert bad_lang.status_code == 422 and "lang" in bad_lang.get_json()["error"]["details"]
    missing = caller.get(f"/api/v1/orders/{order.id}/issued-documents/999999")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    assert caller.get("/api/v1/orders/999999/documents").status_code == 404
    assert count(session, IssuedDocument) == 0


@pytest.mark.req("CORE-4")
def test_an_order_out_of_scope_answers_404_everywhere(client, session, admin, seed):
    order = make_order(session, admin)
    outsider = api(client, session, make_user(session, "cd@example.com", ["sales"], branch=seed["cd"]))
    caller = api(client, session, admin)
    issued = caller.get(f"/api/v1/orders/{order.id}/issued-documents")
    caller.get(f"/api/v1/orders/{order.id}/documents/order_sheet")
    doc_id = caller.get(f"/api/v1/orders/{order.id}/issued-documents").get_json()["items"][0]["id"]
    assert issued.status_code == 200
    for path in (
        f"/api/v1/orders/{order.id}/documents",
        f"/api/v1/orders/{order.id}/documents/order_confirmation",
        f"/api/v1/orders/{order.id}/issued-documents",
        f"/api/v1/orders/{order.id}/issued-documents/{doc_id}",
    ):
        response = outsider.get(path)
        assert response.status_code == 404, path
        assert response.get_json()["error"]["code"] == "not_found"
        assert order.number not in response.get_data(as_text=True)
    assert count(session, IssuedDocument) == 1


@pytest.mark.req("CORE-3")
def test_a_document_type_needs_its_permission(client, session, admin, seed):
    order = make_order(session, admin)
    finance = api(client, session, make_user(session, "finance@example.com", ["finance"]))
    admin_api = api(client, session, admin)
    admin_api.get(f"/api/v1/orders/{order.id}/documents/inspection.certificate")
    certificate = admin_api.get(f"/api/v1/orders/{order.id}/issued-documents").get_json()["items"][0]
    refused = finance.get(f"/api/v1/orders/{order.id}/documents/inspection.certificate")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    assert "inspection.report.read" in refused.get_json()["error"]["message"]
    assert finance.get(f"/api/v1/orders/{order.id}/issued-documents").get_json()["items"] == []
    assert finance.get(certificate["url"]).status_code == 403
    assert count(session, IssuedDocument) == 1


def test_the_openapi_document_describes_the_pdf_responses(client, session, admin):
    spec = client.get("/api/v1/openapi.json").get_json()
    issue = spec["paths"]["/api/v1/orders/{order_id}/documents/{name}"]["get"]
    assert "application/pdf" in issue["responses"]["200"]["content"]
    assert any(p["name"] == "lang" for p in issue["parameters"])
    assert {"403", "404"} <= set(issue["responses"])
    archived = spec["paths"]["/api/v1/orders/{order_id}/issued-documents/{doc_id}"]["get"]
    assert "application/pdf" in archived["responses"]["200"]["content"]
    assert "/api/v1/orders/{order_id}/issued-documents" in spec["paths"]
    assert "post" in spec["paths"]["/api/v1/orders/{order_id}/documents/{name}/send"]


# --- e-mail to the customer -------------------------------------------------------------------


@pytest.mark.req("CORE-7")
def test_email_to_customer_issues_the_document_and_queues_it_with_the_pdf(client, session, admin, seed):
    order = make_order(session, admin)
    response = api(client, session, admin).post(
        f"/api/v1/orders/{order.id}/documents/order_confirmation/send", json={"version": order.version}
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["to"] == ["zhang@example.com"]
    session.rollback()
    issued = session.scalars(select(IssuedDocument)).one()
    assert body["document"]["id"] == issued.id and issued.language == "zh_CN"  # the customer's language
    message = session.scalars(select(OutboxMessage)).one()
    assert message.template == "document_issued" and message.channel == "email"
    assert message.address == "zhang@example.com" and message.document_id == issued.id
    assert message.order_id == order.id and message.customer_id == order.customer_id
    assert order.number in message.subject and "订单确认书" in message.body
    actions = session.scalars(select(AuditLog.action).where(AuditLog.order_id == order.id)).all()
    assert "issue" in actions and "email" in actions


def test_email_needs_the_current_version_and_an_email_contact(client, session, admin, seed):
    order = make_order(session, admin)
    caller = api(client, session, admin)
    path = f"/api/v1/orders/{order.id}/documents/order_confirmation/send"
    missing = caller.post(path, json={})
    assert missing.status_code == 422 and "version" in missing.get_json()["error"]["details"]
    stale = caller.post(path, json={"version": order.version + 1})
    assert stale.status_code == 409 and stale.get_json()["error"]["code"] == "stale_version"

    for contact in session.scalars(select(CustomerContact).where(CustomerContact.customer_id == order.customer_id)):
        contact.email = ""
    session.commit()
    none = caller.post(path, json={"version": order.version})
    assert none.status_code == 409 and none.get_json()["error"]["code"] == "no_email_contact"
    assert "C001" in none.get_json()["error"]["message"]
    assert count(session, IssuedDocument) == 0 and count(session, OutboxMessage) == 0


@pytest.mark.req("CORE-3")
def test_email_needs_the_send_permission(client, session, admin, seed):
    order = make_order(session, admin)
    finance = api(client, session, make_user(session, "finance@example.com", ["finance"]))  # sees every order
    refused = finance.post(
        f"/api/v1/orders/{order.id}/documents/order_confirmation/send", json={"version": order.version}
    )
    assert refused.status_code == 403
    assert "documents.send" in refused.get_json()["error"]["message"]
    assert count(session, IssuedDocument) == 0 and count(session, OutboxMessage) == 0


# --- the order page ---------------------------------------------------------------------------


def test_the_order_page_panel_prints_lists_the_archive_and_emails(client, session, admin, seed):
    order = make_order(session, admin)
    admin.language = "en"
    session.commit()
    login(client, "admin@example.com", "admin-pass-1")
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert 'id="documents"' in page
    assert f"/orders/{order.id}/documents/order_confirmation.pdf?lang=zh_CN" in page
    assert f"/orders/{order.id}/documents/order_confirmation.pdf?lang=en" in page
    printed = client.get(f"/orders/{order.id}/documents/order_confirmation.pdf?lang=en")
    assert printed.status_code == 200 and "Order confirmation" in pdf_text(printed.data)

    send = f"/orders/{order.id}/documents/order_confirmation/send"
    assert f'action="{send}"' in page and "data-confirm=" in page
    token = csrf_token(client, f"/orders/{order.id}")
    done = client.post(send, data={"csrf_token": token, "version": order.version}, follow_redirects=True)
    assert done.status_code == 200
    page = done.get_data(as_text=True)
    assert "was issued and queued for e-mail to zhang@example.com" in page
    session.rollback()
    rows = session.scalars(select(IssuedDocument).order_by(IssuedDocument.id)).all()
    assert [r.language for r in rows] == ["en", "zh_CN"]
    for row in rows:
        assert f"/orders/{order.id}/issued-documents/{row.id}.pdf" in page
    archived = client.get(f"/orders/{order.id}/issued-documents/{rows[0].id}.pdf")
    assert archived.status_code == 200 and archived.data == printed.data
    assert count(session, OutboxMessage) == 1


def test_the_screen_send_refuses_a_stale_form_and_sends_nothing(client, session, admin, seed):
    order = make_order(session, admin)
    admin.language = "en"
    session.commit()
    login(client, "admin@example.com", "admin-pass-1")
    token = csrf_token(client, f"/orders/{order.id}")
    send = f"/orders/{order.id}/documents/order_confirmation/send"
    stale = client.post(send, data={"csrf_token": token, "version": order.version + 1}, follow_redirects=True)
    assert "nothing was sent" in stale.get_data(as_text=True)
    no_token = client.post(send, data={"version": order.version})
    assert no_token.status_code in (302, 400)
    assert count(session, IssuedDocument) == 0 and count(session, OutboxMessage) == 0


@pytest.mark.req("CORE-4")
def test_the_screen_archive_download_obeys_the_scope(client, session, admin, seed):
    order = make_order(session, admin)
    outsider = make_user(session, "cd@example.com", ["sales"], branch=seed["cd"])
    login(client, "admin@example.com", "admin-pass-1")
    client.get(f"/orders/{order.id}/documents/order_sheet.pdf")
    session.rollback()
    doc_id = session.scalars(select(IssuedDocument.id)).one()
    assert client.get(f"/orders/{order.id}/issued-documents/{doc_id}.pdf").status_code == 200
    assert client.get(f"/orders/{order.id}/issued-documents/999999.pdf").status_code == 404
    session.rollback()
    client.post("/logout", data={"csrf_token": csrf_token(client, "/orders")})
    login(client, outsider.email, "test-pass-1")
    assert client.get(f"/orders/{order.id}/issued-documents/{doc_id}.pdf").status_code == 404
