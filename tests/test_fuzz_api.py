"""Schemathesis against ``/api/v1/openapi.json``: every operation, once per default role's token.

Each role gets a fresh database with every built-in plugin enabled, the seeded master
data, two orders and a token. For every operation of the served document Schemathesis
generates valid requests (positive phase) and schema-violating ones (negative phase)
and checks each answer:

- no server error (``not_a_server_error``);
- the status code is documented for the operation (``status_code_conformance``);
- the content type and the body match the documented response (``content_type_conformance``,
  ``response_schema_conformance``), errors included (the error envelope);
- invalid data is refused with a 4xx (``negative_data_rejection``, negative phase only).

The stateful phase then runs Schemathesis' state machine over the links it infers from
the document (an id a response returns feeds the path parameter of the next call, e.g. a
created customer is fetched, changed, deactivated), with the same checks after every step.

Sizes: ``ORDO_FUZZ_EXAMPLES`` examples per operation and phase (default 2; one valid one
when the role is refused the operation with 401/403, since the refusal comes before any
input is read) and
``ORDO_FUZZ_STATEFUL`` state-machine runs of up to 10 calls (default 2) per role;
``ORDO_FUZZ_EXAMPLES=50 ORDO_FUZZ_STATEFUL=50`` is the full size (see docs/api.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import User
from core.roles import DEFAULT_ROLES
from core.testing import make_order, make_user, token_for
from plugins.intake.models import IntakePriceList

PLUGINS = ("intake", "review", "logistics", "billing", "kpi")
ANONYMOUS = "anonymous"
ROLES = (*DEFAULT_ROLES, ANONYMOUS)
EXAMPLES = int(os.environ.get("ORDO_FUZZ_EXAMPLES", "2"))
STATEFUL_RUNS = int(os.environ.get("ORDO_FUZZ_STATEFUL", "2"))
#: Operations that change who may call the API (users, roles, tokens): run last, so an
#: administrator deactivating itself at random cannot hide the other operations' answers.
IDENTITY_PATHS = ("/api/v1/users", "/api/v1/roles", "/api/v1/tokens")
CHECKS: list[Callable[..., Any]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def ordo_plugins() -> tuple[str, ...]:
    """Every built-in plugin, so every operation of the document is fuzzed."""
    return PLUGINS


@dataclass
class Target:
    """The app under test, its loaded schema and the headers one role sends."""

    app: Flask
    schema: Any
    headers: dict[str, str]


def _target(app: Flask, session: Session, admin: User, seed: dict[str, Any], role: str) -> Target:
    if role == "admin":
        user: User | None = admin
    elif role == ANONYMOUS:
        user = None
    elif role == "customer":
        user = make_user(session, "portal@example.com", [role], customer=seed["local"])
    else:
        user = make_user(session, f"{role}@example.com", [role], branch=seed["hq"])
    make_order(session, admin, customer="C001")
    make_order(session, admin, customer="C002")
    headers = {"Authorization": f"Bearer {token_for(session, user)}"} if user else {}
    return Target(app, schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app), headers)


def _operations(schema: Any) -> Iterator[Any]:
    """Every operation of ``schema``, those on users, roles and tokens last."""
    operations = [result.ok() for result in schema.get_all_operations()]
    yield from sorted(operations, key=lambda op: op.path.startswith(IDENTITY_PATHS))


def _summary(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return " | ".join(lines[:12])


def _fuzz(target: Target, operation: Any, mode: GenerationMode, examples: int) -> tuple[str | None, set[int]]:
    """Run ``examples`` cases of ``operation`` in ``mode``: the first failure's summary (or None), the statuses."""
    checks = [*CHECKS, negative_data_rejection] if mode.is_negative else CHECKS
    statuses: set[int] = set()

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        # Set on the case (not passed to the call) so Schemathesis knows the request carries them.
        case.headers = {**(case.headers or {}), **target.headers}
        statuses.add(case.call_and_validate(checks=checks).status_code)

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:
        return f"{operation.label} [{mode.value}]: {_summary(exc)}", statuses
    return None, statuses


