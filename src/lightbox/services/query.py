"""The one query path: C-FIND and QIDO-RS both end here, with one matching engine (PS3.4 C.2.2.2).

``find`` checks the identifier up front (InvalidQuery names the key at fault) and returns a lazy
``QueryResult``: pages of the level's rows come from the index by keyset pagination on the row id, keys
without a column are matched in Python on the stored DICOM JSON, and each match is returned as DICOM JSON
(PS3.18 F.2) holding the requested keys and the level's unique key. Nothing builds a pydicom Dataset per
row; the C-FIND adapter writes its identifiers straight from the JSON (``formats.json_to_dicom``).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from lightbox.domain.actor import Actor, as_actor
from lightbox.domain.errors import InvalidQuery
from lightbox.domain.levels import UNIQUE_KEY, Level, Model
from lightbox.domain.matching import (
    Items,
    Key,
    Universal,
    check_ranges,
    combine_date_time,
    element_text,
    matches,
    parse_key,
    project,
    tag_key,
)
from lightbox.index.attributes import COMPUTED_KEYWORDS, LEVEL_KEYWORDS, level_of_tag
from lightbox.index.base import Index
from lightbox.index.matching import Criterion, SearchSpec, attrs_label, make_spec, with_offset
from lightbox.services.events import EventBus, StudyQueried


@dataclass(frozen=True)
class QueryOptions:
    case_insensitive_names: bool = False  # PN matching ignores case and accents (the *_fold columns)
    combined_datetime: bool = False  # PS3.4 C.2.2.2.5: date and time keys form one date-time range
    offset: int = 0  # QIDO-RS offset
    limit: int | None = None  # QIDO-RS limit; None = no limit (max_results still applies)
    newest_first: bool = False  # the entities stored last first, instead of the order they were stored


_DEFAULT_OPTIONS = QueryOptions()

# For adapters that shape their own return keys (QIDO-RS defaults, includefield): which attributes each
# level holds, and which the archive computes; adapters know them through here, not from the index.
__all__ = [
    "COMPUTED_KEYWORDS",
    "LEVEL_KEYWORDS",
    "QueryOptions",
    "QueryResult",
    "QueryService",
    "level_of_tag",
]

# Never matched nor returned by the service: the adapters own them (PS3.4 C.2.2.2, C.4.1.1.3).
_IGNORED_TAGS = frozenset({0x00080005, 0x00080052})  # SpecificCharacterSet, QueryRetrieveLevel
# Keys the archive answers itself rather than from stored attributes (PS3.4 C.6.1.1.x, C.6.2.1.x).
_ARCHIVE_KEYS: dict[str, dict[str, Any]] = {
    "InstanceAvailability": {"vr": "CS", "Value": ["ONLINE"]},
    "RetrieveAETitle": {"vr": "AE"},  # the adapter knows its AE title
    "RetrieveURL": {"vr": "UR"},
    "StorageMediaFileSetID": {"vr": "SH"},
    "StorageMediaFileSetUID": {"vr": "UI"},
}
# The unique key of each level (PS3.4 C.6.1.1, C.6.2.1): its tag and VR.
_UNIQUE = {
    Level.PATIENT: ("00100020", "LO"),
    Level.STUDY: ("0020000D", "UI"),
    Level.SERIES: ("0020000E", "UI"),
    Level.IMAGE: ("00080018", "UI"),
}


class _Source(enum.Enum):
    ATTRS = "attrs"
    COMPUTED = "computed"
    ARCHIVE = "archive"
    UNIQUE = "unique"


@dataclass(frozen=True, slots=True)
class _ReturnKey:
    key: Key
    level: Level
    source: _Source
    projected: bool = False  # a sequence key whose items filter what is returned
    # The row's column holding the level's attributes: named once per query, not for every match.
    column: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column", attrs_label(self.level))


@dataclass(frozen=True, slots=True)
class _Plan:
    level: Level
    spec: SearchSpec
    returns: tuple[_ReturnKey, ...]
    fold_names: bool
    keys: dict[str, Any]


class QueryService:
    def __init__(
        self, index: Index, events: EventBus, *, max_results: int = 10_000, page_size: int = 200
    ) -> None:
        if max_results < 1 or page_size < 1:
            raise ValueError("max_results and page_size must be positive")
        self.index = index
        self.events = events
        self.max_results = max_results
        self.page_size = page_size

    def find(
        self,
        level: Level,
        identifier: Dataset,
        *,
        model: Model = Model.STUDY_ROOT,
        options: QueryOptions = _DEFAULT_OPTIONS,
        source: Actor | str = "",
    ) -> QueryResult:
        """Matches of ``identifier`` at ``level``; raises InvalidQuery before any search when it is wrong."""
        if level not in model.levels():
            raise InvalidQuery(f"the {model.value} information model has no {level.value} level")
        if options.offset < 0 or (options.limit is not None and options.limit < 0):
            raise InvalidQuery("offset and limit must not be negative")
        return QueryResult(self, _plan(level, identifier, options), options, as_actor(source))


def _plan(level: Level, identifier: Dataset, options: QueryOptions) -> _Plan:
    keys: list[Key] = []
    levels: dict[str, Level] = {}
    archive: list[Key] = []
    for elem in _elements(identifier):
        if elem.tag.element == 0 or elem.tag in _IGNORED_TAGS:
            continue
        if elem.tag.is_private and level is not Level.IMAGE:
            continue  # private keys could only be instance attributes; above that level they are unknown
        if elem.keyword in _ARCHIVE_KEYS:
            archive.append(
                Key(tag_key(elem.tag), elem.keyword, _ARCHIVE_KEYS[elem.keyword]["vr"], Universal())
            )
            continue
        key = parse_key(elem)
        key_level = COMPUTED_KEYWORDS.get(key.keyword) or level_of_tag(key.tag)
        if key_level.depth > level.depth:
            raise InvalidQuery(
                f"{key.keyword} is a {key_level.value} level attribute; "
                f"it cannot be a key of a {level.value} level query"
            )
        keys.append(key)
        levels[key.tag] = key_level
    if options.combined_datetime:
        keys = combine_date_time(keys)
    check_ranges(keys)

    unique_tag, unique_vr = _UNIQUE[level]
    returns = [_ReturnKey(k, level, _Source.ARCHIVE) for k in archive]
    for key in keys:
        if key.tag == unique_tag:
            continue
        source = _Source.COMPUTED if key.keyword in COMPUTED_KEYWORDS else _Source.ATTRS
        projected = isinstance(key.condition, Items) and not key.condition.whole
        returns.append(_ReturnKey(key, levels[key.tag], source, projected))
    unique = Key(unique_tag, UNIQUE_KEY[level], unique_vr, Universal())
    returns.append(_ReturnKey(unique, level, _Source.UNIQUE))
    returns.sort(key=lambda r: r.key.tag)

    spec = make_spec(
        level,
        [Criterion(levels[k.tag], k) for k in keys if not k.is_universal],
        return_levels={r.level for r in returns if r.source is _Source.ATTRS},
        computed=[r.key.keyword for r in returns if r.source is _Source.COMPUTED],
        fold_names=options.case_insensitive_names,
        newest_first=options.newest_first,
    )
    return _Plan(level, spec, tuple(returns), options.case_insensitive_names, _describe(identifier))


def _elements(identifier: Dataset) -> Iterator[DataElement]:
    """The identifier's elements by tag; a value pydicom cannot convert is the SCU's error, not ours."""
    for tag in sorted(identifier.keys()):
        try:
            elem = identifier[tag]
        except Exception as exc:  # any failure to convert a value from the wire
            raise InvalidQuery(f"{keyword_for_tag(tag) or tag_key(tag)}: unreadable value ({exc})") from None
        yield elem


def _describe(ds: Dataset) -> dict[str, Any]:
    """The identifier's keys and values, for audit (``StudyQueried``)."""
    out: dict[str, Any] = {}
    for elem in ds:
        if elem.tag.element == 0 or elem.tag in _IGNORED_TAGS:
            continue
        name = elem.keyword or tag_key(elem.tag)
        out[name] = [_describe(item) for item in elem.value] if elem.VR == "SQ" else element_text(elem)
    return out


