"""Recorded histories (tests/histories/*.json) must keep replaying: a change to the workflow
that would break incidents already running fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from core.settings import ROOT
from workflows.incident import IncidentWorkflow

HISTORIES = sorted((ROOT / "tests" / "histories").glob("*.json"))


def test_histories_are_recorded() -> None:
    names = {p.stem for p in HISTORIES}
    assert {"lifecycle", "escalation", "merge_primary", "merge_child", "cancel"} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"incident-{path.stem}", path.read_text("utf-8"))
    replayer = Replayer(workflows=[IncidentWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
