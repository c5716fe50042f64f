"""The console queue's order: which order a list is shown in (asked for, else the one the
operator chose last, kept in a cookie the server reads so the page and its live refreshes
agree), and where flood groups stand among the incidents."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from api.auth import Principal
from schema.incidents import ListOrder

# The operator's chosen order, remembered per operator in this browser: "<user id>:<sort>".
SORT_COOKIE = "cb_console_sort"
# A live refresh asks for the rows shown and room for new ones; never more than this.
MAX_ROWS = 1000
ORDERS = {o.value for o in ListOrder}


def order_of(request: Request, user: Principal) -> ListOrder:
    """The order asked for, else the one this operator chose last, else urgency."""
    asked = request.query_params.get("sort", "")
    if asked in ORDERS:
        return ListOrder(asked)
    owner, _, kept = request.cookies.get(SORT_COOKIE, "").partition(":")
    return ListOrder(kept) if owner == user.id and kept in ORDERS \
        else ListOrder.URGENCY


def remember(request: Request, response: Response, user: Principal,
             order: ListOrder) -> Response:
    """Keep an order the request asked for as this operator's choice."""
    if request.query_params.get("sort") == order.value:
        response.set_cookie(SORT_COOKIE, f"{user.id}:{order.value}", max_age=365 * 86400,
                            httponly=True, samesite="lax", path="/console")
    return response


def rows(items: list[Any], queue_groups: list[dict[str, Any]], order: ListOrder
         ) -> list[tuple[str, Any]]:
    """The queue's rows: ("inc", incident) in the list's order, and ("group", group view)
    placed among them: by its latest report when newest first, its first otherwise, and
    after the incidents as urgent (overdue or not) as it when by urgency (a flood group is
    suspected spam)."""
    rows: list[tuple[str, Any]] = [("inc", i) for i in items]
    for g in queue_groups:
        def before(row: tuple[str, Any], g: dict[str, Any] = g) -> bool:
            kind, other = row
            if kind == "group":
                return True
            if order is ListOrder.NEWEST:
                return bool(other.created_at >= g["g"].last_at)
            if order is ListOrder.OLDEST:
                return bool(other.created_at <= g["g"].first_at)
            return bool(other.overdue or not g["overdue"])
        at = next((n for n, row in enumerate(rows) if not before(row)), len(rows))
        rows.insert(at, ("group", g))
    return rows
