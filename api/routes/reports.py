"""Citizen calls, no account: attachments, reports, tracking."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile

from api import intake
from api.deps import OptionalUser
from api.errors import ApiError
from api.intake import (
    AttachmentOut,
    CancelIn,
    InfoIn,
    ReportAccepted,
    ReportCreate,
    TrackingNotFound,
    TrackingView,
)

router = APIRouter(prefix="/api/v1", tags=["citizen"])

_ERR = {"model": dict}


@router.post("/attachments", status_code=201, response_model=AttachmentOut,
             responses={413: _ERR, 415: _ERR, 422: _ERR})
async def upload_attachment(request: Request, file: Annotated[UploadFile, File()],
                            user: OptionalUser) -> AttachmentOut:
    """Upload one photo or video (multipart field `file`). The type is decided by the
    bytes; images up to 20 MB, videos up to 200 MB (configurable)."""
    settings = request.app.state.settings
    declared = request.headers.get("content-length")
    limit = max(settings.max_image_bytes, settings.max_video_bytes)
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise intake.AttachmentTooLarge(limit)
    try:
        return await intake.store_attachment(
            request.app.state, file, file.filename, file.content_type,
            uploaded_by=user.username if user else None)
    finally:
        await file.close()


@router.post("/reports", status_code=202, response_model=ReportAccepted,
             responses={422: _ERR})
async def create_report(request: Request, body: ReportCreate) -> ReportAccepted:
    """Report an incident. Stored durably before the answer; the same `report_id` again
    gives the same answer and creates nothing."""
    return await intake.submit_report(request.app.state, body, source="api")


@router.get("/track/{tracking_token}", response_model=TrackingView, responses={404: _ERR})
async def track(request: Request, tracking_token: str) -> TrackingView:
    view = await intake.get_tracking(request.app.state, tracking_token)
    if view is None:
        raise TrackingNotFound()
    return view


@router.post("/track/{tracking_token}/info", response_model=TrackingView,
             responses={404: _ERR, 409: _ERR, 422: _ERR, 503: _ERR})
async def track_info(request: Request, tracking_token: str, body: InfoIn) -> TrackingView:
    """Add text and/or attachments to one's report; 409 once it is closed."""
    return await intake.add_info(request.app.state, tracking_token, body.text,
                                 body.attachments)


@router.post("/track/{tracking_token}/cancel", response_model=TrackingView,
             responses={404: _ERR, 409: _ERR, 503: _ERR})
async def track_cancel(request: Request, tracking_token: str,
                       body: CancelIn | None = None) -> TrackingView:
    """Withdraw one's report while nobody has acknowledged it; 409 after."""
    return await intake.cancel_report(request.app.state, tracking_token,
                                      body.reason if body else None)


__all__ = ["router", "ApiError"]
