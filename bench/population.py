"""Index-scale dataset: many small instances from a realistic, deterministic population of patients.

Ten instances per study (two series of five), one patient per five studies on average, some patients with
many studies. Study dates spread over five years (fewer on weekends), a realistic modality mix, varied
names (a few with Latin-1 letters), accession numbers and referring physicians. The query benchmark draws
its values from the same ``Population`` and knows how many studies each query must return.

Only ``random.Random.random`` is used for draws: Python guarantees that sequence across versions.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalMammographyXRayImageStorageForPresentation,
    DigitalXRayImageStorageForPresentation,
    MRImageStorage,
    NuclearMedicineImageStorage,
    PositronEmissionTomographyImageStorage,
    UltrasoundImageStorage,
    XRayAngiographicImageStorage,
)

from bench.dataset import make_uid, write_part10
from bench.names import FAMILY_NAMES, FEMALE_GIVEN, MALE_GIVEN, REFERRING_PHYSICIANS, STUDY_KINDS

T = TypeVar("T")

GENERATOR_VERSION = 1
SEED = 1842
INSTANCES_PER_SERIES = 5
SERIES_PER_STUDY = 2
INSTANCES_PER_STUDY = INSTANCES_PER_SERIES * SERIES_PER_STUDY
STUDIES_PER_PATIENT = 5
FIRST_DAY = date(2020, 1, 1)
DAYS = (date(2024, 12, 31) - FIRST_DAY).days + 1
IMAGE_SIZE = 16
FILES_PER_DIRECTORY = 1000

SOP_CLASS = {
    "CT": CTImageStorage,
    "MR": MRImageStorage,
    "CR": ComputedRadiographyImageStorage,
    "DX": DigitalXRayImageStorageForPresentation,
    "US": UltrasoundImageStorage,
    "MG": DigitalMammographyXRayImageStorageForPresentation,
    "PT": PositronEmissionTomographyImageStorage,
    "NM": NuclearMedicineImageStorage,
    "XA": XRayAngiographicImageStorage,
}


@dataclass(frozen=True, slots=True)
class Patient:
    patient_id: str
    name: str
    birth_date: str
    sex: str


@dataclass(frozen=True, slots=True)
class Series:
    uid: str
    number: int
    modality: str
    description: str


@dataclass(frozen=True, slots=True)
class Study:
    index: int
    patient: Patient
    uid: str
    date: str
    time: str
    accession: str
    description: str
    body_part: str
    referring: str
    series: tuple[Series, ...]

    @property
    def modalities(self) -> frozenset[str]:
        return frozenset(s.modality for s in self.series)


@dataclass(frozen=True)
class Population:
    patients: tuple[Patient, ...]
    studies: tuple[Study, ...]

    @property
    def instances(self) -> int:
        return len(self.studies) * INSTANCES_PER_STUDY


class _Draw:
    """Deterministic draws built on ``random()`` alone."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def uniform(self) -> float:
        return self._rng.random()

    def below(self, n: int) -> int:
        return min(int(self._rng.random() * n), n - 1)

    def pick(self, items: Sequence[T]) -> T:
        return items[self.below(len(items))]

    def weighted(self, items: Sequence[T], cumulative: list[float]) -> T:
        return items[min(bisect(cumulative, self._rng.random() * cumulative[-1]), len(items) - 1)]


def _patients(n: int, draw: _Draw) -> list[Patient]:
    # Common family names are common: weights fall with the rank, as in real registries.
    family_cum = list(accumulate(1.0 / (rank + 8) for rank in range(len(FAMILY_NAMES))))
    out = []
    for i in range(n):
        r = draw.uniform()
        sex = "F" if r < 0.51 else "M" if r < 0.995 else "O"
        given_names = FEMALE_GIVEN if sex == "F" else MALE_GIVEN if sex == "M" else FEMALE_GIVEN + MALE_GIVEN
        family = draw.weighted(FAMILY_NAMES, family_cum)
        given = draw.pick(given_names)
        middle = draw.pick("ABCDEFGHJKLMNPRSTW") if draw.uniform() < 0.3 else ""
        name = f"{family}^{given}^{middle}" if middle else f"{family}^{given}"
        age_days = int(365.25 * (1 + 94 * (1 - (1 - draw.uniform()) ** 1.6)))  # more older patients
        birth = FIRST_DAY - timedelta(days=age_days)
        # A multiplier coprime with 9e7 spreads the IDs and keeps them unique.
        patient_id = str(10_000_000 + (i * 7_919_993 + 12_345) % 90_000_000)
        out.append(Patient(patient_id, name, birth.strftime("%Y%m%d"), sex))
    return out


def _study_day(draw: _Draw) -> date:
    while True:
        day = FIRST_DAY + timedelta(days=draw.below(DAYS))
        if day.weekday() < 5 or draw.uniform() < 0.3:  # weekends see about a third of a weekday's studies
            return day


