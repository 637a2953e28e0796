"""Benchmark: the kpi dashboard of one month over N generated orders, on SQLite.

The kpi issue promises that the dashboard for a month over one million orders renders in
under one second on SQLite on this machine. This script checks it outside the test suite
(timing in unit tests is flaky on a shared machine):

1. creates a fresh SQLite database (``--db``) with core and all five plugins (intake,
   review, logistics, billing, kpi) enabled, and a company of five branches, ~200
   customers, 30 products and staff in every role (a few seconds);
2. generates ``--orders`` orders of history with :func:`plugins.kpi.history.generate`,
   committing every batch (each plugin adds its records through ``ordo_kpi_history``);
   ``--reuse`` keeps a database that already has at least that many orders (and brings
   its schema up to date);
3. times ``GET /kpi/?period=month&date=<first day of the last full month>&live=1``
   through the Flask test client — every figure computed now — logged in as the
   administrator (company-wide) and as a branch sales manager (branch scope): one
   warm-up request, then ``--runs`` timed ones (min / median / max milliseconds);
4. rolls the month up (:func:`plugins.kpi.rollups.refresh`, what the nightly job does)
   and the current day, week, month and quarter (the 10-minute job), timing each;
5. times the same page without ``live=1``: what people see, read from the rollups;
6. times each metric's :func:`plugins.kpi.engine.measure` for that month alone, company-wide
   and for the branch manager, to show which metrics are slow live;
7. prints a table and writes JSON to ``bench/results/kpi_dashboard.json``.

Run: ``.venv/bin/python bench/kpi_dashboard.py --orders 1000000 --db /tmp/ordo-bench.db``
(see bench/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

PLUGINS = ("intake", "review", "logistics", "billing", "kpi")
ADMIN_EMAIL = "admin@bench.ordo"
PASSWORD = "ordo-bench-1"
BRANCHES = (("HQ", "重庆总部"), ("CD", "成都分公司"), ("GY", "贵阳分公司"), ("XA", "西安分公司"), ("KM", "昆明分公司"))
PROVINCES = (
    ("重庆市", "重庆市"),
    ("四川省", "成都市"),
    ("贵州省", "贵阳市"),
    ("陕西省", "西安市"),
    ("云南省", "昆明市"),
    ("广东省", "深圳市"),
    ("上海市", "上海市"),
)
CATEGORIES = ("motors", "drives", "cabinets", "cables", "parts", "services")


def log(message: str) -> None:
    """Print a progress line with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def create_database(db: Path, instance: Path, plugins: tuple[str, ...] = PLUGINS) -> Engine:
    """A fresh database with every plugin enabled and the benchmark company's master data."""
    from sqlalchemy.orm import sessionmaker

    from core.db import make_engine
    from core.installation import enable, enabled_plugins, initialise
    from core.models import (
        Branch,
        Company,
        Customer,
        CustomerAddress,
        CustomerContact,
        Department,
        Product,
        Role,
        User,
    )
    from core.plugins import Registry, discover
    from core.security.passwords import hash_password

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{db}")
    initialise(engine, ADMIN_EMAIL, PASSWORD, company_name="重庆渝信贸易有限公司 (benchmark)")
    installed = discover()
    enable(engine, [name for name in plugins if name in installed], installed=installed)
    registry = Registry(enabled_plugins(engine), installed)
    with sessionmaker(engine, expire_on_commit=False)() as session, session.begin():
        company = session.scalars(select(Company)).one()
        company.home_province = "重庆市"
        hq = session.scalars(select(Branch).where(Branch.code == "HQ")).one()
        hq.name = BRANCHES[0][1]
        branches = [hq] + [Branch(company_id=company.id, code=code, name=name) for code, name in BRANCHES[1:]]
        session.add_all(branches[1:])
        sales_dept = Department(company_id=company.id, code="sales", name="销售部")
        session.add(sales_dept)
        session.flush()
        roles = {r.code: r for r in session.scalars(select(Role))}
        password = hash_password(PASSWORD)
        admin = session.scalars(select(User).where(User.email == ADMIN_EMAIL)).one()
        admin.branch_id = hq.id

        def user(email: str, role: str, branch: Branch) -> User:
            made = User(
                email=email,
                name=email.split("@")[0],
                password_hash=password,
                language="en",
                branch_id=branch.id,
                department_id=sales_dept.id if role in ("sales", "sales_manager") else None,
                roles=[roles[role]],
            )
            session.add(made)
            return made

        for code in sorted(registry.roles):
            if code not in ("admin", "customer", "sales", "sales_manager"):
                user(f"{code}@bench.ordo", code, hq)
        sellers: dict[int, list[User]] = {}
        for branch in branches:
            user(f"manager.{branch.code.lower()}@bench.ordo", "sales_manager", branch)
            sellers[branch.id] = [user(f"sales{n}.{branch.code.lower()}@bench.ordo", "sales", branch) for n in range(3)]
        session.flush()
        for n in range(200):
            branch = branches[n % len(branches)]
            province, city = PROVINCES[n % len(PROVINCES)]
            session.add(
                Customer(
                    code=f"B{n + 1:04d}",
                    name=f"客户 Customer {n + 1:04d}",
                    branch_id=branch.id,
                    owner_id=sellers[branch.id][n % 3].id,
                    contacts=[
                        CustomerContact(name=f"联系人 {n}", phone=f"023-6000-{n:04d}", email=f"c{n}@example.com")
                    ],
                    addresses=[CustomerAddress(province=province, city=city, address=f"工业园 {n} 号")],
                )
            )
        for n in range(30):
            session.add(
                Product(
                    sku=f"P-{n + 1:03d}",
                    name=f"产品 Product {n + 1}",
                    unit="台",
                    category=CATEGORIES[n % len(CATEGORIES)],
                    list_price=Decimal(str(round(12.5 * (1 + n) ** 1.7, 2))),
                    tax_rate=Decimal("6") if CATEGORIES[n % len(CATEGORIES)] == "services" else Decimal("13"),
                    regular=n % 7 != 3,
                )
            )
    instance.mkdir(parents=True, exist_ok=True)
    return engine


