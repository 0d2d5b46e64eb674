"""The DICOMweb routes, mounted at /dicom-web by the HTTP application."""

from __future__ import annotations

from concurrent.futures import Executor

from fastapi import APIRouter

from lightbox.app import Archive
from lightbox.dicomweb import bulkdata, metadata, qido, rendered, stow, wado
from lightbox.dicomweb.urls import BASE_PATH


def dicomweb_router(archive: Archive, executor: Executor) -> APIRouter:
    router = APIRouter(prefix=BASE_PATH)
    router.include_router(qido.router(archive, executor))
    router.include_router(stow.router(archive, executor))
    router.include_router(metadata.router(archive, executor))
    router.include_router(bulkdata.router(archive, executor))
    router.include_router(wado.router(archive, executor))
    router.include_router(rendered.router(archive, executor))
    return router
