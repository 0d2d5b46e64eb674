"""DICOM values as the pages show them: person names as written, dates as ISO 8601."""

from __future__ import annotations

import pytest

from lightbox.web.display import dicom_date, person_name


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Smith^Johanna", "Smith, Johanna"),
        ("Smith^Johanna^Maria^Dr^PhD", "Smith, Dr Johanna Maria PhD"),
        ("Smith", "Smith"),
        ("^Johanna", "Johanna"),
        ("Yamada^Tarou=山田^太郎=やまだ^たろう", "Yamada, Tarou"),  # the alphabetic group
        ("", ""),
        ('O<b>^"x"', 'O<b>, "x"'),  # as is: the templates escape
    ],
)
def test_person_name(value: str, shown: str) -> None:
    assert person_name(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [("20240315", "2024-03-15"), (None, ""), ("", ""), ("2024", "2024"), ("2024031x", "2024031x")],
)
def test_dicom_date(value: str | None, shown: str) -> None:
    assert dicom_date(value) == shown
