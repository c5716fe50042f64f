"""`make run` outlives its parts (issue #9, 7): kill the worker and the API of a running
devstack; each comes back (with a log line), the stack keeps working, and SIGTERM still
stops everything."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from core.settings import ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Logs:
    """The devstack's JSON log lines (its own and its children's), read as they come."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for raw in stream:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if isinstance(entry, dict):
                with self._lock:
                    self.lines.append(entry)

    def find(self, **match: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.lines if all(e.get(k) == v for k, v in match.items())]


def _until(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_killed_worker_and_api_come_back(tmp_path: Path, wards_geojson: Path,
                                         temporal_env: WorkflowEnvironment) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CANHBAO_DEMO": "1", "CANHBAO_PORT": str(port),
           "CANHBAO_VAR_DIR": str(tmp_path), "CANHBAO_WARDS_GEOJSON": str(wards_geojson),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'stack.db'}",
           "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
           "CANHBAO_TASK_QUEUE": f"devstack-{uuid.uuid4()}", "CANHBAO_LOG_JSON": "1"}
    stack = subprocess.Popen([sys.executable, "-m", "core.devstack"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    logs = Logs(stack.stderr)
    pids: list[int] = []
    try:
        _until("the API", lambda: _healthy(url), timeout=180)
        worker = _until("the worker's pid", lambda: logs.find(event="started",
                                                              process="worker"))[0]["pid"]
        pids.append(worker)

        os.kill(worker, signal.SIGKILL)
        _until("a log line about the dead worker", lambda: logs.find(
            event="process exited; restarting it", process="worker", pid=worker))
        again = _until("the worker restarted", lambda: logs.find(
            event="restarted", process="worker"))[0]["pid"]
        pids.append(again)
        assert again != worker and _alive(again) and stack.poll() is None
        assert _healthy(url)  # the API was never stopped

        # The restarted worker works: a report reaches the read model.
        r = httpx.post(f"{url}/api/v1/reports", timeout=30, json={
            "category": "other", "description": "Thử sau khi worker khởi động lại",
            "location": {"lat": 10.7725, "lon": 106.698}})
        assert r.status_code == 202, r.text
        incident = r.json()["incident_id"]

        def projected() -> bool:
            with sqlite3.connect(tmp_path / "stack.db") as conn:
                return conn.execute("select count(*) from incidents where id = ?",
                                    (incident,)).fetchone()[0] == 1
        _until("the incident row", projected, timeout=60)

        api = logs.find(event="started", process="api")[0]["pid"]
        pids.append(api)
        os.kill(api, signal.SIGKILL)
        _until("the API restarted", lambda: logs.find(event="restarted", process="api"))
        _until("the API answering again", lambda: _healthy(url))
        pids.append(logs.find(event="restarted", process="api")[0]["pid"])
        assert stack.poll() is None
    finally:
        if stack.poll() is None:
            stack.send_signal(signal.SIGTERM)
        code = stack.wait(timeout=60)
    assert code == 0
    assert not [pid for pid in pids if _alive(pid)]


def test_restarts_back_off_and_recover(tmp_path: Path, make_settings: Callable[..., Any]
                                       ) -> None:
    """A child that keeps dying at once waits 1, 2, 4 … 30 s between starts; one that ran
    a minute starts again after 1 s."""
    from core import devstack

    stack = devstack.Stack(make_settings())
    stack.spawn("flaky", [sys.executable, "-c", "raise SystemExit(3)"])
    child = stack.children[0]
    now = time.monotonic()
    delays = []
    try:
        for _ in range(7):
            child.proc.wait(timeout=30)
            stack.check_children(now)  # notices the death
            assert child.restart_at is not None
            delays.append(round(child.restart_at - now))
            now = child.restart_at
            stack.check_children(now)  # starts it again
            assert child.restart_at is None
        assert delays == [1, 2, 4, 8, 16, 30, 30] and child.restarts == 7
        child.proc.wait(timeout=30)
        stack.check_children(child.started_at + devstack.STABLE_S + 1)
        assert child.restart_at == child.started_at + devstack.STABLE_S + 2
    finally:
        stack.stop()
