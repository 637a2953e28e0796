"""The logistics screens' blueprint (``/logistics``); each ``*_views`` module adds its routes.

Stock and moves, count sheets, replenishment (``stock_views``, ``count_views``,
``warehouse_views``); outbound queue, picking, packing and shipments
(``outbound_views``, ``picking_views``, ``shipment_views``); exceptions, delivery and
acceptance (``delivery_views``); carriers and rates (``carrier_views``); returns
(``return_views``); ageing (``ageing_views``). Each module's ``MENU`` lists its entries.
"""

from __future__ import annotations

from core.views.common import screen_blueprint

bp = screen_blueprint("logistics", __name__, url_prefix="/logistics", template_folder="templates")
