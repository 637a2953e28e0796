"""What every screen needs: blueprints with error pages, permission checks, paging, sorting
and turning a service's refusal into messages beside the fields.

Core's screens and the plugins' screens use these helpers so that all of Ordo behaves
alike: the same 403/404 pages, the same page sizes, the same way of showing errors.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden, NotFound
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from core.models import User
from core.security.origin import ForeignOrigin
from core.services import ServiceError
from core.views.messages import localize

F = TypeVar("F", bound=Callable[..., Any])

#: The page sizes a list offers; the first is the default.
PAGE_SIZES = (20, 50, 100, 200)
#: The highest page number a list accepts (a larger one shows the first page): its offset
#: stays within the database's integers.
MAX_PAGE = 1_000_000


def screen_blueprint(name: str, import_name: str, **kwargs: Any) -> Blueprint:
    """A blueprint for screens, with Ordo's 403 and 404 pages and expired-form handling.

    Error pages are attached to the blueprint rather than the app so that the API keeps
    answering its JSON error envelope.
    """
    bp = Blueprint(name, import_name, **kwargs)
    bp.register_error_handler(Forbidden, _forbidden)
    bp.register_error_handler(NotFound, _not_found)
    bp.register_error_handler(CSRFError, _csrf_failed)
    return bp


def _forbidden(exc: Exception) -> tuple[str, int]:
    return render_template("errors/403.html", foreign_origin=isinstance(exc, ForeignOrigin)), 403


def _not_found(_exc: Exception) -> tuple[str, int]:
    return render_template("errors/404.html"), 404


def _csrf_failed(_exc: Exception) -> Response:
    flash(_("The form had expired, so nothing was saved. Please try again."), "warning")
    referrer = request.referrer or ""
    if referrer.startswith(request.host_url):
        return redirect(referrer)
    return redirect(safe_target(referrer, url_for("index")))


def safe_target(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site, else ``default``: where to redirect after a form.

    Use it for every ``next``/``back`` value that came with the request, so a link cannot
    send a user to another site after logging in (an open redirect). Refused: anything
    with a control character (browsers drop tabs and newlines, so ``/<tab>/evil`` becomes
    ``//evil``) or a backslash (read as ``/``), anything with a scheme or host
    (``https://evil``, ``javascript:…``, ``//evil``), and anything not starting with ``/``.
    """
    if not target or "\\" in target or any(unicodedata.category(c) == "Cc" for c in target):
        return default
    if not target.startswith("/") or target.startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return default
    return target


def current_actor() -> User:
    """The logged-in user (screens are only reachable when logged in)."""
    return cast(User, current_user._get_current_object())


