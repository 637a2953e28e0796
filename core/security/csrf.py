"""CSRF protection that knows which views are exempt from it.

flask-wtf's :class:`~flask_wtf.csrf.CSRFProtect` records ``csrf.exempt(...)`` in private
attributes and consults them only in its own default check, which Ordo turns off: core's
check runs in :func:`core.app.create_app` instead (bearer tokens need no token, a foreign
Origin is refused first). So the exemptions are also recorded here, by name, and
:meth:`OrdoCSRFProtect.is_exempt` answers for the current request with public data only.
Plugins exempt their signed webhooks, which servers call and browsers never do.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request
from flask_wtf.csrf import CSRFProtect


class OrdoCSRFProtect(CSRFProtect):
    """flask-wtf's CSRF protection, plus :meth:`is_exempt` for core's own check."""

    def __init__(self, app: Any = None) -> None:
        super().__init__(app)
        self.exempt_blueprint_names: set[str] = set()
        self.exempt_view_names: set[str] = set()

    def exempt(self, view: Any) -> Any:
        """Exempt a blueprint (all its views) or one view from the CSRF and Origin checks."""
        if isinstance(view, Blueprint):
            self.exempt_blueprint_names.add(view.name)
        else:
            self.exempt_view_names.add(view if isinstance(view, str) else f"{view.__module__}.{view.__name__}")
        return super().exempt(view)

    def is_exempt(self) -> bool:
        """Whether the current request's view, or a blueprint it belongs to, was exempted."""
        if any(name in self.exempt_blueprint_names for name in request.blueprints):
            return True
        view = current_app.view_functions.get(request.endpoint or "")
        return view is not None and f"{view.__module__}.{view.__name__}" in self.exempt_view_names
