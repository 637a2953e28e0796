"""Generate a realistic Ordo database of N orders (all five plugins, a year of history).

Reuses the KPI benchmark's building blocks (:func:`bench.kpi_dashboard.create_database`,
:func:`bench.kpi_dashboard.fill`): a fresh database with intake, review, logistics,
billing and kpi enabled; a company of five branches, 200 customers, 30 products and
staff in every role; then N orders over the last twelve months written by
:func:`plugins.kpi.history.generate`, each plugin adding its own records (pre-check
results, review sheets, reservations and shipments, invoices and payments…) through
``ordo_kpi_history``.

    .venv/bin/python bench/generate.py --orders 100000 --db /tmp/ordo-100k.db
    .venv/bin/python bench/generate.py --orders 100000 --url postgresql+psycopg://u:p@host/ordo_bench --drop
    .venv/bin/python bench/generate.py --orders 20000 --db /tmp/p.db --profile /tmp/generate.prof

Prints orders/s, the seconds in each plugin's history hook and the row counts of the
biggest tables. ``--profile FILE`` runs the generation under cProfile, writes the raw
profile and prints the hotspots (own time by file:function, and cumulative time of the
plugins' history functions).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT), str(ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from kpi_dashboard import HOOK_SECONDS, PLUGINS, create_database, fill, log  # noqa: E402


@contextlib.contextmanager
def _engine_for(url: str) -> Iterator[None]:
    """Make :func:`create_database` (which builds a SQLite URL from a path) open ``url`` instead."""
    import core.db

    original = core.db.make_engine

    def make_engine(_ignored: str, *args: Any, **kwargs: Any) -> Any:
        return original(url, *args, **kwargs)

    core.db.make_engine = make_engine  # type: ignore[assignment]
    try:
        yield
    finally:
        core.db.make_engine = original


def _empty_server_database(url: str, drop: bool) -> None:
    """Make sure the (non-SQLite) database at ``url`` is empty: drop its tables with ``--drop``, else refuse."""
    from sqlalchemy import MetaData, create_engine

    engine = create_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        if meta.tables and not drop:
            raise SystemExit(f"{url} already has {len(meta.tables)} tables; pass --drop to empty it first")
        if drop and engine.dialect.name == "postgresql":
            # Tables, but also the triggers' functions and sequences Ordo's migrations made.
            log(f"dropping schema public ({len(meta.tables)} tables) and making it anew")
            with engine.begin() as connection:
                connection.exec_driver_sql("DROP SCHEMA public CASCADE")
                connection.exec_driver_sql("CREATE SCHEMA public")
        elif meta.tables:
            log(f"dropping {len(meta.tables)} tables")
            meta.drop_all(engine)
            with engine.begin() as connection:
                connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    finally:
        engine.dispose()


def build(
    orders: int,
    *,
    db: Path | None = None,
    url: str | None = None,
    drop: bool = False,
    plugins: tuple[str, ...] = PLUGINS,
    bulk: bool = True,
) -> dict[str, Any]:
    """Create the database and fill it with ``orders`` orders; returns timings and counts.

    ``bulk`` drops the secondary indexes and foreign-key checks while loading
    (:func:`kpi_dashboard.bulk_load`)."""
    if url and url.startswith("sqlite:///"):
        db, url = Path(url.removeprefix("sqlite:///")), None
    if url:
        _empty_server_database(url, drop)
        instance = Path(os.environ.get("TMPDIR", "/tmp")) / "ordo-bench-url-instance"
        placeholder = instance / "placeholder.db"  # create_database unlinks it; nothing else
        started = time.perf_counter()
        with _engine_for(url):
            engine = create_database(placeholder, instance, plugins)
    else:
        assert db is not None
        db = db.resolve()
        instance = db.parent / f"{db.stem}-instance"
        started = time.perf_counter()
        engine = create_database(db, instance, plugins)
    setup = time.perf_counter() - started
    log(f"created the database and master data in {setup:.1f} s")
    cpu = time.process_time()
    seconds = fill(engine, orders, instance, bulk=bulk)
    cpu = time.process_time() - cpu
    counts = table_counts(engine)
    engine.dispose()
    result = {
        "orders": orders,
        "database": url or str(db),
        "instance": str(instance),
        "setup_seconds": round(setup, 2),
        "generate_seconds": round(seconds, 2),
        "orders_per_second": round(orders / seconds) if seconds else None,
        # This process's CPU time: on a busy machine a steadier figure than the wall clock.
        "generate_cpu_seconds": round(cpu, 2),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "history_hook_seconds": {name: round(value, 2) for name, value in HOOK_SECONDS.items()},
        "rows": counts,
    }
    if db is not None and db.exists():
        result["database_mb"] = round(db.stat().st_size / 2**20, 1)
    return result


def table_counts(engine: Any, top: int = 15) -> dict[str, int]:
    """Row counts of the ``top`` biggest tables."""
    from sqlalchemy import inspect, text

    counts = {}
    with engine.connect() as connection:
        for name in inspect(engine).get_table_names():
            counts[name] = connection.scalar(text(f'SELECT count(*) FROM "{name}"'))
    return dict(sorted(counts.items(), key=lambda item: -item[1])[:top])


def hotspots(profile: pstats.Stats, top: int = 25) -> list[dict[str, Any]]:
    """Functions by own time (``tottime``), with the share of the whole run."""
    stats: dict[Any, Any] = profile.stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in stats.values()) or 1.0
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.items():
        rows.append(
            {
                "where": f"{_short(filename)}:{line}:{name}",
                "calls": calls,
                "own_s": round(tottime, 2),
                "own_pct": round(100 * tottime / total, 1),
                "cum_s": round(cumtime, 2),
                "cum_pct": round(100 * cumtime / total, 1),
            }
        )
    return sorted(rows, key=lambda row: -row["own_s"])[:top]


def cumulative(profile: pstats.Stats, prefixes: tuple[str, ...], top: int = 30) -> list[dict[str, Any]]:
    """Project functions (files under ``prefixes``) by cumulative time."""
    stats: dict[Any, Any] = profile.stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in stats.values()) or 1.0
    rows = []
    for (filename, line, name), (_cc, calls, _tottime, cumtime, _callers) in stats.items():
        short = _short(filename)
        if short.startswith(prefixes):
            rows.append(
                {
                    "where": f"{short}:{line}:{name}",
                    "calls": calls,
                    "cum_s": round(cumtime, 2),
                    "cum_pct": round(100 * cumtime / total, 1),
                }
            )
    return sorted(rows, key=lambda row: -row["cum_s"])[:top]


def _short(filename: str) -> str:
    root = str(ROOT) + "/"
    if filename.startswith(root):
        return filename[len(root) :]
    marker = "site-packages/"
    if marker in filename:
        return filename.split(marker, 1)[1]
    return filename.rsplit("/lib/python", 1)[-1]


def print_profile(profile: pstats.Stats) -> dict[str, Any]:
    """Print and return the hotspots of a profile."""
    own = hotspots(profile)
    project = cumulative(profile, ("core/", "plugins/"))
    print("\nOwn time (tottime), top functions:")
    print("| function | calls | own s | own % | cum % |\n| --- | ---: | ---: | ---: | ---: |")
    for row in own:
        print(f"| {row['where']} | {row['calls']:,} | {row['own_s']} | {row['own_pct']} | {row['cum_pct']} |")
    print("\nProject functions by cumulative time:")
    print("| function | calls | cum s | cum % |\n| --- | ---: | ---: | ---: |")
    for row in project:
        print(f"| {row['where']} | {row['calls']:,} | {row['cum_s']} | {row['cum_pct']} |")
    return {"own": own, "project_cumulative": project}


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, build the database, print the rate (and the profile)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, help="SQLite file (default /tmp/ordo-bench.db)")
    where.add_argument("--url", help="any SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db")
    parser.add_argument("--drop", action="store_true", help="with --url: drop the tables already there")
    parser.add_argument("--plugins", default=",".join(PLUGINS))
    parser.add_argument(
        "--no-bulk-load",
        dest="bulk",
        action="store_false",
        help="keep the indexes and foreign-key checks while loading (slower)",
    )
    parser.add_argument("--profile", type=Path, help="run under cProfile; write the raw profile here")
    parser.add_argument("--json", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)
    os.environ.setdefault("ORDO_SECRET_KEY", "benchmark-only-secret")
    plugins = tuple(p for p in args.plugins.split(",") if p)
    db = args.db or (None if args.url else Path("/tmp/ordo-bench.db"))

    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    result = build(args.orders, db=db, url=args.url, drop=args.drop, plugins=plugins, bulk=args.bulk)
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(args.profile))
        stats = pstats.Stats(profiler, stream=io.StringIO())
        result["profile"] = print_profile(stats)
        log(f"raw profile in {args.profile} (e.g. `python -m pstats {args.profile}`); timings slowed by profiling")
    log(
        f"{args.orders:,} orders in {result['generate_seconds']:.1f} s = {result['orders_per_second']:,} orders/s "
        f"(CPU {result['generate_cpu_seconds']:.1f} s, load average {result['load_average'][0]}); "
        "hooks: " + ", ".join(f"{k} {v:.1f} s" for k, v in result["history_hook_seconds"].items())
    )
    print("rows: " + ", ".join(f"{name} {count:,}" for name, count in result["rows"].items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
