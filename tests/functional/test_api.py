"""The admin REST API, /metrics and the OpenAPI document, against ``lightbox serve``.

Listings, paging and filters; one entity; deletes (rows, counters and the object files together); statistics
and system information; metric values after a C-STORE, a C-GET and a DICOMweb request; and schemathesis
checking every /api route against the OpenAPI document.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from prometheus_client.parser import text_string_to_metric_families
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)
from schemathesis import BaseSchema, Case, GenerationMode
from schemathesis.config import SchemathesisConfig

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.dicom import make_dataset, part10, to_part10
from tests.support.server import RunningServer, running_server

# Patient P-API-1: study A (series CT of 3 instances, series MR of 1) and study B (1 instance);
# patient P-API-2: one study. Deletes act on patient P-DEL only, so the other tests' data stays.
STUDY_A, STUDY_B, STUDY_C = generate_uid(), generate_uid(), generate_uid()
SERIES_CT, SERIES_MR = generate_uid(), generate_uid()
DEL_STUDY_1, DEL_STUDY_2, DEL_SERIES_1, DEL_SERIES_2, DEL_SERIES_3 = (generate_uid() for _ in range(5))


def _objects() -> list[bytes]:
    objects = [
        part10(PatientID="P-API-1", StudyInstanceUID=STUDY_A, SeriesInstanceUID=SERIES_CT, InstanceNumber=n)
        for n in (2, 1, 3)
    ]
    objects.append(
        part10(
            PatientID="P-API-1",
            StudyInstanceUID=STUDY_A,
            SeriesInstanceUID=SERIES_MR,
            Modality="MR",
            SeriesDescription="T1 axial",
        )
    )
    objects.append(part10(PatientID="P-API-1", StudyInstanceUID=STUDY_B, StudyDescription="CHEST"))
    objects.append(part10(PatientID="P-API-2", PatientName="Roe^Richard", StudyInstanceUID=STUDY_C))
    deletable = ((DEL_STUDY_1, DEL_SERIES_1), (DEL_STUDY_1, DEL_SERIES_2), (DEL_STUDY_2, DEL_SERIES_3))
    for study, series_uid in deletable:
        for n in (1, 2):
            objects.append(
                part10(
                    PatientID="P-DEL", StudyInstanceUID=study, SeriesInstanceUID=series_uid, InstanceNumber=n
                )
            )
    return objects


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("api") / "data"
    archive = build_archive(load_settings(data_dir=data))
    for blob in _objects():
        archive.ingest.ingest([blob], "t")
    archive.close()
    with running_server(data, aes=["APITEST", "VIEWER"]) as running:
        yield running


def _request(server: RunningServer, method: str, path: str) -> tuple[int, str, Any]:
    request = urllib.request.Request(server.base_url + path, method=method, headers=server.headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            body = resp.read()
            status, content_type = resp.status, resp.headers["content-type"]
    except urllib.error.HTTPError as exc:
        body, status, content_type = exc.read(), exc.code, exc.headers["content-type"]
    return status, content_type, json.loads(body) if "json" in content_type else body.decode()


def _get(server: RunningServer, path: str) -> Any:
    status, _, body = _request(server, "GET", path)
    assert status == 200, body
    return body


def _all_pages(server: RunningServer, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = _get(server, path)
    while True:
        items.extend(page["items"])
        if page["next"] is None:
            assert page["next_cursor"] is None
            return items
        assert page["next"].startswith(server.base_url + path.split("?")[0])
        page = _get(server, page["next"].removeprefix(server.base_url))


def _object_files(data: Path) -> dict[str, Path]:
    """The stored object files by SHA-256 (what the API reports of each instance)."""
    objects = data / "objects"
    return {
        hashlib.sha256(p.read_bytes()).hexdigest(): p
        for p in objects.rglob("*.dcm")
        if ".tmp" not in p.relative_to(objects).parts
    }


def _c_find(server: RunningServer, level: str, **keys: str) -> list[Dataset]:
    ae = AE(ae_title="APITEST")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
    assert assoc.is_established
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    identifier.SOPInstanceUID = ""
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    found = [ds for status, ds in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind)]
    assoc.release()
    return [ds for ds in found if ds is not None]


# --- listings and one entity --------------------------------------------------------------------------------
def test_patients_paged_with_next_links(server: RunningServer) -> None:
    everyone = _all_pages(server, "/api/patients?limit=1")
    assert [p["patient_id"] for p in everyone][:2] == ["P-API-1", "P-API-2"]
    first = _get(server, "/api/patients?patient_id=P-API-1")["items"]
    assert len(first) == 1
    p = first[0]
    assert (p["num_studies"], p["num_series"], p["num_instances"]) == (2, 3, 5)
    assert p["patient_name"] == "Doe^Jane" and p["patient_birth_date"] == "19700101"
    assert _get(server, "/api/patients?patient_id=NOBODY") == {"items": [], "next_cursor": None, "next": None}


def test_studies_series_instances_filtered(server: RunningServer) -> None:
    studies = _all_pages(server, "/api/studies?patient_id=P-API-1&limit=1")
    assert [s["study_instance_uid"] for s in studies] == [STUDY_A, STUDY_B]
    assert studies[1]["study_description"] == "CHEST"
    series = _get(server, f"/api/series?study_instance_uid={STUDY_A}")["items"]
    assert {s["series_instance_uid"]: s["num_instances"] for s in series} == {SERIES_CT: 3, SERIES_MR: 1}
    instances = _all_pages(server, f"/api/instances?series_instance_uid={SERIES_CT}&limit=2")
    assert sorted(i["instance_number"] for i in instances) == [1, 2, 3]
    assert {i["study_instance_uid"] for i in instances} == {STUDY_A}
    assert len(_get(server, f"/api/instances?study_instance_uid={STUDY_A}&limit=1000")["items"]) == 4
    assert len(_get(server, "/api/instances?patient_id=P-API-2")["items"]) == 1


def test_one_study_series_instance(server: RunningServer) -> None:
    study = _get(server, f"/api/studies/{STUDY_A}")
    assert (study["num_series"], study["num_instances"], study["modalities_in_study"]) == (2, 4, ["CT", "MR"])
    assert study["study_date"] == "20240102" and study["accession_number"] == "ACC-1"
    assert study["created_at"].endswith("Z") or "+00:00" in study["created_at"]
    series = _get(server, f"/api/series/{SERIES_MR}")
    assert (series["modality"], series["series_description"], series["num_instances"]) == (
        "MR",
        "T1 axial",
        1,
    )
    instances = _get(server, f"/api/instances?series_instance_uid={SERIES_MR}")["items"]
    one = _get(server, f"/api/instances/{instances[0]['sop_instance_uid']}")
    assert one["sop_class_uid"] == CTImageStorage and one["transfer_syntax_uid"] == ExplicitVRLittleEndian
    assert one["size"] == series["size_bytes"] and len(one["sha256"]) == 64
    assert study["size_bytes"] == sum(
        i["size"] for i in _get(server, f"/api/instances?study_instance_uid={STUDY_A}")["items"]
    )


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/studies/1.2.3.4.5", 404),
        ("/api/series/1.2.3.4.5", 404),
        ("/api/instances/1.2.3.4.5", 404),
        ("/api/studies/not.a.uid", 400),
        ("/api/studies?limit=0", 400),
        ("/api/studies?limit=1001", 400),
        ("/api/studies?cursor=-1", 400),
        ("/api/studies?cursor=abc", 400),
        ("/api/instances?series_instance_uid=x", 400),
    ],
)
def test_errors_are_problem_json(server: RunningServer, path: str, status: int) -> None:
    got, content_type, body = _request(server, "GET", path)
    assert (got, content_type) == (status, "application/problem+json")
    assert body["status"] == status and body["detail"]
    if status == 404:
        got, content_type, _ = _request(server, "DELETE", path)
        assert (got, content_type) == (404, "application/problem+json")


def test_statistics_and_system(server: RunningServer) -> None:
    stats = _get(server, "/api/statistics")
    patients = _all_pages(server, "/api/patients")
    assert stats["patients"] == len(patients)
    assert stats["instances"] == sum(p["num_instances"] for p in patients)
    assert stats["size_bytes"] == sum(p["size_bytes"] for p in patients)
    assert stats["studies"] == len(_all_pages(server, "/api/studies"))
    assert stats["tiers"] == [
        {"name": "hot", "instances": stats["instances"], "size_bytes": stats["size_bytes"]}
    ]
    system = _get(server, "/api/system")
    assert system["database_engine"] == "sqlite"
    assert system["storage_url"] == f"file://{(server.data_dir / 'objects').resolve()}"
    assert system["settings"]["ae_title"] == "LIGHTBOX" and system["uptime_seconds"] >= 0
    assert system["settings"]["dicom_port"] == server.dicom_port


# --- deletes ------------------------------------------------------------------------------------------------
def test_delete_instance_series_study(server: RunningServer) -> None:
    before = _get(server, "/api/statistics")
    files = _object_files(server.data_dir)
    doomed = _get(server, "/api/instances?patient_id=P-DEL")["items"]
    assert len(doomed) == 6 and all(i["sha256"] in files for i in doomed)
    instances = [i for i in doomed if i["study_instance_uid"] == DEL_STUDY_1]

    # one instance: its file goes, its series stays with one instance fewer
    target = next(i for i in instances if i["series_instance_uid"] == DEL_SERIES_1)
    status, _, body = _request(server, "DELETE", f"/api/instances/{target['sop_instance_uid']}")
    assert status == 200 and body["instances"] == 1 and body["size_bytes"] == target["size"]
    assert not files[target["sha256"]].exists()
    assert _request(server, "GET", f"/api/instances/{target['sop_instance_uid']}")[0] == 404
    assert _get(server, f"/api/series/{DEL_SERIES_1}")["num_instances"] == 1
    assert _get(server, f"/api/studies/{DEL_STUDY_1}")["num_instances"] == 3
    assert _c_find(server, "IMAGE", StudyInstanceUID=DEL_STUDY_1, SeriesInstanceUID=DEL_SERIES_1) != []
    found = _c_find(server, "IMAGE", StudyInstanceUID=DEL_STUDY_1, SeriesInstanceUID=DEL_SERIES_1)
    assert target["sop_instance_uid"] not in {str(ds.SOPInstanceUID) for ds in found}

    # a series: the study keeps its other series
    status, _, body = _request(server, "DELETE", f"/api/series/{DEL_SERIES_2}")
    assert status == 200 and body["instances"] == 2
    assert _c_find(server, "SERIES", StudyInstanceUID=DEL_STUDY_1, SeriesInstanceUID=DEL_SERIES_2) == []
    study = _get(server, f"/api/studies/{DEL_STUDY_1}")
    assert (study["num_series"], study["num_instances"]) == (1, 1)

    # the whole study, then the patient's last one: the patient goes too
    for study_uid in (DEL_STUDY_1, DEL_STUDY_2):
        assert _request(server, "DELETE", f"/api/studies/{study_uid}")[0] == 200
        assert _request(server, "GET", f"/api/studies/{study_uid}")[0] == 404
        assert _c_find(server, "STUDY", StudyInstanceUID=study_uid) == []
    assert _get(server, "/api/patients?patient_id=P-DEL")["items"] == []
    assert _request(server, "DELETE", f"/api/studies/{DEL_STUDY_1}")[0] == 404  # gone already

    after = _get(server, "/api/statistics")
    assert not any(files[i["sha256"]].exists() for i in doomed)
    assert after["patients"] == before["patients"] - 1
    assert after["studies"] == before["studies"] - 2
    assert after["series"] == before["series"] - 3
    assert after["instances"] == before["instances"] - 6
    remaining = _object_files(server.data_dir)
    assert len(remaining) == len(files) - 6 and after["instances"] == len(remaining)
    assert after["size_bytes"] == sum(p.stat().st_size for p in remaining.values())
    metrics = _metrics(server)
    assert metrics[("lightbox_instances_deleted_total", ())] == 6


# --- metrics ------------------------------------------------------------------------------------------------
def _metrics(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, content_type, text = _request(server, "GET", "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_after_c_store_c_get_and_dicomweb(server: RunningServer) -> None:
    ds = make_dataset(PatientID="P-METRICS")
    to_part10(ds)  # gives it the File Meta Information that pynetdicom sends by
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
    assert assoc.is_established
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()

    received: list[str] = []

    def on_store(event: evt.Event) -> int:
        received.append(str(event.request.AffectedSOPInstanceUID))
        return 0

    ae = AE(ae_title="VIEWER")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate(
        "127.0.0.1",
        server.dicom_port,
        ae_title="LIGHTBOX",
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ds.StudyInstanceUID
    list(assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet))
    assoc.release()
    assert received == [ds.SOPInstanceUID]

    assert _request(server, "GET", f"/dicom-web/studies/{ds.StudyInstanceUID}/metadata")[0] == 200
    stored = _get(server, f"/api/instances/{ds.SOPInstanceUID}")
    assert stored["source"] == "dimse:MODALITY@127.0.0.1"

    m = _metrics(server)
    dimse = (("protocol", "dimse"),)
    assert m[("lightbox_instances_stored_total", (("outcome", "stored"), ("protocol", "dimse")))] == 1
    assert m[("lightbox_stored_bytes_total", dimse)] == stored["size"]
    assert m[("lightbox_instances_retrieved_total", dimse)] == 1
    assert m[("lightbox_retrieved_bytes_total", dimse)] == stored["size"]
    for service in ("C-STORE", "C-GET"):
        status = "success" if service == "C-STORE" else "completed"
        key = ("lightbox_dimse_request_duration_seconds_count", (("service", service), ("status", status)))
        assert m[key] >= 1
    route = "/dicom-web/studies/{study}/metadata"
    key = (
        "lightbox_http_request_duration_seconds_count",
        (("method", "GET"), ("route", route), ("status", "200")),
    )
    assert m[key] >= 1
    labels = {value for (_, pairs) in m for _, value in pairs}
    assert str(ds.StudyInstanceUID) not in labels and str(ds.SOPInstanceUID) not in labels


# --- OpenAPI ------------------------------------------------------------------------------------------------
API_ROUTES = {
    "/api/patients": {"get"},
    "/api/studies": {"get"},
    "/api/series": {"get"},
    "/api/instances": {"get"},
    "/api/studies/{uid}": {"get", "delete"},
    "/api/series/{uid}": {"get", "delete"},
    "/api/instances/{uid}": {"get", "delete"},
    "/api/statistics": {"get"},
    "/api/system": {"get"},
    "/api/login": {"post"},
    "/api/logout": {"post"},
    "/api/me": {"get"},
    "/api/audit": {"get"},
    "/api/shares": {"get", "post"},
    "/api/shares/{share_id}": {"delete"},
    "/api/users": {"get", "post"},
    "/api/users/{name}": {"patch"},
    "/api/users/{name}/tokens": {"get", "post"},
    "/api/users/{name}/tokens/{label}": {"delete"},
    "/api/aes": {"get", "post"},
    "/api/aes/{ae_title}": {"delete"},
    "/api/aes/{ae_title}/echo": {"post"},
}


def test_openapi_describes_every_api_route(server: RunningServer) -> None:
    paths = _get(server, "/api/openapi.json")["paths"]
    assert {p for p in paths if p.startswith("/api/")} - API_ROUTES.keys() == {"/api/health"}
    assert set(paths["/metrics"]) == {"get"}
    for path, methods in API_ROUTES.items():
        assert set(paths[path]) == methods, path
        for method in methods:
            operation = paths[path][method]
            assert operation["summary"]
            if path == "/api/logout":
                assert "204" in operation["responses"]  # no body
            else:
                answer = operation["responses"].get("200") or operation["responses"]["201"]
                assert "application/json" in answer["content"]
            assert "application/problem+json" in operation["responses"]["default"]["content"]
            assert "422" not in operation["responses"]  # validation errors are 400s
            if "{uid}" in path:
                assert {"400", "404"} <= operation["responses"].keys()


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaseSchema]:
    """A server of its own, so that the generated DELETEs cannot touch the other tests' data."""
    data = tmp_path_factory.mktemp("schemathesis") / "data"
    archive = build_archive(load_settings(data_dir=data))
    study = generate_uid()
    for n in (1, 2):
        archive.ingest.ingest([part10(StudyInstanceUID=study, InstanceNumber=n)], "t")
    archive.close()
    with running_server(data) as running:
        # The OpenAPI document's own bearer scheme gets the token, so that schemathesis authenticates its
        # requests as a client reading the document would
        config = SchemathesisConfig.from_dict({"auth": {"openapi": {"bearer": {"bearer": running.token}}}})
        yield schemathesis.openapi.from_url(
            running.base_url + "/api/openapi.json", config=config, headers=running.headers
        )


# Invalid requests only for the routes that take parameters: the others have nothing to get wrong.
@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [
        (method, path, mode)
        for path, methods in API_ROUTES.items()
        for method in sorted(methods)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if mode is GenerationMode.POSITIVE or path not in ("/api/statistics", "/api/system")
    ],
    ids=str,
)
def test_api_conforms_to_its_openapi_document(
    api_schema: BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    """schemathesis: valid requests answered as documented, invalid ones refused with a documented 400."""
    operation = api_schema[path][method.upper()]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: Case) -> None:
        response = case.call_and_validate()
        if mode is GenerationMode.POSITIVE and path != "/api/login":  # random credentials: 401 there
            assert response.status_code not in (401, 403), response.text  # authenticated as the admin

    check()
