"""The processes of a fault run, each one a real OS process that can be stopped, frozen
or killed: the Temporal dev server (its state in a file, so a killed server comes back
with every workflow), workers (`python worker.py`), API servers (`python -m
core.serving`), and PostgreSQL reached through `CutProxy`, so the database can become
unreachable for the processes without touching the shared server.

Each run gets a fresh PostgreSQL database (`<base name>_fault_<pid>`), migrated and seeded
(wards, units, three staff accounts), dropped at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from bench.faults.proxy import CutProxy, free_port
from core import seed
from core.db import make_sync_engine
from core.migrate import upgrade
from core.settings import ROOT, Settings
from schema.tables import Unit, User, Ward

BIN = Path(sys.executable).parent
SECRET = "fault-suite-secret-key-0123456789abcdef"
PASSWORD = "fault-suite-password"
WARDS = ("ben_thanh", "sai_gon")  # short codenames of the wards the load reports from


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Proc:
    """A child process and how to start it again."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    proc: subprocess.Popen | None = None
    kills: int = 0
    frozen: bool = False

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL, the whole process group, and wait for it."""
        if self.frozen:
            self.signal(signal.SIGCONT)
            self.frozen = False
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        self.kills += 1

    def freeze(self) -> None:
        self.signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        self.signal(signal.SIGCONT)
        self.frozen = False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.frozen:
            self.thaw()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait()


@dataclass
class Staff:
    """Bearer tokens of the accounts the load acts as, and each ward's code and unit."""

    operator: str
    officers: dict[str, str]  # ward short codename -> token of an officer of its police
    wards: dict[str, dict[str, Any]]  # short codename -> code, lat, lon, unit_id


def _wait(what: str, check: Callable[[], bool], timeout: float, proc: Proc | None = None
          ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.proc is not None and proc.proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.proc.returncode}; see {proc.log}")
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready within {timeout:.0f} s" +
                       (f"; see {proc.log}" if proc else ""))


