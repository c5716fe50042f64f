"""The Temporal client, the same for the API and the worker."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from core.settings import Settings


def workflow_id(incident_id: str) -> str:
    return f"incident-{incident_id}"


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        tls=settings.temporal_tls,
        api_key=settings.temporal_api_key,
    )
