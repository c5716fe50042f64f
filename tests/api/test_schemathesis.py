"""Property-based run over /openapi.json: whatever schemathesis sends, no 5xx.

The app runs under uvicorn in a thread (its own event loop, lifespan and a worker), on
PostgreSQL and the Temporal dev server; requests carry an operator's bearer token so the
staff calls are exercised past authentication. Bounded: a few examples per operation.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from sqlalchemy import delete
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from api.auth import make_token
from core.db import make_sync_engine
from core.settings import Settings
from schema.tables import LoginAttempt, User
from tests.api.conftest import SECRET, temporal_address


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Server:
    def __init__(self, app_settings: Settings, port: int) -> None:
        self.settings = app_settings
        self.port = port
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        import uvicorn

        from app import create_app
        from core.db import Database
        from core.temporal import connect
        from worker import build_worker

        self.loop = asyncio.get_running_loop()
        client = await connect(self.settings)
        db = Database(self.settings.database_url, pool_size=5)
        config = uvicorn.Config(create_app(self.settings), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        async with build_worker(client, self.settings, db):
            await self.server.serve()
        await db.dispose()

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail("the API did not start")

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="module")
def served(pg_url: str, temporal_env: WorkflowEnvironment, people,
           tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, Callable[[], str]]]:
    var = Path(tmp_path_factory.mktemp("schemathesis"))
    app_settings = Settings(CANHBAO_DEMO=True, DATABASE_URL=pg_url, CANHBAO_VAR_DIR=var,
                            TEMPORAL_ADDRESS=temporal_address(temporal_env),
                            CANHBAO_TASK_QUEUE="tq-schemathesis", CANHBAO_SECRET_KEY=SECRET)
    engine = make_sync_engine(pg_url)
    with Session(engine) as s:
        operator = s.exec(select(User).where(User.username == "t.operator")).one()
    engine.dispose()
    server = _Server(app_settings, _free_port())
    server.start()
    try:
        # A token per call: `POST /auth/logout` revokes the one it is called with.
        yield f"http://127.0.0.1:{server.port}", lambda: make_token(app_settings, operator)
    finally:
        server.stop()
        # Its random sign-ins failed from 127.0.0.1: they must not slow later tests' logins.
        engine = make_sync_engine(pg_url)
        with engine.begin() as conn:
            conn.execute(delete(LoginAttempt))
        engine.dispose()


def test_no_server_errors(served: tuple[str, Callable[[], str]]) -> None:
    """Every operation, positive and negative generation, a few examples each."""
    base, token_for_call = served
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=8, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck),
                      phases=[Phase.explicit, Phase.generate])
            def run(case) -> None:
                nonlocal calls
                if case.path == "/api/v1/events":
                    case.query = {**(case.query or {}), "max_seconds": 0.2}
                calls += 1
                response = case.call(base_url=base, timeout=30,
                                     headers={"Authorization": f"Bearer {token_for_call()}"})
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} {case.query} "
                                    f"{str(case.body)[:200]} -> {response.status_code} "
                                    f"{response.text[:300]}")

            try:
                run()
            except Unsatisfiable:  # nothing to break in an operation without inputs
                assert mode is GenerationMode.NEGATIVE
    assert calls > 100
    assert not failures, "\n".join(failures[:20])
