"""SQL side of the matching engine (PS3.4 C.2.2.2): one generator for SQLite and PostgreSQL.

``make_spec`` splits the keys of a query into what SQL matches on indexed columns and what the caller
matches in Python on the rows' DICOM JSON (attributes without a column, PN component groups);
``build_search`` turns a spec into one keyset-paginated SELECT of the level's rows, joined to the parent
levels it matches on (parents only returned are looked up by primary key). Wildcards become LIKE with SQL's
own ``%``, ``_`` and the escape character escaped; both engines run LIKE case-sensitively (SQLite:
``case_sensitive_like``) so prefix patterns use the indexes. Every form is chosen so that both planners
serve it from an index with or without statistics (``tests/contract/test_query_plans.py``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select

from lightbox.domain import values
from lightbox.domain.levels import UNIQUE_KEY, Level
from lightbox.domain.matching import (
    AnyOf,
    CombinedRange,
    Condition,
    Empty,
    Exact,
    Key,
    NameGroups,
    Number,
    Range,
    Universal,
    Wildcard,
)
from lightbox.index.models import instances, patients, series, studies

ESCAPE = "\\"
_TABLES = {Level.PATIENT: patients, Level.STUDY: studies, Level.SERIES: series, Level.IMAGE: instances}
_PARENT = {Level.STUDY: Level.PATIENT, Level.SERIES: Level.STUDY, Level.IMAGE: Level.SERIES}
_PARENT_FK = {
    Level.STUDY: studies.c.patient_fk,
    Level.SERIES: series.c.study_fk,
    Level.IMAGE: instances.c.series_fk,
}
UNIQUE_COLUMNS = {
    Level.PATIENT: patients.c.patient_id,
    Level.STUDY: studies.c.study_instance_uid,
    Level.SERIES: series.c.series_instance_uid,
    Level.IMAGE: instances.c.sop_instance_uid,
}


class _Kind(enum.Enum):
    TEXT = "text"  # NOT NULL text, "" when absent
    PERSON_NAME = "pn"  # the alphabetic group, with a *_fold column
    DATE = "date"  # YYYYMMDD or NULL
    TIME = "time"  # HHMMSS.ffffff or NULL
    INTEGER = "int"  # NULL when absent
    COUNTER = "counter"  # NOT NULL counters of the computed keys
    MODALITIES = "modalities"  # ModalitiesInStudy: EXISTS on series.modality
    SOP_CLASSES = "sop_classes"  # SOPClassesInStudy: EXISTS on instances.sop_class_uid


@dataclass(frozen=True, slots=True)
class _Column:
    level: Level
    name: str
    kind: _Kind
    fold: str | None = None  # the case-insensitive twin of a PN column
    # The exact column has no index but its fold twin has: a case-sensitive match implies a folded one.
    fold_prefilter: bool = False


_COLUMNS: dict[str, _Column] = {
    "PatientID": _Column(Level.PATIENT, "patient_id", _Kind.TEXT),
    "IssuerOfPatientID": _Column(Level.PATIENT, "issuer_of_patient_id", _Kind.TEXT),
    "PatientName": _Column(Level.PATIENT, "patient_name", _Kind.PERSON_NAME, "patient_name_fold"),
    "PatientBirthDate": _Column(Level.PATIENT, "patient_birth_date", _Kind.DATE),
    "PatientSex": _Column(Level.PATIENT, "patient_sex", _Kind.TEXT),
    "NumberOfPatientRelatedStudies": _Column(Level.PATIENT, "num_studies", _Kind.COUNTER),
    "NumberOfPatientRelatedSeries": _Column(Level.PATIENT, "num_series", _Kind.COUNTER),
    "NumberOfPatientRelatedInstances": _Column(Level.PATIENT, "num_instances", _Kind.COUNTER),
    "StudyInstanceUID": _Column(Level.STUDY, "study_instance_uid", _Kind.TEXT),
    "StudyDate": _Column(Level.STUDY, "study_date", _Kind.DATE),
    "StudyTime": _Column(Level.STUDY, "study_time", _Kind.TIME),
    "AccessionNumber": _Column(Level.STUDY, "accession_number", _Kind.TEXT),
    "StudyID": _Column(Level.STUDY, "study_id", _Kind.TEXT),
    "StudyDescription": _Column(Level.STUDY, "study_description", _Kind.TEXT),
    "ReferringPhysicianName": _Column(
        Level.STUDY,
        "referring_physician_name",
        _Kind.PERSON_NAME,
        "referring_physician_name_fold",
        fold_prefilter=True,
    ),
    "ModalitiesInStudy": _Column(Level.STUDY, "modalities_in_study", _Kind.MODALITIES),
    "SOPClassesInStudy": _Column(Level.STUDY, "id", _Kind.SOP_CLASSES),
    "NumberOfStudyRelatedSeries": _Column(Level.STUDY, "num_series", _Kind.COUNTER),
    "NumberOfStudyRelatedInstances": _Column(Level.STUDY, "num_instances", _Kind.COUNTER),
    "SeriesInstanceUID": _Column(Level.SERIES, "series_instance_uid", _Kind.TEXT),
    "Modality": _Column(Level.SERIES, "modality", _Kind.TEXT),
    "SeriesNumber": _Column(Level.SERIES, "series_number", _Kind.INTEGER),
    "SeriesDescription": _Column(Level.SERIES, "series_description", _Kind.TEXT),
    "SeriesDate": _Column(Level.SERIES, "series_date", _Kind.DATE),
    "SeriesTime": _Column(Level.SERIES, "series_time", _Kind.TIME),
    "BodyPartExamined": _Column(Level.SERIES, "body_part_examined", _Kind.TEXT),
    "PerformedProcedureStepStartDate": _Column(
        Level.SERIES, "performed_procedure_step_start_date", _Kind.DATE
    ),
    "NumberOfSeriesRelatedInstances": _Column(Level.SERIES, "num_instances", _Kind.COUNTER),
    "SOPInstanceUID": _Column(Level.IMAGE, "sop_instance_uid", _Kind.TEXT),
    "SOPClassUID": _Column(Level.IMAGE, "sop_class_uid", _Kind.TEXT),
    "InstanceNumber": _Column(Level.IMAGE, "instance_number", _Kind.INTEGER),
    "ContentDate": _Column(Level.IMAGE, "content_date", _Kind.DATE),
    "ContentTime": _Column(Level.IMAGE, "content_time", _Kind.TIME),
    "NumberOfFrames": _Column(Level.IMAGE, "number_of_frames", _Kind.INTEGER),
    "Rows": _Column(Level.IMAGE, "rows", _Kind.INTEGER),
    "Columns": _Column(Level.IMAGE, "columns", _Kind.INTEGER),
}


def _date_time(date: ColumnElement[Any], time: ColumnElement[Any]) -> ColumnElement[Any]:
    # The same form as values.combine_datetime: a missing time is the start of the day.
    return date + func.coalesce(time, "000000.000000")


# PS3.4 C.2.2.2.5 combined date-time matching, where both attributes have a column.
_COMBINED: dict[str, Callable[[], ColumnElement[Any]]] = {
    "StudyDate": lambda: studies.c.study_datetime,
    "SeriesDate": lambda: _date_time(series.c.series_date, series.c.series_time),
    "ContentDate": lambda: _date_time(instances.c.content_date, instances.c.content_time),
}


@dataclass(frozen=True, slots=True)
class Criterion:
    """A matching key and the level whose entity it is matched against."""

    level: Level
    key: Key


@dataclass(frozen=True, slots=True)
class SearchSpec:
    """What one search selects; build with ``make_spec``.

    Rows carry ``id`` (the level's row id, the keyset), the level's unique key under its keyword,
    ``attrs_<level>`` (DICOM JSON) for each level in ``attrs`` and each computed keyword in ``computed``.
    ``python`` lists the criteria SQL cannot decide fully; the caller evaluates them on the attrs.
    """

    level: Level
    criteria: tuple[Criterion, ...]
    python: tuple[Criterion, ...]
    attrs: frozenset[Level]
    computed: tuple[str, ...]
    fold_names: bool = False
    offset: int = 0
    joins: frozenset[Level] = field(default=frozenset())
    newest_first: bool = False  # by id descending: the entities stored last first


def attrs_label(level: Level) -> str:
    return f"attrs_{level.value.lower()}"


def make_spec(
    level: Level,
    criteria: Iterable[Criterion],
    *,
    return_levels: Iterable[Level] = (),
    computed: Sequence[str] = (),
    fold_names: bool = False,
    newest_first: bool = False,
) -> SearchSpec:
    """Split ``criteria`` (non-universal keys) into SQL and Python work for a query at ``level``.

    ``return_levels`` are the levels whose attributes the caller returns; ``computed`` the computed keys it
    returns (``COMPUTED_KEYWORDS``); ``newest_first`` reverses the order (the last stored first).
    """
    crits = tuple(criteria)
    python = tuple(c for c in crits if not _translate(c, fold_names)[1])
    attrs = frozenset(return_levels) | {c.level for c in python}
    # Parent levels are joined only to match on them; values of parents merely returned come from
    # correlated lookups by primary key, so the planner never hash-joins a whole parent table.
    joins = {c.level for c in crits if _translate(c, fold_names)[0] is not None}
    if "SOPClassesInStudy" in computed:
        joins.add(Level.STUDY)
    return SearchSpec(
        level, crits, python, attrs, tuple(computed), fold_names, 0, frozenset(joins), newest_first
    )


def with_offset(spec: SearchSpec, offset: int) -> SearchSpec:
    return replace(spec, offset=offset)


def build_search(spec: SearchSpec, after_id: int | None, limit: int) -> Select[Any]:
    """One page of the level's rows matching the SQL part of ``spec``, by id after ``after_id`` (before
    it, newest first)."""
    base = _TABLES[spec.level]
    top = min((lv.depth for lv in spec.joins), default=spec.level.depth)  # the highest joined level
    columns: list[Any] = [base.c.id.label("id"), UNIQUE_COLUMNS[spec.level].label(UNIQUE_KEY[spec.level])]
    for lv in sorted(spec.attrs, key=_depth):
        columns.append(_upper(_TABLES[lv].c.attrs, lv, top).label(attrs_label(lv)))
    for keyword in spec.computed:
        col = _COLUMNS[keyword]
        expr = _sop_classes_column() if col.kind is _Kind.SOP_CLASSES else _TABLES[col.level].c[col.name]
        columns.append(_upper(expr, col.level, top).label(keyword))
    stmt = select(*columns).select_from(_joined(spec.level, top))
    clauses = [c for c in (_translate(crit, spec.fold_names)[0] for crit in spec.criteria) if c is not None]
    if after_id is not None:
        clauses.append(base.c.id < after_id if spec.newest_first else base.c.id > after_id)
    if clauses:
        stmt = stmt.where(and_(*clauses))
    stmt = stmt.order_by(base.c.id.desc() if spec.newest_first else base.c.id).limit(limit)
    return stmt.offset(spec.offset) if spec.offset else stmt


def _depth(level: Level) -> int:
    return level.depth


def _joined(level: Level, top: int) -> Any:
    """The level's table joined to its parents up to the level of depth ``top``."""
    from_: Any = _TABLES[level]
    current = level
    while current.depth > top:
        parent = _PARENT[current]
        from_ = from_.join(_TABLES[parent], _TABLES[parent].c.id == _PARENT_FK[current])
        current = parent
    return from_


