"""Where a login may send the browser next: paths of this site only."""

from __future__ import annotations

import pytest

from lightbox.web.pages import safe_next


@pytest.mark.parametrize(
    ("asked", "given"),
    [
        ("/viewer?StudyInstanceUIDs=1.2.3", "/viewer?StudyInstanceUIDs=1.2.3"),
        ("/", "/"),
        ("/admin/users", "/admin/users"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/path", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok\r\nSet-Cookie: x=y", "/"),
        ("viewer", "/"),
    ],
)
def test_safe_next(asked: str | None, given: str) -> None:
    assert safe_next(asked) == given
