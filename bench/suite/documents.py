"""(e) PDF render time per document type, and a batch of invoices.

Per document type: every type registered for orders (``registry.documents``: core's
order sheet and confirmation, review's sheet, quotation and change request, logistics'
waybill and delivery note) plus billing's invoice, rendered for one order that went
through the whole lifecycle in (c) (the demo database: letterhead and logo), in Chinese,
with :func:`core.documents.render_document` / ``plugins.billing.invoice_documents.
render_invoice_pdf`` — HTML and WeasyPrint, nothing archived. One warm-up, then
``runs`` timed renders: the median, and the number of pages.

Batch: ``invoice_batch`` issued invoices of the generated history database of (d)
(falls back to the lifecycle database), rendered one after another in one session;
seconds for the batch and per 100.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from suite import Context, Row, log, skipped

MEASURE = "e. PDF rendering"


def pages(pdf: bytes) -> int | None:
    """The number of pages of ``pdf`` (pypdf), None without pypdf."""
    try:
        import io

        from pypdf import PdfReader
    except ImportError:
        return None
    return len(PdfReader(io.BytesIO(pdf)).pages)


def sessions_for(db: Any, instance: Any) -> tuple[Any, Any, Any]:
    from core.config import load_instance
    from core.db import make_engine, make_session_factory
    from core.installation import enabled_plugins
    from core.plugins import Registry

    engine = make_engine(f"sqlite:///{db}")
    registry = Registry(enabled_plugins(engine))
    factory = make_session_factory(engine, registry=registry, instance=load_instance(instance, f"sqlite:///{db}"))
    return engine, factory, registry


def timed(call: Any, runs: int) -> tuple[float, bytes]:
    result = call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def per_type(ctx: Context) -> list[Row]:
    from sqlalchemy import select

    from core.documents import render_document
    from core.models import Order
    from plugins.billing.invoice_documents import render_invoice_pdf
    from plugins.billing.models import BillingInvoice

    db, instance = ctx.shared.get("lifecycle_db"), ctx.shared.get("lifecycle_instance")
    if db is None:
        return [skipped(MEASURE, "per document type", "ms", "≤ 300", "needs the lifecycle database of (c)")]
    runs = ctx.sizes["pdf_runs"]
    engine, factory, registry = sessions_for(db, instance)
    rows = []
    with factory() as session:
        order = session.scalars(
            select(Order)
            .where(Order.status == "completed", Order.reference.like("PO-LIFE-%"))
            .order_by(Order.id.desc())
        ).first()
        if order is None:
            return [skipped(MEASURE, "per document type", "ms", "≤ 300", "no completed lifecycle order")]
        calls: dict[str, Callable[[], bytes]] = {
            name: partial(render_document, session, registry, name, order, "zh_CN") for name in registry.documents
        }
        invoice = session.scalars(select(BillingInvoice).where(BillingInvoice.order_id == order.id)).first()
        if invoice is not None:
            calls["billing.invoice"] = lambda: render_invoice_pdf(session, registry, invoice, "zh_CN")
        for name, call in calls.items():
            try:
                median, pdf = timed(call, runs)
            except Exception as exc:  # a type that cannot print for this order
                rows.append(skipped(MEASURE, f"{name}: median", "ms", "≤ 300", f"{type(exc).__name__}: {exc}"[:200]))
                continue
            n = pages(pdf)
            log(f"{MEASURE}: {name}: {median:.0f} ms, {n} page(s), {len(pdf) // 1024} KiB")
            met = median <= 300 if n == 1 else None
            rows.append(
                Row(MEASURE, f"{name}: median", round(median), "ms", "≤ 300 (one page)", met,
                    f"{n} page(s), {len(pdf) // 1024} KiB, order {order.number}, {runs} runs")
            )  # fmt: skip
    engine.dispose()
    return rows


def batch(ctx: Context) -> list[Row]:
    from sqlalchemy import select

    from plugins.billing.invoice_documents import render_invoice_pdf
    from plugins.billing.models import BillingInvoice

    size = ctx.sizes["invoice_batch"]
    for db_key, instance_key in (("list_db_path", "list_instance"), ("lifecycle_db", "lifecycle_instance")):
        db = ctx.shared.get(db_key)
        if db is None:
            continue
        engine, factory, registry = sessions_for(db, ctx.shared[instance_key])
        with factory() as session:
            invoices = list(
                session.scalars(
                    select(BillingInvoice)
                    .where(BillingInvoice.number.is_not(None))
                    .order_by(BillingInvoice.id.desc())
                    .limit(size)
                )
            )
            if len(invoices) < size:
                engine.dispose()
                continue
            render_invoice_pdf(session, registry, invoices[0], "zh_CN")  # warm-up
            started = time.perf_counter()
            pdfs = [render_invoice_pdf(session, registry, invoice, "zh_CN") for invoice in invoices]
            seconds = time.perf_counter() - started
            total_pages = sum(pages(pdf) or 0 for pdf in pdfs)
        engine.dispose()
        log(f"{MEASURE}: {size} invoices in {seconds:.1f} s ({total_pages} pages)")
        return [
            Row(MEASURE, f"batch of {size} invoices", round(seconds, 1), "s", "—", None,
                f"{1000 * seconds / size:.0f} ms per invoice → {100 * seconds / size:.1f} s per 100; "
                f"{total_pages} pages; from {db.name}")
        ]  # fmt: skip
    return [skipped(MEASURE, f"batch of {size} invoices", "s", "—", f"no database with {size} issued invoices")]


def measure(ctx: Context) -> list[Row]:
    return per_type(ctx) + batch(ctx)
