"""FastAPI dependencies shared by the API routes and the web pages, as `Annotated`
aliases: a route declares what it uses (`db: DbDep`, `user: CurrentUser`, ...). Every
part of the process comes from the one Infra on the app (api.infra.infra_of)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from api.auth import Principal, principal_from_request
from api.cases import Cases
from api.errors import ApiError, request_lang
from api.infra import Infra, infra_of
from core.db import Database
from core.settings import Settings
from core.storage import Storage
from schema import words


def get_infra(request: Request) -> Infra:
    return infra_of(request.app)


InfraDep = Annotated[Infra, Depends(get_infra)]


def get_settings_dep(infra: InfraDep) -> Settings:
    return infra.settings


def get_db(infra: InfraDep) -> Database:
    return infra.db


async def get_session(infra: InfraDep) -> AsyncIterator[AsyncSession]:
    """One session for the request (not for streamed answers: use DbDep there)."""
    async with infra.db.session() as session:
        yield session


def get_storage(infra: InfraDep) -> Storage:
    return infra.storage


def get_cases(infra: InfraDep) -> Cases:
    return infra.cases


async def current_user(request: Request) -> Principal:
    """The signed-in staff member; 401 otherwise."""
    principal = await principal_from_request(request)
    if principal is None:
        raise ApiError(401, "unauthorized", *words.both("error.unauthorized"),
                       headers={"WWW-Authenticate": "Bearer"})
    return principal


def is_htmx(request: Request) -> bool:
    """Whether HTMX sent the request (it then wants a fragment)."""
    return request.headers.get("hx-request", "").lower() == "true"


def get_lang(request: Request) -> str:
    return request_lang(request)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DbDep = Annotated[Database, Depends(get_db)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
StorageDep = Annotated[Storage, Depends(get_storage)]
CasesDep = Annotated[Cases, Depends(get_cases)]
CurrentUser = Annotated[Principal, Depends(current_user)]
HtmxDep = Annotated[bool, Depends(is_htmx)]
LangDep = Annotated[str, Depends(get_lang)]