class QueryResult(Iterator[dict[str, Any]]):
    """Iterates matches lazily (pages fetched with keyset pagination by level row id), each a DICOM JSON dict
    (PS3.18 F.2, e.g. {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]}}) holding exactly the
    requested keys (+ the level's unique key, always). cancel() stops it (C-CANCEL); truncated tells whether
    max_results cut it."""

    def __init__(self, service: QueryService, plan: _Plan, options: QueryOptions, source: Actor) -> None:
        self._index = service.index
        self._events = service.events
        self._page_size = service.page_size
        self._plan = plan
        self._source = source
        self._cap = service.max_results if options.limit is None else min(options.limit, service.max_results)
        # Only max_results truncates; a client's own limit is what it asked for.
        self._may_truncate = options.limit is None or options.limit > service.max_results
        self._skip = options.offset
        self._after: int | None = None
        self._buffer: deque[Mapping[str, Any]] = deque()
        self._exhausted = False  # the index has no more rows
        self._returned = 0
        self._truncated = False
        self._done = False

    def __iter__(self) -> QueryResult:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._done:
            raise StopIteration
        try:
            if self._returned >= self._cap:
                if self._may_truncate:
                    self._truncated = self._next_row() is not None
                raise StopIteration
            row = self._next_row()
            if row is None:
                raise StopIteration
        except BaseException:
            self._finish()
            raise
        self._returned += 1
        return self._render(row)

    def cancel(self) -> None:
        """Stop the query (C-CANCEL); the iteration ends and the query is reported."""
        self._finish()

    @property
    def truncated(self) -> bool:
        return self._truncated

    @property
    def search_spec(self) -> SearchSpec:
        """The index search behind this result (for diagnostics and query-plan tests)."""
        return self._plan.spec

    # --- paging ----------------------------------------------------------------------------------------
    def _next_row(self) -> Mapping[str, Any] | None:
        while not self._buffer:
            if self._exhausted:
                return None
            self._fetch()
        return self._buffer.popleft()

    def _fetch(self) -> None:
        spec = self._plan.spec
        limit = self._page_size
        if not spec.python:
            # SQL decides every row: skip the offset there, and fetch no more than needed (+1 to tell
            # whether max_results cut the result).
            if self._skip:
                spec, self._skip = with_offset(spec, self._skip), 0
            limit = max(1, min(limit, self._cap - self._returned + 1))
        rows = self._index.search(spec, self._after, limit)
        if len(rows) < limit:
            self._exhausted = True
        if not rows:
            return
        self._after = rows[-1]["id"]
        python, fold = spec.python, self._plan.fold_names
        for row in rows:
            if python and not all(
                matches(c.key, row[attrs_label(c.level)] or {}, fold_names=fold) for c in python
            ):
                continue
            if self._skip:
                self._skip -= 1
                continue
            self._buffer.append(row)

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        self._buffer.clear()
        plan = self._plan
        self._events.publish(StudyQueried(self._source, plan.level.value, plan.keys, self._returned))

    # --- results ---------------------------------------------------------------------------------------
    def _render(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        fold = self._plan.fold_names
        for ret in self._plan.returns:
            key = ret.key
            if ret.source is _Source.ATTRS:
                attrs = row[ret.column]
                element = attrs.get(key.tag) if attrs else None
                if ret.projected:
                    out[key.tag] = project(key, element, fold_names=fold)
                else:
                    out[key.tag] = element or {"vr": key.vr}
            elif ret.source is _Source.UNIQUE:
                value = row[key.keyword]
                out[key.tag] = {"vr": key.vr, "Value": [value]} if value else {"vr": key.vr}
            elif ret.source is _Source.COMPUTED:
                out[key.tag] = _computed(key.keyword, row[key.keyword])
            else:
                answer = _ARCHIVE_KEYS[key.keyword]
                out[key.tag] = {k: list(v) if isinstance(v, list) else v for k, v in answer.items()}
        return out


def _computed(keyword: str, value: Any) -> dict[str, Any]:
    if keyword == "ModalitiesInStudy":
        modalities = [m for m in (value or "").split("\\") if m]
        return {"vr": "CS", "Value": modalities} if modalities else {"vr": "CS"}
    if keyword == "SOPClassesInStudy":
        classes = sorted({c for c in (value or "").split("\\") if c})
        return {"vr": "UI", "Value": classes} if classes else {"vr": "UI"}
    return {"vr": "IS", "Value": [int(value)]}
