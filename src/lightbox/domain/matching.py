"""Attribute matching of the Query/Retrieve service (PS3.4 C.2.2.2), free of protocols and storage.

``parse_key`` turns one key of a query identifier into a ``Key`` whose ``Condition`` says how it matches;
``matches`` evaluates a key against a data set in the DICOM JSON model (PS3.18 F.2), as the index keeps
attributes that have no column of their own; ``project`` cuts a stored sequence down to the matching items
and requested attributes. The SQL side (``lightbox.index.matching``) translates the same conditions, and both
normalise dates, times and names through ``domain.values`` so they always agree.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName

from lightbox.domain import values
from lightbox.domain.errors import InvalidQuery
from lightbox.domain.uids import is_valid_uid


# --- conditions ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Universal:
    """PS3.4 C.2.2.2.3: a zero-length key (or "*") matches every entity; the key is only returned."""


@dataclass(frozen=True, slots=True)
class Empty:
    """PS3.4 C.2.2.2.1: the value ``""`` matches only entities whose attribute is empty or absent."""


@dataclass(frozen=True, slots=True)
class Exact:
    """PS3.4 C.2.2.2.1 single value matching; for DA ``value`` is the normalised ``YYYYMMDD``."""

    value: str


@dataclass(frozen=True, slots=True)
class Wildcard:
    """PS3.4 C.2.2.2.4: ``*`` matches any sequence of characters, ``?`` any single character."""

    pattern: str


@dataclass(frozen=True, slots=True)
class Range:
    """PS3.4 C.2.2.2.5: inclusive bounds in the normalised form of the VR; None is an open end.

    DA bounds are ``YYYYMMDD``, TM bounds ``HHMMSS.ffffff``, DT bounds ``YYYYMMDDHHMMSS.ffffff``. A single
    TM or DT value is the range of its precision ("1030" is 10:30:00 to 10:30:59.999999).
    """

    lower: str | None
    upper: str | None


@dataclass(frozen=True, slots=True)
class Number:
    """Single value matching of a numeric VR (IS, DS, US, ...), compared as numbers."""

    value: float


@dataclass(frozen=True, slots=True)
class NameGroups:
    """A PN value with component groups ("Yamada^Tarou=山田^太郎"): each non-empty group must match."""

    groups: tuple[Universal | Exact | Wildcard, ...]


Single: TypeAlias = Exact | Wildcard | Range | Number | NameGroups


@dataclass(frozen=True, slots=True)
class AnyOf:
    """PS3.4 C.2.2.2.2 list of UID matching and C.2.2.2.8 multiple value matching: any option matches."""

    options: tuple[Single, ...]


@dataclass(frozen=True, slots=True)
class CombinedRange:
    """PS3.4 C.2.2.2.5 combined date-time range over a date key and its time key (``time_tag``).

    Bounds are ``YYYYMMDDHHMMSS.ffffff``, as ``values.combine_datetime`` builds them.
    """

    lower: str | None
    upper: str | None
    time_tag: str


@dataclass(frozen=True, slots=True)
class Items:
    """PS3.4 C.2.2.2.6 sequence matching: every key must match within one stored item.

    ``whole`` means the request held no item or an empty one: the entire sequence is returned.
    """

    keys: tuple[Key, ...]
    whole: bool


Condition: TypeAlias = (
    Universal | Empty | Exact | Wildcard | Range | Number | NameGroups | AnyOf | CombinedRange | Items
)


@dataclass(frozen=True, slots=True)
class Key:
    """One key of an identifier: tag (8 uppercase hex digits, as in DICOM JSON), keyword, VR, condition."""

    tag: str
    keyword: str
    vr: str
    condition: Condition

    @property
    def is_universal(self) -> bool:
        """True when the key never excludes an entity (a return key only)."""
        return is_universal(self.condition)


def is_universal(condition: Condition) -> bool:
    if isinstance(condition, Universal):
        return True
    if isinstance(condition, Items):
        # An item of return keys only requests the sequence; it does not filter entities.
        return all(k.is_universal for k in condition.keys)
    return False


# --- parsing ------------------------------------------------------------------------------------------
WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})  # PS3.4 C.2.2.2.4
NUMERIC_VRS = frozenset({"IS", "DS", "FL", "FD", "SL", "SS", "SV", "UL", "US", "UV"})
_SINGLE_VALUED_TEXT = frozenset({"LT", "ST", "UT", "UR"})  # a backslash is text, not a delimiter (PS3.5 6.2)
_UNMATCHABLE_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})


def tag_key(tag: int) -> str:
    return f"{tag:08X}"


def parse_key(elem: DataElement) -> Key:
    """The ``Key`` for one element of a query identifier; InvalidQuery when its value cannot be a key."""
    keyword = elem.keyword or tag_key(elem.tag)
    vr = _json_vr(elem.VR)
    if vr == "SQ":
        return Key(tag_key(elem.tag), keyword, vr, _parse_items(keyword, elem.value))
    return Key(tag_key(elem.tag), keyword, vr, parse_value(keyword, vr, element_text(elem)))


def _json_vr(vr: str) -> str:
    # Ambiguous dictionary VRs ("US or SS", "OB or OW") are not DICOM JSON VRs; take the first.
    return vr.split(" or ", 1)[0]


def _parse_items(keyword: str, value: Any) -> Items:
    items = list(value) if isinstance(value, Sequence | list) else []
    if len(items) > 1:
        raise InvalidQuery(f"{keyword}: a sequence key holds at most one item (PS3.4 C.2.2.2.6)")
    if not items or len(items[0]) == 0:
        return Items((), whole=True)
    return Items(tuple(parse_key(e) for e in items[0] if e.tag & 0xFFFF != 0), whole=False)


def element_text(elem: DataElement) -> str:
    """The value of an identifier element as the string the SCU sent (backslash between values)."""
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(_one_text(v) for v in value)
    return _one_text(value)


def _one_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, PersonName):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    original = getattr(value, "original_string", None)  # IS and DS keep what was sent
    return str(original if original is not None else value)


def parse_value(keyword: str, vr: str, text: str) -> Condition:
    """The condition of a non-sequence key from its string value (PS3.4 C.2.2.2)."""
    text = text.rstrip(" \x00") if vr in _SINGLE_VALUED_TEXT else text.strip(" \x00")
    if text == "":
        return Universal()
    if text == '""':
        return Empty()
    if vr in _UNMATCHABLE_VRS:
        raise InvalidQuery(f"{keyword}: attributes of VR {vr} cannot be matched; send it empty")
    parts = [text] if vr in _SINGLE_VALUED_TEXT else [p.strip(" \x00") for p in text.split("\\")]
    if vr == "UI":
        # PS3.4 C.2.2.2.2 list of UID matching; a wildcard "*" alone is still universal.
        if parts == ["*"]:
            return Universal()
        for uid in parts:
            if not is_valid_uid(uid):
                raise InvalidQuery(f"{keyword}: {uid!r} is not a valid UID")
        options: list[Single] = [Exact(uid) for uid in dict.fromkeys(parts)]
        return options[0] if len(options) == 1 else AnyOf(tuple(options))
    options = []
    for part in parts:
        if part == "":
            continue
        cond = _parse_single(keyword, vr, part)
        if isinstance(cond, Universal):
            return cond  # one universal option makes the whole key universal
        options.append(cond)
    if not options:
        return Universal()
    unique = tuple(dict.fromkeys(options))
    return unique[0] if len(unique) == 1 else AnyOf(unique)


def _parse_single(keyword: str, vr: str, part: str) -> Single | Universal:
    if set(part) == {"*"}:
        return Universal()  # PS3.4 C.2.2.2.4: "*" is equivalent to universal matching
    if vr in _BOUNDS:
        try:
            return _parse_range(vr, part) or _single_range(vr, part)
        except ValueError:
            raise InvalidQuery(f"{keyword}: {part!r} is not {_FORMS[vr]}") from None
    if vr in NUMERIC_VRS:
        try:
            return Number(float(part))
        except ValueError:
            raise InvalidQuery(f"{keyword}: {part!r} is not a number") from None
    if vr == "PN" and "=" in part:
        groups = tuple(_text_condition(g) for g in part.split("="))
        if all(isinstance(g, Universal) for g in groups):
            return Universal()
        return NameGroups(groups)
    if vr in WILDCARD_VRS:
        return _text_condition(part)
    return Exact(part)


def _text_condition(text: str) -> Universal | Exact | Wildcard:
    if text == "" or set(text) == {"*"}:
        return Universal()
    if "*" in text or "?" in text:
        return Wildcard(text)
    return Exact(text)


def _single_range(vr: str, text: str) -> Exact | Range:
    lower, upper = _BOUNDS[vr](text)
    return Exact(lower) if vr == "DA" else Range(lower, upper)


def _parse_range(vr: str, text: str) -> Range | None:
    """PS3.4 C.2.2.2.5: "a-b", "-b" or "a-"; None when ``text`` is a single value (ValueError if neither)."""
    bounds = _BOUNDS[vr]
    for i, ch in enumerate(text):
        if ch != "-":
            continue
        lo_text, hi_text = text[:i], text[i + 1 :]
        if not lo_text and not hi_text:
            raise ValueError(text)
        try:
            lower = bounds(lo_text)[0] if lo_text else None
            upper = bounds(hi_text)[1] if hi_text else None
        except ValueError:
            if vr == "DT":
                continue  # a DT value may carry a "-hhmm" UTC offset: try the next hyphen
            raise
        if vr == "DT" and lower is not None and upper is not None and lower > upper:
            continue  # not a range after all, unless no other reading fits (check_ranges rejects it)
        return Range(lower, upper)
    return None


def _valid_date(year: int, month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def _valid_time(normalised: str) -> bool:
    return int(normalised[0:2]) < 24 and int(normalised[2:4]) < 60 and int(normalised[4:6]) <= 60


def _date_bounds(text: str) -> tuple[str, str]:
    date = values.normalize_date(text)
    if date is None or not _valid_date(int(date[:4]), int(date[4:6]), int(date[6:8])):
        raise ValueError(text)
    return date, date


def _time_bounds(text: str) -> tuple[str, str]:
    lower = values.normalize_time(text)
    upper = values.normalize_time(text, upper=True)
    if lower is None or upper is None or not _valid_time(lower):
        raise ValueError(text)
    return lower, upper


_DT = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?)?)?)?([+-]\d{4})?"
)


def normalize_datetime(text: str | None, *, upper: bool = False) -> str | None:
    """``YYYYMMDDHHMMSS.ffffff`` from a DT value of any precision; missing parts are the lowest values, or the
    highest for the upper bound of a range (PS3.5 6.2). A UTC offset is dropped: values compare as written.
    """
    if not text:
        return None
    m = _DT.fullmatch(text.strip())
    if not m:
        return None
    year, month, day, hh, mm, ss, frac, _offset = m.groups()
    month = month or ("12" if upper else "01")
    if day is None:
        last = calendar.monthrange(int(year), int(month))[1] if 1 <= int(month) <= 12 else 31
        day = f"{last:02d}" if upper else "01"
    hh = hh or ("23" if upper else "00")
    mm = mm or ("59" if upper else "00")
    ss = ss or ("59" if upper else "00")
    frac = (frac or "").ljust(6, "9" if upper else "0")
    return f"{year}{month}{day}{hh}{mm}{ss}.{frac}"


def _datetime_bounds(text: str) -> tuple[str, str]:
    lower = normalize_datetime(text)
    upper = normalize_datetime(text, upper=True)
    if lower is None or upper is None:
        raise ValueError(text)
    if not _valid_date(int(lower[:4]), int(lower[4:6]), int(lower[6:8])) or not _valid_time(lower[8:]):
        raise ValueError(text)
    return lower, upper


_BOUNDS: dict[str, Callable[[str], tuple[str, str]]] = {
    "DA": _date_bounds,
    "TM": _time_bounds,
    "DT": _datetime_bounds,
}
_FORMS = {
    "DA": "a date or date range (YYYYMMDD, YYYYMMDD-YYYYMMDD, -YYYYMMDD or YYYYMMDD-)",
    "TM": "a time or time range (HHMMSS.FFFFFF, HHMM-HHMM, -HHMM or HHMM-)",
    "DT": "a date-time or date-time range (YYYYMMDDHHMMSS.FFFFFF&ZZXX, with - between bounds)",
}


# --- combined date-time matching ----------------------------------------------------------------------
# PS3.4 C.2.2.2.5: with extended negotiation, these date and time keys are matched as one date-time range.
DATE_TIME_PAIRS: dict[str, str] = {
    "00080020": "00080030",  # StudyDate, StudyTime
    "00080021": "00080031",  # SeriesDate, SeriesTime
    "00080022": "00080032",  # AcquisitionDate, AcquisitionTime
    "00080023": "00080033",  # ContentDate, ContentTime
    "00100030": "00100032",  # PatientBirthDate, PatientBirthTime
    "00400244": "00400245",  # PerformedProcedureStepStartDate, PerformedProcedureStepStartTime
}


def combine_date_time(keys: Iterable[Key]) -> list[Key]:
    """Replace each matching date key and its time key by one ``CombinedRange`` on the date key.

    Only single values and ranges combine; the time key stays as a return key.
    """
    out = list(keys)
    by_tag = {k.tag: i for i, k in enumerate(out)}
    for date_tag, time_tag in DATE_TIME_PAIRS.items():
        if date_tag not in by_tag or time_tag not in by_tag:
            continue
        date_key, time_key = out[by_tag[date_tag]], out[by_tag[time_tag]]
        date_cond, time_cond = date_key.condition, time_key.condition
        if isinstance(date_cond, Exact):
            date_cond = Range(date_cond.value, date_cond.value)
        if not isinstance(date_cond, Range) or not isinstance(time_cond, Range):
            continue
        lower = None if date_cond.lower is None else date_cond.lower + (time_cond.lower or "000000.000000")
        upper = None if date_cond.upper is None else date_cond.upper + (time_cond.upper or "235959.999999")
        out[by_tag[date_tag]] = Key(
            date_tag, date_key.keyword, date_key.vr, CombinedRange(lower, upper, time_tag)
        )
        out[by_tag[time_tag]] = Key(time_tag, time_key.keyword, time_key.vr, Universal())
    return out


def check_ranges(keys: Iterable[Key]) -> None:
    """InvalidQuery for a range that ends before it starts (PS3.4 C.2.2.2.5: "<date1> is less or equal to
    <date2>"; a time range cannot cross midnight). Checked after ``combine_date_time``, which makes a range
    such as StudyTime 2200-0600 valid across two days."""
    for key in keys:
        cond = key.condition
        options = cond.options if isinstance(cond, AnyOf) else (cond,)
        for option in options:
            if not isinstance(option, Range | CombinedRange):
                continue
            if option.lower and option.upper and option.lower > option.upper:
                raise InvalidQuery(
                    f"{key.keyword}: the range {option.lower}-{option.upper} ends before it starts"
                )
        if isinstance(cond, Items):
            check_ranges(cond.keys)


# --- evaluation on DICOM JSON -------------------------------------------------------------------------
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")


def matches(key: Key, dataset: Mapping[str, Any], *, fold_names: bool = False) -> bool:
    """Whether the data set (DICOM JSON, PS3.18 F.2) satisfies ``key``.

    A stored attribute with several values matches when any value matches. ``fold_names`` makes PN
    matching case- and accent-insensitive.
    """
    cond = key.condition
    if isinstance(cond, Universal):
        return True
    element = dataset.get(key.tag)
    if isinstance(cond, Empty):
        return is_empty(element)
    if isinstance(cond, Items):
        if is_universal(cond):
            return True
        return any(_item_matches(cond, item, fold_names) for item in _values(element))
    if isinstance(cond, CombinedRange):
        date = values.normalize_date(_first_text(element))
        stored = values.combine_datetime(date, _first_text(dataset.get(cond.time_tag)))
        return stored is not None and _within(stored, cond.lower, cond.upper)
    return any(_value_matches(cond, key.vr, v, fold_names) for v in _values(element))


def _item_matches(cond: Items, item: Any, fold_names: bool) -> bool:
    return isinstance(item, Mapping) and all(matches(k, item, fold_names=fold_names) for k in cond.keys)


def is_empty(element: Mapping[str, Any] | None) -> bool:
    if not element:
        return True
    return all(_is_empty_value(v) for v in element.get("Value") or ())


def _is_empty_value(value: Any) -> bool:
    if value is None or value == "":
        return True
    if isinstance(value, Mapping):  # PN: empty when no component group holds anything
        return not any(value.get(g) for g in _PN_GROUPS)
    return False


def _values(element: Mapping[str, Any] | None) -> list[Any]:
    if not element:
        return []
    return [v for v in element.get("Value") or () if v is not None]


def _first_text(element: Mapping[str, Any] | None) -> str | None:
    vals = _values(element)
    return str(vals[0]) if vals else None


def _within(value: str, lower: str | None, upper: str | None) -> bool:
    return (lower is None or value >= lower) and (upper is None or value <= upper)


def _value_matches(cond: Condition, vr: str, value: Any, fold_names: bool) -> bool:
    if isinstance(cond, AnyOf):
        return any(_value_matches(o, vr, value, fold_names) for o in cond.options)
    if isinstance(cond, NameGroups):
        if isinstance(value, Mapping):
            groups = [str(value.get(g) or "") for g in _PN_GROUPS]
        else:
            groups = str(value).split("=")
        groups += [""] * (len(cond.groups) - len(groups))
        return all(_text_matches(g, groups[i], vr, fold_names) for i, g in enumerate(cond.groups))
    if isinstance(cond, Number):
        try:
            return float(value) == cond.value
        except (TypeError, ValueError):
            return False
    if isinstance(cond, Range):
        normalised = _normalised(vr, value)
        return normalised is not None and _within(normalised, cond.lower, cond.upper)
    if isinstance(cond, Exact | Wildcard):
        text = value.get("Alphabetic", "") if isinstance(value, Mapping) else value
        if vr == "DA" and isinstance(cond, Exact):
            return values.normalize_date(str(text)) == cond.value
        return _text_matches(cond, str(text), vr, fold_names)
    return False


def _text_matches(cond: Universal | Exact | Wildcard, text: str, vr: str, fold_names: bool) -> bool:
    if isinstance(cond, Universal):
        return True
    fold = fold_names and vr == "PN"
    text = text.strip(" ")
    if fold:
        text = values.fold_name(text) or ""
    if isinstance(cond, Exact):
        return text == (values.fold_name(cond.value) if fold else cond.value)
    return wildcard_regex(cond.pattern, fold).fullmatch(text) is not None


@functools.lru_cache(maxsize=512)
def wildcard_regex(pattern: str, fold: bool = False) -> re.Pattern[str]:
    """PS3.4 C.2.2.2.4 wildcards as a regular expression (everything else literal)."""
    if fold:
        pattern = values.fold_name(pattern) or ""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def _normalised(vr: str, value: Any) -> str | None:
    text = str(value)
    if vr == "DA":
        return values.normalize_date(text)
    if vr == "TM":
        return values.normalize_time(text)
    if vr == "DT":
        return normalize_datetime(text)
    return text


# --- return values ------------------------------------------------------------------------------------
def project(key: Key, element: Mapping[str, Any] | None, *, fold_names: bool = False) -> dict[str, Any]:
    """The element to return for ``key``: the stored element, or for a sequence key the matching items
    holding only the requested attributes (PS3.4 C.2.2.2.6). An absent attribute is returned empty."""
    cond = key.condition
    if not element:
        return {"vr": key.vr}
    if not isinstance(cond, Items) or cond.whole:
        return dict(element)
    items = [
        {k.tag: project(k, item.get(k.tag), fold_names=fold_names) for k in cond.keys}
        for item in _values(element)
        if _item_matches(cond, item, fold_names)
    ]
    return {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}
