"""The ``ordo`` command line: init, demo, serve, worker, jobs, users, plugins, steps, db.

Scriptable and stable: every command runs without prompts when its options are
given, prints results on stdout and errors on stderr with a non-zero exit status.
Enabled plugins add their own commands (``ordo <plugin> …``) through
``ordo_register_cli``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from core import backup, installation, migrate
from core.config import Instance, load_instance
from core.db import make_engine, make_session_factory
from core.models import ApiToken, Branch, Customer, Department, Role, User
from core.plugins import PluginError, Registry, discover
from core.security.passwords import PasswordPolicyError, hash_password
from core.security.tokens import create_token
from core.services import audit


class Context:
    """What every command needs: the instance folder and its database engine."""

    def __init__(self, instance: Instance):
        self.instance = instance
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.instance.database_url)
        return self._engine

    def sessions(self) -> sessionmaker[Session]:
        return sessionmaker(self.engine, expire_on_commit=False)

    def registry(self) -> Registry:
        """The enabled plugins of this database, loaded."""
        return Registry(installation.enabled_plugins(self.engine))

    def ordo_sessions(self, registry: Registry, read_only: bool = False) -> sessionmaker[Session]:
        """Sessions like the app's: they carry ``registry`` and the instance (settings,
        file store), as services, hooks and jobs expect."""
        return make_session_factory(self.engine, read_only=read_only, registry=registry, instance=self.instance)

    def require_initialised(self) -> None:
        if not installation.enabled_plugins_table_exists(self.engine):
            raise click.ClickException("the database is not initialised; run `ordo init` first")


pass_ctx = click.make_pass_decorator(Context)


class OrdoGroup(click.Group):
    """The top-level group; commands of enabled plugins are found when asked for."""

    def _plugin_commands(self, ctx: click.Context) -> click.Group:
        group = click.Group()
        try:
            instance = load_instance(ctx.params.get("instance"))
            engine = make_engine(instance.database_url)
            registry = Registry(installation.enabled_plugins(engine))
            engine.dispose()
        except Exception:
            return group
        registry.hook.ordo_register_cli(group=group)
        return group

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands(ctx).list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugin_commands(ctx).get_command(ctx, cmd_name)


@click.group(cls=OrdoGroup)
@click.option(
    "--instance",
    envvar="ORDO_INSTANCE",
    type=click.Path(file_okay=False),
    default=None,
    help="Instance folder (database, attachments, settings). Default: ./instance",
)
@click.pass_context
def cli(ctx: click.Context, instance: str | None) -> None:
    """Ordo: order management, from intake to settlement."""
    ctx.obj = Context(load_instance(instance))


def main() -> None:
    """Entry point of the ``ordo`` console script."""
    cli(prog_name="ordo")


# --- init, demo, serve --------------------------------------------------------------


@cli.command()
@click.option("--admin-email", help="E-mail of the first administrator.")
@click.option("--admin-password", help="Password of the first administrator.")
@click.option("--company", "company_name", default="My company", show_default=True, help="Company name.")
@pass_ctx
def init(ctx: Context, admin_email: str | None, admin_password: str | None, company_name: str) -> None:
    """Create the database, migrate it and create the first administrator."""
    admin_email = admin_email or click.prompt("Administrator e-mail")
    admin_password = admin_password or click.prompt("Administrator password", hide_input=True, confirmation_prompt=True)
    try:
        admin = installation.initialise(ctx.engine, admin_email, admin_password, company_name)
    except PasswordPolicyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Initialised {ctx.instance.database_url} — administrator {admin.email}")


@cli.command()
@pass_ctx
def demo(ctx: Context) -> None:
    """Load the Chongqing demo company (skipped if it is there already) and show its logins."""
    from core.demo import DEMO_PASSWORD, DemoRefused, demo_logins, load_demo

    try:
        created = load_demo(ctx.engine, ctx.instance)
    except DemoRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("Demo company loaded." if created else "Demo company already present.")
    click.echo(f"Logins (password for all: {DEMO_PASSWORD}):")
    for email, role in demo_logins():
        click.echo(f"  {email:<28} {role}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes; more than one runs under gunicorn (production mode).",
)
@click.option("--production", is_flag=True, help="Run under gunicorn even with one worker.")
@pass_ctx
def serve(ctx: Context, host: str, port: int, workers: int, production: bool) -> None:
    """Serve the screens and the API."""
    from core.app import create_app
    from core.wsgi import ReloadingApp

    def factory() -> Any:
        return create_app({"INSTANCE": ctx.instance.path, "DATABASE_URL": ctx.instance.database_url})

    if not installation.enabled_plugins_table_exists(ctx.engine):
        raise click.ClickException("the database is not initialised; run `ordo init` or `ordo demo` first")
    click.echo(f"Ordo is serving on http://{host}:{port}/ (instance {ctx.instance.path})")
    if workers > 1 or production:
        from core.gunicorn import run_gunicorn

        run_gunicorn(lambda: ReloadingApp(factory), host, port, workers)
    else:
        from werkzeug.serving import run_simple

        run_simple(host, port, ReloadingApp(factory), threaded=True, use_reloader=False)


# --- users ------------------------------------------------------------------------


@cli.group()
def users() -> None:
    """Create users and API tokens."""


@users.command("create")
@click.argument("email")
@click.option("--password", required=True, help="At least 8 characters with a letter and a digit.")
@click.option("--role", "roles", multiple=True, required=True, help="A role code; repeat for several.")
@click.option("--name", default=None, help="Display name (default: the e-mail's local part).")
@click.option("--branch", default=None, help="Branch code.")
@click.option("--department", default=None, help="Department code.")
@click.option("--customer", default=None, help="Customer code: required for (and only for) a portal user.")
@click.option("--language", type=click.Choice(["zh_CN", "en"]), default="zh_CN", show_default=True)
@pass_ctx
def users_create(
    ctx: Context,
    email: str,
    password: str,
    roles: tuple[str, ...],
    name: str | None,
    branch: str | None,
    department: str | None,
    customer: str | None,
    language: str,
) -> None:
    """Create a user holding the given roles."""
    ctx.require_initialised()
    email = email.strip().lower()
    with ctx.sessions()() as session, session.begin():
        if session.scalar(select(User.id).where(User.email == email)):
            raise click.ClickException(f"a user with e-mail {email} exists already")
        found = {r.code: r for r in session.scalars(select(Role).where(Role.code.in_(roles)))}
        missing = [r for r in roles if r not in found]
        if missing:
            known = ", ".join(session.scalars(select(Role.code).order_by(Role.code)))
            raise click.ClickException(f"unknown role(s) {', '.join(missing)}; known roles: {known}")
        portal = any(r.data_scope == "customer" for r in found.values())
        if portal and not customer:
            raise click.ClickException("a portal user (customer-scope role) needs --customer CODE")
        if customer and not portal:
            raise click.ClickException("--customer is only for portal users (a customer-scope role such as 'customer')")
        user = User(email=email, name=name or email.split("@")[0], language=language, roles=list(found.values()))
        try:
            user.password_hash = hash_password(password)
        except PasswordPolicyError as exc:
            raise click.ClickException(str(exc)) from None
        if branch:
            user.branch_id = session.scalar(select(Branch.id).where(Branch.code == branch))
            if user.branch_id is None:
                raise click.ClickException(f"unknown branch {branch!r}")
        if department:
            user.department_id = session.scalar(select(Department.id).where(Department.code == department))
            if user.department_id is None:
                raise click.ClickException(f"unknown department {department!r}")
        if customer:
            user.customer_id = session.scalar(select(Customer.id).where(Customer.code == customer))
            if user.customer_id is None:
                raise click.ClickException(f"unknown customer {customer!r}")
        session.add(user)
        session.flush()
        audit.record(session, None, "user", user.id, "create", {"email": email, "roles": sorted(roles)})
    click.echo(f"Created user {email} ({', '.join(roles)})")


@users.command("token")
@click.argument("email")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None, help="Expire after this many days.")
@pass_ctx
def users_token(ctx: Context, email: str, name: str, expires_days: int | None) -> None:
    """Create an API token for EMAIL and print only the token (it is shown once)."""
    ctx.require_initialised()
    with ctx.sessions()() as session, session.begin():
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise click.ClickException(f"no user with e-mail {email}")
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=expires_days) if expires_days else None
        token = create_token(session, user, name=name, expires_at=expires)
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.prefix == token[:12]))
        audit.record(session, None, "api_token", token_id, "create", {"user": user.email, "name": name})
    click.echo(token)


# --- plugins and workflow steps -----------------------------------------------------


@cli.group()
def plugins() -> None:
    """List, enable, disable and scaffold plugins."""


@plugins.command("list")
@pass_ctx
def plugins_list(ctx: Context) -> None:
    """Installed plugins and whether each is enabled here."""
    enabled = set(installation.enabled_plugins(ctx.engine))
    for name, info in sorted(discover().items()):
        mark = "enabled " if name in enabled else "disabled"
        requires = f" (requires {', '.join(info.requires)})" if info.requires else ""
        click.echo(f"{name:<12} {mark} {info.version:<8} {info.title}{requires}")


@plugins.command("enable")
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def plugins_enable(ctx: Context, names: tuple[str, ...]) -> None:
    """Enable plugins (and the plugins they require) and migrate their tables."""
    ctx.require_initialised()
    try:
        new = installation.enable(ctx.engine, names)
    except PluginError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Enabled: {', '.join(new)}" if new else "Already enabled.")


@plugins.command("disable")
@click.argument("names", nargs=-1, required=True)
@click.option("--move-orders", is_flag=True, help="Move orders waiting in the plugins' steps to the next step.")
@pass_ctx
def plugins_disable(ctx: Context, names: tuple[str, ...], move_orders: bool) -> None:
    """Disable plugins; their data stays in the database."""
    ctx.require_initialised()
    try:
        done = installation.disable(ctx.engine, names, move_orders=move_orders)
    except PluginError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Disabled: {', '.join(done)}" if done else "Already disabled.")


@plugins.command("new")
@click.argument("name")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True)
def plugins_new(name: str, dest: Path) -> None:
    """Scaffold a third-party plugin package NAME that passes the contract suite."""
    from core.scaffold import create_plugin

    try:
        path = create_plugin(name, dest)
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {path}. Install it with: pip install -e {path}")


@cli.group()
def steps() -> None:
    """Show the workflow and switch optional steps on or off."""


@steps.command("list")
@pass_ctx
def steps_list(ctx: Context) -> None:
    """The pipeline: every step with its position, owner and whether it is on."""
    from core.workflow import Workflow, step_status

    ctx.require_initialised()
    registry = Registry(installation.enabled_plugins(ctx.engine))
    with ctx.sessions()() as session:
        workflow = Workflow(registry, session)
        for step in sorted(registry.steps.values(), key=lambda s: s.position):
            state = "off" if step.key in workflow.disabled else "on "
            click.echo(f"{step.position:>5} {state} {step.key:<32} {step_status(step):<10} {step.owner}")


def _switch_step(ctx: Context, key: str, enabled: bool) -> None:
    ctx.require_initialised()
    registry = Registry(installation.enabled_plugins(ctx.engine))
    with ctx.sessions()() as session, session.begin():
        try:
            installation.set_step_enabled(session, registry, key, enabled)
        except PluginError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"Step {key} is {'on' if enabled else 'off'}.")


@steps.command("enable")
@click.argument("key")
@pass_ctx
def steps_enable(ctx: Context, key: str) -> None:
    """Switch step KEY on."""
    _switch_step(ctx, key, True)


@steps.command("disable")
@click.argument("key")
@pass_ctx
def steps_disable(ctx: Context, key: str) -> None:
    """Switch optional step KEY off; orders then skip it."""
    _switch_step(ctx, key, False)


# --- worker and scheduled jobs ---------------------------------------------------------


def _worker(ctx: Context, name: str | None = None, poll: float = 5.0) -> Any:
    """A worker on this instance that rebuilds its plugin set when plugins change."""
    from core.jobs.worker import Worker

    ctx.require_initialised()
    registry = ctx.registry()

    def reload() -> tuple[sessionmaker[Session], Registry]:
        fresh = ctx.registry()
        return ctx.ordo_sessions(fresh), fresh

    return Worker(ctx.ordo_sessions(registry), registry, name=name, poll=poll, reload=reload)


def _company_time(value: dt.datetime | None) -> str:
    from core.clock import COMPANY_TIMEZONE

    return value.astimezone(COMPANY_TIMEZONE).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _echo_run(run: Any) -> None:
    """One run: its outcome on stdout; a failure's traceback on stderr."""
    took = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0.0
    if run.outcome == "succeeded":
        click.echo(f"{run.job}: succeeded in {took:.1f} s (run {run.id})")
    else:
        last = run.error.strip().splitlines()[-1] if run.error.strip() else "failed"
        click.echo(f"{run.job}: FAILED (run {run.id}): {last}")
        click.echo(run.error.rstrip(), err=True)


