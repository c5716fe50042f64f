"""The Temporal worker: runs IncidentWorkflow and the activities that write the read model.

`python worker.py` connects with the settings from the environment and runs until SIGINT or
SIGTERM. Run as many as needed on the same task queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import timedelta

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from activities.duplicates import DuplicateActivities
from activities.geo import GeoActivities
from activities.notify import NotifyActivities
from activities.projection import ProjectionActivities
from activities.push import build_push_sender, push_forever
from core.db import Database
from core.geo import WardIndex, get_ward_index
from core.logging import configure_logging
from core.settings import Settings, get_settings
from core.temporal import connect
from workflows.incident import IncidentWorkflow

log = structlog.get_logger(__name__)


def build_activities(settings: Settings, db: Database,
                     wards: WardIndex | None = None) -> list:
    """Every activity the workflow calls, bound to its dependencies."""
    if wards is None:
        wards = get_ward_index(settings.wards_geojson)
    projection = ProjectionActivities(db)
    notify = NotifyActivities(db)
    geo = GeoActivities(settings, db, wards)
    duplicates = DuplicateActivities(settings, db)
    return [
        projection.project,
        notify.raise_alert,
        notify.remind_alert,
        notify.resolve_alerts,
        notify.publish_public_alert,
        geo.locate_ward,
        duplicates.find_duplicates,
    ]


def build_worker(client: Client, settings: Settings, db: Database,
                 task_queue: str | None = None,
                 graceful_shutdown: timedelta = timedelta(0)) -> Worker:
    """A worker for the incident workflow and all its activities. On shutdown, running
    activities get `graceful_shutdown` to finish before they are cancelled (they are
    idempotent, so a cancelled one is simply retried elsewhere)."""
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[IncidentWorkflow],
        activities=build_activities(settings, db),
        max_concurrent_activities=max(10, settings.db_pool_size * 2),
        graceful_shutdown_timeout=graceful_shutdown,
    )


async def serve(settings: Settings) -> None:
    client = await connect(settings)
    db = Database.from_settings(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = build_worker(client, settings, db, graceful_shutdown=timedelta(seconds=10))
    # Reporters' Web Push notifications, queued by the projection (activities/push.py).
    sender = build_push_sender(settings, db)
    pushing = asyncio.create_task(push_forever(sender), name="web-push") if sender else None
    try:
        async with worker:
            log.info("worker running", task_queue=settings.task_queue,
                     temporal=settings.temporal_address, web_push=sender is not None)
            await stop.wait()
            log.info("worker stopping")
    finally:
        if pushing is not None:
            pushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pushing
        await db.dispose()


def main() -> None:
    settings = get_settings()
    configure_logging(settings)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
