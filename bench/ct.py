"""CT-like dataset: a few chest-abdomen studies of 512x512 slices with realistic headers and noisy phantoms.

Each slice is a structured phantom (body with fat and muscle layers, spine, aorta, lungs, heart, liver,
kidneys, ribs, pelvis; organs are ellipsoids, so their cross-sections grow and shrink along z) plus Gaussian
noise, stored as CT Image Storage, explicit VR little endian, 16 bits allocated, 12 stored, rescaled to HU
with intercept -1024. Everything derives from fixed seeds and names, so every run writes the same bytes.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage

from bench.dataset import make_uid, write_part10

GENERATOR_VERSION = 1
SEED = 20240611
SIZE = 512
FOV_MM = 360.0
SPACING = FOV_MM / SIZE
COVERAGE_MM = 312.5  # pelvis to upper chest; fewer slices (--quick) are thicker, not shorter
NOISE_HU = 12.0
STUDIES = 4


@dataclass(frozen=True)
class _Organ:
    t_center: float  # where along the scan (0 = caudal end, 1 = cranial end) the ellipsoid is widest
    t_half: float  # half its extent along z, in the same unit
    cx: float  # centre, mm right of the isocentre (image left is the patient's right)
    cy: float  # centre, mm posterior of the isocentre
    a: float  # half-axes in mm at the widest cross-section
    b: float
    hu: float


# Painted in this order: later organs cover earlier ones.
_ORGANS = (
    _Organ(0.55, 0.30, -70, 5, 80, 72, 60),  # liver
    _Organ(0.50, 0.12, 75, -5, 45, 40, 45),  # spleen
    _Organ(0.30, 0.14, -70, 50, 28, 38, 150),  # right kidney (cortical phase)
    _Organ(0.32, 0.14, 70, 50, 28, 38, 150),  # left kidney
    _Organ(0.28, 0.25, 20, -20, 60, 40, -40),  # bowel with fat
    _Organ(0.80, 0.30, -80, 5, 62, 85, -850),  # right lung
    _Organ(0.80, 0.30, 80, 5, 58, 85, -850),  # left lung
    _Organ(0.76, 0.13, 15, -25, 58, 48, 45),  # heart
    _Organ(0.05, 0.12, -85, 35, 45, 40, 650),  # right iliac bone
    _Organ(0.05, 0.12, 85, 35, 45, 40, 650),  # left iliac bone
)
_GAS = ((-25, -45, 9), (35, -30, 7), (5, -10, 6), (-40, -15, 5))  # bowel gas bubbles (x, y, r)


@dataclass(frozen=True)
class _Study:
    index: int
    patient_name: str
    patient_id: str
    birth_date: str
    sex: str
    age: str
    weight: str
    study_date: str
    study_time: str
    accession: str
    scale: float  # body size relative to the reference phantom


_PEOPLE = (
    ("HARTMANN^ELISABETH^M", "F", "19560304", "068Y", "71"),
    ("OKONKWO^DANIEL", "M", "19710822", "052Y", "88"),
    ("LINDQVIST^ANNA^K", "F", "19890117", "035Y", "62"),
    ("MORENO^JAVIER^A", "M", "19480930", "075Y", "79"),
)


def _study(i: int) -> _Study:
    name, sex, birth, age, weight = _PEOPLE[i % len(_PEOPLE)]
    return _Study(
        index=i,
        patient_name=name,
        patient_id=f"CT{SEED % 10000:04d}{i:04d}",
        birth_date=birth,
        sex=sex,
        age=age,
        weight=weight,
        study_date=f"202403{11 + i:02d}",
        study_time=f"{8 + 2 * i:02d}{17 + i:02d}43.{125000 + i * 1111:06d}",
        accession=f"RCT24{3110 + i:06d}",
        scale=(0.93, 1.08, 0.97, 1.02)[i % 4],
    )


def _studies() -> list[_Study]:
    return [_study(i) for i in range(STUDIES)]


def _paint_ellipse(img: np.ndarray, cx: float, cy: float, a: float, b: float, value: float) -> None:
    """Fill an ellipse given in mm; only its bounding box is computed, which keeps a slice to a few ms."""
    if a <= 0 or b <= 0:
        return
    px, py = SIZE / 2 + cx / SPACING, SIZE / 2 + cy / SPACING
    ra, rb = a / SPACING, b / SPACING
    x0, x1 = max(int(px - ra), 0), min(int(px + ra) + 2, SIZE)
    y0, y1 = max(int(py - rb), 0), min(int(py + rb) + 2, SIZE)
    if x0 >= x1 or y0 >= y1:
        return
    xs = (np.arange(x0, x1, dtype=np.float32) + 0.5 - px) / ra
    ys = (np.arange(y0, y1, dtype=np.float32) + 0.5 - py) / rb
    inside = xs[None, :] ** 2 + ys[:, None] ** 2 <= 1.0
    img[y0:y1, x0:x1][inside] = value


def _envelope(t: float, organ: _Organ) -> float:
    """Cross-section scale of an ellipsoid at ``t``: 1 at its centre, 0 beyond its ends."""
    u = (t - organ.t_center) / organ.t_half
    return math.sqrt(1.0 - u * u) if abs(u) < 1.0 else 0.0


def phantom(t: float, scale: float) -> np.ndarray:
    """Noise-free slice in HU at relative position ``t`` (0 caudal, 1 cranial)."""
    img = np.full((SIZE, SIZE), -1000.0, dtype=np.float32)
    _paint_ellipse(img, 0, 150, 175, 12, 250)  # table top
    body_a = scale * (158 + 12 * math.sin(math.pi * t))
    body_b = scale * (112 + 6 * math.cos(2 * math.pi * t))
    _paint_ellipse(img, 0, 10, body_a, body_b, -100)  # subcutaneous fat
    _paint_ellipse(img, 0, 10, body_a - 14, body_b - 12, 45)  # muscle and soft tissue
    _paint_ellipse(img, 0, 12, body_a - 30, body_b - 26, 25)  # visceral compartment
    for organ in _ORGANS:
        k = _envelope(t, organ)
        if k > 0:
            _paint_ellipse(img, scale * organ.cx, organ.cy, scale * organ.a * k, organ.b * k, organ.hu)
    if 0.1 < t < 0.45:
        for x, y, r in _GAS:
            _paint_ellipse(img, x, y + 20 * t, r, r * 0.8, -900)
    if t > 0.45:  # ribs on both sides, following the body outline
        for angle in (-150, -125, -100, -80, -55, -30, 30, 55, 80, 100, 125, 150):
            rad = math.radians(angle)
            rx = 0.9 * (body_a - 20) * math.sin(rad)
            ry = 10 - 0.9 * (body_b - 18) * math.cos(rad)
            _paint_ellipse(img, rx, ry, 5, 7, 750)
    _paint_ellipse(img, -12, 38, 11, 11, 190)  # aorta, contrast-enhanced
    _paint_ellipse(img, 22, 35, 10, 12, 120)  # inferior vena cava
    _paint_ellipse(img, 0, 70, 22, 18, 900)  # vertebral body, cortex
    _paint_ellipse(img, 0, 70, 18, 14, 300)  # cancellous bone
    _paint_ellipse(img, 0, 97, 8, 7, 15)  # spinal canal
    _paint_ellipse(img, 0, 110, 6, 10, 700)  # spinous process
    return img


def _reconstruction_circle() -> np.ndarray:
    c = np.arange(SIZE, dtype=np.float32) + 0.5 - SIZE / 2
    return (c[None, :] ** 2 + c[:, None] ** 2) <= (SIZE / 2) ** 2


def _header(study: _Study, slices: int, thickness: float, step: int) -> Dataset:
    """Everything that is the same for every slice of the study (every ``step``-th pixel of a row kept)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceCreationDate = study.study_date
    ds.SOPClassUID = CTImageStorage
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study.study_date
    ds.StudyTime = study.study_time
    ds.SeriesTime = study.study_time[:6]
    ds.AccessionNumber = study.accession
    ds.Modality = "CT"
    ds.Manufacturer = "Lightbox Imaging"
    ds.InstitutionName = "Saint Elsewhere General Hospital"
    ds.ReferringPhysicianName = "VARGAS^LUCIA^^DR"
    ds.StationName = "CT01"
    ds.StudyDescription = "CT CHEST ABDOMEN PELVIS W CONTRAST"
    ds.SeriesDescription = f"ABD PELVIS {thickness:.2f}MM SOFT TISSUE"
    ds.ManufacturerModelName = "Phantom 128"
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.IssuerOfPatientID = "SEGH"
    ds.PatientBirthDate = study.birth_date
    ds.PatientSex = study.sex
    ds.PatientAge = study.age
    ds.PatientWeight = study.weight
    ds.ContrastBolusAgent = "IOHEXOL 350"
    ds.BodyPartExamined = "CHEST"
    ds.ScanOptions = "HELICAL MODE"
    ds.SliceThickness = f"{thickness:g}"
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.DeviceSerialNumber = "LBX0042"
    ds.SoftwareVersions = "LB-CT 4.2.1"
    ds.ProtocolName = "CAP 3PHASE"
    ds.ReconstructionDiameter = f"{FOV_MM:g}"
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "152"
    ds.RotationDirection = "CW"
    ds.ExposureTime = "500"
    ds.XRayTubeCurrent = 240
    ds.Exposure = 120
    ds.FilterType = "BODY FILTER"
    ds.GeneratorPower = 29
    ds.FocalSpots = "1.2"
    ds.ConvolutionKernel = "B30f"
    ds.PatientPosition = "FFS"
    ds.CTDIvol = 9.8
    ds.StudyInstanceUID = make_uid("ct", SEED, study.index, "study")
    ds.SeriesInstanceUID = make_uid("ct", SEED, study.index, "series")
    ds.StudyID = f"{1000 + study.index}"
    ds.SeriesNumber = 3
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = make_uid("ct", SEED, study.index, "frame")
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = SIZE // step
    ds.Columns = SIZE // step
    ds.PixelSpacing = [f"{SPACING * step:g}", f"{SPACING * step:g}"]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = ["40", "-600"]
    ds.WindowWidth = ["400", "1500"]
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenterWidthExplanation = ["ABDOMEN", "LUNG"]
    ds.ImagesInAcquisition = slices
    return ds


