"""The phases of the fault suite (`python -m bench.fault_report`).

Each fault is one phase on the same stack: `n` citizen reports, each taken by staff
through the whole lifecycle, `c` at a time (bench.faults.load), while the fault is
injected at random moments (bench.faults.inject). After the load the phase waits for the
read model to settle, then measures every accepted incident against Temporal
(bench.faults.measure); the figures and their table are bench.faults.figures'.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.faults.figures import PhaseResult
from bench.faults.inject import heal, inject_faults
from bench.faults.load import Api, Record, Uploads, lifecycle, photo_bytes
from bench.faults.measure import measure
from bench.faults.stack import FaultStack, Proc, Staff
from core.db import Database

FAULTS = ("none", "temporal-frozen", "temporal-killed", "worker-killed", "db-unreachable",
          "api-killed-mid-upload", "two-apis-two-workers")


async def run_phase(stack: FaultStack, staff: Staff, client: Client, db: Database,
                    fault: str, n: int, concurrency: int, seed: int) -> PhaseResult:
    """One fault phase: load with the fault injected, then the measures."""
    rng = random.Random(seed)
    result = PhaseResult(fault=fault, lifecycles=n)
    extra: list[Proc] = []
    if fault == "two-apis-two-workers":
        extra = [await asyncio.to_thread(stack.add_api), await asyncio.to_thread(stack.add_worker)]
    api = Api(stack, result)
    uploads = Uploads()
    photo = photo_bytes((240, 180), seed)
    slow = fault == "api-killed-mid-upload"
    sem = asyncio.Semaphore(concurrency)
    stop = asyncio.Event()
    t0 = time.monotonic()

    async def one(i: int) -> Record:
        async with sem:
            return await lifecycle(api, staff, fault, i, random.Random(seed * 1000 + i), photo,
                                   uploads, slow)

    injector = asyncio.create_task(inject_faults(fault, stack, rng, uploads, stop, result))
    try:
        records = await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        stop.set()
        await injector
        await api.aclose()
    await heal(stack)
    if fault == "api-killed-mid-upload":
        result.details.insert(0, f"{uploads.killed_mid_upload} of {result.injections} "
                                 "API kills cut an upload short")
    await measure(client, db, list(records), result)
    for proc in extra:
        await asyncio.to_thread(stack.remove, proc)
    result.seconds = time.monotonic() - t0
    return result


async def run_suite(base_url: str, workdir: Path, wards_geojson: Path, faults: list[str],
                    n: int | dict[str, int], concurrency: int, seed: int = 1,
                    log: Callable[[str], None] = print) -> list[PhaseResult]:
    """Start a stack, run each fault phase in turn (`n` lifecycles, or `n[fault]`), stop
    everything; the results."""
    stack = FaultStack(base_url=base_url, workdir=workdir)
    results: list[PhaseResult] = []
    try:
        staff = await asyncio.to_thread(stack.start, wards_geojson)
        client = await Client.connect(stack.temporal_address,
                                      data_converter=pydantic_data_converter)
        db = Database(stack.direct_url, pool_size=4)
        try:
            for k, fault in enumerate(faults):
                size = n[fault] if isinstance(n, dict) else n
                log(f"[fault-report] {fault}: {size} lifecycles, {concurrency} at a time")
                result = await run_phase(stack, staff, client, db, fault, size, concurrency,
                                         seed * 100 + k)
                log(f"[fault-report] {fault}: done in {result.seconds:.0f} s "
                    f"(lost {result.lost}, dup {result.duplicated}, diff {result.differences}, "
                    f"5xx {result.other_5xx}, 503 {result.http_503})")
                results.append(result)
        finally:
            await db.dispose()
    finally:
        await asyncio.to_thread(stack.close)
    return results
