"""notify(): rows written in the caller's transaction, recipients, languages, channels, dedupe."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from core.db import utcnow
from core.models import IssuedDocument, Notification, OutboxMessage, User
from core.notify import ToCustomer, ToDepartment, ToRole, ToUser, notify
from core.notify.outbox import cancel, mark_sent, outbox_counts, retry
from core.services import ServiceError
from core.settings import set_setting
from core.testing import make_order, make_user

pytestmark = pytest.mark.req("CORE-7")

STATUS_CONTEXT = {"from_status": "submitted", "to_status": "confirmed"}


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_a_rolled_back_change_sends_nothing_and_a_committed_one_keeps_its_messages(session, admin, seed):
    order = make_order(session, admin)
    notify(session, "order_status_changed", to=ToCustomer(seed["local"].id), order=order, context=STATUS_CONTEXT)
    assert count(session, OutboxMessage) == 1  # visible inside the transaction …
    session.rollback()
    assert count(session, OutboxMessage) == 0  # … and gone with it
    assert count(session, Notification) == 0

    queued = notify(
        session, "order_status_changed", to=ToCustomer(seed["local"].id), order=order, context=STATUS_CONTEXT
    )
    session.commit()
    session.expire_all()
    assert [m.id for m in session.scalars(select(OutboxMessage))] == [queued[0].id]
    assert count(session, Notification) == 1


def test_a_customer_gets_an_email_per_contact_address_and_one_portal_notification(session, admin, seed):
    customer = seed["local"]
    customer.contacts[0].email = "ZHANG@example.com"
    from core.models import CustomerContact

    customer.contacts.append(CustomerContact(name="王芳", email="zhang@example.com"))  # same address, other case
    customer.contacts.append(CustomerContact(name="刘强", email="liu@example.com"))
    customer.contacts.append(CustomerContact(name="赵敏", phone="023-1"))  # no e-mail: skipped
    session.commit()
    order = make_order(session, admin)

    queued = notify(session, "order_status_changed", to=ToCustomer(customer.id), order=order, context=STATUS_CONTEXT)
    session.commit()

    assert [(m.channel, m.address, m.recipient_name) for m in queued] == [
        ("email", "ZHANG@example.com", "张伟"),
        ("email", "liu@example.com", "刘强"),
    ]
    assert all(m.customer_id == customer.id and m.order_id == order.id and m.status == "queued" for m in queued)
    assert "尊敬的张伟" in queued[0].body and "尊敬的刘强" in queued[1].body
    portal = session.scalars(select(Notification)).all()
    assert [(n.customer_id, n.user_id, n.order_id) for n in portal] == [(customer.id, None, order.id)]
    assert order.number in portal[0].subject


def test_users_are_found_by_id_role_and_department_once_each_and_only_when_active(session, admin, seed):
    clerk = make_user(session, "clerk@example.com", ["order_clerk"], department=seed["sales_dept"], language="zh_CN")
    other_branch = make_user(session, "cd@example.com", ["order_clerk"], branch=seed["cd"])
    gone = make_user(session, "gone@example.com", ["order_clerk"], department=seed["sales_dept"])
    gone.active = False
    session.commit()

    by_role = notify(session, "order_status_changed", to=ToRole("order_clerk"), context=STATUS_CONTEXT)
    assert sorted(m.address for m in by_role) == ["cd@example.com", "clerk@example.com"]
    session.rollback()

    in_branch = notify(
        session, "order_status_changed", to=ToRole("order_clerk", branch_id=seed["cd"].id), context=STATUS_CONTEXT
    )
    assert [m.user_id for m in in_branch] == [other_branch.id]
    session.rollback()

    # Named three ways, notified once; the inactive user never.
    queued = notify(
        session,
        "order_status_changed",
        to=[ToUser(clerk.id), ToDepartment(seed["sales_dept"].id), ToRole("order_clerk"), ToUser(gone.id)],
        context=STATUS_CONTEXT,
    )
    assert sorted(m.address for m in queued) == ["cd@example.com", "clerk@example.com"]
    bells = session.scalars(select(Notification).order_by(Notification.user_id)).all()
    assert [n.user_id for n in bells] == sorted([clerk.id, other_branch.id])
    assert all(n.customer_id is None for n in bells)


def test_each_recipient_reads_the_notice_in_their_language(session, admin, seed):
    # Managers who see every order (a salesperson hears only of their own orders).
    chinese = make_user(session, "zh@example.com", ["general_manager"], language="zh_CN")
    english = make_user(session, "en@example.com", ["general_manager"], language="en")
    seed["remote"].language = "en"
    session.commit()
    order = make_order(session, admin)

    notify(
        session,
        "order_status_changed",
        to=[ToUser(chinese.id), ToUser(english.id), ToCustomer(seed["remote"].id)],
        order=order,
        context=STATUS_CONTEXT,
    )
    by_address = {m.address: m for m in session.scalars(select(OutboxMessage))}
    zh, en, customer = by_address["zh@example.com"], by_address["en@example.com"], by_address["li@example.com"]
    assert (zh.language, en.language, customer.language) == ("zh_CN", "en", "en")
    assert zh.subject == f"订单 {order.number} 状态更新：已确认"
    assert "状态已由「已提交」更新为：已确认" in zh.body and "¥" in zh.body
    assert en.subject == f"Order {order.number}: Confirmed"
    assert 'has changed from "Submitted" to: Confirmed' in en.body
    assert "Dear 李娜," in customer.body


def test_a_language_a_template_does_not_speak_falls_back_to_chinese(session, admin, seed):
    user = make_user(session, "fr@example.com", ["sales"], language="fr")
    queued = notify(session, "order_status_changed", to=ToUser(user.id), context=STATUS_CONTEXT)
    assert queued[0].language == "zh_CN"
    assert "状态已由" in queued[0].body


def test_channels_come_from_the_argument_or_the_settings_and_unknown_ones_are_skipped(
    session, state, admin, seed, caplog
):
    user = make_user(session, "wang@example.com", ["sales"])
    assert [m.channel for m in notify(session, "order_status_changed", to=ToUser(user.id), context=STATUS_CONTEXT)] == [
        "email"
    ]
    assert count(session, Notification) == 1
    session.rollback()

    assert notify(session, "order_status_changed", to=ToUser(user.id), context=STATUS_CONTEXT, channels=["inapp"]) == []
    assert count(session, Notification) == 1
    session.rollback()

    set_setting(session, "core.notify.channels", "email, pigeon", registry=state.registry)
    session.commit()
    with caplog.at_level(logging.WARNING, logger="core.notify"):
        queued = notify(session, "order_status_changed", to=ToUser(user.id), context=STATUS_CONTEXT)
    assert [m.channel for m in queued] == ["email"]
    assert count(session, Notification) == 0
    assert "'pigeon' is not known" in caplog.text


def test_a_dedupe_key_queues_a_notice_at_most_once(session, admin, seed):
    def send():
        return notify(
            session,
            "order_status_changed",
            to=ToCustomer(seed["local"].id),
            context=STATUS_CONTEXT,
            dedupe_key="reminder:42",
        )

    first = send()
    session.commit()
    assert send() == []
    session.commit()
    assert count(session, OutboxMessage) == 1 and count(session, Notification) == 1
    assert first[0].dedupe_key == "reminder:42:email:zhang@example.com"


def test_unknown_templates_and_recipients_are_refused_clearly(session, seed):
    with pytest.raises(KeyError, match="no notification template 'nope' is registered"):
        notify(session, "nope", to=ToCustomer(seed["local"].id))
    with pytest.raises(TypeError, match="ToUser, ToRole, ToDepartment or ToCustomer"):
        notify(session, "order_status_changed", to=["someone@example.com"], context=STATUS_CONTEXT)
    assert count(session, OutboxMessage) == 0


def test_an_issued_document_rides_along_on_emails_only(session, admin, seed):
    order = make_order(session, admin)
    document = IssuedDocument(
        order_id=order.id, document="order_confirmation", language="zh_CN", filename="x.pdf", size=1, sha256="0" * 64
    )
    session.add(document)
    session.flush()
    queued = notify(
        session,
        "order_status_changed",
        to=ToCustomer(seed["local"].id),
        order=order,
        context=STATUS_CONTEXT,
        document=document,
    )
    assert [m.document_id for m in queued] == [document.id]


def make_message(session, seed, status: str) -> OutboxMessage:
    (message,) = notify(session, "order_status_changed", to=ToCustomer(seed["local"].id), context=STATUS_CONTEXT)
    message.status = status
    session.commit()
    return message


def test_an_administrator_resends_a_failed_message_to_a_corrected_address(session, admin, seed):
    message = make_message(session, seed, "failed")
    message.last_error = "'zhang@@example' is not a valid e-mail address"
    message.attempts = 8
    with pytest.raises(ServiceError) as bad:
        retry(session, message.id, admin, address="still wrong")
    assert bad.value.status == 422 and "address" in bad.value.details
    assert message.status == "failed"

    retry(session, message.id, admin, address=" zhang.wei@example.com ")
    session.commit()
    assert (message.status, message.address, message.attempts) == ("queued", "zhang.wei@example.com", 8)
    from core.models import AuditLog

    entry = session.scalars(select(AuditLog).where(AuditLog.entity == "outbox_message")).one()
    assert entry.action == "retry" and entry.actor_id == admin.id
    assert entry.changes["address"] == ["zhang@example.com", "zhang.wei@example.com"]


def test_outbox_operations_check_the_state_and_the_id(session, admin, seed):
    sent = make_message(session, seed, "sent")
    uncertain = make_message(session, seed, "uncertain")
    for operation in (retry, cancel, mark_sent):
        with pytest.raises(ServiceError) as refused:
            operation(session, sent.id, admin)
        assert refused.value.status == 409 and "is sent" in refused.value.message
        with pytest.raises(ServiceError) as missing:
            operation(session, 999_999, admin)
        assert missing.value.status == 404
    mark_sent(session, uncertain.id, admin)
    queued = make_message(session, seed, "queued")
    cancel(session, queued.id, admin)
    session.commit()
    assert (uncertain.status, queued.status) == ("sent", "cancelled")
    counts = outbox_counts(session)
    assert counts["sent"] == 2 and counts["cancelled"] == 1 and counts["failed"] == 0
    assert set(counts) == {"queued", "sending", "sent", "failed", "uncertain", "cancelled"}


def test_only_active_users_are_addressed_even_when_named_directly(session, seed):
    user = make_user(session, "left@example.com", ["sales"])
    session.get(User, user.id).active = False
    session.commit()
    assert notify(session, "order_status_changed", to=ToUser(user.id), context=STATUS_CONTEXT) == []
    assert count(session, Notification) == 0


def test_staff_hear_about_an_order_only_when_it_lies_in_their_data_scope(session, admin, seed):
    hq, sales = seed["hq"], seed["sales_dept"]
    owner = make_user(session, "owner@example.com", ["sales"], branch=hq, department=sales)
    colleague = make_user(session, "colleague@example.com", ["sales"], branch=hq, department=sales)
    manager = make_user(session, "boss@example.com", ["sales_manager"], branch=hq, department=sales)
    elsewhere = make_user(session, "cd-boss@example.com", ["sales_manager"], branch=seed["cd"], department=sales)
    order = make_order(session, owner)

    queued = notify(
        session,
        "order_status_changed",
        to=[ToRole("sales"), ToDepartment(seed["sales_dept"].id), ToUser(colleague.id), ToRole("sales_manager")],
        order=order,
        context=STATUS_CONTEXT,
    )

    # The colleague's scope is "own" and the order is not theirs; the other manager's scope is
    # another branch: nothing about the order reaches either of them.
    assert elsewhere.id not in {m.user_id for m in queued}
    assert sorted(m.address for m in queued) == ["boss@example.com", "owner@example.com"]
    bells = session.scalars(select(Notification.user_id)).all()
    assert sorted(bells) == sorted([owner.id, manager.id])
    session.rollback()
    # Without an order there is nothing to hide.
    plain = notify(session, "order_status_changed", to=ToUser(colleague.id), context=STATUS_CONTEXT)
    assert [m.address for m in plain] == ["colleague@example.com"]


def test_a_deactivated_customer_is_told_nothing(session, state, admin, seed):
    from core.notify import digest

    order = make_order(session, admin)
    order.status = "submitted"
    seed["local"].active = False
    session.commit()

    assert notify(session, "order_status_changed", to=ToCustomer(seed["local"].id), context=STATUS_CONTEXT) == []
    assert digest.run(session, utcnow()) == 0
    assert count(session, OutboxMessage) == 0 and count(session, Notification) == 0


def test_outbox_operations_refuse_a_message_that_changed_since_it_was_read(session, state, admin, seed):
    """What an administrator saw is re-checked when it is changed: a worker may have claimed it meanwhile."""
    for status, operation in [("queued", cancel), ("queued", retry), ("uncertain", mark_sent)]:
        message = make_message(session, seed, status)
        assert message.status == status  # read (as a screen would), kept in this session
        with state.sessions() as worker, worker.begin():
            row = worker.get(OutboxMessage, message.id)
            row.status, row.claimed_by = ("sending", "w/1") if status == "queued" else ("sent", "")
        with pytest.raises(ServiceError) as refused:
            operation(session, message.id, admin)
        assert refused.value.status == 409
        session.rollback()
        assert session.get(OutboxMessage, message.id).status in ("sending", "sent")
