"""The load of the fault suite: citizen reports (one in three with a photo), each taken
by staff through verify → route → acknowledge → arrive → close. Clients retry like real
ones: after a network error or a 5xx the same request goes again (the same `report_id`,
the same `Idempotency-Key`), across the API processes in turn.
"""

from __future__ import annotations

import asyncio
import io
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from PIL import Image

from bench.faults.figures import PhaseResult
from bench.faults.stack import WARDS, FaultStack, Staff

LIFECYCLE = ("verify", "route", "acknowledge", "arrive", "close")
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
