"""The benchmark suite run by ``bench/run.py``: one module per measurement.

Each module has ``measure(ctx) -> list[Row]``; a row is one figure with its unit, the
issue's target beside it and a note. A measurement whose prerequisite is missing
returns a row with ``value=None`` and the reason in ``note`` (``skipped``).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH = ROOT / "bench"
for entry in (str(ROOT), str(BENCH)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

os.environ.setdefault("ORDO_SECRET_KEY", "benchmark-only-secret")


@dataclass
class Row:
    """One figure of the suite."""

    measure: str
    name: str
    value: float | None
    unit: str
    target: str = ""
    ok: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Context:
    """What the measurements share: sizes, a work folder, results of earlier ones."""

    quick: bool
    work: Path
    sizes: dict[str, int]
    profile: bool = False
    shared: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, Any] = field(default_factory=dict)


def log(message: str) -> None:
    """A progress line with the time of day (stderr, so the table on stdout stays clean)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fresh_bench_database(ctx: Context, name: str) -> tuple[Path, Path]:
    """A new SQLite database with all five plugins and the benchmark company (bench/kpi_dashboard.py)."""
    from kpi_dashboard import create_database

    db = ctx.work / f"{name}.db"
    instance = ctx.work / f"{name}-instance"
    engine = create_database(db, instance)
    engine.dispose()
    return db, instance


def order_body(rng: random.Random, n: int, lines: int = 5, customers: int = 200, products: int = 30) -> dict[str, Any]:
    """A valid order for the benchmark company (customers B0001…, products P-001…) with ``lines`` lines."""
    from kpi_dashboard import PROVINCES

    customer = rng.randrange(customers)
    province, city = PROVINCES[customer % len(PROVINCES)]
    return {
        "customer": f"B{customer + 1:04d}",
        "channel": "api",
        "reference": f"PO-BENCH-{n}",
        "payment_method": "monthly_settlement",
        "requested_date": (dt.date.today() + dt.timedelta(days=rng.randint(20, 40))).isoformat(),
        "contact_name": f"联系人 {customer}",
        "contact_phone": f"023-6000-{customer:04d}",
        "ship_to": {
            "contact": f"联系人 {customer}",
            "phone": f"023-6000-{customer:04d}",
            "province": province,
            "city": city,
            "address": f"工业园 {customer} 号",
        },
        "lines": [
            {"product": f"P-{p + 1:03d}", "quantity": str(rng.randint(1, 20))}
            for p in rng.sample(range(products), lines)
        ],
    }


def skipped(measure: str, name: str, unit: str, target: str, why: str) -> Row:
    """A row for a figure that could not be measured."""
    return Row(measure, name, None, unit, target, None, f"skipped: {why}")


def profiled(ctx: Context, label: str, call: Any) -> Any:
    """Run ``call()``; under ``--profile`` with cProfile, keeping its hotspots in ``ctx.profiles``."""
    if not ctx.profile:
        return call()
    import cProfile
    import io
    import pstats

    from generate import cumulative, hotspots

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        return call()
    finally:
        profiler.disable()
        profiler.dump_stats(str(ctx.work / f"{label}.prof"))
        stats = pstats.Stats(profiler, stream=io.StringIO())
        ctx.profiles[label] = {
            "own": hotspots(stats, 15),
            "project_cumulative": cumulative(stats, ("core/", "plugins/"), 25),
        }
