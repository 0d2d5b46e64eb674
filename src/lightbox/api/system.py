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
        description="Counts of patients, studies, series and instances, the bytes of the stored objects, and "
        "how they are spread over the storage tiers.",
        response_model=schemas.Statistics,
        responses=errors,
    )
    async def statistics() -> Any:
        def gather() -> schemas.Statistics:
            counts = schemas.Statistics.model_validate(admin.statistics())
            counts.tiers = [
                schemas.TierUsage(name=name, instances=n, size_bytes=size)
                for name, (n, size) in archive.lifecycle.usage().items()
            ]
            return counts

        return await asyncio.get_running_loop().run_in_executor(executor, gather)

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
