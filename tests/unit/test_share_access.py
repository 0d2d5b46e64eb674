"""What a share link's request may reach: its study's read-only DICOMweb paths and nothing else."""

from __future__ import annotations

import pytest

from lightbox.api.share_access import share_allows

STUDY = "1.2.3.4"


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", "/dicom-web/studies", b""),
        ("GET", "/dicom-web/studies", b"StudyInstanceUID=9.9"),  # narrowed by the QIDO-RS adapter
        ("GET", f"/dicom-web/studies/{STUDY}", b""),
        ("HEAD", f"/dicom-web/studies/{STUDY}/metadata", b""),
        ("GET", f"/dicom-web/studies/{STUDY}/series/1.5/instances/1.6/frames/1", b""),
        ("GET", "/wado", f"requestType=WADO&studyUID={STUDY}&seriesUID=1.5&objectUID=1.6".encode()),
        ("GET", "/viewer", f"StudyInstanceUIDs={STUDY}".encode()),  # the viewer's page: no data of its own
    ],
)
def test_allowed(method: str, path: str, query: bytes) -> None:
    assert share_allows(method, path, query, STUDY)


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("POST", "/dicom-web/studies", b""),  # STOW-RS
        ("POST", f"/dicom-web/studies/{STUDY}", b""),
        ("DELETE", f"/dicom-web/studies/{STUDY}", b""),
        ("GET", f"/dicom-web/studies/{STUDY}9", b""),  # another study whose UID starts alike
        ("GET", f"/dicom-web/studies/{STUDY}.1/metadata", b""),
        ("GET", "/dicom-web/series", b""),
        ("GET", "/dicom-web/instances", b""),
        ("GET", "/api/studies", b""),
        ("GET", f"/api/studies/{STUDY}", b""),
        ("GET", "/metrics", b""),
        ("GET", "/wado", b"requestType=WADO&studyUID=9.9&seriesUID=1.5&objectUID=1.6"),
        ("GET", "/wado", f"studyUID={STUDY}&studyUID=9.9".encode()),  # two answers: refused
        ("POST", "/viewer", b""),
        ("GET", "/", b""),  # the study list: not for a share link
        ("GET", "/segmentation", b""),
    ],
)
def test_refused(method: str, path: str, query: bytes) -> None:
    assert not share_allows(method, path, query, STUDY)