@contextlib.contextmanager
def bulk_load(engine: Engine) -> Iterator[None]:
    """Load faster, the way a database restore does: without secondary indexes and foreign-key checks.

    Before: the indexes that back no constraint are dropped (their definitions kept) and
    new connections skip foreign-key checks (SQLite: ``PRAGMA foreign_keys=OFF``;
    PostgreSQL: ``session_replication_role = replica``, only for a superuser, else the
    checks stay). After, even on error: the indexes are created again (one sorted build
    each instead of millions of B-tree inserts) and the pool is emptied, so connections
    check foreign keys again. The generator's references are checked by the test suite,
    which runs it with the checks on.
    """
    from sqlalchemy import event

    dialect = engine.dialect.name
    with engine.begin() as connection:
        if dialect == "sqlite":
            indexes = connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            ).all()
            settings = ["PRAGMA foreign_keys=OFF"]
        elif dialect == "postgresql":
            indexes = connection.exec_driver_sql(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = "
                "(quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)"
            ).all()
            superuser = connection.exec_driver_sql("SELECT current_setting('is_superuser')").scalar() == "on"
            settings = ["SET session_replication_role = replica"] if superuser else []
        else:
            indexes, settings = [], []
        quote = engine.dialect.identifier_preparer.quote
        for name, _definition in indexes:
            connection.exec_driver_sql(f"DROP INDEX {quote(name)}")

    def unchecked(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for setting in settings:
            cursor.execute(setting)
        cursor.close()
        dbapi_connection.commit()  # (PostgreSQL: a SET rolled back with its transaction is undone)

    if settings:
        engine.dispose()
        event.listen(engine, "connect", unchecked)
    log(f"bulk load: {len(indexes)} indexes dropped, foreign-key checks {'off' if settings else 'on'}")
    try:
        yield
    finally:
        if settings:
            event.remove(engine, "connect", unchecked)
            engine.dispose()
        started = time.perf_counter()
        with engine.begin() as connection:
            for _name, definition in indexes:
                connection.exec_driver_sql(definition)
        log(f"bulk load: {len(indexes)} indexes created again in {time.perf_counter() - started:.1f} s")


def fill(engine: Engine, orders: int, instance: Path, *, bulk: bool = True) -> float:
    """Generate ``orders`` orders of history, committing each batch; returns the seconds taken.

    ``bulk`` loads the way :func:`bulk_load` does (the time to build the indexes again counts).
    """
    from core.clock import company_now
    from core.config import load_instance
    from core.db import make_session_factory
    from core.installation import enabled_plugins
    from core.plugins import Registry
    from plugins.kpi.history import generate

    registry = Registry(enabled_plugins(engine))
    factory = make_session_factory(engine, registry=registry, instance=load_instance(instance))
    spent = _time_history_hooks(registry)
    started = time.perf_counter()
    with bulk_load(engine) if bulk else contextlib.nullcontext(), factory() as session:
        session.begin()

        def commit(done: int) -> None:
            session.commit()
            session.begin()
            if done % 50_000 < 5000 or done == orders:
                rate = done / max(time.perf_counter() - started, 1e-9)
                log(f"{done:>9,} orders written ({rate:,.0f}/s)")

        generate(session, orders=orders, today=company_now().date(), months=12, seed=1, on_batch=commit)
        session.commit()
    total = time.perf_counter() - started
    log(
        "time in each plugin's ordo_kpi_history: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in sorted(spent.items()))
        + f"; kpi's own rows, commits (and indexes built again) {total - sum(spent.values()):.0f} s"
    )
    HOOK_SECONDS.update(spent)
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    return time.perf_counter() - started


#: Seconds each plugin's ``ordo_kpi_history`` took during the last :func:`fill`.
HOOK_SECONDS: dict[str, float] = {}


def _time_history_hooks(registry: Any) -> dict[str, float]:
    """Wrap each plugin's ``ordo_kpi_history`` to add up the seconds it takes, by plugin."""
    spent: dict[str, float] = {}
    for impl in registry.hook.ordo_kpi_history.get_hookimpls():
        name = impl.plugin_name.split("+", 1)[0]
        spent.setdefault(name, 0.0)

        def timed_hook(*args: Any, _function: Any = impl.function, _name: str = name, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return _function(*args, **kwargs)
            finally:
                spent[_name] += time.perf_counter() - began

        impl.function = timed_hook
    return spent


def login(client: Any, email: str) -> None:
    """Log the test client in through the login screen."""
    page = client.get("/login").get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, "no CSRF token on the login page"
    answer = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": match.group(1)})
    assert answer.status_code in (200, 302), answer.status_code


def timed(call: Any, runs: int) -> dict[str, float]:
    """One warm-up call, then ``runs`` timed ones: min, median and max milliseconds."""
    call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return {"min": min(times), "median": statistics.median(times), "max": max(times)}


def last_full_month() -> dt.date:
    """The first day of the month before the current one (company time)."""
    from core.clock import company_now

    first = company_now().date().replace(day=1)
    return (first - dt.timedelta(days=1)).replace(day=1)


def time_pages(results: dict[str, Any], clients: dict[str, Any], url: str, how: str, runs: int) -> None:
    """Time ``url`` for each logged-in client; checks the page says how its figures were got."""
    marker = 'id="kpi-computed-live"' if how == "live" else 'id="kpi-rolled-up"'
    for label, client in clients.items():
        status: list[int] = []

        def get(client: Any = client, status: list[int] = status) -> None:
            answer = client.get(url)
            assert marker in answer.get_data(as_text=True), f"{how}: the page does not show {marker}"
            status.append(answer.status_code)

        results["pages"][f"{label}, {how}"] = {**timed(get, runs), "status": status[-1]}
        log(f"{label}, {how}: {results['pages'][f'{label}, {how}']}")


def roll_up(state: Any, month: Any) -> dict[str, float]:
    """Roll up ``month`` (the nightly job's work for it) and the current periods (the 10-minute job); seconds."""
    from core.clock import company_now
    from plugins.kpi import rollups

    spent = {}
    for label, targets in (
        (f"month {month.start:%Y-%m}", [month]),
        ("current day, week, month, quarter", rollups.current_periods(company_now().date())),
    ):
        began = time.perf_counter()
        with state.sessions() as session, session.begin():
            rollups.refresh(session, targets)
        spent[label] = round(time.perf_counter() - began, 1)
        log(f"rolled up {label} in {spent[label]} s")
    return spent


def bench(db: Path, instance: Path, runs: int) -> dict[str, Any]:
    """Time the dashboard page and every metric's measure() for the last full month."""
    from core.app import create_app
    from core.models import Order, User
    from plugins.kpi.engine import EVERYONE, collect_metrics, measure
    from plugins.kpi.periods import period_of

    app = create_app({"INSTANCE": instance, "DATABASE_URL": f"sqlite:///{db}"})
    state = app.extensions["ordo"]
    month = last_full_month()
    url = f"/kpi/?period=month&date={month.isoformat()}"
    results: dict[str, Any] = {"url": url, "month": month.isoformat(), "pages": {}, "metrics": {}}
    with state.read_sessions() as session:
        results["orders"] = session.scalar(select(func.count()).select_from(Order))
        period = period_of("month", month)
        results["orders_in_month"] = session.scalar(
            select(func.count()).select_from(Order).where(period.within(Order.created_at))
        )
        manager = session.scalars(select(User).where(User.email == "manager.cd@bench.ordo")).one()
    viewers = (("admin (company)", ADMIN_EMAIL), ("sales manager (branch CD)", "manager.cd@bench.ordo"))
    clients = {}
    for label, email in viewers:
        clients[label] = app.test_client()
        login(clients[label], email)
    time_pages(results, clients, f"{url}&live=1", "live", runs)
    results["rollups"] = roll_up(state, period_of("month", month))
    time_pages(results, clients, url, "rolled up", runs)
    with state.read_sessions() as session:
        metrics = collect_metrics(state.registry)
        manager = session.get(User, manager.id)
        period = period_of("month", month)
        for key, metric in metrics.items():
            row: dict[str, Any] = {}
            for label, viewer in (("company", EVERYONE), ("branch", manager)):
                value: list[Any] = []

                def one(metric: Any = metric, viewer: Any = viewer, value: list[Any] = value) -> None:
                    value.append(measure(session, metric, period, viewer=viewer).value)

                row[label] = {**timed(one, max(1, runs // 2)), "value": None if value[-1] is None else str(value[-1])}
            results["metrics"][key] = row
    return results


def table(results: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    lines = [
        f"Dashboard `{results['url']}` — {results['orders']:,} orders, {results['orders_in_month']:,} in the month",
        "",
        "| request | status | min ms | median ms | max ms |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for label, row in results["pages"].items():
        lines.append(f"| {label} | {row['status']} | {row['min']:.0f} | {row['median']:.0f} | {row['max']:.0f} |")
    lines += ["", "| rollup | seconds |", "| --- | ---: |"]
    lines += [f"| {label} | {seconds} |" for label, seconds in results.get("rollups", {}).items()]
    lines += [
        "",
        "| metric | value | company median ms | branch median ms |",
        "| --- | ---: | ---: | ---: |",
    ]
    ranked = sorted(results["metrics"].items(), key=lambda item: -item[1]["company"]["median"])
    for key, row in ranked:
        lines.append(
            f"| {key} | {row['company']['value']} | {row['company']['median']:.0f} | {row['branch']['median']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, build or reuse the database, run the benchmark, print and save it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/ordo-bench.db"))
    parser.add_argument("--reuse", action="store_true", help="keep a database that already has the orders")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--plugins", default=",".join(PLUGINS), help="plugins to enable, comma-separated (default: all five)"
    )
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "kpi_dashboard.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("ORDO_SECRET_KEY", "benchmark-only-secret")
    db: Path = args.db.resolve()
    instance = db.parent / f"{db.stem}-instance"

    from core.db import make_engine
    from core.models import Order

    engine = None
    generated_seconds = None
    if args.reuse and db.exists():
        engine = make_engine(f"sqlite:///{db}")
        with engine.connect() as connection:
            have = connection.scalar(select(func.count()).select_from(Order)) or 0
        if have < args.orders:
            log(f"{db} has {have:,} orders, fewer than {args.orders:,}: building anew")
            engine.dispose()
            engine = None
        else:
            log(f"reusing {db} ({have:,} orders)")
            from core.installation import enabled_plugins
            from core.migrate import upgrade

            upgrade(engine, enabled_plugins(engine))
    if engine is None:
        log(f"creating {db}")
        engine = create_database(db, instance, tuple(p for p in args.plugins.split(",") if p))
        generated_seconds = fill(engine, args.orders, instance)
        log(f"generated {args.orders:,} orders in {generated_seconds:.0f} s")
    engine.dispose()
    results = bench(db, instance, args.runs)
    results.update(
        {
            "generated_seconds": generated_seconds,
            "history_hook_seconds": {name: round(seconds) for name, seconds in HOOK_SECONDS.items()},
            "database_mb": round(db.stat().st_size / 2**20),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    )
    print(table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    log(f"written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
