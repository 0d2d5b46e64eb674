"""Admin API about the archive as a whole: statistics and what the running system is."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from fastapi import APIRouter

from lightbox.api import schemas
from lightbox.app import Archive


def router(archive: Archive, executor: Executor) -> APIRouter:
    routes = APIRouter(prefix="/api", tags=["system"])
    admin = archive.admin
    errors = schemas.problem_responses()

    @routes.get(
        "/statistics",
        summary="What the archive holds",
        description="Counts of patients, studies, series and instances, and the bytes of the stored objects.",
        response_model=schemas.Statistics,
        responses=errors,
    )
    async def statistics() -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, admin.statistics)

    @routes.get(
        "/system",
        summary="The running system",
        description="Version, database engine, storage (without credentials), uptime and main settings.",
        response_model=schemas.System,
        responses=errors,
    )
    async def system() -> Any:
        return admin.system()

    return routes
