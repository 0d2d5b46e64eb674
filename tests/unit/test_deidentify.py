"""De-identification by PS3.15's Basic Profile: each kind of action, UID consistency, the Retain UIDs Option,
DICOM JSON agreeing with the data set path, and output that is still a valid Part 10 object."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from lightbox.deidentify import DeidentifyOptions, Pseudonyms, deidentify_dataset, deidentify_json
from lightbox.deidentify.profile import RESOLVED, Action
from lightbox.deidentify.table import BASIC_PROFILE, RETAIN_UIDS_OPTION
from lightbox.domain.uids import is_valid_uid
from tests.support.dicom import make_dataset

KEY = b"0123456789abcdef0123456789abcdef"
DCM_CODES = ("113100", "113110")


def _item(**attrs: Any) -> Dataset:
    item = Dataset()
    for keyword, value in attrs.items():
        setattr(item, keyword, value)
    return item


def _code(value: str, meaning: str) -> Dataset:
    return _item(CodeValue=value, CodingSchemeDesignator="SCT", CodeMeaning=meaning)


def ct(
    study: str | None = None,
    series: str | None = None,
    frame_of_reference: str | None = None,
    references: tuple[str, ...] = (),
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Dataset:
    """A CT slice as a scanner sends it: who, when, where, which device, requests, references, private
    data, an overlay, a curve, an icon."""
    ds = make_dataset(
        StudyInstanceUID=study or generate_uid(),
        SeriesInstanceUID=series or generate_uid(),
        FrameOfReferenceUID=frame_of_reference or generate_uid(),
        PatientName="Smith^John^Quincy",
        PatientID="MRN-0042-SMITH",
        PatientBirthDate="19610704",
        PatientSex="M",
        PatientAge="062Y",
        PatientAddress="12 Elm Street, Springfield",
        OtherPatientIDsSequence=Sequence([_item(PatientID="NHS-999", IssuerOfPatientID="NHS")]),
        StudyDate="20230405",
        StudyTime="081530",
        SeriesDate="20230405",
        SeriesTime="081700",
        AcquisitionDate="20230405",
        AcquisitionTime="081712",
        AcquisitionDateTime="20230405081712",
        ContentDate="20230405",
        ContentTime="081712",
        StudyDescription="CT CHEST Smith follow-up",
        SeriesDescription="Axial 1mm",
        ImageComments="call Dr Who on 555-0100",
        AccessionNumber="ACC-77-SMITH",
        StudyID="S-4711",
        ReferringPhysicianName="Who^Doctor",
        OperatorsName="Tech^Tina",
        InstitutionName="Springfield General Hospital",
        InstitutionAddress="1 Hospital Road, Springfield",
        StationName="CT-SPRINGFIELD-2",
        DeviceSerialNumber="SN-0031337",
        Manufacturer="ACME",
        ProtocolName="Chest Smith",
        SpecificCharacterSet="ISO_IR 100",
        BurnedInAnnotation="NO",
    )
    ds.ReferencedStudySequence = Sequence(
        [_item(ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.1", ReferencedSOPInstanceUID=ds.StudyInstanceUID)]
    )
    ds.ReferencedImageSequence = Sequence(
        [_item(ReferencedSOPClassUID=CTImageStorage, ReferencedSOPInstanceUID=uid) for uid in references]
    )
    ds.RequestAttributesSequence = Sequence(
        [
            _item(
                RequestedProcedureID="RP-1",
                ScheduledProcedureStepID="SPS-1",
                AccessionNumber="ACC-77-SMITH",
                RequestedProcedureDescription="Chest for Smith",
            )
        ]
    )
    # A sequence the table does not list: kept, and the table applies inside it, private elements included.
    region = _code("51185008", "Thorax")
    region.add_new(0x00290010, "LO", "ACME 1.0")
    region.add_new(0x00291001, "LO", "Smith^John")
    ds.AnatomicRegionSequence = Sequence([region])
    ds.add_new(0x00091010 - 0x1000, "LO", "ACME CT")  # private creator (0009,0010)
    ds.add_new(0x00091010, "LO", "MRN-0042-SMITH")
    ds.add_new(0x60000010, "US", 4)  # an overlay plane: rows, columns, type, origin, bits, data, comments
    ds.add_new(0x60000011, "US", 4)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", bytes(2))
    ds.add_new(0x60004000, "LT", "Smith's lesion")
    ds.add_new(0x50003000, "OW", bytes(8))  # retired curve data
    ds.IconImageSequence = Sequence([_item(Rows=1, Columns=1, PixelData=b"\x00\x00")])
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta.SourceApplicationEntityTitle = "SPRINGFIELD_CT"
    return ds


def options(retain_uids: bool = False, key: bytes = KEY, **kwargs: Any) -> DeidentifyOptions:
    return DeidentifyOptions(Pseudonyms(key), retain_uids=retain_uids, **kwargs)


def deidentified(ds: Dataset, opts: DeidentifyOptions | None = None) -> Dataset:
    out = copy.deepcopy(ds)
    deidentify_dataset(out, opts or options())
    return out


def test_the_table_is_the_standards() -> None:
    # Spot checks against PS3.15 Table E.1-1, and every code it uses has a meaning here.
    assert BASIC_PROFILE[0x00100010] == "Z"  # Patient's Name
    assert BASIC_PROFILE[0x00100020] == "Z/D"  # Patient ID
    assert BASIC_PROFILE[0x00080018] == "U"  # SOP Instance UID
    assert BASIC_PROFILE[0x00080080] == "X/Z/D"  # Institution Name
    assert BASIC_PROFILE[0x00081030] == "X"  # Study Description
    assert BASIC_PROFILE[0x00081140] == "X/Z/U*"  # Referenced Image Sequence
    assert BASIC_PROFILE[0x0040A730] == "D"  # Content Sequence
    assert len(BASIC_PROFILE) > 600
    assert set(BASIC_PROFILE.values()).issubset(RESOLVED)
    assert RETAIN_UIDS_OPTION.issubset(BASIC_PROFILE)
    assert 0x0020000D in RETAIN_UIDS_OPTION and 0x00100020 not in RETAIN_UIDS_OPTION


def test_each_kind_of_action() -> None:
    original = ct(references=(generate_uid(),))
    ds = deidentified(original)

    for keyword in (  # X
        "StudyDescription",
        "SeriesDescription",
        "ImageComments",
        "PatientAge",
        "PatientAddress",
        "InstitutionAddress",
        "OtherPatientIDsSequence",
        "RequestAttributesSequence",  # a sequence marked X goes with everything in it
        "IconImageSequence",
    ):
        assert keyword not in ds, keyword
    for keyword in (  # Z, and X/Z as Z
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "StudyID",
        "PatientBirthDate",
        "PatientSex",
        "ReferringPhysicianName",
        "AcquisitionDate",
        "AcquisitionTime",
    ):
        assert keyword in ds and ds[keyword].is_empty, keyword
    assert ds.ReferencedStudySequence == Sequence()  # X/Z on a sequence: no items
    # D, and X/D, Z/D, X/Z/D as D: a dummy of the VR
    assert ds.InstitutionName == "ANONYMOUS"
    assert ds.StationName == "ANONYMOUS"
    assert ds.DeviceSerialNumber == "ANONYMOUS"
    assert ds.ProtocolName == "ANONYMOUS"
    assert ds.OperatorsName == "ANONYMOUS"
    assert (ds.SeriesDate, ds.SeriesTime) == ("19000101", "000000")
    assert (ds.ContentDate, ds.ContentTime) == ("19000101", "000000")
    assert ds.AcquisitionDateTime == "19000101000000"
    # U
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        new = ds[keyword].value
        assert new != original[keyword].value and new.startswith("2.25.") and is_valid_uid(new), keyword
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    # X/Z/U*: the references stay, pointing to the new UIDs
    (reference,) = ds.ReferencedImageSequence
    assert reference.ReferencedSOPClassUID == CTImageStorage
    assert reference.ReferencedSOPInstanceUID == Pseudonyms(KEY).uid(
        original.ReferencedImageSequence[0].ReferencedSOPInstanceUID
    )
    # Kept: what the table does not list, and kept sequences item by item
    assert (ds.Manufacturer, ds.Modality, ds.BurnedInAnnotation) == ("ACME", "CT", "NO")
    assert ds.SOPClassUID == CTImageStorage and ds.PixelData == original.PixelData
    (region,) = ds.AnatomicRegionSequence
    assert region.CodeValue == "51185008" and len(region) == 3  # its private block is gone


def test_private_curve_overlay_and_file_meta_are_cleaned() -> None:
    original = ct()
    original.file_meta.MediaStorageSOPInstanceUID = generate_uid()  # a writer that got it wrong
    ds = deidentified(original)
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert not any(element.tag.is_private for element in ds.iterall())
    assert not any(element.tag.group in (0x5000, 0x6000) for element in ds)
    assert "SourceApplicationEntityTitle" not in ds.file_meta
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def test_patient_pseudonym_and_the_method_attributes() -> None:
    original = ct()
    ds = deidentified(original)
    pseudonym = Pseudonyms(KEY).patient("MRN-0042-SMITH")
    assert pseudonym.startswith("ANON-") and len(pseudonym) == 17
    assert ds.PatientID == pseudonym and ds.PatientName == pseudonym
    assert deidentified(ct()).PatientID == pseudonym  # same patient, same key: same pseudonym
    given = deidentified(original, options(patient_pseudonym="SUBJECT-07"))
    assert given.PatientID == "SUBJECT-07" and given.PatientName == "SUBJECT-07"

    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethod == "Basic Application Level Confidentiality Profile"
    assert [(c.CodeValue, c.CodingSchemeDesignator) for c in ds.DeidentificationMethodCodeSequence] == [
        ("113100", "DCM")
    ]


def test_no_patient_id_means_the_tables_own_actions() -> None:
    without = ct()
    del without.PatientID
    cleaned = deidentified(without)
    assert "PatientID" not in cleaned and cleaned["PatientName"].is_empty  # Z, as the table says


def test_a_sequence_marked_d_keeps_one_empty_item() -> None:
    ds = ct()
    ds.ContentSequence = Sequence([_item(ValueType="TEXT", TextValue="Smith has a nodule")])
    ds.VerifyingObserverSequence = Sequence([_item(VerifyingObserverName="Who^Doctor")])
    cleaned = deidentified(ds)
    assert cleaned.ContentSequence == Sequence([Dataset()])
    assert cleaned.VerifyingObserverSequence == Sequence([Dataset()])


def test_the_table_applies_at_every_depth() -> None:
    ds = ct()
    inner = _item(
        PatientName="Smith^John",
        StudyDate="20230405",
        ReferencedSOPInstanceUID="1.2.3.4",
        Manufacturer="ACME",
    )
    inner.add_new(0x00111001, "LO", "private")
    ds.ReferencedSeriesSequence = Sequence([_item(ReferencedImageSequence=Sequence([inner]))])
    (series,) = deidentified(ds).ReferencedSeriesSequence
    (cleaned,) = series.ReferencedImageSequence
    assert cleaned.PatientName == Pseudonyms(KEY).patient("MRN-0042-SMITH")  # the object's one pseudonym
    assert cleaned["StudyDate"].is_empty
    assert cleaned.ReferencedSOPInstanceUID == Pseudonyms(KEY).uid("1.2.3.4")
    assert cleaned.Manufacturer == "ACME"
    assert not any(element.tag.is_private for element in cleaned)


def test_uids_agree_across_the_instances_of_a_series() -> None:
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    first = ct(study, series, frame)
    second = ct(study, series, frame, references=(first.SOPInstanceUID,))
    opts = options()
    a, b = deidentified(first, opts), deidentified(second, opts)
    assert a.StudyInstanceUID == b.StudyInstanceUID != study
    assert a.SeriesInstanceUID == b.SeriesInstanceUID != series
    assert a.FrameOfReferenceUID == b.FrameOfReferenceUID != frame
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert b.ReferencedImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID

    other_key = deidentified(first, options(key=b"another key of at least 16 bytes"))
    assert other_key.StudyInstanceUID not in (a.StudyInstanceUID, study)
    assert len({a.StudyInstanceUID, a.SeriesInstanceUID, a.FrameOfReferenceUID, a.SOPInstanceUID}) == 4


def test_replacement_uids_are_valid_2_25_uids() -> None:
    keys = Pseudonyms(KEY)
    for n in range(200):
        uid = keys.uid(f"1.2.3.{n}")
        assert is_valid_uid(uid) and uid.startswith("2.25.") and len(uid) <= 44
        assert keys.uid(f"1.2.3.{n}") == uid
        value = int(uid[5:])
        assert value >> 76 & 0xF == 8 and value >> 62 & 0x3 == 2  # an RFC 9562 version 8 UUID
    assert Pseudonyms.random().uid("1.2.3") != Pseudonyms.random().uid("1.2.3")
    with pytest.raises(ValueError, match="16 bytes"):
        Pseudonyms(b"short")


def test_retain_uids_option() -> None:
    original = ct(references=(generate_uid(),))
    ds = deidentified(original, options(retain_uids=True))
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert ds[keyword].value == original[keyword].value, keyword
    assert ds.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    assert ds.ReferencedImageSequence == original.ReferencedImageSequence
    assert ds.ReferencedStudySequence == original.ReferencedStudySequence  # X/Z, but K in the option
    # everything else as without the option
    assert "StudyDescription" not in ds and ds["PatientBirthDate"].is_empty
    assert ds.InstitutionName == "ANONYMOUS"
    assert ds.DeidentificationMethod == [
        "Basic Application Level Confidentiality Profile",
        "Retain UIDs Option",
    ]
    codes = [(c.CodeValue, c.CodeMeaning) for c in ds.DeidentificationMethodCodeSequence]
    assert codes == [
        ("113100", "Basic Application Level Confidentiality Profile"),
        ("113110", "Retain UIDs Option"),
    ]


@pytest.mark.parametrize("retain_uids", [False, True])
def test_dicom_json_gives_what_the_data_set_path_gives(retain_uids: bool) -> None:
    original = ct(references=(generate_uid(), generate_uid()))
    original.ContentSequence = Sequence([_item(ValueType="TEXT", TextValue="x")])
    original.EncapsulatedDocument = b"%PDF-1.4 Smith"  # D on an OB
    doc = original.to_json_dict()
    before = copy.deepcopy(doc)
    opts = options(retain_uids=retain_uids)

    from_json = deidentify_json(doc, opts)

    assert from_json == deidentified(original, opts).to_json_dict()
    assert doc == before  # the document given is not changed
    assert from_json["00100020"] == {"vr": "LO", "Value": [Pseudonyms(KEY).patient("MRN-0042-SMITH")]}
    assert from_json["00420011"] == {"vr": "OB", "InlineBinary": "AAA="}


def test_dicom_json_search_results_and_bulk_data() -> None:
    study = generate_uid()
    shared = {"vr": "UI", "Value": [study]}
    result = {
        "00080020": {"vr": "DA", "Value": ["20230405"]},
        "00080050": {"vr": "SH", "Value": ["ACC-77"]},
        "00081190": {"vr": "UR", "Value": [f"https://pacs.example/dicom-web/studies/{study}"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Smith^John"}]},
        "00100020": {"vr": "LO", "Value": ["MRN-1"]},
        "0020000D": shared,
        "00091001": {"vr": "LO", "Value": ["private"]},
        "7FE00010": {"vr": "OW", "BulkDataURI": f"https://pacs.example/studies/{study}/bulk/7FE00010"},
    }
    shared_items = {"vr": "SQ", "Value": [{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "A^B"}]}}]}
    result["00081115"] = shared_items  # Referenced Series Sequence: kept, cleaned inside

    retained = deidentify_json(result, options(retain_uids=True))
    assert retained["0020000D"] == shared
    assert retained["00081190"] == result["00081190"]  # still a working URL
    assert retained["7FE00010"] == result["7FE00010"]
    assert retained["00080020"] == {"vr": "DA"} and retained["00080050"] == {"vr": "SH"}
    pseudonym = Pseudonyms(KEY).patient("MRN-1")
    assert retained["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": pseudonym}]}
    assert retained["00081115"]["Value"][0]["00100010"]["Value"] == [{"Alphabetic": pseudonym}]
    assert shared_items["Value"][0]["00100010"]["Value"] == [{"Alphabetic": "A^B"}]  # not changed
    assert "00091001" not in retained and retained["00120062"] == {"vr": "CS", "Value": ["YES"]}
    assert [item["00080100"]["Value"][0] for item in retained["00120064"]["Value"]] == list(DCM_CODES)

    replaced = deidentify_json(result, options())
    assert replaced["0020000D"]["Value"] == [Pseudonyms(KEY).uid(study)]
    assert "00081190" not in replaced  # a URL that names the original UIDs goes with them


@pytest.mark.parametrize("transfer_syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_the_result_is_a_valid_part10_object(transfer_syntax: str) -> None:
    original = ct(references=(generate_uid(),), transfer_syntax=transfer_syntax)
    ds = deidentified(original)
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)

    back = pydicom.dcmread(io.BytesIO(buf.getvalue()))
    assert back.file_meta.TransferSyntaxUID == transfer_syntax
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID == ds.SOPInstanceUID
    assert back.PixelData == original.PixelData
    assert back.to_json_dict() == ds.to_json_dict()
    for text in (b"Smith", b"MRN-0042", b"Springfield", b"19610704", original.StudyInstanceUID.encode()):
        assert text not in buf.getvalue(), text


def test_resolved_actions_cover_the_standard_codes() -> None:
    assert RESOLVED["X/Z"] is Action.EMPTY
    assert RESOLVED["X/Z/D"] is RESOLVED["Z/D"] is RESOLVED["X/D"] is Action.DUMMY
    assert RESOLVED["X/Z/U*"] is Action.KEEP
    assert RESOLVED["C"] is Action.DUMMY


SAMPLES = Path(pydicom.data.__file__).parent / "test_files"


@pytest.mark.parametrize(
    "name",
    ["CT_small.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "image_dfl.dcm"],
)
def test_real_objects_in_other_transfer_syntaxes(name: str) -> None:
    original = pydicom.dcmread(SAMPLES / name)
    ds = deidentified(original)
    assert deidentify_json(original.to_json_dict(), options()) == ds.to_json_dict()
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    back = pydicom.dcmread(io.BytesIO(buf.getvalue()))
    assert back.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert back.PixelData == original.PixelData
    assert back.SOPInstanceUID == Pseudonyms(KEY).uid(original.SOPInstanceUID)
    assert not any(element.tag.is_private for element in back.iterall())
    assert str(original.PatientName).encode() not in buf.getvalue()
