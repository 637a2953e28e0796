"""Screens: server-rendered pages with Bootstrap 5 served locally, in Chinese and English.

Besides registering core's screens, this sets up what every template (core's and the
plugins') may use: the labels of statuses and codes, message localizing, and filters
for money, quantities, dates and times in the user's language and time zone.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import Flask, redirect, request, url_for
from flask_babel import format_currency, format_date, format_datetime, format_decimal, get_locale
from flask_login import current_user
from werkzeug.wrappers import Response

from core.clock import TIMEZONE_NAME
from core.security.fields import can_see
from core.views import labels
from core.views.common import plain_number
from core.views.menu import menu_entries, menu_for
from core.views.messages import localize

#: Staff read times in the company's zone; ``BABEL_DEFAULT_TIMEZONE`` overrides it.
DEFAULT_TIMEZONE = TIMEZONE_NAME


def money(value: Decimal | None, currency: str | None = None) -> str:
    """An amount to the cent, with its currency sign when ``currency`` is given."""
    if value is None:
        return ""
    if currency:
        return format_currency(value, currency, format="¤#,##0.00", currency_digits=False)
    return format_decimal(value, format="#,##0.00")


def unit_price(value: Decimal | None) -> str:
    """A unit price: at least two decimals, up to the four stored."""
    return "" if value is None else format_decimal(value, format="#,##0.00##")


def quantity(value: Decimal | None) -> str:
    """A quantity without needless trailing zeros (2, 2.5, 0.125)."""
    return "" if value is None else format_decimal(value, format="#,##0.###")


def percent(value: Decimal | None) -> str:
    """A percentage such as a discount or tax rate: ``13%``, ``2.5%``."""
    return "" if value is None else format_decimal(value, format="#,##0.##") + "%"


def datetime_filter(value: dt.datetime | None) -> str:
    """A moment in the user's time zone: ``2026-11-22 14:05``."""
    return "" if value is None else format_datetime(value, "yyyy-MM-dd HH:mm")


def date_filter(value: dt.date | None) -> str:
    """A date: ``2026-11-22`` in both languages (unambiguous in both)."""
    return "" if value is None else format_date(value, "yyyy-MM-dd")


def init_views(app: Flask) -> None:
    """Register core's screens and the template helpers every screen uses."""
    from core.views import auth

    app.register_blueprint(auth.bp)
    if not app.config.get("BABEL_DEFAULT_TIMEZONE"):
        app.extensions["babel"].default_timezone = DEFAULT_TIMEZONE

    # Globals, not a context processor: imported macros see globals only.
    app.jinja_env.globals.update(
        status_label=labels.status_label,
        status_colour=labels.status_colour,
        step_label=labels.step_label,
        action_label=labels.action_label,
        channel_label=labels.channel_label,
        payment_method_label=labels.payment_method_label,
        urgency_label=labels.urgency_label,
        finding_level_label=labels.finding_level_label,
        localize=localize,
        translate=labels.translate,
        can_see=can_see,
        menu_entries=menu_entries,
    )
    app.jinja_env.filters.update(
        money=money,
        unit_price=unit_price,
        quantity=quantity,
        percent=percent,
        datetime=datetime_filter,
        date=date_filter,
        plain=plain_number,
        number=format_decimal,
    )

    @app.context_processor
    def _layout() -> dict[str, Any]:
        return {
            "menu": menu_for(current_user if current_user.is_authenticated else None),
            "get_locale": get_locale,
        }

    @app.get("/")
    def index() -> Response:
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login"))
        for item in menu_for(current_user):
            return redirect(url_for(item.endpoint))
        return redirect(url_for("auth.login"))

    _register_screen_blueprints(app)

    @app.after_request
    def _no_cache_for_pages(response: Response) -> Response:
        if response.mimetype == "text/html" and not request.path.startswith("/static"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def _register_screen_blueprints(app: Flask) -> None:
    from core.views import admin, audit, customers, orders, products, roles, settings, tokens, users

    for module in (orders, customers, products, admin, audit, users, roles, tokens, settings):
        app.register_blueprint(module.bp)
