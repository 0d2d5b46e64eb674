"""Admin API over the archive's content: pages of patients, studies, series and instances, one of them by
its UID, and deletes. Thin: the admin service reads, the manage service deletes; errors are problem+json.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request

from lightbox.api import schemas
from lightbox.api.actor import request_actor
from lightbox.app import Archive
from lightbox.domain.accounts import Permission
from lightbox.domain.levels import Level
from lightbox.index.base import ContentFilter, Deletion
from lightbox.services.admin import DEFAULT_PAGE, MAX_CURSOR, MAX_PAGE, Page

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page")]
Cursor = Annotated[
    int | None,
    Query(
        ge=0, le=MAX_CURSOR, description="The `next_cursor` of the previous page; absent for the first page"
    ),
]
PatientId = Annotated[
    str | None, Query(min_length=1, max_length=64, pattern=r"^[^\\\x00-\x1f]+$", description="Patient ID")
]
StudyUid = Annotated[
    str | None, Query(max_length=64, pattern=schemas.UID_PATTERN, description="Study Instance UID")
]
SeriesUid = Annotated[
    str | None, Query(max_length=64, pattern=schemas.UID_PATTERN, description="Series Instance UID")
]
Uid = Annotated[str, Path(max_length=64, pattern=schemas.UID_PATTERN, description="The unique key (a UID)")]


def router(archive: Archive, executor: Executor) -> APIRouter:
    routes = APIRouter(prefix="/api", tags=["content"])
    admin, manage = archive.admin, archive.manage

    async def call(fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn)

    def paged(request: Request, page: Page[Any]) -> dict[str, Any]:
        following = page.next_cursor
        url = None if following is None else str(request.url.include_query_params(cursor=following))
        return {"items": page.items, "next_cursor": following, "next": url}

    # --- listings --------------------------------------------------------------------------------------
    @routes.get(
        "/patients",
        summary="List patients",
        description="Patients by the order they were first stored, with their counters and sizes.",
        response_model=schemas.PatientPage,
        responses=schemas.problem_responses(400),
    )
    async def list_patients(
        request: Request, patient_id: PatientId = None, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
    ) -> dict[str, Any]:
        where = ContentFilter(patient_id=patient_id)
        return paged(request, await call(lambda: admin.patients(where, cursor, limit)))

    @routes.get(
        "/studies",
        summary="List studies",
        description="Studies by the order they were first stored, optionally of one patient.",
        response_model=schemas.StudyPage,
        responses=schemas.problem_responses(400),
    )
    async def list_studies(
        request: Request, patient_id: PatientId = None, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
    ) -> dict[str, Any]:
        where = ContentFilter(patient_id=patient_id)
        return paged(request, await call(lambda: admin.studies(where, cursor, limit)))

    @routes.get(
        "/series",
        summary="List series",
        description="Series by the order they were first stored, optionally of one patient or study.",
        response_model=schemas.SeriesPage,
        responses=schemas.problem_responses(400),
    )
    async def list_series(
        request: Request,
        patient_id: PatientId = None,
        study_instance_uid: StudyUid = None,
        limit: Limit = DEFAULT_PAGE,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        where = ContentFilter(patient_id=patient_id, study_instance_uid=study_instance_uid)
        return paged(request, await call(lambda: admin.series(where, cursor, limit)))

    @routes.get(
        "/instances",
        summary="List instances",
        description="Instances by the order they were stored, optionally of one patient, study or series.",
        response_model=schemas.InstancePage,
        responses=schemas.problem_responses(400),
    )
    async def list_instances(
        request: Request,
        patient_id: PatientId = None,
        study_instance_uid: StudyUid = None,
        series_instance_uid: SeriesUid = None,
        limit: Limit = DEFAULT_PAGE,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        where = ContentFilter(
            patient_id=patient_id,
            study_instance_uid=study_instance_uid,
            series_instance_uid=series_instance_uid,
        )
        return paged(request, await call(lambda: admin.instances(where, cursor, limit)))

    # --- one entity ------------------------------------------------------------------------------------
    errors = schemas.problem_responses(400, 404)

    @routes.get("/studies/{uid}", summary="One study", response_model=schemas.Study, responses=errors)
    async def get_study(uid: Uid) -> Any:
        return await call(lambda: admin.study(uid))

    @routes.get("/series/{uid}", summary="One series", response_model=schemas.Series, responses=errors)
    async def get_series(uid: Uid) -> Any:
        return await call(lambda: admin.one_series(uid))

    @routes.get("/instances/{uid}", summary="One instance", response_model=schemas.Instance, responses=errors)
    async def get_instance(uid: Uid) -> Any:
        return await call(lambda: admin.instance(uid))

    # --- deletes ---------------------------------------------------------------------------------------
    def deleted(d: Deletion) -> schemas.Deleted:
        return schemas.Deleted(
            level=d.level.value,
            uid=d.uid,
            study_instance_uid=d.study_instance_uid,
            instances=len(d.sop_instance_uids),
            size_bytes=d.size_bytes,
        )

    async def remove(request: Request, level: Level, uid: str) -> schemas.Deleted:
        """Delete as the request's user: everything, or (a radiologist) only what they stored."""
        actor, own_only = request_actor(request, "api"), not request.state.user.may(Permission.DELETE)
        return deleted(await call(lambda: manage.delete(level, uid, actor, own_only=own_only)))

    delete_description = (
        "Removes the index entries and the stored objects together; parents left empty go too. "
        "Answers once the delete is durable."
    )

    @routes.delete(
        "/studies/{uid}",
        summary="Delete a study",
        description=delete_description,
        response_model=schemas.Deleted,
        responses=errors,
    )
    async def delete_study(request: Request, uid: Uid) -> schemas.Deleted:
        return await remove(request, Level.STUDY, uid)

    @routes.delete(
        "/series/{uid}",
        summary="Delete a series",
        description=delete_description,
        response_model=schemas.Deleted,
        responses=errors,
    )
    async def delete_series(request: Request, uid: Uid) -> schemas.Deleted:
        return await remove(request, Level.SERIES, uid)

    @routes.delete(
        "/instances/{uid}",
        summary="Delete an instance",
        description=delete_description,
        response_model=schemas.Deleted,
        responses=errors,
    )
    async def delete_instance(request: Request, uid: Uid) -> schemas.Deleted:
        return await remove(request, Level.IMAGE, uid)

    return routes
