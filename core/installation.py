"""One installation's lifecycle: initialise, enable and disable plugins, switch steps.

These are the operations behind ``ordo init``, ``ordo plugins enable|disable``,
``ordo db upgrade`` and the administrator's plugin and workflow screens.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import inspect, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core import migrate
from core.models import Branch, Company, Order, PluginState, RegistrySignal, Role, StepSetting, User
from core.plugins import PluginError, PluginInfo, Registry, dependency_order, discover
from core.roles import grant_new_permissions
from core.security.passwords import hash_password
from core.services import audit
from core.workflow import Workflow


def enabled_plugins_table_exists(engine: Engine) -> bool:
    """Whether ``ordo init`` has created the schema in this database."""
    return inspect(engine).has_table("plugin_state")


def enabled_plugins(engine: Engine) -> list[str]:
    """Names of the plugins enabled in this database (none before ``ordo init``)."""
    if not inspect(engine).has_table("plugin_state"):
        return []
    with Session(engine.execution_options(ordo_read_only=True)) as session:
        return list(
            session.scalars(select(PluginState.name).where(PluginState.enabled.is_(True)).order_by(PluginState.name))
        )


def registry_generation(session: Session) -> int:
    """The counter running servers watch to know they must reload plugins and steps."""
    return session.scalar(select(RegistrySignal.generation).where(RegistrySignal.id == 1)) or 0


def bump_generation(session: Session) -> None:
    """Tell running servers that plugins or steps changed."""
    if session.get(RegistrySignal, 1) is None:
        session.add(RegistrySignal(id=1, generation=1))
    else:
        session.execute(
            update(RegistrySignal).where(RegistrySignal.id == 1).values(generation=RegistrySignal.generation + 1)
        )


def initialise(
    engine: Engine,
    admin_email: str,
    admin_password: str,
    company_name: str = "My company",
    installed: dict[str, PluginInfo] | None = None,
) -> User:
    """Create the schema, the company, the default roles and the first administrator."""
    migrate.upgrade(engine, enabled_plugins(engine), installed)
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session, session.begin():
        registry = Registry(enabled_plugins(engine), installed)
        if session.scalar(select(Company.id)) is None:
            company = Company(code="MAIN", name=company_name)
            session.add(company)
            session.flush()
            session.add(Branch(company_id=company.id, code="HQ", name="Head office", is_head_office=True))
        grant_new_permissions(session, registry.permissions.values(), registry.roles.values())
        admin = session.scalar(select(User).where(User.email == admin_email.lower()))
        if admin is None:
            admin = User(email=admin_email.lower(), name="Administrator", language="en")
            session.add(admin)
        admin.password_hash = hash_password(admin_password)
        admin_role = session.scalars(select(Role).where(Role.code == "admin")).one()
        if admin_role not in admin.roles:
            admin.roles.append(admin_role)
        session.flush()
        audit.record(session, None, "user", admin.id, "init_admin", {"email": admin.email})
        bump_generation(session)
        return admin


def upgrade(engine: Engine, installed: dict[str, PluginInfo] | None = None) -> list[str]:
    """Migrate core and the enabled plugins to their newest revision and grant the
    default roles any permission that arrived with the new code; returns those codes."""
    plugins = enabled_plugins(engine)
    migrate.upgrade(engine, plugins, installed)
    with sessionmaker(engine)() as session, session.begin():
        new_registry = Registry(plugins, installed)
        granted = grant_new_permissions(session, new_registry.permissions.values(), new_registry.roles.values())
        if granted:
            audit.record(session, None, "role", None, "grant_defaults", {"permissions": granted})
            bump_generation(session)
    return granted


def enable(
    engine: Engine, names: Iterable[str], actor: User | None = None, installed: dict[str, PluginInfo] | None = None
) -> list[str]:
    """Enable plugins (and the installed plugins they require); run their migrations.

    Returns the plugins newly enabled, requirements first. Raises :class:`PluginError`
    for an unknown plugin, a requirement that is not installed, or a cycle.
    """
    installed = installed if installed is not None else discover()
    current = enabled_plugins(engine)
    wanted = dependency_order([*current, *names], installed)
    Registry(wanted, installed)  # refuse before touching the database if contributions clash
    migrate.upgrade(engine, wanted, installed)
    new = [n for n in wanted if n not in current]
    with sessionmaker(engine)() as session, session.begin():
        for name in new:
            state = session.get(PluginState, name) or PluginState(name=name)
            state.enabled = True
            state.version = installed[name].version
            session.add(state)
            audit.record(session, actor, "plugin", None, "enable", {"plugin": name})
        registry = Registry(wanted, installed)
        grant_new_permissions(session, registry.permissions.values(), registry.roles.values())
        bump_generation(session)
    return new


def disable(
    engine: Engine,
    names: Iterable[str],
    actor: User | None = None,
    move_orders: bool = False,
    installed: dict[str, PluginInfo] | None = None,
) -> list[str]:
    """Disable plugins; their data stays. Refused while another enabled plugin requires
    one of them, or while orders wait in their steps (unless ``move_orders``: then those
    orders move to the next step that stays, recorded in their history)."""
    installed = installed if installed is not None else discover()
    names = list(dict.fromkeys(names))
    current = enabled_plugins(engine)
    for name in names:
        if name not in installed and name not in current:
            raise PluginError(f"plugin {name!r} is not installed")
    remaining = [n for n in current if n not in names]
    for other in remaining:
        needed = [n for n in installed[other].requires if n in names] if other in installed else []
        if needed:
            raise PluginError(f"plugin {other!r} requires {', '.join(needed)}; disable {other!r} first")
    before = Registry(current, installed)
    after = Registry(remaining, installed)
    leaving = [key for key, step in before.steps.items() if step.owner in names]
    with sessionmaker(engine, expire_on_commit=False)() as session, session.begin():
        waiting = (
            list(session.scalars(select(Order).where(Order.step.in_(leaving)).order_by(Order.number)))
            if leaving
            else []
        )
        if waiting and not move_orders:
            listed = ", ".join(f"{o.number} ({o.step})" for o in waiting[:20])
            more = f" and {len(waiting) - 20} more" if len(waiting) > 20 else ""
            raise PluginError(
                f"{len(waiting)} order(s) wait in steps of {', '.join(names)}: {listed}{more}. "
                "Move them on first (--move-orders) or let them leave those steps."
            )
        workflow = Workflow(after, session)
        for order in waiting:
            position = before.steps[order.step].position
            target = next(s for s in workflow.pipeline() if s.position > position)
            workflow.apply(order, "plugin_disabled", target.key, actor, f"plugin {', '.join(names)} disabled")
        for name in names:
            state = session.get(PluginState, name)
            if state is not None and state.enabled:
                state.enabled = False
                audit.record(session, actor, "plugin", None, "disable", {"plugin": name, "orders_moved": len(waiting)})
        bump_generation(session)
    return [n for n in names if n in current]


def set_step_enabled(session: Session, registry: Registry, key: str, enabled: bool, actor: User | None = None) -> None:
    """Switch an optional workflow step on or off (CORE-2); refused while orders wait in it."""
    step = registry.steps.get(key)
    if step is None:
        raise PluginError(f"there is no workflow step {key!r}")
    if not step.optional:
        raise PluginError(f"step {key!r} cannot be switched off")
    if not enabled:
        waiting = list(session.scalars(select(Order.number).where(Order.step == key).limit(21)))
        if waiting:
            raise PluginError(f"orders wait in step {key!r}: {', '.join(waiting[:20])}; move them on first")
    setting = session.get(StepSetting, key) or StepSetting(key=key)
    setting.enabled = enabled
    session.add(setting)
    audit.record(session, actor, "workflow_step", None, "enable" if enabled else "disable", {"step": key})
    bump_generation(session)
