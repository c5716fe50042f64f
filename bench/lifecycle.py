"""Drive N incidents through the whole lifecycle at concurrency C and print the figures.

    TEMPORAL_ADDRESS=127.0.0.1:7233 DATABASE_URL=postgresql+psycopg://... \\
        .venv/bin/python -m bench.lifecycle -n 200 -c 20 [--worker] [--prepare]

Each incident: start, verify, classify, route, acknowledge, arrive, close, then wait for the
workflow to complete. Every update returns only after its event is in SQL, so a transition's
latency includes the projection; it returns a small `ActionResult` (IncidentWorkflow),
and the proposed unit is read with the `case` query (not timed). For scale, the same run
measures a bare no-op workflow (start + one signal, own in-process worker) at the same
concurrency, and prints the ratios. After the timed phases it describes every measured
incident and prints its history length (events) and size (bytes), p50 and max.

--worker runs an incident worker in this process on a fresh task queue (otherwise the
stack's worker on CANHBAO_TASK_QUEUE does the work); --prepare migrates and seeds the
database first (wards, units). --rounds R splits the N incidents into R slices, so a
repeat on a shared machine is averaged over time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from core.db import Database
from core.settings import Settings
from core.temporal import connect
from schema.ids import workflow_id
from schema.payloads import (
    AcknowledgeInput,
    Actor,
    ArriveInput,
    ClassifyInput,
    CloseInput,
    IncidentInput,
    Location,
    RouteInput,
    UnitRef,
    VerifyInput,
)
from schema.states import Category, Outcome, Priority, Role
from workflows.incident import IncidentWorkflow

TRANSITIONS = ("start", "verify", "classify", "route", "acknowledge", "arrive", "close",
               "complete")
OPERATOR = Actor(username="bench.operator", role=Role.OPERATOR)
FALLBACK_UNIT = UnitRef(id="bench-unit", name="Đội bench", kind="rapid_response")


@workflow.defn(sandboxed=False)
class NoopWorkflow:
    """The floor: a workflow that waits for one signal and returns."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.signal
    def poke(self) -> None:
        self.done = True


def settings_from_env() -> Settings:
    demo = "CANHBAO_SECRET_KEY" not in os.environ
    return Settings(CANHBAO_DEMO=True) if demo else Settings()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def run_pool(n: int, concurrency: int, job: Callable[[int], Awaitable[None]]) -> float:
    """Run job(0..n-1) with at most `concurrency` at a time; return the wall time."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await job(i)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - t0


async def noop_phase(client: Client, n: int, concurrency: int) -> tuple[float, list[float]]:
    queue = f"bench-noop-{uuid.uuid4()}"
    latencies: list[float] = []

    async def job(i: int) -> None:
        t0 = time.perf_counter()
        handle = await client.start_workflow(NoopWorkflow.run, id=f"{queue}-{i}",
                                             task_queue=queue)
        await handle.signal(NoopWorkflow.poke)
        latencies.append(time.perf_counter() - t0)
        # Wait for completion too (as the incidents are), so no bench workflow is left
        # running in the stack's Temporal once the worker stops.
        await handle.result()

    async with Worker(client, task_queue=queue, workflows=[NoopWorkflow]):
        wall = await run_pool(n, concurrency, job)
    return wall, latencies


def random_input(settings: Settings) -> IncidentInput:
    rng = random.Random()
    incident_id = str(uuid.uuid4())
    return IncidentInput(
        incident_id=incident_id, tracking_code="BENCH-" + incident_id[:8].upper(),
        category=rng.choice(list(Category)), description="Bench: tin báo thử nghiệm",
        location=Location(lat=rng.uniform(10.72, 10.86), lon=rng.uniform(106.62, 106.78)),
        received_at=datetime.now(UTC), source="bench", sla_scale=settings.sla_scale,
    )


async def lifecycle_phase(client: Client, settings: Settings, task_queue: str, n: int,
                          concurrency: int, handles: list[WorkflowHandle] | None = None,
                          ) -> tuple[float, dict[str, list[float]]]:
    """Run n incidents through the lifecycle; return the wall time (s) and the latencies
    (s) of each step. Each finished incident's handle is appended to `handles`."""
    timings: dict[str, list[float]] = defaultdict(list)

    async def timed(name: str, call: Awaitable[Any]) -> Any:
        t0 = time.perf_counter()
        result = await call
        timings[name].append(time.perf_counter() - t0)
        return result

    async def job(_: int) -> None:
        inp = random_input(settings)
        handle = await timed("start", client.start_workflow(
            IncidentWorkflow.run, inp, id=workflow_id(inp.incident_id), task_queue=task_queue))
        await timed("verify", handle.execute_update(IncidentWorkflow.verify,
                                                    VerifyInput(actor=OPERATOR)))
        await timed("classify", handle.execute_update(
            IncidentWorkflow.classify,
            ClassifyInput(actor=OPERATOR, category=inp.category, priority=Priority.HIGH)))
        case = await handle.query(IncidentWorkflow.case)  # not timed: the API reads it too
        unit = case.proposed_unit or FALLBACK_UNIT
        officer = Actor(username="bench.officer", role=Role.OFFICER, unit_id=unit.id)
        await timed("route", handle.execute_update(IncidentWorkflow.route,
                                                   RouteInput(actor=OPERATOR, unit=unit)))
        await timed("acknowledge", handle.execute_update(IncidentWorkflow.acknowledge,
                                                         AcknowledgeInput(actor=officer)))
        await timed("arrive", handle.execute_update(IncidentWorkflow.arrive,
                                                    ArriveInput(actor=officer)))
        await timed("close", handle.execute_update(IncidentWorkflow.close, CloseInput(
            actor=officer, outcome=Outcome.RESOLVED, summary="Bench")))
        await timed("complete", handle.result())
        if handles is not None:
            handles.append(handle)

    wall = await run_pool(n, concurrency, job)
    return wall, timings


