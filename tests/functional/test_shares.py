"""Share links against ``lightbox serve``: a radiologist shares one study; whoever holds the link sees that
study read-only over DICOMweb, and nothing else; a de-identified link shows no trace of the patient; a
revoked or expired link opens nothing; each step is in the audit trail."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.domain.accounts import Role
from tests.support.dicom import part10
from tests.support.server import RunningServer, running_server

SHARED, SERIES, OTHER = generate_uid(), generate_uid(), generate_uid()
NAME, PATIENT_ID, BIRTH_DATE = "Smith^Johanna", "MRN-0815-SMITH", "19591231"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    """The server with two studies of two patients, and tokens of rita (radiologist) and vera (viewer)."""
    data = tmp_path_factory.mktemp("shares") / "data"
    archive = build_archive(load_settings(data_dir=data))
    for n in (1, 2):
        blob = part10(
            StudyInstanceUID=SHARED,
            SeriesInstanceUID=SERIES,
            InstanceNumber=n,
            PatientName=NAME,
            PatientID=PATIENT_ID,
            PatientBirthDate=BIRTH_DATE,
            InstitutionName="St. Elsewhere",
        )
        archive.ingest.ingest([blob], "t")
    archive.ingest.ingest([part10(StudyInstanceUID=OTHER, PatientID="SOMEONE-ELSE")], "t")
    tokens = {}
    for name, role in (("rita", Role.RADIOLOGIST), ("vera", Role.VIEWER)):
        archive.accounts.add_user(name, role, None)
        tokens[name], _ = archive.accounts.create_token(name, "t")
    archive.close()
    with running_server(data, env={"LIGHTBOX_AUDIT_FLUSH_SECONDS": "0.2"}) as running:
        yield running, tokens


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _share(running: RunningServer, token: str, **body: Any) -> httpx.Response:
    body = {"study_instance_uid": SHARED, **body}
    return httpx.post(running.base_url + "/api/shares", json=body, headers=_as(token), timeout=30)


def _opened(url: str) -> httpx.Client:
    """A fresh browser-like client that opened the link (and holds its cookie)."""
    client = httpx.Client(timeout=30)
    page = client.get(url)
    assert page.status_code == 200, page.text
    return client


def test_who_may_share_and_what_is_checked(server: tuple[RunningServer, dict[str, str]]) -> None:
    running, tokens = server
    assert _share(running, tokens["vera"]).status_code == 403  # a viewer may not share
    assert _share(running, tokens["rita"], study_instance_uid=generate_uid()).status_code == 404
    assert _share(running, tokens["rita"], study_instance_uid="1.2.x").status_code == 400
    assert _share(running, tokens["rita"], days=0).status_code == 400
    assert _share(running, tokens["rita"], days=365).status_code == 400
    created = _share(running, tokens["rita"], note="for Dr. Who")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["url"].startswith(running.base_url + "/share/lbs_") and body["url"].endswith(body["token"])
    assert (body["created_by"], body["deidentify"], body["note"]) == ("rita", False, "for Dr. Who")
    listed = httpx.get(running.base_url + "/api/shares", headers=_as(tokens["rita"])).json()
    assert body["id"] in [s["id"] for s in listed] and all(s["created_by"] == "rita" for s in listed)
    assert "token" not in listed[0]
    assert httpx.get(running.base_url + "/api/shares", headers=_as(tokens["vera"])).status_code == 403
    everyone = httpx.get(running.base_url + "/api/shares", headers=running.headers).json()
    assert body["id"] in [s["id"] for s in everyone]


def test_the_link_opens_its_study_and_nothing_else(server: tuple[RunningServer, dict[str, str]]) -> None:
    running, tokens = server
    url = _share(running, tokens["rita"]).json()["url"]
    client = _opened(url)
    cookie = next(
        c for c in client.get(url).headers.get_list("set-cookie") if c.startswith("lightbox_share=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    base = running.base_url
    studies = client.get(base + "/dicom-web/studies")
    assert studies.status_code == 200
    assert [s["0020000D"]["Value"][0] for s in studies.json()] == [SHARED]
    assert client.get(base + "/dicom-web/studies", params={"StudyInstanceUID": OTHER}).status_code == 204
    assert client.get(base + f"/dicom-web/studies/{SHARED}/series").status_code == 200
    assert client.get(base + f"/dicom-web/studies/{SHARED}/metadata").status_code == 200
    for path in (
        f"/dicom-web/studies/{OTHER}/metadata",
        f"/dicom-web/studies/{OTHER}",
        "/dicom-web/series",
        "/dicom-web/instances",
        "/api/studies",
        f"/api/studies/{SHARED}",
        "/api/shares",
        "/api/audit",
        f"/wado?requestType=WADO&studyUID={OTHER}&seriesUID=1.2&objectUID=1.3",
    ):
        assert client.get(base + path).status_code == 403, path
    assert client.delete(base + f"/dicom-web/studies/{SHARED}").status_code in (403, 405)
    assert client.delete(base + f"/api/studies/{SHARED}").status_code == 403
    stow = client.post(base + f"/dicom-web/studies/{SHARED}", content=b"x", headers={"Content-Type": "x/y"})
    assert stow.status_code == 403

    # the token itself serves a DICOMweb client as a bearer token
    token = url.rsplit("/", 1)[1]
    dicomweb = DICOMwebClient(url=base + "/dicom-web", headers=_as(token))
    assert len(dicomweb.search_for_studies()) == 1
    instances = dicomweb.retrieve_study(SHARED)
    assert sorted(int(ds.InstanceNumber) for ds in instances) == [1, 2]
    assert instances[0].PatientName == NAME


def test_a_deidentified_link_shows_no_trace_of_the_patient(
    server: tuple[RunningServer, dict[str, str]],
) -> None:
    running, tokens = server
    created = _share(running, tokens["rita"], deidentify=True).json()
    client = _opened(created["url"])
    base = running.base_url
    secrets = [NAME.split("^")[0].encode(), PATIENT_ID.encode(), BIRTH_DATE.encode(), b"St. Elsewhere"]

    search = client.get(base + "/dicom-web/studies", params={"includefield": "all"})
    metadata = client.get(base + f"/dicom-web/studies/{SHARED}/metadata")
    accept = {"Accept": 'multipart/related; type="application/dicom"'}
    objects = client.get(base + f"/dicom-web/studies/{SHARED}", headers=accept)
    for answer in (search, metadata, objects):
        assert answer.status_code == 200
        for secret in secrets:
            assert secret not in answer.content, (answer.request.url, secret)
    docs = metadata.json()
    assert {d["0020000D"]["Value"][0] for d in docs} == {SHARED}  # UIDs kept: the URLs stay valid
    assert {d["00120062"]["Value"][0] for d in docs} == {"YES"}  # Patient Identity Removed
    pseudonyms = {d["00100020"]["Value"][0] for d in docs}
    assert len(pseudonyms) == 1 and pseudonyms.pop().startswith("ANON-")
    files = DICOMwebClient(url=base + "/dicom-web", headers=_as(created["token"])).retrieve_study(SHARED)
    assert len(files) == 2 and {f.PatientIdentityRemoved for f in files} == {"YES"}
    originals = running.dicomweb().retrieve_study(SHARED)
    by_number = {int(f.InstanceNumber): f.PixelData for f in originals}
    assert all(f.PixelData == by_number[int(f.InstanceNumber)] for f in files)  # pixels as stored

    # a search cannot test a guess of who the patient is
    guess = client.get(base + "/dicom-web/studies", params={"PatientName": "Smith*"})
    assert guess.status_code == 400
    # nor reach bulk data other than pixels
    sop = docs[0]["00080018"]["Value"][0]
    bulk = client.get(base + f"/dicom-web/studies/{SHARED}/series/{SERIES}/instances/{sop}/bulkdata/00091010")
    assert bulk.status_code == 403


def test_revoked_and_expired_links_open_nothing(server: tuple[RunningServer, dict[str, str]]) -> None:
    running, tokens = server
    created = _share(running, tokens["rita"]).json()
    client = _opened(created["url"])
    path = f"/api/shares/{created['id']}"
    assert httpx.delete(running.base_url + path, headers=_as(tokens["vera"])).status_code == 403
    revoked = httpx.delete(running.base_url + path, headers=_as(tokens["rita"]))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert client.get(running.base_url + f"/dicom-web/studies/{SHARED}/metadata").status_code == 401
    assert httpx.get(created["url"]).status_code == 410
    assert httpx.get(running.base_url + "/share/lbs_" + "x" * 43).status_code == 404

    brief = _share(running, tokens["rita"], days=1 / 86400).json()  # one second
    time.sleep(1.5)
    assert httpx.get(brief["url"]).status_code == 410
    token = brief["token"]
    assert httpx.get(running.base_url + "/dicom-web/studies", headers=_as(token)).status_code == 401


def test_sharing_is_in_the_audit_trail(server: tuple[RunningServer, dict[str, str]]) -> None:
    running, tokens = server
    created = _share(running, tokens["rita"]).json()
    client = _opened(created["url"])
    assert client.get(running.base_url + f"/dicom-web/studies/{SHARED}/metadata").status_code == 200
    httpx.delete(running.base_url + f"/api/shares/{created['id']}", headers=_as(tokens["rita"]))
    records = httpx.get(
        running.base_url + "/api/audit", params={"study": SHARED, "limit": 1000}, headers=running.headers
    ).json()["records"]
    ours = [r for r in records if f"link {created['id']} " in r["detail"]]
    assert sorted(r["detail"].split(":")[0] for r in ours) == [
        f"link {created['id']} created",
        f"link {created['id']} opened",
        f"link {created['id']} revoked",
    ]
    assert all(r["patient_id"] == PATIENT_ID and r["action"] == "share" for r in ours)
    viewed = [r for r in records if r["action"] == "view" and r["user"] == f"share-{created['id']}"]
    assert viewed and viewed[0]["protocol"] == "wado"
