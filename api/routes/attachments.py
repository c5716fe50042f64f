"""Attachment files for staff who may see their incident (api.scope)."""

from __future__ import annotations

import uuid
from typing import Literal

import structlog
from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from api import media
from api.deps import CurrentUser, DbDep, SettingsDep, StorageDep
from api.errors import ApiError, not_found
from api.imagecheck import ImageTooLarge
from api.services.attachments import attachment_for_staff
from core.settings import Settings
from core.storage import Storage
from schema import words

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/v1", tags=["staff"])
_ERR = {"model": dict}


@router.get("/attachments/{attachment_id}/content",
            responses={200: {"content": {"image/*": {}, "video/*": {}}}, 307: {}, 401: _ERR,
                       404: _ERR})
async def attachment_content(attachment_id: uuid.UUID, user: CurrentUser, db: DbDep,
                             storage: StorageDep, settings: SettingsDep) -> Response:
    """The original file as uploaded: a short-lived presigned redirect on S3, streamed by
    the API from the local folder."""
    att = await attachment_for_staff(db, user, str(attachment_id))
    return await _serve(storage, settings, att.storage_key, att.content_type, att.id,
                        att.size)


@router.get("/attachments/{attachment_id}/{kind}",
            responses={200: {"content": {"image/jpeg": {}}}, 307: {}, 401: _ERR, 404: _ERR,
                       422: _ERR})
async def attachment_rendition(attachment_id: uuid.UUID, kind: Literal["preview", "thumbnail"],
                               user: CurrentUser, db: DbDep, storage: StorageDep,
                               settings: SettingsDep) -> Response:
    """A browser-displayable JPEG of an image (preview 1600 px, thumbnail 320 px), EXIF
    orientation applied and every metadata removed (api.media), made on first request.
    404 for a video; 422 `unreadable_image` when the image cannot be read, 422
    `image_too_large` for one stored before CANHBAO_MAX_IMAGE_PIXELS was lowered."""
    att = await attachment_for_staff(db, user, str(attachment_id))
    if not media.has_renditions(att.content_type):
        raise not_found(*words.both("error.not_found.preview"))
    try:
        key = await media.ensure_rendition(storage, settings.max_image_bytes, att, kind,
                                           settings.max_image_pixels)
    except media.RenditionTooLarge as exc:  # stored before the limit was lowered
        log.info("rendition refused", attachment_id=att.id, error=str(exc))
        raise ImageTooLarge(exc.limit, exc.size) from exc
    except media.RenditionError as exc:
        log.info("rendition refused", attachment_id=att.id, error=str(exc))
        raise ApiError(422, "unreadable_image", *words.both("error.unreadable_image")) from exc
    return await _serve(storage, settings, key, "image/jpeg", f"{att.id}-{kind}.jpg", None)


async def _serve(storage: Storage, settings: Settings, key: str, content_type: str,
                 filename: str, size: int | None) -> Response:
    url = await storage.url(key, settings.s3_presign_seconds, content_type)
    if url:
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300",
               "Content-Disposition": f'inline; filename="{filename}"'}
    if size is not None:
        headers["Content-Length"] = str(size)
    return StreamingResponse(storage.open(key), media_type=content_type, headers=headers)
