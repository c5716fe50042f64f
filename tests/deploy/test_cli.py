"""The admin command line, run as an operator would: migrate, import wards, create a user,
seed demo data, start the workflow of a report that Temporal missed, and end the open
executions of a retired workflow type."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from core.db import make_sync_engine
from core.settings import ROOT
from schema.payloads import INCIDENT_WORKFLOW, IncidentInput, Location
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


async def test_retired_workflow_executions_are_listed_then_terminated(
        tmp_path: Path, temporal_env: WorkflowEnvironment) -> None:
    """An open execution of the retired type "IncidentWorkflow" (started raw on a queue no
    worker polls: no worker registers that type any more) is listed, then terminated with
    the reason given; an incident of the current type beside it is left running."""
    client = temporal_env.client
    queue = f"retired-{uuid.uuid4()}"
    old = await client.start_workflow("IncidentWorkflow", {"incident_id": "old"},
                                      id=f"incident-{uuid.uuid4()}", task_queue=queue)
    current = await client.start_workflow(INCIDENT_WORKFLOW, {"incident_id": "new"},
                                          id=f"incident-{uuid.uuid4()}", task_queue=queue)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "CANHBAO_DEMO": "1", "CANHBAO_VAR_DIR": str(tmp_path),
           "TEMPORAL_ADDRESS": client.service_client.config.target_host}
    try:
        # Visibility (what the command lists from) follows a start within a moment.
        deadline = time.monotonic() + 30
        while True:
            listed = await asyncio.to_thread(canhbao, env, "retired-workflows")
            assert listed.returncode == 0, listed.stderr
            if old.id in listed.stdout or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert old.id in listed.stdout and "IncidentWorkflow\t" in listed.stdout
        assert current.id not in listed.stdout
        assert (await old.describe()).status == WorkflowExecutionStatus.RUNNING  # only listed

        done = await asyncio.to_thread(canhbao, env, "retired-workflows", "--terminate",
                                       "--reason", "retired by test")
        assert done.returncode == 0, done.stderr
        assert old.id in done.stdout and "terminated (retired by test)" in done.stdout
        assert (await old.describe()).status == WorkflowExecutionStatus.TERMINATED
        last = (await old.fetch_history()).events[-1]
        assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED
        assert last.workflow_execution_terminated_event_attributes.reason == "retired by test"
        assert (await current.describe()).status == WorkflowExecutionStatus.RUNNING
    finally:
        await current.terminate(reason="test over")
