"""Issuing documents: the language a screen prints in, handing out an unchanged document's
archived copy instead of issuing it again, rendering outside the write lock, the internal
order sheet kept from customers and staff names kept from the portal."""

import io
import re
import sqlite3

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

import core.documents.archive as archive
from core.documents.archive import issue_document
from core.models import AuditLog, Company, IssuedDocument, OutboxMessage
from core.services.orders import update_order
from core.settings import set_setting
from core.testing import ApiCaller, csrf_token, login, make_order, make_user, token_for


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def count(session, model, *where) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def issues(session, order) -> int:
    return count(session, AuditLog, AuditLog.order_id == order.id, AuditLog.action == "issue")


# --- the language a screen prints in ----------------------------------------------------------


@pytest.mark.req("CORE-1")
def test_a_chinese_user_prints_from_the_order_page(client, session, admin, seed):
    """Babel names Chinese zh_Hans_CN; a print without ?lang= is in the user's zh_CN, not a 400."""
    order = make_order(session, admin)
    make_user(session, "wang@example.com", ["finance"], language="zh_CN")  # sees every order
    login(client, "wang@example.com", "test-pass-1")
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    links = set(re.findall(r'href="(/orders/\d+/documents/[^"]+)"', page))
    assert links and all("lang=" in link for link in links), links  # every print link names its language
    for name, title in (("order_confirmation", "订单确认书"), ("order_sheet", "订单")):
        response = client.get(f"/orders/{order.id}/documents/{name}.pdf")
        assert response.status_code == 200, name
        assert title in pdf_text(response.data)
    session.rollback()
    assert set(session.scalars(select(IssuedDocument.language))) == {"zh_CN"}


def test_a_user_without_a_language_prints_in_the_language_of_the_screens(client, session, admin, seed):
    order = make_order(session, admin)
    make_user(session, "nolang@example.com", ["finance"], language="")
    login(client, "nolang@example.com", "test-pass-1")
    response = client.get(f"/orders/{order.id}/documents/order_sheet.pdf", headers={"Accept-Language": "en"})
    assert response.status_code == 200 and "Order sheet" in pdf_text(response.data)


# --- an unchanged document is handed out again, not issued again ---------------------------


@pytest.mark.req("CORE-6")
def test_printing_an_unchanged_document_again_hands_out_the_archived_copy(client, session, admin, seed):
    order = make_order(session, admin, reference="PO-A")
    login(client, "admin@example.com", "admin-pass-1")
    caller = ApiCaller(client, token_for(session, admin))
    screen = f"/orders/{order.id}/documents/order_confirmation.pdf?lang=zh_CN"
    api = f"/api/v1/orders/{order.id}/documents/order_confirmation?lang=zh_CN"

    first = client.get(screen)
    assert first.status_code == 200
    for _ in range(3):  # a prefetch, a reload, the API: the same bytes, nothing written
        assert client.get(screen).data == first.data
        assert caller.get(api).data == first.data
    assert count(session, IssuedDocument) == 1 and issues(session, order) == 1

    english = client.get(f"/orders/{order.id}/documents/order_confirmation.pdf?lang=en")
    assert english.data != first.data and count(session, IssuedDocument) == 2  # another language: its own copy

    session.rollback()
    update_order(session, admin, order, {"version": order.version, "reference": "PO-B"})
    session.commit()
    changed = client.get(screen)
    assert changed.data != first.data and "PO-B" in pdf_text(changed.data)
    assert client.get(screen).data == changed.data
    assert count(session, IssuedDocument) == 3 and issues(session, order) == 3

    # What the document says beyond the order counts too: the letterhead, the terms.
    company = session.get(Company, order.company_id)
    company.name = "Renamed Co."
    session.commit()
    letterhead = client.get(screen)
    assert "Renamed Co." in pdf_text(letterhead.data) and count(session, IssuedDocument) == 4
    set_setting(session, "core.documents.terms_zh", "新的条款。", admin)
    session.commit()
    terms = client.get(screen)
    assert "新的条款" in pdf_text(terms.data) and count(session, IssuedDocument) == 5
    assert client.get(screen).data == terms.data and count(session, IssuedDocument) == 5

    # Every copy handed out is the archived one, byte for byte.
    rows = session.scalars(select(IssuedDocument).order_by(IssuedDocument.id)).all()
    assert client.get(f"/orders/{order.id}/issued-documents/{rows[-1].id}.pdf").data == terms.data


def test_issuing_in_one_session_hands_out_the_archived_copy_too(session, state, admin, seed):
    order = make_order(session, admin)
    first = issue_document(session, state.registry, "order_sheet", order, admin, "en")
    session.commit()
    again = issue_document(session, state.registry, "order_sheet", order, admin, "en")
    session.commit()
    assert again.id == first.id and count(session, IssuedDocument) == 1


