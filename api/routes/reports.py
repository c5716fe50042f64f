"""Citizen calls, no account: attachments, reports, tracking."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.requests import ClientDisconnect

from api.abuse import ReportOrigin
from api.auth import client_address, principal_from_request
from api.deps import InfraDep
from api.errors import DatabaseUnavailable
from api.services.attachments import AttachmentTooLarge, store_attachment
from api.services.reporter_location import share_location
from api.services.submission import submit_report
from api.services.tracking import TrackingNotFound, add_info, cancel_report, get_tracking
from api.upload import (
    ENVELOPE_BYTES,
    FILE_BODY_OPENAPI,
    MalformedUpload,
    MultipartReader,
    missing_file_error,
    multipart_boundary,
)
from schema.locations import LocationAccepted, LocationIn
from schema.reports import (
    AttachmentOut,
    CancelIn,
    InfoIn,
    ReportAccepted,
    ReportCreate,
    TrackingView,
)

router = APIRouter(prefix="/api/v1", tags=["citizen"])

_ERR = {"model": dict}


@router.post("/attachments", status_code=201, response_model=AttachmentOut,
             responses={400: _ERR, 413: _ERR, 415: _ERR, 422: _ERR, 503: _ERR},
             openapi_extra=FILE_BODY_OPENAPI)
async def upload_attachment(request: Request, infra: InfraDep) -> AttachmentOut:
    """Upload one photo or video (multipart field `file`). The type is decided by the
    bytes; images up to 20 MB, videos up to 200 MB (configurable).

    The body is parsed while it arrives and written straight to storage: reading stops
    with 413 as soon as the limit for the sniffed type is passed (at once when
    Content-Length is larger than the video limit), and nothing is kept then. While the
    database is unreachable: 503 with Retry-After (the file is not kept)."""
    settings = infra.settings
    if infra.db.recently_unreachable():
        # An upload is kept only with its row: refuse before reading the body.
        raise DatabaseUnavailable(settings.db_retry_s)
    limit = max(settings.max_image_bytes, settings.max_video_bytes)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + ENVELOPE_BYTES:
        raise AttachmentTooLarge(limit)
    boundary = multipart_boundary(request.headers.get("content-type"))
    if boundary is None:
        raise missing_file_error()
    # Never read the body for a CSRF form field: a session without the header uploads
    # anonymously (which anyone may).
    user = await principal_from_request(request, read_form=False)
    reader = MultipartReader(request.stream(), boundary)
    try:
        while (part := await reader.next_part()) is not None:
            if part.name == "file":
                return await store_attachment(
                    settings, infra.db, infra.storage, reader.data(), part.filename,
                    part.content_type, uploaded_by=user.username if user else None)
    except ClientDisconnect:
        raise MalformedUpload("Client disconnected during the upload") from None
    raise missing_file_error()


@router.post("/reports", status_code=202, response_model=ReportAccepted,
             responses={409: _ERR, 422: _ERR, 503: _ERR})
async def create_report(request: Request, infra: InfraDep, body: ReportCreate
                        ) -> ReportAccepted:
    """Report an incident. Stored durably before the answer (in the database, or while it
    is unreachable in the incident's workflow); the same `report_id` again gives the same
    answer and creates nothing (another body with it: 409). 503 with Retry-After when
    neither can take it (or the database is down and the report names attachments):
    send it again later with the same `report_id`. Reports that come too often from one
    device (`device_id`), phone or address are still accepted, marked for the operator
    as suspected spam (limits: schema/abuse.py)."""
    return await submit_report(infra, body, source="api",
                               origin=ReportOrigin(address=client_address(request)))


@router.get("/track/{tracking_token}", response_model=TrackingView, responses={404: _ERR})
async def track(infra: InfraDep, tracking_token: str) -> TrackingView:
    view = await get_tracking(infra, tracking_token)
    if view is None:
        raise TrackingNotFound()
    return view


@router.post("/track/{tracking_token}/info", response_model=TrackingView,
             responses={404: _ERR, 409: _ERR, 422: _ERR, 429: _ERR, 503: _ERR})
async def track_info(infra: InfraDep, tracking_token: str, body: InfoIn) -> TrackingView:
    """Add text (at most 5,000 characters) and/or attachments to one's report; 409 once it
    is closed. Per tracking token at most CANHBAO_INFO_PER_HOUR additions an hour and
    CANHBAO_INFO_TEXT_BUDGET characters in all: past them 429 (with `Retry-After` for the
    hourly limit). With `reply_to` (the `seq` of one of the view's `messages`) it answers
    that staff message; a `reply_to` that is none of them is 422."""
    return await add_info(infra, tracking_token, body.text, body.attachments, body.reply_to)


@router.post("/track/{tracking_token}/cancel", response_model=TrackingView,
             responses={404: _ERR, 409: _ERR, 503: _ERR})
async def track_cancel(infra: InfraDep, tracking_token: str,
                       body: CancelIn | None = None) -> TrackingView:
    """Withdraw one's report while nobody has acknowledged it; 409 after."""
    return await cancel_report(infra, tracking_token, body.reason if body else None)


@router.post("/track/{tracking_token}/location", response_model=LocationAccepted,
             responses={404: _ERR, 409: _ERR, 422: _ERR, 429: _ERR})
async def track_location(infra: InfraDep, tracking_token: str,
                         body: LocationIn) -> LocationAccepted:
    """Share the reporter's live position (`lat`, `lon` WGS84, `accuracy_m` >= 0, `at` when
    measured) while the report is open; staff see it on the incident's map. The page sends
    one every 30 s while sharing is on. 409 once the report is closed (stop sharing), 429
    with `Retry-After` sooner than CANHBAO_LOCATION_MIN_INTERVAL_S after the last one,
    422 for a time in the future (beyond 2 min) or older than 10 min."""
    return await share_location(infra, tracking_token, body)
