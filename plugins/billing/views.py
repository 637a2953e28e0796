"""The billing screens' blueprint (``/billing``); each ``*_views`` module adds its routes.

Customer accounts (``account_views``), payment terms (``term_views``), credit holds and
exceptions (``credit_views``), invoices and credit notes (``invoice_views``), payments
and allocation (``payment_views``), the dunning board (``dunning_views``) and the
reports (``report_views``). Each module's ``MENU`` lists its entries.
"""

from __future__ import annotations

from core.views.common import screen_blueprint

bp = screen_blueprint("billing", __name__, url_prefix="/billing", template_folder="templates")
