"""/docs (Swagger UI) and /redoc served with their scripts from this service, not from a CDN: county
networks are often intranets. The files come from the ``fastapi-offline`` package (PyPI), installed
with jiuzhu; nothing third-party is copied into this repository."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
# The browser may load nothing from another host on these pages: ReDoc's bundle still names a logo on
# the vendor's CDN, which an intranet cannot reach and no page of ours should ask for.
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' blob:; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)
_FILES = files("fastapi_offline") / "static"


def install(app: FastAPI) -> None:
    """Serve /docs and /redoc; the app must be made with ``docs_url=None, redoc_url=None``."""
    app.mount(ASSETS, StaticFiles(directory=str(_FILES)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui():
        return _local_only(get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} · 接口文档",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
        ))

    @app.get("/redoc", include_in_schema=False)
    async def redoc():
        return _local_only(get_redoc_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} · 接口文档",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        ))


def _local_only(response):
    response.headers["Content-Security-Policy"] = _CSP
    return response
