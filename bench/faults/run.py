"""The load, the faults and the measures of the fault suite.

Each fault is one phase on the same stack: `n` citizen reports (one in three with a
photo), each taken by staff through verify → route → acknowledge → arrive → close, `c` at
a time, while the fault is injected at random moments. Clients retry like real ones:
after a network error or a 5xx the same request goes again (the same `report_id`, the
same `Idempotency-Key`), across the API processes in turn. After the load the phase waits
for the read model to settle, then measures every accepted incident against Temporal
(`bench.faults.compare`).

Figures per phase (`PhaseResult`): load (reports, actions sent), accepted (2xx answers),
reached workflows, lost (accepted but no workflow, no read-model row, or an accepted
action whose event is not in the history), duplicated (a report stored or started twice,
an event recorded twice), differences between SQL and history, and the 5xx answers by
endpoint and status (503, "try again", is counted apart from other 5xx).
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import func, select, text
from sqlmodel import col
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.faults.compare import Difference, compare_incidents, run_histories
from bench.faults.stack import WARDS, FaultStack, Proc, Staff
from core.db import Database
from core.settings import ROOT
from schema.states import RECEIVE_EVENT
from schema.tables import Incident, Outbox

# Phases whose 5xx answers are known and not handled yet. Each entry says why and where
# it is being fixed; remove the entry when that lands, and the suite holds it to 0.
KNOWN_5XX: dict[str, str] = {}

FAULTS = ("none", "temporal-frozen", "temporal-killed", "worker-killed", "db-unreachable",
          "api-killed-mid-upload", "two-apis-two-workers")
LIFECYCLE = ("verify", "route", "acknowledge", "arrive", "close")
TARGET_INJECTIONS = 12  # faults injected in a phase of 36 lifecycles or more
REQUEST_DEADLINE_S = 120.0  # a client keeps retrying one request this long
VISIBLE_DEADLINE_S = 120.0  # and waits this long for its report to reach the console


def photo_bytes(size: tuple[int, int], seed: int) -> bytes:
    """A real JPEG of random noise (so it does not compress away), `size` pixels."""
    rng = random.Random(seed)
    img = Image.frombytes("RGB", size, bytes(rng.getrandbits(8) for _ in range(
        size[0] * size[1] * 3)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@dataclass
class PhaseResult:
    """The figures of one fault phase (see the module docstring)."""

    fault: str
    lifecycles: int
    reports_sent: int = 0
    actions_sent: int = 0
    reports_accepted: int = 0
    actions_accepted: int = 0
    reached: int = 0
    lost: int = 0
    duplicated: int = 0
    differences: int = 0
    events_compared: int = 0
    http_5xx: Counter[str] = field(default_factory=Counter)
    http_503: int = 0
    network_errors: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    gave_up: int = 0
    completed: int = 0
    injections: int = 0
    progress: int = 0  # 2xx answers so far (faults wait for some between injections)
    seconds: float = 0.0
    details: list[str] = field(default_factory=list)

    @property
    def other_5xx(self) -> int:
        """5xx answers other than 503."""
        return sum(self.http_5xx.values()) - self.http_503

    @property
    def known_5xx(self) -> str | None:
        return KNOWN_5XX.get(self.fault)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["http_5xx"] = dict(self.http_5xx)
        out["refused"] = dict(self.refused)
        out["other_5xx"] = self.other_5xx
        out["known_5xx"] = self.known_5xx
        return out


class Api:
    """A retrying HTTP client over the API processes (taken in turn)."""

    def __init__(self, stack: FaultStack, result: PhaseResult) -> None:
        self.stack = stack
        self.result = result
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(60, connect=3))
        self._turn = 0

    def url(self) -> str:
        apis = self.stack.apis
        self._turn += 1
        return f"http://127.0.0.1:{apis[self._turn % len(apis)].port}"

    async def call(self, kind: str, method: str, path: str, *, retry_4xx: tuple[int, ...] = (),
                   body: Callable[[], dict[str, Any]] | None = None,
                   **kwargs: Any) -> tuple[httpx.Response | None, int]:
        """Send until an answer that is not a 5xx (or one of `retry_4xx`), or until the
        deadline; returns (last answer or None, attempts). `body()` makes the keyword
        arguments afresh for each attempt (a streamed upload cannot be sent twice)."""
        deadline = time.monotonic() + REQUEST_DEADLINE_S
        attempts, pause = 0, 0.2
        answer: httpx.Response | None = None
        while time.monotonic() < deadline:
            attempts += 1
            args = {**kwargs, **(body() if body else {})}
            try:
                answer = await self.http.request(method, self.url() + path, **args)
            except httpx.TransportError:
                self.result.network_errors += 1
                answer = None
            else:
                if answer.status_code >= 500:
                    code = _error_code(answer)
                    self.result.http_5xx[f"{kind} {answer.status_code} {code}"] += 1
                    if answer.status_code == 503:
                        self.result.http_503 += 1
                elif answer.status_code not in retry_4xx:
                    if answer.status_code < 300:
                        self.result.progress += 1
                    return answer, attempts
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 2.0)
        return answer, attempts

    async def aclose(self) -> None:
        await self.http.aclose()


def _error_code(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("error", ""))
    except ValueError:
        return ""


@dataclass
class Record:
    """What one lifecycle's client saw."""

    report_id: str
    description: str
    accepted: bool = False
    actions: list[str] = field(default_factory=list)  # accepted with a 2xx
    completed: bool = False


