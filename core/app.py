"""The Flask app factory: ``create_app()`` builds a fresh app with its enabled plugins.

No global app and no global plugin manager: each app (and each test) gets its own
:class:`core.plugins.Registry`, built from the plugins enabled in its database, or
from ``PLUGINS`` in the config when a test names them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from flask_bootstrap import Bootstrap5
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from core.config import load_instance
from core.db import make_engine, make_session_factory
from core.i18n import CORE_TRANSLATIONS, init_babel
from core.installation import enabled_plugins
from core.models import User
from core.plugins import Registry
from core.security.tokens import bearer_token
from core.web import OrdoState, close_session, db

csrf = CSRFProtect()


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Ordo web app.

    ``config`` may set ``INSTANCE`` (folder), ``DATABASE_URL``, ``PLUGINS`` (a list
    that replaces the database's enabled set, for tests) and any Flask setting.
    """
    config = dict(config or {})
    instance = load_instance(config.pop("INSTANCE", None), config.pop("DATABASE_URL", None))
    engine = make_engine(instance.database_url)
    plugins = config.pop("PLUGINS", None)
    registry = Registry(enabled_plugins(engine) if plugins is None else plugins)

    app = Flask("core", instance_path=str(instance.path))
    app.config.update(
        SECRET_KEY=instance.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,
        BOOTSTRAP_SERVE_LOCAL=True,
        MAX_CONTENT_LENGTH=32 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.config.update(config)
    app.extensions["ordo"] = OrdoState(
        instance,
        engine,
        make_session_factory(engine, registry=registry),
        registry,
        make_session_factory(engine, read_only=True, registry=registry),
    )
    app.teardown_appcontext(close_session)

    Bootstrap5(app)
    csrf.init_app(app)
    _init_login(app)
    init_babel(app, [CORE_TRANSLATIONS, *_plugin_translations(registry)])

    @app.before_request
    def _csrf_unless_bearer() -> None:
        # Browsers send cookies on their own, so cookie-authenticated writes need the
        # CSRF token; a bearer token cannot be sent cross-site, so it needs none.
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return
        if bearer_token(request.headers.get("Authorization")) is not None:
            return
        csrf.protect()

    @app.after_request
    def _secure_cookies(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.before_request
    def _secure_cookie_over_https() -> None:
        app.config["SESSION_COOKIE_SECURE"] = request.is_secure
        app.config["REMEMBER_COOKIE_SECURE"] = request.is_secure

    from core.api import init_api
    from core.documents.views import bp as documents_bp
    from core.views import init_views

    api = init_api(app)
    init_views(app)
    app.register_blueprint(documents_bp)
    for blueprints in registry.hook.ordo_register_blueprints(app=app):
        for blueprint in blueprints or ():
            if (blueprint.url_prefix or "").startswith("/api/") and hasattr(blueprint, "_docs"):
                api.register_blueprint(blueprint)
            else:
                app.register_blueprint(blueprint)
    return app


def _plugin_translations(registry: Registry) -> list[Path]:
    folders = []
    for name in registry.enabled:
        folder = Path(registry.installed[name].module.__file__ or "").parent / "translations"
        if folder.is_dir():
            folders.append(folder)
    return folders


def _init_login(app: Flask) -> None:
    from core.security.tokens import user_for_token

    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.session_protection = "strong"

    @manager.user_loader
    def load_user(user_id: str) -> User | None:
        user = db().get(User, int(user_id)) if user_id.isdigit() else None
        return user if user is not None and user.active else None

    @manager.request_loader
    def load_from_token(req: Any) -> User | None:
        token = bearer_token(req.headers.get("Authorization"))
        if not token:
            return None
        # Looked up (and its last use recorded) in a short session of its own, before the
        # request's own session exists, so the two never wait on each other.
        with app.extensions["ordo"].read_sessions() as lookup:
            found = user_for_token(lookup, token)
            user_id = found.id if found is not None else None
        return db().get(User, user_id) if user_id is not None else None

    @app.before_request
    def _load_token_user_first() -> None:
        if bearer_token(request.headers.get("Authorization")):
            current_user._get_current_object()
