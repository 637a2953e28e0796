"""Core's own contributions, made through the same hooks as any plugin's.

Registered first on every plugin manager under the name ``core``: core's permissions,
its workflow steps, the guards every order obeys, and its menu entries.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.contrib import Finding, MenuItem, Permission, Step, Transition
from core.hookspecs import hookimpl
from core.models import Order, User
from core.workflow import CORE_STEPS

#: Core's services, each contributing through its own hooks module (registered as
#: ``core+<service>``, so its contributions count as core's).
SERVICE_HOOKS = {
    "notify": "core.notify.hooks",
    "inbox": "core.notify.screen_hooks",
    "jobs": "core.jobs.hooks",
    "calendar": "core.calendar.hooks",
    "company": "core.company.hooks",
    "documents": "core.documents.hooks",
    "attachments": "core.attachments.hooks",
}

_SELLERS = ("admin", "sales_manager", "sales", "order_clerk")
_STAFF = ("admin", "general_manager", "sales_manager", "sales", "order_clerk", "warehouse", "finance", "auditor")

PERMISSIONS = (
    Permission("orders.read", "Read orders", (*_STAFF, "customer")),
    Permission("orders.create", "Create orders", (*_SELLERS, "customer")),
    Permission("orders.edit", "Edit draft orders", (*_SELLERS, "customer")),
    Permission("orders.submit", "Submit orders", (*_SELLERS, "customer")),
    Permission("orders.confirm", "Confirm orders", ("admin", "general_manager", "sales_manager")),
    Permission("orders.complete", "Complete orders", ("admin", "general_manager", "sales_manager", "warehouse")),
    Permission("orders.reopen", "Re-open completed orders", ("admin", "general_manager")),
    Permission("orders.cancel", "Cancel orders", ("admin", "general_manager", "sales_manager")),
    Permission("orders.reject", "Reject submitted orders", ("admin", "general_manager", "sales_manager")),
    Permission("customers.read", "See customers", _STAFF),
    Permission("customers.manage", "Manage customers", ("admin", "sales_manager")),
    Permission("products.read", "See products", (*_STAFF, "customer")),
    Permission("products.manage", "Manage products", ("admin",)),
    Permission("users.manage", "Manage users and roles", ("admin",)),
    Permission("audit.read", "Read the audit log", ("admin", "general_manager", "auditor")),
    Permission("settings.manage", "Change settings, plugins and workflow steps", ("admin",)),
)


@hookimpl
def ordo_register_permissions() -> list[Permission]:
    return list(PERMISSIONS)


@hookimpl
def ordo_register_steps() -> list[Step]:
    return list(CORE_STEPS)


@hookimpl
def ordo_menu_items(user: User) -> list[MenuItem]:
    return [
        MenuItem("Orders", "orders.list_orders", "orders.read", order=10),
        MenuItem("Customers", "customers.list_customers", "customers.read", order=20),
        MenuItem("Products", "products.list_products", "products.read", order=30),
        MenuItem("Plugins", "admin.plugins", "settings.manage", order=900),
        MenuItem("Workflow steps", "admin.steps", "settings.manage", order=910),
        MenuItem("Users", "users.list_users", "users.manage", order=920),
        MenuItem("Roles", "roles.list_roles", "users.manage", order=930),
        MenuItem("API tokens", "tokens.list_tokens", None, order=950),
        MenuItem("Audit log", "audit.list_audit", "audit.read", order=940),
    ]


@hookimpl
def ordo_order_validate(order: Order) -> list[Finding]:
    return order_findings(order)


def order_findings(order: Order) -> list[Finding]:
    """Core's completeness checks: lines present, active customer and products, quantities."""
    findings: list[Finding] = []
    if not order.lines:
        findings.append(Finding("reject", "the order has no lines", "lines"))
    if order.customer is not None and not order.customer.active:
        findings.append(Finding("reject", f"customer {order.customer.code} is deactivated", "customer"))
    for n, line in enumerate(order.lines, start=1):
        if not line.product.active:
            findings.append(Finding("reject", f"line {n}: product {line.product.sku} is deactivated", "lines"))
        if line.quantity <= 0:
            findings.append(Finding("reject", f"line {n}: quantity must be greater than zero", "lines"))
    return findings


@hookimpl
def ordo_order_guard(order: Order, action: str, transition: Transition, session: Session) -> list[str]:
    if action in ("submit", "confirm"):
        return [f.message for f in order_findings(order) if f.level == "reject"]
    return []
