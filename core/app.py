"""The Flask app factory: ``create_app()`` builds a fresh app with its enabled plugins.

No global app and no global plugin manager: each app (and each test) gets its own
:class:`core.plugins.Registry`, built from the plugins enabled in its database, or
from ``PLUGINS`` in the config when a test names them.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from flask_bootstrap import Bootstrap5
from flask_login import LoginManager
from sqlalchemy.exc import DBAPIError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map
from werkzeug.wrappers import Response as WerkzeugResponse

from core.concurrency import is_retryable, pause, should_retry
from core.config import load_instance
from core.db import make_engine, make_session_factory
from core.i18n import CORE_TRANSLATIONS, init_babel
from core.installation import enabled_plugins
from core.models import User
from core.plugins import Registry
from core.schemas import MAX_ID
from core.security.csrf import OrdoCSRFProtect
from core.security.origin import ForeignOrigin, foreign_origin
from core.security.tokens import bearer_token
from core.web import OrdoState, actor, close_session, db

csrf = OrdoCSRFProtect()
#: A request id a proxy may pass on: letters, digits and dashes, 8 to 64 of them.
REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")

#: The ids ``<int:…>`` URL parts accept: what an id column holds on every database
#: (PostgreSQL's INTEGER is 32 bits; ``core.schemas.MAX_ID``).
ID_MIN = 1
ID_MAX = MAX_ID

#: Where the request's bearer-token lookup is kept (in the WSGI environ: one request only).
_TOKEN_USER_KEY = "ordo.token_user_id"
_TOKEN_AUTHENTICATED_KEY = "ordo.token_authenticated"


class IdConverter(IntegerConverter):
    """The ``int`` URL converter, bounded to database ids (1 … 2**31-1).

    A larger number cannot be a row's id (and overflows the database's integer), so
    such a URL matches no route: 404 on screens and in the API, never a 500. Bounds a
    route gives itself (``<int(min=5):n>``) still apply within these.
    """

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = None,
        signed: bool = False,
    ) -> None:
        low = ID_MIN if min is None or min < ID_MIN else min
        high = ID_MAX if max is None or max > ID_MAX else max
        super().__init__(map, fixed_digits=fixed_digits, min=low, max=high, signed=signed)


class OrdoSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the cookie marked Secure per request.

    A request that came over HTTPS gets a Secure cookie; ``SESSION_COOKIE_SECURE``
    makes every cookie Secure. Deciding per request here (instead of changing the
    app's configuration in a request hook) is safe when threads serve requests at once.
    Behind a proxy that terminates TLS, the app sees plain HTTP unless ``PROXY_FIX`` /
    ``ORDO_PROXY_FIX`` says how many proxies to trust for ``X-Forwarded-Proto``.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure when configured so, or when this request came over HTTPS."""
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (has_request_context() and request.is_secure)


class OrdoFlask(Flask):
    """Flask, dispatching a request again when its transaction lost a race (``core.concurrency``).

    A serialization failure, deadlock or busy database raised while handling a request
    rolls the request's session back; the request then runs again from its first
    ``before_request`` hook with a fresh session and an empty ``g``, at most
    ``MAX_ATTEMPTS`` times in all. Uploaded files are rewound so the next attempt reads
    them whole. A request whose work reached outside the database
    (``mark_external_effect``) is not run again.
    """

    def full_dispatch_request(self) -> Response:
        """Dispatch the request; again (bounded) if its transaction lost a race.

        A race lost on every attempt answers 503 with ``Retry-After``: nothing was saved
        and the client may simply try again. Any other database error stays a 500.
        """
        attempt = 1
        while True:
            try:
                return super().full_dispatch_request()
            except DBAPIError as exc:
                if should_retry(exc, attempt, g.get("db_session")):
                    _reset_for_retry()
                    time.sleep(pause(attempt))
                    attempt += 1
                    continue
                if not is_retryable(exc):
                    raise
                self.logger.warning("%s %s lost its race %d times: %s", request.method, request.path, attempt, exc)
                _reset_for_retry()
                return self.finalize_request(_busy(), from_error_handler=True)


