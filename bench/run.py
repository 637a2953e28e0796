"""Ordo's benchmark suite: intake, lifecycle, order list, PDFs and memory, in one command.

    .venv/bin/python bench/run.py --quick          # small sizes, about two minutes
    .venv/bin/python bench/run.py                  # full sizes (generates 1M orders for the list: ~20-30 min)
    .venv/bin/python bench/run.py --list-db /tmp/ordo-bench.db   # list over an existing generated database
    .venv/bin/python bench/run.py --only b,c --profile           # some measurements, with cProfile hotspots

Measurements (one module each under ``bench/suite/``):

a. ``intake_api``       orders/s through the HTTP API, one gunicorn worker (create + submit, 5 lines)
b. ``intake_inprocess`` orders/s through the service layer, and the plain-SQL floor
c. ``lifecycle``        orders/s from entry to payment through every plugin's step
d. ``order_list``       first-page latency p50/p95 as admin, branch manager and salesperson
e. ``documents``        PDF median per document type and a batch of invoices
f. (with a)             peak RSS of the server process

Prints a Markdown table with the issue's targets and writes ``bench/results/suite.json``.
Figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT), str(ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from suite import Context, Row, log  # noqa: E402

MEASUREMENTS = {
    "a": ("intake_api", "a. intake via HTTP API"),
    "p": ("intake_api_pg", "a. intake via HTTP API (PostgreSQL)"),
    "b": ("intake_inprocess", "b. intake in-process"),
    "c": ("lifecycle", "c. lifecycle in-process"),
    "d": ("order_list", "d. order list latency"),
    "e": ("documents", "e. PDF rendering"),
}
QUICK = {
    "api_orders": 150,
    "api_connections": 4,
    "inprocess_orders": 150,
    "lifecycle_orders": 15,
    "list_orders": 10_000,
    "list_runs": 20,
    "pdf_runs": 3,
    "invoice_batch": 30,
}
FULL = {
    "api_orders": 2000,
    "api_connections": 4,
    "inprocess_orders": 2000,
    "lifecycle_orders": 200,
    "list_orders": 1_000_000,
    "list_runs": 50,
    "pdf_runs": 10,
    "invoice_batch": 100,
}


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| measurement | figure | value | target | met | note |", "| --- | --- | ---: | --- | :---: | --- |"]
    for row in rows:
        value = "—" if row.value is None else f"{row.value:,}" + (f" {row.unit}" if row.unit else "")
        met = {True: "yes", False: "**no**", None: ""}[row.ok]
        note = row.note.replace("|", "/").replace("\n", " ")
        lines.append(f"| {row.measure} | {row.name} | {value} | {row.target} | {met} | {note} |")
    return "\n".join(lines)


def hotspot_tables(profiles: dict[str, Any], top: int = 12) -> str:
    """The cProfile hotspots of the profiled measurements."""
    out = []
    for label, profile in profiles.items():
        out += [
            f"\n### Hotspots: {label} (cumulative, project code)",
            "",
            "| function | calls | cum % |",
            "| --- | ---: | ---: |",
        ]
        out += [f"| {r['where']} | {r['calls']:,} | {r['cum_pct']} |" for r in profile["project_cumulative"][:top]]
        out += ["", f"Own time, {label}:", "", "| function | calls | own % |", "| --- | ---: | ---: |"]
        out += [f"| {r['where']} | {r['calls']:,} | {r['own_pct']} |" for r in profile["own"][:top]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about two minutes)")
    parser.add_argument("--only", default="a,p,b,c,d,e", help="measurements to run, e.g. a,b (default: all)")
    parser.add_argument(
        "--list-db", type=Path, help="an existing generated SQLite database for (d) and the invoice batch"
    )
    parser.add_argument(
        "--list-orders", type=int, help="orders to generate for (d) (default 10 000 quick, 1 000 000 full)"
    )
    parser.add_argument("--work", type=Path, help="folder for the databases (default: a new temporary one)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run (b), (c) and (d) under cProfile and print hotspots; (d) logs each request's SQL and query plans",
    )
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "suite.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("ORDO_SECRET_KEY", "benchmark-only-secret")

    sizes = dict(QUICK if args.quick else FULL)
    if args.list_orders:
        sizes["list_orders"] = args.list_orders
    work = args.work or Path(tempfile.mkdtemp(prefix="ordo-suite-"))
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(quick=args.quick, work=work, sizes=sizes, profile=args.profile)
    if args.list_db:
        ctx.shared["list_db"] = args.list_db
    log(f"{'quick' if args.quick else 'full'} run in {work}; sizes {sizes}")

    rows: list[Row] = []
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    for key in [k.strip() for k in args.only.split(",") if k.strip()]:
        if key not in MEASUREMENTS:
            parser.error(f"unknown measurement {key!r}; choose from {', '.join(MEASUREMENTS)}")
        module_name, title = MEASUREMENTS[key]
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"suite.{module_name}")
            rows += module.measure(ctx)
        except Exception as exc:  # one failing measurement must not lose the others
            traceback.print_exc()
            rows.append(Row(title, "(failed)", None, "", "", None, f"failed: {type(exc).__name__}: {exc}"[:300]))
        seconds[title] = round(time.perf_counter() - started, 1)
        log(f"{title}: done in {seconds[title]} s")

    print(table(rows))
    if ctx.profiles:
        print(hotspot_tables(ctx.profiles))
    results = {
        "mode": "quick" if args.quick else "full",
        "sizes": sizes,
        "rows": [row.as_dict() for row in rows],
        "seconds": seconds,
        "total_seconds": round(time.perf_counter() - began, 1),
        "generated": ctx.shared.get("generated"),
        "profiles": ctx.profiles,
        "work": str(work),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, load average {os.getloadavg()[0]:.1f} at the end",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
    log(f"written {args.json} in {results['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
