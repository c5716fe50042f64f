"""Fixtures for workflow tests: settings and a worker on a fresh task queue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from core.db import Database
from core.settings import Settings
from tests.workflows.factories import running_worker


@pytest_asyncio.fixture
async def dev_client(temporal_env: WorkflowEnvironment, pg_db: Database,
                     make_settings: Callable[..., Settings],
                     task_queue: str) -> AsyncIterator[Client]:
    """A client of the dev server with a worker running on `task_queue`."""
    async with running_worker(temporal_env.client, make_settings(), pg_db, task_queue):
        yield temporal_env.client


@pytest_asyncio.fixture
async def skip_client(time_skipping_env: WorkflowEnvironment, pg_db: Database,
                      make_settings: Callable[..., Settings],
                      task_queue: str) -> AsyncIterator[Client]:
    """A client of a time-skipping server with a worker running on `task_queue`."""
    async with running_worker(time_skipping_env.client, make_settings(), pg_db, task_queue):
        yield time_skipping_env.client