def _echo_delivery(report: Any) -> None:
    counts = ", ".join(f"{getattr(report, key, 0)} {key}" for key in ("sent", "retried", "failed", "uncertain"))
    click.echo(f"Deliveries: {counts}")


def _echo_pass(report: Any) -> None:
    """What a worker pass did, as ``jobs run-due`` and ``worker --once`` print it."""
    for run in report.recovered:
        click.echo(f"{run.job}: run {run.id} on {run.worker} never finished (worker stopped); marked failed")
    if not report.runs:
        click.echo("No job was due.")
    for run in report.runs:
        _echo_run(run)
    if report.delivery is not None:
        _echo_delivery(report.delivery)
    for error in report.errors:
        click.echo(f"Error: {error}", err=True)


def _one_pass(ctx: Context, name: str | None) -> None:
    report = _worker(ctx, name).run_pass()
    _echo_pass(report)
    if report.errors:
        raise click.ClickException("the pass could not run completely: " + "; ".join(report.errors))


@cli.command()
@click.option("--poll", default=5.0, show_default=True, type=click.FloatRange(min=0.1), help="Seconds between passes.")
@click.option("--once", is_flag=True, help="Run one pass and exit (like `ordo jobs run-due`).")
@click.option("--name", default=None, help="This worker's name in leases and runs. Default: <host>:<pid>.")
@pass_ctx
def worker(ctx: Context, poll: float, once: bool, name: str | None) -> None:
    """Run due jobs and deliver notifications, continuously.

    Any number of workers may share the database (a lease keeps a job on one worker at a
    time). SIGTERM or Ctrl-C stops after the current pass.
    """
    if once:
        _one_pass(ctx, name)
        return
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = _worker(ctx, name, poll)
    click.echo(f"Worker {runner.name} polling every {poll:g} s (instance {ctx.instance.path}); Ctrl-C stops.")
    runner.run_forever()


