"""The reliability figures of issue 11: run each attack category's tests and print their table.

    .venv/bin/python bench/reliability.py                       # the sizes CI runs
    ORDO_CRASH_CYCLES=100 .venv/bin/python bench/reliability.py # the full crash drill
    scripts/postgres .venv/bin/python bench/reliability.py      # the same on PostgreSQL

Each category names its test files and how big it is (runs, clients, examples, cycles);
the script runs them with pytest (``-n 2``), reads the JUnit report and prints a Markdown
table — category, size, tests passed / failed / skipped, seconds — for
``docs/reliability.md``. Exit status 1 when any test failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Category:
    """One row of the table: what is attacked, by which tests, at what size."""

    name: str
    files: tuple[str, ...]
    size: str


def categories() -> list[Category]:
    """The categories, with sizes as this run will use them."""
    cycles = os.environ.get("ORDO_CRASH_CYCLES", "6")
    return [
        Category(
            "Permission matrix (list = fetch, swapped ids, hidden fields)",
            (
                "tests/test_access_matrix.py",
                "tests/test_access_channels.py",
                "tests/test_access_nested_ids.py",
                # KPI aggregates: every figure, rollup, report and dashboard filter within the viewer's scope
                "tests/plugins/test_kpi_engine.py::test_scope_limits_every_number",
                "tests/plugins/test_kpi_rollups.py::test_rolled_up_figures_equal_live_ones_in_every_data_scope",
                "tests/plugins/test_kpi_rollups.py::test_customer_level_facts_follow_the_customer_scope",
                "tests/plugins/test_kpi_reports.py::test_a_screen_sees_only_its_scope",
                "tests/plugins/test_kpi_dashboard.py::test_a_filter_typed_in_never_names_an_out_of_scope_customer",
                "tests/plugins/test_billing_kpi.py::test_the_metrics_obey_the_viewers_scope",
                "tests/plugins/test_intake_kpi.py::test_the_viewer_scope_limits_every_number",
                "tests/test_api_access.py",
                "tests/test_field_permissions.py",
                "tests/test_access_escalation.py",
                "tests/test_portal_names.py",
            ),
            "every default role and anonymous; screens, API, portal, exports, PDFs, attachments, KPI; "
            f"{os.environ.get('ORDO_MATRIX_IDS', '400')} random ids per role; nested ids swapped",
        ),
        Category(
            "Races: last units, invoice numbers, idempotency, stale editors",
            (
                "tests/plugins/test_logistics_concurrency.py",
                "tests/plugins/test_billing_invoice_numbers.py",
                "tests/test_races.py",
            ),
            "2, 8, 32, 64 threads reserving; 50 clients, one Idempotency-Key; 2 editors",
        ),
        Category(
            "Lost races retried (serialization failure, deadlock, busy database)",
            ("tests/test_concurrency.py", "tests/plugins/test_billing_webhook.py"),
            "injected at the driver; at most 3 attempts; a real deadlock on PostgreSQL",
        ),
        Category(
            "Many processes on one database",
            ("tests/test_many_processes.py",),
            "2 servers × 2 gunicorn workers, 2 job workers, 40 orders, every job once",
        ),
        Category("Crashes (SIGKILL under load)", ("tests/test_crash.py",), f"{cycles} kill cycles, 4 clients"),
        Category(
            "Integrity: audit log, hash chain, issued money, the app's database role",
            (
                "tests/test_audit_trail.py",
                "tests/test_audit_seal.py",
                "tests/test_database_role.py",
                "tests/plugins/test_billing_integrity.py",
            ),
            "update, delete, slip-in, re-chained forgery; 19 raw-SQL edits and every billing route on issued money; "
            "12 rewrites as the app's PostgreSQL role",
        ),
        Category("Backup drill", ("tests/test_backup.py",), "backup while orders are written; damaged dumps"),
        Category(
            "Authentication and sessions",
            (
                "tests/test_throttle.py",
                "tests/test_sessions.py",
                "tests/test_web_security.py",
                "tests/test_api_auth.py",
                "tests/test_passwords.py",
                "tests/test_auth_attacks.py",
            ),
            "throttling, fixation, timeouts, 3,000 common passwords; every GET route (no writes), "
            "every write route (CSRF, foreign Origin)",
        ),
        Category(
            "Hostile input",
            ("tests/test_bad_input.py", "tests/test_hostile_input.py", "tests/test_hostile_uploads.py"),
            "HTML/JS, CRLF, bidi, 100k text in screens, e-mail, PDFs, exports; "
            "disguised, bomb, damaged-image and traversal uploads; "
            + ("every" if os.environ.get("ORDO_HOSTILE_FULL") == "1" else "2 of 8")
            + " SQL payloads per list parameter",
        ),
        Category(
            "Fuzzing: API schema per role, order state machine",
            ("tests/test_fuzz_api.py", "tests/test_order_state_machine.py"),
            f"{os.environ.get('ORDO_FUZZ_EXAMPLES', '2')} examples per operation, "
            f"{os.environ.get('ORDO_FUZZ_STATEFUL', '2')} stateful runs, 9 roles + anonymous; "
            f"{os.environ.get('ORDO_STATEFUL_EXAMPLES', '6')} state-machine runs × "
            f"{os.environ.get('ORDO_STATEFUL_STEPS', '30')} steps",
        ),
    ]


def run(category: Category, report: Path) -> tuple[int, int, int, float]:
    """Run one category's tests; (passed, failed, skipped, seconds)."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider", f"--junitxml={report}",
         *category.files],
        cwd=ROOT,
        check=False,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    seconds = time.monotonic() - started
    suites = ET.parse(report).getroot()
    total = failed = skipped = 0
    for suite in suites.iter("testsuite"):
        total += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return total - failed - skipped, failed, skipped, seconds


def main(argv: list[str] | None = None) -> int:
    """Run every category (or those named with ``--only``) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="run only categories whose name contains this text")
    args = parser.parse_args(argv)
    database = "PostgreSQL" if os.environ.get("ORDO_DATABASE_URL", "").startswith("postgresql") else "SQLite"
    rows = ["| category | size | passed | failed | skipped | seconds |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    any_failed = False
    with tempfile.TemporaryDirectory() as work:
        for n, category in enumerate(categories()):
            if args.only and args.only.lower() not in category.name.lower():
                continue
            print(f"[{time.strftime('%H:%M:%S')}] {category.name} …", file=sys.stderr, flush=True)
            passed, failed, skipped, seconds = run(category, Path(work) / f"{n}.xml")
            any_failed |= failed > 0
            rows.append(f"| {category.name} | {category.size} | {passed} | {failed} | {skipped} | {seconds:.0f} |")
    print(f"Reliability on {database}, {time.strftime('%Y-%m-%d')}:\n")
    print("\n".join(rows))
    return 1 if any_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