@dataclass
class FaultStack:
    """Everything a fault run needs, started by `start()` and stopped by `close()`."""

    base_url: str  # PostgreSQL of the shared server (its database is not used)
    workdir: Path
    db_name: str = field(default_factory=lambda: f"fault_{os.getpid()}_{int(time.time())}")
    temporal: Proc | None = None
    workers: list[Proc] = field(default_factory=list)
    apis: list[Proc] = field(default_factory=list)
    proxy: CutProxy | None = None
    task_queue: str = field(default_factory=lambda: f"fault-{os.getpid()}")
    temporal_port: int = field(default_factory=free_port)
    _created: bool = False

    # --- the database ------------------------------------------------------------------
    @property
    def direct_url(self) -> str:
        """The run's database, straight to the server (the harness's own reads)."""
        return make_url(self.base_url).set(database=self.db_name).render_as_string(
            hide_password=False)

    @property
    def proxied_url(self) -> str:
        """The run's database through the proxy (what the processes use)."""
        assert self.proxy is not None
        return make_url(self.direct_url).set(host="127.0.0.1", port=self.proxy.port) \
            .render_as_string(hide_password=False)

    def _admin(self, sql: str) -> None:
        engine = make_sync_engine(make_url(self.base_url).set(database="postgres")
                                  .render_as_string(hide_password=False))
        try:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(sql))
        finally:
            engine.dispose()

    def create_database(self, wards_geojson: Path) -> Staff:
        self._admin(f'CREATE DATABASE "{self.db_name}"')
        self._created = True
        upgrade(self.direct_url)
        engine = make_sync_engine(self.direct_url)
        try:
            seed.import_wards(engine, wards_geojson)
            seed.ensure_units(engine)
            return self._staff(engine)
        finally:
            engine.dispose()

    def _staff(self, engine: Any) -> Staff:
        from api.auth import make_token

        settings = self.settings()
        with Session(engine) as s:
            command = s.exec(select(Unit).where(Unit.code == "ttttch")).one()
            hashed = seed.hash_password(PASSWORD)
            users: dict[str, User] = {"operator": seed.ensure_user(
                s, "fault.operator", PASSWORD, "operator", command.id, "Trực ban", hashed)}
            wards: dict[str, dict[str, Any]] = {}
            for short in WARDS:
                ward = s.exec(select(Ward).where(Ward.short_codename == short)).one()
                unit = s.exec(select(Unit).where(Unit.code == f"cand-{short}")).one()
                wards[short] = {"code": ward.code, "lat": ward.lat, "lon": ward.lon,
                                "unit_id": unit.id}
                users[short] = seed.ensure_user(s, f"fault.officer.{short}", PASSWORD,
                                                "officer", unit.id, f"Cán bộ {short}", hashed)
            s.commit()
            tokens = {}
            for key, user in users.items():
                s.refresh(user)
                tokens[key] = make_token(settings, user)
        return Staff(tokens.pop("operator"), tokens, wards)

    def drop_database(self) -> None:
        if self._created:
            self._admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            self._created = False

    # --- processes -----------------------------------------------------------------------
    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CANHBAO_", "TEMPORAL_", "DATABASE_URL", "S3_"))}
        env.update({
            "DATABASE_URL": self.proxied_url, "TEMPORAL_ADDRESS": self.temporal_address,
            "CANHBAO_TASK_QUEUE": self.task_queue, "CANHBAO_SECRET_KEY": SECRET,
            "CANHBAO_VAR_DIR": str(self.workdir / "var"),
            "CANHBAO_STORAGE_DIR": str(self.workdir / "files"),
            "CANHBAO_RELAY_INTERVAL_S": "0.5", "CANHBAO_DB_POOL_SIZE": "5",
            "CANHBAO_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
        })
        env.update(extra)
        return env

    def settings(self) -> Settings:
        return Settings(DATABASE_URL=self.direct_url, TEMPORAL_ADDRESS=self.temporal_address,
                        CANHBAO_TASK_QUEUE=self.task_queue, CANHBAO_SECRET_KEY=SECRET,
                        CANHBAO_VAR_DIR=self.workdir / "var")

    def start_temporal(self) -> None:
        if self.temporal is None:
            self.temporal = Proc("temporal", [
                str(BIN / "temporal"), "server", "start-dev", "--ip", "127.0.0.1",
                "--port", str(self.temporal_port), "--headless",
                "--db-filename", str(self.workdir / "temporal.db"),
                "--log-level", "error"], dict(os.environ), self.workdir / "temporal.log",
                port=self.temporal_port)
        # A server just killed may hold its SQLite file a moment: try a few times.
        for attempt in range(5):
            self.temporal.start()
            try:
                _wait("Temporal dev server", lambda: port_open(self.temporal_port), 60,
                      self.temporal)
                return
            except RuntimeError:
                if attempt == 4:
                    raise
                self.temporal.stop()
                time.sleep(1 + attempt)

    def restart_temporal(self) -> None:
        assert self.temporal is not None
        self.temporal.kill()
        self.start_temporal()

    def add_worker(self) -> Proc:
        proc = Proc(f"worker{len(self.workers) + 1}", [sys.executable, "worker.py"],
                    self.env(), self.workdir / f"worker{len(self.workers) + 1}.log")
        proc.start()
        self.workers.append(proc)
        return proc

    def add_api(self) -> Proc:
        port = free_port()
        n = len(self.apis) + 1
        proc = Proc(f"api{n}", [sys.executable, "-m", "core.serving"],
                    self.env(CANHBAO_PORT=str(port)), self.workdir / f"api{n}.log", port=port)
        proc.start()
        self.apis.append(proc)
        self.wait_api(proc)
        return proc

    def wait_api(self, proc: Proc, timeout: float = 90) -> None:
        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{proc.port}/healthz",
                                 timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        _wait(proc.name, healthy, timeout, proc)

    def restart(self, proc: Proc) -> None:
        """SIGKILL and start again (an API is waited for)."""
        proc.kill()
        proc.start()
        if proc.port is not None and proc in self.apis:
            self.wait_api(proc)

    def remove(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.workers:
            self.workers.remove(proc)
        if proc in self.apis:
            self.apis.remove(proc)

    def start(self, wards_geojson: Path) -> Staff:
        self.workdir.mkdir(parents=True, exist_ok=True)
        staff = self.create_database(wards_geojson)
        url = make_url(self.base_url)
        self.proxy = CutProxy(url.host or "127.0.0.1", url.port or 5432)
        self.start_temporal()
        self.add_worker()
        self.add_api()
        return staff

    def close(self) -> None:
        for proc in [*self.apis, *self.workers]:
            proc.stop()
        if self.temporal is not None:
            self.temporal.stop()
        if self.proxy is not None:
            self.proxy.close()
        self.drop_database()
