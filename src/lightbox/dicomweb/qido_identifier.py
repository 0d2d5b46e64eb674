"""A QIDO-RS search as a C-FIND identifier, so that it runs through the same query service and matching
engine as C-FIND (PS3.18 8.3.4.1.1: "the types of matching allowed by C-FIND").

Matching parameters become keys with their values, includefield attributes and the level's default
return attributes become empty (universal) keys, and the UIDs of a nested resource's path become single
value keys. Dotted attribute paths become a sequence key with one item (PS3.4 C.2.2.2.6).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from lightbox.dicomweb.qido_attributes import ALL, DEFAULTS
from lightbox.dicomweb.qido_params import AttributePath, SearchParameters, parse_attribute
from lightbox.domain.errors import InvalidQuery
from lightbox.domain.levels import Level
from lightbox.services.query import COMPUTED_KEYWORDS, level_of_tag

# Query/retrieve attributes the archive answers at any level (PS3.4 C.4.1.1.3.2, C.6.1.1.x).
_ANY_LEVEL = frozenset(
    {
        "RetrieveURL",
        "RetrieveAETitle",
        "InstanceAvailability",
        "StorageMediaFileSetID",
        "StorageMediaFileSetUID",
        "SpecificCharacterSet",
    }
)


@dataclass(frozen=True, slots=True)
class Resource:
    """A search resource (PS3.18 Table 10.6.1-1): the level searched and the UIDs its path fixes."""

    level: Level
    study: str | None = None
    series: str | None = None

    def default_levels(self) -> tuple[Level, ...]:
        """Levels whose default attributes the response holds (PS3.18 10.6.3.3.2, 10.6.3.3.3): the level
        searched, and each level above it that the path does not fix (All Series has study attributes)."""
        levels = [self.level]
        if self.level is Level.IMAGE and self.series is None:
            levels.append(Level.SERIES)
        if self.level is not Level.STUDY and self.study is None:
            levels.append(Level.STUDY)
        return tuple(levels)

    def fixed(self) -> dict[str, str]:
        keys = {"StudyInstanceUID": self.study, "SeriesInstanceUID": self.series}
        return {keyword: uid for keyword, uid in keys.items() if uid is not None}


@dataclass(frozen=True, slots=True)
class Identifier:
    """The identifier to give the query service, and the returned attributes (tags as in DICOM JSON) to
    leave out of a response when they are empty: conditional defaults and includefield=all extras."""

    dataset: Dataset
    drop_if_empty: frozenset[str]


@dataclass
class _Node:
    path: AttributePath
    value: str | None = None  # matching text; None for a return key only
    whole: bool = False  # the sequence itself was asked for, not only some attributes of its items
    children: dict[int, _Node] = field(default_factory=dict)


def build_identifier(resource: Resource, params: SearchParameters) -> Identifier:
    level = resource.level
    roots: dict[int, _Node] = {}
    required: set[int] = set()
    optional: set[int] = set()

    def add(paths: Iterable[AttributePath], *, dropped_if_empty: bool) -> None:
        for path in paths:
            _add(roots, path, None)
            (optional if dropped_if_empty else required).add(path[0].tag)

    for path, value in params.matches:
        _add(roots, path, value)
        required.add(path[0].tag)
    for keyword, uid in resource.fixed().items():
        _fix(roots, parse_attribute(keyword), uid)
        required.add(parse_attribute(keyword)[0].tag)
    # PS3.18 10.6.3.3.1-3: includefield attributes of a lower level than the one searched are not returned.
    add((p for p in params.includes if _within(p, level)), dropped_if_empty=False)
    for default_level in resource.default_levels():
        defaults = DEFAULTS[default_level]
        add(map(parse_attribute, defaults.required), dropped_if_empty=False)
        add(map(parse_attribute, defaults.conditional), dropped_if_empty=True)
    if params.include_all:
        add(map(parse_attribute, ALL[level]), dropped_if_empty=True)

    dataset = Dataset()
    for tag in sorted(roots):
        dataset.add(_element(roots[tag]))
    return Identifier(dataset, frozenset(f"{tag:08X}" for tag in optional - required))


def _add(roots: dict[int, _Node], path: AttributePath, value: str | None) -> None:
    nodes = roots
    for depth, step in enumerate(path):
        node = nodes.setdefault(step.tag, _Node(path[: depth + 1]))
        if depth == len(path) - 1:
            if step.vr == "SQ":
                node.whole = True
            elif value is not None:
                node.value = value
        nodes = node.children


def _fix(roots: dict[int, _Node], path: AttributePath, uid: str) -> None:
    """A UID the path names: a matching parameter on the same attribute must agree with it."""
    given = roots.get(path[0].tag)
    if given is not None and given.value not in (None, "", uid):
        raise InvalidQuery(
            f"{path[0].keyword} is {uid} by the path; the query parameter asks for {given.value!r}"
        )
    _add(roots, path, uid)


def _within(path: AttributePath, level: Level) -> bool:
    keyword = path[0].keyword
    if keyword in _ANY_LEVEL:
        return True
    attribute_level = COMPUTED_KEYWORDS.get(keyword) or level_of_tag(f"{path[0].tag:08X}")
    return attribute_level.depth <= level.depth


def _matches_something(node: _Node) -> bool:
    return bool(node.value) or any(_matches_something(c) for c in node.children.values())


def _element(node: _Node) -> DataElement:
    step = node.path[-1]
    if step.vr != "SQ":
        # The text as sent, unconverted: the matching engine reads it as C-FIND's identifiers are read.
        return DataElement(step.tag, step.vr, node.value or "", already_converted=True)
    if not node.children or (node.whole and not _matches_something(node)):
        return DataElement(step.tag, "SQ", Sequence())  # the whole sequence (PS3.4 C.2.2.2.6)
    item = Dataset()
    for tag in sorted(node.children):
        item.add(_element(node.children[tag]))
    return DataElement(step.tag, "SQ", Sequence([item]))
