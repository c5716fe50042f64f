"""Pages (Jinja2 + HTMX). Mounted by api.main.create_app."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
