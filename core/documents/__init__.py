"""Printable documents: HTML templates rendered to PDF with WeasyPrint.

Core and plugins register document types (:class:`core.contrib.DocumentType`); any
of them renders for an order the user may see, in Chinese or English, with a CJK font
so Chinese prints. Templates are looked up in core's and every enabled plugin's
``templates`` folder, so rendering needs no web request (the worker and CLI print too).

Every template extends ``documents/base.html``, the company letterhead: name, address,
phone, e-mail, tax id and logo at the top, page numbers and the printing time (company
time zone) at the foot of every page. Rendering fetches nothing: the logo comes along
as a ``data:`` URI and any other file or network address a template names is refused.
What was issued is kept by :mod:`core.documents.archive`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import weakref
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from core import labels
from core.clock import COMPANY_TIMEZONE, TIMEZONE_NAME, company_now
from core.contrib import DocumentType
from core.documents.capitals import chinese_capitals
from core.i18n import CORE_TRANSLATIONS, LANGUAGES, compile_catalogues
from core.models import Company, Order, User
from core.plugins import Registry
from core.security.fields import can_see
from core.services import NotFound, ServiceError

CORE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
#: Image types a logo may have, as stored on the company (``png``) or as a MIME type.
LOGO_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}

log = logging.getLogger(__name__)


def check_language(language: str) -> str:
    """``language`` if documents are printed in it (``zh_CN``, ``en``); a 422 error otherwise."""
    if language not in LANGUAGES:
        raise ServiceError(
            "invalid",
            f"documents are printed in {' or '.join(LANGUAGES)}, not {language!r}",
            {"lang": [f"Use one of: {', '.join(LANGUAGES)}."]},
        )
    return language


def reader_language(user: User) -> str:
    """The language ``user`` reads documents in: their own, Chinese when it is not one printed."""
    return user.language if user.language in LANGUAGES else "zh_CN"


#: The merged catalogues per registry (an app's plugin set) and language.
_MERGED: weakref.WeakKeyDictionary[Registry, dict[str, NullTranslations]] = weakref.WeakKeyDictionary()


def translations_for(registry: Registry, language: str) -> NullTranslations:
    """Core's and the enabled plugins' message catalogues for ``language``, merged.

    Read once per registry and language: every notice of review's supervision and every
    document asked for them, and reading and merging the catalogues cost more than
    rendering. Like Flask-Babel's catalogues they are kept for the life of the process
    (a changed plugin set is a new registry); a catalogue changed on disk is read by the
    next process.
    """
    by_language = _MERGED.setdefault(registry, {})
    if language not in by_language:
        by_language[language] = _merged_translations(registry, language)
    return by_language[language]


def _merged_translations(registry: Registry, language: str) -> NullTranslations:
    translations: Translations | None = None
    for folder in [CORE_TRANSLATIONS, *registry.plugin_folders("translations")]:
        compile_catalogues(folder)
        # Babel names the catalogue folder after the parsed locale (zh_CN → zh_Hans_CN).
        loaded = Translations.load(str(folder), [Locale.parse(language)])
        if translations is None:
            translations = loaded if isinstance(loaded, Translations) else None
        elif isinstance(loaded, Translations):
            translations.merge(loaded)
    return translations if translations is not None else NullTranslations()


def document_label(registry: Registry, doc: DocumentType, language: str) -> str:
    """The document type's label in ``language`` (订单确认书 / Order confirmation)."""
    return str(translations_for(registry, language).gettext(doc.label))


def environment(registry: Registry, language: str) -> Environment:
    """A Jinja environment over core's and the enabled plugins' templates, in ``language``.

    Besides the gettext functions it offers the labels of codes (``status_label``, …)
    and filters that format figures the way the language writes them: ``money``,
    ``unit_price``, ``quantity``, ``percent``, ``date``, ``datetime`` (company time zone)
    and ``capitals`` (an amount in Chinese capital figures).
    """
    env = Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(str(f)) for f in [CORE_TEMPLATES, *registry.plugin_folders("templates")]]
        ),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
    )
    translations = translations_for(registry, language)
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    env.globals["can_see"] = can_see  # field-level permissions (the request's user; none without)
    # A data string (a plugin's label or help text) in the language; unlike ``_()`` it never
    # %-formats, so a text holding "100 %" prints as written (as on screens).
    env.globals["translate"] = lambda text: translations.gettext(text) if text else ""
    env.globals.update(
        {
            f"{kind}_label": _labeller(table, translations.gettext)
            for kind, table in (
                ("status", labels.STATUSES),
                ("channel", labels.CHANNELS),
                ("payment_method", labels.PAYMENT_METHODS),
                ("urgency", labels.URGENCIES),
            )
        }
    )
    env.filters.update(_filters(language))
    return env


def _labeller(table: dict[str, str], translate: Callable[[str], str]) -> Callable[[str | None], str]:
    def label(code: str | None) -> str:
        return str(translate(table[code])) if code in table else (code or "")

    return label


