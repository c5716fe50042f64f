"""The authorisation matrix: every action × every kind of caller × every incident state,
over HTTP, compared with the policy as written once — schema/states.py for what is legal
and who may take it (`ACTION_ROLES`, `role_may`, `steps`, `UNIT_SCOPED`,
`may_add_info_to_merged`), api/scope.py for who sees which incident (`sees_unit`).

Everything here is generated from that policy, so a new action, role or state is covered
without touching this file:
- callers: anonymous, the citizen (the report's tracking token), one account per staff
  role, and for officers each relation to the incident (of the assigned unit, the ward
  police of the incident's ward when a city unit was assigned, another unit, no unit);
- states: each is reached by the shortest sequence of actions the policy allows from
  `received`, driven over HTTP by a caller the policy lets take them;
- the expected answer of a cell is computed from the policy (`expected`): 200 where it
  allows, else the refusal it implies (401 no staff sign-in, 404 not visible, 403 role
  never, 409 not in this state, 422 no such staff action).

The decisions the policy states (schema/states.py, ACTION_ROLES): a supervisor may do all
an operator does (verify, classify, route, reject, merge); an admin acts on no incident.

A cell that changes the state runs on an incident of its own in that state; the others
share one incident per state (which must still be in it afterwards). Each staff caller's
`allowed_actions` on GET must list exactly the actions its cells allow.

The staff pages post the same actions through form routes of their own (/console,
/officer, /supervisor: web/staffkit.py `act_from_form`), signed in with a browser session
and its CSRF token. Their cells (`page_expected`) are the page's own refusal — the sign-in
page without a staff session, 403 to a role the page is not for (CONSOLE_ROLES,
OFFICER_ROLES, SUPERVISOR_ROLES), 404 for a citizen's action — or else exactly the API's
`expected`; an allowed cell must show the action in the timeline. They are sent as HTMX
(the block and a toast event, or a toast aimed at #toasts, or HX-Redirect to /login) or, one
in three, as a plain form (303 back to the page or to /login, or the refusal's page). Only
one state of each kind the pages tell apart is taken (`representative_states`), and the
page's own refusals, which come before the incident is read, once each, in turn.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.routing import APIRoute
from sqlmodel import Session, select

from api.auth import SESSION_COOKIE, Principal, make_token
from api.scope import sees_unit
from core.db import make_sync_engine
from schema.actions import STAFF_ACTIONS
from schema.states import (
    ACTION_ROLES,
    STAFF_ROLES,
    UNIT_SCOPED,
    Action,
    Role,
    State,
    may_add_info_to_merged,
    may_take,
    steps,
)
from schema.tables import Unit, User
from tests.api.conftest import PASSWORD, WARD_A, WARD_B, Stack, eventually
from web.staffkit import CONSOLE_ROLES, OFFICER_ROLES, SUPERVISOR_ROLES

ASSIGNED_UNIT = "cs113"  # incidents are routed to a city unit: the ward police is apart
PARALLEL = 6


@dataclass(frozen=True)
class Who:
    """A kind of caller. `relation` says how an officer's unit relates to the incident."""

    name: str
    role: Role | None  # None: anonymous
    relation: str | None = None  # assigned | ward | other | None (no unit) | command


def callers() -> list[Who]:
    out = [Who("anonymous", None), Who("citizen", Role.CITIZEN)]
    for role in sorted(STAFF_ROLES):
        if role is Role.OFFICER:
            out += [Who("officer of the assigned unit", role, "assigned"),
                    Who("ward police of the incident's ward", role, "ward"),
                    Who("officer of another unit", role, "other"),
                    Who("officer without a unit", role, None)]
        else:
            out.append(Who(role.value, role, "command"))
    return out


@dataclass
class Units:
    assigned: str
    ward: str
    other: str
    command: str

    def of(self, relation: str | None) -> str | None:
        return getattr(self, relation) if relation else None


def principal(who: Who, units: Units) -> Principal:
    assert who.role is not None
    return Principal(id=who.name, username=who.name, role=who.role,
                     unit_id=units.of(who.relation), full_name="", sid="", via="bearer")


