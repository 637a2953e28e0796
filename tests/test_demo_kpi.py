"""``ordo demo`` with kpi: a year of realistic history for every metric on the dashboard (issue 9's
"done when"; KP-1), kpi's people among the demo logins, and its surveys, complaints, targets,
rules and supervision sample.

The demo is loaded once, through the command line, into a fresh instance with every plugin
(kpi included) among the demo's plugins; each test reads one state back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import core.demo
from core.app import create_app
from core.cli import cli
from core.clock import company_now
from core.config import load_instance
from core.db import make_engine, make_session_factory
from core.demo import DEMO_PASSWORD
from core.installation import enabled_plugins
from core.models import Order, User
from core.plugins import Registry
from core.security.passwords import verify_password
from core.testing import login
from plugins.kpi import flow
from plugins.kpi.demo import PEOPLE
from plugins.kpi.engine import EVERYONE, collect_metrics, measure
from plugins.kpi.models import KpiComplaint, KpiSurvey
from plugins.kpi.periods import period_of, trend


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh instance with the demo loaded, every plugin and kpi enabled."""
    folder = tmp_path_factory.mktemp("demo") / "instance"
    plugins = tuple(dict.fromkeys((*core.demo.DEMO_PLUGINS, "intake", "review", "logistics", "billing", "kpi")))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(core.demo, "DEMO_PLUGINS", plugins)
        result = CliRunner().invoke(cli, ["--instance", str(folder), "demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (folder / "cli_output.txt").write_text(result.output)
    return folder


@pytest.fixture(scope="module")
def engine(loaded: Path) -> Iterator[Any]:
    engine = make_engine(f"sqlite:///{loaded / 'ordo.sqlite3'}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def registry(engine: Any) -> Registry:
    return Registry(enabled_plugins(engine))


@pytest.fixture
def s(engine: Any, registry: Registry, loaded: Path) -> Iterator[Session]:
    factory = make_session_factory(engine, registry=registry, instance=load_instance(loaded))
    with factory() as session:
        yield session


def last_month() -> dt.date:
    return (company_now().date().replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def test_kpi_is_enabled_with_every_plugin(engine: Any) -> None:
    assert {"kpi", "intake", "review", "logistics", "billing"} <= set(enabled_plugins(engine))


@pytest.mark.req("KP-1")
def test_a_year_of_history_for_every_metric(s: Session, registry: Registry) -> None:
    """The dashboard of last month has a value for every metric, and so has each month of the year."""
    metrics = collect_metrics(registry)
    assert {"orders.count", "orders.value", "orders.cycle_time"} <= set(metrics)
    month = period_of("month", last_month())
    missing = [key for key, metric in metrics.items() if measure(s, metric, month, viewer=EVERYONE).value is None]
    assert not missing, f"no value last month for {missing}"
    counts = [measure(s, metrics["orders.count"], p, viewer=EVERYONE).value for p in trend(month, 12)]
    assert all(c is not None and 25 <= c <= 120 for c in counts), counts
    cycle = [measure(s, metrics["orders.cycle_time"], p, viewer=EVERYONE).value for p in trend(month, 11)]
    assert all(c is not None for c in cycle), cycle


@pytest.mark.req("KP-1")
def test_the_dashboard_shows_last_month(engine: Any, loaded: Path) -> None:
    app = create_app({"INSTANCE": loaded, "TESTING": True})
    client = app.test_client()
    login(client, "gm@demo.ordo", DEMO_PASSWORD)
    page = client.get(f"/kpi/?period=month&date={last_month().isoformat()}")
    assert page.status_code == 200
    app.extensions["ordo"].engine.dispose()


def test_history_orders_are_numbered_apart(s: Session) -> None:
    history = s.scalar(select(func.count()).select_from(Order).where(Order.number.like("H%")))
    assert history is not None and 600 <= history <= 800
    real = s.scalar(select(func.count()).select_from(Order).where(Order.number.not_like("H%")))
    assert real and real >= 10


def test_kpi_people_can_log_in(s: Session, loaded: Path) -> None:
    for email, _name, role, _branch in PEOPLE:
        user = s.scalars(select(User).where(User.email == email)).one()
        assert verify_password(user.password_hash, DEMO_PASSWORD)
        assert role in {r.code for r in user.roles}
    output = (loaded / "cli_output.txt").read_text()
    assert "service@demo.ordo" in output and "supervisor@demo.ordo" in output
    assert flow.CUSTOMER_SERVICE in output


@pytest.mark.req("KP-6")
def test_surveys_and_complaints(s: Session) -> None:
    answered = s.scalar(select(func.count()).select_from(KpiSurvey).where(KpiSurvey.answered_at.is_not(None)))
    assert answered and answered > 50
    resolved = s.scalar(select(func.count()).select_from(KpiComplaint).where(KpiComplaint.status == "resolved"))
    assert resolved and resolved > 10


@pytest.mark.req("KP-2")
def test_targets_rules_and_their_evaluation(s: Session) -> None:
    from plugins.kpi.models import KpiRule, KpiRuleResult, KpiTarget

    assert s.scalar(select(func.count()).select_from(KpiTarget)) >= 3
    rules = {rule.kind: rule for rule in s.scalars(select(KpiRule))}
    assert rules["reward"].metric == "logistics.on_time_delivery" and rules["reward"].months == 3
    assert rules["alert"].metric == "billing.collection_rate" and rules["alert"].months == 2
    evaluated = s.scalars(select(KpiRuleResult.month).distinct()).all()
    assert set(evaluated) <= {
        last_month(),
        (last_month() - dt.timedelta(days=1)).replace(day=1),
        (last_month() - dt.timedelta(days=40)).replace(day=1),
    }


@pytest.mark.req("KP-5")
def test_last_months_sample_has_a_finding(s: Session) -> None:
    from plugins.kpi.models import KpiFinding, KpiSample

    sample = s.scalars(select(KpiSample).where(KpiSample.month == last_month())).one()
    assert 1 <= len(sample.orders) <= 5
    finding = s.scalars(select(KpiFinding)).one()
    assert finding.status == "open" and finding.order_id == sample.orders[0].order_id


@pytest.mark.req("KP-6")
def test_the_portal_customer_has_an_open_survey_and_a_visit_is_planned(s: Session) -> None:
    from plugins.kpi.models import KpiVisit

    portal = s.scalars(select(User).where(User.email == core.demo.PORTAL_EMAIL)).one()
    open_ = s.scalars(
        select(KpiSurvey).where(KpiSurvey.customer_id == portal.customer_id, KpiSurvey.answered_at.is_(None))
    ).all()
    assert any(not survey.order_id or survey.expires_at for survey in open_) and open_
    assert s.scalars(select(KpiVisit).where(KpiVisit.status == "planned")).first() is not None
    assert s.scalar(select(func.count()).select_from(KpiComplaint).where(KpiComplaint.status != "resolved")) == 1