def _filters(language: str) -> dict[str, Callable[..., str]]:
    """Figures and times as ``language`` writes them; times in the company's zone."""
    locale = Locale.parse(language)

    def number(pattern: str) -> Callable[[Decimal | None], str]:
        def fmt(value: Decimal | None) -> str:
            return "" if value is None else str(format_decimal(value, format=pattern, locale=locale))

        return fmt

    def percent(value: Decimal | None) -> str:
        return "" if value is None else str(format_decimal(value, format="#,##0.##", locale=locale)) + "%"

    def date(value: dt.date | dt.datetime | None) -> str:
        if value is None:
            return ""
        if isinstance(value, dt.datetime):
            value = value.astimezone(COMPANY_TIMEZONE).date()
        return str(format_date(value, "yyyy-MM-dd", locale=locale))

    def datetime(value: dt.datetime | None) -> str:
        if value is None:
            return ""
        return str(format_datetime(value.astimezone(COMPANY_TIMEZONE), "yyyy-MM-dd HH:mm", locale=locale))

    return {
        "money": number("#,##0.00"),
        "unit_price": number("#,##0.00##"),
        "quantity": number("#,##0.###"),
        "percent": percent,
        "date": date,
        "datetime": datetime,
        "capitals": chinese_capitals,
    }


# --- the letterhead -------------------------------------------------------------------------


def order_company(session: Session, order: Order) -> Company:
    """The company that issues documents for ``order`` (the order's own company)."""
    company = session.get(Company, order.company_id)
    if company is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFound("company", order.company_id)
    return company


def logo_data_uri(session: Session, company: Company) -> str | None:
    """The company's logo as a ``data:`` URI for the letterhead, or None without one.

    Read from the file store (hash-checked). A logo that has gone missing or is damaged
    is left out with a warning in the log: the document still prints.
    """
    if not company.logo_sha256:
        return None
    from core.files import file_store

    try:
        data = file_store(session).get(company.logo_sha256)
    except (OSError, ValueError) as exc:
        log.warning("company logo %s left off the letterhead: %s", company.logo_sha256, exc)
        return None
    kind = company.logo_type.strip().lower()
    mime = kind if kind.startswith("image/") else LOGO_TYPES.get(kind)
    if mime is None:
        log.warning("company logo left off the letterhead: unknown image type %r", company.logo_type)
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


#: The printing time written into the HTML whose hash tells two copies' contents apart
#: (:func:`content_hash`): any fixed time, so that only what the document says counts.
CONTENT_PRINTED_AT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def render_html(
    session: Session,
    registry: Registry,
    name: str,
    order: Order,
    language: str = "zh_CN",
    *,
    printed_at: dt.datetime | None = None,
) -> str:
    """The HTML of document ``name`` for ``order`` (the step before the PDF), printed now
    unless ``printed_at`` says otherwise."""
    doc = registry.documents.get(name)
    if doc is None:
        raise NotFound("document type", name)
    check_language(language)
    company = order_company(session, order)
    context: dict[str, Any] = {
        "order": order,
        "document": doc,
        "title": document_label(registry, doc, language),
        "company": company,
        "logo": logo_data_uri(session, company),
        "printed_at": printed_at if printed_at is not None else company_now(),
        "timezone": TIMEZONE_NAME,
        "language": language,
    }
    if doc.context is not None:
        context.update(doc.context(session, order))
    return environment(registry, language).get_template(doc.template).render(**context)


def data_only_fetcher() -> Any:
    """WeasyPrint's URL fetcher for documents: ``data:`` URIs only, never a file or the network.

    A template (or data printed in it) naming ``file:///etc/passwd`` or an intranet
    address must not pull it into a document; such a resource is left out (and logged).
    """
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols=("data",))


def content_hash(session: Session, registry: Registry, name: str, order: Order, language: str = "zh_CN") -> str:
    """SHA-256 (hex) of what document ``name`` of ``order`` says in ``language`` now: its
    HTML with a fixed printing time. Equal hashes mean an archived copy can be handed out
    again (:mod:`core.documents.archive`); cheap — it renders no PDF."""
    html = render_html(session, registry, name, order, language, printed_at=CONTENT_PRINTED_AT)
    return hashlib.sha256(html.encode("utf-8")).hexdigest()


def html_to_pdf(html: str) -> bytes:
    """A document's HTML as PDF bytes (WeasyPrint; fetches nothing but ``data:`` URIs)."""
    from weasyprint import HTML

    return HTML(string=html, base_url=str(CORE_TEMPLATES), url_fetcher=data_only_fetcher()).write_pdf()


def render_document(session: Session, registry: Registry, name: str, order: Order, language: str = "zh_CN") -> bytes:
    """Document ``name`` for ``order`` as PDF bytes (nothing is archived: see
    :func:`core.documents.archive.issue_document`)."""
    return html_to_pdf(render_html(session, registry, name, order, language))


def check_may_print(registry: Registry, name: str, user: User) -> DocumentType:
    """The document type ``name`` if ``user`` holds its permission; 404 for an unknown type,
    403 without the permission. (The order's scope is checked by fetching it through
    :func:`core.services.orders.get_order`.)"""
    doc = registry.documents.get(name)
    if doc is None:
        raise NotFound("document type", name)
    if not user.can(doc.permission):
        raise ServiceError("forbidden", f"you lack the permission {doc.permission!r}", status=403)
    return doc


def printable_documents(registry: Registry, user: User) -> list[DocumentType]:
    """The document types ``user`` may print, in registration order."""
    return [doc for doc in registry.documents.values() if user.can(doc.permission)]
