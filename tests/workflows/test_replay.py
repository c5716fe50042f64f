"""Recorded histories (tests/histories/*.json) must keep replaying: a change to the workflow
that would break incidents already running fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from core.settings import ROOT
from schema.payloads import INCIDENT_WORKFLOW
from workflows.incident import IncidentWorkflow

HISTORIES = sorted((ROOT / "tests" / "histories").glob("*.json"))


def test_histories_are_recorded() -> None:
    names = {p.stem for p in HISTORIES}
    assert {"v2_lifecycle", "v2_escalation", "v2_merge_primary", "v2_merge_child",
            "v2_continued_first", "v2_continued_next", "v2_versions",
            "v2_message", "v2_keyed", "v2_dated_primary", "v2_dated_child"} <= names


def test_histories_are_of_the_workflow_type_that_runs() -> None:
    """Every recorded history is of the type the worker runs: a retired type's histories
    go with its code (tests/histories/README.md)."""
    for path in HISTORIES:
        history = WorkflowHistory.from_json(path.stem, path.read_text("utf-8"))
        started = history.events[0].workflow_execution_started_event_attributes
        assert started.workflow_type.name == INCIDENT_WORKFLOW, path.name


def test_v2_histories_cover_the_hand_over() -> None:
    """One recorded v2 run ends in continue-as-new; the next starts from its state."""
    first = WorkflowHistory.from_json(
        "incident", (ROOT / "tests" / "histories" / "v2_continued_first.json").read_text("utf-8"))
    assert first.events[0].workflow_execution_started_event_attributes.workflow_type.name \
        == "IncidentWorkflowV2"
    assert first.events[-1].event_type == \
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert sum(e.ByteSize() for e in first.events) < 2_000_000


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"incident-{path.stem}", path.read_text("utf-8"))
    replayer = Replayer(workflows=[IncidentWorkflow],
                        data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
