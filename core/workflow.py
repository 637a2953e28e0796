"""The step pipeline: which step comes next, who may act, and applying a transition.

Steps are data contributed by core and plugins (:class:`core.contrib.Step`). The
pipeline is every *enabled* step ordered by position; an action whose target is
``next`` moves the order to the next enabled step. Before a transition every guard is
asked and all reasons are collected; the transition, its history row, its audit entry
and every plugin's after-transition work happen in the caller's transaction, so a
refused or failed transition leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.contrib import NEXT, Action, Step, Transition
from core.models import Order, OrderTransition, StepSetting, User
from core.services import audit
from core.txcache import remembered

#: Core's milestones: positions plugins place their steps between.
MILESTONES = {"draft": 0, "submitted": 100, "confirmed": 500, "completed": 1000}
#: Steps an order leaves the pipeline to; reachable from any step that offers them.
TERMINAL_STEPS = ("completed", "cancelled", "rejected")

CANCEL = Action(
    "cancel",
    "Cancel",
    target="cancelled",
    permission="orders.cancel",
    needs_reason=True,
    style="danger",
    confirm="Cancel this order? This cannot be undone.",
)
REJECT = Action(
    "reject",
    "Reject",
    target="rejected",
    permission="orders.reject",
    needs_reason=True,
    style="danger",
    confirm="Reject this order?",
)

#: A completed order goes back to *confirmed* to deliver or settle more. It commits the
#: company again, so every guard is asked as on confirmation (billing's credit gate).
REOPEN = Action(
    "reopen",
    "Re-open",
    target="confirmed",
    permission="orders.reopen",
    needs_reason=True,
    style="warning",
    confirm="Re-open this completed order?",
)
#: Not a move: copying an order asks the guards about the source with this action name.
COPY = "copy"

CORE_STEPS = (
    Step(
        "draft",
        "Draft",
        0,
        (Action("submit", "Submit", permission="orders.submit"),),
        optional=False,
        help="Being entered; lines can still be edited.",
    ),
    Step(
        "submitted",
        "Submitted",
        100,
        (Action("confirm", "Confirm", permission="orders.confirm", style="success"), REJECT),
        help="Waiting for the order to be confirmed to the customer.",
    ),
    Step(
        "confirmed",
        "Confirmed",
        500,
        (Action("complete", "Complete", permission="orders.complete", style="success"),),
        optional=False,
        help="Confirmed to the customer; fulfilled through the steps before this one, then completed here.",
    ),
    Step(
        "completed",
        "Completed",
        1000,
        (REOPEN,),
        optional=False,
        help="Delivered and settled.",
    ),
    Step("cancelled", "Cancelled", 2000, optional=False, help="Withdrawn; the reason is kept."),
    Step("rejected", "Rejected", 2001, optional=False, help="Refused; the reason is kept."),
)


class WorkflowError(Exception):
    """An action cannot be taken; ``code`` says why in a word, ``reasons`` in sentences."""

    def __init__(self, code: str, message: str, reasons: Iterable[str] = ()):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reasons = list(reasons)


def status_of_position(position: int) -> str:
    """The status of an order waiting at ``position``: the next milestone at or after it."""
    for key, milestone in MILESTONES.items():
        if position <= milestone:
            return key
    raise ValueError(f"position {position} lies beyond the pipeline")


def check_steps(steps: Iterable[Step]) -> dict[str, Step]:
    """Check contributed steps and return them by key; raise ``PluginError`` on a mistake."""
    from core.plugins import PluginError

    by_key: dict[str, Step] = {}
    positions: dict[int, str] = {}
    for step in steps:
        if step.key in by_key:
            raise PluginError(f"duplicate workflow step {step.key!r}")
        if step.owner != "core":
            if not step.key.startswith(f"{step.owner}."):
                raise PluginError(f"step {step.key!r} of plugin {step.owner!r} must be named {step.owner}.<name>")
            if not (0 < step.position < MILESTONES["confirmed"]) or step.position == MILESTONES["submitted"]:
                raise PluginError(
                    f"step {step.key!r} has position {step.position}; plugin steps lie strictly "
                    "between draft (0) and submitted (100) or between submitted and confirmed (500)"
                )
        if step.position in positions:
            raise PluginError(f"steps {positions[step.position]!r} and {step.key!r} share position {step.position}")
        names = [a.name for a in step.actions]
        if len(names) != len(set(names)):
            raise PluginError(f"step {step.key!r} declares an action twice")
        by_key[step.key] = step
        positions[step.position] = step.key
    for step in by_key.values():
        for action in step.actions:
            if action.target != NEXT and action.target not in by_key:
                raise PluginError(f"action {action.name!r} of step {step.key!r} targets unknown step {action.target!r}")
    return by_key


def step_status(step: Step) -> str:
    """The order status that goes with waiting in ``step``."""
    if step.key in TERMINAL_STEPS or step.key in MILESTONES:
        return step.key
    return status_of_position(step.position)


@dataclass
class ActionOption:
    """An action as offered to a user now: allowed, or blocked with every reason."""

    action: Action
    target: str
    blocked_by: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.blocked_by


def switched_off(session: Session) -> frozenset[str]:
    """The keys of the steps an administrator switched off, read once per transaction.

    An action builds the pipeline more than once (the action, then an automatic step's
    own move); the step settings are read the first time only (:mod:`core.txcache`).
    """
    return remembered(
        session,
        "workflow.switched_off",
        lambda: frozenset(session.scalars(select(StepSetting.key).where(StepSetting.enabled.is_(False)))),
        watch=(StepSetting,),
    )


class Workflow:
    """The pipeline for one registry and one database's step settings."""

    def __init__(self, registry: object, session: Session):
        from core.plugins import Registry

        assert isinstance(registry, Registry)
        self.registry = registry
        self.session = session
        if session.info.get("ordo_registry") is None:
            session.info["ordo_registry"] = registry
        self.steps: dict[str, Step] = registry.steps
        disabled = switched_off(session)
        self.disabled = {k for k in disabled if k in self.steps and self.steps[k].optional}

    def step(self, key: str) -> Step:
        """The step called ``key``; an order at an unknown step (plugin disabled) is an error."""
        try:
            return self.steps[key]
        except KeyError:
            raise WorkflowError("unknown_step", f"step {key!r} is not known (is its plugin disabled?)") from None

    def pipeline(self) -> list[Step]:
        """Enabled, non-terminal, non-detour steps in order (completed ends it).

        A detour step (``Step.detour``) is reached only by naming it, so it is never the
        next step of another; from a detour, ``next`` leads to the first step here after it.
        """
        return sorted(
            (
                s
                for s in self.steps.values()
                if s.key not in self.disabled and s.key not in ("cancelled", "rejected") and not s.detour
            ),
            key=lambda s: s.position,
        )

    def next_step(self, current: Step) -> Step:
        """The first enabled step after ``current``."""
        for step in self.pipeline():
            if step.position > current.position:
                return step
        raise WorkflowError("no_next_step", f"no step follows {current.key!r}")

    def actions_of(self, order: Order, user: User | None) -> list[Action]:
        """Every action defined for the order now: its step's, cancel, and plugins' extras."""
        step = self.step(order.step)
        if step.key in TERMINAL_STEPS:
            return list(step.actions)  # re-open a completed order; nothing else, no extras
        actions = list(step.actions)
        if not any(a.name == "cancel" for a in actions):
            actions.append(CANCEL)
        extras = self.registry.hook.ordo_order_actions(order=order, user=user, session=self.session)
        for group in extras:
            actions.extend(group or ())
        return actions

    def resolve_target(self, order: Order, action: Action) -> str:
        """The step ``action`` leads to from where ``order`` is."""
        if action.target == NEXT:
            return self.next_step(self.step(order.step)).key
        if action.target in self.disabled:
            # A disabled step is skipped to the next enabled one.
            return self.next_step(self.step(action.target)).key
        return action.target

    def options(self, order: Order, user: User | None) -> list[ActionOption]:
        """The actions of the order's step as offered to ``user``, each with what blocks it."""
        return [self._check(order, action, user, reason=None) for action in self.actions_of(order, user)]

    def _check(self, order: Order, action: Action, user: User | None, reason: str | None) -> ActionOption:
        target = self.resolve_target(order, action)
        option = ActionOption(action=action, target=target)
        if action.permission and (user is None or not user.can(action.permission)):
            option.blocked_by.append(f"you lack the permission {action.permission!r}")
            return option
        transition = self._transition(order, action, target, reason or "")
        for reasons in self.registry.hook.ordo_order_guard(
            order=order, action=action.name, transition=transition, user=user, session=self.session
        ):
            option.blocked_by.extend(reasons or ())
        return option

    def path_blockers(self, order: Order, path: str, user: User | None) -> list[str]:
        """Every guard's reasons against ``path``, a way of committing further that is no move.

        Copying an order (:data:`COPY`) creates a new draft from ``order``; the guards
        are asked with ``action=path`` about the source and a transition from ``draft`` to
        ``draft`` (the new order's), so a gate such as billing's credit check covers copies
        too while guards watching the source's own step (logistics' release check) stay out.
        """
        transition = Transition(action=path, from_step="draft", to_step="draft", from_status="draft", to_status="draft")
        blocked: list[str] = []
        for reasons in self.registry.hook.ordo_order_guard(
            order=order, action=path, transition=transition, user=user, session=self.session
        ):
            blocked.extend(reasons or ())
        return blocked

    def _transition(self, order: Order, action: Action, target: str, reason: str) -> Transition:
        return Transition(
            action=action.name,
            from_step=order.step,
            to_step=target,
            from_status=order.status,
            to_status=step_status(self.step(target)),
            reason=reason,
        )

    def take(self, order: Order, action_name: str, user: User | None, reason: str = "") -> Transition:
        """Take ``action_name`` on ``order`` as ``user``; raise :class:`WorkflowError` if refused.

        Nothing is committed here: the caller's transaction commits the move, its
        history row, its audit entry and every plugin's reaction together.
        """
        reason = (reason or "").strip()
        actions = {a.name: a for a in self.actions_of(order, user)}
        if action_name not in actions:
            if action_name not in self.known_action_names():
                raise WorkflowError("unknown_action", f"there is no action {action_name!r}")
            raise WorkflowError(
                "action_not_available",
                f"action {action_name!r} is not available while the order is at step {order.step!r}",
                [f"available: {', '.join(sorted(actions)) or 'none'}"],
            )
        action = actions[action_name]
        if action.permission and (user is None or not user.can(action.permission)):
            raise WorkflowError("forbidden", f"you lack the permission {action.permission!r}")
        if action.needs_reason and not reason:
            raise WorkflowError("reason_required", f"action {action_name!r} needs a reason")
        option = self._check(order, action, user, reason)
        if option.blocked_by:
            raise WorkflowError("transition_refused", f"action {action_name!r} was refused", option.blocked_by)
        return self.apply(order, action.name, option.target, user, reason)

    def apply(
        self,
        order: Order,
        action_name: str,
        target: str,
        user: User | None,
        reason: str,
        extra: Mapping[str, Any] | None = None,
    ) -> Transition:
        """Move ``order`` to ``target`` and record it; guards must have been asked already.

        ``extra`` travels with the transition to the ``ordo_order_transitioned`` hooks
        (an automatic step says it has told the customer itself: ``customer_notice``).
        """
        target_step = self.step(target)
        transition = Transition(
            action=action_name,
            from_step=order.step,
            to_step=target_step.key,
            from_status=order.status,
            to_status=step_status(target_step),
            reason=reason,
            extra=dict(extra or {}),
        )
        order.step = transition.to_step
        order.status = transition.to_status
        actor_id = user.id if user is not None else None
        self.session.add(
            OrderTransition(
                order_id=order.id,
                action=transition.action,
                from_step=transition.from_step,
                to_step=transition.to_step,
                from_status=transition.from_status,
                to_status=transition.to_status,
                actor_id=actor_id,
                reason=reason,
            )
        )
        audit.record(
            self.session,
            user,
            "order",
            order.id,
            f"transition:{action_name}",
            {"step": [transition.from_step, transition.to_step]},
            reason=reason,
        )
        self.session.flush()
        self.registry.hook.ordo_order_transitioned(order=order, transition=transition, user=user, session=self.session)
        return transition

    def known_action_names(self) -> set[str]:
        """Every action name any step declares, plus cancel."""
        names = {"cancel"}
        for step in self.steps.values():
            names |= {a.name for a in step.actions}
        return names


def initial_step() -> str:
    """The step a new order starts in."""
    return "draft"
