"""The faults of the fault suite, injected at random moments of a phase's load, and the
healing after it (a fault never outlives its phase).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from bench.faults.figures import PhaseResult
from bench.faults.load import Uploads
from bench.faults.stack import FaultStack, Proc

TARGET_INJECTIONS = 12  # faults injected in a phase of 36 lifecycles or more

Injector = Callable[[FaultStack, random.Random, Uploads], Awaitable[None]]


async def _temporal_frozen(stack: FaultStack, rng: random.Random, _: Uploads) -> None:
    assert stack.temporal is not None
    stack.temporal.freeze()
    try:
        await asyncio.sleep(rng.uniform(2, 6))
    finally:
        stack.temporal.thaw()


async def _temporal_killed(stack: FaultStack, rng: random.Random, _: Uploads) -> None:
    assert stack.temporal is not None
    await asyncio.to_thread(stack.temporal.kill)
    await asyncio.sleep(rng.uniform(0, 3))
    await asyncio.to_thread(stack.start_temporal)


async def _worker_killed(stack: FaultStack, rng: random.Random, _: Uploads) -> None:
    worker = rng.choice(stack.workers)
    await asyncio.to_thread(worker.kill)
    await asyncio.sleep(rng.uniform(0, 1))
    await asyncio.to_thread(worker.start)


async def _db_unreachable(stack: FaultStack, rng: random.Random, _: Uploads) -> None:
    assert stack.proxy is not None
    stack.proxy.cut()
    try:
        await asyncio.sleep(rng.uniform(2, 6))
    finally:
        stack.proxy.restore()


async def _api_killed_mid_upload(stack: FaultStack, rng: random.Random, uploads: Uploads
                                 ) -> None:
    deadline = time.monotonic() + 10
    while uploads.flowing == 0 and time.monotonic() < deadline:
        uploads.changed.clear()
        try:
            await asyncio.wait_for(uploads.changed.wait(), 1)
        except TimeoutError:
            pass
    await asyncio.sleep(rng.uniform(0.1, 0.6))
    uploads.killed_mid_upload += uploads.flowing > 0
    api: Proc = rng.choice(stack.apis)
    await asyncio.to_thread(stack.restart, api)


INJECTORS: dict[str, tuple[Injector | None, tuple[float, float]]] = {
    # fault: (inject once, (least, most) seconds after the stack's first 2xx answer since
    # the previous injection)
    "none": (None, (0, 0)),
    "temporal-frozen": (_temporal_frozen, (1, 6)),
    "temporal-killed": (_temporal_killed, (1, 8)),
    "worker-killed": (_worker_killed, (0, 4)),
    "db-unreachable": (_db_unreachable, (1, 6)),
    "api-killed-mid-upload": (_api_killed_mid_upload, (0, 3)),
    "two-apis-two-workers": (None, (0, 0)),
}


async def inject_faults(fault: str, stack: FaultStack, rng: random.Random, uploads: Uploads,
                        stop: asyncio.Event, result: PhaseResult) -> None:
    """Inject `fault` again and again until `stop`, each time after some work got done."""
    inject, (least, most) = INJECTORS[fault]
    if inject is None:
        return
    # About TARGET_INJECTIONS per phase (fewer for a small one): each one `spacing` 2xx
    # answers after the previous (a lifecycle gets 6 of them: report and five actions).
    target = max(3, min(TARGET_INJECTIONS, result.lifecycles // 3))
    spacing = max(1, result.lifecycles * 6 // target)
    while not stop.is_set():
        # Wait for the stack to get work done since the last injection (a process takes
        # seconds to start on a loaded machine: faster kills would only be a crash loop),
        # then a random while, so the fault lands at a random point of the work.
        seen = result.progress
        while result.progress < seen + spacing and not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except TimeoutError:
                pass
        try:
            await asyncio.wait_for(stop.wait(), rng.uniform(least, most))
            return
        except TimeoutError:
            pass
        await inject(stack, rng, uploads)
        result.injections += 1


async def heal(stack: FaultStack) -> None:
    """Every part running again after a phase (a fault never outlives its phase)."""
    if stack.proxy is not None:
        stack.proxy.restore()
    if stack.temporal is not None:
        if stack.temporal.frozen:
            stack.temporal.thaw()
        if not stack.temporal.alive:
            await asyncio.to_thread(stack.start_temporal)
    for proc in [*stack.workers, *stack.apis]:
        if not proc.alive:
            proc.start()
    for proc in stack.apis:
        await asyncio.to_thread(stack.wait_api, proc)
