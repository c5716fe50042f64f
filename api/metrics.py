"""Prometheus metrics of the API process (module level: one set per process; the outbox
relay's own counter is in core/outbox.py)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REPORTS_RECEIVED = Counter(
    "canhbao_reports_received_total", "Citizen reports accepted (202), new ones only",
    ["source"])
ACTIONS = Counter(
    "canhbao_actions_total", "Staff and citizen actions sent to incident workflows",
    ["action", "result"])
ATTACHMENTS = Counter(
    "canhbao_attachments_total", "Attachment uploads", ["result"])
LOGIN_FAILURES = Counter("canhbao_login_failures_total", "Failed or throttled logins",
                         ["reason"])
REQUEST_LATENCY = Histogram(
    "canhbao_http_request_duration_seconds", "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