def test_a_damaged_archived_copy_is_not_handed_out_again(client, session, state, admin, seed):
    from core.files import file_store

    order = make_order(session, admin)
    first = issue_document(session, state.registry, "order_sheet", order, admin, "en")
    session.commit()
    file_store(session).path(first.sha256).write_bytes(b"%PDF-damaged")
    login(client, "admin@example.com", "admin-pass-1")
    response = client.get(f"/orders/{order.id}/documents/order_sheet.pdf?lang=en")
    assert response.status_code == 200 and "Order sheet" in pdf_text(response.data)
    assert count(session, IssuedDocument) == 2


@pytest.mark.req("CORE-7")
def test_e_mailing_an_unchanged_document_sends_the_archived_copy(client, session, admin, seed):
    order = make_order(session, admin)
    caller = ApiCaller(client, token_for(session, admin))
    printed = caller.get(f"/api/v1/orders/{order.id}/documents/order_confirmation?lang=zh_CN")
    session.rollback()
    issued_id = session.scalars(select(IssuedDocument.id)).one()
    send = f"/api/v1/orders/{order.id}/documents/order_confirmation/send"
    for _ in range(2):
        response = caller.post(send, json={"version": order.version})
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["document"]["id"] == issued_id
    assert count(session, IssuedDocument) == 1
    assert set(session.scalars(select(OutboxMessage.document_id))) == {issued_id}
    assert count(session, OutboxMessage) == 2
    assert count(session, AuditLog, AuditLog.order_id == order.id, AuditLog.action == "email") == 2
    assert caller.get(f"/api/v1/orders/{order.id}/issued-documents/{issued_id}").data == printed.data


# --- rendering holds no write lock --------------------------------------------------------------


@pytest.fixture
def lock_probe(state, monkeypatch):
    """Records, whenever a PDF is rendered, whether another connection could take the write lock."""
    database = state.engine.url.database
    if state.engine.dialect.name != "sqlite" or not database:
        pytest.skip("the write lock is SQLite's")
    free: list[bool] = []
    render = archive.render_document

    def probing(*args, **kwargs):
        other = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            free.append(True)
        except sqlite3.OperationalError:
            free.append(False)
        finally:
            other.close()
        return render(*args, **kwargs)

    monkeypatch.setattr(archive, "render_document", probing)
    return free


def test_e_mailing_renders_the_pdf_without_holding_the_write_lock(client, session, admin, seed, lock_probe):
    first, second = make_order(session, admin), make_order(session, admin)
    caller = ApiCaller(client, token_for(session, admin))
    response = caller.post(
        f"/api/v1/orders/{first.id}/documents/order_confirmation/send", json={"version": first.version}
    )
    assert response.status_code == 201, response.get_json()

    login(client, "admin@example.com", "admin-pass-1")
    token = csrf_token(client, f"/orders/{second.id}")
    done = client.post(
        f"/orders/{second.id}/documents/order_confirmation/send",
        data={"csrf_token": token, "version": second.version},
        follow_redirects=True,
    )
    assert "was issued and queued for e-mail" in done.get_data(as_text=True)
    assert lock_probe == [True, True]
    assert count(session, IssuedDocument) == 2 and count(session, OutboxMessage) == 2


def test_an_order_changed_while_the_pdf_renders_is_not_sent(client, session, state, admin, seed, monkeypatch):
    order = make_order(session, admin, reference="PO-BEFORE")
    caller = ApiCaller(client, token_for(session, admin))
    render = archive.render_document

    def render_while_someone_edits(*args, **kwargs):
        pdf = render(*args, **kwargs)
        with state.sessions() as other:
            edited = other.get(type(order), order.id)
            update_order(other, admin, edited, {"version": edited.version, "reference": "PO-AFTER"})
            other.commit()
        return pdf

    monkeypatch.setattr(archive, "render_document", render_while_someone_edits)
    response = caller.post(
        f"/api/v1/orders/{order.id}/documents/order_confirmation/send", json={"version": order.version}
    )
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "stale_version"
    assert count(session, IssuedDocument) == 0 and count(session, OutboxMessage) == 0


def test_the_screen_send_refuses_a_version_that_is_no_plain_number(client, session, admin, seed):
    order = make_order(session, admin)
    login(client, "admin@example.com", "admin-pass-1")
    token = csrf_token(client, f"/orders/{order.id}")
    for version in ("²", "١", "99999999999999999999", "-1", " 1"):
        response = client.post(
            f"/orders/{order.id}/documents/order_confirmation/send",
            data={"csrf_token": token, "version": version},
            follow_redirects=True,
        )
        assert response.status_code == 200, version
        assert "the form was incomplete" in response.get_data(as_text=True), version
    assert count(session, IssuedDocument) == 0 and count(session, OutboxMessage) == 0