@cli.group()
def jobs() -> None:
    """Scheduled jobs: list them, run one now, or run one pass from cron."""


@jobs.command("run-due")
@click.option("--name", default=None, help="The worker name in leases and runs. Default: <host>:<pid>.")
@pass_ctx
def jobs_run_due(ctx: Context, name: str | None) -> None:
    """One pass: run due jobs and deliver due notifications (for cron).

    Exits 0 even when a job failed (the failure is printed and recorded); non-zero only
    when the pass itself could not run.
    """
    _one_pass(ctx, name)


@jobs.command("list")
@pass_ctx
def jobs_list(ctx: Context) -> None:
    """Every registered job: schedule, on/off, next run, last outcome (times in company time)."""
    from core.jobs.manage import job_rows

    ctx.require_initialised()
    registry = ctx.registry()
    with ctx.ordo_sessions(registry, read_only=True)() as session:
        rows = job_rows(session, registry)
    if not rows:
        click.echo("No job is registered.")
    for row in rows:
        state = "on " if row.state.enabled else "off"
        last = row.last_run.outcome if row.last_run else "never run"
        if row.last_run:
            last += f" {_company_time(row.last_run.finished_at or row.last_run.started_at)}"
        running = f"  running on {row.state.lease_owner}" if row.running() else ""
        click.echo(
            f"{row.job.name:<32} {row.schedule:<22} {state} next {_company_time(row.state.next_run_at)}  "
            f"last {last}{running}"
        )