def _upper(expr: ColumnElement[Any], level: Level, top: int) -> ColumnElement[Any]:
    """``expr`` (of ``level``'s table) for each row: from the joined table, or looked up by primary key
    through the parent keys from the highest joined level."""
    if level.depth >= top:
        return expr
    current = next(lv for lv in _TABLES if lv.depth == top)
    outer = _TABLES[current]  # correlate explicitly: nested lookups refer to it two levels up
    parent_id: ColumnElement[Any] = _PARENT_FK[current]
    current = _PARENT[current]
    while current is not level:
        table = _TABLES[current]
        parent_id = (
            select(_PARENT_FK[current]).where(table.c.id == parent_id).correlate(outer).scalar_subquery()
        )
        current = _PARENT[current]
    return select(expr).where(_TABLES[level].c.id == parent_id).correlate(outer).scalar_subquery()


def _sop_classes_column() -> ColumnElement[Any]:
    """SOPClassesInStudy as "uid\\uid..." (duplicates across series are removed by the caller).

    Series by series, each through its own index lookup: a join here lets a planner without statistics
    hash the whole instances table for every study returned.
    """
    inst, ser = instances.alias("soc_instances"), series.alias("soc_series")
    in_series = (
        select(inst.c.sop_class_uid.label("uid"))
        .where(inst.c.series_fk == ser.c.id)
        .distinct()
        .correlate(ser)
        .subquery()
    )
    series_classes = select(func.aggregate_strings(in_series.c.uid, "\\")).scalar_subquery()
    per_series = (
        select(series_classes.label("uids"))
        .where(ser.c.study_fk == studies.c.id)
        .correlate(studies)
        .subquery()
    )
    return select(func.aggregate_strings(per_series.c.uids, "\\")).scalar_subquery()


