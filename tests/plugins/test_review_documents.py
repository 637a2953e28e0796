"""Review's documents (RV-1, RV-2, RV-8): the order review sheet (订单评审表) with every department's
verdict, figures and proposed date; the quotation (报价单) with its lines, margins and flag; the
order change request form (订单变更申请表) with content, impact, assessments and decision. They
print in Chinese and English, are internal, and obey their permissions and the data scope."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.documents import render_document
from core.models import Order, User
from core.plugins import Registry
from core.services.orders import take_action
from core.testing import csrf_token, login, make_order, make_user
from plugins.review import flow, quotation, sheets
from plugins.review.models import (
    ReviewChangeAssessment,
    ReviewChangeRequest,
    ReviewDepartment,
    ReviewSheet,
    ReviewTask,
)


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["review"]


@pytest.fixture
def registry(state: Any) -> Registry:
    return state.registry


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "sales": make_user(session, "sales@example.com", ["sales"], branch=hq),
        "technical": make_user(session, "tech@example.com", ["review_technical"], branch=hq),
        "production": make_user(session, "prod@example.com", ["review_production"], branch=hq),
        "finance": make_user(session, "finance@example.com", ["finance"], branch=hq),
        "manager": make_user(session, "manager@example.com", ["sales_manager"], branch=hq),
    }


def pdf_text(data: bytes) -> str:
    """All text of a PDF, pages joined, runs of white space as one space (table cells wrap)."""
    assert data.startswith(b"%PDF")
    return re.sub(r"\s+", " ", "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages))


def chinese(data: bytes) -> str:
    """A Chinese PDF's text without white space (a wrapped cell breaks a sentence anywhere)."""
    return pdf_text(data).replace(" ", "")


#: A control cabinet is not a regular product: all five departments review the order.
CABINET = [
    {"product": "P-200", "quantity": "1", "unit_price": "8800.00"},
    {"product": "P-100", "quantity": "2", "unit_price": "1150.00"},
]


def submit(session: Session, registry: Registry, actor: User) -> Order:
    """Enter and submit a non-regular order: with only review enabled it reaches department review at once."""
    order = make_order(session, actor, requested_date="2030-03-15", lines=CABINET)
    take_action(session, registry, actor, order, "submit")
    session.commit()
    return order


def task_of(session: Session, order: Order, code: str) -> ReviewTask:
    return session.scalars(
        select(ReviewTask)
        .join(ReviewSheet)
        .join(ReviewDepartment)
        .where(ReviewSheet.order_id == order.id, ReviewDepartment.code == code)
    ).one()


def reviewed_order(session: Session, registry: Registry, people: dict[str, User]) -> Order:
    """A submitted order with the technical department's verdict and production's."""
    order = submit(session, registry, people["sales"])
    assert order.step == flow.DEPARTMENT_REVIEW
    sheets.record_verdict(
        session,
        registry,
        people["technical"],
        task_of(session, order, "technical"),
        verdict="approve_with_conditions",
        comment="工艺可行，需改模具",
        conditions="客户确认图纸 B 版",
        figures={"feasible": True, "difficulties": "密封结构", "solution": "更换密封圈", "solution_date": "2030-02-01"},
    )
    sheets.record_verdict(
        session,
        registry,
        people["production"],
        task_of(session, order, "production"),
        verdict="approve",
        comment="产能充足",
        figures={"capacity_ok": True, "materials_ok": True, "completion_date": "2030-02-20"},
    )
    session.commit()
    return order


@pytest.mark.req("RV-1")
def test_review_sheet_in_chinese_has_every_verdict_with_figures_and_dates(session, registry, admin, seed, people):
    order = reviewed_order(session, registry, people)
    text = chinese(render_document(session, registry, "review_sheet", order, "zh_CN"))
    assert "订单评审表" in text and order.number in text
    assert "重庆山城机电有限公司" in text  # the order header
    assert "控制柜" in text and "技术部" in text and "有条件批准" in text and "工艺可行，需改模具" in text
    assert "客户确认图纸B版" in text  # conditions
    assert "技术上可行" in text and "是" in text and "更换密封圈" in text  # figures with their labels
    assert "2030-02-01" in text and "2030-02-20" in text  # proposed dates
    assert "产能充足" in text and "tech" in text and "prod" in text  # who answered
    assert "尚未给出评审意见" in text  # the departments still to answer
    assert "第1轮评审" in text


@pytest.mark.req("RV-1")
def test_review_sheet_in_english(session, registry, admin, seed, people):
    order = reviewed_order(session, registry, people)
    text = pdf_text(render_document(session, registry, "review_sheet", order, "en"))
    assert "Order review sheet" in text and "Approve with conditions" in text
    assert "Technically feasible" in text and "Yes" in text and "Review round 1" in text
    assert "订单评审表" not in text


@pytest.mark.req("RV-1")
def test_documents_of_an_order_not_yet_reviewed_still_print(session, registry, admin, seed):
    order = make_order(session, admin)
    assert "本订单尚未评审" in chinese(render_document(session, registry, "review_sheet", order, "zh_CN"))
    assert "This order has no quotation yet." in pdf_text(render_document(session, registry, "quotation", order, "en"))
    assert "This order has no change requests." in pdf_text(
        render_document(session, registry, "change_request", order, "en")
    )


