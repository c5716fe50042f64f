"""The app served for real over loopback HTTP (uvicorn in a thread, with its own event
loop, lifespan and worker), for the tests that must see what a client sees — a dropped
connection as well as a 500: tests/api/test_schemathesis.py and test_hostile_corpus.py."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete
from temporalio.testing import WorkflowEnvironment

from core.db import make_sync_engine
from core.settings import Settings
from schema.tables import LoginAttempt
from tests.api.conftest import SECRET, temporal_address


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """uvicorn serving create_app(settings) on 127.0.0.1:`port`, with a worker."""

    def __init__(self, app_settings: Settings, port: int) -> None:
        self.settings = app_settings
        self.port = port
        self.server: object | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        import uvicorn

        from app import create_app
        from core.db import Database
        from core.temporal import connect
        from worker import build_worker

        client = await connect(self.settings)
        db = Database(self.settings.database_url, pool_size=5)
        config = uvicorn.Config(create_app(self.settings), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        self.server = server
        async with build_worker(client, self.settings, db):
            await server.serve()
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
            self.server.should_exit = True  # type: ignore[attr-defined]
        self.thread.join(30)


@contextmanager
def serving(pg_url: str, temporal_env: WorkflowEnvironment, var: Path,
            task_queue: str) -> Iterator[tuple[str, Settings]]:
    """(base URL, settings) of the app served on a free port; stopped at the end, and the
    failed sign-ins it recorded from 127.0.0.1 forgotten (they must not slow later tests)."""
    app_settings = Settings(CANHBAO_DEMO=True, DATABASE_URL=pg_url, CANHBAO_VAR_DIR=var,
                            TEMPORAL_ADDRESS=temporal_address(temporal_env),
                            CANHBAO_TASK_QUEUE=task_queue, CANHBAO_SECRET_KEY=SECRET)
    server = Server(app_settings, free_port())
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}", app_settings
    finally:
        server.stop()
        engine = make_sync_engine(pg_url)
        with engine.begin() as conn:
            conn.execute(delete(LoginAttempt))
        engine.dispose()
