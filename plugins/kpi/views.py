"""The kpi screens' blueprint (``/kpi``); each ``*_views`` module adds its routes.

The dashboard and metric detail (``dashboard_views``), targets (``target_views``), rules
and their results (``rule_views``), surveys, complaints and visits (``feedback_views``,
also the customer's survey form in the portal), supervision (``supervision_views``) and
the report archive (``report_views``). Each module's ``MENU`` lists its entries.
"""

from __future__ import annotations

from core.views.common import screen_blueprint

bp = screen_blueprint("kpi", __name__, url_prefix="/kpi", template_folder="templates")
