"""Attachment files for staff who may see their incident (api.scope)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from api.deps import CurrentUser, DbDep, SettingsDep, StorageDep
from api.services.attachments import attachment_for_staff

router = APIRouter(prefix="/api/v1", tags=["staff"])
_ERR = {"model": dict}


@router.get("/attachments/{attachment_id}/content",
            responses={200: {"content": {"image/*": {}, "video/*": {}}}, 307: {}, 401: _ERR,
                       404: _ERR})
async def attachment_content(attachment_id: uuid.UUID, user: CurrentUser, db: DbDep,
                             storage: StorageDep, settings: SettingsDep) -> Response:
    """The file: a short-lived presigned redirect on S3, streamed by the API from the
    local folder."""
    att = await attachment_for_staff(db, user, str(attachment_id))
    url = await storage.url(att.storage_key, settings.s3_presign_seconds, att.content_type)
    if url:
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    return StreamingResponse(
        storage.open(att.storage_key), media_type=att.content_type,
        headers={"Content-Length": str(att.size), "X-Content-Type-Options": "nosniff",
                 "Cache-Control": "private, max-age=300",
                 "Content-Disposition": f'inline; filename="{att.id}"'})
