"""DICOM values as people read them on a page: names and dates."""

from __future__ import annotations


def person_name(value: str) -> str:
    """A PN value's alphabetic group as written: "Smith^Johanna^^Dr" is "Smith, Dr Johanna"."""
    parts = [p.strip() for p in value.split("=")[0].split("^")]
    family, given, middle, prefix, suffix = (parts + [""] * 5)[:5]
    rest = " ".join(p for p in (prefix, given, middle, suffix) if p)
    return f"{family}, {rest}" if family and rest else family or rest


def dicom_date(value: str | None) -> str:
    """A DA value (YYYYMMDD) as an ISO 8601 date; anything else as it is."""
    if value and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value or ""
