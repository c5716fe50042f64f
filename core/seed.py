"""Reference data: HCMC wards (codes and names from `vietnam-provinces`, boundaries from a
GeoJSON file), ward police and city units, and in demo mode the demo accounts.

Every function here is idempotent: run it again and it updates what it finds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import structlog
from shapely.geometry import shape
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from vietnam_provinces import Ward as VnWard

from core.geo import hcmc_wards, load_features
from core.security import hash_password
from schema.tables import Unit, User, Ward

log = structlog.get_logger(__name__)

_PREFIXES = ("phuong_", "xa_", "dac_khu_")


@dataclass(frozen=True)
class CityUnit:
    code: str
    name: str
    kind: str
    lat: float
    lon: float
    phone: str | None = None


# City-level operational units. Station locations are the units' headquarters areas.
CITY_UNITS: tuple[CityUnit, ...] = (
    CityUnit("ttttch", "Trung tâm Thông tin chỉ huy CATP", "command", 10.7769, 106.7009, "113"),
    CityUnit("cs113", "Cảnh sát 113 (Phản ứng nhanh)", "rapid_response", 10.7797, 106.6990,
             "113"),
    CityUnit("pccc", "Cảnh sát PCCC và CNCH", "fire_rescue", 10.7626, 106.6822, "114"),
    CityUnit("csgt", "Phòng Cảnh sát giao thông", "traffic_police", 10.7890, 106.6833),
    CityUnit("cshs", "Phòng Cảnh sát hình sự", "criminal_police", 10.7760, 106.6950),
)


def short_codenames(wards: list[VnWard]) -> dict[int, str]:
    """`phuong_ben_thanh` → `ben_thanh`; when two wards would share a short name (a phường
    and a xã both called Thạnh An), the non-phường keeps its full codename."""
    short: dict[int, str] = {}
    taken: dict[str, int] = {}
    for w in sorted(wards, key=lambda w: (not w.codename.startswith("phuong_"), int(w.code))):
        name = w.codename
        for p in _PREFIXES:
            if name.startswith(p):
                name = name[len(p):]
                break
        if name in taken:
            name = w.codename
        taken[name] = int(w.code)
        short[int(w.code)] = name
    return short


def import_wards(engine: Engine, geojson_path: str | Path | None) -> int:
    """Upsert the 168 wards; attach boundaries where the file has them. Returns the count."""
    wards = hcmc_wards()
    shorts = short_codenames(wards)
    has_file = bool(geojson_path) and Path(str(geojson_path)).exists()
    boundaries = ({code: geometry for code, _, geometry in load_features(str(geojson_path))}
                  if has_file else {})
    with Session(engine) as session:
        for w in wards:
            code = int(w.code)
            row = session.get(Ward, code) or Ward(code=code, name=w.name, codename=w.codename,
                                                  short_codename=shorts[code])
            row.name = " ".join(w.name.split())
            row.codename = w.codename
            row.short_codename = shorts[code]
            row.division_type = w.division_type.value
            geom = boundaries.get(code)
            if geom is not None:
                point = shape(geom).representative_point()
                row.lat, row.lon = round(point.y, 6), round(point.x, 6)
                row.geometry = json.dumps(geom, separators=(",", ":"))
            session.add(row)
        session.commit()
    log.info("wards imported", count=len(wards), with_boundaries=len(boundaries))
    return len(wards)


def ensure_units(engine: Engine) -> int:
    """One ward police unit per ward, plus the city units."""
    with Session(engine) as session:
        existing = {u.code: u for u in session.exec(select(Unit)).all()}
        count = 0
        for ward in session.exec(select(Ward)).all():
            code = f"cand-{ward.short_codename}"
            unit = existing.get(code) or Unit(code=code, name="", kind="ward_police")
            unit.name = f"Công an {ward.name}"
            unit.kind = "ward_police"
            unit.ward_code = ward.code
            unit.lat, unit.lon = ward.lat, ward.lon
            session.add(unit)
            count += 1
        for cu in CITY_UNITS:
            unit = existing.get(cu.code) or Unit(code=cu.code, name=cu.name, kind=cu.kind)
            unit.name, unit.kind, unit.lat, unit.lon, unit.phone = (
                cu.name, cu.kind, cu.lat, cu.lon, cu.phone)
            session.add(unit)
            count += 1
        session.commit()
    return count


def ensure_user(session: Session, username: str, password: str, role: str,
                unit_id: str | None = None, full_name: str = "",
                password_hash: str | None = None) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        user = User(username=username, password_hash=password_hash or hash_password(password),
                    role=role, unit_id=unit_id, full_name=full_name)
        session.add(user)
    return user


def ensure_demo_users(engine: Engine, password: str) -> int:
    """operator1, supervisor1, admin, officer.<ward short codename> for every ward, and an
    officer for each city unit (officer.pccc, officer.cs113, ...)."""
    # Demo accounts share one password, so one argon2 hash serves them all (hashing 175
    # times would take ~20 s on a small machine).
    shared_hash = hash_password(password)
    with Session(engine) as session:
        units = {u.code: u for u in session.exec(select(Unit)).all()}
        command = units.get("ttttch")
        ensure_user(session, "operator1", password, "operator",
                    command.id if command else None, "Trực ban TTTTCH 1", shared_hash)
        ensure_user(session, "supervisor1", password, "supervisor",
                    command.id if command else None, "Chỉ huy trực ban", shared_hash)
        ensure_user(session, "admin", password, "admin", None, "Quản trị hệ thống", shared_hash)
        count = 3
        existing = set(session.exec(select(User.username)).all())
        for unit in units.values():
            if unit.kind == "command":
                continue
            short = unit.code.removeprefix("cand-")
            username = f"officer.{short}"
            if username in existing:
                continue
            ensure_user(session, username, password, "officer", unit.id, f"Cán bộ {unit.name}",
                        shared_hash)
            count += 1
        session.commit()
    return count
