"""The shared fixtures reach real servers and the migrated schema is complete."""

from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from core.db import Database
from schema.tables import Unit, Ward


async def test_databases_are_migrated_and_seeded(any_db: Database) -> None:
    async with any_db.session() as session:
        wards = (await session.exec(select(func.count()).select_from(Ward))).one()
        units = (await session.exec(select(func.count()).select_from(Unit))).one()
    assert wards[0] == 168
    assert units[0] == 168 + 5


async def test_temporal_servers_answer(temporal_env: WorkflowEnvironment,
                                       time_skipping_env: WorkflowEnvironment) -> None:
    assert await temporal_env.client.service_client.check_health()
    assert time_skipping_env.supports_time_skipping