def _reset_for_retry() -> None:
    """Forget everything a failed attempt of this request did: session, ``g``, upload positions.

    The request id stays: it names the request, whichever attempt's changes are kept.
    """
    close_session()
    for key in list(vars(g)):
        if key != "request_id":
            g.pop(key, None)
    for upload in request.files.values():
        upload.stream.seek(0)


def _busy() -> Response:
    """The answer to a request that lost its race every time: 503, try again."""
    from flask import render_template
    from flask_babel import gettext as _

    from core.api import error_response

    if _is_api_path():
        response = error_response(
            503, "busy", _("The database was busy with other changes, so nothing was saved. Please try again.")
        )
    else:
        referrer = request.referrer or ""
        back = referrer if referrer.startswith(request.host_url) else "/"
        response = Response(render_template("errors/busy.html", back=back), status=503, mimetype="text/html")
    response.headers["Retry-After"] = "1"
    return response


def proxy_count(config: Mapping[str, Any]) -> int:
    """How many reverse proxies in front of the app to trust: ``PROXY_FIX`` in the config,
    else ``ORDO_PROXY_FIX`` in the environment, else 0 (none: the app faces clients)."""
    raw = config.get("PROXY_FIX")
    if raw is None:
        raw = os.environ.get("ORDO_PROXY_FIX") or 0
    try:
        count = int(raw)
    except (TypeError, ValueError):
        count = -1
    if count < 0:
        raise ValueError(f"PROXY_FIX / ORDO_PROXY_FIX must be a number of proxies (0 or more), not {raw!r}")
    return count


def token_authenticated() -> bool:
    """Whether this request's ``Authorization: Bearer`` token belongs to its current user.

    Set before the CSRF check by the app's first request hooks; False when the request
    has no bearer token, or a token that is wrong, expired, revoked or someone else's.
    """
    return has_request_context() and bool(request.environ.get(_TOKEN_AUTHENTICATED_KEY))


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

    app = OrdoFlask("core", instance_path=str(instance.path))
    # Before any blueprint adds its rules: the rules bind their converter when added.
    app.url_map.converters["int"] = IdConverter
    app.session_interface = OrdoSessionInterface()
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
    proxies = proxy_count(app.config)
    if proxies:
        # Trust X-Forwarded-For and -Proto from that many proxies (so HTTPS is seen as
        # such); the Host header must be passed through by the proxy itself.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    app.extensions["ordo"] = OrdoState(
        instance,
        engine,
        make_session_factory(engine, registry=registry, instance=instance),
        registry,
        make_session_factory(engine, read_only=True, registry=registry, instance=instance),
    )
    app.teardown_appcontext(close_session)

    @app.before_request
    def _request_id() -> None:
        # Ties audit entries to this request. Behind a configured proxy its id is kept if
        # sane; with no proxy the header comes from the client itself, so it is ignored
        # (a client must not choose the id its changes are audited under).
        given = request.headers.get("X-Request-Id", "") if proxies else ""
        g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex

    Bootstrap5(app)
    csrf.init_app(app)
    _init_login(app)
    init_babel(app, [CORE_TRANSLATIONS, *_plugin_translations(registry)])

    @app.before_request
    def _csrf_unless_bearer() -> None:
        # Browsers send cookies on their own, so cookie-authenticated writes need the
        # CSRF token; a valid bearer token cannot be sent cross-site, so it needs none.
        # Only a token that authenticated the user counts: any header can be made up.
        if request.method in ("GET", "HEAD", "OPTIONS") or token_authenticated():
            return
        if _is_api_path() and bearer_token(request.headers.get("Authorization")) is not None:
            from core.api.auth import api_user

            api_user()  # a bad token: the API's own 401 (a valid one was let through above)
        if csrf.is_exempt():  # a view a plugin exempted (a signed webhook): no cookies, no check
            return
        # A write sent by a page of another site: refused whatever token it carries.
        foreign = foreign_origin(request.headers, request.scheme, request.host)
        if foreign is not None:
            app.logger.warning("%s %s refused: it came from another site (%s)", request.method, request.path, foreign)
            raise ForeignOrigin()
        csrf.protect()

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if "request_id" in g:
            response.headers["X-Request-Id"] = g.request_id
        return response

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


