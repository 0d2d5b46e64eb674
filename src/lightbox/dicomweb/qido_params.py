"""QIDO-RS query parameters (PS3.18 8.3.4): attribute matching, includefield, fuzzymatching, limit, offset;
and orderby, Lightbox's own.

``parse_search`` reads the decoded (name, value) pairs of a query string and checks them all before any
search: an unknown attribute, a malformed tag path or a bad number raises InvalidQuery, whose message
names the parameter at fault. Matching values stay the text the client sent; the query service's matching
engine (the one C-FIND uses) decides what they mean and rejects bad values and ranges itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag, tag_for_keyword

from lightbox.domain.errors import InvalidQuery


@dataclass(frozen=True, slots=True)
class Step:
    """One attribute of an attribute path: its tag, keyword (or tag as 8 hex digits) and VR."""

    tag: int
    keyword: str
    vr: str


AttributePath = tuple[Step, ...]  # a top-level attribute, or a sequence followed by its item's attributes


@dataclass(frozen=True, slots=True)
class SearchParameters:
    """The parameters of one search, checked.

    ``matches`` holds each matching attribute once, with the values of a repeated key joined by
    backslashes (any of them matches, as in C-FIND); ``includes`` are the includefield attributes in the
    order given; ``accept`` is the Accept query parameter (PS3.18 8.3.3.1), if any.
    """

    matches: tuple[tuple[AttributePath, str], ...] = ()
    includes: tuple[AttributePath, ...] = ()
    include_all: bool = False
    fuzzy: bool = False
    limit: int | None = None
    offset: int = 0
    accept: str | None = None
    newest_first: bool = False  # orderby=-stored, Lightbox's own parameter


_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_UINT = re.compile(r"[0-9]{1,19}")
MAX_OFFSET = 2**63 - 1  # the largest OFFSET the index databases take
_TIMEZONE_OFFSET = 0x00080201
_SINGLE = ("fuzzymatching", "limit", "offset", "accept", "orderby")
# orderby: not PS3.18's (QIDO-RS leaves the order to the server); "-stored" lists the last stored first
_ORDERS = {"stored": False, "-stored": True}
# Groups that are never attributes of a stored data set: command, file meta information, item delimiters.
_NOT_DATA_SET_GROUPS = frozenset({0x0000, 0x0002, 0xFFFE})


def parse_search(items: Iterable[tuple[str, str]]) -> SearchParameters:
    """The search parameters in ``items`` (the query string's pairs, percent-decoded, in order)."""
    matches: dict[AttributePath, list[str]] = {}
    includes: list[AttributePath] = []
    include_all = False
    single: dict[str, str] = {}
    for name, value in items:
        lowered = name.lower()  # PS3.18 names its parameters in ABNF, whose literals ignore case
        if lowered in _SINGLE:
            if lowered in single and single[lowered] != value:
                raise InvalidQuery(
                    f"{lowered} is given twice ({single[lowered]!r} and {value!r}); give it once"
                )
            single[lowered] = value
        elif lowered == "includefield":
            for field in (f.strip() for f in value.split(",")):
                if field.lower() == "all":
                    include_all = True  # PS3.18 8.3.4.3
                elif field:
                    includes.append(parse_attribute(field))
        elif lowered == "charset":
            _check_charset(value)
        else:
            path = parse_attribute(name)
            if path[0].tag == _TIMEZONE_OFFSET and value.strip():
                raise InvalidQuery(
                    "TimezoneOffsetFromUTC as a query parameter asks for the dates and times of the query to "
                    "be read in that time zone (PS3.18 8.3.4.1.1), which Lightbox does not do; leave it out "
                    "(includefield=TimezoneOffsetFromUTC returns it)"
                )
            matches.setdefault(path, []).append(_match_value(path, value))
    return SearchParameters(
        matches=tuple((path, "\\".join(values)) for path, values in matches.items()),
        includes=tuple(dict.fromkeys(includes)),
        include_all=include_all,
        fuzzy=_boolean("fuzzymatching", single.get("fuzzymatching", "false")),
        limit=_uint("limit", single["limit"]) if "limit" in single else None,
        offset=_uint("offset", single["offset"]) if "offset" in single else 0,
        accept=single.get("accept"),
        newest_first=_order(single.get("orderby", "stored")),
    )


def parse_attribute(text: str) -> AttributePath:
    """An attribute path, ``keyword`` or ``tag`` joined by dots through sequences (PS3.18 8.3.4.1):
    ``PatientID``, ``00100020``, ``RequestAttributesSequence.ScheduledProcedureStepID``,
    ``00400275.00400009``.
    """
    steps = tuple(_step(part, text) for part in text.split("."))
    for step in steps[:-1]:
        if step.vr != "SQ":
            raise InvalidQuery(
                f"{text!r}: {step.keyword} is not a sequence, so no attribute can follow it after a dot"
            )
    return steps


def _step(part: str, whole: str) -> Step:
    if not part:
        raise InvalidQuery(f"unknown attribute {whole!r}: a name between dots is empty")
    if _TAG.fullmatch(part):
        tag = int(part, 16)
    else:
        found = tag_for_keyword(part)
        if found is None:
            where = "" if part == whole else f" in {whole!r}"
            raise InvalidQuery(
                f"unknown attribute {part!r}{where}: name attributes by their DICOM keyword (PatientName) "
                f"or tag (00100010), or use one of includefield, fuzzymatching, limit, offset"
            )
        tag = found
    group, element = tag >> 16, tag & 0xFFFF
    if group in _NOT_DATA_SET_GROUPS or element == 0:
        raise InvalidQuery(f"{part!r} is not an attribute of a stored data set")
    keyword = keyword_for_tag(tag) or f"{tag:08X}"
    return Step(tag, keyword, _vr(tag))


def _vr(tag: int) -> str:
    if dictionary_has_tag(tag):
        return dictionary_VR(tag).split(" or ", 1)[0]  # "US or SS": the first, as DICOM JSON does
    if (tag >> 16) % 2 == 1 and 0x0010 <= tag & 0xFFFF <= 0x00FF:
        return "LO"  # a Private Creator (PS3.5 7.8.1)
    return "UN"  # a private attribute: its VR is not known here, so it can be returned, not matched


def _match_value(path: AttributePath, value: str) -> str:
    last = path[-1]
    if last.vr == "SQ" and value.strip():
        name = ".".join(s.keyword for s in path)
        raise InvalidQuery(
            f"{name} is a sequence: match the attributes of its items instead, e.g. {name}.CodeValue=..."
        )
    if last.vr == "UI":
        # PS3.18 8.3.4.1: a list of UIDs is comma-separated; C-FIND's backslash is accepted as well.
        return "\\".join(uid.strip() for uid in re.split(r"[,\\]", value))
    return value


def _order(value: str) -> bool:
    if value.strip() not in _ORDERS:
        raise InvalidQuery(
            f"orderby must be stored (the order of storage) or -stored (the last first), not {value!r}"
        )
    return _ORDERS[value.strip()]


def _boolean(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise InvalidQuery(f"{name} must be true or false, not {value!r}")
    return lowered == "true"


def _uint(name: str, value: str) -> int:
    """PS3.18 8.3.4.4: limit and offset are unsigned integers."""
    if not _UINT.fullmatch(value) or int(value) > MAX_OFFSET:
        raise InvalidQuery(f"{name} must be a whole number from 0 to {MAX_OFFSET}, not {value!r}")
    return int(value)


def _check_charset(value: str) -> None:
    """PS3.18 8.3.3.2: an unsupported character set is a 400. DICOM JSON is always UTF-8."""
    names = [c.split(";", 1)[0].strip().lower() for c in value.split(",")]
    if "utf-8" not in names:
        raise InvalidQuery(f"charset {value!r} is not supported: QIDO-RS answers in UTF-8 only")
