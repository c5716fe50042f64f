"""All the pages as one router for the composition root (app.py): the citizen's report
and tracking pages, the staff pages (sign-in, console, officer, supervisor) and the assets
they need. Each module holds one page (or one kind of asset) with its helpers."""

from __future__ import annotations

from fastapi import APIRouter

from web import (
    assets,
    auth_pages,
    citizen_report,
    citizen_tracking,
    console,
    officer,
    supervisor,
)

router = APIRouter(include_in_schema=False)
for page in (assets, citizen_report, citizen_tracking, auth_pages, console, officer,
             supervisor):
    router.include_router(page.router)