# --- translation of one criterion ---------------------------------------------------------------------
Translation = tuple[ColumnElement[bool] | None, bool]  # (clause or None, whether SQL decides it fully)


def _translate(crit: Criterion, fold_names: bool) -> Translation:
    key = crit.key
    col = _COLUMNS.get(key.keyword)
    if col is None or col.level is not crit.level:
        return None, False
    cond = key.condition
    if isinstance(cond, CombinedRange):
        make = _COMBINED.get(key.keyword)
        return (_range(make(), cond.lower, cond.upper), True) if make else (None, False)
    table = _TABLES[col.level]
    column = table.c[col.name]
    if col.kind is _Kind.TEXT:
        return _text(cond, column, nullable=False)
    if col.kind is _Kind.PERSON_NAME:
        return _person_name(cond, column, table.c[col.fold or col.name], col.fold_prefilter, fold_names)
    if col.kind in (_Kind.DATE, _Kind.TIME):
        return _date_or_time(cond, column)
    if col.kind in (_Kind.INTEGER, _Kind.COUNTER):
        return _number(cond, column, nullable=col.kind is _Kind.INTEGER)
    if col.kind is _Kind.MODALITIES:
        return _modalities(cond)
    return _sop_classes(cond)


def like_pattern(pattern: str) -> str:
    """PS3.4 C.2.2.2.4 wildcards as a LIKE pattern; SQL's own ``%``, ``_`` and the escape stay literal."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        elif ch in ("%", "_", ESCAPE):
            out.append(ESCAPE + ch)
        else:
            out.append(ch)
    return "".join(out)


def _any(clauses: list[Translation]) -> Translation:
    if any(c is None for c, _ in clauses):
        return None, False  # one option SQL cannot narrow: SQL cannot narrow the key either
    parts = [c for c, _ in clauses if c is not None]
    return (parts[0] if len(parts) == 1 else or_(*parts)), all(done for _, done in clauses)


def _text(cond: Condition, column: ColumnElement[Any], *, nullable: bool) -> Translation:
    if isinstance(cond, Exact):
        return column == cond.value, True
    if isinstance(cond, Wildcard):
        return column.like(like_pattern(cond.pattern), escape=ESCAPE), True
    if isinstance(cond, Empty):
        return (or_(column.is_(None), column == "") if nullable else column == ""), True
    if isinstance(cond, AnyOf):
        exact = [o.value for o in cond.options if isinstance(o, Exact)]
        rest = [_text(o, column, nullable=nullable) for o in cond.options if not isinstance(o, Exact)]
        if exact:
            rest.append((column.in_(exact) if len(exact) > 1 else column == exact[0], True))
        return _any(rest)
    return None, False


def _person_name(
    cond: Condition,
    column: ColumnElement[Any],
    fold_column: ColumnElement[Any],
    prefilter: bool,
    fold_names: bool,
) -> Translation:
    if isinstance(cond, Exact | Wildcard):
        folded = _fold_condition(cond)
        if fold_names:
            return _text(folded, fold_column, nullable=False)
        clause, _ = _text(cond, column, nullable=False)
        if prefilter and clause is not None and (isinstance(cond, Exact) or "?" not in cond.pattern):
            # '?' may stand for a character that folds to two ("ß"), so only '*' patterns pre-filter.
            fold_clause, _ = _text(folded, fold_column, nullable=False)
            clause = and_(fold_clause, clause) if fold_clause is not None else clause
        return clause, True
    if isinstance(cond, NameGroups):
        # The columns hold the alphabetic group: narrow on it, the caller checks every group.
        first = cond.groups[0]
        if isinstance(first, Universal):
            return None, False
        return _person_name(first, column, fold_column, prefilter, fold_names)[0], False
    if isinstance(cond, AnyOf):
        return _any([_person_name(o, column, fold_column, prefilter, fold_names) for o in cond.options])
    if isinstance(cond, Empty):
        # An empty alphabetic group may still have ideographic or phonetic groups: the caller decides.
        return column == "", False
    return None, False


def _fold_condition(cond: Exact | Wildcard) -> Exact | Wildcard:
    if isinstance(cond, Exact):
        return Exact(values.fold_name(cond.value) or "")
    return Wildcard(values.fold_name(cond.pattern) or "")


def _range(column: ColumnElement[Any], lower: str | None, upper: str | None) -> ColumnElement[bool]:
    parts = []
    if lower is not None:
        parts.append(column >= lower)
    if upper is not None:
        parts.append(column <= upper)
    return and_(*parts) if parts else column.is_not(None)


def _date_or_time(cond: Condition, column: ColumnElement[Any]) -> Translation:
    if isinstance(cond, Exact):
        return column == cond.value, True
    if isinstance(cond, Range):
        return _range(column, cond.lower, cond.upper), True
    if isinstance(cond, Empty):
        return column.is_(None), True
    if isinstance(cond, AnyOf):
        return _any([_date_or_time(o, column) for o in cond.options])
    return None, False


def _number(cond: Condition, column: ColumnElement[Any], *, nullable: bool) -> Translation:
    if isinstance(cond, Number):
        return (column == int(cond.value) if cond.value.is_integer() else false()), True
    if isinstance(cond, Empty):
        return (column.is_(None) if nullable else false()), True
    if isinstance(cond, AnyOf):
        return _any([_number(o, column, nullable=nullable) for o in cond.options])
    return None, False


def _modalities(cond: Condition) -> Translation:
    if isinstance(cond, Empty):
        return studies.c.modalities_in_study == "", True
    # Any series of the study with a matching modality; served by ix_series_modality_study_fk.
    ser = series.alias("mis_series")
    clause, done = _text(cond, ser.c.modality, nullable=False)
    if clause is None:
        return None, False
    return exists().where(ser.c.study_fk == studies.c.id, clause), done


def _sop_classes(cond: Condition) -> Translation:
    if isinstance(cond, Empty):
        return false(), True  # a stored study always has an instance, hence a SOP Class
    inst, ser = instances.alias("scis_instances"), series.alias("scis_series")
    clause, done = _text(cond, inst.c.sop_class_uid, nullable=False)
    if clause is None:
        return None, False
    # Nested so that every engine walks the study's series (ix_series_study_fk) and probes each one's
    # instances by (sop_class_uid, series_fk), whatever its statistics say.
    in_series = exists().where(inst.c.series_fk == ser.c.id, clause).correlate(ser)
    return exists().where(ser.c.study_fk == studies.c.id, in_series), done
