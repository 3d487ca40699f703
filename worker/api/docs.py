"""/docs: Swagger UI 5, served from the package itself, so the docs work in clusters with no
internet. FastAPI serves an OpenAPI 3.1 document, which Swagger UI renders from version 5 on
(4.x answered "Unable to render this definition"). The assets come from fastapi-swagger, a
small, maintained package that ships each Swagger UI release as package data; we use its files
only, with our own route, so nothing is patched into the app."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
SWAGGER_UI = resources.files("fastapi_swagger") / "resources"


def install_docs(app: FastAPI) -> None:
    """Mount /docs with local assets; the app must be created with docs_url=None."""
    app.mount(ASSETS, StaticFiles(directory=str(SWAGGER_UI)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - docs",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            # the bearer token, once entered with Authorize, survives a reload
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
        )
