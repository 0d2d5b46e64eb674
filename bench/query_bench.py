"""STUDY-level query latency: a realistic mix of C-FIND/QIDO-RS searches through the query service.

Values come from the generated population, so every query matches something, and the population also says
how many studies each query must return: a run checks the counts as well as the time. A query's time runs
from the call to ``find`` until its last match has been iterated.
"""

from __future__ import annotations

import calendar
import contextlib
import gc
import random
import statistics
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pydicom.dataset import Dataset

from bench.population import Population, Study, build_population
from lightbox.app import Archive
from lightbox.domain.levels import Level, Model
from lightbox.domain.values import fold_name

SEED = 7
WARMUP_PER_KIND = 5  # untimed queries of each kind before the timed ones
_WRONG_KEPT = 3  # queries with a wrong count kept per kind, for the JSON
RETURN_KEYS = (
    "PatientName",
    "PatientID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyDescription",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedInstances",
    "StudyInstanceUID",
)
KINDS = (
    "PatientID",
    "PatientName prefix",
    "StudyDate day",
    "StudyDate week",
    "AccessionNumber",
    "StudyInstanceUID",
    "MR in month",
)


class QueryUnavailable(RuntimeError):
    """The query service is not part of this build yet."""


@dataclass(frozen=True)
class Query:
    kind: str
    match: dict[str, str]
    # Acceptable match counts: person-name matching may fold case and accents (PS3.4 C.2.2.2.1), or not.
    expected: frozenset[int]

    def identifier(self) -> Dataset:
        ds = Dataset()
        for keyword in RETURN_KEYS:
            setattr(ds, keyword, self.match.get(keyword, ""))
        return ds


class _Catalogue:
    """Lookups over the population that give each query's expected number of studies."""

    def __init__(self, population: Population) -> None:
        self.studies = population.studies
        self.by_patient = Counter(s.patient.patient_id for s in self.studies)
        ordered = sorted(self.studies, key=lambda s: s.date)
        self.dates = [s.date for s in ordered]
        self.mr_dates = [s.date for s in ordered if "MR" in s.modalities]

    def in_range(self, dates: list[str], first: str, last: str) -> int:
        return bisect_right(dates, last) - bisect_left(dates, first)

    def name_prefix(self, prefix: str) -> frozenset[int]:
        exact = sum(1 for s in self.studies if s.patient.name.startswith(prefix))
        folded_prefix = fold_name(prefix) or ""
        folded = sum(1 for s in self.studies if (fold_name(s.patient.name) or "").startswith(folded_prefix))
        return frozenset({exact, folded})


def _day_plus(day: str, days: int) -> str:
    d = date(int(day[:4]), int(day[4:6]), int(day[6:])) + timedelta(days=days)
    return d.strftime("%Y%m%d")


def _makers(cat: _Catalogue) -> dict[str, Callable[[Study], Query]]:
    def patient_id(s: Study) -> Query:
        pid = s.patient.patient_id
        return Query("PatientID", {"PatientID": pid}, frozenset({cat.by_patient[pid]}))

    def name_prefix(s: Study) -> Query:
        prefix = s.patient.name[:3]
        return Query("PatientName prefix", {"PatientName": prefix + "*"}, cat.name_prefix(prefix))

    def day(s: Study) -> Query:
        return Query(
            "StudyDate day", {"StudyDate": s.date}, frozenset({cat.in_range(cat.dates, s.date, s.date)})
        )

    def week(s: Study) -> Query:
        last = _day_plus(s.date, 6)
        n = cat.in_range(cat.dates, s.date, last)
        return Query("StudyDate week", {"StudyDate": f"{s.date}-{last}"}, frozenset({n}))

    def accession(s: Study) -> Query:
        return Query("AccessionNumber", {"AccessionNumber": s.accession}, frozenset({1}))

    def uid(s: Study) -> Query:
        return Query("StudyInstanceUID", {"StudyInstanceUID": s.uid}, frozenset({1}))

    def mr_month(s: Study) -> Query:
        first = s.date[:6] + "01"
        last = s.date[:6] + f"{calendar.monthrange(int(s.date[:4]), int(s.date[4:6]))[1]:02d}"
        n = cat.in_range(cat.mr_dates, first, last)
        return Query(
            "MR in month", {"ModalitiesInStudy": "MR", "StudyDate": f"{first}-{last}"}, frozenset({n})
        )

    makers = [patient_id, name_prefix, day, week, accession, uid, mr_month]
    return dict(zip(KINDS, makers, strict=True))


