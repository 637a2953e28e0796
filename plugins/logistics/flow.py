"""Logistics' steps, permissions, roles and settings, and what the order's moves set off.

The pipeline inside *confirmed* (positions 101–499; billing's settlement comes later):

- entering *confirmed* (from *submitted*): the order's lines **reserve** stock
  (:func:`plugins.logistics.stock.reserve_order`); what cannot be reserved is a
  backorder. The order is classified remote or local (LG-1).
- ``logistics.outbound_check`` (200, 出库审核): the warehouse releases the order to
  shipping when its stock is reserved (all of it, or some when partial shipments are
  allowed), its ship-to address is complete and the documents the settings name are
  attached (:mod:`plugins.logistics.outbound`).
- ``logistics.shipping`` (320): shipments are picked, packed and shipped
  (:mod:`plugins.logistics.shipping`); when every line has shipped in full the order
  moves on by itself (``shipped``); sales may close an order's backorder with a reason.
- ``logistics.receipt`` (340): the customer confirms receipt in the portal or objects
  (:mod:`plugins.logistics.delivery`); when every shipment is received (and, if the
  settings require it, the acceptance report says accepted) the order moves on by itself.
  Staff may record the receipt from signed delivery notes (``record_receipt``).

Core's ``confirmed`` (500) follows. Leaving the pipeline to *cancelled* or *rejected*
releases every reservation. This module holds the definitions and routes each hook call
to the module doing the work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.contrib import Action, Permission, RoleDefinition, Setting, Step
from core.labels import N_

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.contrib import Transition
    from core.models import Order, User

OUTBOUND_CHECK = "logistics.outbound_check"
SHIPPING = "logistics.shipping"
RECEIPT = "logistics.receipt"
#: Staff record the receipt from signed delivery notes, for customers who do not use the portal.
RECORD_RECEIPT = "record_receipt"
#: Sales ships no more: the remaining reservations are released and the order moves on.
CLOSE_BACKORDER = "close_backorder"

# Permissions.
STOCK_READ = "logistics.stock.read"
STOCK_MANAGE = "logistics.stock.manage"
COUNTS_MANAGE = "logistics.counts.manage"
COUNTS_POST = "logistics.counts.post"
OUTBOUND = "logistics.outbound.check"
SHIPPING_MANAGE = "logistics.shipping.manage"
EXCEPTIONS_MANAGE = "logistics.exceptions.manage"
DELIVERY_MANAGE = "logistics.delivery.manage"
RECEIPT_CONFIRM = "logistics.receipt.confirm"
BACKORDER_CLOSE = "logistics.backorders.close"
CARRIERS_MANAGE = "logistics.carriers.manage"
RETURNS_REQUEST = "logistics.returns.request"
RETURNS_REVIEW = "logistics.returns.review"
RETURNS_APPROVE = "logistics.returns.approve"
RETURNS_RECEIVE = "logistics.returns.receive"
RETURNS_INSPECT = "logistics.returns.inspect"
REPORTS_READ = "logistics.reports.read"
SETTINGS_MANAGE = "logistics.settings.manage"

# Settings.
PARTIAL_DEFAULT = "logistics.partial_shipments_default"
INSURANCE_THRESHOLD = "logistics.insurance.threshold"
REQUIRED_DOCUMENTS = "logistics.outbound.required_documents"
PICK_MINUTES_PER_LINE = "logistics.picking.minutes_per_line"
PICK_MINUTES_PER_UNIT = "logistics.picking.minutes_per_unit"
AGEING_SALES_DAYS = "logistics.ageing.sales_days"
AGEING_ABNORMAL_DAYS = "logistics.ageing.abnormal_days"
AGEING_GM_DAYS = "logistics.ageing.general_manager_days"
EXCEPTION_DUE_DAYS = "logistics.exceptions.follow_up_days"
ACCEPTANCE_REQUIRED = "logistics.acceptance.required"
RETURNS_REVIEW_ROLE = "logistics.returns.review_role"
RETURNS_APPROVE_ROLE = "logistics.returns.approve_role"

#: Roles logistics ships for the return procedure (LG-9); the settings may name others.
ROLES = (
    RoleDefinition(
        "regional_manager",
        N_("Regional manager"),
        "branch",
        ("orders.read", "customers.read", "products.read", STOCK_READ),
    ),
    RoleDefinition(
        "marketing_director",
        N_("Marketing director"),
        "all",
        ("orders.read", "customers.read", "products.read", STOCK_READ),
    ),
    RoleDefinition(
        "quality_inspector",
        N_("Quality inspector"),
        "all",
        ("orders.read", "products.read", STOCK_READ),
    ),
)

_MANAGERS = ("general_manager", "sales_manager")
_READERS = ("warehouse", "sales", "order_clerk", "auditor", *_MANAGERS)

PERMISSIONS = (
    Permission(STOCK_READ, N_("See stock, moves, backorders and shipments"), _READERS),
    Permission(STOCK_MANAGE, N_("Receive and adjust stock; manage warehouses and locations"), ("warehouse",)),
    Permission(COUNTS_MANAGE, N_("Start stock counts and enter counted quantities"), ("warehouse",)),
    Permission(COUNTS_POST, N_("Post stock count differences"), ("warehouse", "general_manager")),
    Permission(OUTBOUND, N_("Release orders to shipping (outbound check)"), ("warehouse", "sales_manager")),
    Permission(SHIPPING_MANAGE, N_("Pick, pack and ship; enter tracking"), ("warehouse",)),
    Permission(EXCEPTIONS_MANAGE, N_("Report and resolve logistics exceptions"), ("warehouse", *_MANAGERS)),
    Permission(
        DELIVERY_MANAGE,
        N_("Record proof of delivery, acceptance reports and receipts"),
        ("warehouse", "sales", "sales_manager"),
    ),
    Permission(RECEIPT_CONFIRM, N_("Confirm receipt of deliveries or object to them"), ("customer",)),
    Permission(BACKORDER_CLOSE, N_("Close an order's backorder (ship no more)"), _MANAGERS),
    Permission(CARRIERS_MANAGE, N_("Manage carriers, service levels, transit times and rates"), ("general_manager",)),
    Permission(RETURNS_REQUEST, N_("Request returns of delivered goods"), ("sales", "sales_manager", "customer")),
    Permission(RETURNS_REVIEW, N_("Review return requests"), ("regional_manager",)),
    Permission(RETURNS_APPROVE, N_("Approve return requests"), ("marketing_director",)),
    Permission(RETURNS_RECEIVE, N_("Receive returned goods"), ("warehouse",)),
    Permission(RETURNS_INSPECT, N_("Inspect returned goods and decide their disposition"), ("quality_inspector",)),
    Permission(REPORTS_READ, N_("See replenishment and ageing lists"), ("warehouse", *_MANAGERS)),
    Permission(SETTINGS_MANAGE, N_("Manage warehouses' settings and logistics settings"), ("general_manager",)),
)

SETTINGS = (
    Setting(
        PARTIAL_DEFAULT,
        bool,
        True,
        N_("Logistics: orders may ship in parts unless the order says otherwise"),
    ),
    Setting(
        INSURANCE_THRESHOLD,
        float,
        50_000.0,
        N_("Logistics: goods value above which a remote shipment must be insured"),
        N_("Cargo insurance for remote orders (LG-11); 0 insures every remote shipment."),
        minimum=0,
    ),
    Setting(
        REQUIRED_DOCUMENTS,
        str,
        "",
        N_("Logistics: attachment kinds an order needs before release to shipping"),
        N_("Comma-separated attachment kinds, e.g. contract; empty: none."),
    ),
    Setting(
        PICK_MINUTES_PER_LINE,
        float,
        2.0,
        N_("Logistics: standard picking minutes per line"),
        minimum=0,
        maximum=600,
    ),
    Setting(
        PICK_MINUTES_PER_UNIT,
        float,
        0.2,
        N_("Logistics: standard picking minutes per unit"),
        minimum=0,
        maximum=600,
    ),
    Setting(
        AGEING_SALES_DAYS,
        int,
        5,
        N_("Logistics: working days goods may wait unshipped before sales is told"),
        minimum=1,
        maximum=250,
    ),
    Setting(
        AGEING_ABNORMAL_DAYS,
        int,
        10,
        N_("Logistics: working days after which unshipped goods are abnormal (sales manager told)"),
        minimum=1,
        maximum=250,
    ),
    Setting(
        AGEING_GM_DAYS,
        int,
        22,
        N_("Logistics: working days after which the general manager is told of unshipped goods"),
        minimum=1,
        maximum=250,
    ),
    Setting(
        EXCEPTION_DUE_DAYS,
        int,
        2,
        N_("Logistics: working days to resolve a logistics exception"),
        minimum=1,
        maximum=60,
    ),
    Setting(
        ACCEPTANCE_REQUIRED,
        bool,
        False,
        N_("Logistics: the order waits for an accepted acceptance report after receipt"),
    ),
    Setting(
        RETURNS_REVIEW_ROLE,
        str,
        "regional_manager",
        N_("Logistics: role that reviews return requests"),
    ),
    Setting(
        RETURNS_APPROVE_ROLE,
        str,
        "marketing_director",
        N_("Logistics: role that approves return requests"),
    ),
)

STEPS = (
    Step(
        OUTBOUND_CHECK,
        N_("Outbound check"),
        200,
        (Action("release", N_("Release to shipping"), permission=OUTBOUND, style="success"),),
        help=N_(
            "出库审核: the warehouse checks that stock is reserved, the ship-to address is complete and the "
            "documents are attached, then releases the order to shipping."
        ),
    ),
    Step(
        SHIPPING,
        N_("Shipping"),
        320,
        (
            Action(
                CLOSE_BACKORDER,
                N_("Close backorder"),
                permission=BACKORDER_CLOSE,
                needs_reason=True,
                style="warning",
                confirm=N_("Ship nothing more for this order? Its remaining reservations are released."),
            ),
        ),
        automatic=(("shipped", N_("Everything shipped")),),
        help=N_("Picking, packing and shipping; the order moves on by itself when every line has shipped in full."),
    ),
    Step(
        RECEIPT,
        N_("Receipt"),
        340,
        (
            Action(
                RECORD_RECEIPT,
                N_("Record receipt"),
                permission=DELIVERY_MANAGE,
                style="success",
                confirm=N_("Record that the customer received every shipment (from the signed delivery notes)?"),
            ),
        ),
        automatic=(("received", N_("Receipt confirmed")),),
        help=N_(
            "Waiting for the customer to confirm receipt (in the portal, or recorded from the signed delivery "
            "note); objections lead to a replacement or a return."
        ),
    ),
)


def on_transitioned(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Reserve on confirmation, release on cancellation, and move on automatically where due."""
    from plugins.logistics import delivery, outbound, progress, shipping, stock

    entering_confirmed = transition.to_status == "confirmed" and transition.from_status != "confirmed"
    if entering_confirmed:
        stock.prepare_order(session, order)
        stock.reserve_order(session, order, user)
        if transition.to_step != OUTBOUND_CHECK:  # the check is disabled: ready once confirmed
            outbound.mark_ready(session, order, user, checked=False)
    elif transition.from_step == OUTBOUND_CHECK and transition.to_status == "confirmed":
        outbound.mark_ready(session, order, user, checked=True)
    elif transition.action == RECORD_RECEIPT:
        delivery.record_receipt(session, order, user)
    elif transition.action == CLOSE_BACKORDER:
        shipping.close_backorder(session, order, user)
    elif transition.to_step in ("cancelled", "rejected"):
        stock.release_order(session, order, user)
    elif transition.from_status == "confirmed" and transition.to_status in ("draft", "submitted"):
        # Rewound for a change (review): reservations stay until it is confirmed again,
        # when reserve_order reconciles them with the revised quantities.
        pass
    progress.advance(session, order, user)


def guard(session: Session, order: Order, action: str, transition: Transition, user: User | None) -> list[str]:
    """Why ``order`` may not move as ``transition`` says (outbound check, receipt, closing a backorder)."""
    from plugins.logistics import delivery, outbound, shipping

    if transition.to_step in ("cancelled", "rejected"):
        return shipping.cancel_blockers(session, order)
    if transition.from_step == OUTBOUND_CHECK:
        return outbound.release_blockers(session, order)
    if action == RECORD_RECEIPT:
        return delivery.receipt_blockers(session, order)
    if action == CLOSE_BACKORDER:
        return shipping.close_backorder_blockers(session, order)
    return []
