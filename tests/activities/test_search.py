"""Vietnamese search on PostgreSQL and SQLite: insensitive to case, Unicode form (NFC/NFD)
and tone marks (đ/Đ included); exact-diacritic matches first. Incidents are written by the
projection (which folds `search_text`) and found through the list's own query."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta

import pytest

from activities.projection import ProjectionActivities
from api.auth import Principal
from api.services.incidents import decode_cursor, encode_cursor, fetch_page
from core.db import Database
from schema import search
from schema.incidents import IncidentFilters
from schema.payloads import Location
from schema.states import Role, State
from schema.tables import Incident
from tests.workflows.factories import incident_input, receipt

NFD = lambda s: unicodedata.normalize("NFD", s)  # noqa: E731 - Unikey "tổ hợp", macOS

# (query, text): the query must find the text.
MUST_MATCH = [
    ("đánh", "ĐÁNH NHAU trước quán nhậu"),
    ("ĐÁNH", "đánh nhau trước quán nhậu"),
    ("danh nhau", "Đánh nhau trước quán nhậu"),
    ("cháy", NFD("Cháy nhà ở hẻm 12")),  # stored NFD text (cleaned to NFC on the way in)
    (NFD("cháy nhà"), "Cháy nhà ở hẻm 12"),  # NFD query
    ("chay nha", "Cháy nhà ở hẻm 12"),  # toneless typing
    ("CHAY NHA", "cháy nhà ở hẻm 12"),
    ("Bến Thành", "Giật túi ở chợ BẾN THÀNH"),
    ("ben thanh", "Giật túi ở chợ Bến Thành"),
    ("nguoi bi thuong", "Hai xe va chạm, một NGƯỜI BỊ THƯƠNG"),
    ("đường", "Tai nạn trên duong Nguyễn Huệ"),  # the text was typed toneless
    ("duong nguyen hue", "Tai nạn trên Đường Nguyễn Huệ"),
    ("Quận 1", "Trộm xe ở quan 1"),
    ("trộm xe", "TRỘM XE MÁY TẠI BÃI GIỮ XE"),
    ("xe máy", "trộm xe máy tại bãi giữ xe"),
    ("ĐỒNG KHỞI", "Khói đen bốc lên ở đường đồng khởi"),
    ("khoi den", "Khói đen bốc lên ở đường đồng khởi"),
    ("100%", "Cháy 100% căn nhà"),  # LIKE wildcards are literal
    ("a_b", "mã số a_b"),
]
# (query, text): the query must not find the text.
MUST_NOT_MATCH = [
    ("đánh", "Trộm xe máy"),
    ("chay nha", "Cháy xe ở bãi"),  # every word must occur
    ("100%", "Cháy 1000 căn nhà"),
    ("a_b", "mã số axb"),
    ("bến thành", "Chợ Bình Tây"),
    ("cuop", "Trộm cắp"),
]


def _operator() -> Principal:
    return Principal(id="u", username="operator", role=Role.OPERATOR, unit_id=None,
                     full_name="", sid="", via="bearer")


# Far from the wards other tests use, ended, and years ago: these rows are nobody's
# duplicates and stay out of other tests' lists and statistics.
ELSEWHERE = Location(lat=10.38, lon=106.95)
LONG_AGO = datetime(2021, 3, 1, tzinfo=UTC)


async def _project(db: Database, text: str, minutes_ago: int = 0) -> str:
    inp = incident_input(description=text, address=None, location=ELSEWHERE,
                         received_at=LONG_AGO)
    await ProjectionActivities(db).project(receipt(
        inp, state=State.REJECTED, created_at=LONG_AGO - timedelta(minutes=minutes_ago)))
    return inp.incident_id


async def _found(db: Database, query: str, among: list[str]) -> list[str]:
    """Ids found by `query` among `among`, in list order (the list's own query)."""
    async with db.session() as s:
        rows = await fetch_page(s, _operator(), IncidentFilters(q=query), None, 500,
                                not db.is_sqlite)
    return [r.id for r in rows if r.id in among]


@pytest.mark.parametrize(("query", "text"), MUST_MATCH)
async def test_query_finds_text(any_db: Database, query: str, text: str) -> None:
    iid = await _project(any_db, text)
    assert await _found(any_db, query, [iid]) == [iid]


@pytest.mark.parametrize(("query", "text"), MUST_NOT_MATCH)
async def test_query_misses_text(any_db: Database, query: str, text: str) -> None:
    iid = await _project(any_db, text)
    assert await _found(any_db, query, [iid]) == []


async def test_exact_diacritics_rank_first_across_pages(any_db: Database) -> None:
    # Newest first would give toneless, upper, exact, exact-old; exact ones come first.
    toneless = await _project(any_db, "chay nha kho", minutes_ago=0)
    upper = await _project(any_db, "CHÁY NHÀ KHO", minutes_ago=1)
    other = await _project(any_db, "Chày nhà kho", minutes_ago=2)  # another tone
    old_exact = await _project(any_db, "cháy nhà kho cũ", minutes_ago=3)
    ids = [toneless, upper, other, old_exact]
    assert await _found(any_db, "Cháy nhà kho", ids) == [upper, old_exact, toneless, other]
    # Toneless query: no preference, newest first.
    assert await _found(any_db, "chay nha kho", ids) == ids
    # The cursor carries the rank: one row per page gives the same order.
    terms = search.search_terms("Cháy nhà kho")
    assert terms is not None
    seen: list[str] = []
    after = None
    async with any_db.session() as s:
        for _ in range(50):
            rows = await fetch_page(s, _operator(), IncidentFilters(q="Cháy nhà kho"), after, 1,
                                    not any_db.is_sqlite)
            if not rows:
                break
            row = rows[0]
            seen += [row.id] if row.id in ids else []
            after = decode_cursor(encode_cursor(row.created_at, row.id,
                                                search.row_rank(terms, row.search_text)))
    assert seen == [upper, old_exact, toneless, other]


async def test_search_document_holds_both_forms(any_db: Database) -> None:
    iid = await _project(any_db, "Đánh nhau")
    async with any_db.session() as s:
        row = await s.get(Incident, iid)
    assert row is not None and row.search_text == "danh nhau\nđánh nhau"
    assert search.search_document("chay nha", None) == "chay nha"