def _check_operation(target: Target, operation: Any) -> Iterator[str]:
    """Both phases of ``operation``; an operation the role may not call (401/403) gets one valid case.

    The refusal comes before any input is read, so more cases, or invalid ones, would
    only be refused the same way.
    """
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        failure, statuses = _fuzz(target, operation, mode, 1)
        if failure:
            yield failure
            return
        if statuses and statuses <= {401, 403}:
            return
        if EXAMPLES > 1:
            failure, _ = _fuzz(target, operation, mode, EXAMPLES)
            if failure:
                yield failure


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_as_documented(app: Flask, session: Session, admin: User, seed, role: str):
    target = _target(app, session, admin, seed, role)
    operations = list(_operations(target.schema))
    assert len(operations) > 150, "the document lost operations"
    failures = [failure for operation in operations for failure in _check_operation(target, operation)]
    assert not failures, f"{len(failures)} failing operations as {role}:\n" + "\n".join(failures)


@pytest.mark.parametrize("role", ROLES)
def test_stateful_sequences_answer_as_documented(app: Flask, session: Session, admin: User, seed, role: str):
    target = _target(app, session, admin, seed, role)
    machine = target.schema.as_state_machine()
    # No links are written in the document; Schemathesis infers them (a response's ids feed
    # the path parameters of the operations that take them).
    assert target.schema.statistic.transitions.total > 1000

    calls: list[str] = []

    class Sequences(machine):  # type: ignore[misc,valid-type]
        """Schemathesis' state machine, calling as ``role`` and checking every answer."""

        def after_call(self, response: Any, case: Any) -> None:
            calls.append(f"{case.operation.label} {response.status_code}")

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            case.headers = {**(case.headers or {}), **target.headers}
            return {}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Sequences.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_RUNS,
            stateful_step_count=10,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
    assert len(calls) >= STATEFUL_RUNS, calls


# --- the findings, pinned ----------------------------------------------------------------


def test_the_findings_stay_fixed(app: Flask, session: Session, admin: User, seed):
    """What the fuzzing found, each proven directly (SQLite and PostgreSQL)."""
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {token_for(session, admin)}"}
    before = session.scalar(select(func.count()).select_from(IntakePriceList))
    # An id beyond the database's integer range: 422, not a server error, nothing stored.
    response = client.post(
        "/api/v1/intake/price-lists",
        json={"code": "PL1", "name": "List", "customer_id": 10**30},
        headers=bearer,
    )
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["code"] == "out_of_range", response.get_json()
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(IntakePriceList)) == before
    # An action that takes no input refuses an unknown field instead of ignoring it.
    response = client.post("/api/v1/notifications/read-all", json={"al": True}, headers=bearer)
    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == {"al": ["Unknown field."]}
    assert client.post("/api/v1/notifications/read-all", json={}, headers=bearer).status_code == 200
    assert client.post("/api/v1/notifications/read-all", headers=bearer).status_code == 200
    # Paging of the KPI report archive is validated.
    for query in ("offset=99999999999999999999", "limit=0", "limit=201", "offset=-1", "kind=weekly"):
        response = client.get(f"/api/v1/kpi/reports?{query}", headers=bearer)
        assert response.status_code == 422, query
    assert client.get("/api/v1/kpi/reports?kind=daily&limit=200", headers=bearer).status_code == 200
    # The document's numeric bounds are numbers, and a setting's value type is anyOf.
    spec = client.get("/api/v1/openapi.json").get_json()
    quantity = next(p for p in spec["paths"]["/api/v1/intake/price"]["get"]["parameters"] if p["name"] == "quantity")
    assert quantity["schema"]["type"] == "number" and quantity["schema"]["minimum"] == 0
    assert quantity["schema"]["default"] == 1
    setting = spec["components"]["schemas"]["SettingOut"]["properties"]
    assert "anyOf" in setting["value"] and "anyOf" in setting["default"]
