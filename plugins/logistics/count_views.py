"""Stock count screens (盘点, LG-2): count sheets, counting, posting the differences.

* ``/logistics/counts`` — the count sheets (read: ``logistics.stock.read``).
* ``/logistics/counts/new`` — start a sheet for a warehouse, some locations and/or
  products (``logistics.counts.manage``).
* ``/logistics/counts/<id>`` — the sheet: expected (snapshot), counted, difference and
  the stock now; enter counts, add a line, cancel (``counts.manage``); post the
  differences (``logistics.counts.post``). ``/print`` is a printable sheet without the
  expected quantities (blind count).

Thin views over :mod:`plugins.logistics.counts`.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.contrib import MenuItem
from core.labels import N_
from core.models import User
from core.views.common import abort_for, current_actor, paginate, permission_required, query_args
from core.views.labels import translate
from core.web import db
from plugins.logistics import counts, flow
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import COUNT_STATUSES, LogisticsCount, LogisticsLocation, LogisticsWarehouse
from plugins.logistics.stock_views import product_by_sku, warehouse_choices
from plugins.logistics.views import bp

#: Menu entries of these screens.
MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Stock counts"),
        "logistics.count_list",
        flow.STOCK_READ,
        order=62,
        icon="clipboard-check",
        plugin="logistics",
    ),
)


def _count(count_id: int) -> LogisticsCount:
    count = db().get(LogisticsCount, count_id)
    if count is None:
        raise NotFound()
    return count


def _status_labels() -> dict[str, str]:
    return {k: translate(v) for k, v in COUNT_STATUSES.items()}


@bp.get("/counts")
@permission_required(flow.STOCK_READ)
def count_list() -> str:
    """The count sheets, newest first; filtered by status and warehouse."""
    session = db()
    args = query_args("status", "warehouse")
    stmt = select(LogisticsCount)
    if args.get("status") in COUNT_STATUSES:
        stmt = stmt.where(LogisticsCount.status == args["status"])
    if args.get("warehouse", "").isdigit():
        stmt = stmt.where(LogisticsCount.warehouse_id == int(args["warehouse"]))
    page = paginate(
        session,
        stmt,
        sortable={"created": LogisticsCount.created_at, "number": LogisticsCount.number},
        default_sort="-created",
        endpoint="logistics.count_list",
        args=args,
        tie_breaker=LogisticsCount.id,
    )
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_({c.created_by_id for c in page.rows})))}
    return render_template(
        "logistics/count_list.html",
        page=page,
        filters=args,
        statuses=list(_status_labels().items()),
        status_labels=_status_labels(),
        warehouse_options=warehouse_choices(session),
        people=people,
        can_start=current_actor().can(flow.COUNTS_MANAGE),
    )


def _locations_by_warehouse() -> dict[int, list[LogisticsLocation]]:
    out: dict[int, list[LogisticsLocation]] = {}
    for location in db().scalars(
        select(LogisticsLocation)
        .where(LogisticsLocation.active.is_(True))
        .order_by(LogisticsLocation.sequence, LogisticsLocation.code)
    ):
        out.setdefault(location.warehouse_id, []).append(location)
    return out


@bp.route("/counts/new", methods=["GET", "POST"])
@permission_required(flow.COUNTS_MANAGE)
def count_new() -> Any:
    """Start a count sheet: warehouse, optionally some locations and some products (SKUs)."""
    session = db()
    form = request.form
    warehouses = list(session.scalars(select(LogisticsWarehouse).where(LogisticsWarehouse.active.is_(True))))
    values: dict[str, Any] = {
        "warehouse_id": form.get("warehouse_id", str(warehouses[0].id) if len(warehouses) == 1 else ""),
        "location_ids": set(form.getlist("location_ids")),
        "skus": form.get("skus", ""),
        "note": form.get("note", ""),
    }

    def render(status: int = 200) -> tuple[str, int]:
        return (
            render_template(
                "logistics/count_new.html",
                warehouses=warehouses,
                locations=_locations_by_warehouse(),
                values=values,
            ),
            status,
        )

    if request.method == "GET":
        return render()
    product_ids = []
    for sku in [s.strip() for s in values["skus"].replace(",", " ").split() if s.strip()]:
        product = product_by_sku(session, sku)
        if product is None:
            flash(_("There is no product with the SKU %(sku)s.", sku=sku), "danger")
            return render(422)
        product_ids.append(product.id)
    warehouse_id = values["warehouse_id"]
    try:
        count = counts.start_count(
            session,
            current_actor(),
            int(warehouse_id) if str(warehouse_id).isdigit() else 0,
            location_ids=[int(i) for i in values["location_ids"] if i.isdigit()] or None,
            product_ids=product_ids or None,
            note=values["note"],
        )
        session.commit()
    except LogisticsError as exc:
        session.rollback()
        abort_for(exc)
        flash(exc.localized(), "danger")
        return render(exc.status)
    flash(
        _("Count sheet %(number)s was started with %(lines)s lines.", number=count.number, lines=len(count.lines)),
        "success",
    )
    return redirect(url_for("logistics.count_view", count_id=count.id))


def _render_sheet(count: LogisticsCount, entered: dict[int, str] | None = None, status: int = 200) -> tuple[str, int]:
    session = db()
    actor = current_actor()
    people = {
        u.id: u
        for u in session.scalars(select(User).where(User.id.in_({count.created_by_id, count.posted_by_id} - {None})))
    }
    return (
        render_template(
            "logistics/count_view.html",
            count=count,
            rows=counts.differences(session, count),
            entered=entered or {},
            people=people,
            status_labels=_status_labels(),
            locations=[loc for loc in count.warehouse.locations if loc.active],
            can_count=actor.can(flow.COUNTS_MANAGE) and count.status == "counting",
            can_post=actor.can(flow.COUNTS_POST) and count.status == "counting",
        ),
        status,
    )


@bp.get("/counts/<int:count_id>")
@permission_required(flow.STOCK_READ)
def count_view(count_id: int) -> Any:
    """A count sheet: expected, counted, difference, the stock now; the forms to count and post."""
    return _render_sheet(_count(count_id))


@bp.get("/counts/<int:count_id>/print")
@permission_required(flow.STOCK_READ)
def count_print(count_id: int) -> str:
    """A printable count sheet (blind: no expected quantities), sorted in walking order."""
    count = _count(count_id)
    rows = counts.differences(db(), count)
    rows.sort(key=lambda d: (d.location.sequence, d.location.code, d.product.sku))
    return render_template("logistics/count_print.html", count=count, rows=rows)


@bp.post("/counts/<int:count_id>/enter")
@permission_required(flow.COUNTS_MANAGE)
def count_enter(count_id: int) -> Any:
    """Record the counted quantities typed on the sheet (blank: not counted yet)."""
    session = db()
    count = _count(count_id)
    entered = {
        int(key.removeprefix("line-")): value.strip()
        for key, value in request.form.items()
        if key.startswith("line-") and key.removeprefix("line-").isdigit()
    }
    try:
        counts.enter_counts(session, current_actor(), count.id, entered)
        session.commit()
    except LogisticsError as exc:
        session.rollback()
        abort_for(exc)
        flash(exc.localized(), "danger")
        return _render_sheet(_count(count_id), entered, exc.status)
    flash(_("The counted quantities were saved."), "success")
    if request.form.get("then") == "post":
        return count_post(count_id)
    return redirect(url_for("logistics.count_view", count_id=count.id))


@bp.post("/counts/<int:count_id>/lines")
@permission_required(flow.COUNTS_MANAGE)
def count_add_line(count_id: int) -> Response:
    """Add a product found at a location the sheet does not list."""
    session = db()
    count = _count(count_id)
    product = product_by_sku(session, request.form.get("sku"))
    if product is None:
        flash(_("There is no product with this SKU."), "danger")
        return redirect(url_for("logistics.count_view", count_id=count.id))
    location = request.form.get("location_id", "")
    try:
        counts.add_count_line(
            session, current_actor(), count.id, product.id, int(location) if location.isdigit() else 0
        )
        session.commit()
    except LogisticsError as exc:
        session.rollback()
        abort_for(exc)
        flash(exc.localized(), "danger")
        return redirect(url_for("logistics.count_view", count_id=count.id))
    flash(_("%(sku)s was added to the sheet.", sku=product.sku), "success")
    return redirect(url_for("logistics.count_view", count_id=count.id))


@bp.post("/counts/<int:count_id>/post")
@permission_required(flow.COUNTS_POST)
def count_post(count_id: int) -> Response:
    """Post the differences as stock moves (refused when not all counted or the stock moved)."""
    session = db()
    count = _count(count_id)
    try:
        moves = counts.post_count(session, current_actor(), count.id)
        session.commit()
    except LogisticsError as exc:
        session.rollback()
        abort_for(exc)
        flash(exc.localized(), "danger")
        return redirect(url_for("logistics.count_view", count_id=count_id))
    flash(
        _("Count sheet %(number)s was posted: %(moves)s differences booked.", number=count.number, moves=len(moves)),
        "success",
    )
    return redirect(url_for("logistics.count_view", count_id=count.id))


@bp.post("/counts/<int:count_id>/cancel")
@permission_required(flow.COUNTS_MANAGE)
def count_cancel(count_id: int) -> Response:
    """Drop a sheet that is still being counted."""
    session = db()
    count = _count(count_id)
    try:
        counts.cancel_count(session, current_actor(), count.id, request.form.get("reason", ""))
        session.commit()
    except LogisticsError as exc:
        session.rollback()
        abort_for(exc)
        flash(exc.localized(), "danger")
        return redirect(url_for("logistics.count_view", count_id=count_id))
    flash(_("Count sheet %(number)s was cancelled.", number=count.number), "info")
    return redirect(url_for("logistics.count_list"))