@jobs.command("run")
@click.argument("name")
@click.option("--worker-name", "worker_name", default=None, help="The worker name in the lease and run.")
@pass_ctx
def jobs_run(ctx: Context, name: str, worker_name: str | None) -> None:
    """Run job NAME now, due or not, under its lease (refused while another worker runs it)."""
    from core.jobs.runner import JobError, run_job
    from core.jobs.worker import default_worker_name

    ctx.require_initialised()
    registry = ctx.registry()
    try:
        run = run_job(
            ctx.ordo_sessions(registry), registry, name, worker=worker_name or default_worker_name(), force=True
        )
    except JobError as exc:
        known = ", ".join(sorted(registry.jobs)) or "none"
        raise click.ClickException(f"{exc}; registered jobs: {known}") from None
    if run is None:
        raise click.ClickException(f"job {name} is running on another worker now; try again when it has finished")
    _echo_run(run)
    if run.outcome != "succeeded":
        raise SystemExit(1)


# --- db -------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Migrate, back up and restore the database."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Bring core and every enabled plugin's tables to the newest revision.

    Permissions that arrived with the new code are granted to their default roles.
    """
    try:
        granted = installation.upgrade(ctx.engine)
    except PluginError as exc:
        raise click.ClickException(str(exc)) from None
    if granted:
        click.echo("Granted to their default roles: " + ", ".join(granted))
    click.echo("Database at head: " + ", ".join(sorted(migrate.current_revisions(ctx.engine))))


@db.command("grant-app-role")
@click.argument("role")
@pass_ctx
def db_grant_app_role(ctx: Context, role: str) -> None:
    """Make ROLE the PostgreSQL role the servers and workers connect as.

    Run it as the owner of Ordo's tables. ROLE may read and write every table, but on
    the audit log only read and add: the database refuses it any change, deletion or
    TRUNCATE there, and it cannot lift the triggers. Tables made later get the same grants.
    """
    from core.database_role import DatabaseRoleError, grant_application_role

    ctx.require_initialised()
    try:
        with ctx.engine.begin() as connection:
            grant_application_role(connection, role)
    except DatabaseRoleError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Granted to {role}. Point ORDO_DATABASE_URL of the servers and workers at {role}.")


@db.command("current")
@pass_ctx
def db_current(ctx: Context) -> None:
    """The revisions the database is at."""
    click.echo(" ".join(sorted(migrate.current_revisions(ctx.engine))) or "(empty)")


@db.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def db_backup(ctx: Context, path: Path) -> None:
    """Copy the live database to PATH (safe while Ordo runs).

    SQLite: the online backup API. PostgreSQL: pg_dump's custom format.
    """
    try:
        backup.backup(ctx.instance.database_url, path)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Backed up to {path}")


@db.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def db_restore(ctx: Context, path: Path, yes: bool) -> None:
    """Replace the database with the backup at PATH (checked first; all or nothing).

    Stop the servers and workers first.
    """
    url = ctx.instance.database_url
    try:
        backup.check(url, path)
        if not yes:
            click.confirm(
                f"Replace {make_url(url).render_as_string()} with {path}? Everything since that backup is lost",
                abort=True,
            )
        backup.restore(url, path)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Restored the database from {path}")


# --- audit -----------------------------------------------------------------------------


@cli.group("audit")
def audit_group() -> None:
    """Seal the audit log's hash chain and verify that the log is complete and unaltered."""