def _session_timeout(app: Flask) -> WerkzeugResponse | None:
    """Log out a session that ran out (:mod:`core.security.sessions`); keep a live one's last-seen time.

    A screen is sent to the login page with a message (back to the page after logging in,
    for a GET); the API and static files just carry on without the session (a bearer
    token still counts; otherwise 401).
    """
    from flask import flash, redirect, session, url_for
    from flask_babel import gettext as _

    from core.clock import app_now
    from core.security.sessions import SessionTimeouts, expired, touch

    if "_user_id" not in session:
        return None
    now = app_now()
    if not expired(session, SessionTimeouts.from_config(app.config), now):
        touch(session, now)
        return None
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    if _is_api_path() or request.endpoint == "static":
        return None
    flash(_("Your session has expired; please log in again."), "warning")
    back = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("auth.login", next=back))


def _is_api_path() -> bool:
    from core.api import API_PREFIX

    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


def _plugin_translations(registry: Registry) -> list[Path]:
    """The ``translations`` folders of the enabled plugins that have one."""
    return registry.plugin_folders("translations")


def _init_login(app: Flask) -> None:
    from core.security.sessions import SessionTimeouts, parse_session_id
    from core.security.tokens import user_for_token

    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.session_protection = "strong"
    SessionTimeouts.from_config(app.config)  # a bad setting fails at start-up, not per request

    @app.before_request
    def _end_expired_session() -> WerkzeugResponse | None:
        # Before anything loads the session's user: idle or absolute timeout reached.
        return _session_timeout(app)

    @manager.user_loader
    def load_user(user_id: str) -> User | None:
        # The session keeps "<id>:<epoch>" (User.get_id): a session made before the epoch
        # was raised (logout, password reset, deactivation) no longer loads its user.
        parsed = parse_session_id(user_id)
        if parsed is None:
            return None
        user = db().get(User, parsed[0])
        if user is None or not user.active or user.session_epoch != parsed[1]:
            return None
        return user

    def token_user_id(token: str) -> int | None:
        """The id of the active user ``token`` belongs to; looked up once per request."""
        if _TOKEN_USER_KEY not in request.environ:
            # Looked up (and its last use recorded) in a short session of its own, before
            # the request's own session exists, so the two never wait on each other.
            with app.extensions["ordo"].read_sessions() as lookup:
                found = user_for_token(lookup, token)
                request.environ[_TOKEN_USER_KEY] = found.id if found is not None else None
        return request.environ[_TOKEN_USER_KEY]

    @manager.request_loader
    def load_from_token(req: Any) -> User | None:
        token = bearer_token(req.headers.get("Authorization"))
        if not token:
            return None
        user_id = token_user_id(token)
        return db().get(User, user_id) if user_id is not None else None

    @app.before_request
    def _load_token_user_first() -> None:
        # Registered before the CSRF check, which needs to know whether the token counts.
        request.environ[_TOKEN_AUTHENTICATED_KEY] = False
        token = bearer_token(request.headers.get("Authorization"))
        if token:
            # The token first: its lookup may record the token's use in a short write of
            # its own, which must happen before the request's session (opened by loading
            # a cookie's user) takes the write lock, or the two would wait on each other.
            token_owner = token_user_id(token)
            user = actor()  # the session's user, else the token's
            request.environ[_TOKEN_AUTHENTICATED_KEY] = user is not None and user.id == token_owner
