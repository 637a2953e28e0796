"""Batch import of CSV and XLSX orders: read, preview, commit, error report (IN-1, IN-2)."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import AuditLog, NumberSequence, Order, User
from core.services import ServiceError
from core.testing import make_order, make_user
from plugins.intake.importing import commit, error_report, preview, read_rows

HEADER = ["order", "customer", "channel", "reference", "requested_date", "payment_method", "product", "quantity"]
#: A: good (two lines); B: text quantity; C: unknown SKU; D: unknown customer; E: bad date.
MIXED = [
    ["A", "C001", "phone", "PO-A", "2030-01-15", "monthly_settlement", "P-100", "2"],
    ["A", "", "", "", "", "", "P-300", "100"],
    ["B", "C001", "email", "PO-B", "2030-01-15", "prepayment", "P-100", "two"],
    ["C", "C002", "fax", "PO-C", "2030-01-15", "prepayment", "P-999", "1"],
    ["D", "C999", "offline", "PO-D", "2030-01-15", "prepayment", "P-100", "1"],
    ["E", "C002", "offline", "PO-E", "15/01/2030", "prepayment", "P-200", "1"],
]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake"]


def as_csv(rows: Sequence[Sequence[Any]], encoding: str = "utf-8", header: Sequence[str] = HEADER) -> bytes:
    lines = [",".join(str(v) for v in row) for row in [header, *rows]]
    return ("\n".join(lines) + "\n").encode(encoding)


def as_xlsx(rows: Sequence[Sequence[Any]], header: Sequence[str] = HEADER) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def counts(session: Session) -> tuple[Any, ...]:
    session.expire_all()
    return (
        session.scalar(select(func.count(Order.id))),
        session.scalar(select(func.count(AuditLog.id))),
        tuple(session.execute(select(NumberSequence.code, NumberSequence.year, NumberSequence.next_value)).all()),
    )


def codes(result: Any) -> dict[int, list[str]]:
    return {row.number: [e.code for e in row.errors] for row in result.rows if row.errors}


@pytest.mark.req("IN-1")
def test_csv_preview_gives_every_bad_row_its_error_and_writes_nothing(
    session: Session, admin: User, seed: dict[str, Any]
) -> None:
    make_order(session, admin)  # the sequence exists, so a consumed number would show
    before = counts(session)
    result = preview(session, admin, read_rows("orders.csv", as_csv(MIXED)))
    assert codes(result) == {
        4: ["quantity_not_number"],
        5: ["product_unknown"],
        6: ["customer_unknown"],
        7: ["date_invalid"],
    }
    assert [o.key for o in result.orders if o.valid] == ["A"]
    assert "'two' is not a number" in result.rows[2].errors[0].message
    assert not session.new and not session.dirty
    assert counts(session) == before


@pytest.mark.req("IN-1")
def test_all_or_nothing_writes_nothing_when_one_order_is_bad(
    session: Session, admin: User, seed: dict[str, Any]
) -> None:
    make_order(session, admin)
    before = counts(session)
    rows = read_rows("orders.csv", as_csv(MIXED[:3]))  # A good, B bad
    result = commit(session, admin, preview(session, admin, rows), mode="all")
    session.commit()
    assert result.created == [] and not result.written
    assert {s.key for s in result.skipped} == {"A", "B"}
    assert counts(session) == before


@pytest.mark.req("IN-1")
@pytest.mark.req("IN-2")
def test_valid_only_creates_the_good_orders_with_channel_and_reference(
    session: Session, admin: User, seed: dict[str, Any]
) -> None:
    rows = read_rows("orders.csv", as_csv(MIXED))
    result = commit(session, admin, preview(session, admin, rows), mode="valid")
    session.commit()
    assert len(result.created) == 1
    assert sorted(s.key for s in result.skipped) == ["B", "C", "D", "E"]
    order = session.scalar(select(Order).where(Order.number == result.created[0]))
    assert order is not None
    assert (order.channel, order.reference, order.status, order.customer.code) == ("phone", "PO-A", "draft", "C001")
    assert order.requested_date == dt.date(2030, 1, 15)
    assert [(line.product.sku, line.quantity) for line in order.lines] == [("P-100", 2), ("P-300", 100)]
    assert session.scalar(select(AuditLog).where(AuditLog.entity_id == order.id, AuditLog.action == "create"))


@pytest.mark.req("IN-1")
def test_all_mode_creates_every_order_when_all_are_valid(session: Session, admin: User, seed: dict[str, Any]) -> None:
    good = [*MIXED[:2], ["F", "C002", "", "PO-F", "", "cash_on_delivery", "P-200", "1"]]
    result = commit(session, admin, preview(session, admin, read_rows("a.csv", as_csv(good))), mode="all")
    session.commit()
    assert len(result.created) == 2 and result.skipped == []
    channels = session.scalars(select(Order.channel).where(Order.number.in_(result.created)).order_by(Order.id))
    assert list(channels) == ["phone", "offline"]  # a blank channel is offline


@pytest.mark.req("IN-1")
def test_xlsx_mixed_rows_in_both_modes(session: Session, admin: User, seed: dict[str, Any]) -> None:
    rows: list[list[Any]] = [
        ["A", "C001", "phone", "X-A", dt.datetime(2030, 2, 1), "monthly_settlement", "P-100", 3],
        ["A", None, None, None, None, None, "P-300", 12.5],
        ["B", "C001", "phone", "X-B", dt.date(2030, 2, 1), "monthly_settlement", "P-100", "lots"],
        ["C", "C002", "email", "X-C", "2030-02-01", "prepayment", "NOPE", 1],
    ]
    data = as_xlsx(rows)
    before = counts(session)
    checked = preview(session, admin, read_rows("orders.xlsx", data))
    assert codes(checked) == {4: ["quantity_not_number"], 5: ["product_unknown"]}
    assert commit(session, admin, checked, mode="all").created == []
    session.commit()
    assert counts(session) == before
    result = commit(session, admin, preview(session, admin, read_rows("orders.xlsx", data)), mode="valid")
    session.commit()
    order = session.scalar(select(Order).where(Order.number == result.created[0]))
    assert order is not None and len(result.created) == 1
    assert order.requested_date == dt.date(2030, 2, 1)
    assert [line.quantity for line in order.lines] == [3, Decimal("12.5")]


@pytest.mark.req("IN-1")
def test_chinese_headers_and_values_in_a_gb18030_csv(session: Session, admin: User, seed: dict[str, Any]) -> None:
    header = ["订单号", "客户", "渠道", "合同号", "要求日期", "付款方式", "产品", "数量", "单价", "备注"]
    rows = [["1", "C001", "传真", "HT-001", "2030-03-01", "月结", "P-100", "1", "1100", "急件 加急处理"]]
    data = as_csv(rows, "gb18030", header)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    result = commit(session, admin, preview(session, admin, read_rows("订单.csv", data)), mode="all")
    session.commit()
    order = session.scalar(select(Order).where(Order.number == result.created[0]))
    assert order is not None
    assert (order.channel, order.reference, order.payment_method, order.note) == (
        "fax",
        "HT-001",
        "monthly_settlement",
        "急件 加急处理",
    )
    assert order.lines[0].unit_price == 1100


@pytest.mark.req("IN-1")
def test_utf8_with_bom_and_semicolons(session: Session, admin: User, seed: dict[str, Any]) -> None:
    text = "\ufeff" + ";".join(HEADER) + "\n" + ";".join(MIXED[0]) + "\n"
    rows = read_rows("bom.csv", text.encode("utf-8"))
    assert rows[0].number == 2 and rows[0].values["order"] == "A" and rows[0].values["quantity"] == "2"


def _zip_not_xlsx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return out.getvalue()


@pytest.mark.req("IN-1")
@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"<!DOCTYPE html><html><body><table><tr><td>order</td></tr></table></body></html>", "web page"),
        (b"<table><tr><td>order</td></tr></table>", "web page"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, ".xls"),
        (b"%PDF-1.4\n\x00\x01\x02binary", "binary"),
        (bytes(range(256)) * 4, "binary"),
        (_zip_not_xlsx(), "not an XLSX"),
        (b"PK\x03\x04garbage", "damaged"),
        (b"", "empty"),
    ],
)
def test_a_file_that_is_not_csv_or_xlsx_is_refused(data: bytes, words: str) -> None:
    with pytest.raises(ServiceError) as caught:
        read_rows("orders.csv", data)
    assert caught.value.code in ("file_type_unsupported", "file_empty")
    assert words in caught.value.message


@pytest.mark.req("IN-1")
def test_a_too_large_file_is_refused() -> None:
    data = as_csv(MIXED * 50)
    with pytest.raises(ServiceError) as caught:
        read_rows("big.csv", data, max_bytes=1000)
    assert caught.value.code == "file_too_large" and "at most 1,000 bytes" in caught.value.message
    with pytest.raises(ServiceError) as caught:
        read_rows("big.csv", data, max_rows=10)
    assert caught.value.code == "too_many_rows" and "more than 10 rows" in caught.value.message


@pytest.mark.req("IN-1")
def test_unknown_and_missing_columns_are_named() -> None:
    with pytest.raises(ServiceError) as caught:
        read_rows("x.csv", as_csv([MIXED[0] + ["x", "y"]], header=[*HEADER, "colour", "颜色"]))
    assert caught.value.code == "unknown_columns" and "colour, 颜色" in caught.value.message
    with pytest.raises(ServiceError) as caught:
        read_rows("x.csv", b"order,customer,product\nA,C001,P-100\n")
    assert caught.value.code == "missing_columns" and "quantity" in caught.value.message


@pytest.mark.req("IN-1")
def test_duplicate_reference_in_the_file_and_in_the_database(
    session: Session, admin: User, seed: dict[str, Any]
) -> None:
    make_order(session, admin, reference="PO-OLD", channel="phone")
    rows = [
        ["A", "C001", "phone", "PO-NEW", "", "prepayment", "P-100", "1"],
        ["B", "C001", "phone", "PO-NEW", "", "prepayment", "P-100", "1"],
        ["C", "C001", "phone", "PO-OLD", "", "prepayment", "P-100", "1"],
        ["D", "C001", "email", "PO-OLD", "", "prepayment", "P-100", "1"],  # another channel: not a duplicate
    ]
    result = preview(session, admin, read_rows("d.csv", as_csv(rows)))
    assert codes(result) == {3: ["reference_duplicate_in_file"], 4: ["reference_exists"]}
    assert "row 2" in result.rows[1].errors[0].message
    done = commit(session, admin, result, mode="valid")
    assert len(done.created) == 2 and [s.key for s in done.skipped] == ["B", "C"]


@pytest.mark.req("IN-1")
def test_inconsistent_header_values_within_an_order(session: Session, admin: User, seed: dict[str, Any]) -> None:
    rows = [
        ["A", "C001", "phone", "R1", "2030-01-01", "prepayment", "P-100", "1"],
        ["A", "C002", "phone", "R1", "2030-01-02", "prepayment", "P-300", "1"],
    ]
    result = preview(session, admin, read_rows("i.csv", as_csv(rows)))
    assert [(e.code, e.column) for e in result.rows[1].errors] == [
        ("inconsistent_value", "customer"),
        ("inconsistent_value", "requested_date"),
    ]
    assert "row 2" in result.rows[1].errors[0].message and not result.valid


@pytest.mark.req("IN-1")
def test_import_channels_only(session: Session, admin: User, seed: dict[str, Any]) -> None:
    rows = [["A", "C001", "portal", "", "", "prepayment", "P-100", "1"]]
    result = preview(session, admin, read_rows("c.csv", as_csv(rows)))
    assert codes(result) == {2: ["channel_not_allowed"]}


@pytest.mark.req("IN-2")
def test_scope_portal_users_and_permission(session: Session, seed: dict[str, Any]) -> None:
    seed["remote"].branch_id = seed["cd"].id
    session.commit()
    clerk = make_user(session, "clerk@example.com", ["order_clerk"], branch=seed["hq"])
    rows = read_rows("s.csv", as_csv([MIXED[0], ["B", "C002", "", "", "", "prepayment", "P-100", "1"]]))
    result = preview(session, clerk, rows)
    assert codes(result) == {3: ["customer_out_of_scope"]}
    portal = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    sales = make_user(session, "sales@example.com", ["sales"])
    for user in (portal, sales):
        with pytest.raises(ServiceError) as caught:
            preview(session, user, rows)
        assert caught.value.status == 403


@pytest.mark.req("IN-1")
def test_error_report_opens_and_names_the_bad_rows(session: Session, admin: User, seed: dict[str, Any]) -> None:
    rows = [*MIXED, ["G", "C001", "phone", "=HYPERLINK(1)", "", "prepayment", "P-100", "1"]]
    report = error_report(preview(session, admin, read_rows("orders.csv", as_csv(rows))))
    sheet = load_workbook(io.BytesIO(report)).active
    assert sheet is not None
    table = list(sheet.iter_rows(values_only=True))
    assert table[0] == ("row", *HEADER, "errors", "error codes")
    assert len(table) == len(rows) + 1
    by_row = {line[0]: line for line in table[1:]}
    assert by_row[2][-1] in ("", None)
    assert "not a number" in by_row[4][-2] and by_row[4][-1] == "quantity_not_number"
    assert "Unknown product 'P-999'" in by_row[5][-2]
    assert "customer_unknown" in by_row[6][-1] and "date_invalid" in by_row[7][-1]
    assert by_row[8][4] == "'=HYPERLINK(1)"  # text, never a formula, and quoted so editing cannot revive it