def prepare(settings: Settings) -> None:
    from core import seed
    from core.db import make_sync_engine
    from core.migrate import upgrade

    upgrade(settings.database_url)
    engine = make_sync_engine(settings.database_url)
    try:
        seed.import_wards(engine, settings.wards_geojson)
        seed.ensure_units(engine)
    finally:
        engine.dispose()


async def history_sizes(handles: list[WorkflowHandle]) -> tuple[list[int], list[int]]:
    """The history length (events) and size (bytes) of each finished incident's last run,
    as the server counts them (describe; the whole run, including the start input)."""
    lengths: list[int] = []
    sizes: list[int] = []
    sem = asyncio.Semaphore(10)

    async def one(handle: WorkflowHandle) -> None:
        async with sem:
            desc = await handle.describe()
        lengths.append(desc.history_length)
        sizes.append(desc.raw_info.history_size_bytes)

    await asyncio.gather(*(one(h) for h in handles))
    return lengths, sizes


def report(title: str, n: int, wall: float, timings: dict[str, list[float]],
           noop_wall: float, noop_lat: list[float]) -> float:
    """Print one lifecycle table; return incidents/s."""
    noop_rate, rate, noop_p50 = n / noop_wall, n / wall, percentile(noop_lat, 50)
    print(title)
    print(f"{'step':<12} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'x noop p50':>11}")
    for name in TRANSITIONS:
        values = timings.get(name, [])
        p50 = percentile(values, 50)
        print(f"{name:<12} {p50 * 1000:8.1f} {percentile(values, 99) * 1000:8.1f} "
              f"{statistics.fmean(values) * 1000:8.1f} {p50 / noop_p50:11.1f}")
    print(f"incidents/s (full lifecycle, 6 updates + start + completion): {rate:.2f}")
    print(f"ratio noop workflows/s : incidents/s = {noop_rate / rate:.1f}")
    return rate


async def main(args: argparse.Namespace) -> None:
    settings = settings_from_env()
    if args.prepare:
        prepare(settings)
    client = await connect(settings)
    modes: dict[str, str] = {"stack": settings.task_queue}
    async with AsyncExitStack() as stack:
        if args.worker:
            from worker import build_worker

            db = Database.from_settings(settings)
            stack.push_async_callback(db.dispose)
            modes = {"in-process": f"bench-in-process-{uuid.uuid4()}"}
            await stack.enter_async_context(
                build_worker(client, settings, db, modes["in-process"]))
        # Warm up every path (connections, worker caches) before measuring.
        warm = min(args.concurrency, args.n)
        await noop_phase(client, warm, args.concurrency)
        for queue in modes.values():
            await lifecycle_phase(client, settings, queue, warm, args.concurrency)
        noop_wall, noop_lat = await noop_phase(client, args.n, args.concurrency)
        # With --rounds R the n incidents run in R slices of n/R; walls and timings add up.
        results: dict[str, tuple[float, dict[str, list[float]]]] = {
            mode: (0.0, defaultdict(list)) for mode in modes}
        handles: dict[str, list[WorkflowHandle]] = {mode: [] for mode in modes}
        for r in range(args.rounds):
            size = args.n // args.rounds + (1 if r < args.n % args.rounds else 0)
            for mode in modes:
                wall, timings = await lifecycle_phase(client, settings, modes[mode], size,
                                                      args.concurrency, handles[mode])
                total, merged = results[mode]
                for name, values in timings.items():
                    merged[name].extend(values)
                results[mode] = (total + wall, merged)
        histories = {mode: await history_sizes(hs) for mode, hs in handles.items()}

    print(f"CanhBao lifecycle bench: N={args.n} C={args.concurrency} "
          f"temporal={settings.temporal_address} db={settings.database_url.split('@')[-1]}")
    print(f"noop start+signal: p50 {percentile(noop_lat, 50) * 1000:.1f} ms, "
          f"p99 {percentile(noop_lat, 99) * 1000:.1f} ms, {args.n / noop_wall:.1f} workflows/s")
    for mode, (wall, timings) in results.items():
        report(f"-- worker: {mode}", args.n, wall, timings, noop_wall, noop_lat)
        lengths, sizes = histories[mode]
        print(f"history per incident: {statistics.median(lengths):.0f} events "
              f"(max {max(lengths)}), {statistics.median(sizes):.0f} bytes "
              f"(max {max(sizes)}, {statistics.fmean(sizes) / 1024:.1f} KiB mean)")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="incidents (default 200)")
    parser.add_argument("-c", "--concurrency", type=int, default=20, help="default 20")
    parser.add_argument("--worker", action="store_true",
                        help="run an incident worker in this process on a fresh task queue")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the n incidents in this many slices (default 1)")
    parser.add_argument("--prepare", action="store_true",
                        help="migrate and seed the database (wards, units) first")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
