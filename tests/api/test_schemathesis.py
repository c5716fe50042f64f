"""Property-based runs over /openapi.json: whatever schemathesis sends, no 5xx.

The app is served for real (tests/api/served.py: uvicorn, lifespan, a worker, PostgreSQL,
the Temporal dev server). Two runs, each as an operator, an officer and a supervisor
(a fresh bearer token per call: `POST /auth/logout` revokes the one it is called with):
- every operation, positive and negative generation, a few examples each;
- the stateful run, which follows the OpenAPI links (api/openapi_links.py: a report's
  incident id into its detail and actions, its tracking token into tracking, ...).

Bounded for CI (about a minute on a loaded 2-core machine); CANHBAO_SCHEMATHESIS_SCALE=10
(or more) runs ten times the examples and scenario steps, for manual and fault runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import FlakyStrategyDefinition, Unsatisfiable
from schemathesis import GenerationMode
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from api.auth import make_token
from core.db import make_sync_engine
from schema.tables import User
from tests.api.served import serving

SCALE = max(1, int(os.environ.get("CANHBAO_SCHEMATHESIS_SCALE", "1")))
ROLES = {"operator": "t.operator", "officer": "t.officer.a", "supervisor": "t.supervisor"}


@pytest.fixture(scope="module")
def served(pg_url: str, temporal_env: WorkflowEnvironment, people: Any,
           tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, dict[str, Callable[[], str]]]]:
    var = Path(tmp_path_factory.mktemp("schemathesis"))
    with serving(pg_url, temporal_env, var, "tq-schemathesis") as (base, app_settings):
        engine = make_sync_engine(pg_url)
        with Session(engine) as s:
            users = {role: s.exec(select(User).where(User.username == name)).one()
                     for role, name in ROLES.items()}
        engine.dispose()
        yield base, {role: (lambda u=u: make_token(app_settings, u))
                     for role, u in users.items()}


def _server_error(case: Any, response: Any, role: str) -> str | None:
    """The line to report when `response` is a server error."""
    if response.status_code < 500:
        return None
    return (f"[{role}] {case.method} {case.formatted_path} {case.query} "
            f"{str(case.body)[:200]} -> {response.status_code} {response.text[:300]}")


def test_no_server_errors(served: tuple[str, dict[str, Callable[[], str]]]) -> None:
    """Every operation, positive and negative generation, a few examples each; the
    calls take turns among the roles."""
    base, tokens = served
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    calls = 0
    roles = list(ROLES)
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=5 * SCALE, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck),
                      phases=[Phase.explicit, Phase.generate])
            def run(case: Any) -> None:
                nonlocal calls
                if case.path == "/api/v1/events":
                    case.query = {**(case.query or {}), "max_seconds": 0.2}
                role = roles[calls % len(roles)]
                calls += 1
                response = case.call(base_url=base, timeout=30,
                                     headers={"Authorization": f"Bearer {tokens[role]()}"})
                failure = _server_error(case, response, role)
                if failure:
                    failures.append(failure)

            try:
                run()
            except Unsatisfiable:  # nothing to break in an operation without inputs
                assert mode is GenerationMode.NEGATIVE
    print(f"\nschemathesis over every operation: {calls} requests")  # noqa: T201
    assert calls > 100
    assert not failures, "\n".join(failures[:20])


def test_links_are_in_the_spec(served: tuple[str, dict[str, Callable[[], str]]]) -> None:
    base, _ = served
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    links = schema.raw_schema["paths"]["/api/v1/reports"]["post"]["responses"]["202"]["links"]
    assert {"GetIncident", "TakeAction", "Track"} <= set(links)


def test_stateful_no_server_errors(served: tuple[str, dict[str, Callable[[], str]]]) -> None:
    """Scenarios along the OpenAPI links (report → detail → actions, tracking → info /
    cancel, upload → content), each as one role, the roles taking turns: no 5xx."""
    base, tokens = served
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    calls = 0
    scenarios: dict[str, int] = dict.fromkeys(ROLES, 0)

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.role = list(ROLES)[sum(scenarios.values()) % len(ROLES)]
            scenarios[self.role] += 1

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            if case.path == "/api/v1/events":
                case.query = {**(case.query or {}), "max_seconds": 0.2}
            return {"base_url": base, "timeout": 30,
                    "headers": {"Authorization": f"Bearer {tokens[self.role]()}"}}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            nonlocal calls
            calls += 1
            failure = _server_error(case, response, self.role)
            if failure:
                failures.append(failure)

    try:
        Machine.run(settings=settings(max_examples=12 * SCALE, stateful_step_count=6 * SCALE,
                                      deadline=None, database=None, derandomize=True,
                                      suppress_health_check=list(HealthCheck)))
    except FlakyStrategyDefinition as exc:
        # The scenarios draw from what the server answered (ids, groups), which other
        # tests' data changes between examples; Hypothesis then stops generating. What
        # this test checks, a 5xx on any request sent, is read from `failures` below,
        # whichever way the run ended; it must still have sent enough requests.
        print(f"\nschemathesis stateful stopped early: {exc.__class__.__name__}")  # noqa: T201
    print(f"\nschemathesis stateful: {calls} requests in scenarios {scenarios}")  # noqa: T201
    assert calls > 10 and all(scenarios.values()), scenarios
    assert not failures, "\n".join(failures[:20])
