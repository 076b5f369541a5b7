"""The REST API: both route sets, token auth, ``/openapi.json``."""

from __future__ import annotations

from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ghapp.api import control, jobs, notifiers, runs
from ghapp.api.core import Api
from ghapp.api.openapi import openapi_document


def build_api() -> Api:
    api = Api()
    for part in (jobs.api, jobs.tasks, runs.api, notifiers.api, control.api):
        api.include(part)
    return api


@cache
def _document() -> dict[str, Any]:
    return openapi_document(build_api().endpoints)


async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(_document())


def api_routes() -> list[Route]:
    return [*build_api().starlette_routes(), Route("/openapi.json", openapi_json, methods=["GET"])]