@pytest.mark.req("RV-2")
def test_quotation_prints_lines_totals_margins_and_the_flag(session, registry, admin, seed, people):
    order = make_order(session, people["sales"])
    order.step, order.status = flow.CONSOLIDATION, "submitted"  # where quotations may be edited
    session.commit()
    quotation.save(
        session,
        people["finance"],
        order,
        lines=[
            {"kind": "material", "description": "钢材 Q235", "amount": "3000"},
            {"kind": "expense", "description": "佣金", "amount": "100"},
        ],
        payment_terms="月结 30 天",
    )
    session.commit()
    text = chinese(render_document(session, registry, "quotation", order, "zh_CN"))
    assert "报价单" in text and order.number in text
    assert "钢材Q235" in text and "材料" in text and "销售费用" in text
    assert "3,000.00" in text and "3,550.00" in text  # cost and revenue
    assert "15.49%" in text and "12.68%" in text and "毛利率" in text and "净利率" in text
    assert "月结30天" in text and "利润率达到下限要求" in text

    quotation.save(session, people["finance"], order, lines=[{"kind": "material", "amount": "3400"}])
    session.commit()
    english = pdf_text(render_document(session, registry, "quotation", order, "en"))
    assert "Below the minimum margin" in english and "4.23%" in english
    assert "Gross margin" in english and "Quotation" in english


def _change_request(session: Session, order: Order, people: dict[str, User]) -> ReviewChangeRequest:
    production = session.scalars(select(ReviewDepartment).where(ReviewDepartment.code == "production")).one()
    quality = session.scalars(select(ReviewDepartment).where(ReviewDepartment.code == "quality")).one()
    line = order.lines[0]
    request = ReviewChangeRequest(
        order_id=order.id,
        number=1,
        kind="change",
        status="approved",
        content={
            "lines": [{"line_id": line.id, "quantity": "150"}],
            "requested_date": "2030-04-01",
            "specification": "外壳改为不锈钢",
        },
        scope="增加数量并更换外壳材质",
        reason="客户追加订货",
        impact={flow.DEPARTMENT_REVIEW: "需重新评审产能", "confirmed": "交期顺延两周"},
        expected_days=3,
        new_delivery_date=dt.date(2030, 4, 15),
        rewind_to=flow.DEPARTMENT_REVIEW,
        requested_by_id=people["sales"].id,
        decided_by_id=people["manager"].id,
        decided_at=dt.datetime(2030, 1, 10, 2, 0, tzinfo=dt.UTC),
        decision_reason="同意变更",
        assessments=[
            ReviewChangeAssessment(
                department_id=production.id,
                verdict="approve",
                comment="产能可满足",
                assessed_by_id=people["production"].id,
                assessed_at=dt.datetime(2030, 1, 9, 2, 0, tzinfo=dt.UTC),
            ),
            ReviewChangeAssessment(department_id=quality.id),
        ],
    )
    session.add(request)
    session.commit()
    return request


@pytest.mark.req("RV-8")
def test_change_request_form_prints_content_impact_assessments_and_decision(session, registry, admin, seed, people):
    order = make_order(session, people["sales"])
    _change_request(session, order, people)
    text = chinese(render_document(session, registry, "change_request", order, "zh_CN"))
    assert "订单变更申请表" in text and order.number in text
    assert "第1号申请" in text and "变更" in text and "已批准" in text
    assert "客户追加订货" in text and "增加数量并更换外壳材质" in text  # reason and scope
    assert "P-100" in text and "150" in text  # the changed line by its product
    assert "2030-04-01" in text and "外壳改为不锈钢" in text
    assert "部门评审" in text and "需重新评审产能" in text and "交期顺延两周" in text  # impact per step
    assert "3天" in text and "2030-04-15" in text  # expected handling time, new delivery date
    assert "生产部" in text and "产能可满足" in text and "尚未评估" in text  # assessments
    assert "同意变更" in text and "manager" in text  # the decision and who took it

    english = pdf_text(render_document(session, registry, "change_request", order, "en"))
    assert "Order change request form" in english and "Impact on each step" in english
    assert "Department review" in english and "3 days" in english


@pytest.mark.req("RV-1")
def test_review_documents_are_internal_with_their_permissions(registry):
    documents = registry.documents
    assert documents["review_sheet"].permission == flow.READ
    assert documents["change_request"].permission == flow.READ
    assert documents["quotation"].permission == flow.MARGINS_READ
    assert not any(documents[name].for_customer for name in ("review_sheet", "quotation", "change_request"))


@pytest.mark.req("RV-2")
def test_the_pdfs_obey_permissions_and_the_data_scope(client, session, registry, admin, seed, people):
    order = make_order(session, people["sales"])
    base = f"/orders/{order.id}/documents"
    login(client, "sales@example.com", "test-pass-1")
    sheet = client.get(f"{base}/review_sheet.pdf?lang=zh_CN")
    assert sheet.status_code == 200 and sheet.mimetype == "application/pdf"
    assert order.number in pdf_text(sheet.data)
    assert client.get(f"{base}/change_request.pdf").status_code == 200
    assert client.get(f"{base}/quotation.pdf").status_code == 403  # sales sees no margins

    client.post("/logout", data={"csrf_token": csrf_token(client, "/orders")})
    login(client, "finance@example.com", "test-pass-1")
    assert client.get(f"{base}/quotation.pdf").status_code == 200

    client.post("/logout", data={"csrf_token": csrf_token(client, "/orders")})
    make_user(session, "sales2@example.com", ["sales"], branch=seed["hq"])
    login(client, "sales2@example.com", "test-pass-1")
    assert client.get(f"{base}/review_sheet.pdf").status_code == 404  # another salesperson's order
