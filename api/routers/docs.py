"""/docs (Swagger UI) and /redoc from assets vendored under api/static/vendor (see VENDOR.md
there), so they render without internet; /static serves them and the page's graph library."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)
STATIC = "/static"


@router.get("/docs", response_class=HTMLResponse)
async def swagger() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="fraudring API",
        swagger_js_url=f"{STATIC}/vendor/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC}/vendor/swagger-ui.css",
        swagger_favicon_url="data:,",
    )


@router.get("/redoc", response_class=HTMLResponse)
async def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="fraudring API",
        redoc_js_url=f"{STATIC}/vendor/redoc.standalone.js",
        redoc_favicon_url="data:,",
        with_google_fonts=False,
    )


def mount_static(app: FastAPI) -> None:
    directory = Path(str(files("api.static")))
    app.mount(STATIC, StaticFiles(directory=directory), name="static")
