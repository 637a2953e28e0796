"""API: review tasks and verdicts, sheets, quotations and change requests (``/api/v1/review``).

OWNER: helper "api". Thin endpoints over the service modules; errors answer like core's
(``core.api.common``): 403, 404 (outside the data scope), 409 (state), 422 (details).
"""

from __future__ import annotations

from flask_smorest import Blueprint

from core.api.auth import require_api_user

blp = Blueprint(
    "review_api",
    __name__,
    url_prefix="/api/v1/review",
    description="Review (订单评审): department tasks and verdicts, review sheets, quotations, change requests.",
)
blp.before_request(require_api_user)
