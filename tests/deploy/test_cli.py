"""The admin command line, run as an operator would: migrate, import wards, create a user,
seed demo data, and start the workflow of a report that Temporal missed."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from core.db import make_sync_engine
from core.settings import ROOT
from schema.payloads import IncidentInput, Location
from schema.states import Category
from schema.tables import Outbox, Report, Unit, User, Ward


def canhbao(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


async def test_cli_end_to_end(tmp_path: Path, wards_geojson: Path,
                              temporal_env: WorkflowEnvironment) -> None:
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {**os.environ, "DATABASE_URL": db_url, "CANHBAO_DEMO": "1",
           "CANHBAO_VAR_DIR": str(tmp_path), "CANHBAO_WARDS_GEOJSON": str(wards_geojson),
           "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
           "CANHBAO_TASK_QUEUE": f"cli-{uuid.uuid4()}"}

    assert canhbao(env, "migrate").returncode == 0
    done = canhbao(env, "import-wards")
    assert done.returncode == 0, done.stderr
    assert "168 wards" in done.stdout

    # Texts typed or pasted at the command line are cleaned like any input (schema.text).
    made = canhbao(env, "create-user", " tran.van.b\x0b", "--role", "officer",
                   "--unit", "cand-ben_thanh", "--password", "mat-khau-du-dai",
                   "--full-name", "Tra\u0302\u0300n\x01  Va\u0306n B ")
    assert made.returncode == 0, made.stderr
    refused = canhbao(env, "create-user", "x", "--role", "officer", "--password", "short")
    assert refused.returncode != 0 and "10 characters" in refused.stderr
    assert canhbao(env, "create-user", "y", "--role", "officer",
                   "--password", "mat-khau-du-dai").returncode != 0  # an officer needs a unit
    assert canhbao(env, "seed-demo").returncode == 0

    # Sign-out everywhere and a password change end every earlier token (token version).
    engine = make_sync_engine(db_url)

    def version_and_hash() -> tuple[int, str]:
        with Session(engine) as session:
            user = session.exec(select(User).where(User.username == "tran.van.b")).one()
            return user.token_version, user.password_hash

    before = version_and_hash()
    done = canhbao(env, "sign-out", "tran.van.b")
    assert done.returncode == 0 and "signed out everywhere" in done.stdout, done.stderr
    assert version_and_hash() == (before[0] + 1, before[1])
    done = canhbao(env, "set-password", "tran.van.b", "--password", "mat-khau-moi-rat-dai")
    assert done.returncode == 0, done.stderr
    after = version_and_hash()
    assert after[0] == before[0] + 2 and after[1] != before[1]
    assert canhbao(env, "sign-out", "khong.ai").returncode != 0
    engine.dispose()

    engine = make_sync_engine(db_url)
    incident_id = str(uuid.uuid4())
    with Session(engine) as session:
        assert len(session.exec(select(Ward)).all()) == 168
        officer = session.exec(select(User).where(User.username == "tran.van.b")).one()
        assert officer.full_name == "Trần Văn B"
        unit = session.get(Unit, officer.unit_id)
        assert unit is not None and unit.code == "cand-ben_thanh"
        assert session.exec(select(User).where(User.username == "officer.ben_thanh")).first()
        # A report accepted while Temporal was unreachable: its outbox row is pending.
        inp = IncidentInput(incident_id=incident_id, tracking_code="CLITEST1",
                            category=Category.CRIME, description="Trộm cắp",
                            location=Location(lat=10.7725, lon=106.698),
                            received_at=datetime.now(UTC))
        session.add(Report(id=incident_id, tracking_code="CLITEST1",
                           tracking_token=uuid.uuid4().hex + uuid.uuid4().hex,
                           payload=inp.model_dump(mode="json")))
        session.flush()
        session.add(Outbox(report_id=incident_id))
        session.commit()

    relayed = canhbao(env, "relay-once")
    assert relayed.returncode == 0, relayed.stderr
    assert "1 workflow(s) started" in relayed.stdout
    described = await temporal_env.client.get_workflow_handle(
        f"incident-{incident_id}").describe()
    assert described.workflow_type == "IncidentWorkflowV2"
    with Session(engine) as session:
        assert session.get(Outbox, incident_id).started_at is not None  # type: ignore[union-attr]
    assert "0 workflow(s) started" in canhbao(env, "relay-once").stdout
    engine.dispose()