def _write_study(root: Path, study: _Study, slices: int, step: int = 1) -> None:
    """``step`` > 1 keeps every ``step``-th pixel of each row and column: the same headers, small pixels."""
    thickness = COVERAGE_MM / slices
    ds = _header(study, slices, thickness, step)
    size = SIZE // step
    rng = np.random.default_rng([SEED, study.index])
    circle = _reconstruction_circle()[::step, ::step]
    directory = root / f"study{study.index}"
    directory.mkdir()
    z_top = -120.0
    corner = -FOV_MM / 2 + SPACING * step / 2  # centre of the first pixel (PS3.3 C.7.6.2.1.1)
    for i in range(slices):
        t = i / max(slices - 1, 1)
        z = z_top - (slices - 1 - i) * thickness
        hu = phantom(t, study.scale)[::step, ::step]
        hu += rng.standard_normal((size, size), dtype=np.float32) * NOISE_HU
        stored = np.clip(np.rint(hu + 1024.0), 0, 4095).astype(np.uint16)
        stored[~circle] = 0  # outside the reconstructed field: the lowest value, as scanners pad
        ds.SOPInstanceUID = make_uid("ct", SEED, study.index, "image", i)
        ds.InstanceNumber = i + 1
        ds.ContentTime = f"{study.study_time[:4]}{(i // 10) % 60:02d}.{(i % 10) * 100000:06d}"
        ds.ImagePositionPatient = [f"{corner:g}", f"{corner:g}", f"{z:g}"]
        ds.SliceLocation = f"{z:g}"
        ds.PixelData = stored.tobytes()
        write_part10(ds, directory / f"{i + 1:04d}.dcm")


