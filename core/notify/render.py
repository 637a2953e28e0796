"""Rendering a notification template for one recipient, in the recipient's language.

Subjects and bodies are Jinja2 *text* templates (no HTML escaping: e-mail and SMS are
plain text) run in a sandbox, so a template can read the objects it is given but not
reach into Python. They are rendered when the notice is queued, so the outbox holds
exactly what was sent even if the order changes later. Filters format codes, money
and dates the way the recipient reads them: ``{{ order.status|status }}``,
``{{ order.total|money(order.currency) }}``, ``{{ order.requested_date|date }}``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency
from babel.support import NullTranslations, Translations
from jinja2 import Template, Undefined
from jinja2.sandbox import SandboxedEnvironment

from core import labels
from core.clock import COMPANY_TIMEZONE
from core.contrib import NotificationTemplate
from core.i18n import CORE_TRANSLATIONS, compile_catalogues

#: The language a template falls back to when the recipient's is not offered.
DEFAULT_LANGUAGE = "zh_CN"
#: Subjects are one line of at most this many characters (the outbox column's size).
SUBJECT_LIMIT = 300


class TemplateFailure(Exception):
    """A notification template that does not compile or render; the message names it."""


@functools.lru_cache(maxsize=8)
def translations(language: str) -> NullTranslations:
    """Core's message catalogue for ``language`` (labels of statuses, channels, …)."""
    if language == "en":
        return NullTranslations()
    compile_catalogues(CORE_TRANSLATIONS)
    return Translations.load(str(CORE_TRANSLATIONS), [Locale.parse(language)])


def status_label(status: str | None, language: str) -> str:
    """The display label of an order status (``confirmed`` → 已确认 / Confirmed)."""
    if status in labels.STATUSES:
        return translations(language).gettext(labels.STATUSES[status])
    return status or ""


def _money(language: str) -> Any:
    # Parsed once per language: babel parses a locale given by name on every call (a
    # scan of every known locale name), which was most of a notice's rendering time.
    locale = Locale.parse(language)

    def money(amount: Decimal | int | float | None, currency: str = "CNY") -> str:
        if amount is None or isinstance(amount, Undefined) or amount == "":
            return ""
        return str(format_currency(Decimal(str(amount)), str(currency or "CNY"), locale=locale))

    return money


def _date(language: str) -> Any:
    locale = Locale.parse(language)

    def date(value: dt.date | dt.datetime | None) -> str:
        if not isinstance(value, dt.date):
            return "" if value is None or isinstance(value, Undefined) else str(value)
        if isinstance(value, dt.datetime):
            return str(format_datetime(value.astimezone(COMPANY_TIMEZONE), "medium", locale=locale))
        return str(format_date(value, "medium", locale=locale))

    return date


@functools.lru_cache(maxsize=4)
def environment(language: str) -> SandboxedEnvironment:
    """The sandboxed text environment for ``language``, with its formatting filters."""
    env = SandboxedEnvironment(autoescape=False, keep_trailing_newline=False, trim_blocks=True, lstrip_blocks=True)
    env.filters["status"] = functools.partial(status_label, language=language)
    env.filters["money"] = _money(language)
    env.filters["date"] = _date(language)
    return env


@functools.lru_cache(maxsize=512)
def _compiled(language: str, source: str) -> Template:
    return environment(language).from_string(source)


def pick_language(template: NotificationTemplate, language: str | None) -> str:
    """``language`` if the template speaks it, else :data:`DEFAULT_LANGUAGE`."""
    return language if language and template.subject.get(language) and template.body.get(language) else DEFAULT_LANGUAGE


def one_line(text: str, limit: int = SUBJECT_LIMIT) -> str:
    """``text`` on one line (runs of white space become one space), cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def render(template: NotificationTemplate, language: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """``(subject, body)`` of ``template`` in ``language`` (falling back to zh_CN) for ``context``.

    Raises :class:`TemplateFailure` naming the template when it does not compile or
    render, so a plugin's typo is reported where it is, not as a Jinja traceback.
    """
    language = pick_language(template, language)
    try:
        subject = _compiled(language, template.subject[language]).render(**context)
        body = _compiled(language, template.body[language]).render(**context)
    except Exception as exc:  # a syntax error, or a filter given what it cannot format
        raise TemplateFailure(
            f"notification template {template.name!r} ({template.plugin}, {language}) failed: {exc}"
        ) from exc
    return one_line(subject), body.strip() + "\n"
