"""`canhbao`: the admin command line (users, sign-out, wards, demo data, the outbox relay,
serving the web/API, ending executions of retired workflow types)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session, select

from core import seed
from core.db import make_sync_engine
from core.logging import configure_logging
from core.migrate import upgrade
from core.security import end_all_sessions
from core.settings import get_settings
from schema.payloads import RETIRED_WORKFLOW_TYPES
from schema.states import STAFF_ROLES, Role
from schema.tables import Unit, User
from schema.text import clean_line

app = typer.Typer(help="CanhBao administration", no_args_is_help=True)


@app.callback()
def _setup() -> None:
    configure_logging(get_settings())


@app.command()
def migrate() -> None:
    """Bring the database schema to the newest version."""
    upgrade(get_settings().database_url)
    typer.echo("database is up to date")


@app.command("import-wards")
def import_wards(
    path: Annotated[Path | None, typer.Argument(
        help="GeoJSON FeatureCollection with properties.code; default: the setting")] = None,
) -> None:
    """Load ward codes and names (vietnam-provinces) and boundaries (GeoJSON)."""
    settings = get_settings()
    geojson = path or Path(settings.wards_geojson)
    if not geojson.exists():
        raise typer.BadParameter(f"{geojson} does not exist")
    engine = make_sync_engine(settings.database_url)
    count = seed.import_wards(engine, geojson)
    units = seed.ensure_units(engine)
    typer.echo(f"{count} wards, {units} units")


@app.command()
def seed_demo() -> None:
    """Wards, units and (in demo mode only) the demo accounts."""
    settings = get_settings()
    engine = make_sync_engine(settings.database_url)
    upgrade(settings.database_url)
    seed.import_wards(engine, settings.wards_geojson)
    seed.ensure_units(engine)
    if not settings.demo:
        typer.echo("not in demo mode (CANHBAO_DEMO=1): demo accounts not created")
        return
    n = seed.ensure_demo_users(engine, settings.demo_password)
    typer.echo(f"demo data ready ({n} accounts created or checked)")


ROLE_NAMES = [r.value for r in Role if r in STAFF_ROLES]


@app.command("create-user")
def create_user(
    username: str,
    role: Annotated[str, typer.Option(help="/".join(ROLE_NAMES))],
    unit: Annotated[str | None, typer.Option(help="unit code, e.g. cand-ben_thanh")] = None,
    full_name: Annotated[str, typer.Option()] = "",
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          confirmation_prompt=True)] = "",
) -> None:
    """Create a staff account. Names are cleaned like every input (schema.text)."""
    username, full_name = clean_line(username), clean_line(full_name)
    if not username:
        raise typer.BadParameter("username is empty")
    if role not in ROLE_NAMES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLE_NAMES)}")
    if len(password) < 10:
        raise typer.BadParameter("password must have at least 10 characters")
    engine = make_sync_engine(get_settings().database_url)
    with Session(engine) as session:
        if session.exec(select(User).where(User.username == username)).first():
            raise typer.BadParameter(f"user {username} already exists")
        unit_id = None
        if unit:
            row = session.exec(select(Unit).where(Unit.code == unit)).first()
            if row is None:
                raise typer.BadParameter(f"no unit with code {unit}")
            unit_id = row.id
        if role == Role.OFFICER and unit_id is None:
            raise typer.BadParameter("an officer needs --unit")
        seed.ensure_user(session, username, password, role, unit_id, full_name)
        session.commit()
    typer.echo(f"user {username} created ({role})")


def _bump_token_version(session: Session, username: str) -> User:
    """Every token and session of `username` stops working (api/sessions.py)."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise typer.BadParameter(f"no user {username}")
    session.execute(end_all_sessions(user.id))
    return user


@app.command("sign-out")
def sign_out(username: str) -> None:
    """Sign a user out everywhere: every bearer token and browser session ends now."""
    engine = make_sync_engine(get_settings().database_url)
    with Session(engine) as session:
        _bump_token_version(session, username)
        session.commit()
    typer.echo(f"{username} is signed out everywhere")


@app.command("set-password")
def set_password(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          confirmation_prompt=True)] = "",
) -> None:
    """Change a user's password; every earlier token and session of the user ends."""
    if len(password) < 10:
        raise typer.BadParameter("password must have at least 10 characters")
    engine = make_sync_engine(get_settings().database_url)
    with Session(engine) as session:
        user = _bump_token_version(session, username)
        user.password_hash = seed.hash_password(password)
        session.add(user)
        session.commit()
    typer.echo(f"password of {username} changed; earlier sign-ins ended")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="default: CANHBAO_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default: CANHBAO_PORT")] = None,
) -> None:
    """Run the web/API server (uvicorn; proxies trusted only per
    CANHBAO_FORWARDED_ALLOW_IPS)."""
    from core.serving import serve as run

    settings = get_settings()
    update_: dict[str, object] = {}
    if host:
        update_["host"] = host
    if port:
        update_["port"] = port
    run(settings.model_copy(update=update_))


@app.command("relay-once")
def relay_once() -> None:
    """Start the workflows of accepted reports that have none yet (the outbox relay)."""
    from core.outbox import run_relay_once_standalone

    started = asyncio.run(run_relay_once_standalone(get_settings()))
    typer.echo(f"{started} workflow(s) started")


@app.command("retired-workflows")
def retired_workflows(
    terminate: Annotated[bool, typer.Option(
        "--terminate", help="terminate every one listed, with --reason")] = False,
    reason: Annotated[str, typer.Option(help="kept in each terminated history")] = (
        "workflow type retired: no worker runs it any more"),
) -> None:
    """List the open executions of retired incident workflow types
    (schema.payloads.RETIRED_WORKFLOW_TYPES) on the configured Temporal; with
    --terminate, end them. Run it before a type's code is removed."""
    from core import retired
    from core.temporal import connect

    async def run() -> None:
        client = await connect(get_settings())
        found = await retired.open_executions(client, RETIRED_WORKFLOW_TYPES)
        for ex in found:
            typer.echo(f"{ex.workflow_id}\t{ex.run_id}\t{ex.workflow_type}\t"
                       f"started {ex.started.isoformat()}")
        typer.echo(f"{len(found)} open execution(s) of {', '.join(RETIRED_WORKFLOW_TYPES)}")
        if terminate and found:
            ended = await retired.terminate(client, found, reason)
            typer.echo(f"{ended} terminated ({reason})")

    asyncio.run(run())


if __name__ == "__main__":
    app()
