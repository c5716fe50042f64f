"""How the web/API process is served (uvicorn), one place for every launcher.

`make run` (core/devstack.py), `canhbao serve` (the Docker image) and the browser tests'
live server all take their uvicorn options from `uvicorn_options`, so the rule about
proxies holds wherever the app runs:

- X-Forwarded-For / X-Forwarded-Proto are believed only from the proxies listed in
  CANHBAO_FORWARDED_ALLOW_IPS (addresses or networks, comma-separated; `*` for all).
- Empty (the default): proxy headers are ignored and the client address is the peer's.
  uvicorn's own default would trust 127.0.0.1, so a forged header from any local process
  (or a local reverse proxy that does not set the header) could pick its own address, and
  with it escape the sign-in throttle.
"""

from __future__ import annotations

from typing import Any

from core.settings import Settings


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for uvicorn.Config / uvicorn.run beside the app itself."""
    allowed = settings.forwarded_allow_ips.strip()
    return {
        "host": settings.host,
        "port": settings.port,
        "proxy_headers": bool(allowed),
        "forwarded_allow_ips": allowed or "",
        "access_log": False,  # api.main.RequestContext logs each request once
    }


def serve(settings: Settings) -> None:
    """Run the app in this process until SIGINT/SIGTERM."""
    import uvicorn

    uvicorn.run("app:create_app", factory=True, **uvicorn_options(settings))


if __name__ == "__main__":
    from core.settings import get_settings

    serve(get_settings())
