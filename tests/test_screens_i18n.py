"""Chinese and English: each user sees their language, and core's catalogue is complete."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pytest
from babel import Locale
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from sqlalchemy import select

from core.contrib import STATUSES
from core.models import CHANNELS, PAYMENT_METHODS, URGENCIES, AuditLog, User
from core.testing import PASSWORD, csrf_token, login, make_order, make_user
from core.views import labels

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "core" / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"


def text(response: Any) -> str:
    """The page's HTML with entities decoded."""
    return html.unescape(response.get_data(as_text=True))


def post(client: Any, path: str, data: dict[str, Any], follow: bool = True) -> Any:
    """POST a form with the session's CSRF token."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/login")}, follow_redirects=follow)


def zh_catalogue() -> Any:
    with CATALOGUE.open("rb") as po:
        return read_po(po, locale="zh_Hans_CN")


def test_a_chinese_user_sees_chinese_and_an_english_user_english(app, session, admin, seed):
    order = make_order(session, admin)
    make_user(session, "li@example.com", ["admin"], language="zh_CN")
    make_user(session, "smith@example.com", ["admin"], language="en")

    chinese = app.test_client()
    login(chinese, "li@example.com", PASSWORD)
    page = text(chinese.get("/orders"))
    assert '<html lang="zh-CN">' in page
    assert ">订单</a>" in page and ">客户</a>" in page and ">产品</a>" in page
    assert "草稿" in page and "新建订单" in page and "电话" in page
    detail = text(chinese.get(f"/orders/{order.id}"))
    assert "订单明细" in detail and "历史记录" in detail and "月结" in detail and ">提交<" in detail
    assert "¥4,011.50" in detail

    english = app.test_client()
    login(english, "smith@example.com", PASSWORD)
    page = text(english.get("/orders"))
    assert '<html lang="en">' in page
    assert ">Orders</a>" in page and "Draft" in page and "New order" in page
    assert "订单" not in page.replace("重庆山城机电有限公司", "")


@pytest.mark.req("CORE-6")
def test_the_language_switch_is_saved_as_the_users_own_language(client, session, seed):
    user = make_user(session, "zhao@example.com", ["sales"], language="zh_CN")
    login(client, "zhao@example.com", PASSWORD)
    assert ">订单</a>" in text(client.get("/orders"))
    page = text(post(client, "/lang/en?next=/orders", {}))
    assert ">Orders</a>" in page
    session.commit()
    stored = session.scalars(select(User).where(User.id == user.id).execution_options(populate_existing=True)).one()
    assert stored.language == "en"
    changes = session.scalars(
        select(AuditLog.changes).where(AuditLog.entity == "user", AuditLog.action == "update")
    ).all()
    assert changes == [{"language": ["zh_CN", "en"]}]
    session.commit()
    # The choice outlives the session: the next login is in English too.
    client.post("/logout", data={"csrf_token": csrf_token(client, "/orders")})
    login(client, "zhao@example.com", PASSWORD)
    assert ">Orders</a>" in text(client.get("/orders"))


def test_the_login_page_follows_the_chosen_language(client):
    client.get("/lang/zh_CN")
    assert "登录" in text(client.get("/login"))
    client.get("/lang/en")
    assert "Log in" in text(client.get("/login"))


def test_service_messages_reach_a_chinese_user_in_chinese(client, session, seed):
    make_user(session, "qian@example.com", ["sales"], language="zh_CN")
    login(client, "qian@example.com", PASSWORD)
    form = {
        "customer": "C001",
        "channel": "phone",
        "payment_method": "prepayment",
        "currency": "CNY",
        "lines-0-product": "NOPE",
        "lines-0-quantity": "1",
    }
    page = text(post(client, "/orders/new", form))
    assert "未知产品 NOPE。" in page and "未保存任何内容" in page
    page = text(
        post(client, "/orders/new", {**form, "lines-0-product": "P-100", "lines-0-quantity": "0", "customer": ""})
    )
    assert "数量必须大于零。" in page and "此项为必填项。" in page


def test_the_catalogue_folder_is_where_babel_looks_for_zh_cn():
    # Babel reads "zh_CN" as zh_Hans_CN and gettext then looks in zh_Hans_CN/ or zh/,
    # never in zh_CN/: a catalogue there would silently leave every page in English.
    assert CATALOGUE.parent.parent.name == str(Locale.parse("zh_CN"))


def test_the_chinese_catalogue_has_no_untranslated_or_fuzzy_entries():
    catalogue = zh_catalogue()
    untranslated = [m.id for m in catalogue if m.id and not m.string]
    fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
    assert untranslated == [], f"untranslated in {CATALOGUE}: {untranslated}"
    assert fuzzy == [], f"fuzzy in {CATALOGUE}: {fuzzy}"
    assert not catalogue.fuzzy
    # Placeholders (%(name)s) in each translation match the original's.
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalogue.check()]
    assert problems == []


def test_the_chinese_catalogue_is_up_to_date_with_the_source():
    """Every translatable string in core is in the catalogue (re-extract and update if not:
    see babel.cfg)."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = dict(DEFAULT_KEYWORDS)
    found = {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT / "core"), method_map, options_map, keywords=keywords
        )
    }
    translated = {m.id for m in zh_catalogue() if m.id}
    assert sorted(found - translated) == []


def test_every_code_and_core_label_has_a_display_label():
    assert set(labels.STATUS_LABELS) == set(STATUSES) == set(labels.STATUS_COLOURS)
    assert len(set(labels.STATUS_COLOURS.values())) == len(STATUSES), "one colour per status"
    assert set(labels.CHANNEL_LABELS) == set(CHANNELS)
    assert set(labels.PAYMENT_METHOD_LABELS) == set(PAYMENT_METHODS)
    assert set(labels.URGENCY_LABELS) == set(URGENCIES)
    from core.builtin import PERMISSIONS, ordo_menu_items
    from core.workflow import CORE_STEPS

    data = {step.label for step in CORE_STEPS} | {step.help for step in CORE_STEPS}
    data |= {a.label for step in CORE_STEPS for a in step.actions} | {
        a.confirm for s in CORE_STEPS for a in s.actions if a.confirm
    }
    data |= {item.label for item in ordo_menu_items(user=None)} | {p.label for p in PERMISSIONS}
    translated = {m.id for m in zh_catalogue() if m.id and m.string}
    assert sorted(data - translated) == []
