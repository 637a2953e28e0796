"""Display labels for codes the screens show: statuses, channels, payment methods, urgencies.

Codes stay English in the database and the API; people see these labels in their own
language. Step, action and menu labels are plain English strings contributed as data
(core/workflow.py, core/builtin.py) and translated when rendered, so they are listed
here once with :func:`N_` to put them in core's catalogue; plugins list theirs in their
own catalogues.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext, lazy_gettext

from core import labels
from core.labels import N_

#: Labels per code, translated lazily in the user's language (the English source is
#: :mod:`core.labels`, shared with documents).
STATUS_LABELS = {code: lazy_gettext(text) for code, text in labels.STATUSES.items()}
STATUS_COLOURS = {
    "draft": "secondary",
    "submitted": "info",
    "confirmed": "primary",
    "completed": "success",
    "cancelled": "dark",
    "rejected": "danger",
}
CHANNEL_LABELS = {code: lazy_gettext(text) for code, text in labels.CHANNELS.items()}
PAYMENT_METHOD_LABELS = {code: lazy_gettext(text) for code, text in labels.PAYMENT_METHODS.items()}
URGENCY_LABELS = {code: lazy_gettext(text) for code, text in labels.URGENCIES.items()}
FINDING_LEVEL_LABELS = {code: lazy_gettext(text) for code, text in labels.FINDING_LEVELS.items()}

# Core's step and action labels, step help and confirmation texts (core/workflow.py),
# menu labels (core/builtin.py) and permission labels, translated where rendered.
CORE_DATA_LABELS = (
    N_("Draft"),
    N_("Submitted"),
    N_("Confirmed"),
    N_("Completed"),
    N_("Cancelled"),
    N_("Rejected"),
    N_("Submit"),
    N_("Confirm"),
    N_("Complete"),
    N_("Cancel"),
    N_("Reject"),
    N_("Cancel this order? This cannot be undone."),
    N_("Reject this order?"),
    N_("Being entered; lines can still be edited."),
    N_("Waiting for the order to be confirmed to the customer."),
    N_("Confirmed to the customer; fulfilled through the steps before this one, then completed here."),
    N_("Delivered and settled."),
    N_("Withdrawn; the reason is kept."),
    N_("Refused; the reason is kept."),
    N_("Orders"),
    N_("Customers"),
    N_("Products"),
    N_("Plugins"),
    N_("Workflow steps"),
    N_("Read orders"),
    N_("Create orders"),
    N_("Edit draft orders"),
    N_("Submit orders"),
    N_("Confirm orders"),
    N_("Complete orders"),
    N_("Cancel orders"),
    N_("Reject submitted orders"),
    N_("See customers"),
    N_("Manage customers"),
    N_("See products"),
    N_("Manage products"),
    N_("Manage users and roles"),
    N_("Read the audit log"),
    N_("Change settings, plugins and workflow steps"),
)


def translate(text: str | None) -> str:
    """A data string (a contributed label or help text) in the user's language.

    Unlike ``_()`` in templates this never %-formats, so a plugin's text may hold a ``%``.
    """
    return gettext(text) if text else ""


def _label(table: dict[str, object], code: str | None) -> str:
    if not code:
        return ""
    label = table.get(code)
    return str(label) if label is not None else code


def status_label(code: str | None) -> str:
    """The order status ``code`` in the user's language."""
    return _label(STATUS_LABELS, code)


def status_colour(code: str | None) -> str:
    """The Bootstrap colour of status ``code`` (one per status)."""
    return STATUS_COLOURS.get(code or "", "light")


def channel_label(code: str | None) -> str:
    """The channel ``code`` (IN-1) in the user's language."""
    return _label(CHANNEL_LABELS, code)


def payment_method_label(code: str | None) -> str:
    """The payment method ``code`` (BL-1) in the user's language."""
    return _label(PAYMENT_METHOD_LABELS, code)


def urgency_label(code: str | None) -> str:
    """The urgency ``code`` (CORE-9) in the user's language."""
    return _label(URGENCY_LABELS, code)


def step_label(key: str | None) -> str:
    """The workflow step ``key`` as contributed by core or its plugin, translated.

    A step whose plugin is no longer enabled shows its key, so history stays readable.
    """
    if not key:
        return ""
    step = current_app.extensions["ordo"].registry.steps.get(key)
    return gettext(step.label) if step is not None else key


def action_label(name: str | None) -> str:
    """A workflow action's label by name (for the history of past transitions)."""
    if not name:
        return ""
    if name == "plugin_disabled":
        return gettext("Moved on (plugin disabled)")
    registry = current_app.extensions["ordo"].registry
    for step in registry.steps.values():
        for action in step.actions:
            if action.name == name:
                return gettext(action.label)
        for automatic, label in step.automatic:
            if automatic == name:
                return gettext(label)
    return gettext("Cancel") if name == "cancel" else name


def permission_label(code: str) -> str:
    """A permission code's registered label, translated; the code if unknown."""
    permission = current_app.extensions["ordo"].registry.permissions.get(code)
    return gettext(permission.label) if permission is not None else code


def finding_level_label(level: str | None) -> str:
    """A pre-check finding's level (pass, warn, reject) in the user's language."""
    return _label(FINDING_LEVEL_LABELS, level)


def choices(table: dict[str, object]) -> list[tuple[str, object]]:
    """``(code, label)`` pairs for a select field, in the table's order."""
    return list(table.items())
