"""The measures of a fault phase: wait for the read model to settle, then compare every
accepted incident with Temporal (bench.faults.compare) and count what was lost,
duplicated or differs.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from sqlalchemy import func, select, text
from sqlmodel import col
from temporalio.client import Client

from bench.faults.compare import Difference, compare_incidents, run_histories
from bench.faults.figures import PhaseResult
from bench.faults.load import LIFECYCLE, Record
from core.db import Database
from core.settings import ROOT
from schema.states import RECEIVE_EVENT
from schema.tables import Incident, Outbox


async def _settled(db: Database, records: list[Record]) -> bool:
    ids = [r.report_id for r in records if r.accepted]
    if not ids:
        return True
    async with db.session() as s:
        pending = (await s.execute(select(func.count()).select_from(Outbox).where(
            col(Outbox.report_id).in_(ids), col(Outbox.started_at).is_(None)))).scalar_one()
        rows = {i.id: i for i in (await s.execute(select(Incident).where(
            col(Incident.id).in_(ids)))).scalars()}
    if pending or len(rows) < len(ids):
        return False
    return all(rows[r.report_id].state == "closed" for r in records
               if r.accepted and r.completed)


async def measure(client: Client, db: Database, records: list[Record], result: PhaseResult,
                  settle_s: float = 120) -> list[Difference]:
    """Wait for the read model to settle (at most `settle_s`), then fill the measures."""
    deadline = time.monotonic() + settle_s
    while not await _settled(db, records) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    accepted = [r for r in records if r.accepted]
    for attempt in range(3):
        compared = await compare_incidents(client, db, [r.report_id for r in accepted])
        diffs = [d for _, found in compared.values() for d in found]
        if not diffs or attempt == 2:
            break
        await asyncio.sleep(3)  # a write still on its way: look again
    result.reached = sum(1 for h, _ in compared.values() if h.runs > 0)
    # Events (and incidents rows) that differ in any column, counted once each.
    result.differences = len({(d.incident_id, d.seq, d.field if d.seq is None else "")
                              for d in diffs})
    result.events_compared = sum(len(h.events) for h, _ in compared.values())
    lost = duplicated = 0
    async with db.session() as s:
        rows = {str(i) for i in (await s.execute(select(col(Incident.id)).where(
            col(Incident.id).in_([r.report_id for r in accepted])))).scalars()}
        stored = Counter(d for (d,) in (await s.execute(text(
            "select payload->>'description' from reports where payload->>'description' "
            "like :p"), {"p": f"Fault suite {result.fault} #%"})).all())
    for r in accepted:
        history, _ = compared[r.report_id]
        actions = Counter(e.action for e in history.events.values())
        missing = [a for a in r.actions if actions[a] == 0]
        if history.runs == 0 or r.report_id not in rows or missing:
            lost += 1
            result.details.append(f"lost {r.report_id}: runs={history.runs} "
                                  f"row={r.report_id in rows} missing={missing}")
        twice = [a for a in (RECEIVE_EVENT, *LIFECYCLE) if actions[a] > 1]
        if history.starts > 1 or twice:
            duplicated += 1
            result.details.append(f"duplicated {r.report_id}: starts={history.starts} "
                                  f"twice={twice}")
    for description, n in stored.items():
        if n > 1:
            duplicated += 1
            result.details.append(f"report stored {n} times: {description}")
    result.lost, result.duplicated = lost, duplicated
    result.details.extend(str(d) for d in diffs[:20])
    await keep_histories(client, result.fault, diffs)
    return diffs


async def keep_histories(client: Client, fault: str, diffs: list[Difference],
                         most: int = 10) -> None:
    """Save the Temporal histories (every run) of up to `most` incidents that differ, as
    JSON under test-artifacts/fault-histories/, to read what the worker and the server
    recorded (`temporal workflow show` or WorkflowHistory.from_json)."""
    folder = ROOT / "test-artifacts" / "fault-histories"
    for incident_id in list(dict.fromkeys(d.incident_id for d in diffs))[:most]:
        folder.mkdir(parents=True, exist_ok=True)
        for n, history in enumerate(await run_histories(client, incident_id)):
            (folder / f"{fault}-{incident_id}-{n}.json").write_text(history.to_json(),
                                                                    encoding="utf-8")
