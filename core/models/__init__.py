"""Core's typed models: parties, catalogue, orders, workflow, security and audit.

Importing this package registers every core table on :data:`core.db.Base.metadata`.
"""

from core.models.audit import AuditLog, AuditSeal
from core.models.calendar import CALENDAR_DAY_KINDS, CalendarDay
from core.models.company import Branch, Company, Department
from core.models.files import ATTACHMENT_KINDS, IssuedDocument, OrderAttachment
from core.models.jobs import JobRun, JobState
from core.models.notify import OUTBOX_STATUSES, Notification, OutboxFile, OutboxMessage
from core.models.order import (
    CHANNELS,
    PAYMENT_METHODS,
    URGENCIES,
    IdempotencyKey,
    NumberSequence,
    Order,
    OrderLine,
    OrderTransition,
)
from core.models.party import Customer, CustomerAddress, CustomerContact
from core.models.product import Product
from core.models.security import LoginAttempt
from core.models.system import PluginState, RegistrySignal, SettingValue, StepSetting
from core.models.user import ApiToken, KnownPermission, Role, RolePermission, User

__all__ = [
    "ATTACHMENT_KINDS",
    "CALENDAR_DAY_KINDS",
    "CHANNELS",
    "OUTBOX_STATUSES",
    "PAYMENT_METHODS",
    "URGENCIES",
    "ApiToken",
    "AuditLog",
    "AuditSeal",
    "Branch",
    "CalendarDay",
    "Company",
    "Customer",
    "CustomerAddress",
    "CustomerContact",
    "Department",
    "IdempotencyKey",
    "IssuedDocument",
    "JobRun",
    "JobState",
    "KnownPermission",
    "LoginAttempt",
    "Notification",
    "NumberSequence",
    "Order",
    "OrderAttachment",
    "OrderLine",
    "OrderTransition",
    "OutboxFile",
    "OutboxMessage",
    "PluginState",
    "Product",
    "RegistrySignal",
    "Role",
    "RolePermission",
    "SettingValue",
    "StepSetting",
    "User",
]
