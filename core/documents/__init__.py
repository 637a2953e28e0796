"""Printable documents: HTML templates rendered to PDF with WeasyPrint.

Core and plugins register document types (:class:`core.contrib.DocumentType`); any
of them renders for an order the user may see, in the user's language, with a CJK
font so Chinese prints. Templates are looked up in core's and every enabled plugin's
``templates`` folder, so rendering needs no web request (the worker and CLI print too).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from babel import Locale
from babel.support import Translations
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from core import labels
from core.i18n import CORE_TRANSLATIONS, compile_catalogues
from core.models import Order, User
from core.plugins import Registry
from core.security.fields import can_see
from core.services import NotFound, ServiceError

CORE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def environment(registry: Registry, language: str) -> Environment:
    """A Jinja environment over core's and the enabled plugins' templates, in ``language``."""
    env = Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(str(f)) for f in [CORE_TEMPLATES, *registry.plugin_folders("templates")]]
        ),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
    )
    translations: Translations | None = None
    for folder in [CORE_TRANSLATIONS, *registry.plugin_folders("translations")]:
        compile_catalogues(folder)
        # Babel names the catalogue folder after the parsed locale (zh_CN → zh_Hans_CN).
        loaded = Translations.load(str(folder), [Locale.parse(language)])
        if translations is None:
            translations = loaded if isinstance(loaded, Translations) else None
        elif isinstance(loaded, Translations):
            translations.merge(loaded)
    if translations is not None:
        env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    else:
        env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    translate = translations.gettext if translations is not None else str
    env.globals["can_see"] = can_see  # field-level permissions (the request's user; none without)
    env.globals.update(
        {
            f"{kind}_label": _labeller(table, translate)
            for kind, table in (
                ("status", labels.STATUSES),
                ("channel", labels.CHANNELS),
                ("payment_method", labels.PAYMENT_METHODS),
                ("urgency", labels.URGENCIES),
            )
        }
    )
    return env


def _labeller(table: dict[str, str], translate: Any) -> Any:
    def label(code: str | None) -> str:
        return str(translate(table[code])) if code in table else (code or "")

    return label


def render_html(session: Session, registry: Registry, name: str, order: Order, language: str = "zh_CN") -> str:
    """The HTML of document ``name`` for ``order`` (the step before the PDF)."""
    doc = registry.documents.get(name)
    if doc is None:
        raise NotFound("document type", name)
    context: dict[str, Any] = {
        "order": order,
        "document": doc,
        "printed_at": dt.datetime.now(dt.UTC),
        "language": language,
    }
    if doc.context is not None:
        context.update(doc.context(session, order))
    return environment(registry, language).get_template(doc.template).render(**context)


def render_document(session: Session, registry: Registry, name: str, order: Order, language: str = "zh_CN") -> bytes:
    """Document ``name`` for ``order`` as PDF bytes."""
    from weasyprint import HTML

    html = render_html(session, registry, name, order, language)
    return HTML(string=html, base_url=str(CORE_TEMPLATES)).write_pdf()


def check_may_print(registry: Registry, name: str, user: User) -> None:
    """Refuse unless ``user`` holds the document type's permission (the order's scope is
    checked by fetching it through :func:`core.services.orders.get_order`)."""
    doc = registry.documents.get(name)
    if doc is None:
        raise NotFound("document type", name)
    if not user.can(doc.permission):
        raise ServiceError("forbidden", f"you lack the permission {doc.permission!r}", status=403)
