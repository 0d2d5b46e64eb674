"""``lightbox serve`` as a QIDO-RS origin server (PS3.18 10.6), against dicomweb-client and httpx.

The matching cases are those of C-FIND (tests/functional/test_dimse_find.py); each QIDO-RS search is also
sent as a C-FIND to the same server, and both must find the same studies.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.dicom import part10
from tests.support.server import RunningServer, running_server

STUDY_A, STUDY_B, STUDY_C = generate_uid(), generate_uid(), generate_uid()
SERIES_A, SERIES_B, SERIES_B2, SERIES_C = generate_uid(), generate_uid(), generate_uid(), generate_uid()
MANY = 25  # instances in series B: more than the server's maximum below
MAXIMUM = 10  # dicomweb.qido_max_results of the server under test
NAMES: dict[str, str] = {STUDY_A: "A", STUDY_B: "B", STUDY_C: "C"}
SERVER_WARNING = "The number of results exceeded the maximum supported by the server"
MORE_WARNING = "There are additional results that can be requested"


def _request_attributes(sps: str, rp: str) -> Sequence:
    item = Dataset()
    item.ScheduledProcedureStepID = sps
    item.RequestedProcedureID = rp
    return Sequence([item])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("qido") / "data"
    archive = build_archive(load_settings(data_dir=data))
    patient_a = {"PatientID": "PID-A", "PatientName": "Doe^Anna", "StudyDate": "20240105"}
    archive.ingest.ingest(
        [
            part10(
                StudyInstanceUID=STUDY_A,
                SeriesInstanceUID=SERIES_A,
                StudyDescription="CT HEAD",
                SeriesDescription="Head",
                BodyPartExamined="HEAD",
                RequestAttributesSequence=_request_attributes("SPS-A", "RP-A"),
                **patient_a,
            )
        ],
        "t",
    )
    patient_b = {"PatientID": "PID-B", "PatientName": "Doe^Björn", "StudyDate": "20240210", "Modality": "MR"}
    for i in range(MANY):
        archive.ingest.ingest(
            [part10(StudyInstanceUID=STUDY_B, SeriesInstanceUID=SERIES_B, InstanceNumber=i, **patient_b)], "t"
        )
    archive.ingest.ingest(
        [part10(StudyInstanceUID=STUDY_B, SeriesInstanceUID=SERIES_B2, SeriesNumber=2, **patient_b)], "t"
    )
    archive.ingest.ingest(
        [
            part10(
                StudyInstanceUID=STUDY_C,
                SeriesInstanceUID=SERIES_C,
                PatientID="OTHER-1",
                PatientName="Roe^Carl",
                StudyDate="20231120",
                Modality="US",
            )
        ],
        "t",
    )
    archive.close()
    env = {"LIGHTBOX_DICOMWEB_QIDO_MAX_RESULTS": str(MAXIMUM)}
    with running_server(data, env=env, aes=["PYNETDICOM"]) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> DICOMwebClient:
    client: DICOMwebClient = server.dicomweb()
    return client


@pytest.fixture(scope="module")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client(base_url=server.base_url + "/dicom-web", timeout=30) as c:
        yield c


def value(match: dict[str, Any], tag: str) -> Any:
    return match[tag]["Value"][0]


def uids(matches: list[dict[str, Any]], tag: str = "0020000D") -> list[str]:
    return [value(m, tag) for m in matches]


def studies(matches: list[dict[str, Any]]) -> set[str]:
    return {NAMES[uid] for uid in uids(matches)}


def c_find_studies(server: RunningServer, keys: dict[str, str]) -> set[str]:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    for keyword, text in keys.items():
        setattr(identifier, keyword, text)
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
    assert assoc.is_established
    found: set[str] = set()
    for status, match in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind):
        if status.Status in (0xFF00, 0xFF01) and match is not None:
            found.add(NAMES[match.StudyInstanceUID])
    assoc.release()
    return found


MATCHING = [
    # (PS3.4 C.2.2.2 matching type, QIDO-RS parameters, the same keys for C-FIND, the studies found)
    ("single value", {"PatientID": "PID-A"}, None, {"A"}),
    ("universal", {"PatientID": ""}, None, {"A", "B", "C"}),
    ("wildcard *", {"PatientName": "Doe^A*"}, None, {"A"}),
    ("wildcard ?", {"PatientID": "PID-?"}, None, {"A", "B"}),
    ("range", {"StudyDate": "20240201-20240301"}, None, {"B"}),
    ("open range", {"StudyDate": "-20240131"}, None, {"A", "C"}),
    ("open range after", {"StudyDate": "20240201-"}, None, {"B"}),
    (
        "UID list",
        {"StudyInstanceUID": f"{STUDY_A},{STUDY_C}"},
        {"StudyInstanceUID": f"{STUDY_A}\\{STUDY_C}"},
        {"A", "C"},
    ),
    ("computed key", {"ModalitiesInStudy": "MR"}, None, {"B"}),
    ("two keys", {"PatientName": "Doe*", "StudyDate": "-20240131"}, None, {"A"}),
    ("no match", {"PatientID": "NOBODY"}, None, set()),
]


@pytest.mark.parametrize(("kind", "filters", "dimse", "expected"), MATCHING, ids=[c[0] for c in MATCHING])
def test_matching_types_find_what_c_find_finds(
    server: RunningServer,
    client: DICOMwebClient,
    kind: str,
    filters: dict[str, str],
    dimse: dict[str, str] | None,
    expected: set[str],
) -> None:
    found = studies(client.search_for_studies(search_filters=filters))
    assert found == expected, kind
    assert c_find_studies(server, dimse or filters) == expected, kind


def test_tag_numbers_name_attributes(client: DICOMwebClient) -> None:
    assert studies(client.search_for_studies(search_filters={"00100020": "PID-A"})) == {"A"}
    assert studies(
        client.search_for_studies(search_filters={"00100010": "Doe*", "00080020": "20240201-"})
    ) == {"B"}


def test_repeated_keys_match_any_value(client: DICOMwebClient, http: httpx.Client) -> None:
    response = http.get("/studies", params=[("StudyInstanceUID", STUDY_A), ("0020000D", STUDY_B)])
    assert response.status_code == 200 and studies(response.json()) == {"A", "B"}
    found = client.search_for_studies(search_filters={"PatientID": ["PID-A", "OTHER-1"]})
    assert studies(found) == {"A", "C"}


def test_fuzzy_matching_of_person_names(client: DICOMwebClient) -> None:
    """PS3.18 8.3.4.2: with fuzzymatching=true, names match whatever their case and accents."""
    assert studies(
        client.search_for_studies(search_filters={"PatientName": "doe^anna"}, fuzzymatching=True)
    ) == {"A"}
    assert studies(
        client.search_for_studies(search_filters={"PatientName": "DOE^BJORN"}, fuzzymatching=True)
    ) == {"B"}
    assert client.search_for_studies(search_filters={"PatientName": "doe^anna"}, fuzzymatching=False) == []
    assert client.search_for_studies(search_filters={"PatientName": "doe^anna"}) == []


def test_study_defaults(server: RunningServer, client: DICOMwebClient) -> None:
    """PS3.18 Table 10.6.3-3."""
    [study] = client.search_for_studies(search_filters={"PatientID": "PID-B"})
    assert {
        "00080020",
        "00080030",
        "00080050",
        "00080056",
        "00080061",
        "00080090",
        "00081190",
        "00100010",
        "00100020",
        "00100030",
        "00100040",
        "0020000D",
        "00200010",
        "00201206",
        "00201208",
    } == set(study)  # no Timezone Offset From UTC: the objects have none
    assert value(study, "00100010") == {"Alphabetic": "Doe^Björn"}
    assert study["00080061"]["Value"] == ["MR"]
    assert (value(study, "00201206"), value(study, "00201208")) == (2, MANY + 1)
    assert value(study, "00080056") == "ONLINE"
    assert value(study, "00081190") == f"{server.base_url}/dicom-web/studies/{STUDY_B}"


def test_series_defaults_and_the_study_attributes_of_all_series(client: DICOMwebClient) -> None:
    """PS3.18 10.6.3.3.2: Table 10.6.3-4, with the study attributes when the resource is All Series."""
    [nested] = client.search_for_series(study_instance_uid=STUDY_A)
    assert set(nested) == {
        "00080060",
        "0008103E",
        "00081190",
        "0020000D",
        "0020000E",
        "00200011",
        "00201209",
        "00400275",
    }
    assert value(nested, "0008103E") == "Head" and value(nested, "00201209") == 1
    assert nested["00400275"]["Value"] == [
        {"00400009": {"vr": "SH", "Value": ["SPS-A"]}, "00401001": {"vr": "SH", "Value": ["RP-A"]}}
    ]
    assert value(nested, "00081190").endswith(f"/dicom-web/studies/{STUDY_A}/series/{SERIES_A}")

    [everywhere] = client.search_for_series(search_filters={"SeriesInstanceUID": SERIES_A})
    assert set(nested) < set(everywhere)
    assert value(everywhere, "00100010") == {"Alphabetic": "Doe^Anna"}
    assert value(everywhere, "00080050") == "ACC-1" and value(everywhere, "00201208") == 1


def test_instance_defaults(client: DICOMwebClient) -> None:
    """PS3.18 Table 10.6.3-5: Number of Frames is conditional and these objects have none."""
    [instance] = client.search_for_instances(study_instance_uid=STUDY_A, series_instance_uid=SERIES_A)
    assert set(instance) == {
        "00080016",
        "00080018",
        "00080056",
        "00081190",
        "0020000D",
        "0020000E",
        "00200013",
        "00280010",
        "00280011",
        "00280100",
    }
    sop = value(instance, "00080018")
    assert value(instance, "00080016") == "1.2.840.10008.5.1.4.1.1.2"
    assert (value(instance, "00280010"), value(instance, "00280011"), value(instance, "00280100")) == (
        4,
        4,
        16,
    )
    assert value(instance, "00081190").endswith(f"/studies/{STUDY_A}/series/{SERIES_A}/instances/{sop}")
    # All Instances adds the study and series attributes (PS3.18 10.6.3.3.3).
    [everywhere] = client.search_for_instances(search_filters={"SOPInstanceUID": sop})
    assert value(everywhere, "00100020") == "PID-A" and value(everywhere, "0008103E") == "Head"


def test_retrieve_urls(server: RunningServer, http: httpx.Client) -> None:
    """Retrieve URL (0008,1190): the WADO-RS resource of each match, on the base URL the client used."""
    base = f"{server.base_url}/dicom-web/studies/{STUDY_A}"
    [study] = http.get("/studies", params={"PatientID": "PID-A"}).json()
    assert value(study, "00081190") == base
    [series] = http.get("/series", params={"PatientID": "PID-A"}).json()
    assert value(series, "00081190") == f"{base}/series/{SERIES_A}"
    [instance] = http.get(f"/studies/{STUDY_A}/instances").json()
    assert value(instance, "00081190") == f"{base}/series/{SERIES_A}/instances/{value(instance, '00080018')}"
    # The Host header names the server as the client reached it (through a proxy, say).
    host = {"Host": "pacs.example.org:8443"}
    [study] = http.get("/studies", params={"PatientID": "PID-A"}, headers=host).json()
    assert value(study, "00081190") == f"http://pacs.example.org:8443/dicom-web/studies/{STUDY_A}"


def test_includefield(client: DICOMwebClient) -> None:
    [study] = client.search_for_studies(search_filters={"PatientID": "PID-A"}, fields=["StudyDescription"])
    assert value(study, "00081030") == "CT HEAD"
    [study] = client.search_for_studies(search_filters={"PatientID": "PID-A"}, fields=["00081030,00101010"])
    assert value(study, "00081030") == "CT HEAD" and study["00101010"] == {
        "vr": "AS"
    }  # asked for: kept empty
    # PS3.18 10.6.3.3.1: series and instance attributes are not returned at the study level.
    [study] = client.search_for_studies(search_filters={"PatientID": "PID-A"}, fields=["SeriesDescription"])
    assert "0008103E" not in study
    [series] = client.search_for_series(
        search_filters={"SeriesInstanceUID": SERIES_A}, fields=["BodyPartExamined", "StudyDescription"]
    )
    assert value(series, "00180015") == "HEAD" and value(series, "00081030") == "CT HEAD"


def test_includefield_all(client: DICOMwebClient) -> None:
    """PS3.18 8.3.4.3: every available attribute of the level; absent ones are left out."""
    [study] = client.search_for_studies(search_filters={"PatientID": "PID-A"}, fields=["all"])
    assert value(study, "00081030") == "CT HEAD"  # Study Description
    assert value(study, "00080062") == "1.2.840.10008.5.1.4.1.1.2"  # SOP Classes in Study
    assert "00101010" not in study  # Patient's Age: not in the objects
    [series] = client.search_for_series(study_instance_uid=STUDY_A, fields=["all"])
    assert value(series, "00180015") == "HEAD" and "00081030" not in series  # no study attributes
    [instance] = client.search_for_instances(
        study_instance_uid=STUDY_A, series_instance_uid=SERIES_A, fields=["all"]
    )
    assert value(instance, "00280101") == 12 and value(instance, "00280004") == "MONOCHROME2"
    assert "00280008" not in instance  # Number of Frames


def test_nested_and_relational_resources(client: DICOMwebClient) -> None:
    assert set(uids(client.search_for_series(study_instance_uid=STUDY_B), "0020000E")) == {
        SERIES_B,
        SERIES_B2,
    }
    assert uids(
        client.search_for_series(study_instance_uid=STUDY_B, search_filters={"SeriesNumber": "2"}), "0020000E"
    ) == [SERIES_B2]
    [instance] = client.search_for_instances(study_instance_uid=STUDY_C)
    assert value(instance, "0020000E") == SERIES_C
    assert len(client.search_for_instances(study_instance_uid=STUDY_B, series_instance_uid=SERIES_B2)) == 1
    # Relational: study attributes match series and instances (PS3.18 Table 10.6.1-4).
    assert set(uids(client.search_for_series(search_filters={"PatientID": "PID-B"}), "0020000E")) == {
        SERIES_B,
        SERIES_B2,
    }
    assert uids(client.search_for_instances(search_filters={"PatientName": "Roe^*"}), "0020000E") == [
        SERIES_C
    ]
    assert client.search_for_series(study_instance_uid=generate_uid()) == []


def test_sequence_matching(client: DICOMwebClient) -> None:
    """PS3.4 C.2.2.2.6 through a dotted attribute path (PS3.18 8.3.4.1)."""
    for key in ("RequestAttributesSequence.ScheduledProcedureStepID", "00400275.00400009"):
        [series] = client.search_for_series(search_filters={key: "SPS-A"})
        assert value(series, "0020000E") == SERIES_A
    assert client.search_for_series(search_filters={"00400275.00400009": "SPS-X"}) == []


def test_paging_past_the_server_maximum(client: DICOMwebClient, http: httpx.Client) -> None:
    path = f"/studies/{STUDY_B}/series/{SERIES_B}/instances"
    pages, offset = [], 0
    while True:
        response = http.get(path, params={"offset": offset})
        if response.status_code == 204:
            assert response.content == b"" and "warning" not in response.headers
            break
        page = response.json()
        assert len(page) <= MAXIMUM
        warning = response.headers.get("warning", "")
        assert (warning.startswith("299 ") and SERVER_WARNING in warning) == (offset + MAXIMUM < MANY)
        pages.append(page)
        offset += len(page)
    assert [len(p) for p in pages] == [10, 10, 5]
    numbers = [value(m, "00200013") for p in pages for m in p]
    assert numbers == list(range(MANY))  # one order, page after page (PS3.18 8.3.4.4.1)

    # A limit above the maximum is cut to it; one below is the client's own page.
    response = http.get(path, params={"limit": 50})
    assert len(response.json()) == MAXIMUM and SERVER_WARNING in response.headers["warning"]
    response = http.get(path, params={"limit": 3, "offset": 4})
    assert [value(m, "00200013") for m in response.json()] == [4, 5, 6]
    assert MORE_WARNING in response.headers["warning"]
    response = http.get(path, params={"limit": 5, "offset": MANY - 5})
    assert len(response.json()) == 5 and "warning" not in response.headers
    assert http.get(path, params={"offset": MANY}).status_code == 204

    # Lightbox's orderby=-stored: the last stored first, page after page
    backwards = [http.get(path, params={"orderby": "-stored", "limit": 10, "offset": o}) for o in (0, 10, 20)]
    assert [MORE_WARNING in r.headers.get("warning", "") for r in backwards] == [True, True, False]
    assert [value(m, "00200013") for r in backwards for m in r.json()] == list(reversed(range(MANY)))

    # dicomweb-client follows the pages to the end.
    everything = client.search_for_instances(
        study_instance_uid=STUDY_B, series_instance_uid=SERIES_B, get_remaining=True
    )
    assert sorted(value(m, "00200013") for m in everything) == list(range(MANY))
    assert len(client.search_for_instances(study_instance_uid=STUDY_B, limit=4)) == 4


@pytest.mark.parametrize(
    ("path", "params", "detail"),
    [
        ("/studies", {"PatientNme": "Doe"}, "unknown attribute 'PatientNme'"),
        ("/studies", {"limit": "-1"}, "limit must be a whole number"),
        ("/studies", {"offset": "many"}, "offset must be a whole number"),
        ("/studies", {"fuzzymatching": "maybe"}, "fuzzymatching must be true or false"),
        ("/studies", {"orderby": "StudyDate"}, "orderby must be stored (the order of storage) or -stored"),
        (
            "/studies",
            {"StudyDate": "20240301-20240201"},
            "StudyDate: the range 20240301-20240201 ends before",
        ),
        ("/studies", {"StudyDate": "20241340"}, "StudyDate: '20241340' is not a date"),
        ("/studies", {"StudyInstanceUID": "1.2.abc"}, "StudyInstanceUID: '1.2.abc' is not a valid UID"),
        ("/studies", {"SOPInstanceUID": "1.2.3"}, "SOPInstanceUID is a IMAGE level attribute"),
        ("/studies", {"RequestAttributesSequence": "x"}, "RequestAttributesSequence is a sequence"),
        ("/studies/1.2.x/series", {}, "'1.2.x' in the path is not a valid Study Instance UID"),
        (
            f"/studies/{STUDY_A}/series/01.2/instances",
            {},
            "'01.2' in the path is not a valid Series Instance UID",
        ),
        (f"/studies/{STUDY_A}/series", {"StudyInstanceUID": STUDY_B}, "StudyInstanceUID is"),
    ],
)
def test_bad_parameters_are_400_problems(
    http: httpx.Client, path: str, params: dict[str, str], detail: str
) -> None:
    response = http.get(path, params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400 and detail in problem["detail"]


def test_media_types(http: httpx.Client) -> None:
    response = http.get("/studies", headers={"Accept": "text/html"})
    assert response.status_code == 406
    assert response.headers["content-type"] == "application/problem+json"
    assert "application/dicom+json" in response.json()["detail"]
    response = http.get("/studies", params={"PatientID": "PID-A"}, headers={"Accept": "application/json"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    response = http.get(
        "/studies", params={"PatientID": "PID-A"}, headers={"Accept": "application/dicom+json"}
    )
    assert response.headers["content-type"] == "application/dicom+json"
    assert studies(response.json()) == {"A"}
    response = http.get("/series", headers={"Accept": "application/dicom+json;q=0.1, text/html"})
    assert response.status_code == 200 and len(response.json()) == 4
