"""Intake benchmark: concurrent citizens submitting reports, with and without a photo.

Prints reports/s and p50/p99 latency for each kind, next to two floors measured in the
same run with the same concurrency: a bare Temporal `start_workflow` (no HTTP, no SQL) and
a bare database transaction inserting one report and its outbox row (no HTTP, no Temporal).
The ratios say how much the API adds on top of the work it cannot avoid.

    python bench/intake.py                        # in-process app, own Temporal dev server
    python bench/intake.py --url http://127.0.0.1:8000 --temporal 127.0.0.1:7233

Database: DATABASE_URL (default: a temporary SQLite file, migrated and seeded).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", category=DeprecationWarning)  # sqlmodel's execute() notice
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import delete  # noqa: E402

from core.settings import Settings  # noqa: E402


def _photo() -> bytes:
    """A 200 KB "photo": a real JPEG header (the API reads its size) and random bytes."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (90, 90, 90)).save(buf, "JPEG")
    return buf.getvalue() + os.urandom(200 * 1024)


JPEG = _photo()
CENTRE = (10.7769, 106.7009)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    pos = (len(values) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


async def run_concurrent(n: int, concurrency: int,
                         one: Callable[[int], Awaitable[None]]) -> tuple[float, list[float]]:
    """Run `one(i)` n times, `concurrency` at a time; returns (wall seconds, latencies)."""
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def runner() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(runner() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def row(name: str, n: int, wall: float, lat: list[float]) -> dict[str, Any]:
    return {"name": name, "n": n, "rate": n / wall, "p50": pct(lat, 0.5) * 1000,
            "p99": pct(lat, 0.99) * 1000, "mean": statistics.fmean(lat) * 1000}


def report_body(i: int, attachments: list[str]) -> dict[str, Any]:
    return {"report_id": str(uuid.uuid4()), "category": "fire_explosion",
            "description": f"Khói lớn bốc lên từ dãy nhà (bench {i})",
            "location": {"lat": CENTRE[0] + (i % 50) * 1e-4, "lon": CENTRE[1], "accuracy_m": 20},
            "attachments": attachments}


class _Process:
    """Stops a child process like the async context managers are stopped."""

    def __init__(self, proc: Any) -> None:
        self.proc = proc

    async def __aexit__(self, *exc: Any) -> None:
        self.proc.terminate()
        await asyncio.to_thread(self.proc.wait, 30)


async def bench(args: argparse.Namespace) -> None:
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    from core.db import Database
    from schema.tables import Outbox, Report, utcnow

    env = None
    temporal = args.temporal
    if temporal == "start":
        from temporalio.testing import WorkflowEnvironment

        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
            data_converter=pydantic_data_converter, ui=False, dev_server_log_level="error")
        temporal = env.client.service_client.config.target_host
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        database_url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
        from core import seed
        from core.db import make_sync_engine
        from core.migrate import upgrade

        upgrade(database_url)
        engine = make_sync_engine(database_url)
        seed.import_wards(engine, Settings(CANHBAO_DEMO=True).wards_geojson)
        seed.ensure_units(engine)
        engine.dispose()
    settings = Settings(CANHBAO_DEMO=True, DATABASE_URL=database_url, TEMPORAL_ADDRESS=temporal,
                        CANHBAO_TASK_QUEUE=f"bench-{uuid.uuid4().hex[:8]}",
                        CANHBAO_VAR_DIR=Path(tempfile.mkdtemp()), CANHBAO_LOG_LEVEL="WARNING",
                        CANHBAO_DB_POOL_SIZE=args.concurrency)
    client = await Client.connect(temporal, data_converter=pydantic_data_converter)
    db = Database(database_url, pool_size=args.concurrency)
    closers: list[Any] = []
    if args.url:
        http = httpx.AsyncClient(base_url=args.url, timeout=60)
    else:
        from asgi_lifespan import LifespanManager

        from app import create_app

        app = create_app(settings)
        manager = LifespanManager(app)
        await manager.__aenter__()
        closers.append(manager)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                 base_url="http://bench", timeout=60)
        if args.worker == "inline":
            from worker import build_worker

            worker = build_worker(client, settings, db)
            await worker.__aenter__()
            closers.append(worker)
        elif args.worker == "process":
            import subprocess

            child_env = {**os.environ, "CANHBAO_DEMO": "1", "DATABASE_URL": database_url,
                   "TEMPORAL_ADDRESS": temporal, "CANHBAO_TASK_QUEUE": settings.task_queue,
                   "CANHBAO_LOG_LEVEL": "WARNING"}
            proc = subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=child_env,
                                    stdout=subprocess.DEVNULL)
            closers.append(_Process(proc))

    n, c = args.reports, args.concurrency
    results = []
    failures = 0

    async def plain(i: int) -> None:
        nonlocal failures
        r = await http.post("/api/v1/reports", json=report_body(i, []))
        failures += r.status_code != 202

    async def with_photo(i: int) -> None:
        nonlocal failures
        up = await http.post("/api/v1/attachments",
                             files={"file": ("photo.jpg", JPEG, "image/jpeg")})
        if up.status_code != 201:
            failures += 1
            return
        r = await http.post("/api/v1/reports",
                            json=report_body(i, [up.json()["attachment_id"]]))
        failures += r.status_code != 202

    noop_queue = f"bench-noop-{uuid.uuid4().hex[:8]}"
    started_ids: list[str] = []

    async def bare_start(i: int) -> None:
        wid = f"bench-noop-{uuid.uuid4()}"
        await client.start_workflow("BenchNoop", id=wid, task_queue=noop_queue)
        started_ids.append(wid)

    bench_ids: list[str] = []

    async def bare_insert(i: int) -> None:
        rid = str(uuid.uuid4())
        async with db.session() as s:
            s.add(Report(id=rid, tracking_code=f"B{uuid.uuid4().hex[:11]}",
                         tracking_token=uuid.uuid4().hex, payload={"bench": i},
                         source="bench"))
            await s.flush()
            s.add(Outbox(report_id=rid, started_at=utcnow()))
            await s.commit()
        bench_ids.append(rid)

    # Floors first, on a quiet system; then intake, whose workflows the worker runs
    # meanwhile (as in production).
    await run_concurrent(min(20, n), c, bare_insert)  # warm up connections
    await run_concurrent(min(20, n), c, bare_start)
    floors = []
    for name, fn in (("bare start_workflow", bare_start),
                     ("bare DB insert (report+outbox)", bare_insert)):
        wall, lat = await run_concurrent(n, c, fn)
        floors.append(row(name, n, wall, lat))
    await run_concurrent(min(20, n), c, plain)  # warm up the app
    for name, fn, count in (("POST /reports (no photo)", plain, n),
                            ("upload 200 KB photo + POST /reports", with_photo, max(1, n // 2))):
        wall, lat = await run_concurrent(count, c, fn)
        results.append(row(name, count, wall, lat))
    results += floors

    print(f"\nintake benchmark: concurrency {c}, database "
          f"{'postgresql' if 'postgresql' in database_url else 'sqlite'}, "
          f"{'URL ' + args.url if args.url else 'in-process app'}"
          f"{'' if args.url else ', worker: ' + args.worker}; failures: {failures}")
    print(f"{'':40} {'n':>5} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for r in results:
        print(f"{r['name']:40} {r['n']:>5} {r['rate']:>8.1f} {r['p50']:>8.1f} {r['p99']:>8.1f}")
    plain_r, photo_r, start_r, insert_r = results
    print("\nratios (intake / floor):")
    for floor in (start_r, insert_r):
        print(f"  no photo vs {floor['name']}: throughput {plain_r['rate'] / floor['rate']:.2f}x, "
              f"p50 {plain_r['p50'] / floor['p50']:.1f}x, p99 {plain_r['p99'] / floor['p99']:.1f}x")
    print(f"  with photo vs no photo: throughput {photo_r['rate'] / plain_r['rate']:.2f}x, "
          f"p50 {photo_r['p50'] / plain_r['p50']:.1f}x")

    # Clean up what the floors left behind.
    async with db.session() as s:
        await s.execute(delete(Outbox).where(Outbox.report_id.in_(bench_ids)))
        await s.execute(delete(Report).where(Report.id.in_(bench_ids)))
        await s.commit()
    if env is None:
        for wid in started_ids:
            try:
                await client.get_workflow_handle(wid).terminate("bench")
            except Exception:  # noqa: BLE001 - best effort
                pass
    await http.aclose()
    for closer in reversed(closers):
        await closer.__aexit__(None, None, None)
    await db.dispose()
    if env is not None:
        await env.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--url", help="a running API; default: the app in-process")
    parser.add_argument("--temporal", default="start",
                        help="host:port of Temporal, or 'start' for an own dev server")
    parser.add_argument("--worker", choices=("process", "inline", "none"), default="process",
                        help="in-process app: run worker.py as its own process (default), "
                             "inside the benchmark's event loop, or not at all")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