@audit_group.command("seal")
@pass_ctx
def audit_seal(ctx: Context) -> None:
    """Seal the entries written since the last sealing now (the core.audit_seal job does it every 5 minutes)."""
    from core.services.audit_seal import seal

    ctx.require_initialised()
    with ctx.sessions()() as session, session.begin():
        count = seal(session)
    click.echo(f"Sealed {count} entries")


def _anchor(value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    ident, _, digest = value.partition(":")
    if not ident.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise click.BadParameter(
            "give ENTRY:SEAL as `ordo audit verify` printed it, e.g. 1234:9f86d0…", param_hint="--expect"
        )
    return int(ident), digest


@audit_group.command("verify")
@click.option("--expect", default=None, metavar="ENTRY:SEAL", help="An anchor printed by an earlier verify.")
@pass_ctx
def audit_verify(ctx: Context, expect: str | None) -> None:
    """Recompute the hash chain; exit 1 if an entry was changed, removed or slipped in."""
    from core.services.audit_seal import verify

    anchor = _anchor(expect)
    ctx.require_initialised()
    with ctx.ordo_sessions(ctx.registry(), read_only=True)() as session:
        verdict = verify(session, anchor)
    click.echo(f"Checked {verdict.checked} sealed entries; {verdict.unsealed} newer ones wait for sealing.")
    for audit_id in verdict.altered:
        click.echo(f"BROKEN at entry #{audit_id}: it was changed, or an entry just before it was removed or replaced")
    for audit_id in verdict.removed:
        click.echo(f"REMOVED: sealed entry #{audit_id} is gone")
    for audit_id in verdict.inserted:
        click.echo(f"INSERTED: entry #{audit_id} was written in behind the seals")
    if verdict.anchor_mismatch:
        click.echo(f"ANCHOR MISMATCH: {verdict.anchor_mismatch}")
    if verdict.head_id is not None:
        click.echo(f"Head: {verdict.head_id}:{verdict.head_hash}  (keep it elsewhere; pass it as --expect later)")
    if not verdict.intact:
        raise SystemExit(1)
    click.echo("The audit log is complete and unaltered.")


if __name__ == "__main__":  # pragma: no cover
    main()
