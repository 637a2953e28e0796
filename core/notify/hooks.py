"""Core's notify service: what it contributes through the plugin hooks (registered as ``core+notify``).

Its settings (channels, SMTP server, retries, which status changes customers hear
about), the ``outbox.manage`` permission, the two customer notices, the weekly
progress report job, and the reaction to every order transition: a customer is told
when their order reaches one of the configured statuses, in the transaction of the
transition itself, so a transition that rolls back tells nobody.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.contrib import Job, NotificationTemplate, Permission, Setting, Transition
from core.hookspecs import hookimpl
from core.labels import N_
from core.models import Order
from core.notify import PUBLIC_URL_SETTING, ToCustomer, digest, notify
from core.notify.email import PORT_RANGE, SECURITY_CHOICES, TIMEOUT_RANGE
from core.settings import get_setting

#: The order statuses customers are told about unless an administrator changes it.
DEFAULT_CUSTOMER_STATUSES = "submitted,confirmed,completed,cancelled,rejected"

SETTINGS = (
    Setting(
        PUBLIC_URL_SETTING,
        str,
        "",
        N_("Public address of Ordo"),
        N_(
            "The address people open Ordo at (https://ordo.example.com); links in messages sent by "
            "scheduled jobs start with it. Empty: links are relative."
        ),
    ),
    Setting(
        "core.notify.channels",
        str,
        "inapp,email",
        N_("Channels for staff notifications"),
        N_("Comma-separated: inapp, email, or a channel a plugin adds (e.g. sms)."),
    ),
    Setting(
        "core.notify.customer_channels",
        str,
        "inapp,email",
        N_("Channels for customer notifications"),
        N_("Comma-separated: inapp (the portal list), email, or a plugin's channel such as sms."),
    ),
    Setting(
        "core.notify.customer_statuses",
        str,
        DEFAULT_CUSTOMER_STATUSES,
        N_("Order statuses customers are told about"),
        N_("Comma-separated statuses; when an order reaches one, its customer is notified."),
    ),
    Setting(
        "core.notify.max_attempts",
        int,
        8,
        N_("Delivery attempts before a message fails"),
        N_("Retries wait 1, 2, 4, … minutes (at most 6 hours) between attempts."),
        minimum=1,
        maximum=50,
    ),
    Setting("core.smtp.host", str, "localhost", N_("SMTP server"), N_("Host name of the outgoing mail server.")),
    Setting(
        "core.smtp.port",
        int,
        25,
        N_("SMTP port"),
        N_("Usually 25, 587 (STARTTLS) or 465 (SSL)."),
        minimum=PORT_RANGE[0],
        maximum=PORT_RANGE[1],
    ),
    Setting(
        "core.smtp.security",
        str,
        "none",
        N_("SMTP security"),
        N_("none, starttls or ssl."),
        choices=SECURITY_CHOICES,
    ),
    Setting("core.smtp.username", str, "", N_("SMTP user name"), N_("Leave empty if the server needs no login.")),
    Setting("core.smtp.password", str, "", N_("SMTP password"), N_("Stored, never shown again."), secret=True),
    Setting(
        "core.smtp.sender",
        str,
        "Ordo <ordo@localhost>",
        N_("Sender of e-mails"),
        N_("Name and address messages come from, e.g. Ordo <orders@example.com>."),
    ),
    Setting(
        "core.smtp.timeout",
        int,
        30,
        N_("SMTP timeout (seconds)"),
        N_("How long to wait for the server."),
        minimum=TIMEOUT_RANGE[0],
        maximum=TIMEOUT_RANGE[1],
    ),
)

ORDER_STATUS_CHANGED = NotificationTemplate(
    "order_status_changed",
    label=N_("Order status changed (to the customer)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 状态更新：{{ to_status|status }}",
        "en": "Order {{ order.number }}: {{ to_status|status }}",
    },
    body={
        "zh_CN": """尊敬的{{ recipient }}：

