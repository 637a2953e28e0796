"""Screens: server-rendered pages with Bootstrap 5 served locally, in Chinese and English."""

from __future__ import annotations

from typing import Any

from flask import Flask, redirect, request, url_for
from flask_babel import get_locale
from flask_login import current_user
from werkzeug.wrappers import Response

from core.views.menu import menu_for


def init_views(app: Flask) -> None:
    """Register core's screens and the template helpers every screen uses."""
    from core.views import auth

    app.register_blueprint(auth.bp)

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
    import importlib

    for name in ("orders", "customers", "products", "admin"):
        try:
            module = importlib.import_module(f"core.views.{name}")
        except ModuleNotFoundError:
            continue
        app.register_blueprint(module.bp)
