"""Mounts the console on the API app: its pages under `/console` and its JavaScript and CSS (from the package)
under `/console/static`."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ops_pipeline.console.pages import jobs, overview, signin
from ops_pipeline.console.web import HERE, PREFIX

PAGES = (signin.router, overview.router, jobs.router)


def install(app: FastAPI) -> None:
    for router in PAGES:
        app.include_router(router, prefix=PREFIX)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
