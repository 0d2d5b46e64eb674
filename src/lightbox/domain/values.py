"""Normalised forms of DICOM values, used both when indexing and when matching, so the two always agree."""

from __future__ import annotations

import re
import unicodedata

_DATE = re.compile(r"(\d{4})\.?(\d{2})\.?(\d{2})")
_TIME = re.compile(r"(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.(\d{1,6}))?)?)?")


def normalize_date(value: str | None) -> str | None:
    """``YYYYMMDD`` (also from the retired ``YYYY.MM.DD`` form), or None when not a date."""
    if not value:
        return None
    m = _DATE.fullmatch(value.strip())
    return "".join(m.groups()) if m else None


def normalize_time(value: str | None, *, upper: bool = False) -> str | None:
    """``HHMMSS.ffffff``; missing parts become zeros, or nines for the upper bound of a range.

    PS3.5 6.2: ``1230`` means the minute 12:30, so as an upper bound it reaches ``123059.999999``.
    """
    if not value:
        return None
    m = _TIME.fullmatch(value.strip())
    if not m:
        return None
    hh, mm, ss, frac = m.groups()
    fill = "9" if upper else "0"
    mm = mm if mm is not None else ("59" if upper else "00")
    ss = ss if ss is not None else ("59" if upper else "00")
    frac = (frac or "").ljust(6, fill) if frac or upper else "000000"
    return f"{hh}{mm}{ss}.{frac}"


def combine_datetime(date: str | None, time: str | None, *, upper: bool = False) -> str | None:
    """``YYYYMMDDHHMMSS.ffffff`` from a normalised date and a raw time (PS3.4 C.2.2.2.5 combined matching)."""
    if not date:
        return None
    t = normalize_time(time, upper=upper) or ("235959.999999" if upper else "000000.000000")
    return date + t


def fold_name(value: str | None) -> str | None:
    """Case- and accent-insensitive form of a person name for case-insensitive matching."""
    if value is None:
        return None
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.casefold().upper()


def alphabetic_group(pn: str | None) -> str:
    """The alphabetic component group of a PN value (before the first ``=``)."""
    return (pn or "").split("=", 1)[0]


def to_int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None