def timed_and_warmup_queries(count: int, per_kind: int) -> tuple[list[Query], list[Query]]:
    """The timed queries and the warm-up ones over the ``count``-instance population: the same values in
    every part that queries it (SQL, C-FIND, QIDO-RS)."""
    pop = build_population(count)
    return build_queries(pop, per_kind), build_queries(pop, WARMUP_PER_KIND, seed=1)


def build_queries(population: Population, per_kind: int, seed: int = SEED) -> list[Query]:
    """``per_kind`` queries of each kind, interleaved so that no kind runs with a cache warmed by itself."""
    rng = random.Random(seed)
    makers = _makers(_Catalogue(population))
    studies = population.studies
    out = []
    for _ in range(per_kind):
        for kind in KINDS:
            while True:
                study = studies[int(rng.random() * len(studies))]
                if kind != "PatientName prefix" or len(study.patient.name.split("^")[0]) >= 3:
                    break
            out.append(makers[kind](study))
    return out


def query_service(archive: Archive) -> tuple[Any, Any]:
    """The archive's query service and its options; built from the archive's parts while the composition
    root has none."""
    try:
        from lightbox.services.query import QueryOptions, QueryService
    except ImportError as exc:
        raise QueryUnavailable(f"lightbox.services.query cannot be imported: {exc}") from exc
    service = getattr(archive, "query", None) or QueryService(archive.index, archive.events)
    return service, QueryOptions(limit=None)


@dataclass
class KindResult:
    kind: str
    times_ms: list[float] = field(default_factory=list)
    matches: list[int] = field(default_factory=list)
    wrong_counts: int = 0
    wrong: list[dict[str, Any]] = field(default_factory=list)  # the first few, to look into
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        summary = summarize(self.times_ms, self.matches)
        return {
            "kind": self.kind,
            **summary,
            "wrong_counts": self.wrong_counts,
            "wrong": self.wrong,
            "error": self.error,
        }


def summarize(times_ms: list[float], matches: list[int]) -> dict[str, Any]:
    if not times_ms:
        return {"queries": 0}
    cuts = statistics.quantiles(times_ms, n=20, method="inclusive") if len(times_ms) > 1 else times_ms * 19
    return {
        "queries": len(times_ms),
        "median_ms": round(statistics.median(times_ms), 3),
        "p95_ms": round(cuts[18], 3),
        "max_ms": round(max(times_ms), 3),
        "mean_matches": round(statistics.fmean(matches), 1),
    }


def pooled(kinds: dict[str, KindResult]) -> dict[str, Any]:
    """Each kind's summary and, pooled over the kinds that did not fail, the overall one."""
    ok = [k for k in kinds.values() if k.error is None]
    overall = summarize([t for k in ok for t in k.times_ms], [m for k in ok for m in k.matches])
    return {"kinds": [k.as_dict() for k in kinds.values()], "overall": overall}


def run_queries(archive: Archive, queries: list[Query], warmup: list[Query]) -> dict[str, KindResult]:
    """Warm up, then time ``queries`` through the query service."""
    service, options = query_service(archive)

    def one(identifier: Dataset) -> int:
        return sum(1 for _ in service.find(Level.STUDY, identifier, model=Model.STUDY_ROOT, options=options))

    return time_queries(one, queries, warmup)


def time_queries(
    one: Callable[[Dataset], int], queries: list[Query], warmup: list[Query]
) -> dict[str, KindResult]:
    """Warm up, then time ``one(identifier)`` (which returns the number of matches) for each of ``queries``;
    a kind whose query raises is reported with the error and skipped."""
    results = {kind: KindResult(kind) for kind in KINDS}
    with _frozen_heap():
        for timed, query in [*((False, q) for q in warmup), *((True, q) for q in queries)]:
            result = results[query.kind]
            if result.error is not None:
                continue
            identifier = query.identifier()
            try:
                start = time.perf_counter()
                found = one(identifier)
                ms = (time.perf_counter() - start) * 1000.0
            except Exception as exc:  # report what the service said and keep measuring the other kinds
                result.error = f"{type(exc).__name__}: {exc} (query {query.match})"
                continue
            if not timed:
                continue
            result.times_ms.append(ms)
            result.matches.append(found)
            if found not in query.expected:
                result.wrong_counts += 1
                if len(result.wrong) < _WRONG_KEPT:
                    expected = sorted(query.expected)
                    result.wrong.append({"match": query.match, "expected": expected, "got": found})
    return results


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    """Keep the collector off the objects that exist before the queries (100,000 file paths, the population):
    a full collection over them pauses 20-70 ms, a cost of this harness and not of the query service. Objects
    the queries create are still collected, and those pauses count."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
