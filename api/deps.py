"""FastAPI dependencies shared by the API routes and the web pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from api.auth import Principal, principal_from_request
from api.errors import ApiError, request_lang
from api.temporal import TemporalHolder, TemporalUnavailable
from core.db import Database
from core.settings import Settings
from core.storage import Storage


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_db(request: Request) -> Database:
    return request.app.state.db


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.db.session() as session:
        yield session


def get_storage(request: Request) -> Storage:
    return request.app.state.storage


def get_holder(request: Request) -> TemporalHolder:
    return request.app.state.temporal


class TemporalDown(ApiError):
    def __init__(self) -> None:
        super().__init__(503, "temporal_unavailable",
                         "Hệ thống điều phối tạm thời không sẵn sàng, vui lòng thử lại",
                         "The workflow service is unavailable, try again",
                         headers={"Retry-After": "5"})


async def get_temporal(request: Request) -> Client:
    try:
        return await request.app.state.temporal.get()
    except TemporalUnavailable as exc:
        raise TemporalDown() from exc


async def optional_user(request: Request) -> Principal | None:
    return await principal_from_request(request)


async def current_user(request: Request) -> Principal:
    principal = await principal_from_request(request)
    if principal is None:
        raise ApiError(401, "unauthorized", "Cần đăng nhập", "Authentication required",
                       headers={"WWW-Authenticate": "Bearer"})
    return principal


def require_roles(*roles: str):
    """A dependency that lets only the given roles through (403 otherwise)."""

    async def check(user: Annotated[Principal, Depends(current_user)]) -> Principal:
        if user.role not in roles:
            raise ApiError(403, "forbidden", "Vai trò của bạn không được phép",
                           "Your role may not do this")
        return user

    return check


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request", "").lower() == "true"


def get_lang(request: Request) -> str:
    return request_lang(request)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DbDep = Annotated[Database, Depends(get_db)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
StorageDep = Annotated[Storage, Depends(get_storage)]
HolderDep = Annotated[TemporalHolder, Depends(get_holder)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
CurrentUser = Annotated[Principal, Depends(current_user)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]
HtmxDep = Annotated[bool, Depends(is_htmx)]
LangDep = Annotated[str, Depends(get_lang)]