def permission_required(*codes: str) -> Callable[[F], F]:
    """Require a logged-in user holding every one of ``codes``; 403 otherwise.

    The view keeps the codes as ``required_permissions``, so tests (the permission
    matrix) and tools can tell what an endpoint needs without a list kept by hand.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_actor()
            if not all(user.can(code) for code in codes):
                raise Forbidden()
            return view(*args, **kwargs)

        wrapped.required_permissions = codes  # type: ignore[attr-defined]
        return cast(F, login_required(wrapped))

    return decorate


def abort_for(exc: ServiceError) -> None:
    """Turn a service's 403 or 404 into the screen's error page; other refusals return."""
    if exc.status == 404:
        raise NotFound()
    if exc.status == 403:
        raise Forbidden()


# --- errors beside fields ------------------------------------------------------------


@dataclass
class FieldErrors:
    """A service's per-field refusal, localized and split the way forms show it.

    ``fields`` maps a dotted field name (``customer``, ``ship_to.city``) to messages;
    ``rows`` maps a repeated group (``lines``) to {row number → {field → messages}};
    ``general`` holds messages that belong to no single field.
    """

    fields: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, dict[int, dict[str, list[str]]]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.rows or self.general)

    def row(self, group: str, index: int) -> dict[str, list[str]]:
        """The errors of row ``index`` of ``group`` (empty when none)."""
        return self.rows.get(group, {}).get(index, {})


def field_errors(details: Any, groups: Iterable[str] = ()) -> FieldErrors:
    """Split a marshmallow/service error ``details`` mapping into a :class:`FieldErrors`.

    ``groups`` names the list fields whose errors come keyed by row number.
    """
    result = FieldErrors()
    groups = set(groups)
    if not isinstance(details, Mapping):
        result.general.extend(localize(str(m)) for m in _messages(details))
        return result
    for key, value in details.items():
        name = str(key)
        if name in groups and isinstance(value, Mapping):
            rows = result.rows.setdefault(name, {})
            for index, row in value.items():
                if isinstance(row, Mapping):
                    rows[int(index)] = {str(k): [localize(m) for m in _messages(v)] for k, v in row.items()}
                else:
                    result.general.extend(localize(m) for m in _messages(row))
        elif isinstance(value, Mapping):
            for sub, messages in value.items():
                result.fields[f"{name}.{sub}"] = [localize(m) for m in _messages(messages)]
        else:
            result.fields[name] = [localize(m) for m in _messages(value)]
    return result


def _messages(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [m for v in value.values() for m in _messages(v)]
    if isinstance(value, Iterable):
        return [m for v in value for m in _messages(v)]
    return [str(value)]


def attach_errors(form: Any, errors: FieldErrors, names: Mapping[str, str] | None = None) -> None:
    """Put ``errors`` on the WTForms fields of ``form`` (``names`` maps error keys to fields).

    Errors whose field the form does not have become general messages.
    """
    names = names or {}
    for key, messages in errors.fields.items():
        field_name = names.get(key, key.replace(".", "_"))
        if field_name in form:
            form[field_name].errors = list(messages)
        else:
            errors.general.extend(messages)


# --- lists: paging and sorting -----------------------------------------------------------


@dataclass
class Page:
    """One page of a list: its rows, the total, and how to link to other pages.

    ``more`` says the total is a lower bound: counting stopped there (a count capped for
    speed, as the order list's), so the list shows "10,000+" and ``has_next`` tells
    whether rows follow this page.
    """

    rows: list[Any]
    total: int
    page: int
    size: int
    sort: str
    endpoint: str
    args: dict[str, Any]
    more: bool = False
    has_next: bool = False

    @property
    def pages(self) -> int:
        """The number of pages (at least one); with ``more``, the pages known so far."""
        known = max(1, math.ceil(self.total / self.size))
        if not self.more:
            return known
        return max(known, self.page + 1 if self.has_next else self.page)

    @property
    def first_index(self) -> int:
        """The 1-based position of the first row shown (0 when empty)."""
        shown = self.rows if self.more else self.total
        return (self.page - 1) * self.size + 1 if shown else 0

    @property
    def last_index(self) -> int:
        """The 1-based position of the last row shown."""
        if self.more:
            return (self.page - 1) * self.size + len(self.rows)
        return min(self.total, self.page * self.size)

    @property
    def total_text(self) -> str:
        """The total as shown, in the user's locale: "1,234", or "10,000+" with ``more``."""
        return format_decimal(self.total) + ("+" if self.more else "")

    def url(self, **changes: Any) -> str:
        """This list's URL with ``changes`` to its query (page, size, sort, filters)."""
        args = {**self.args, "page": self.page, "size": self.size, "sort": self.sort, **changes}
        return url_for(self.endpoint, **{k: v for k, v in args.items() if v not in (None, "")})

    def window(self, radius: int = 2) -> list[int | None]:
        """Page numbers to link, with ``None`` for a gap: 1 … 4 5 [6] 7 8 … 20."""
        shown = {1, self.pages, *range(self.page - radius, self.page + radius + 1)}
        numbers = sorted(n for n in shown if 1 <= n <= self.pages)
        out: list[int | None] = []
        for n in numbers:
            if out and n - cast(int, out[-1]) > 1:
                out.append(None)
            out.append(n)
        return out


def page_args(default_sort: str, sortable: Mapping[str, Any]) -> tuple[int, int, str]:
    """Page number, page size and sort key from the query string, each checked."""
    page = request.args.get("page", "1")
    size = request.args.get("size", str(PAGE_SIZES[0]))
    sort = request.args.get("sort", default_sort)
    page_n = int(page) if page.isascii() and page.isdigit() and 0 < int(page) <= MAX_PAGE else 1
    size_n = int(size) if size.isascii() and size.isdigit() and int(size) in PAGE_SIZES else PAGE_SIZES[0]
    if sort.lstrip("-") not in sortable:
        sort = default_sort
    return page_n, size_n, sort


def paginate(
    session: Session,
    stmt: Select[Any] | None,
    *,
    sortable: Mapping[str, ColumnElement[Any] | Any],
    default_sort: str,
    endpoint: str,
    args: Mapping[str, Any],
    total: int | None = None,
    tie_breaker: Any = None,
    more: bool = False,
    fetch: Callable[[list[Any], int, int], list[Any]] | None = None,
) -> Page:
    """Run one page of ``stmt`` sorted by a whitelisted key; count in SQL, never in Python.

    ``sortable`` maps sort keys to columns; ``-key`` sorts descending. ``total`` may be
    given when a service already counts (the orders list uses ``count_orders``); ``more``
    says that count stopped at a cap, so any page number may exist. ``fetch(ordering,
    offset, limit)`` reads the rows instead of ``stmt`` when a service pages itself
    (:func:`core.services.orders.order_page`).
    """
    page, size, sort = page_args(default_sort, sortable)
    if total is None:
        assert stmt is not None, "paginate needs a statement or a total"
        total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    column = sortable[sort.lstrip("-")]
    ordering = [column.desc() if sort.startswith("-") else column.asc()]
    if tie_breaker is not None:
        ordering.append(tie_breaker.desc() if sort.startswith("-") else tie_breaker.asc())

    def rows_of(offset: int, limit: int) -> list[Any]:
        if fetch is not None:
            return fetch(ordering, offset, limit)
        assert stmt is not None
        return list(session.scalars(stmt.order_by(None).order_by(*ordering).offset(offset).limit(limit)))

    if more:
        # The count stopped at a cap: read one row more to know whether a next page exists.
        offset = (page - 1) * size
        rows = rows_of(offset, size + 1)
        if len(rows) > size:  # at least this many, and more
            return Page(rows[:size], max(total, offset + size), page, size, sort, endpoint, dict(args), True, True)
        if rows:  # the last page: now the total is known
            return Page(rows, offset + len(rows), page, size, sort, endpoint, dict(args), False, False)
        return Page(rows, total, page, size, sort, endpoint, dict(args), True, False)
    pages = max(1, math.ceil(total / size))
    page = min(page, pages)
    rows = rows_of((page - 1) * size, size)
    return Page(rows, total, page, size, sort, endpoint, dict(args), False, page < pages)


def query_args(*names: str) -> dict[str, str]:
    """The non-empty query-string values of ``names`` (the filters a list keeps in links)."""
    return {name: request.args[name].strip() for name in names if request.args.get(name, "").strip()}


def plain_number(value: Decimal | None, places: int = 0) -> str:
    """``value`` without trailing zeros but with at least ``places`` decimals: form values."""
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    whole, _dot, fraction = text.partition(".")
    fraction = fraction.ljust(places, "0")
    return f"{whole}.{fraction}" if fraction else whole


def flash_errors(messages: Iterable[str]) -> None:
    """Flash each message as an error."""
    for message in messages:
        flash(message, "danger")


def select_choices(pairs: Iterable[tuple[str, Any]]) -> list[SelectChoice]:
    """``(value, label)`` pairs as WTForms select options (tuples are deprecated there)."""
    return [SelectChoice(value, str(label)) for value, label in pairs]