def expected(who: Who, action: Action, state: State, incident_unit: str | None,
             units: Units) -> int:
    """What the policy says the HTTP layer answers (200: allowed)."""
    if action not in STAFF_ACTIONS:  # the citizen's, by tracking token
        if who.role is Role.CITIZEN:
            # A merged report's primary is the matrix's merge target, which stays received.
            allowed = may_take(action, Role.CITIZEN, state) or (
                action is Action.ADD_INFO and may_add_info_to_merged(state, State.RECEIVED))
            return 200 if allowed else 409
        return 404 if who.role is None else 422  # a wrong token / no such staff action
    if who.role is None or who.role not in STAFF_ROLES:
        return 401
    user = principal(who, units)
    if not sees_unit(user, incident_unit):
        return 404
    if who.role not in ACTION_ROLES[action]:
        return 403
    if not may_take(action, who.role, state):
        return 409
    if who.role is Role.OFFICER and action in UNIT_SCOPED and user.unit_id != incident_unit:
        return 403
    return 200


@dataclass
class Case:
    """One incident of the matrix, with its citizen's token and the unit it is with."""

    id: str
    token: str
    state: State = State.RECEIVED
    unit: str | None = None


@dataclass
class Matrix:
    stack: Stack
    units: Units
    headers: dict[str, dict[str, str]]
    merge_target: str = ""
    paths: dict[State, list[Action]] = field(default_factory=dict)
    drivers: dict[tuple[State, Action], Who] = field(default_factory=dict)
    unit_at: dict[State, str | None] = field(default_factory=dict)  # unit once driven there

    def body(self, action: Action, driving: bool) -> dict[str, Any]:
        """A valid body: a refusal is then the policy's, never the body's. Driving routes to
        the assigned unit; a cell routes elsewhere (the same unit again changes nothing)."""
        route_to = self.units.assigned if driving else self.units.other
        bodies: dict[Action, dict[str, Any]] = {
            Action.VERIFY: {}, Action.ACKNOWLEDGE: {}, Action.ARRIVE: {},
            Action.REJECT: {"reason": "Tin báo không đúng sự thật"},
            Action.MERGE: {"into_incident_id": self.merge_target},
            Action.CLASSIFY: {"category": "crime", "priority": 2},
            Action.ROUTE: {"unit_id": route_to},
            Action.REASSIGN: {"unit_id": route_to, "reason": "Điều chỉnh lực lượng"},
            Action.NOTE: {"text": "Ghi chú kiểm tra quyền"},
            Action.MESSAGE: {"text": "Anh/chị có thấy biển số xe không?"},
            Action.CLOSE: {"outcome": "resolved", "summary": "Đã xử lý xong"},
            Action.PUBLISH_ALERT: {"headline": "Cảnh báo", "instruction": "Tránh khu vực",
                                   "radius_m": 500},
            Action.CANCEL: {"reason": "Báo nhầm"}, Action.ADD_INFO: {"text": "Thêm chi tiết"},
        }
        missing = set(Action) - set(bodies)
        assert not missing, f"give a valid body for {missing} in tests/api/test_authz_matrix.py"
        return bodies[action]

    async def call(self, who: Who, action: Action, case: Case,
                   driving: bool = False) -> httpx.Response:
        """The cell's request through the API."""
        return await _again(lambda: self._call(who, action, case, driving))

    async def _call(self, who: Who, action: Action, case: Case,
                    driving: bool) -> httpx.Response:
        client = self.stack.client
        body = self.body(action, driving)
        if action not in STAFF_ACTIONS and who.role in (Role.CITIZEN, None):
            token = case.token if who.role is Role.CITIZEN else "no-such-token-" + case.id
            name = "info" if action is Action.ADD_INFO else action.value
            return await client.post(f"/api/v1/track/{token}/{name}", json=body)
        if who.role is Role.CITIZEN:
            headers = {"Authorization": f"Bearer {case.token}"}
        else:
            headers = self.headers.get(who.name, {})
        return await client.post(f"/api/v1/incidents/{case.id}/actions/{action.value}",
                                 json=body, headers=headers)

    async def new_case(self) -> Case:
        accepted = await self.stack.submit(WARD_A)
        await self.stack.wait_projected(accepted["incident_id"])
        return Case(accepted["incident_id"], accepted["tracking_token"])

    async def drive(self, state: State) -> Case:
        """A new incident brought to `state` along the policy's shortest path."""
        case = await self.new_case()
        for action in self.paths[state]:
            who = self.drivers[(case.state, action)]
            r = await self.call(who, action, case, driving=True)
            assert r.status_code == 200, (state, action, who.name, r.text)
            case.state = steps(action, case.state)[-1]  # type: ignore[index]
            if action in (Action.ROUTE, Action.REASSIGN):
                case.unit = self.units.assigned
        await self.settled(case)
        return case

    async def settled(self, case: Case) -> None:
        async def there() -> bool:
            r = await self.stack.detail(case.id, "supervisor")
            return r.status_code == 200 and r.json()["state"] == case.state.value
        await eventually(there, 20)

    def plan(self, everyone: list[Who]) -> None:
        """The shortest path of actions from `received` to every state, each step taken by
        a caller the policy allows (staff first, the citizen last)."""
        order = sorted(everyone, key=lambda w: (w.role is Role.CITIZEN, w.role is None))
        self.paths = {State.RECEIVED: []}
        units: dict[State, str | None] = {State.RECEIVED: None}
        queue = deque([State.RECEIVED])
        while queue:
            state = queue.popleft()
            for action in Action:
                path = steps(action, state)
                if not path:
                    continue
                unit = self.units.assigned if action in (Action.ROUTE, Action.REASSIGN) \
                    else units[state]
                driver = next((w for w in order
                               if expected(w, action, state, units[state], self.units) == 200),
                              None)
                if driver is None:
                    continue
                self.drivers.setdefault((state, action), driver)
                target = path[-1]
                if target not in self.paths:
                    self.paths[target] = [*self.paths[state], action]
                    units[target] = unit
                    queue.append(target)
        self.unit_at = units
        unreachable = set(State) - set(self.paths)
        assert not unreachable, f"the policy reaches no path to {unreachable}"


