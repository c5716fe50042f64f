"""Attachments: stream an upload into storage (type from the bytes, size limit from the
type), link uploads to an incident, give them back, and let staff fetch one."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import filetype
import structlog
from fastapi import UploadFile
from sqlalchemy import select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api import imagecheck, scope
from api.auth import Principal
from api.errors import ApiError, FieldError, not_found
from api.metrics import ATTACHMENTS
from core.db import Database
from core.settings import Settings
from core.storage import Storage
from schema import words
from schema.reports import AttachmentOut
from schema.tables import Attachment, Incident, utcnow
from schema.text import clean_line

log = structlog.get_logger(__name__)

SNIFF_BYTES = 8192
CHUNK = 1024 * 1024
IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp",
               "image/heic": "heic"}
VIDEO_TYPES = {"video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm"}


class AttachmentTooLarge(ApiError):
    """413: the file passed the limit for its type (nothing is kept)."""

    def __init__(self, limit: int) -> None:
        mb = limit // (1024 * 1024)
        # The rest of the body is not read: the connection cannot be reused.
        super().__init__(413, "too_large", *words.both("error.too_large.file", mb=mb), limit=limit,
                         headers={"Connection": "close"})


class AttachmentTypeRejected(ApiError):
    """415: the bytes are neither an accepted image nor an accepted video."""

    def __init__(self) -> None:
        super().__init__(
            415, "unsupported_media_type",
            *words.both("error.unsupported_media_type.attachment"))


async def _chunks(source: UploadFile | AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    if hasattr(source, "read"):  # fastapi's or starlette's UploadFile
        while chunk := await source.read(CHUNK):
            yield chunk
    else:
        async for chunk in source:
            if chunk:
                yield chunk


def _kind(settings: Settings, head: bytes, declared: str | None) -> tuple[str, int, str]:
    """(mime, size limit, extension) sniffed from the first bytes; 415 when refused."""
    kind = filetype.guess(head[:SNIFF_BYTES]) if head else None
    mime = kind.mime if kind else None
    if mime in IMAGE_TYPES:
        return mime, settings.max_image_bytes, IMAGE_TYPES[mime]
    if mime in VIDEO_TYPES:
        return mime, settings.max_video_bytes, VIDEO_TYPES[mime]
    ATTACHMENTS.labels("rejected_type").inc()
    log.info("attachment type rejected", sniffed=mime, declared=declared)
    raise AttachmentTypeRejected()


async def store_attachment(settings: Settings, db: Database, storage: Storage,
                           upload: UploadFile | AsyncIterable[bytes],
                           filename: str | None = None, declared_type: str | None = None,
                           uploaded_by: str | None = None) -> AttachmentOut:
    """Stream an upload into storage. The type comes from the bytes (the declared type is
    only logged); the size limit from the type; an image's pixel count from its header
    (api/imagecheck.py). Raises AttachmentTypeRejected (415), AttachmentTooLarge (413),
    imagecheck.ImageTooLarge or ImageUnreadable (422); nothing is kept then."""
    source = _chunks(upload).__aiter__()
    head = b""
    exhausted = False
    while len(head) < SNIFF_BYTES:
        try:
            head += await source.__anext__()
        except StopAsyncIteration:
            exhausted = True
            break
    mime, limit, ext = _kind(settings, head, declared_type)
    digest = hashlib.sha256()
    size = 0
    header = imagecheck.HeaderCheck(mime, settings.max_image_pixels)

    async def guarded() -> AsyncIterator[bytes]:
        nonlocal size

        async def rest() -> AsyncIterator[bytes]:
            yield head
            if not exhausted:
                async for chunk in source:
                    yield chunk

        async for chunk in rest():
            size += len(chunk)
            if size > limit:
                raise AttachmentTooLarge(limit)
            header.feed(chunk)
            digest.update(chunk)
            yield chunk
        header.finish()

    att_id = str(uuid.uuid4())
    now = utcnow()
    key = f"attachments/{now:%Y/%m/%d}/{att_id}.{ext}"
    try:
        await storage.put(key, guarded(), mime)
    except AttachmentTooLarge:
        ATTACHMENTS.labels("too_large").inc()
        raise
    except (imagecheck.ImageTooLarge, imagecheck.ImageUnreadable) as exc:
        ATTACHMENTS.labels(exc.error).inc()
        log.info("image refused", error=exc.error, size=header.size)
        raise
    row = Attachment(id=att_id, content_type=mime, size=size, sha256=digest.hexdigest(),
                     storage_key=key, original_name=clean_line(filename or "")[:255] or None,
                     uploaded_by=uploaded_by, created_at=now)
    try:
        async with db.session() as s:
            s.add(row)
            await s.commit()
    except BaseException:
        # No row, no object: an unreferenced file would never be cleaned up.
        await asyncio.shield(storage.delete(key))
        raise
    ATTACHMENTS.labels("stored").inc()
    log.info("attachment stored", attachment_id=att_id, content_type=mime, size=size)
    return AttachmentOut(attachment_id=att_id, content_type=mime, size=size,
                         sha256=row.sha256)


async def claim_attachments(session: AsyncSession, ids: list[str], incident_id: str,
                            field: str = "attachments") -> None:
    """Link unused attachments to `incident_id` inside the caller's transaction, or raise
    FieldError (422) naming the first id that is unknown or belongs to another report."""
    if not ids:
        return
    rows = (await session.execute(
        select(col(Attachment.id), col(Attachment.incident_id))
        .where(col(Attachment.id).in_(ids)))).all()
    owner: dict[str, Any] = {r[0]: r[1] for r in rows}
    for i, aid in enumerate(ids):
        if aid not in owner:
            raise FieldError(f"{field}.{i}", *words.both("field.attachment.unknown"))
        if owner[aid] is not None and owner[aid] != incident_id:
            raise FieldError(f"{field}.{i}", *words.both("field.attachment.used"))
    free = [a for a in ids if owner[a] is None]
    if free:
        res = await session.execute(
            update(Attachment)
            .where(col(Attachment.id).in_(free), col(Attachment.incident_id).is_(None))
            .values(incident_id=incident_id))
        if res.rowcount != len(free):  # type: ignore[attr-defined]
            raise FieldError(field, *words.both("field.attachment.used"))


async def release_attachments(db: Database, ids: list[str], incident_id: str) -> None:
    """Unlink attachments from `incident_id` so that they can be used again."""
    if not ids:
        return
    async with db.session() as s:
        await s.execute(update(Attachment).where(
            col(Attachment.id).in_(ids), col(Attachment.incident_id) == incident_id)
            .values(incident_id=None))
        await s.commit()


async def attachment_for_staff(db: Database, user: Principal,
                               attachment_id: str) -> Attachment:
    """The attachment when `user` may see it (scope.sees_attachment); 404 otherwise."""
    async with db.session() as s:
        att = await s.get(Attachment, attachment_id)
        inc = await s.get(Incident, att.incident_id) if att and att.incident_id else None
    if att is None or not scope.sees_attachment(user, att, inc.unit_id if inc else None,
                                                 has_incident=inc is not None):
        raise not_found(*words.both("error.not_found.file"))
    return att
