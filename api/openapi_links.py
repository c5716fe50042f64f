"""OpenAPI `links` between operations: where a response's value is the input of another
call (a report's incident id → its detail and actions, its tracking token → tracking,
an uploaded file's id → its content). Clients read them in /docs; schemathesis follows
them in its stateful run (tests/api/test_schemathesis.py).

Each link names operations by (method, path), so no operationId is spelled here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (method, path, status) of the producing response → {link name: (method, path of the
# consumer, {consumer parameter: runtime expression})}
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("post", "/api/v1/reports", "202"): {
        "GetIncident": ("get", "/api/v1/incidents/{incident_id}",
                        {"incident_id": "$response.body#/incident_id"}),
        "TakeAction": ("post", "/api/v1/incidents/{incident_id}/actions/{action}",
                       {"incident_id": "$response.body#/incident_id"}),
        "Track": ("get", "/api/v1/track/{tracking_token}",
                  {"tracking_token": "$response.body#/tracking_token"}),
        "AddInfo": ("post", "/api/v1/track/{tracking_token}/info",
                    {"tracking_token": "$response.body#/tracking_token"}),
        "Cancel": ("post", "/api/v1/track/{tracking_token}/cancel",
                   {"tracking_token": "$response.body#/tracking_token"}),
        "Open311Request": ("get", "/open311/v2/requests/{service_request_id}.json",
                           {"service_request_id": "$response.body#/incident_id"}),
    },
    ("post", "/api/v1/incidents/{incident_id}/actions/{action}", "200"): {
        "GetIncident": ("get", "/api/v1/incidents/{incident_id}",
                        {"incident_id": "$response.body#/id"}),
        "TakeAnotherAction": ("post", "/api/v1/incidents/{incident_id}/actions/{action}",
                              {"incident_id": "$response.body#/id"}),
    },
    ("get", "/api/v1/incidents/{incident_id}", "200"): {
        "TakeAction": ("post", "/api/v1/incidents/{incident_id}/actions/{action}",
                       {"incident_id": "$response.body#/id"}),
    },
    ("post", "/api/v1/attachments", "201"): {
        "Content": ("get", "/api/v1/attachments/{attachment_id}/content",
                    {"attachment_id": "$response.body#/attachment_id"}),
        "Rendition": ("get", "/api/v1/attachments/{attachment_id}/{kind}",
                      {"attachment_id": "$response.body#/attachment_id"}),
    },
    ("get", "/api/v1/track/{tracking_token}", "200"): {
        "AddInfo": ("post", "/api/v1/track/{tracking_token}/info",
                    {"tracking_token": "$request.path.tracking_token"}),
        "Cancel": ("post", "/api/v1/track/{tracking_token}/cancel",
                   {"tracking_token": "$request.path.tracking_token"}),
    },
}


def add_links(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` (an OpenAPI document as FastAPI makes it) with LINKS on its responses.
    Raises KeyError naming a link whose operation is gone (the app's tests build it)."""
    paths = spec["paths"]
    for (method, path, status), links in LINKS.items():
        response = paths[path][method]["responses"].setdefault(status, {"description": ""})
        response["links"] = {
            name: {"operationId": paths[c_path][c_method]["operationId"],
                   "parameters": params}
            for name, (c_method, c_path, params) in links.items()}
    return spec


def linked_openapi(build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """An `app.openapi` that adds the links to what `build` (FastAPI's) makes, once."""
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if "spec" not in cache:
            cache["spec"] = add_links(build())
        return cache["spec"]
    return openapi
