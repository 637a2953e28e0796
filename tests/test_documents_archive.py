"""The archive of issued documents (CORE-6): each issue is kept byte for byte, with its hash,
who and when, and an audit entry on the order; what was sent can be shown again exactly."""

import hashlib
import io

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from core.documents.archive import (
    get_issued,
    issue_document,
    issued_documents,
    issued_pdf,
    visible_issued_documents,
)
from core.files import file_store
from core.models import AuditLog, IssuedDocument
from core.services import NotFound, ServiceError
from core.services.orders import update_order
from core.testing import make_order, make_user

pytestmark = pytest.mark.req("CORE-6")


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_each_issue_is_archived_with_its_hash_size_name_issuer_and_time(session, state, admin, seed):
    order = make_order(session, admin)
    first = issue_document(session, state.registry, "order_confirmation", order, admin, "zh_CN")
    second = issue_document(session, state.registry, "order_confirmation", order, admin, "en")
    session.commit()
    assert [d.id for d in issued_documents(session, order)] == [second.id, first.id]  # newest first
    for issued, language in ((first, "zh_CN"), (second, "en")):
        data = issued_pdf(session, issued)
        assert data.startswith(b"%PDF")
        assert issued.sha256 == hashlib.sha256(data).hexdigest() and issued.size == len(data)
        assert issued.filename == f"{order.number}-order_confirmation.pdf"
        assert issued.language == language and issued.document == "order_confirmation"
        assert issued.issued_by_id == admin.id and issued.issued_at is not None
    assert "订单确认书" in pdf_text(issued_pdf(session, first))
    assert "Order confirmation" in pdf_text(issued_pdf(session, second))


def test_the_archived_bytes_stay_what_was_issued_after_the_order_changed(session, state, admin, seed):
    order = make_order(session, admin, reference="PO-OLD-1")
    issued = issue_document(session, state.registry, "order_confirmation", order, admin, "zh_CN")
    session.commit()
    kept = issued_pdf(session, issued)

    update_order(session, admin, order, {"version": order.version, "reference": "PO-NEW-2"})
    session.commit()
    again = issue_document(session, state.registry, "order_confirmation", order, admin, "zh_CN")
    session.commit()

    assert issued_pdf(session, issued) == kept
    assert "PO-OLD-1" in pdf_text(kept) and "PO-NEW-2" not in pdf_text(kept)
    assert "PO-NEW-2" in pdf_text(issued_pdf(session, again))
    assert again.sha256 != issued.sha256


def test_issuing_is_audited_on_the_order(session, state, admin, seed):
    order = make_order(session, admin)
    issued = issue_document(session, state.registry, "order_sheet", order, admin, "en")
    session.commit()
    entry = session.scalars(
        select(AuditLog).where(AuditLog.order_id == order.id, AuditLog.entity == "issued_document")
    ).one()
    assert entry.action == "issue" and entry.entity_id == issued.id and entry.actor_id == admin.id
    assert entry.changes["sha256"] == issued.sha256 and entry.changes["document"] == "order_sheet"


def test_a_damaged_archive_file_is_refused_not_served(session, state, admin, seed):
    order = make_order(session, admin)
    issued = issue_document(session, state.registry, "order_sheet", order, admin, "en")
    session.commit()
    path = file_store(session).path(issued.sha256)
    path.write_bytes(b"%PDF-1.7 not what was issued")
    with pytest.raises(ServiceError) as refused:
        issued_pdf(session, issued)
    assert refused.value.code == "archive_damaged" and refused.value.status == 500


def test_a_record_that_no_longer_matches_its_file_is_refused(session, state, admin, seed):
    order = make_order(session, admin)
    issued = issue_document(session, state.registry, "order_sheet", order, admin, "en")
    session.commit()
    issued.size += 1
    with pytest.raises(ServiceError, match="no longer matches"):
        issued_pdf(session, issued)


@pytest.mark.req("CORE-4")
def test_issuing_needs_the_order_in_scope_and_changes_nothing_when_refused(session, state, admin, seed):
    order = make_order(session, admin)
    outsider = make_user(session, "outsider@example.com", ["sales"], branch=seed["cd"])
    with pytest.raises(NotFound):
        issue_document(session, state.registry, "order_confirmation", order, outsider, "zh_CN")
    with pytest.raises(NotFound):
        issue_document(session, state.registry, "no_such_document", order, admin, "zh_CN")
    with pytest.raises(ServiceError, match="printed in zh_CN or en"):
        issue_document(session, state.registry, "order_sheet", order, admin, "fr")
    session.rollback()
    assert session.scalars(select(IssuedDocument)).all() == []
    assert not session.scalars(select(AuditLog).where(AuditLog.entity == "issued_document")).all()


@pytest.mark.req("CORE-4")
def test_reading_an_issued_document_obeys_the_scope(session, state, admin, seed):
    order = make_order(session, admin)
    other = make_order(session, admin, customer="C002")
    issued = issue_document(session, state.registry, "order_sheet", order, admin, "zh_CN")
    session.commit()
    outsider = make_user(session, "outsider@example.com", ["sales"], branch=seed["cd"])
    assert get_issued(session, state.registry, admin, order.id, issued.id).id == issued.id
    with pytest.raises(NotFound):
        get_issued(session, state.registry, outsider, order.id, issued.id)
    with pytest.raises(NotFound):  # an issued document is reached only through its own order
        get_issued(session, state.registry, admin, other.id, issued.id)
    assert visible_issued_documents(session, state.registry, admin, order) == [issued]


def test_documents_of_a_type_no_longer_registered_are_kept_for_auditors_only(session, state, admin, seed):
    order = make_order(session, admin)
    session.add(
        IssuedDocument(
            order_id=order.id,
            document="retired.quote",
            language="zh_CN",
            filename="x.pdf",
            size=1,
            sha256="0" * 64,
            issued_by_id=admin.id,
        )
    )
    session.commit()
    clerk = make_user(session, "clerk@example.com", ["order_clerk"], branch=seed["hq"])
    assert [d.document for d in visible_issued_documents(session, state.registry, admin, order)] == ["retired.quote"]
    assert visible_issued_documents(session, state.registry, clerk, order) == []
