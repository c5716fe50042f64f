"""Identifiers shared by the workflow and its callers."""

from __future__ import annotations


def workflow_id(incident_id: str) -> str:
    """The Temporal workflow id of an incident: `incident-<uuid>`."""
    return f"incident-{incident_id}"