# --- customers: no internal order sheet, no staff names ------------------------------------


@pytest.mark.req("CORE-3")
def test_a_portal_user_prints_the_confirmation_but_not_the_internal_order_sheet(client, session, admin, seed):
    order = make_order(session, admin)
    staff_copy = issue_document(
        session, client.application.extensions["ordo"].registry, "order_confirmation", order, admin, "en"
    )
    session.commit()
    portal = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    assert not portal.can("orders.print_sheet") and admin.can("orders.print_sheet")
    caller = ApiCaller(client, token_for(session, portal))
    staff = ApiCaller(client.application.test_client(), token_for(session, admin))

    login(client, "buyer@example.com", "test-pass-1")
    assert client.get(f"/orders/{order.id}/documents/order_sheet.pdf?lang=en").status_code == 403
    assert client.get(f"/orders/{order.id}/documents/order_confirmation.pdf?lang=zh_CN").status_code == 200
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "order_sheet.pdf" not in page and "order_confirmation.pdf?lang=en" in page
    archive_rows = re.findall(r'<tr data-issued="(\d+)">(.*?)</tr>', page, re.S)
    by_id = {int(doc_id): row for doc_id, row in archive_rows}
    assert admin.name not in by_id[staff_copy.id] and "Staff" in by_id[staff_copy.id]
    own = next(row for doc_id, row in by_id.items() if doc_id != staff_copy.id)
    assert portal.name in own  # their own copy they are told about

    types = caller.get(f"/api/v1/orders/{order.id}/documents").get_json()["items"]
    assert [t["name"] for t in types] == ["order_confirmation"]
    assert caller.get(f"/api/v1/orders/{order.id}/documents/order_sheet").status_code == 403
    listed = {
        i["id"]: i["issued_by"] for i in caller.get(f"/api/v1/orders/{order.id}/issued-documents").get_json()["items"]
    }
    assert listed[staff_copy.id] is None
    assert {"id": portal.id, "name": portal.name} in listed.values()
    assert admin.name not in caller.get(f"/api/v1/orders/{order.id}/issued-documents").get_data(as_text=True)

    # Staff still see who issued what.
    seen = {
        i["id"]: i["issued_by"] for i in staff.get(f"/api/v1/orders/{order.id}/issued-documents").get_json()["items"]
    }
    assert seen[staff_copy.id] == {"id": admin.id, "name": admin.name}


def test_a_customer_renamed_while_the_pdf_renders_is_not_sent_the_old_name(
    client, session, state, admin, seed, monkeypatch
):
    """The order's version does not move when its customer changes; the content does."""
    from core.models import Customer

    order = make_order(session, admin)
    caller = ApiCaller(client, token_for(session, admin))
    render = archive.render_document

    def render_while_the_customer_is_renamed(*args, **kwargs):
        pdf = render(*args, **kwargs)
        with state.sessions() as other:
            other.get(Customer, seed["local"].id).name = "重庆山城机电集团有限公司"
            other.commit()
        return pdf

    monkeypatch.setattr(archive, "render_document", render_while_the_customer_is_renamed)
    response = caller.post(
        f"/api/v1/orders/{order.id}/documents/order_confirmation/send", json={"version": order.version}
    )
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "document_changed"
    assert count(session, IssuedDocument) == 0 and count(session, OutboxMessage) == 0


def test_the_internal_order_sheet_is_never_e_mailed_to_the_customer(client, session, admin, seed):
    order = make_order(session, admin)
    caller = ApiCaller(client, token_for(session, admin))
    response = caller.post(f"/api/v1/orders/{order.id}/documents/order_sheet/send", json={"version": order.version})
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "internal_document"
    assert count(session, IssuedDocument) == 0 and count(session, OutboxMessage) == 0
    login(client, "admin@example.com", "admin-pass-1")
    panel = client.get(f"/orders/{order.id}").get_data(as_text=True)
    sheet_row = panel[panel.index('data-document="order_sheet"') :].split("</tr>", 1)[0]
    assert "E-mail to customer" not in sheet_row


def test_nothing_is_e_mailed_to_a_deactivated_customer(client, session, admin, seed):
    order = make_order(session, admin)
    seed["local"].active = False
    session.commit()
    caller = ApiCaller(client, token_for(session, admin))
    response = caller.post(
        f"/api/v1/orders/{order.id}/documents/order_confirmation/send", json={"version": order.version}
    )
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "customer_inactive"
    assert count(session, IssuedDocument) == 0 and count(session, OutboxMessage) == 0