@lru_cache(maxsize=2)
def build_population(instances: int) -> Population:
    """The population for ``instances`` instances (a multiple of ten)."""
    draw = _Draw(SEED)
    n_studies = instances // INSTANCES_PER_STUDY
    n_patients = max(n_studies // STUDIES_PER_PATIENT, 1)
    patients = _patients(n_patients, draw)
    modalities = list(STUDY_KINDS)
    modality_cum = list(accumulate(STUDY_KINDS[m][0] for m in modalities))
    studies = []
    for i in range(n_studies):
        # Every patient has a study; the rest go mostly to a minority of patients (follow-ups).
        patient = patients[i] if i < n_patients else patients[int(n_patients * draw.uniform() ** 1.3)]
        modality = draw.weighted(modalities, modality_cum)
        description, body_part, series_kinds = draw.pick(STUDY_KINDS[modality][1])
        day = _study_day(draw)
        seconds = 7 * 3600 + draw.below(13 * 3600)
        time = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
        series = tuple(
            Series(make_uid("idx", SEED, i, "series", k), k + 1, mod, desc)
            for k, (mod, desc) in enumerate(series_kinds)
        )
        studies.append(
            Study(
                index=i,
                patient=patient,
                uid=make_uid("idx", SEED, i, "study"),
                date=day.strftime("%Y%m%d"),
                time=time,
                accession=f"{day.year}{modality}{i:07d}",
                description=description,
                body_part=body_part,
                referring=draw.pick(REFERRING_PHYSICIANS),
                series=series,
            )
        )
    return Population(tuple(patients), tuple(studies))


def _template() -> Dataset:
    """The elements every small instance shares; the writer sets the rest per file."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ""
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = ""
    ds.AccessionNumber = ""
    ds.Modality = ""
    ds.Manufacturer = "Lightbox Imaging"
    ds.InstitutionName = "Saint Elsewhere General Hospital"
    ds.ReferringPhysicianName = ""
    ds.StationName = ""
    ds.StudyDescription = ""
    ds.SeriesDescription = ""
    ds.PatientName = ""
    ds.PatientID = ""
    ds.IssuerOfPatientID = "SEGH"
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.BodyPartExamined = ""
    ds.StudyInstanceUID = ds.SeriesInstanceUID = "1.2"
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = IMAGE_SIZE
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ramp = np.add.outer(np.arange(IMAGE_SIZE), np.arange(IMAGE_SIZE)) * 100
    ds.PixelData = ramp.astype(np.uint16).tobytes()
    return ds


def file_path(root: Path, file_index: int) -> Path:
    return root / f"{file_index // FILES_PER_DIRECTORY:04d}" / f"{file_index:07d}.dcm"


def _write_studies(root: Path, instances: int, first: int, last: int) -> None:
    population = build_population(instances)
    ds = _template()
    for study in population.studies[first:last]:
        p = study.patient
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = study.date
        ds.StudyTime = study.time
        ds.AccessionNumber = study.accession
        ds.ReferringPhysicianName = study.referring
        ds.StudyDescription = study.description
        ds.PatientName = p.name
        ds.PatientID = p.patient_id
        ds.PatientBirthDate = p.birth_date
        ds.PatientSex = p.sex
        ds.BodyPartExamined = study.body_part
        ds.StudyInstanceUID = study.uid
        ds.StudyID = str(study.index % 100_000)
        for series in study.series:
            ds.Modality = series.modality
            ds.SOPClassUID = SOP_CLASS[series.modality]
            ds.StationName = f"{series.modality}01"
            ds.SeriesDescription = series.description
            ds.SeriesInstanceUID = series.uid
            ds.SeriesNumber = series.number
            ds.SeriesTime = ds.ContentTime = study.time
            for k in range(INSTANCES_PER_SERIES):
                index = study.index * INSTANCES_PER_STUDY + (series.number - 1) * INSTANCES_PER_SERIES + k
                ds.SOPInstanceUID = make_uid("idx", SEED, study.index, series.number, k)
                ds.InstanceNumber = k + 1
                path = file_path(root, index)
                if index % FILES_PER_DIRECTORY == 0:
                    path.parent.mkdir(exist_ok=True)
                write_part10(ds, path)


def generate(root: Path, instances: int, workers: int) -> None:
    """Write the population's instances as Part 10 files, in study order, over ``workers`` processes."""
    n_studies = build_population(instances).instances // INSTANCES_PER_STUDY
    # Chunks start on directory boundaries so that each directory is made by the process that fills it.
    step = FILES_PER_DIRECTORY // INSTANCES_PER_STUDY
    bounds = [(first, min(first + step, n_studies)) for first in range(0, n_studies, step)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_write_studies, root, instances, a, b) for a, b in bounds]
        for future in futures:
            future.result()


def params(instances: int) -> dict[str, object]:
    return {"instances": instances, "seed": SEED, "image_size": IMAGE_SIZE}