您好！您的订单 {{ order.number }}{% if order.reference %}（贵方单号：{{ order.reference }}）{% endif %}\
状态已由「{{ from_status|status }}」更新为：{{ to_status|status }}。

订单金额：{{ order.total|money(order.currency) }}
{% if order.requested_date %}
要求交货日期：{{ order.requested_date|date }}
{% endif %}

如有疑问，请与我们联系{% if company.phone %}（电话：{{ company.phone }}）{% endif %}。感谢您的支持！

{{ company.name }}
""",
        "en": """Dear {{ recipient }},

The status of your order {{ order.number }}{% if order.reference %} (your reference {{ order.reference }}){% endif %} \
has changed from "{{ from_status|status }}" to: {{ to_status|status }}.

Order total: {{ order.total|money(order.currency) }}
{% if order.requested_date %}
Requested delivery date: {{ order.requested_date|date }}
{% endif %}

If you have any questions, please contact us{% if company.phone %} (phone {{ company.phone }}){% endif %}. \
Thank you for your business.

{{ company.name }}
""",
    },
)

CUSTOMER_PROGRESS_DIGEST = NotificationTemplate(
    "customer_progress_digest",
    label=N_("Weekly progress report (to the customer)"),
    subject={
        "zh_CN": "订单进度周报（{{ week }}）：{{ orders|length }} 笔订单处理中",
        "en": "Weekly order progress ({{ week }}): {{ orders|length }} open order{{ 's' if orders|length != 1 }}",
    },
    body={
        "zh_CN": """尊敬的{{ recipient }}：

您好！以下是您在我司尚在处理中的订单（共 {{ orders|length }} 笔）截至 {{ today|date }} 的进度：

{% for o in orders %}
- 订单 {{ o.number }}{% if o.reference %}（贵方单号：{{ o.reference }}）{% endif %}：{{ o.status|status }}\
{% if o.requested_date %}，要求交货日期 {{ o.requested_date|date }}{% endif %}

{% endfor %}

如有疑问，请随时与我们联系{% if company.phone %}（电话：{{ company.phone }}）{% endif %}。

{{ company.name }}
""",
        "en": """Dear {{ recipient }},

Here is the progress of your {{ orders|length }} open order{{ 's' if orders|length != 1 }} with us as of \
{{ today|date }}:

{% for o in orders %}
- Order {{ o.number }}{% if o.reference %} (your reference {{ o.reference }}){% endif %}: {{ o.status|status }}\
{% if o.requested_date %}, requested delivery {{ o.requested_date|date }}{% endif %}

{% endfor %}

If you have any questions, please contact us{% if company.phone %} (phone {{ company.phone }}){% endif %}.

{{ company.name }}
""",
    },
)


@hookimpl
def ordo_register_settings() -> list[Setting]:
    return list(SETTINGS)


@hookimpl
def ordo_register_permissions() -> list[Permission]:
    return [Permission("outbox.manage", N_("See and retry outgoing messages"), ("admin",))]


@hookimpl
def ordo_register_notifications() -> list[NotificationTemplate]:
    return [ORDER_STATUS_CHANGED, CUSTOMER_PROGRESS_DIGEST]


@hookimpl
def ordo_register_jobs() -> list[Job]:
    return [
        Job("core.customer_digest", "weekly:mon:09:00", digest.run, label=N_("Weekly progress report to customers"))
    ]


@hookimpl
def ordo_order_transitioned(order: Order, transition: Transition, session: Session) -> None:
    if transition.from_status == transition.to_status or transition.extra.get("customer_notice"):
        return  # no change for the customer, or a plugin told the customer itself (with reasons)
    wanted = {s.strip() for s in str(get_setting(session, "core.notify.customer_statuses")).split(",")}
    if transition.to_status not in wanted:
        return
    notify(
        session,
        ORDER_STATUS_CHANGED.name,
        to=ToCustomer(order.customer_id),
        order=order,
        context={"from_status": transition.from_status, "to_status": transition.to_status},
    )