async def _again(send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """A cell's request, sent again (at most 5 times) while the answer is 503, which asks to
    try again (Temporal slow to answer on a loaded machine): not a decision."""
    for _ in range(5):
        r = await send()
        if r.status_code != 503:
            return r
        await asyncio.sleep(1)
    return r


def account_name(who: Who) -> str:
    return "t.matrix." + who.name.replace(" ", "-").replace("'", "")


def _accounts(stack: Stack, units: Units, everyone: list[Who]) -> dict[str, dict[str, str]]:
    engine = make_sync_engine(stack.settings.database_url)
    template = stack.people.users["operator"]
    headers: dict[str, dict[str, str]] = {}
    with Session(engine) as s:
        for who in everyone:
            if who.role is None or who.role not in STAFF_ROLES:
                continue
            username = account_name(who)
            user = s.exec(select(User).where(User.username == username)).first()
            if user is None:
                user = User(username=username, password_hash=template.password_hash,
                            role=who.role.value, unit_id=units.of(who.relation),
                            full_name=who.name)
                s.add(user)
                s.commit()
            s.refresh(user)
            headers[who.name] = {"Authorization": f"Bearer {make_token(stack.settings, user)}"}
    engine.dispose()
    return headers


def _units(stack: Stack) -> Units:
    engine = make_sync_engine(stack.settings.database_url)
    with Session(engine) as s:
        def unit(code: str) -> str:
            return s.exec(select(Unit).where(Unit.code == code)).one().id
        units = Units(assigned=unit(ASSIGNED_UNIT), ward=unit(f"cand-{WARD_A}"),
                      other=unit(f"cand-{WARD_B}"), command=unit("ttttch"))
    engine.dispose()
    return units


async def _matrix(stack: Stack, everyone: list[Who]) -> Matrix:
    """The matrix's accounts, paths to every state and merge target."""
    units = _units(stack)
    matrix = Matrix(stack, units, _accounts(stack, units, everyone))
    matrix.plan(everyone)
    matrix.merge_target = (await matrix.new_case()).id
    return matrix


async def test_every_action_role_and_state_obeys_the_policy(stack: Stack) -> None:
    everyone = callers()
    matrix = await _matrix(stack, everyone)
    units = matrix.units
    gate = asyncio.Semaphore(PARALLEL)
    cells = 0
    wrong: list[str] = []

    async def check(who: Who, action: Action, case: Case, state: State) -> None:
        nonlocal cells
        want = expected(who, action, state, case.unit, units)
        r = await matrix.call(who, action, case)
        cells += 1
        if r.status_code != want:
            wrong.append(f"{action.value} by {who.name} in {state.value}: "
                         f"policy {want}, HTTP {r.status_code} {r.text[:160]}")

    async def one_state(state: State) -> None:
        async with gate:
            shared = await matrix.drive(state)
        changing: list[tuple[Who, Action]] = []
        for action in Action:
            for who in everyone:
                if expected(who, action, state, shared.unit, units) == 200 \
                        and steps(action, state):
                    changing.append((who, action))  # moves the state: an incident of its own
                    continue
                async with gate:
                    await check(who, action, shared, state)
        async with gate:
            await matrix.settled(shared)  # nothing in the shared cells moved it
            for who in everyone:
                if who.role not in STAFF_ROLES:
                    continue
                r = await stack.client.get(f"/api/v1/incidents/{shared.id}",
                                           headers=matrix.headers[who.name])
                visible = sees_unit(principal(who, units), shared.unit)
                if not visible:
                    if r.status_code != 404:
                        wrong.append(f"GET by {who.name} in {state.value}: {r.status_code}")
                    continue
                offered = set(r.json()["allowed_actions"])
                policy = {a.value for a in STAFF_ACTIONS
                          if expected(who, a, state, shared.unit, units) == 200}
                if offered != policy:
                    wrong.append(f"allowed_actions of {who.name} in {state.value}: "
                                 f"{sorted(offered)} but the policy says {sorted(policy)}")

        async def fresh(who: Who, action: Action) -> None:
            async with gate:
                case = await matrix.drive(state)
                await check(who, action, case, state)
        await asyncio.gather(*(fresh(w, a) for w, a in changing))

    await asyncio.gather(*(one_state(s) for s in State))
    size = len(list(Action)) * len(everyone) * len(list(State))
    print(f"\nauthorisation matrix: {cells} cells "  # noqa: T201
          f"({len(list(Action))} actions × {len(everyone)} callers × {len(list(State))} states)")
    assert cells == size
    assert not wrong, "\n".join(wrong)


async def test_staff_routes_refuse_anonymous_and_citizen_tokens(stack: Stack) -> None:
    """Every route that needs a staff sign-in (its dependencies include `current_user`)
    answers 401 without one and to a citizen's tracking token used as a bearer token."""
    from api.deps import current_user

    accepted = await stack.submit(WARD_A)
    token = accepted["tracking_token"]

    def needs_staff(dependant: Any) -> bool:
        return any(d.call is current_user or needs_staff(d) for d in dependant.dependencies)

    routes = [r for r in api_routes(stack.app.routes) if needs_staff(r.dependant)]
    assert len(routes) >= 10
    fill = {"incident_id": accepted["incident_id"], "action": "note",
            "attachment_id": str(uuid.uuid4()), "kind": "thumbnail"}
    for route in routes:
        path = route.path.format(**{k: fill.get(k, "x") for k in route.param_convertors})
        for method in sorted(route.methods or ()):
            for headers in ({}, {"Authorization": f"Bearer {token}"},
                            {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
                r = await stack.client.request(method, path, headers=headers, json={})
                assert r.status_code == 401, (method, path, headers, r.status_code, r.text)


# --- the staff pages' form routes --------------------------------------------------------
# Each staff page posts the same actions through a form route of its own
# (web/staffkit.py `act_from_form`), open to the page's roles only, then through the same
# service as the API. Their cells are generated from the same policy: `page_expected` adds
# only what the page itself decides to `expected`.

PAGES: dict[str, frozenset[Role]] = {"/console": CONSOLE_ROLES, "/officer": OFFICER_ROLES,
                                      "/supervisor": SUPERVISOR_ROLES}
LOGIN = "sign-in page"  # the browser is sent to /login
Answer = int | str


def page_refusal(page: str, who: Who, action: Action) -> Answer | None:
    """What a page's form route answers before the policy is asked, whatever the incident:
    the sign-in page without a staff session, 403 to a role the page is not for, 404 for
    an action that is not staff's (no page has its form); None: the policy decides."""
    if who.role is None or who.role not in STAFF_ROLES:
        return LOGIN
    if who.role not in PAGES[page]:
        return 403
    if action not in STAFF_ACTIONS:
        return 404
    return None


def page_expected(page: str, who: Who, action: Action, state: State,
                  incident_unit: str | None, units: Units) -> Answer:
    """What a page's form route answers: its own refusal, else what the API answers to
    the same caller."""
    refusal = page_refusal(page, who, action)
    return expected(who, action, state, incident_unit, units) if refusal is None else refusal


def page_answer(r: httpx.Response, page: str, htmx: bool) -> Answer:
    """The page's answer in `page_expected`'s terms. HTMX: the page's block with a toast
    event (200), the refusal as a toast aimed at #toasts, or HX-Redirect to /login (204).
    A plain form: 303 back to the page, the refusal as a short page, or 303 to /login."""
    status = r.status_code
    if htmx:
        if status == 204:
            return LOGIN if r.headers.get("hx-redirect") == "/login" else "204 elsewhere"
        if status == 200:
            return 200 if "staff-toast" in r.headers.get("hx-trigger", "") else "200, no toast"
        return status if r.headers.get("hx-retarget") == "#toasts" else f"{status}, no toast"
    if status == 303:
        target = r.headers.get("location", "")
        if target == "/login" or target.startswith("/login?"):
            return LOGIN
        return 200 if target.split("?")[0] == page else f"303 to {target}"
    return status


def representative_states(matrix: Matrix, everyone: list[Who]) -> list[State]:
    """One state of each kind the pages tell apart: states where every page cell expects
    the same answer and every allowed action keeps or moves the state alike are one."""
    kinds: dict[tuple[Any, ...], State] = {}
    for state in State:
        kind = tuple((page_expected(page, who, action, state, matrix.unit_at[state],
                                    matrix.units), bool(steps(action, state)))
                     for page in PAGES for who in everyone for action in Action)
        kinds.setdefault(kind, state)
    return list(kinds.values())


async def _sessions(stack: Stack, everyone: list[Who]) -> dict[str, dict[str, str]]:
    """A browser session (cookie and CSRF header) per staff caller, signed in through the
    login form; the shared client keeps no cookie of it."""
    out: dict[str, dict[str, str]] = {}
    for who in everyone:
        if who.role is None or who.role not in STAFF_ROLES:
            continue
        r = await stack.client.post("/api/v1/auth/login", data={
            "username": account_name(who), "password": PASSWORD},
            headers={"Origin": str(stack.client.base_url)})
        assert r.status_code == 200, r.text
        out[who.name] = {"Cookie": f"{SESSION_COOKIE}={r.cookies[SESSION_COOKIE]}",
                         "X-CSRF-Token": r.json()["csrf_token"]}
        stack.client.cookies.clear()
    return out


async def page_call(matrix: Matrix, sessions: dict[str, dict[str, str]], page: str,
                    who: Who, action: Action, case: Case, htmx: bool) -> httpx.Response:
    """The cell's form post, with the body the API cell sends as form fields. The citizen
    has no session: their tracking token is tried as a bearer token."""
    if who.role is Role.CITIZEN:
        headers = {"Authorization": f"Bearer {case.token}"}
    else:
        headers = dict(sessions.get(who.name, {}))
    if htmx:
        headers["HX-Request"] = "true"
    form = {k: str(v) for k, v in matrix.body(action, driving=False).items()}
    return await _again(lambda: matrix.stack.client.post(
        f"{page}/incidents/{case.id}/actions/{action.value}", data=form, headers=headers))


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every route of the app, also those of the routers it includes."""
    out: list[APIRoute] = []
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            out += api_routes(inner.routes)
        elif isinstance(r, APIRoute):
            out.append(r)
    return out


def _page_routes(stack: Stack) -> set[str]:
    """The pages that post incident actions through a form route of their own."""
    suffix = "/incidents/{incident_id}/actions/{action}"
    return {r.path.removesuffix(suffix) for r in api_routes(stack.app.routes)
            if r.path.endswith(suffix) and "POST" in (r.methods or ())
            and not r.path.startswith("/api/")}


async def test_every_page_form_obeys_the_policy_and_its_page(stack: Stack) -> None:
    """Every page × caller × staff action × representative state where the policy decides;
    the page's own refusals (no session, not the page's role, no such staff action), which
    come before the incident is read, once each, taken in turn in each of those states.
    An allowed cell must have changed the incident as the API would: its state, and its
    timeline has the action's event."""
    assert _page_routes(stack) == set(PAGES), "give the new page's roles in PAGES"
    everyone = callers()
    matrix = await _matrix(stack, everyone)
    sessions = await _sessions(stack, everyone)
    units = matrix.units
    states = representative_states(matrix, everyone)
    refused_first = [(page, who, action) for page in PAGES for who in everyone
                     for action in Action if page_refusal(page, who, action) is not None]
    turn = {cell: states[i % len(states)] for i, cell in enumerate(refused_first)}
    ready: dict[State, list[Case]] = {state: [] for state in State}  # driven, not yet used
    gate = asyncio.Semaphore(PARALLEL)
    cells = 0
    plain = 0
    wrong: list[str] = []

    async def snapshot(case: Case) -> tuple[str, dict[int, str]]:
        """The incident's state and its timeline ({seq: action})."""
        r = await stack.detail(case.id, "supervisor")
        assert r.status_code == 200, r.text
        return r.json()["state"], {e["seq"]: e["action"] for e in r.json()["timeline"]}

    async def check(page: str, who: Who, action: Action, case: Case, state: State) -> None:
        nonlocal cells, plain
        want = page_expected(page, who, action, state, case.unit, units)
        # A plain form (no JavaScript) for one cell in three, spread over every dimension.
        htmx = (list(PAGES).index(page) + everyone.index(who) + list(Action).index(action)
                + list(State).index(state)) % 3 != 0
        before = await snapshot(case) if want == 200 else None
        r = await page_call(matrix, sessions, page, who, action, case, htmx)
        got = page_answer(r, page, htmx)
        cells += 1
        plain += not htmx
        mode = "htmx" if htmx else "plain form"
        cell = f"{page} {action.value} by {who.name} in {state.value} ({mode})"
        if got != want:
            text = " ".join(r.text.split())[:160]
            wrong.append(f"{cell}: policy {want}, page {got} ({r.status_code} {text})")
            return
        if before is None:
            return
        path = steps(action, state)  # allowed: applied as the API would
        target = path[-1] if path else state

        async def applied() -> bool:
            state_now, timeline = await snapshot(case)
            return state_now == target.value and action.value in {
                a for seq, a in timeline.items() if seq not in before[1]}
        try:
            await eventually(applied, 20)
        except BaseException:
            wrong.append(f"{cell}: answered 200 but no {action.value} is in the timeline "
                         f"or the state is not {target.value}: {await snapshot(case)}")
            return
        if action in (Action.ROUTE, Action.REASSIGN):
            case.unit = units.other  # the cells route elsewhere
        if case is not shared_of.get(state) and case.unit == matrix.unit_at[target]:
            case.state = target
            ready[target].append(case)  # as if driven there: serves a later cell

    shared_of: dict[State, Case] = {}

    async def one_state(state: State) -> None:
        async with gate:
            shared = shared_of[state] = await matrix.drive(state)
        changing: list[tuple[str, Who, Action]] = []
        for page in PAGES:
            for action in Action:
                for who in everyone:
                    if page_refusal(page, who, action) is not None \
                            and turn[(page, who, action)] is not state:
                        continue  # checked in its turn
                    if page_expected(page, who, action, state, shared.unit, units) == 200 \
                            and steps(action, state):
                        changing.append((page, who, action))  # an incident of its own
                        continue
                    async with gate:
                        await check(page, who, action, shared, state)
        async with gate:
            try:
                await matrix.settled(shared)  # nothing in the shared cells moved it
            except BaseException:
                wrong.append(f"the shared cells moved the incident in {state.value}: "
                             f"{await snapshot(shared)}")

        async def fresh(page: str, who: Who, action: Action) -> None:
            async with gate:
                case = ready[state].pop() if ready[state] else await matrix.drive(state)
                await check(page, who, action, case, state)
        await asyncio.gather(*(fresh(p, w, a) for p, w, a in changing))

    await asyncio.gather(*(one_state(s) for s in states))

    # A session without its CSRF token is refused (403) before anything else, also where
    # the caller may note: one routed incident, each page and caller of the page.
    case = await matrix.drive(State.ROUTED)
    _, timeline = await snapshot(case)
    forged = 0
    for page, roles in PAGES.items():
        for who in everyone:
            if who.role not in roles:
                continue
            htmx = forged % 2 == 0
            headers = {"Cookie": sessions[who.name]["Cookie"]} | (
                {"HX-Request": "true"} if htmx else {})
            r = await stack.client.post(f"{page}/incidents/{case.id}/actions/note",
                                        data={"text": "Ghi chú giả mạo"}, headers=headers)
            forged += 1
            if page_answer(r, page, htmx) != 403:
                wrong.append(f"{page} note by {who.name} without CSRF: {r.status_code}")
    if (await snapshot(case))[1] != timeline:
        wrong.append("a note without CSRF token was taken")
    decided = sum(page_refusal(p, w, a) is None for p in PAGES for w in everyone for a in Action)
    print(f"\npage form matrix: {cells} cells ({plain} as plain forms): "  # noqa: T201
          f"{decided} page × caller × action cells the policy decides × {len(states)} "
          f"states ({', '.join(s.value for s in states)}) + {len(refused_first)} the page "
          f"refuses first; {len(PAGES)} pages, {len(everyone)} callers, {len(Action)} actions;"
          f" and {forged} posts without the CSRF token")
    assert cells == decided * len(states) + len(refused_first)
    assert not wrong, "\n".join(wrong)
