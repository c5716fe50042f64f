"""Random sequences of actions by random actors on two or three incidents (hypothesis), on
the Temporal dev server with the SQL read model, including concurrent pairs of updates and
merges between the incidents.

Each example starts fresh incidents and runs a plan of up to MAX_STEPS steps: one update,
or two updates sent at once (`asyncio.gather`), or two opposite merges at once. After each
step the incidents are left to settle (every queued write in SQL, merged children told
their primary's state, finished workflows completed), then the invariants are checked:

- one state: the workflow's state, the incidents row and the last transition event agree;
- seq strictly increasing: the SQL events are exactly 1..seq (no gap, no duplicate), their
  times never go back, and every accepted update's result lies after the step's start;
- a terminal state is final: nothing is accepted after it (but a citizen's addition on a
  merged report while its primary is open), its state and version never change, and a
  merged report completes when its primary ends;
- no merge cycles: following `merged_into` never loops; every merged report is listed
  once by its primary, with one `merged_in` event, and knows the primary's state;
- every accepted update is in the read model exactly once (classify from received also
  records verify, arrive from routed also records acknowledge, each marked `implied_by`);
- a refused update changes nothing, and a single update is accepted exactly when the rules
  of `schema.states`, the If-Match version (Stale), the unit already assigned (NoChange)
  and the merge target's agreement say so; of two state changes sent at once with the
  version both saw, at most one is accepted.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from sqlmodel import select
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from core.db import Database
from schema.payloads import (
    AcknowledgeInput,
    ActionResult,
    Actor,
    AddInfoInput,
    ArriveInput,
    CancelInput,
    ClassifyInput,
    CloseInput,
    IncidentState,
    MergeInput,
    MessageInput,
    NoteInput,
    PublishAlertInput,
    ReassignInput,
    RejectInput,
    RouteInput,
    UnitRef,
    VerifyInput,
)
from schema.states import (
    ACTION_TARGET,
    UNIT_SCOPED,
    Action,
    Category,
    Outcome,
    Priority,
    Role,
    State,
    may_add_info_to_merged,
    role_may,
    steps,
)
from schema.tables import Incident, IncidentEvent
from tests.workflows.factories import (
    citizen,
    eventually,
    incident_input,
    new_id,
    officer,
    operator,
    query_case,
    start_incident,
    stored_events,
    supervisor,
    unit_ref,
    update_retrying,
)
from workflows.incident import IncidentWorkflow as W

MIN_STEPS = 5
MAX_STEPS = 12
# 20 examples take about 30-50 s on two busy cores; raise it to hunt (e.g. 200).
EXAMPLES = int(os.environ.get("CANHBAO_STATEFUL_EXAMPLES", "20"))

ACTORS = ("fitting", "operator", "supervisor", "own_officer", "other_officer", "citizen")
# "advance" is the next step of the usual lifecycle from the current state.
ACTIONS: tuple[str, ...] = ("advance", *(a.value for a in Action))
ADVANCE: dict[State, Action] = {
    State.RECEIVED: Action.VERIFY, State.VERIFIED: Action.CLASSIFY,
    State.CLASSIFIED: Action.ROUTE, State.ROUTED: Action.ACKNOWLEDGE,
    State.ACKNOWLEDGED: Action.ARRIVE, State.ON_SCENE: Action.CLOSE,
}
FITTING: dict[Action, str] = {
    Action.VERIFY: "operator", Action.REJECT: "operator", Action.MERGE: "operator",
    Action.CLASSIFY: "operator", Action.ROUTE: "operator", Action.REASSIGN: "supervisor",
    Action.PUBLISH_ALERT: "supervisor", Action.ACKNOWLEDGE: "own_officer",
    Action.ARRIVE: "own_officer", Action.CLOSE: "own_officer", Action.NOTE: "own_officer",
    Action.CANCEL: "citizen", Action.ADD_INFO: "citizen", Action.MESSAGE: "operator",
}
UPDATES: dict[Action, Any] = {
    Action.VERIFY: W.verify, Action.REJECT: W.reject, Action.MERGE: W.merge,
    Action.CLASSIFY: W.classify, Action.ROUTE: W.route, Action.ACKNOWLEDGE: W.acknowledge,
    Action.ARRIVE: W.arrive, Action.NOTE: W.note, Action.CLOSE: W.close,
    Action.REASSIGN: W.reassign, Action.PUBLISH_ALERT: W.publish_alert,
    Action.CANCEL: W.cancel, Action.ADD_INFO: W.add_info, Action.MESSAGE: W.message,
}
# Events that are not the direct record of one accepted update.
SYSTEM_ACTIONS = frozenset({"receive", "locate", "escalate", "merged_in", "primary_changed"})
# What may still be recorded on a merged report (its citizen's additions, its primary's
# news), and on an incident that ended while a merge into it or a merged report's addition
# was on its way (both decided while it was open).
AFTER_MERGED = frozenset({"add_info", "primary_changed"})
AFTER_END = frozenset({"merged_in", "add_info"})


@dataclass(frozen=True)
class Step:
    """One update: `incident` and `target` index the example's incidents, `unit` its
    units (0, 1)."""

    incident: int
    action: str
    actor: str
    target: int = 0
    unit: int = 0
    public: bool = False
    # The version sent as If-Match: none, the one last seen, or an older one.
    version: str = "none"


def step_strategy(n: int) -> st.SearchStrategy[Step]:
    # Half the time the lifecycle's next step, and half the time a fitting actor, so that
    # examples reach the later states; the rest is anything by anyone.
    return st.builds(Step, incident=st.integers(0, n - 1),
                     action=st.one_of(st.just("advance"), st.sampled_from(ACTIONS)),
                     actor=st.one_of(st.just("fitting"), st.sampled_from(ACTORS)),
                     target=st.integers(0, n - 1),
                     unit=st.integers(0, 1), public=st.booleans(),
                     version=st.sampled_from(("none", "seen", "stale")))


def plan_strategy(n: int) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    one = st.tuples(st.just("one"), step_strategy(n))
    pair = st.tuples(st.just("pair"), step_strategy(n), step_strategy(n))
    opposite = st.tuples(st.just("opposite"), st.integers(0, n - 1), st.integers(1, n - 1))
    return st.lists(st.one_of(one, one, one, pair, pair, opposite), min_size=MIN_STEPS,
                    max_size=MAX_STEPS)


@dataclass
class Sent:
    """An update as sent, and what came back."""

    incident: int
    action: Action
    actor: Actor
    result: ActionResult | None = None
    refusal: str | None = None  # the error type or RPC status when refused


@dataclass
class Snap:
    state: IncidentState
    completed: bool


@dataclass
class Run:
    client: Client
    db: Database
    handles: list[WorkflowHandle]
    ids: list[str]
    units: list[UnitRef]
    elsewhere: UnitRef  # a unit never assigned: its officer is "another unit's"
    snaps: list[Snap] = field(default_factory=list)
    accepted: Counter[tuple[int, str]] = field(default_factory=Counter)
    implied_lo: Counter[tuple[int, str]] = field(default_factory=Counter)
    via_lo: Counter[tuple[int, str]] = field(default_factory=Counter)  # (primary, child id)
    via_hi: Counter[tuple[int, str]] = field(default_factory=Counter)
    ever_terminal: set[int] = field(default_factory=set)

    # --- sending ---------------------------------------------------------------------
    def resolve(self, step: Step) -> tuple[Action, Actor, Any]:
        s = self.snaps[step.incident].state
        seen = {"none": None, "seen": s.version,
                "stale": s.version - 1 if s.version else s.version + 1}[step.version]
        action = ADVANCE.get(s.state, Action.NOTE) if step.action == "advance" \
            else Action(step.action)
        who = FITTING[action] if step.actor == "fitting" else step.actor
        actor = {
            "operator": operator, "supervisor": supervisor, "citizen": citizen,
            "own_officer": lambda: officer(s.unit or self.units[0]),
            "other_officer": lambda: officer(self.elsewhere),
        }[who]()
        unit = self.units[step.unit]
        arg: Any = {
            Action.VERIFY: lambda: VerifyInput(actor=actor),
            Action.REJECT: lambda: RejectInput(actor=actor, reason="Tin báo sai"),
            Action.MERGE: lambda: MergeInput(actor=actor,
                                             into_incident_id=self.ids[step.target]),
            Action.CLASSIFY: lambda: ClassifyInput(actor=actor, category=Category.OTHER,
                                                   priority=Priority.HIGH),
            Action.ROUTE: lambda: RouteInput(actor=actor, unit=unit),
            Action.ACKNOWLEDGE: lambda: AcknowledgeInput(actor=actor),
            Action.ARRIVE: lambda: ArriveInput(actor=actor),
            Action.NOTE: lambda: NoteInput(actor=actor, text="Ghi chú", public=step.public),
            Action.CLOSE: lambda: CloseInput(actor=actor, outcome=Outcome.RESOLVED,
                                             summary="Đã xử lý"),
            Action.REASSIGN: lambda: ReassignInput(actor=actor, unit=unit, reason="Gần hơn"),
            Action.PUBLISH_ALERT: lambda: PublishAlertInput(
                actor=actor, alert_id=new_id(), headline="Cảnh báo",
                instruction="Tránh khu vực", radius_m=500),
            Action.CANCEL: lambda: CancelInput(actor=actor, reason="Nhầm"),
            Action.ADD_INFO: lambda: AddInfoInput(actor=actor, text="Thêm thông tin"),
            Action.MESSAGE: lambda: MessageInput(actor=actor, text="Anh/chị có an toàn không?"),
        }[action]()
        return action, actor, arg.model_copy(update={"expected_version": seen})

    async def send(self, incident: int, action: Action, actor: Actor, arg: Any) -> Sent:
        sent = Sent(incident, action, actor)
        try:
            sent.result = await update_retrying(self.handles[incident], UPDATES[action], arg)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            assert isinstance(cause, ApplicationError), repr(cause)
            assert cause.type in ("IllegalTransition", "Forbidden", "Invalid", "Stale",
                                  "NoChange"), repr(cause)
            sent.refusal = f"{cause.type}: {cause.message}"
        except RPCError as exc:
            # The workflow completed (a terminal incident) before the update reached it.
            assert exc.status is RPCStatusCode.NOT_FOUND, repr(exc)
            sent.refusal = f"completed: {exc.message}"
        return sent

    def expected(self, incident: int, action: Action, actor: Actor, arg: Any) -> bool:
        """Whether one update alone on the settled incidents must be accepted."""
        snap = self.snaps[incident]
        s = snap.state
        if snap.completed:
            return False
        if action is Action.ADD_INFO and may_add_info_to_merged(s.state, s.primary_state):
            return actor.role is Role.CITIZEN
        if arg.expected_version is not None and arg.expected_version != s.version:
            return False  # Stale
        if steps(action, s.state) is None or not role_may(action, actor.role, s.state):
            return False
        if actor.role is Role.OFFICER and action in UNIT_SCOPED and (
                s.unit is None or s.unit.id != actor.unit_id):
            return False
        if action in (Action.ROUTE, Action.REASSIGN) and s.unit == arg.unit:
            return False  # NoChange
        if action is Action.MERGE:
            target = arg.into_incident_id
            # A primary with merged reports is never merged itself (they follow it).
            return (target != s.id and not s.told
                    and not self.snaps[self.ids.index(target)].state.state.is_terminal)
        return True

    def account(self, sent: Sent, single: bool) -> None:
        """Count an accepted update, with the implied step and the forwarded addition it
        must have written."""
        if sent.result is None:
            return
        i, before = sent.incident, self.snaps[sent.incident].state
        self.accepted[(i, sent.action.value)] += 1
        implied = {Action.CLASSIFY: State.RECEIVED, Action.ARRIVE: State.ROUTED}
        if single and implied.get(sent.action) is before.state:
            self.implied_lo[(i, sent.action.value)] += 1
        if sent.action is Action.ADD_INFO and before.state is State.MERGED:
            assert before.merged_into is not None
            key = (self.ids.index(before.merged_into), before.id)
            self.via_hi[key] += 1
            if single:
                self.via_lo[key] += 1

    # --- settling and reading -------------------------------------------------------------
    async def read(self) -> tuple[list[Snap], list[list[IncidentEvent]], list[Incident | None]]:
        snaps, events, rows = [], [], []
        for handle, incident_id in zip(self.handles, self.ids, strict=True):
            state = await query_case(handle)
            completed = False
            if state.state.is_terminal:
                desc = await handle.describe()
                assert desc.status in (WorkflowExecutionStatus.RUNNING,
                                       WorkflowExecutionStatus.COMPLETED), desc.status
                completed = desc.status is WorkflowExecutionStatus.COMPLETED
            snaps.append(Snap(state, completed))
            events.append(await stored_events(self.db, incident_id))
            async with self.db.session() as session:
                rows.append((await session.exec(
                    select(Incident).where(Incident.id == incident_id))).one_or_none())
        return snaps, events, rows

    @staticmethod
    def settled(snaps: list[Snap], events: list[list[IncidentEvent]],
                rows: list[Incident | None]) -> bool:
        by_id = {s.state.id: s for s in snaps}
        for snap, evs, row in zip(snaps, events, rows, strict=True):
            s = snap.state
            if len(evs) != s.seq or row is None or row.last_seq != s.seq:
                return False
            if s.ward is None or s.merging_into is not None or s.held:
                return False
            if any(told != s.state for told in s.told.values()):
                return False
            if s.state is State.MERGED:
                assert s.merged_into is not None
                primary = by_id.get(s.merged_into)
                if primary is not None and s.primary_state != primary.state.state:
                    return False
            finished = s.state.is_terminal and (
                s.state is not State.MERGED
                or (s.primary_state is not None and s.primary_state.is_terminal))
            if finished != snap.completed:
                return False
        return True

    async def settle(self) -> tuple[list[Snap], list[list[IncidentEvent]], list[Incident | None]]:
        last: list[Any] = []

        async def check() -> bool:
            last[:] = await self.read()
            return self.settled(*last)

        try:
            await eventually(check, timeout=30.0, interval=0.05)
        except AssertionError:
            snaps, events, _ = last
            raise AssertionError("the incidents never settled: " + "; ".join(
                f"{s.state.id[:8]} {s.state.state} seq={s.state.seq} sql={len(e)} "
                f"told={s.state.told} held={list(s.state.held)} "
                f"merging={s.state.merging_into} primary={s.state.primary_state} "
                f"completed={s.completed}"
                for s, e in zip(snaps, events, strict=True))) from None
        snaps, events, rows = last
        return snaps, events, rows

    # --- invariants -----------------------------------------------------------------------
    def check(self, sent: list[Sent], snaps: list[Snap], events: list[list[IncidentEvent]],
              rows: list[Incident | None]) -> None:
        before = self.snaps
        for i, (old, new, evs, row) in enumerate(zip(before, snaps, events, rows, strict=True)):
            s, o = new.state, old.state
            # One state: the workflow, the incidents row and the last transition agree.
            assert row is not None and row.state == s.state.value, (row, s.state)
            assert row.is_open is not s.state.is_terminal
            moves = [e for e in evs if e.to_state is not None]
            assert moves and moves[-1].to_state == s.state.value, (moves[-1:], s.state)
            for a, b in zip(moves, moves[1:], strict=False):
                assert b.from_state == a.to_state, (a, b)  # each move starts where one ended
            # seq: 1..seq, nothing lost, nothing twice; time never goes back.
            assert [e.seq for e in evs] == list(range(1, s.seq + 1))
            assert all(a.at <= b.at for a, b in zip(evs, evs[1:], strict=False))
            assert s.seq >= o.seq and s.version >= o.version
            assert [e.action for e in evs[:2]] == ["receive", "locate"]
            # A terminal state is final.
            if o.state.is_terminal:
                later_events = evs[o.seq:]
                later = {e.action for e in later_events}
                assert later <= (AFTER_MERGED if o.state is State.MERGED else set()), later
                # A merged report's version follows its primary's news, nothing else.
                news = sum(e.action == "primary_changed" for e in later_events)
                assert (s.state, s.version, s.merged_into) == (o.state, o.version + news,
                                                               o.merged_into)
            ends = [k for k, e in enumerate(evs) if e.to_state in
                    {st_.value for st_ in State if st_.is_terminal}]
            if ends:
                self.ever_terminal.add(i)
                assert len(ends) == 1, [(e.seq, e.action) for e in evs]
                later = {e.action for e in evs[ends[0] + 1:]}
                allowed = AFTER_MERGED if s.state is State.MERGED else AFTER_END
                assert later <= allowed, (s.state, later)
            else:
                assert i not in self.ever_terminal
            # Every accepted update in the read model exactly once; implied steps marked.
            direct = Counter(e.action for e in evs if e.action not in SYSTEM_ACTIONS
                             and "implied_by" not in (e.data or {})
                             and "via_incident_id" not in (e.data or {}))
            want = Counter({a: n for (k, a), n in self.accepted.items() if k == i})
            assert direct == want, (dict(direct), dict(want))
            implied: Counter[str] = Counter()
            for k, e in enumerate(evs):
                by = (e.data or {}).get("implied_by")
                if by is None:
                    continue
                nxt = evs[k + 1]
                assert (nxt.action, nxt.actor, nxt.from_state) == (by, e.actor, e.to_state)
                assert (by, e.action) in (("classify", "verify"), ("arrive", "acknowledge"))
                implied[by] += 1
            for action in ("classify", "arrive"):
                assert self.implied_lo[(i, action)] <= implied[action] \
                    <= self.accepted[(i, action)], (action, implied)
            via = Counter(e.data["via_incident_id"] for e in evs
                          if (e.data or {}).get("via_incident_id"))
            for child in set(via) | {c for (p, c) in self.via_hi if p == i}:
                assert self.via_lo[(i, child)] <= via[child] <= self.via_hi[(i, child)], child
            # Merges: each merged report listed once by its primary, with one merged_in.
            merged_in = Counter(e.data["incident_id"] for e in evs if e.action == "merged_in")
            assert all(n == 1 for n in merged_in.values()), merged_in
            assert sorted(merged_in) == sorted(s.merged_incidents), (merged_in,
                                                                    s.merged_incidents)
            assert len(set(s.merged_incidents)) == len(s.merged_incidents)
            for child in s.merged_incidents:
                assert snaps[self.ids.index(child)].state.merged_into == s.id
            if s.state is State.MERGED:
                assert s.merged_into in self.ids and s.merged_into != s.id
                assert s.id in snaps[self.ids.index(s.merged_into)].state.merged_incidents
            else:
                assert s.merged_into is None
        # No merge cycles.
        for start in range(len(snaps)):
            seen, at = set(), snaps[start].state
            while at.merged_into is not None:
                assert at.id not in seen, f"merge cycle through {at.id}"
                seen.add(at.id)
                at = snaps[self.ids.index(at.merged_into)].state
        # Each accepted result lies after the step began and no later than now; an update
        # that found its workflow gone was sent to one that has ended.
        for x in sent:
            if x.refusal and x.refusal.startswith("completed"):
                assert snaps[x.incident].completed, x
            if x.result is not None:
                s, o = snaps[x.incident].state, before[x.incident].state
                assert o.seq < x.result.seq <= s.seq, (x, o.seq, s.seq)
                assert x.result.version <= s.version
                assert not (before[x.incident].completed)


async def start_run(client: Client, db: Database, task_queue: str, n: int) -> Run:
    inputs = [incident_input(category=Category.CRIME, sla_scale=100.0) for _ in range(n)]
    handles = [await start_incident(client, task_queue, inp) for inp in inputs]
    run = Run(client, db, handles, [inp.incident_id for inp in inputs],
              [unit_ref("Đội A"), unit_ref("Đội B")], unit_ref("Đội khác"))
    snaps, _, _ = await run.settle()
    run.snaps = snaps
    return run


async def play(run: Run, plan: list[tuple[Any, ...]]) -> None:
    for number, item in enumerate(plan, 1):
        kind = item[0]
        if kind == "opposite":
            a = item[1]
            b = (a + item[2]) % len(run.ids)
            steps_ = [Step(a, "merge", "operator", target=b),
                      Step(b, "merge", "supervisor", target=a)]
        else:
            steps_ = list(item[1:])
        calls = [(s.incident, *run.resolve(s)) for s in steps_]
        if len(calls) == 1:
            sent = [await run.send(*calls[0])]
        else:
            sent = list(await asyncio.gather(*(run.send(*c) for c in calls)))
        note(f"step {number} {kind}: " + " | ".join(
            f"#{x.incident} {x.action.value} by {x.actor.role.value}"
            f"{'/' + (x.actor.unit_id or '')[:4] if x.actor.unit_id else ''} -> "
            f"{x.result.state.value + ' seq ' + str(x.result.seq) if x.result else x.refusal}"
            for x in sent))
        if len(calls) == 1:
            incident, action, actor, arg = calls[0]
            want = run.expected(incident, action, actor, arg)
            assert (sent[0].result is not None) == want, (
                f"step {number}: {action.value} by {actor.role.value} on "
                f"{run.snaps[incident].state.state.value}: expected "
                f"{'accepted' if want else 'refused'}, got {sent[0].refusal or sent[0].result}")
        if kind == "opposite":
            won = [x for x in sent if x.result is not None]
            assert len(won) <= 1, "two opposite merges both accepted"
        else:
            # Two changes sent with the same If-Match on one incident: at most one wins.
            moved = [x for (i, _, _, arg), x in zip(calls, sent, strict=True)
                     if x.result is not None and x.action in ACTION_TARGET
                     and arg.expected_version == run.snaps[i].state.version]
            assert len({x.incident for x in moved}) == len(moved), moved
        for x in sent:
            run.account(x, single=len(sent) == 1)
        snaps, events, rows = await run.settle()
        run.check(sent, snaps, events, rows)
        if len(sent) == 1 and sent[0].result is None:  # a refused update changes nothing
            for old, new in zip(run.snaps, snaps, strict=True):
                assert (new.state.state, new.state.version, new.state.seq) == (
                    old.state.state, old.state.version, old.state.seq)
        note("   states: " + ", ".join(f"#{k} {s.state.state.value} v{s.state.version} "
                                       f"seq {s.state.seq}"
                                       + (f" -> #{run.ids.index(s.state.merged_into)}"
                                          if s.state.merged_into else "")
                                       for k, s in enumerate(snaps)))
        run.snaps = snaps
    # Seen with --hypothesis-show-statistics: how far the examples reach.
    for snap in run.snaps:
        event(f"ends {snap.state.state.value}")
    event(f"merges accepted: {sum(n for (_, a), n in run.accepted.items() if a == 'merge')}")
    event(f"updates accepted: {min(sum(run.accepted.values()) // 4 * 4, 12)}+")


@settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
async def test_random_actions_keep_the_invariants(data: st.DataObject, dev_client: Client,
                                                  task_queue: str, pg_db: Database) -> None:
    n = data.draw(st.integers(2, 3), label="incidents")
    plan = data.draw(plan_strategy(n), label="plan")
    run = await start_run(dev_client, pg_db, task_queue, n)
    await play(run, plan)