class Uploads:
    """Counts uploads whose bytes are flowing (the API-kill fault waits for one)."""

    def __init__(self) -> None:
        self.flowing = 0
        self.changed = asyncio.Event()
        self.killed_mid_upload = 0  # API kills that cut an upload short


def _multipart(data: bytes, uploads: Uploads, chunk: int, delay: float
               ) -> Callable[[], dict[str, Any]]:
    """Keyword arguments for one streamed multipart upload of `data`, made afresh per
    attempt; `delay` seconds between chunks of `chunk` bytes."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"anh.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    whole = head + data + tail

    def make() -> dict[str, Any]:
        async def stream() -> AsyncIterator[bytes]:
            uploads.flowing += 1
            uploads.changed.set()
            try:
                for i in range(0, len(whole), chunk):
                    yield whole[i:i + chunk]
                    if delay:
                        await asyncio.sleep(delay)
            finally:
                uploads.flowing -= 1

        return {"content": stream(), "headers": {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(whole))}}
    return make


async def lifecycle(api: Api, staff: Staff, fault: str, i: int, rng: random.Random,
                    photo: bytes, uploads: Uploads, slow_upload: bool) -> Record:
    """One citizen report taken through the whole lifecycle by staff."""
    ward = WARDS[i % len(WARDS)]
    place = staff.wards[ward]
    rec = Record(report_id=str(uuid.uuid4()),
                 description=f"Fault suite {fault} #{i}: giật túi xách {uuid.uuid4().hex[:8]}")
    res = api.result
    attachments: list[str] = []
    if i % 3 == 0:
        chunk, delay = (4096, 0.05) if slow_upload else (len(photo) + 1024, 0.0)
        answer, _ = await api.call("upload", "POST", "/api/v1/attachments",
                                   body=_multipart(photo, uploads, chunk, delay))
        if answer is not None and answer.status_code == 201:
            attachments.append(answer.json()["attachment_id"])
        else:
            res.details.append(f"#{i} upload: {answer.status_code if answer else 'no answer'}")
    report = {"report_id": rec.report_id, "category": "crime", "description": rec.description,
              "location": {"lat": place["lat"] + rng.uniform(-1e-4, 1e-4),
                           "lon": place["lon"] + rng.uniform(-1e-4, 1e-4), "accuracy_m": 20},
              "reporter": {"name": "Nguyễn Văn Thử", "phone": "0912 345 678"},
              "attachments": attachments}
    res.reports_sent += 1
    answer, _ = await api.call("report", "POST", "/api/v1/reports", json=report)
    if answer is None or answer.status_code != 202:
        res.refused[f"report {answer.status_code if answer else 'gave up'}"] += 1
        res.gave_up += answer is None
        return rec
    rec.accepted = True
    res.reports_accepted += 1
    iid = answer.json()["incident_id"]
    operator = {"Authorization": f"Bearer {staff.operator}"}
    officer = {"Authorization": f"Bearer {staff.officers[ward]}"}
    # The console shows it once the workflow has projected it.
    deadline = time.monotonic() + VISIBLE_DEADLINE_S
    while True:
        seen, _ = await api.call("detail", "GET", f"/api/v1/incidents/{iid}", headers=operator)
        if seen is not None and seen.status_code == 200:
            break
        if time.monotonic() > deadline:
            res.gave_up += 1
            res.details.append(f"#{i} {iid} never reached the console")
            return rec
        await asyncio.sleep(0.3)
    steps: list[tuple[str, dict[str, str], dict[str, Any]]] = [
        ("verify", operator, {}), ("route", operator, {"ward_code": place["code"]}),
        ("acknowledge", officer, {}), ("arrive", officer, {}),
        ("close", officer, {"outcome": "resolved", "summary": "Đã xử lý xong"})]
    for action, who, body in steps:
        res.actions_sent += 1
        headers = {**who, "Idempotency-Key": str(uuid.uuid4())}
        answer, attempts = await api.call(action, "POST",
                                          f"/api/v1/incidents/{iid}/actions/{action}",
                                          json=body, headers=headers)
        if answer is not None and answer.status_code == 200:
            rec.actions.append(action)
            res.actions_accepted += 1
            continue
        status = answer.status_code if answer is not None else "gave up"
        if answer is not None and attempts > 1 and answer.status_code == 409:
            # A retry of an action the first attempt did (its answer was lost): the case
            # has moved on. Confirm from the incident and go on.
            seen, _ = await api.call("detail", "GET", f"/api/v1/incidents/{iid}",
                                     headers=operator)
            state = seen.json().get("state") if seen is not None and seen.status_code == 200 \
                else None
            if state in _AFTER[action]:
                res.refused[f"{action} 409 after retry (done by an earlier attempt)"] += 1
                continue
        res.refused[f"{action} {status} {_error_code(answer) if answer else ''}".strip()] += 1
        res.gave_up += answer is None
        res.details.append(f"#{i} {iid} {action}: {status} "
                           f"{answer.text[:200] if answer is not None else ''}")
        return rec
    rec.completed = True
    res.completed += 1
    return rec


_AFTER = {"verify": {"verified", "routed", "acknowledged", "on_scene", "closed"},
          "route": {"routed", "acknowledged", "on_scene", "closed"},
          "acknowledge": {"acknowledged", "on_scene", "closed"},
          "arrive": {"on_scene", "closed"}, "close": {"closed"}}


# --- faults ------------------------------------------------------------------------------
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


async def _inject(fault: str, stack: FaultStack, rng: random.Random, uploads: Uploads,
                  stop: asyncio.Event, result: PhaseResult) -> None:
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


# --- convergence and measures --------------------------------------------------------------
async def _settled(db: Database, records: list[Record]) -> bool:
    ids = [r.report_id for r in records if r.accepted]
    if not ids:
        return True
    async with db.session() as s:
        pending = (await s.execute(select(func.count()).select_from(Outbox).where(
            col(Outbox.report_id).in_(ids), col(Outbox.started_at).is_(None)))).scalar_one()
        rows = {i.id: i for i in (await s.execute(select(Incident).where(
            col(Incident.id).in_(ids)))).scalars()}
    if pending or len(rows) < len(ids):
        return False
    return all(rows[r.report_id].state == "closed" for r in records
               if r.accepted and r.completed)


async def measure(client: Client, db: Database, records: list[Record], result: PhaseResult,
                  settle_s: float = 120) -> list[Difference]:
    """Wait for the read model to settle (at most `settle_s`), then fill the measures."""
    deadline = time.monotonic() + settle_s
    while not await _settled(db, records) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    accepted = [r for r in records if r.accepted]
    for attempt in range(3):
        compared = await compare_incidents(client, db, [r.report_id for r in accepted])
        diffs = [d for _, found in compared.values() for d in found]
        if not diffs or attempt == 2:
            break
        await asyncio.sleep(3)  # a write still on its way: look again
    result.reached = sum(1 for h, _ in compared.values() if h.runs > 0)
    # Events (and incidents rows) that differ in any column, counted once each.
    result.differences = len({(d.incident_id, d.seq, d.field if d.seq is None else "")
                              for d in diffs})
    result.events_compared = sum(len(h.events) for h, _ in compared.values())
    lost = duplicated = 0
    async with db.session() as s:
        rows = {str(i) for i in (await s.execute(select(col(Incident.id)).where(
            col(Incident.id).in_([r.report_id for r in accepted])))).scalars()}
        stored = Counter(d for (d,) in (await s.execute(text(
            "select payload->>'description' from reports where payload->>'description' "
            "like :p"), {"p": f"Fault suite {result.fault} #%"})).all())
    for r in accepted:
        history, _ = compared[r.report_id]
        actions = Counter(e.action for e in history.events.values())
        missing = [a for a in r.actions if actions[a] == 0]
        if history.runs == 0 or r.report_id not in rows or missing:
            lost += 1
            result.details.append(f"lost {r.report_id}: runs={history.runs} "
                                  f"row={r.report_id in rows} missing={missing}")
        twice = [a for a in (RECEIVE_EVENT, *LIFECYCLE) if actions[a] > 1]
        if history.starts > 1 or twice:
            duplicated += 1
            result.details.append(f"duplicated {r.report_id}: starts={history.starts} "
                                  f"twice={twice}")
    for description, n in stored.items():
        if n > 1:
            duplicated += 1
            result.details.append(f"report stored {n} times: {description}")
    result.lost, result.duplicated = lost, duplicated
    result.details.extend(str(d) for d in diffs[:20])
    await keep_histories(client, result.fault, diffs)
    return diffs


async def keep_histories(client: Client, fault: str, diffs: list[Difference],
                         most: int = 10) -> None:
    """Save the Temporal histories (every run) of up to `most` incidents that differ, as
    JSON under test-artifacts/fault-histories/, to read what the worker and the server
    recorded (`temporal workflow show` or WorkflowHistory.from_json)."""
    folder = ROOT / "test-artifacts" / "fault-histories"
    for incident_id in list(dict.fromkeys(d.incident_id for d in diffs))[:most]:
        folder.mkdir(parents=True, exist_ok=True)
        for n, history in enumerate(await run_histories(client, incident_id)):
            (folder / f"{fault}-{incident_id}-{n}.json").write_text(history.to_json(),
                                                                    encoding="utf-8")


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

    injector = asyncio.create_task(_inject(fault, stack, rng, uploads, stop, result))
    try:
        records = await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        stop.set()
        await injector
        await api.aclose()
    await _heal(stack)
    if fault == "api-killed-mid-upload":
        result.details.insert(0, f"{uploads.killed_mid_upload} of {result.injections} "
                                 "API kills cut an upload short")
    await measure(client, db, list(records), result)
    for proc in extra:
        await asyncio.to_thread(stack.remove, proc)
    result.seconds = time.monotonic() - t0
    return result


async def _heal(stack: FaultStack) -> None:
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


# --- the table ------------------------------------------------------------------------------
COLUMNS = ("fault", "load", "accepted", "reached", "lost", "dup", "diff", "events",
           "5xx",
           "503", "injected", "done", "s")


def table(results: list[PhaseResult]) -> str:
    """The results as an aligned plain-text table, with the 5xx answers and any known
    (allowed) failure spelt out below it."""
    rows = [COLUMNS]
    for r in results:
        rows.append((
            r.fault, f"{r.reports_sent}r+{r.actions_sent}a",
            f"{r.reports_accepted}r+{r.actions_accepted}a",
            f"{r.reached}/{r.reports_accepted}", str(r.lost), str(r.duplicated),
            str(r.differences), str(r.events_compared),
            str(r.other_5xx) + ("*" if r.known_5xx and r.other_5xx else ""),
            str(r.http_503), str(r.injections), f"{r.completed}/{r.lifecycles}",
            f"{r.seconds:.0f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = ["", "load/accepted: r = reports, a = staff actions; reached = accepted reports "
             "with a workflow; lost/dup counted per incident, diff per event (or incidents-row "
             "column) of SQL that differs from the Temporal history (events = timeline "
             "events compared); "
             "5xx = answers 500-599 other than 503; 503 = 'try again' answers (retried); "
             "done = lifecycles taken to closed"]
    for r in results:
        if r.http_5xx:
            notes.append(f"{r.fault}: 5xx by endpoint/status/error: "
                         + ", ".join(f"{k} ×{v}" for k, v in r.http_5xx.most_common()))
        if r.fault == "api-killed-mid-upload" and r.details:
            notes.append(f"{r.fault}: {r.details[0]}")
        if r.known_5xx and r.other_5xx:
            notes.append(f"  * 5xx known, not yet handled: {r.known_5xx}")

    return "\n".join(lines + notes)


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


def write_json(results: list[PhaseResult], path: Path, **meta: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "faults": [r.as_json() for r in results]},
                               ensure_ascii=False, indent=2, default=str))
