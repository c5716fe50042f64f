"""Places, units and staff accounts: wards, police and rescue units, users, their
signed-out sessions and failed logins.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from schema.tables.columns import BIGINT_PK, new_id, utc_field, utcnow


class Ward(SQLModel, table=True):
    __tablename__ = "wards"
    code: int = Field(primary_key=True)  # official code (vietnam-provinces)
    name: str
    codename: str = Field(index=True)
    short_codename: str = Field(index=True)  # e.g. ben_thanh, for demo officer accounts
    division_type: str = ""
    lat: float | None = None  # a point inside the ward, for maps
    lon: float | None = None
    geometry: str | None = Field(default=None, sa_column=Column(Text))  # GeoJSON


class UnitBase(SQLModel):
    code: str = Field(index=True, unique=True)  # e.g. cand-ben_thanh, pccc-city
    name: str
    kind: str  # ward_police, rapid_response, fire_rescue, traffic_police, criminal_police, command
    ward_code: int | None = Field(default=None, foreign_key="wards.code", index=True)
    lat: float | None = None  # station location
    lon: float | None = None
    phone: str | None = None
    active: bool = True


class Unit(UnitBase, table=True):
    __tablename__ = "units"
    id: str = Field(default_factory=new_id, primary_key=True)


class UserBase(SQLModel):
    username: str = Field(index=True, unique=True)
    full_name: str = ""
    role: str  # operator, officer, supervisor, admin
    unit_id: str | None = Field(default=None, foreign_key="units.id", index=True)
    active: bool = True
    locale: str = "vi"


class User(UserBase, table=True):
    __tablename__ = "users"
    id: str = Field(default_factory=new_id, primary_key=True)
    password_hash: str
    created_at: datetime = utc_field(default_factory=utcnow)
    # Part of every token and session cookie; raising it ends them all (password change,
    # "sign out everywhere").
    token_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class RevokedSession(SQLModel, table=True):
    """A token or session cookie signed out before it expires (by its `sid`). Rows past
    `expires_at` are useless (the signature has expired) and are purged."""

    __tablename__ = "revoked_sessions"
    sid: str = Field(primary_key=True)
    user_id: str = Field(index=True)
    revoked_at: datetime = utc_field(default_factory=utcnow)
    expires_at: datetime = utc_field(index=True)


class LoginAttempt(SQLModel, table=True):
    """Failed logins, for throttling by username and by address."""

    __tablename__ = "login_attempts"
    id: int | None = Field(
        default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True)
    )
    username: str = Field(index=True)
    address: str = Field(default="", index=True)
    at: datetime = utc_field(default_factory=utcnow, index=True)
