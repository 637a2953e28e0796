"""The small dataclasses plugins return from ``ordo_register_*`` and page hooks.

Core checks every contribution at start-up (duplicate keys, unknown steps,
unregistered permissions) before the app serves, so a mistake in a plugin fails
loudly once instead of quietly on some page later.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

#: The core statuses; every step belongs to exactly one.
STATUSES = ("draft", "submitted", "confirmed", "completed", "cancelled", "rejected")

#: How often a job runs: every N seconds, daily at a time, or weekly on a day at a time.
SCHEDULE = re.compile(
    r"^(every:[1-9][0-9]{0,6}|daily:([01][0-9]|2[0-3]):[0-5][0-9]|"
    r"weekly:(mon|tue|wed|thu|fri|sat|sun):([01][0-9]|2[0-3]):[0-5][0-9])$"
)

#: An action's target: the next enabled step in the pipeline.
NEXT = "next"


@dataclass(frozen=True)
class Permission:
    """A permission code (``<plugin>.<entity>.<verb>``) with its label and default roles."""

    code: str
    label: str
    #: Codes of default roles that get this permission when created or when the
    #: plugin is enabled (e.g. ``("admin", "sales_manager")``).
    default_roles: tuple[str, ...] = ()
    #: The plugin that registered it; filled in by core.
    plugin: str = "core"


@dataclass(frozen=True)
class Action:
    """A way out of a step: ``target`` is a step key, :data:`NEXT` or a terminal step.

    ``permission`` is checked before guards; ``needs_reason`` makes the reason mandatory.
    """

    name: str
    label: str
    target: str = NEXT
    permission: str | None = None
    needs_reason: bool = False
    #: Bootstrap colour of the button: primary, success, danger, secondary, …
    style: str = "primary"
    #: Shown in a confirmation dialog before the action runs (destructive actions).
    confirm: str | None = None


@dataclass(frozen=True)
class Step:
    """A workflow step: a place an order waits in until one of its actions is taken.

    ``position`` orders the pipeline. Core's milestones sit at draft=0, submitted=100,
    confirmed=500, completed=1000; a plugin step takes a position strictly between two
    of them, and belongs to the status of the next milestone at or after it (a step
    at 50 is part of the *submitted* phase, one at 300 of the *confirmed* phase).
    """

    key: str
    label: str
    position: int
    actions: tuple[Action, ...] = ()
    #: Plugin that owns the step ("core" for core's); filled in by core.
    owner: str = "core"
    #: Whether a company may switch this step off.
    optional: bool = True
    help: str = ""
    #: Moves the step makes by itself (an automatic check): ``(action name, label)``
    #: pairs, so histories show a label for them. They are never offered as buttons.
    automatic: tuple[tuple[str, str], ...] = ()
    #: A detour (an escalation such as the president's decision): reached only by an
    #: action that names it as its target, never as the "next" step of another; its
    #: own ``next`` actions lead on to the first ordinary step after its position.
    detour: bool = False


@dataclass(frozen=True)
class RoleDefinition:
    """A default role a plugin ships (review's department reviewers, the president).

    Created, with its ``name`` and data ``scope``, when the plugin is enabled, unless a
    role with that code exists. ``grants`` are permission codes of core or other
    enabled plugins the new role also gets (a reviewer must read orders); the plugin's
    own permissions reach it through their ``default_roles``.
    """

    code: str
    name: str
    scope: str = "own"
    grants: tuple[str, ...] = ()
    plugin: str = "core"


@dataclass(frozen=True)
class Setting:
    """A setting an administrator can change: key, type, default and help text.

    ``type`` is ``str``, ``int``, ``float`` or ``bool``. ``choices``, when given, lists
    the values a ``str`` setting accepts (the admin screen offers a select). ``secret``
    settings (an SMTP password) are never shown back once stored. ``minimum`` and
    ``maximum`` bound a number; ``multiline`` text is edited in a text area.
    """

    key: str
    type: type
    default: Any
    label: str
    help: str = ""
    plugin: str = "core"
    choices: tuple[str, ...] = ()
    secret: bool = False
    minimum: float | None = None
    maximum: float | None = None
    multiline: bool = False


@dataclass(frozen=True)
class MenuItem:
    """A navigation entry: label, Flask endpoint, and the permission it needs."""

    label: str
    endpoint: str
    permission: str | None = None
    #: Items are sorted by ``order``, then label.
    order: int = 100
    icon: str = ""
    plugin: str = "core"
    #: Items sharing a group label show as one drop-down menu of that name (where its
    #: first item would be), so a plugin with many screens takes one place in the bar.
    group: str = ""


@dataclass(frozen=True)
class Badge:
    """A short mark shown beside an order's number in order lists (e.g. "Remote").

    ``style`` is a Bootstrap colour (``secondary``, ``info``, ``warning`` …); ``title``
    the tooltip. Both ``label`` and ``title`` are shown as given, so translate them.
    """

    label: str
    style: str = "secondary"
    title: str = ""
    plugin: str = "core"


@dataclass(frozen=True)
class Panel:
    """A block of the order page contributed by a plugin.

    ``html`` is the block's body. A :class:`markupsafe.Markup` is trusted and shown as
    it is; a plain ``str`` is escaped, so it shows as text. To show a template, wrap
    its output: ``Markup(render_template("myplugin/panel.html", ...))`` (templates
    escape what they insert); build other HTML with ``Markup("<b>{}</b>").format(value)``,
    never by formatting a ``str``.
    """

    title: str
    html: Markup | str
    order: int = 100
    plugin: str = "core"


@dataclass(frozen=True)
class DocumentType:
    """A printable document (PDF via WeasyPrint) rendered from an HTML template.

    ``context`` receives ``(session, order)`` and returns extra template variables.
    ``for_customer`` says whether it may be e-mailed to the customer (an internal sheet
    may not).
    """

    name: str
    label: str
    template: str
    permission: str
    context: Callable[..., Mapping[str, Any]] | None = None
    plugin: str = "core"
    for_customer: bool = True


@dataclass(frozen=True)
class Job:
    """A scheduled job: ``schedule`` is ``every:<seconds>``, ``daily:HH:MM`` or
    ``weekly:<mon..sun>:HH:MM`` (company time); ``function`` receives ``(session, now)``.

    The function runs inside one transaction that also records the run, so a crash
    leaves nothing half done and the next pass runs it again. ``timeout`` (seconds) is
    how long the lease that keeps other workers off lasts. ``label`` shows on screens.
    """

    name: str
    schedule: str
    function: Callable[..., Any]
    plugin: str = "core"
    label: str = ""
    timeout: int = 600

    def __post_init__(self) -> None:
        if not SCHEDULE.match(self.schedule):
            raise ValueError(
                f"job {self.name!r}: schedule {self.schedule!r} is not every:<seconds>, daily:HH:MM "
                "or weekly:<mon..sun>:HH:MM"
            )


@dataclass(frozen=True)
class NotificationTemplate:
    """A message template per language, keyed by ``name``.

    ``subject`` and ``body`` map a language (``zh_CN``, ``en``) to a Jinja2 text
    template; both languages are required. The context passed to ``notify`` fills
    them (``order``, ``recipient`` and ``company`` are always there).
    """

    name: str
    subject: Mapping[str, str]
    body: Mapping[str, str]
    plugin: str = "core"
    label: str = ""


@dataclass(frozen=True)
class Channel:
    """A way to deliver a notification besides core's e-mail and in-app ones (SMS, chat).

    ``address`` says which address of a recipient it uses (``email`` or ``phone``).
    ``deliver(message)`` receives the :class:`core.models.OutboxMessage` (rendered
    subject, body, address) and raises to have delivery retried later with backoff;
    raise :class:`core.notify.PermanentFailure` for an error no retry will fix.
    """

    name: str
    label: str
    address: str
    deliver: Callable[..., Any]
    plugin: str = "core"


@dataclass(frozen=True)
class MigrationBranch:
    """A plugin's Alembic branch: its label (the plugin name) and versions folder."""

    label: str
    versions: Path


@dataclass(frozen=True)
class Finding:
    """A pre-check finding on an order: ``pass``, ``warn`` or ``reject`` with a message."""

    level: str
    message: str
    field: str | None = None
    plugin: str = "core"

    def __post_init__(self) -> None:
        if self.level not in ("pass", "warn", "reject"):
            raise ValueError(f"finding level must be pass, warn or reject, not {self.level!r}")


@dataclass(frozen=True)
class Transition:
    """What is about to happen or has happened to an order: action, from, to, reason."""

    action: str
    from_step: str
    to_step: str
    from_status: str
    to_status: str
    reason: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