def generate(root: Path, count: int, workers: int) -> None:
    """Write ``count`` slices split over ``STUDIES`` studies, one study per process at a time."""
    studies = _studies()
    per = [count // STUDIES + (1 if i < count % STUDIES else 0) for i in range(STUDIES)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(_write_study, root, s, n) for s, n in zip(studies, per, strict=True)]:
            future.result()


def params(count: int) -> dict[str, object]:
    return {"count": count, "seed": SEED, "studies": STUDIES, "size": SIZE}


# The retrieve benchmark's series: one more study after the ``STUDIES`` of ``generate``, so its UIDs are
# its own, with all its slices in one series.
SERIES_STUDY = STUDIES


def generate_series(root: Path, slices: int) -> None:
    """Write one study of ``slices`` slices in a single series (one process: its noise is one stream)."""
    _write_study(root, _study(SERIES_STUDY), slices)


def series_params(slices: int) -> dict[str, object]:
    return {"slices": slices, "seed": SEED, "study": SERIES_STUDY, "size": SIZE}


def series_uids() -> tuple[str, str]:
    """The Study and Series Instance UIDs of the series that ``generate_series`` wrote."""
    study = _study(SERIES_STUDY)
    return make_uid("ct", SEED, study.index, "study"), make_uid("ct", SEED, study.index, "series")


# The metadata benchmark's series: headers of the same CT generator, one more study again, with every
# eighth pixel only (64x64): a series' metadata is its headers, and its pixel data is a BulkDataURI anyway.
HEADER_SERIES_STUDY = STUDIES + 1
HEADER_SERIES_STEP = 8


def generate_header_series(root: Path, slices: int) -> None:
    """Write one study of ``slices`` small-pixel slices in a single series."""
    _write_study(root, _study(HEADER_SERIES_STUDY), slices, HEADER_SERIES_STEP)


def header_series_params(slices: int) -> dict[str, object]:
    size = SIZE // HEADER_SERIES_STEP
    return {"slices": slices, "seed": SEED, "study": HEADER_SERIES_STUDY, "size": size}


def header_series_uids() -> tuple[str, str]:
    """The Study and Series Instance UIDs of the series that ``generate_header_series`` wrote."""
    study = _study(HEADER_SERIES_STUDY)
    return make_uid("ct", SEED, study.index, "study"), make_uid("ct", SEED, study.index, "series")
