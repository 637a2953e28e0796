"""A Hypothesis state machine drives orders through every built-in plugin's actions at random.

Each run starts on a fresh database with intake, review, logistics, billing and KPI
enabled, a warehouse and one user holding every role. The rules create orders, take any
workflow action the order offers (submit, accept, send for approval, approve, reject,
cancel, withdraw, record receipt, …), record review verdicts (approve or reject), receive
stock, plan and ship shipments, confirm receipt, invoice what was delivered and record
payments, in any order and on any order; refusals must leave the invariants intact.

After every step the invariants are checked on the database:

- nothing ships before approval: an order with shipped goods passed final approval and
  the outbound check (a transition into ``logistics.outbound_check``);
- nothing is invoiced beyond what was delivered, per order line;
- reservations are never negative, no stock row holds more reserved than on hand, each
  row's reserved quantity is the sum of its reservations and its stock on hand the sum
  of its ledger (stock moves);
- a cancelled or rejected order holds no reservation (cancelling releases stock);
- every step change is in the order's history: the transitions chain from ``draft`` to
  the order's current step, and every change a rule observed is among them;
- no invoice is settled beyond its total.

Size: ``ORDO_STATEFUL_EXAMPLES`` runs (default 6) of at most ``ORDO_STATEFUL_STEPS`` steps
(default 30); ``ORDO_STATEFUL_EXAMPLES=200 ORDO_STATEFUL_STEPS=60`` is the full size.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Customer, Order, OrderTransition, Role
from core.services import ServiceError
from core.services.orders import take_action
from core.testing import make_order, make_user, seed_master_data
from core.workflow import Workflow
from plugins.billing import invoices, payments
from plugins.billing.models import BillingInvoice, BillingInvoiceLine
from plugins.logistics import delivery, shipping, stock
from plugins.logistics.models import (
    LogisticsLocation,
    LogisticsMove,
    LogisticsReservation,
    LogisticsShipment,
    LogisticsStock,
    LogisticsWarehouse,
)
from plugins.review.flow import DEPARTMENT_REVIEW, FINAL_APPROVAL
from plugins.review.sheets import current_sheet, record_verdict

pytestmark = [
    pytest.mark.req("CORE-2"),
    pytest.mark.req("CORE-6"),
    pytest.mark.req("LG-2"),
    pytest.mark.req("BL-3"),
]

PLUGINS = ("intake", "review", "logistics", "billing", "kpi")
EXAMPLES = int(os.environ.get("ORDO_STATEFUL_EXAMPLES", "6"))
STEPS = int(os.environ.get("ORDO_STATEFUL_STEPS", "30"))
#: The CI size replays the same runs every time; the full size explores new ones.
DERANDOMIZE = "ORDO_STATEFUL_EXAMPLES" not in os.environ
#: Figures each kind of review department gives with a verdict.
FIGURES: dict[str, dict[str, Any]] = {
    "technical": {"feasible": True},
    "production": {"capacity_ok": True, "materials_ok": True, "completion_date": "2030-03-01"},
    "purchasing": {"material_cost": "1000", "in_line_with_market": True},
    "quality": {"achievable": True, "stated_completely": True},
    "finance": {"cost": "1000", "gross_margin": "20", "profit_margin": "8", "payment_terms": "30 days", "risk": "low"},
    "other": {},
}
#: Statuses that hold no stock.
ENDED = ("cancelled", "rejected")
#: Actions that end or send back an order: the forward drive never takes them.
BACKWARD = {"cancel", "reject", "withdraw", "appeal", "return_to_sales", "reject_appeal", "recheck_credit", "reopen"}
SKUS = ("P-100", "P-300")


@pytest.fixture
def ordo_plugins() -> tuple[str, ...]:
    """Every built-in plugin: the machine drives them all."""
    return PLUGINS


class OrderMachine(RuleBasedStateMachine):
    """Random moves of orders through intake, review, logistics and billing, checked after each."""

    #: Makes a fresh app per run (set by the test from its ``make_app`` fixture).
    make_app: Callable[..., Flask]
    #: What the rules achieved over all runs (label → count), to prove the runs went deep.
    done: Counter[str] = Counter()

    def __init__(self) -> None:
        super().__init__()
        self.app = type(self).make_app(PLUGINS)
        self.registry = self.app.extensions["ordo"].registry
        self.session: Session = self.app.extensions["ordo"].sessions()
        self.orders: list[int] = []
        #: (order id, from step, to step) of every step change a rule saw.
        self.seen: list[tuple[int, str, str]] = []

    @initialize()
    def world(self) -> None:
        session = self.session
        seed = seed_master_data(session)
        everything = [code for code in session.scalars(select(Role.code)) if code != "customer"]
        self.boss = make_user(session, "boss@example.com", everything, branch=seed["hq"])
        warehouse = LogisticsWarehouse(company_id=seed["hq"].company_id, code="WH1", name="重庆总仓", is_default=True)
        warehouse.locations = [LogisticsLocation(code="A-01", sequence=1), LogisticsLocation(code="B-01", sequence=2)]
        session.add(warehouse)
        session.commit()
        self.locations = [loc.id for loc in warehouse.locations]
        self.products = {p.sku: p.id for p in seed["products"]}
        for sku in SKUS:
            self.receive_stock(sku, 8, 0)
        self.create_order("C001", [3, 2])

    def teardown(self) -> None:
        self.session.close()

    # --- helpers ----------------------------------------------------------------------

    def _order(self, pick: int) -> Order | None:
        if not self.orders:
            return None
        return self.session.get(Order, self.orders[pick % len(self.orders)])

    def _attempt(self, order: Order | None, work: Callable[[], Any], label: str) -> None:
        """Run ``work``; a refusal rolls back. Either way, note the step change it made."""
        before = order.step if order is not None else None
        try:
            work()
            self.session.commit()
            type(self).done[label] += 1
        except ServiceError:
            self.session.rollback()
        if order is not None:
            self.session.refresh(order)
            if order.step != before:
                self.seen.append((order.id, before or "", order.step))

    # --- rules ------------------------------------------------------------------------

    @rule(
        customer=st.sampled_from(("C001", "C002")),
        quantities=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=2),
    )
    def create_order(self, customer: str, quantities: list[int]) -> None:
        lines = [{"product": sku, "quantity": str(q)} for sku, q in zip(SKUS, quantities, strict=False)]
        order = make_order(self.session, self.boss, customer=customer, requested_date="2030-03-15", lines=lines)
        self.orders.append(order.id)

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(min_value=0), choice=st.integers(min_value=0))
    def take_an_offered_action(self, pick: int, choice: int) -> None:
        order = self._order(pick)
        if order is None:
            return
        options = [o for o in Workflow(self.registry, self.session).options(order, self.boss) if o.allowed]
        if not options:
            return
        name = options[choice % len(options)].action.name
        self._attempt(
            order, lambda: take_action(self.session, self.registry, self.boss, order, name, "fuzz reason"), name
        )

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(min_value=0), moves=st.integers(min_value=1, max_value=15))
    def drive_forward(self, pick: int, moves: int) -> None:
        """Move an order on ``moves`` times the way a busy team would: approve, release, ship, confirm."""
        for _ in range(moves):
            self._forward(pick)

    def _forward(self, pick: int) -> None:
        order = self._order(pick)
        assert order is not None
        if order.step == DEPARTMENT_REVIEW:
            self.review_verdict(pick, 0, True)
            return
        if order.step == "logistics.shipping":
            self.ship(pick)
            return
        if order.step == "logistics.receipt":
            self.confirm_receipt(pick)
            return
        if order.step == "billing.settlement":
            invoiced = self.session.scalar(
                select(func.count()).where(BillingInvoice.order_id == order.id, BillingInvoice.status == "issued")
            )
            if invoiced:
                self.pay(pick, Decimal("1"))
            else:
                self.invoice(pick)
        options = [o for o in Workflow(self.registry, self.session).options(order, self.boss) if o.allowed]
        forward = [o.action.name for o in options if o.action.name not in BACKWARD]
        if forward:
            name = forward[0]
            self._attempt(
                order, lambda: take_action(self.session, self.registry, self.boss, order, name, "fuzz reason"), name
            )

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(min_value=0), name=st.sampled_from(("approve", "release", "confirm", "record_receipt")))
    def force_an_action(self, pick: int, name: str) -> None:
        """Try an action whatever the step: refused unless the workflow offers it."""
        order = self._order(pick)
        if order is None:
            return
        self._attempt(
            order, lambda: take_action(self.session, self.registry, self.boss, order, name, "fuzz reason"), "forced"
        )

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(min_value=0), choice=st.integers(min_value=0), approve=st.booleans())
    def review_verdict(self, pick: int, choice: int, approve: bool) -> None:
        order = self._order(pick)
        if order is None or order.step != DEPARTMENT_REVIEW:
            return
        sheet = current_sheet(self.session, order.id)
        tasks = [t for t in sheet.tasks if t.status == "open"] if sheet else []
        if not tasks:
            return
        task = tasks[choice % len(tasks)]
        self._attempt(
            order,
            lambda: record_verdict(
                self.session,
                self.registry,
                self.boss,
                task,
                verdict="approve" if approve else "reject",
                comment="fuzz",
                figures=FIGURES[task.department.kind] if approve else None,
            ),
            "verdict",
        )

    @rule(sku=st.sampled_from(SKUS), quantity=st.integers(min_value=1, max_value=8), where=st.integers(0, 1))
    def receive_stock(self, sku: str, quantity: int, where: int) -> None:
        def work() -> None:
            product = self.products[sku]
            stock.post_move(
                self.session,
                self.boss,
                kind="receipt",
                product_id=product,
                location_id=self.locations[where],
                quantity=Decimal(quantity),
            )
            stock.reserve_backorders(self.session, [product], self.boss)

        self._attempt(None, work, "receive")

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(min_value=0))
    def ship(self, pick: int) -> None:
        order = self._order(pick)
        if order is None:
            return

        def work() -> None:
            shipment = shipping.plan_shipment(self.session, self.boss, order)
            shipping.ship(self.session, self.boss, shipment.id, tracking_number=f"T{shipment.id}")

        self._attempt(order, work, "ship")

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(min_value=0))
    def confirm_receipt(self, pick: int) -> None:
        order = self._order(pick)
        if order is None:
            return
        shipment = self.session.scalar(
            select(LogisticsShipment).where(
                LogisticsShipment.order_id == order.id, LogisticsShipment.status == "shipped"
            )
        )
        if shipment is not None:
            self._attempt(order, lambda: delivery.confirm_receipt(self.session, self.boss, shipment.id), "receipt")

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(min_value=0))
    def invoice(self, pick: int) -> None:
        order = self._order(pick)
        if order is None:
            return

        def work() -> None:
            draft = invoices.create_invoice(self.session, self.boss, order, basis="delivered")
            invoices.issue_invoice(self.session, self.boss, draft.id)

        self._attempt(order, work, "invoice")

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(min_value=0), part=st.sampled_from((Decimal("0.5"), Decimal("1"))))
    def pay(self, pick: int, part: Decimal) -> None:
        order = self._order(pick)
        if order is None:
            return
        invoice = self.session.scalar(
            select(BillingInvoice).where(
                BillingInvoice.order_id == order.id,
                BillingInvoice.status == "issued",
                BillingInvoice.kind == "invoice",
                BillingInvoice.settled < BillingInvoice.total,
            )
        )
        if invoice is None:
            return
        amount = ((invoice.total - invoice.settled) * part).quantize(Decimal("0.01"))

        def work() -> None:
            customer = self.session.get(Customer, order.customer_id)
            assert customer is not None
            payment = payments.record_payment(
                self.session,
                self.boss,
                customer_id=order.customer_id,
                method="bank_transfer",
                amount=amount,
                received_on=dt.date.today(),
                payer_name=customer.name,
                reference="FUZZ",
            )
            payments.allocate_payment(self.session, self.boss, payment.id, [(invoice.id, amount)])

        self._attempt(order, work, "pay")

    # --- invariants -------------------------------------------------------------------

    def _all_orders(self) -> Iterator[Order]:
        self.session.expire_all()
        yield from self.session.scalars(select(Order))

    @invariant()
    def nothing_ships_before_approval(self) -> None:
        for order in self._all_orders():
            shipped = stock.shipped_quantities(self.session, order.id)
            if not any(shipped.values()):
                continue
            moves = {(t.from_step, t.action, t.to_step) for t in order.transitions}
            assert any(f == FINAL_APPROVAL and a == "approve" for f, a, _ in moves), (order.number, moves)
            assert any(to == "logistics.outbound_check" for _, _, to in moves), (order.number, moves)

    @invariant()
    def nothing_invoiced_beyond_delivered(self) -> None:
        for order in self._all_orders():
            shipped = stock.shipped_quantities(self.session, order.id)
            invoiced = dict(
                self.session.execute(
                    select(BillingInvoiceLine.order_line_id, func.sum(BillingInvoiceLine.quantity))
                    .join(BillingInvoice)
                    .where(BillingInvoice.order_id == order.id, BillingInvoice.status != "cancelled")
                    .where(BillingInvoiceLine.order_line_id.is_not(None))
                    .group_by(BillingInvoiceLine.order_line_id)
                ).all()
            )
            for line_id, quantity in invoiced.items():
                assert quantity <= shipped.get(line_id, Decimal(0)), (order.number, line_id, quantity, shipped)

    @invariant()
    def stock_and_reservations_add_up(self) -> None:
        self.session.expire_all()
        for row in self.session.scalars(select(LogisticsStock)):
            ledger = self.session.scalar(
                select(func.coalesce(func.sum(LogisticsMove.quantity), 0)).where(
                    LogisticsMove.product_id == row.product_id, LogisticsMove.location_id == row.location_id
                )
            )
            held = self.session.scalar(
                select(func.coalesce(func.sum(LogisticsReservation.quantity), 0)).where(
                    LogisticsReservation.stock_id == row.id
                )
            )
            assert row.reserved >= 0 and row.on_hand >= row.reserved, (row.on_hand, row.reserved)
            assert Decimal(ledger) == row.on_hand, (row.product_id, row.location_id, ledger, row.on_hand)
            assert Decimal(held) == row.reserved, (row.product_id, row.location_id, held, row.reserved)
        negative = self.session.scalar(select(func.count()).where(LogisticsReservation.quantity < 0))
        assert negative == 0

    @invariant()
    def cancelling_releases_stock(self) -> None:
        for order in self._all_orders():
            if order.status in ENDED:
                assert not any(stock.reserved_quantities(self.session, order.id).values()), order.number

    @invariant()
    def every_step_change_is_in_the_history(self) -> None:
        for order in self._all_orders():
            transitions = sorted(order.transitions, key=lambda t: t.id)
            step = "draft"
            for transition in transitions:
                assert transition.from_step == step, (order.number, step, transition.from_step)
                step = transition.to_step
            assert order.step == step, (order.number, order.step, step)
        missing = [change for change in self.seen if not _in_history(change, self.session)]
        assert not missing, missing

    @invariant()
    def no_invoice_settled_beyond_its_total(self) -> None:
        self.session.expire_all()
        for invoice in self.session.scalars(select(BillingInvoice).where(BillingInvoice.kind == "invoice")):
            assert Decimal(0) <= invoice.settled <= invoice.total, (invoice.number, invoice.settled, invoice.total)


def _in_history(change: tuple[int, str, str], session: Session) -> bool:
    """Whether a step change a rule saw (possibly several transitions at once) is in the history."""
    order_id, start, end = change
    steps = [
        (t.from_step, t.to_step)
        for t in session.scalars(
            select(OrderTransition).where(OrderTransition.order_id == order_id).order_by(OrderTransition.id)
        )
    ]
    # One action may move an order over several steps (e.g. a step that passes by itself):
    # the history must hold a run of transitions from ``start`` that reaches ``end``.
    for i, (from_step, _) in enumerate(steps):
        if from_step != start:
            continue
        for _, to_step in steps[i:]:
            if to_step == end:
                return True
    return False


def test_random_order_journeys_keep_the_invariants(make_app: Callable[..., Flask]) -> None:
    OrderMachine.make_app = staticmethod(make_app)  # type: ignore[assignment]
    OrderMachine.done = Counter()
    run_state_machine_as_test(
        OrderMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            derandomize=DERANDOMIZE,
        ),
    )
    done = OrderMachine.done
    print("order journeys:", dict(sorted(done.items())))
    # The runs went deep enough for the invariants to mean something.
    assert done["ship"] and done["invoice"] and done["cancel"], done
