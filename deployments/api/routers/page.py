"""GET /: the scan page, and GET /web/{name}: its static assets (package data, no CDN).

The page (deployments/web/) is plain HTML, CSS and JavaScript modules with no build step; the
charting library is vendored under web/vendor/ (see PROVENANCE.md there). Assets are read from
the installed package once and kept in memory. Only files that exist under web/ are served:
the name is looked up in that table, never joined onto a filesystem path. The page calls the
/v1 API from the browser, so it needs no key itself; the user types the key into the page.
A Content-Security-Policy limits the page to this origin (nothing is fetched from elsewhere).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, HTTPException
from starlette.responses import Response

router = APIRouter(include_in_schema=False)
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".md": "text/markdown; charset=utf-8",
         ".png": "image/png", ".svg": "image/svg+xml"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")


@cache
def assets() -> dict[str, bytes]:
    """Every file under deployments/web/, by its '/'-separated relative name."""
    out: dict[str, bytes] = {}

    def walk(node, prefix: str) -> None:  # type: ignore[no-untyped-def]
        for child in node.iterdir():
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif any(child.name.endswith(ext) for ext in TYPES) or "LICENSE" in child.name:
                out[prefix + child.name] = child.read_bytes()

    walk(resources.files("deployments") / "web", "")
    return out


def _asset(name: str) -> Response:
    body = assets().get(name)
    if body is None:
        raise HTTPException(status_code=404, detail=f"no such page asset: {name}")
    ext = name[name.rfind("."):] if "." in name else ""
    return Response(body, media_type=TYPES.get(ext, "text/plain; charset=utf-8"), headers={
        "Cache-Control": "no-cache", "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff"})


@router.get("/")
async def page() -> Response:
    """The scan page."""
    return _asset("index.html")


@router.get("/web/{name:path}")
async def asset(name: str) -> Response:
    """A static file of the page (scripts, styles, the vendored chart library)."""
    return _asset(name)
